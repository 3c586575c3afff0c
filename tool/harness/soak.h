/* soak.h: the soak test of one head cache (issue 8), shared by
 * tests/soak.c (reduced size) and `kvreviver bench --soak` (full size). */
#ifndef KVR_SOAK_H
#define KVR_SOAK_H

#include <stdint.h>
#include <stdio.h>

/* Append `appends` tokens to one head cache (head_dim D, one query head)
 * configured by the kvreviver method for a budget of `ratio` of a full
 * cache of `context` tokens, checking periodically that the bytes held stay
 * at the planned value, that every invariant holds (ref_head_check) and
 * that the reconstruction error of sampled vague positions stays within
 * the spec §15 bound.  Writes a report (time, peak memory, the checks) to
 * `report` when it is not NULL.  Returns 0 when every check held, 1 when
 * one failed (the report says which), or a negative kvr status when the
 * library failed. */
int ev_soak_run(long appends, int head_dim, double ratio, long context, uint64_t seed, FILE *report);

#endif
