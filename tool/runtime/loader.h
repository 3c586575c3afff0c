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
    /* the family (doc/model.md §9): LM_ARCH_LLAMA, or LM_ARCH_GEMMA3 and
     * the fields below, which llama leaves at their neutral values */
    int arch;
    int window;         /* local layers attend to the last `window` positions (the
                         * current one included); 0: every layer is global */
    int swa_pattern;    /* layer l is global when l % swa_pattern == swa_pattern - 1 */
    float rope_base_local;  /* RoPE base of the local layers */
    int rope_neox;      /* 1: RoPE rotates the pairs (i, i + rope_dims/2); 0: (2i, 2i+1) */
    float embed_scale;  /* the token embedding is multiplied by it (1 for llama) */
    float attn_scale;   /* attention logit scale; 1/sqrt(head_dim) for llama */
    float softcap;      /* final logits: softcap * tanh(z / softcap); 0: none */
    int gelu;           /* 1: feed-forward GELU (tanh form) gated; 0: SwiGLU */
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
    /* gemma3 only (NULL for llama) */
    float *q_norm;          /* [n_layers][head_dim] RMSNorm of each query head */
    float *k_norm;          /* [n_layers][head_dim] RMSNorm of each key head */
    float *rms_att_post;    /* [n_layers][dim] RMSNorm of the attention output */
    float *rms_ffn_post;    /* [n_layers][dim] RMSNorm of the feed-forward output */
    float *wcls;            /* [vocab_size][dim]; may alias token_embedding */
    /* tokenizer (GGUF only; NULL / 0 otherwise) */
    char **tokens;          /* [vocab_size] token strings (GPT-2 byte-level, or SentencePiece) */
    char **merges;          /* [n_merges] "left right" */
    int n_merges;
    char tok_pre[32];       /* tokenizer.ggml.pre ("" when absent) */
    char tok_model[16];     /* tokenizer.ggml.model: "gpt2", "llama" (SentencePiece); "" when absent */
    float *tok_scores;      /* [vocab_size] SentencePiece scores, NULL when absent */
    int *tok_type;          /* [vocab_size] token types (1 normal, 3 control, 4 user-defined, 6 byte), NULL when absent */
    int add_bos;            /* tokenizer.ggml.add_bos_token (0 when absent) */
    void *owned[16];        /* allocations to free */
    int n_owned;
} lm_model;

/* The loaders: fill *m from the file at path.  On failure (KVR_EIO,
 * KVR_EFORMAT with a message naming the path and the field, KVR_ENOMEM) *m
 * is zeroed and nothing is held. */
enum { LM_ARCH_LLAMA = 0, LM_ARCH_GEMMA3 = 1 };
/* 1 when layer l of m attends only to a sliding window (a local layer). */
int lm_layer_local(const lm_model *m, int l);
/* The global layers: their count, and the index of global layer l among
 * them (-1 for a local layer). */
int lm_global_layers(const lm_model *m);
int lm_global_index(const lm_model *m, int l);
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
