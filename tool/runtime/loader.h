/* loader.h: the loader interface of the runtime (doc/model.md §2): the
 * model a loader fills, and the helpers a loader may call.
 *
 * A loader (llama2c.c, gguf.c) reads one file format into a lm_model:
 * shape fields, float32 weights, and the tokenizer when the file has one.
 * It uses only this header and loader.c; model.c (the forward pass) picks the
 * loader and consumes what it filled.  Calls go one way:
 * model.c -> loaders -> loader.c. */
#ifndef KVR_LOADER_H
#define KVR_LOADER_H

#include "kvreviver.h"

typedef struct {
    /* shape */
    int dim;            /* model (residual) width */
    int hidden_dim;     /* feed-forward width */
    int n_layers;
    int n_heads;        /* query heads */
    int n_kv_heads;     /* key/value heads (GQA group = n_heads / n_kv_heads) */
    int head_dim;
    int vocab_size;
    int seq_len;        /* trained context (informational) */
    float rms_eps;      /* RMSNorm epsilon */
    float rope_base;    /* RoPE frequency base */
    int rope_dims;      /* rotated dimensions of each head (even, <= head_dim) */
    int bos;            /* beginning-of-sequence token id */
    int eos;            /* end-of-sequence token id, -1 if none */
    /* weights, float32, row-major; "out x in" for projections (y = W x) */
    float *token_embedding; /* [vocab_size][dim] */
    float *rms_att;         /* [n_layers][dim] */
    float *wq;              /* [n_layers][n_heads*head_dim][dim] */
    float *wk;              /* [n_layers][n_kv_heads*head_dim][dim] */
    float *wv;              /* [n_layers][n_kv_heads*head_dim][dim] */
    float *wo;              /* [n_layers][dim][n_heads*head_dim] */
    float *rms_ffn;         /* [n_layers][dim] */
    float *w1;              /* [n_layers][hidden_dim][dim] (gate) */
    float *w2;              /* [n_layers][dim][hidden_dim] (down) */
    float *w3;              /* [n_layers][hidden_dim][dim] (up) */
    float *rms_final;       /* [dim] */
    float *wcls;            /* [vocab_size][dim]; may alias token_embedding */
    /* tokenizer (GGUF only; NULL / 0 otherwise) */
    char **tokens;          /* [vocab_size] token strings (GPT-2 byte-level) */
    char **merges;          /* [n_merges] "left right" */
    int n_merges;
    char tok_pre[32];       /* tokenizer.ggml.pre ("" when absent) */
    void *owned[16];        /* allocations to free */
    int n_owned;
} lm_model;

/* The loaders: fill *m from the file at path.  On failure (KVR_EIO,
 * KVR_EFORMAT with a message naming the path and the field, KVR_ENOMEM) *m
 * is zeroed and nothing is held. */
int lm_model_load_llama2c(lm_model *m, const char *path);   /* llama2c.c */
int lm_model_load_gguf(lm_model *m, const char *path);      /* gguf.c */
void lm_model_free(lm_model *m);
/* Check the shape fields for consistency; KVR_EFORMAT naming what is wrong. */
int lm_model_check(const lm_model *m, const char *path);

/* Read the whole file at path into a new buffer of *size bytes (freed with
 * free()).  A directory, a device or a pipe is refused (KVR_EIO, "is a
 * directory" / "not a regular file"): a model is read from a file whose
 * length is known, so the buffer is never larger than the file.  KVR_EIO
 * "cannot open 'path': <reason>" when it cannot be opened. */
int lm_read_file(const char *path, unsigned char **data, size_t *size);

/* Every allocation of the loaders goes through lm_alloc (calloc's
 * arguments; free() releases it), which records the largest request on
 * this thread since lm_alloc_largest_reset(): the fuzz target checks that a
 * loader never asks for more than a small multiple of the file's length. */
void *lm_alloc(size_t count, size_t size);
size_t lm_alloc_largest(void);
void lm_alloc_largest_reset(void);

/* Errors of the model code: the status and a message (the path, the field
 * or the layer) that lm_model_error() returns until the next failure. */
int lm_model_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *lm_model_error(void);


#endif
