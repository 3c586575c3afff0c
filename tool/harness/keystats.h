/* keystats.h: how a model's keys and values spread over their channels,
 * and what 4-bit and 2-bit codes lose on them per token (spec §18.2, the
 * store=q4 route) and per channel over groups of positions (KIVI's keys,
 * spec §18.6): `kvreviver keys` (doc/model.md §7). */
#ifndef KVR_KEYSTATS_H
#define KVR_KEYSTATS_H

#include <stdint.h>
#include <stdio.h>
#include "runtime/model.h"

/* EV_KEYS_TOP: the channels whose share of the squared norm is reported;
 * EV_KEYS_GROUP: positions per group of the per-channel code (KIVI's G). */
enum { EV_KEYS_TOP = 4, EV_KEYS_GROUP = 32, EV_KEYS_BITS = 2 };
/* The widths measured, in the order of every [bits] index: 4, then 2. */
extern const int ev_keys_bits[EV_KEYS_BITS];

/* Running sums over heads (and layers): which = 0 keys, 1 values. */
typedef struct {
    long heads[2];             /* heads added */
    double ratio_sum[2];       /* sum over heads of max / median channel range */
    long positions[2];         /* (head, position) pairs with a non-zero norm */
    double top_sum[2];         /* sum over those of the top-EV_KEYS_TOP share */
    double norm2[2];           /* sum of x^2 over every element */
    double err2_token[2][EV_KEYS_BITS];    /* sum of (x - deq x)^2, per token codes */
    double err2_channel[2][EV_KEYS_BITS];  /* the same, per channel codes */
} ev_keys_acc;

/* What the sums say. */
typedef struct {
    double range_ratio[2];     /* mean over heads of max / median channel range */
    double top_share[2];       /* mean over positions and heads of the share of
                                * the squared norm in the EV_KEYS_TOP largest channels */
    double err_token[2][EV_KEYS_BITS];     /* relative RMS error, per token over head_dim */
    double err_channel[2][EV_KEYS_BITS];   /* per channel over groups of `group` positions */
} ev_keys_stats;

/* Add one head's n vectors of D channels to a: x holds position t's
 * channel i at x[t * stride + i].  The range of channel i is its max
 * minus its min over the n positions; max over median of the D ranges
 * (the mean of the middle two when D is even; +inf when the median is 0
 * and the max is not, 1 when both are 0) is added once.  Every vector is
 * coded per token (ref_quant_params over its D channels, spec §18.2) and
 * every channel per group of `group` consecutive positions (the last
 * group holds what is left), at each width of ev_keys_bits, dequantized
 * (spec §18.3) and its squared error added.  KVR_EINVAL (n, D or group
 * below 1, stride below D), KVR_ENONFINITE (a NaN or infinity),
 * KVR_ERANGE (a value outside float16's range, which quantized storage
 * refuses, spec §18.1) and KVR_ENOMEM leave a unchanged.
 *   x: [n][stride] */
int ev_keys_head(ev_keys_acc *a, int which, const float *x, int n, int stride, int D, int group);
/* Sum b into a. */
void ev_keys_merge(ev_keys_acc *a, const ev_keys_acc *b);
/* The means and relative errors sqrt(err2 / norm2) of a (NaN where
 * nothing was added or the norm is 0). */
void ev_keys_result(const ev_keys_acc *a, ev_keys_stats *out);

/* What `kvreviver keys` asked for. */
typedef struct {
    const char *path;   /* the model file (its base name is printed) */
    const char *text;   /* --text FILE, or NULL: text the model samples from BOS */
    int context;        /* positions run through the prompt */
    uint64_t seed;      /* the sampler's seed (as eval's --seed) */
    int threads;        /* BLAS threads of the prompt pass */
    FILE *csv;          /* NULL: none; may be stdout (then no table) */
} ev_keys_opts;

/* Run the first o->context tokens (of the document, or sampled as eval
 * samples them) through the model's prompt pass (lm_model_prompt), and
 * report each layer's statistics over its KV heads, then all layers
 * pooled, as a table on stdout and CSV rows.  Returns 0, 1 (a failure at
 * run time, said on stderr) or 2 (the options do not fit the model or
 * the text: a context above the trained one, no tokenizer, a short
 * text). */
int ev_keys_run(const lm_model *m, const ev_keys_opts *o);

#endif
