/* gguf.c: reading a llama-architecture GGUF file (doc/model.md §2.2).
 *
 * The subset read: GGUF version 2 or 3, little-endian; metadata values of
 * every type (scalars, strings, arrays, arrays of arrays) are parsed and
 * bounds-checked, the ones the model needs are used; tensors of type F32,
 * F16, Q4_0, Q4_1 and Q8_0 are dequantised to float32 at load.  The file is
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

/* metadata value types */
enum {
    G_U8 = 0, G_I8 = 1, G_U16 = 2, G_I16 = 3, G_U32 = 4, G_I32 = 5, G_F32 = 6,
    G_BOOL = 7, G_STRING = 8, G_ARRAY = 9, G_U64 = 10, G_I64 = 11, G_F64 = 12
};
/* tensor types */
enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q8_0 = 8 };

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

/* IEEE half to float. */
static float half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else {   /* subnormal: m * 2^-24 */
            float f = ldexpf((float)m, -24);
            return sign ? -f : f;
        }
    } else if (e == 31) {
        bits = sign | 0x7F800000u | (m << 13);
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* Block size (elements) and bytes per block of a tensor type; 0 if the
 * type is not supported. */
static int type_block(uint32_t type, uint64_t *elems, uint64_t *bytes)
{
    switch (type) {
    case T_F32: *elems = 1; *bytes = 4; return 1;
    case T_F16: *elems = 1; *bytes = 2; return 1;
    case T_Q4_0: *elems = 32; *bytes = 18; return 1;   /* f16 d, 16 bytes of nibbles */
    case T_Q4_1: *elems = 32; *bytes = 20; return 1;   /* f16 d, f16 m, 16 bytes of nibbles */
    case T_Q8_0: *elems = 32; *bytes = 34; return 1;   /* f16 d, 32 int8 */
    default: return 0;
    }
}

/* Dequantise n elements (a multiple of the block size) of type `type`.
 *   src: the tensor's bytes, out: [n] */
static void dequantise(uint32_t type, const unsigned char *src, uint64_t n, float *out)
{
    switch (type) {
    case T_F32:
        memcpy(out, src, n * 4);
        break;
    case T_F16:
        for (uint64_t i = 0; i < n; i++)
            out[i] = half(le16(src + 2 * i));
        break;
    case T_Q4_0:   /* x = (nibble - 8) * d; low nibbles are elements 0..15, high 16..31 */
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * 18;
            float d = half(le16(p));
            for (int j = 0; j < 16; j++) {
                out[b * 32 + j] = (float)((p[2 + j] & 15) - 8) * d;
                out[b * 32 + j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case T_Q4_1:   /* x = nibble * d + m */
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * 20;
            float d = half(le16(p)), m = half(le16(p + 2));
            for (int j = 0; j < 16; j++) {
                out[b * 32 + j] = (float)(p[4 + j] & 15) * d + m;
                out[b * 32 + j + 16] = (float)(p[4 + j] >> 4) * d + m;
            }
        }
        break;
    case T_Q8_0:   /* x = q * d */
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * 34;
            float d = half(le16(p));
            for (int j = 0; j < 32; j++)
                out[b * 32 + j] = (float)(int8_t)p[2 + j] * d;
        }
        break;
    default:
        break;
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
enum { A_EMBD, A_RMS_ATT, A_WQ, A_WK, A_WV, A_WO, A_RMS_FFN, A_W1, A_W2, A_W3, A_RMS_FINAL, A_WCLS, A_N };

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

    /* metadata */
    gstr arch = {NULL, 0}, pre = {NULL, 0};
    double num[16];
    int have[16] = {0};
    static const char *const keys[16] = {
        "llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.vocab_size",
        "llama.context_length", "llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base",
        "llama.rope.dimension_count", "general.alignment", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", "llama.attention.key_length", NULL, NULL,
    };
    uint64_t tokens_at = 0, n_tokens = 0, merges_at = 0, n_merges = 0;
    for (uint64_t i = 0; i < n_kv && r.status == KVR_OK; i++) {
        gstr key = get_str(&r, "truncated metadata key");
        uint32_t type = (uint32_t)get_u(&r, 4, "truncated metadata type");
        if (r.status != KVR_OK)
            break;
        int which = -1;
        for (int k = 0; keys[k]; k++)
            if (str_is(key, keys[k])) which = k;
        if (which >= 0) {
            if (!scalar_size(type) || type == G_BOOL) {
                bad(&r, "a numeric metadata key holds a non-number");
                break;
            }
            num[which] = get_number(&r, type);
            have[which] = 1;
        } else if (str_is(key, "general.architecture") && type == G_STRING) {
            arch = get_str(&r, "truncated architecture");
        } else if (str_is(key, "tokenizer.ggml.pre") && type == G_STRING) {
            pre = get_str(&r, "truncated tokenizer.ggml.pre");
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
        } else {
            skip_value(&r, type, 0);
        }
    }
    if (r.status == KVR_OK && !str_is(arch, "llama"))
        bad(&r, "general.architecture is not \"llama\"");
    for (int k = 0; k < 7 && r.status == KVR_OK; k++)
        if (k != 5 && !have[k])
            r.status = lm_model_fail(KVR_EFORMAT, "%s: metadata key %s is missing", path, keys[k]);
    if (r.status != KVR_OK)
        goto fail;
    /* integers in range before conversion; lm_model_check bounds them */
    for (int k = 0; k < 7; k++)
        if (have[k] && !(num[k] >= 0.0 && num[k] <= 1e9 && num[k] == floor(num[k]))) {
            r.status = lm_model_fail(KVR_EFORMAT, "%s: %s = %g is not a count", path, keys[k], num[k]);
            goto fail;
        }
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
    if (pre.s && pre.n < sizeof m->tok_pre) {   /* a longer name is no name we know */
        memcpy(m->tok_pre, pre.s, pre.n);
        m->tok_pre[pre.n] = '\0';
    } else if (pre.s) {
        snprintf(m->tok_pre, sizeof m->tok_pre, "%.*s...", (int)sizeof m->tok_pre - 4, pre.s);
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
        if (!type_block(t->type, &be, &bb)) {
            r.status = lm_model_fail(KVR_EFORMAT, "%s: tensor %.*s has type %u, not one of F32, F16, Q4_0, Q4_1, Q8_0",
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
    const uint64_t sizes[A_N] = {V * D, L * D, L * qd * D, L * kd * D, L * kd * D, L * D * qd, L * D,
                                 L * F * D, L * D * F, L * F * D, D, has_output ? V * D : 0};
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
    for (uint64_t i = 0; i < n_tensors; i++) {
        tensor_info *t = &ti[i];
        uint64_t at, ne0, ne1;
        int a = destination(m, t->name, &at, &ne0, &ne1);
        if (a < 0)
            continue;
        float *out = base[a] + at;
        dequantise(t->type, data + data_start + t->offset, t->nelem, out);
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
