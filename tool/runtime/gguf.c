/* gguf.c: reading a GGUF file of the llama or the gemma3 architecture
 * (doc/model.md §2.2, §9).
 *
 * The subset read: GGUF version 2 or 3, little-endian; metadata values of
 * every type (scalars, strings, arrays, arrays of arrays) are parsed and
 * bounds-checked, the ones the model needs are used; tensors of type F32,
 * F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q4_K, Q5_K, Q6_K are
 * dequantised to float32 at load (the block layouts: dequant.c).  The file is
 * untrusted: every length, count, dimension and offset is checked against
 * the bytes that remain, in 64-bit arithmetic, before it is used; failures
 * are KVR_EFORMAT with the path and what was wrong. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "loader.h"
#include "dequant.h"

/* metadata value types */
enum {
    G_U8 = 0, G_I8 = 1, G_U16 = 2, G_I16 = 3, G_U32 = 4, G_I32 = 5, G_F32 = 6,
    G_BOOL = 7, G_STRING = 8, G_ARRAY = 9, G_U64 = 10, G_I64 = 11, G_F64 = 12
};

typedef struct {
    const unsigned char *data;
    uint64_t size, pos;
    const char *path;
    int status;             /* first failure, KVR_OK until then */
} reader;

static int bad(reader *r, const char *what)
{
    if (r->status == KVR_OK)
        r->status = lm_model_fail(KVR_EFORMAT, "%s: %s at byte %llu", r->path, what,
                                   (unsigned long long)r->pos);
    return r->status;
}

/* Take n bytes; NULL (and the reader failed) if fewer remain. */
static const unsigned char *take(reader *r, uint64_t n, const char *what)
{
    if (r->status != KVR_OK)
        return NULL;
    if (n > r->size - r->pos) {
        bad(r, what);
        return NULL;
    }
    const unsigned char *p = r->data + r->pos;
    r->pos += n;
    return p;
}

static uint64_t get_u(reader *r, int bytes, const char *what)
{
    const unsigned char *p = take(r, (uint64_t)bytes, what);
    uint64_t v = 0;
    for (int i = 0; p && i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A string: uint64 length then bytes (no terminator in the file). */
typedef struct { const char *s; uint64_t n; } gstr;

static gstr get_str(reader *r, const char *what)
{
    gstr g = {NULL, 0};
    g.n = get_u(r, 8, what);
    g.s = (const char *)take(r, g.n, what);
    if (!g.s) g.n = 0;
    return g;
}

static int str_is(gstr g, const char *s)
{
    return g.s && g.n == strlen(s) && !memcmp(g.s, s, g.n);
}

static uint64_t scalar_size(uint32_t type)
{
    switch (type) {
    case G_U8: case G_I8: case G_BOOL: return 1;
    case G_U16: case G_I16: return 2;
    case G_U32: case G_I32: case G_F32: return 4;
    case G_U64: case G_I64: case G_F64: return 8;
    default: return 0;
    }
}

/* Skip a value of the given type (arrays nest at most 3 deep). */
static void skip_value(reader *r, uint32_t type, int depth)
{
    if (scalar_size(type)) {
        take(r, scalar_size(type), "truncated metadata value");
    } else if (type == G_STRING) {
        get_str(r, "truncated metadata string");
    } else if (type == G_ARRAY && depth < 3) {
        uint32_t et = (uint32_t)get_u(r, 4, "truncated array type");
        uint64_t n = get_u(r, 8, "truncated array length");
        if (scalar_size(et)) {
            if (n > (r->size - r->pos) / scalar_size(et))
                bad(r, "array longer than the file");
            else
                take(r, n * scalar_size(et), "truncated array");
        } else {
            for (uint64_t i = 0; i < n && r->status == KVR_OK; i++)
                skip_value(r, et, depth + 1);
        }
    } else {
        bad(r, "unknown metadata value type");
    }
}

/* A numeric metadata value as double (integers, floats, bool). */
static double get_number(reader *r, uint32_t type)
{
    uint64_t v = get_u(r, (int)scalar_size(type), "truncated number");
    switch (type) {
    case G_I8: return (double)(int8_t)v;
    case G_I16: return (double)(int16_t)v;
    case G_I32: return (double)(int32_t)v;
    case G_I64: return (double)(int64_t)v;
    case G_F32: { uint32_t b = (uint32_t)v; float f; memcpy(&f, &b, 4); return f; }
    case G_F64: { double d; memcpy(&d, &v, 8); return d; }
    default: return (double)v;
    }
}

typedef struct {
    gstr name;
    uint32_t n_dims;
    uint64_t dims[4];
    uint32_t type;
    uint64_t offset, nelem, nbytes;
} tensor_info;

/* Strings of a metadata array of strings, copied NUL-terminated. */
static char **copy_strings(reader *r, uint64_t n, lm_model *m)
{
    char **v = lm_alloc(n, sizeof(char *));
    if (!v) {
        r->status = lm_model_fail(KVR_ENOMEM, "%s: %llu strings: out of memory", r->path, (unsigned long long)n);
        return NULL;
    }
    /* one block for all strings: count first */
    uint64_t start = r->pos, total = 0;
    for (uint64_t i = 0; i < n && r->status == KVR_OK; i++)
        total += get_str(r, "truncated string array").n + 1;
    char *block = r->status == KVR_OK ? lm_alloc(total, 1) : NULL;
    if (!block) {
        free(v);
        if (r->status == KVR_OK)
            r->status = lm_model_fail(KVR_ENOMEM, "%s: strings: out of memory", r->path);
        return NULL;
    }
    r->pos = start;
    char *p = block;
    for (uint64_t i = 0; i < n; i++) {
        gstr g = get_str(r, "truncated string array");
        memcpy(p, g.s, g.n);
        p[g.n] = 0;
        v[i] = p;
        p += g.n + 1;
    }
    m->owned[m->n_owned++] = v;
    m->owned[m->n_owned++] = block;
    return v;
}

/* The model arrays a GGUF fills, in the order of the one float32 block
 * that holds them all. */
enum { A_EMBD, A_RMS_ATT, A_WQ, A_WK, A_WV, A_WO, A_RMS_FFN, A_W1, A_W2, A_W3, A_RMS_FINAL, A_WCLS,
       A_QNORM, A_KNORM, A_RMS_ATT_POST, A_RMS_FFN_POST, A_N };   /* the last four: Gemma 3's */

/* Which model array a tensor name fills and where: returns its A_ index and
 * sets *at (the offset in floats into that array) and the expected dims
 * (ne0 = the contiguous "in" dimension, ne1 = rows); -1 if the name is not
 * used. */
static int destination(const lm_model *m, gstr name, uint64_t *at, uint64_t *ne0, uint64_t *ne1)
{
    uint64_t D = (uint64_t)m->dim, F = (uint64_t)m->hidden_dim, V = (uint64_t)m->vocab_size;
    uint64_t qd = (uint64_t)m->n_heads * m->head_dim, kd = (uint64_t)m->n_kv_heads * m->head_dim;
    char buf[96];
    *at = 0;
    if (name.n >= sizeof buf)
        return -1;
    memcpy(buf, name.s, name.n);
    buf[name.n] = 0;
    if (!strcmp(buf, "token_embd.weight")) { *ne0 = D; *ne1 = V; return A_EMBD; }
    if (!strcmp(buf, "output_norm.weight")) { *ne0 = D; *ne1 = 1; return A_RMS_FINAL; }
    if (!strcmp(buf, "output.weight")) { *ne0 = D; *ne1 = V; return A_WCLS; }
    int l, used = 0;
    char part[64];
    if (sscanf(buf, "blk.%d.%63s%n", &l, part, &used) != 2 || (size_t)used != strlen(buf)
        || l < 0 || l >= m->n_layers)
        return -1;
    uint64_t L = (uint64_t)l;
    if (!strcmp(part, "attn_norm.weight")) { *ne0 = D; *ne1 = 1; *at = L * D; return A_RMS_ATT; }
    if (!strcmp(part, "ffn_norm.weight")) { *ne0 = D; *ne1 = 1; *at = L * D; return A_RMS_FFN; }
    if (!strcmp(part, "attn_q.weight")) { *ne0 = D; *ne1 = qd; *at = L * qd * D; return A_WQ; }
    if (!strcmp(part, "attn_k.weight")) { *ne0 = D; *ne1 = kd; *at = L * kd * D; return A_WK; }
    if (!strcmp(part, "attn_v.weight")) { *ne0 = D; *ne1 = kd; *at = L * kd * D; return A_WV; }
    if (!strcmp(part, "attn_output.weight")) { *ne0 = qd; *ne1 = D; *at = L * D * qd; return A_WO; }
    if (!strcmp(part, "ffn_gate.weight")) { *ne0 = D; *ne1 = F; *at = L * F * D; return A_W1; }
    if (!strcmp(part, "ffn_down.weight")) { *ne0 = F; *ne1 = D; *at = L * D * F; return A_W2; }
    if (!strcmp(part, "ffn_up.weight")) { *ne0 = D; *ne1 = F; *at = L * F * D; return A_W3; }
    if (m->arch != LM_ARCH_GEMMA3)
        return -1;
    uint64_t hd = (uint64_t)m->head_dim;
    if (!strcmp(part, "attn_q_norm.weight")) { *ne0 = hd; *ne1 = 1; *at = L * hd; return A_QNORM; }
    if (!strcmp(part, "attn_k_norm.weight")) { *ne0 = hd; *ne1 = 1; *at = L * hd; return A_KNORM; }
    if (!strcmp(part, "post_attention_norm.weight")) { *ne0 = D; *ne1 = 1; *at = L * D; return A_RMS_ATT_POST; }
    if (!strcmp(part, "post_ffw_norm.weight")) { *ne0 = D; *ne1 = 1; *at = L * D; return A_RMS_FFN_POST; }
    return -1;
}

int lm_model_load_gguf(lm_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    unsigned char *data = NULL;
    size_t size = 0;
    int status = lm_read_file(path, &data, &size);
    if (status != KVR_OK)
        return status;
    reader r = {data, size, 0, path, KVR_OK};
    tensor_info *ti = NULL;
    float *weights = NULL;
    const unsigned char *magic = take(&r, 4, "file shorter than the GGUF magic");
    if (magic && memcmp(magic, "GGUF", 4))
        bad(&r, "no GGUF magic");
    uint32_t version = (uint32_t)get_u(&r, 4, "truncated header");
    if (r.status == KVR_OK && version != 2 && version != 3)
        bad(&r, "GGUF version is not 2 or 3");
    uint64_t n_tensors = get_u(&r, 8, "truncated header"), n_kv = get_u(&r, 8, "truncated header");
    /* every tensor info takes >= 24 bytes, every key/value >= 13 */
    if (r.status == KVR_OK && (n_tensors > size / 24 || n_kv > size / 13))
        bad(&r, "tensor or metadata count larger than the file can hold");

    /* metadata: the architecture's keys are "<arch>.<name>"; a key of either
     * family is matched by its name, and its prefix must be the file's
     * general.architecture (checked below) */
    gstr arch = {NULL, 0}, pre = {NULL, 0}, tmodel = {NULL, 0};
    enum { NK = 24 };
    double num[NK];
    int have[NK] = {0};
    static const char *const keys[NK] = {
        /* 0-6: required */
        ".embedding_length", ".feed_forward_length", ".block_count",
        ".attention.head_count", ".attention.head_count_kv", ".vocab_size",
        ".context_length", ".attention.layer_norm_rms_epsilon", ".rope.freq_base",
        ".rope.dimension_count", "general.alignment", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", ".attention.key_length", ".attention.value_length",
        ".attention.sliding_window", ".attention.sliding_window_pattern", ".rope.freq_base_swa",
        ".final_logit_softcapping", "tokenizer.ggml.add_bos_token", NULL, NULL, NULL, NULL,
    };
    static const char *const archs[] = {"llama", "gemma3"};
    int key_arch = -1;      /* the family whose prefix the architecture keys carried */
    uint64_t tokens_at = 0, n_tokens = 0, merges_at = 0, n_merges = 0;
    uint64_t scores_at = 0, n_scores = 0, types_at = 0, n_types = 0;
    uint32_t types_et = 0;
    for (uint64_t i = 0; i < n_kv && r.status == KVR_OK; i++) {
        gstr key = get_str(&r, "truncated metadata key");
        uint32_t type = (uint32_t)get_u(&r, 4, "truncated metadata type");
        if (r.status != KVR_OK)
            break;
        int which = -1, which_arch = -1;
        for (int k = 0; keys[k]; k++) {
            if (keys[k][0] != '.') {
                if (str_is(key, keys[k])) which = k;
                continue;
            }
            size_t kl = strlen(keys[k]);
            for (int a2 = 0; a2 < 2; a2++) {
                size_t al = strlen(archs[a2]);
                if (key.n == al + kl && !memcmp(key.s, archs[a2], al) && !memcmp(key.s + al, keys[k], kl)) {
                    which = k;
                    which_arch = a2;
                }
            }
        }
        if (which >= 0) {
            if (!scalar_size(type) || (type == G_BOOL && which != 19)) {
                bad(&r, "a numeric metadata key holds a non-number");
                break;
            }
            if (which_arch >= 0) {
                if (key_arch >= 0 && key_arch != which_arch) {
                    bad(&r, "metadata keys of two architectures");
                    break;
                }
                key_arch = which_arch;
            }
            num[which] = get_number(&r, type);
            have[which] = 1;
        } else if (str_is(key, "general.architecture") && type == G_STRING) {
            arch = get_str(&r, "truncated architecture");
        } else if (str_is(key, "tokenizer.ggml.pre") && type == G_STRING) {
            pre = get_str(&r, "truncated tokenizer.ggml.pre");
        } else if (str_is(key, "tokenizer.ggml.model") && type == G_STRING) {
            tmodel = get_str(&r, "truncated tokenizer.ggml.model");
        } else if ((str_is(key, "tokenizer.ggml.tokens") || str_is(key, "tokenizer.ggml.merges"))
                   && type == G_ARRAY) {
            uint64_t at = r.pos;
            uint32_t et = (uint32_t)get_u(&r, 4, "truncated array");
            uint64_t n = get_u(&r, 8, "truncated array");
            if (et != G_STRING) { bad(&r, "tokenizer array is not of strings"); break; }
            if (str_is(key, "tokenizer.ggml.tokens")) { tokens_at = at + 12; n_tokens = n; }
            else { merges_at = at + 12; n_merges = n; }
            for (uint64_t j = 0; j < n && r.status == KVR_OK; j++)
                get_str(&r, "truncated tokenizer string");
        } else if ((str_is(key, "tokenizer.ggml.scores") || str_is(key, "tokenizer.ggml.token_type"))
                   && type == G_ARRAY) {
            int is_scores = str_is(key, "tokenizer.ggml.scores");
            uint32_t et = (uint32_t)get_u(&r, 4, "truncated array");
            uint64_t n = get_u(&r, 8, "truncated array");
            if (r.status == KVR_OK && (is_scores ? et != G_F32 : (et != G_I32 && et != G_U32))) {
                bad(&r, is_scores ? "tokenizer.ggml.scores is not of float32" : "tokenizer.ggml.token_type is not of int32");
                break;
            }
            if (r.status == KVR_OK && n > (r.size - r.pos) / 4) { bad(&r, "array longer than the file"); break; }
            if (is_scores) { scores_at = r.pos; n_scores = n; }
            else { types_at = r.pos; n_types = n; types_et = et; }
            take(&r, n * 4, "truncated array");
        } else {
            skip_value(&r, type, 0);
        }
    }
    int family = str_is(arch, "llama") ? LM_ARCH_LLAMA : str_is(arch, "gemma3") ? LM_ARCH_GEMMA3 : -1;
    if (r.status == KVR_OK && family < 0)
        bad(&r, "general.architecture is not \"llama\" or \"gemma3\"");
    if (r.status == KVR_OK && key_arch >= 0 && key_arch != family)
        r.status = lm_model_fail(KVR_EFORMAT, "%s: the metadata keys are %s's, the architecture is %.*s", path,
                                  archs[key_arch], (int)arch.n, arch.s);
    for (int k = 0; k < 7 && r.status == KVR_OK; k++)
        if (k != 5 && !have[k])
            r.status = lm_model_fail(KVR_EFORMAT, "%s: metadata key %s%s is missing", path,
                                      family >= 0 ? archs[family] : "", keys[k]);
    if (r.status != KVR_OK)
        goto fail;
    /* integers in range before conversion; lm_model_check bounds them */
    for (int k = 0; k < 7; k++)
        if (have[k] && !(num[k] >= 0.0 && num[k] <= 1e9 && num[k] == floor(num[k]))) {
            r.status = lm_model_fail(KVR_EFORMAT, "%s: %s%s = %g is not a count", path, archs[family], keys[k], num[k]);
            goto fail;
        }
    m->arch = family;
    m->dim = (int)num[0];
    m->hidden_dim = (int)num[1];
    m->n_layers = (int)num[2];
    m->n_heads = (int)num[3];
    m->n_kv_heads = (int)num[4];
    m->vocab_size = have[5] ? (int)num[5] : (int)(n_tokens < 1u << 30 ? n_tokens : 0);
    m->seq_len = (int)num[6];
    m->head_dim = have[13] && num[13] >= 1 && num[13] <= 4096 ? (int)num[13]
                : (m->n_heads > 0 ? m->dim / m->n_heads : 0);
    m->rms_eps = have[7] ? (float)num[7] : 1e-5f;
    m->rope_base = have[8] ? (float)num[8] : 10000.0f;
    m->rope_dims = have[9] && num[9] >= 0 && num[9] <= 4096 ? (int)num[9] : m->head_dim;
    m->bos = have[11] && num[11] >= 0 && num[11] < 1e9 ? (int)num[11] : 1;
    m->eos = have[12] && num[12] >= 0 && num[12] < 1e9 ? (int)num[12] : -1;
    m->add_bos = have[19] && num[19] != 0.0;
    m->embed_scale = 1.0f;
    m->attn_scale = m->head_dim > 0 ? 1.0f / sqrtf((float)m->head_dim) : 0.0f;
    if (have[14] && num[14] != (double)m->head_dim) {
        r.status = lm_model_fail(KVR_EFORMAT, "%s: value_length %g differs from key_length %d", path, num[14], m->head_dim);
        goto fail;
    }
    if (family == LM_ARCH_GEMMA3) {
        /* Gemma 3 (doc/model.md §9): local layers with a sliding window, every
         * sixth layer global unless the file says otherwise, local RoPE base
         * 10000, GeLU-gated feed-forward, sqrt(dim) embedding scale, NeoX RoPE */
        m->window = have[15] && num[15] >= 0 && num[15] <= (double)(1 << 24) ? (int)num[15] : 0;
        m->swa_pattern = have[16] && num[16] >= 0 && num[16] <= 1024 ? (int)num[16] : 6;
        m->rope_base_local = have[17] ? (float)num[17] : 10000.0f;
        m->softcap = have[18] ? (float)num[18] : 0.0f;
        m->rope_neox = 1;
        m->gelu = 1;
        m->embed_scale = sqrtf((float)m->dim);
        if (m->window == 0) m->swa_pattern = 0;
    }
    if (pre.s && pre.n < sizeof m->tok_pre) {   /* a longer name is no name we know */
        memcpy(m->tok_pre, pre.s, pre.n);
        m->tok_pre[pre.n] = '\0';
    } else if (pre.s) {
        snprintf(m->tok_pre, sizeof m->tok_pre, "%.*s...", (int)sizeof m->tok_pre - 4, pre.s);
    }
    if (tmodel.s && tmodel.n < sizeof m->tok_model) {
        memcpy(m->tok_model, tmodel.s, tmodel.n);
        m->tok_model[tmodel.n] = '\0';
    } else if (tmodel.s) {
        snprintf(m->tok_model, sizeof m->tok_model, "?");
    }
    if ((status = lm_model_check(m, path)) != KVR_OK) {
        r.status = status;
        goto fail;
    }
    if (n_tokens && n_tokens != (uint64_t)m->vocab_size) {
        r.status = lm_model_fail(KVR_EFORMAT, "%s: %llu tokenizer tokens for vocab_size %d", path,
                                  (unsigned long long)n_tokens, m->vocab_size);
        goto fail;
    }
    if ((n_scores && n_scores != n_tokens) || (n_types && n_types != n_tokens)) {
        r.status = lm_model_fail(KVR_EFORMAT, "%s: %llu scores and %llu token types for %llu tokens", path,
                                  (unsigned long long)n_scores, (unsigned long long)n_types, (unsigned long long)n_tokens);
        goto fail;
    }
    uint64_t align = have[10] ? (uint64_t)num[10] : 32;
    if (!(align >= 1 && align <= 65536 && (align & (align - 1)) == 0)) {
        r.status = lm_model_fail(KVR_EFORMAT, "%s: general.alignment = %g is not a power of two", path, num[10]);
        goto fail;
    }

    /* tensor infos */
    ti = lm_alloc(n_tensors, sizeof *ti);
    if (!ti) {
        r.status = lm_model_fail(KVR_ENOMEM, "%s: %llu tensors: out of memory", path, (unsigned long long)n_tensors);
        goto fail;
    }
    for (uint64_t i = 0; i < n_tensors && r.status == KVR_OK; i++) {
        tensor_info *t = &ti[i];
        t->name = get_str(&r, "truncated tensor name");
        t->n_dims = (uint32_t)get_u(&r, 4, "truncated tensor info");
        if (r.status == KVR_OK && (t->n_dims < 1 || t->n_dims > 4)) { bad(&r, "tensor with 0 or more than 4 dimensions"); break; }
        t->nelem = 1;
        for (uint32_t d = 0; d < t->n_dims && r.status == KVR_OK; d++) {
            t->dims[d] = get_u(&r, 8, "truncated tensor dims");
            if (t->dims[d] == 0 || t->dims[d] > (UINT64_C(1) << 40) / t->nelem) { bad(&r, "tensor dimension 0 or too large"); break; }
            t->nelem *= t->dims[d];
        }
        t->type = (uint32_t)get_u(&r, 4, "truncated tensor info");
        t->offset = get_u(&r, 8, "truncated tensor info");
        uint64_t be, bb;
        if (r.status != KVR_OK)
            break;
        if (!lm_type_block(t->type, &be, &bb)) {
            r.status = lm_model_fail(KVR_EFORMAT, "%s: tensor %.*s has type %u, not one of " LM_TYPE_NAMES,
                                      path, (int)(t->name.n < 80 ? t->name.n : 80), t->name.s, t->type);
            break;
        }
        if (t->dims[0] % be) { bad(&r, "tensor row not a whole number of blocks"); break; }
        t->nbytes = t->nelem / be * bb;
        if (t->offset % align) { bad(&r, "tensor offset not aligned"); break; }
    }
    if (r.status != KVR_OK)
        goto fail;
    for (uint64_t i = 0; i < n_tensors; i++)
        for (uint64_t j = 0; j < i; j++)
            if (ti[i].name.n == ti[j].name.n && !memcmp(ti[i].name.s, ti[j].name.s, ti[i].name.n)) {
                r.status = lm_model_fail(KVR_EFORMAT, "%s: tensor %.*s appears twice", path,
                                          (int)(ti[i].name.n < 80 ? ti[i].name.n : 80), ti[i].name.s);
                goto fail;
            }
    uint64_t data_start = (r.pos + align - 1) / align * align;
    for (uint64_t i = 0; i < n_tensors; i++)
        if (data_start > size || ti[i].offset > size - data_start || ti[i].nbytes > size - data_start - ti[i].offset) {
            r.status = lm_model_fail(KVR_EFORMAT, "%s: tensor %.*s (offset %llu, %llu bytes) lies past the end of the file (%llu bytes)",
                                      path, (int)(ti[i].name.n < 80 ? ti[i].name.n : 80), ti[i].name.s,
                                      (unsigned long long)ti[i].offset, (unsigned long long)ti[i].nbytes,
                                      (unsigned long long)size);
            goto fail;
        }

    /* one float32 block for every weight; before it is allocated, the
     * tensors must fill it exactly, so its size is bounded by the file's
     * (at most 128 bytes of floats for the 18 bytes of a Q4_0 block) */
    uint64_t D = m->dim, F = m->hidden_dim, L = m->n_layers, V = m->vocab_size;
    uint64_t qd = (uint64_t)m->n_heads * m->head_dim, kd = (uint64_t)m->n_kv_heads * m->head_dim;
    int has_output = 0;
    for (uint64_t i = 0; i < n_tensors; i++)
        has_output |= str_is(ti[i].name, "output.weight");
    uint64_t hd = (uint64_t)m->head_dim, G = m->arch == LM_ARCH_GEMMA3;
    const uint64_t sizes[A_N] = {V * D, L * D, L * qd * D, L * kd * D, L * kd * D, L * D * qd, L * D,
                                 L * F * D, L * D * F, L * F * D, D, has_output ? V * D : 0,
                                 G * L * hd, G * L * hd, G * L * D, G * L * D};
    uint64_t total = 0, filled = 0;
    for (size_t i = 0; i < A_N; i++)
        total += sizes[i];
    for (uint64_t i = 0; i < n_tensors; i++) {   /* every expected tensor in its shape, counted */
        tensor_info *t = &ti[i];
        uint64_t at, ne0, ne1;
        if (destination(m, t->name, &at, &ne0, &ne1) < 0)
            continue;
        uint64_t ne1_got = t->n_dims >= 2 ? t->dims[1] : 1;
        int extra = t->n_dims > 2 && t->nelem != t->dims[0] * t->dims[1];
        if (t->dims[0] != ne0 || ne1_got != ne1 || extra) {
            r.status = lm_model_fail(KVR_EFORMAT, "%s: tensor %.*s has shape [%llu, %llu], expected [%llu, %llu]",
                                      path, (int)t->name.n, t->name.s, (unsigned long long)t->dims[0],
                                      (unsigned long long)ne1_got, (unsigned long long)ne0, (unsigned long long)ne1);
            goto fail;
        }
        filled += t->nelem;
    }
    if (filled != total) {   /* names are unique, so filled == total means each once */
        r.status = lm_model_fail(KVR_EFORMAT, "%s: the tensors fill %llu of the %llu weights the shape needs (missing tensors)",
                                  path, (unsigned long long)filled, (unsigned long long)total);
        goto fail;
    }
    weights = lm_alloc(total, sizeof(float));
    if (!weights) {
        r.status = lm_model_fail(KVR_ENOMEM, "%s: %llu weights: out of memory", path, (unsigned long long)total);
        goto fail;
    }
    float *w = weights, *base[A_N];
    for (size_t i = 0; i < A_N; i++) {
        base[i] = w;
        w += sizes[i];
    }
    m->token_embedding = base[A_EMBD];
    m->rms_att = base[A_RMS_ATT];
    m->wq = base[A_WQ];
    m->wk = base[A_WK];
    m->wv = base[A_WV];
    m->wo = base[A_WO];
    m->rms_ffn = base[A_RMS_FFN];
    m->w1 = base[A_W1];
    m->w2 = base[A_W2];
    m->w3 = base[A_W3];
    m->rms_final = base[A_RMS_FINAL];
    m->wcls = has_output ? base[A_WCLS] : m->token_embedding;
    m->q_norm = G ? base[A_QNORM] : NULL;           /* Gemma 3 only */
    m->k_norm = G ? base[A_KNORM] : NULL;
    m->rms_att_post = G ? base[A_RMS_ATT_POST] : NULL;
    m->rms_ffn_post = G ? base[A_RMS_FFN_POST] : NULL;
    for (uint64_t i = 0; i < n_tensors; i++) {
        tensor_info *t = &ti[i];
        uint64_t at, ne0, ne1;
        int a = destination(m, t->name, &at, &ne0, &ne1);
        if (a < 0)
            continue;
        float *out = base[a] + at;
        lm_dequantise(t->type, data + data_start + t->offset, t->nelem, out);
        for (uint64_t j = 0; j < t->nelem; j++)
            if (!isfinite(out[j])) {
                r.status = lm_model_fail(KVR_EFORMAT, "%s: tensor %.*s element %llu is not finite",
                                          path, (int)t->name.n, t->name.s, (unsigned long long)j);
                goto fail;
            }
    }
    m->owned[m->n_owned++] = weights;
    weights = NULL;

    /* tokenizer */
    if (n_tokens) {
        r.pos = tokens_at;
        m->tokens = copy_strings(&r, n_tokens, m);
        if (m->tokens && n_merges) {
            r.pos = merges_at;
            m->merges = copy_strings(&r, n_merges, m);
            m->n_merges = m->merges ? (int)n_merges : 0;
        }
        if (r.status != KVR_OK)
            goto fail;
        /* SentencePiece scores and token types, when present */
        float *sc = n_scores ? malloc(sizeof(float) * n_scores) : NULL;
        int *ty = n_types ? malloc(sizeof(int) * n_types) : NULL;
        if ((n_scores && !sc) || (n_types && !ty)) {
            free(sc); free(ty);
            r.status = lm_model_fail(KVR_ENOMEM, "%s: token scores: out of memory", path);
            goto fail;
        }
        for (uint64_t j = 0; j < n_scores; j++) {
            uint32_t bits = (uint32_t)data[scores_at + 4 * j] | (uint32_t)data[scores_at + 4 * j + 1] << 8
                          | (uint32_t)data[scores_at + 4 * j + 2] << 16 | (uint32_t)data[scores_at + 4 * j + 3] << 24;
            memcpy(sc + j, &bits, 4);
        }
        for (uint64_t j = 0; j < n_types; j++) {
            uint32_t v = (uint32_t)data[types_at + 4 * j] | (uint32_t)data[types_at + 4 * j + 1] << 8
                       | (uint32_t)data[types_at + 4 * j + 2] << 16 | (uint32_t)data[types_at + 4 * j + 3] << 24;
            ty[j] = types_et == G_I32 ? (int)(int32_t)v : (int)(v > 1000 ? 1000 : v);
        }
        if (sc) m->owned[m->n_owned++] = m->tok_scores = sc;
        if (ty) m->owned[m->n_owned++] = m->tok_type = ty;
    }
    free(ti);
    free(data);
    return KVR_OK;
fail:
    status = r.status != KVR_OK ? r.status : KVR_EFORMAT;
    free(ti);
    free(weights);
    free(data);
    lm_model_free(m);
    return status;
}
