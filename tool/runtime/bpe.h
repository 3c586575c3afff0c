/* bpe.h: the tokenizers of GGUF models (doc/model.md §2.3): byte-level BPE
 * for files with tokens and merges (bpe.c), SentencePiece for files whose
 * tokenizer.ggml.model is "llama", with scores (spm.c, Gemma). */
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
    int spm;             /* 1: SentencePiece (spm.c), the fields below */
    int *special;        /* [n_special] control and user-defined ids, longest first */
    int n_special;
    int byte_id[256];    /* the <0xXX> token of each byte, -1 if none */
} lm_bpe;

/* The string table (bpe.c), shared with spm.c. */
int lm_bpe_table_init(lm_bpe_table *t, char **keys, int n);
int lm_bpe_table_find(const lm_bpe_table *t, const char *s, size_t n);
/* SentencePiece (spm.c): lm_bpe_init, _encode, _split and _decode call
 * these when the model's tokenizer is one. */
int lm_spm_init(lm_bpe *b, const lm_model *m);
int lm_spm_encode(const lm_bpe *b, const char *text, int *ids, size_t *ends, int cap, int *n_out);
size_t lm_spm_decode(const lm_bpe *b, const int *ids, int n, char *out, size_t cap);

/* KVR_EINVAL when the model has no tokenizer (tokens and merges, or tokens
 * and scores), KVR_EFORMAT when its pre-tokenizer is not one of LM_PRE_* or
 * its tokenizer.ggml.model is neither "gpt2" nor "llama". */
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
