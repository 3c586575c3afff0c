/* bpe.h: the byte-level BPE tokenizer of GGUF models that carry tokens and
 * merges (doc/model.md §2.3). */
#ifndef KVR_BPE_H
#define KVR_BPE_H

#include <stddef.h>
#include "loader.h"

/* ---- tokenizer (bpe.c, GGUF models with tokens and merges) ------------- */
typedef struct {
    char **keys;      /* the strings (not owned) */
    int *slot;        /* [cap] index into keys, -1 empty */
    size_t cap;
} lm_bpe_table;

typedef struct {
    const lm_model *m;
    lm_bpe_table tok;    /* token string -> id */
    lm_bpe_table merge;  /* "left right" -> rank */
} lm_bpe;

int lm_bpe_init(lm_bpe *b, const lm_model *m);
void lm_bpe_free(lm_bpe *b);
/* Encode text into at most cap ids (KVR_EINVAL when it needs more).
 *   ids: [cap] */
int lm_bpe_encode(const lm_bpe *b, const char *text, int *ids, int cap, int *n_out);
/* Decode ids into out (NUL-terminated, truncated to cap); returns the bytes
 * written.   ids: [n] */
size_t lm_bpe_decode(const lm_bpe *b, const int *ids, int n, char *out, size_t cap);

#endif
