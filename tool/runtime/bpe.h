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

/* pre-tokenizers (tokenizer.ggml.pre) */
enum { LM_PRE_GPT2 = 0, LM_PRE_SMOLLM = 1 };

typedef struct {
    const lm_model *m;
    int pre;             /* LM_PRE_* */
    lm_bpe_table tok;    /* token string -> id */
    lm_bpe_table merge;  /* "left right" -> rank */
} lm_bpe;

/* KVR_EINVAL when the model has no tokens and merges, KVR_EFORMAT when its
 * pre-tokenizer is not one of LM_PRE_*. */
int lm_bpe_init(lm_bpe *b, const lm_model *m);
void lm_bpe_free(lm_bpe *b);
/* Encode text into at most cap ids (KVR_EINVAL when it needs more).
 *   ids: [cap] */
int lm_bpe_encode(const lm_bpe *b, const char *text, int *ids, int cap, int *n_out);
/* The pieces the pre-tokenizer cuts text into (a special token is one):
 * the byte offset where each ends, at most cap (KVR_EINVAL when more).
 *   ends: [cap] */
int lm_bpe_split(const lm_bpe *b, const char *text, size_t *ends, int cap, int *n_out);
/* Decode ids into out (NUL-terminated, truncated to cap); returns the bytes
 * written.   ids: [n] */
size_t lm_bpe_decode(const lm_bpe *b, const int *ids, int n, char *out, size_t cap);

#endif
