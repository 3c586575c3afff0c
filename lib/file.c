/* file.c: saving and loading a model cache (spec §16, doc/files.md).
 *
 * A cache file is a 32-byte header followed by the payload:
 *
 *   header   magic "KVRCACHE" (8 bytes), format version (u32), endianness
 *            marker 0x01020304 (u32), payload length (u64), CRC-32 of the
 *            payload (u32), reserved (u32, zero)
 *   payload  the dimensions, the full configuration, then every head cache
 *            (layer-major, then kv_head) with its scalars and every array of
 *            its parts at full capacity
 *
 * Every number is little-endian whatever the machine; floats are written as
 * their bit patterns, so a round trip is bit-identical.  The layout of the
 * payload is written once, in xfer_config() and xfer_head(), and walked in
 * three modes: counting bytes, writing and reading.
 *
 * Loading is a parser of untrusted input: every field is checked (the
 * configuration by kvr_config_check, the dimensions by kvr_cache_create's
 * rules, the payload length against what the configuration implies before
 * anything is allocated, every stored value finite, each head's invariants
 * by ref_head_check) before a cache is handed out.  On failure nothing is
 * left allocated and *out is NULL. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"
#include "../ref/ref.h"

#define FILE_MAGIC "KVRCACHE"
#define FILE_VERSION_ROTATE 6u  /* written when the tier codes in the Walsh-Hadamard basis (spec §19.13) */
#define FILE_VERSION_BALANCE 5u /* written when the tier has the channel balancer (spec §19.12) */
#define FILE_VERSION_TIER 4u /* written when the configuration has a quantized tier (spec §19) */
#define FILE_VERSION 3u      /* written when the configuration quantizes (spec §18) */
#define FILE_VERSION_OLD 2u  /* written otherwise, and read: the layout before spec §18 */
#define FILE_ENDIAN 0x01020304u
#define HEADER_BYTES 32

/* ---- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) -------------- */

/* The CRC-32 of n bytes, as zlib's crc32(0, p, n) computes it: initial value
 * 0xFFFFFFFF, reflected, final XOR 0xFFFFFFFF.  One nibble at a time from a
 * 16-entry table (check value: "123456789" -> 0xCBF43926). */
static uint32_t crc32_of(const unsigned char *p /*[n]*/, size_t n)
{
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
        0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15];
        crc = (crc >> 4) ^ nibble[crc & 15];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* ---- little-endian walking --------------------------------------------- */

enum { IO_COUNT, IO_WRITE, IO_READ };

typedef struct {
    int mode;
    unsigned char *buf;   /* [len]: written (IO_WRITE) or read (IO_READ) */
    size_t len, pos;      /* IO_COUNT: pos counts bytes; overflow sets bad */
    int bad;              /* 1: count overflowed or a read ran past the end */
} io_t;

static int host_is_little(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Transfer count elements of size bytes each (1, 2, 4 or 8) between data
 * ([count] native) and the stream (little-endian). */
static void xfer(io_t *io, void *data, size_t count, size_t size)
{
    if (io->bad)
        return;
    if (count > SIZE_MAX / size || io->pos > SIZE_MAX - count * size) {
        io->bad = 1;
        return;
    }
    size_t bytes = count * size;
    if (io->mode == IO_COUNT) {
        io->pos += bytes;
        return;
    }
    if (io->pos + bytes > io->len) {
        io->bad = 1;
        return;
    }
    unsigned char *s = io->buf + io->pos, *d = data;
    if (host_is_little() || size == 1) {
        if (io->mode == IO_WRITE) memcpy(s, d, bytes); else memcpy(d, s, bytes);
    } else {
        for (size_t e = 0; e < count; e++)
            for (size_t b = 0; b < size; b++) {
                if (io->mode == IO_WRITE) s[e * size + b] = d[e * size + size - 1 - b];
                else d[e * size + size - 1 - b] = s[e * size + b];
            }
    }
    io->pos += bytes;
}

static void xfer_i32(io_t *io, int *x)
{
    int32_t v = (int32_t)*x;
    xfer(io, &v, 1, 4);
    *x = (int)v;
}

/* The dimensions and the configuration: 4 + 13 int32, 1 uint64, 2 float64,
 * then (version 2) 1 int32 and 2 float64, then (version 3) 4 int32: store,
 * kivi_bits, kivi_group, kivi_tokens.  A version 2 file has none of the
 * latter: they stay 0 (store elem, no KIVI). */
typedef struct {
    int n_layers, n_kv_heads, n_q_heads, head_dim;
    kvr_config cfg;
} file_dims;

static void xfer_config(io_t *io, file_dims *f, uint32_t version)
{
    kvr_config *c = &f->cfg;
    int rows = (int)c->rows, imp = (int)c->importance, pool = (int)c->pool, elem = (int)c->elem;
    int vague = (int)c->vague, store = (int)c->store;
    xfer_i32(io, &f->n_layers);
    xfer_i32(io, &f->n_kv_heads);
    xfer_i32(io, &f->n_q_heads);
    xfer_i32(io, &f->head_dim);
    xfer_i32(io, &c->sinks);
    xfer_i32(io, &c->window);
    xfer_i32(io, &c->candidates);
    xfer_i32(io, &c->depth);
    xfer_i32(io, &c->width);
    xfer(io, &c->seed, 1, 8);
    xfer_i32(io, &rows);
    xfer_i32(io, &c->centre);
    xfer_i32(io, &c->shrink);
    xfer_i32(io, &imp);
    xfer_i32(io, &c->obs_window);
    xfer_i32(io, &c->pool_kernel);
    xfer_i32(io, &pool);
    xfer_i32(io, &elem);
    xfer(io, &c->sketch_share, 1, 8);
    xfer(io, &c->recent_share, 1, 8);
    xfer_i32(io, &vague);
    xfer(io, &c->var_cap, 1, 8);
    xfer(io, &c->revive, 1, 8);
    if (version >= 3) {
        xfer_i32(io, &store);
        xfer_i32(io, &c->kivi_bits);
        xfer_i32(io, &c->kivi_group);
        xfer_i32(io, &c->kivi_tokens);
    }
    if (version >= 4) {                           /* spec §19.1 */
        xfer_i32(io, &c->tier_bits);
        xfer_i32(io, &c->tier_tokens);
        xfer(io, &c->tier_share, 1, 8);
        xfer(io, &c->tier_promote, 1, 8);
    }
    if (version >= 5)                             /* spec §19.12 */
        xfer_i32(io, &c->tier_balance);
    if (version >= 6)                             /* spec §19.13 */
        xfer_i32(io, &c->tier_rotate);
    if (version < 4) {                                      /* versions 2 and 3: no tier, the defaults */
        c->tier_share = 0.5;
    }
    c->store = (kvr_store)store;
    c->rows = (kvr_rows)rows;
    c->vague = (kvr_vague)vague;
    c->importance = (kvr_importance)imp;
    c->pool = (kvr_pool)pool;
    c->elem = (kvr_elem)elem;
}

/* One head cache: n (i64), n_cand (i32), n_vague (i64), layer and kv_head
 * (u32), then the arrays of the table (ref_head_arrays) in its order at full
 * capacity, each present exactly when the configuration has it (spec §16).
 * In IO_COUNT mode h's arrays may be NULL. */
static void xfer_head(io_t *io, ref_head *h)
{
    int64_t n = h->n, n_vague = h->n_vague;
    xfer(io, &n, 1, 8);
    xfer_i32(io, &h->n_cand);
    xfer(io, &n_vague, 1, 8);
    if (ref_cfg_has_tier(&h->cfg))                /* spec §19.2: the tier's count, with a tier only */
        xfer_i32(io, &h->n_tier);
    xfer(io, &h->layer, 1, 4);
    xfer(io, &h->kv_head, 1, 4);
    h->n = (long)n;
    h->n_vague = (long)n_vague;
    if (io->bad)
        return;
    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(&h->cfg, h->head_dim, a);
    for (int i = 0; i < REF_HEAD_N_ARRAYS; i++)
        if (a[i].count > 0)
            xfer(io, *ref_array_slot(h, &a[i]), a[i].count, a[i].elem_size);
}

static void put_u32(unsigned char *p, uint32_t x)
{
    for (int b = 0; b < 4; b++) p[b] = (unsigned char)(x >> (8 * b));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- saving ------------------------------------------------------------ */

/* Serialize c into a new buffer of *len bytes (freed with kvr_buffer_free).
 * On failure (KVR_EINVAL, KVR_ENOMEM) *buf is NULL and *len 0. */
int kvr_cache_save_mem(const kvr_cache *c, void **buf, size_t *len)
{
    static const char fn[] = "kvr_cache_save_mem";
    if (!buf || !len)
        return kvr_fail(KVR_EINVAL, "%s: %s is NULL", fn, !buf ? "buf" : "len");
    *buf = NULL;
    *len = 0;
    int status = kvr_check_cache(c, fn);
    if (status != KVR_OK)
        return status;
    file_dims f = {c->n_layers, c->n_kv_heads, c->n_q_heads, c->head_dim, c->cfg};
    size_t n_heads = (size_t)c->n_layers * c->n_kv_heads;
    /* version 2 when nothing is quantized: such files stay as they were */
    /* version 4 when a tier field is not its default (spec §19.1) */
    uint32_t version = c->cfg.tier_rotate != 0 ? FILE_VERSION_ROTATE
                     : c->cfg.tier_balance != 0 ? FILE_VERSION_BALANCE
                     : c->cfg.tier_bits > 0 || c->cfg.tier_tokens > 0 || c->cfg.tier_share != 0.5
                       || c->cfg.tier_promote != 0.0 ? FILE_VERSION_TIER
                     : c->cfg.store != KVR_STORE_ELEM || c->cfg.kivi_bits > 0 ? FILE_VERSION : FILE_VERSION_OLD;
    io_t io = {IO_COUNT, NULL, 0, 0, 0};
    xfer_config(&io, &f, version);
    for (size_t i = 0; i < n_heads; i++)
        xfer_head(&io, c->heads[i]);
    if (io.bad || io.pos > SIZE_MAX - HEADER_BYTES)
        return kvr_fail(KVR_ENOMEM, "%s: the cache does not fit in memory as one buffer", fn);
    size_t payload = io.pos;
    unsigned char *out = kvr_malloc(HEADER_BYTES + payload);
    if (!out)
        return kvr_fail(KVR_ENOMEM, "%s: %zu bytes", fn, HEADER_BYTES + payload);
    io = (io_t){IO_WRITE, out + HEADER_BYTES, payload, 0, 0};
    xfer_config(&io, &f, version);
    for (size_t i = 0; i < n_heads; i++) {
        /* xfer_head writes back the scalars it reads; in IO_WRITE mode they
         * are unchanged, but work on a copy so c stays const in fact. */
        ref_head copy = *c->heads[i];
        xfer_head(&io, &copy);
    }
    memcpy(out, FILE_MAGIC, 8);
    put_u32(out + 8, version);
    put_u32(out + 12, FILE_ENDIAN);
    put_u32(out + 16, (uint32_t)((uint64_t)payload & 0xFFFFFFFFu));
    put_u32(out + 20, (uint32_t)((uint64_t)payload >> 32));
    put_u32(out + 24, crc32_of(out + HEADER_BYTES, payload));
    put_u32(out + 28, 0);
    *buf = out;
    *len = HEADER_BYTES + payload;
    return KVR_OK;
}

void kvr_buffer_free(void *buf)
{
    kvr_free(buf);
}

/* Save c to path: written to "path.tmp" then renamed over path, so a failed
 * save leaves any previous file whole.  KVR_EIO names the path. */
int kvr_cache_save(const kvr_cache *c, const char *path)
{
    static const char fn[] = "kvr_cache_save";
    if (!path)
        return kvr_fail(KVR_EINVAL, "%s: path is NULL", fn);
    void *buf;
    size_t len;
    int status = kvr_cache_save_mem(c, &buf, &len);
    if (status != KVR_OK)
        return status;
    size_t plen = strlen(path);
    char *tmp = kvr_malloc(plen + 5);
    if (!tmp) {
        kvr_buffer_free(buf);
        return kvr_fail(KVR_ENOMEM, "%s: %zu bytes for the name", fn, plen + 5);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        status = kvr_fail(KVR_EIO, "%s: cannot create '%s': %s", fn, tmp, strerror(errno));
    } else {
        int ok = fwrite(buf, 1, len, fp) == len;
        int err = errno;
        ok = (fclose(fp) == 0) && ok;
        if (!ok)
            status = kvr_fail(KVR_EIO, "%s: cannot write '%s': %s", fn, tmp, strerror(err ? err : errno));
        else if (rename(tmp, path) != 0)
            status = kvr_fail(KVR_EIO, "%s: cannot rename '%s' to '%s': %s", fn, tmp, path, strerror(errno));
        if (status != KVR_OK)
            remove(tmp);
    }
    kvr_free(tmp);
    kvr_buffer_free(buf);
    return status;
}

/* ---- loading ----------------------------------------------------------- */

/* 1 when the count elements of table entry a at p are finite (always for
 * the int32 arrays). */
static int array_finite(kvr_elem elem, const ref_array *a, const void *p)
{
    switch (a->kind) {
    case REF_KV:
        for (size_t i = 0; i < a->count; i++)
            if (!isfinite(kvr_elem_load(elem, p, i)))
                return 0;
        return 1;
    case REF_SCORE:
    case REF_SKETCH:
        return kvr_all_finite(p, a->count);
    case REF_SUM:
        for (size_t i = 0; i < a->count; i++)
            if (!isfinite(((const double *)p)[i]))
                return 0;
        return 1;
    case REF_QPARAM:                              /* {zero point, scale} pairs: finite, scale >= 0 */
        for (size_t i = 0; i < a->count; i++) {
            uint16_t x = ((const uint16_t *)p)[i];
            if ((x & 0x7C00u) == 0x7C00u || (i % 2 == 1 && (x & 0x8000u)))
                return 0;
        }
        return 1;
    default:
        return 1;
    }
}

/* Check one loaded head beyond ref_head_check: its identity, its scalars and
 * that every stored value is finite.  Returns a failure message or NULL.
 * The kinds are checked in the order of ref_kind (keys and values, scores,
 * sketch sums, running sums), so a file with several faults gets the same
 * message whatever the order of the table. */
static const char *head_problem(const ref_head *h, uint32_t layer, uint32_t kv_head, long layer_n)
{
    static const char *const not_finite[REF_INDEX] = {
        [REF_KV] = "a stored key or value is not finite",
        [REF_SCORE] = "an importance score is not finite",
        [REF_SKETCH] = "a sketch sum is not finite",
        [REF_SUM] = "a running sum is not finite",
        [REF_QPARAM] = "a quantization zero point or scale is not finite (or a scale is negative)",
    };
    if (h->layer != layer || h->kv_head != kv_head)
        return "its layer or kv_head does not match its place in the file";
    if (h->n < 0 || h->n > INT32_MAX)
        return "its length is not in [0, 2^31-1]";
    if (h->n != layer_n)
        return "its length differs from the first head of its layer";
    if (h->n_vague < 0 || h->n_vague > h->n)
        return "its vague count is not in [0, n]";
    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(&h->cfg, h->head_dim, a);
    for (int kind = REF_KV; kind < REF_INDEX; kind++)
        for (int i = 0; i < REF_HEAD_N_ARRAYS; i++)
            if ((int)a[i].kind == kind && a[i].count > 0 && !array_finite(h->cfg.elem, &a[i], ref_array_data(h, &a[i])))
                return not_finite[kind];
    return NULL;
}

/* Check the 32-byte header at buf (len bytes, at least the header when it
 * returns KVR_OK): magic, byte order, version and the reserved field; set
 * *version and *payload, the payload length it announces.  The payload
 * itself is not looked at, so kvr_cache_load can check the header before it
 * reads (or allocates for) the rest. */
static int check_header(const unsigned char *buf /*[len]*/, size_t len, const char *name, uint32_t *version,
                        uint64_t *payload)
{
    if (len < HEADER_BYTES)
        return kvr_fail(KVR_EFORMAT, "%s: truncated: %zu bytes, a cache file has at least %d", name, len,
                        HEADER_BYTES);
    if (memcmp(buf, FILE_MAGIC, 8) != 0)
        return kvr_fail(KVR_EFORMAT, "%s: not a kvreviver cache file (bad magic)", name);
    uint32_t v = get_u32(buf + 8), endian = get_u32(buf + 12);
    if (endian == 0x04030201u)
        return kvr_fail(KVR_EFORMAT, "%s: written in big-endian byte order; this format is little-endian",
                        name);
    if (endian != FILE_ENDIAN)
        return kvr_fail(KVR_EFORMAT, "%s: bad endianness marker 0x%08x", name, (unsigned)endian);
    if (v != FILE_VERSION_ROTATE && v != FILE_VERSION_BALANCE && v != FILE_VERSION_TIER && v != FILE_VERSION
        && v != FILE_VERSION_OLD)
        return kvr_fail(KVR_EFORMAT, "%s: format version %u, this library reads versions %u to %u", name,
                        (unsigned)v, FILE_VERSION_OLD, FILE_VERSION_ROTATE);
    if (get_u32(buf + 28) != 0)
        return kvr_fail(KVR_EFORMAT, "%s: reserved header field is not zero", name);
    *version = v;
    *payload = (uint64_t)get_u32(buf + 16) | (uint64_t)get_u32(buf + 20) << 32;
    return KVR_OK;
}

/* The message for a payload of `have` bytes where the header announces
 * `payload`. */
static int wrong_length(const char *name, uint64_t payload, uint64_t have)
{
    return kvr_fail(KVR_EFORMAT, "%s: %s: the header announces %llu payload bytes, the file has %llu", name,
                    payload > have ? "truncated" : "trailing bytes", (unsigned long long)payload,
                    (unsigned long long)have);
}

/* Parse len bytes at buf into a new cache; `name` (a path or "buffer")
 * starts every message. */
static int load_buffer(kvr_cache **out, const unsigned char *buf /*[len]*/, size_t len, const char *name)
{
    uint32_t version;
    uint64_t payload;
    int status = check_header(buf, len, name, &version, &payload);
    if (status != KVR_OK)
        return status;
    if (payload != len - HEADER_BYTES)
        return wrong_length(name, payload, len - HEADER_BYTES);
    uint32_t crc = crc32_of(buf + HEADER_BYTES, (size_t)payload);
    if (crc != get_u32(buf + 24))
        return kvr_fail(KVR_EFORMAT, "%s: corrupted: payload CRC-32 is 0x%08x, the header says 0x%08x", name,
                        (unsigned)crc, (unsigned)get_u32(buf + 24));

    /* dimensions and configuration */
    io_t io = {IO_READ, (unsigned char *)buf + HEADER_BYTES, (size_t)payload, 0, 0};
    file_dims f;
    memset(&f, 0, sizeof f);
    xfer_config(&io, &f, version);
    if (io.bad)
        return kvr_fail(KVR_EFORMAT, "%s: truncated inside the configuration", name);
    if (f.n_layers < 1 || f.n_layers > 4096 || f.n_kv_heads < 1 || f.n_kv_heads > 4096 ||
        f.n_q_heads < f.n_kv_heads || f.n_q_heads > 65536 || f.n_q_heads % f.n_kv_heads != 0)
        return kvr_fail(KVR_EFORMAT, "%s: absurd dimensions: %d layers, %d kv heads, %d query heads", name,
                        f.n_layers, f.n_kv_heads, f.n_q_heads);
    char why[512];
    status = kvr_config_check(&f.cfg, f.head_dim);
    if (status != KVR_OK) {
        snprintf(why, sizeof why, "%s", kvr_last_error());   /* kvr_fail overwrites it */
        return kvr_fail(KVR_EFORMAT, "%s: bad configuration: %s", name, why);
    }
    /* sketch_share and recent_share are planner knobs, read by kvr_plan
     * only: any value kvr_cache_create accepted is kept as it is. */

    /* The payload must be exactly what the configuration implies, checked
     * before allocating anything, so a forged header cannot make us allocate
     * much more than the file's size. */
    ref_head shape;
    memset(&shape, 0, sizeof shape);
    shape.cfg = f.cfg;
    shape.head_dim = f.head_dim;
    io_t count = {IO_COUNT, NULL, 0, 0, 0};
    xfer_head(&count, &shape);
    size_t n_heads = (size_t)f.n_layers * f.n_kv_heads, per_head = count.pos;
    if (count.bad || per_head > ((size_t)payload - io.pos) / n_heads ||
        per_head * n_heads != (size_t)payload - io.pos)
        return kvr_fail(KVR_EFORMAT, "%s: absurd dimensions or wrong length: %zu heads of the configured "
                        "size do not make the %llu payload bytes", name, n_heads, (unsigned long long)payload);

    kvr_cache *c;
    status = kvr_cache_create(&c, f.n_layers, f.n_kv_heads, f.n_q_heads, f.head_dim, &f.cfg, KVR_BACKEND_REF);
    if (status == KVR_ENOMEM)
        return status;
    if (status != KVR_OK) {
        snprintf(why, sizeof why, "%s", kvr_last_error());
        return kvr_fail(KVR_EFORMAT, "%s: %s", name, why);
    }
    for (int l = 0; l < f.n_layers; l++)
        for (int k = 0; k < f.n_kv_heads; k++) {
            ref_head *h = c->heads[(size_t)l * f.n_kv_heads + k];
            xfer_head(&io, h);
            const char *problem = io.bad ? "truncated" : NULL;
            if (!problem)
                problem = head_problem(h, (uint32_t)l, (uint32_t)k, c->heads[(size_t)l * f.n_kv_heads]->n);
            if (!problem && ref_head_check(h, why, sizeof why) != 0)
                problem = why;
            if (problem) {
                status = kvr_fail(KVR_EFORMAT, "%s: layer %d kv_head %d: %s", name, l, k, problem);
                kvr_cache_free(c);
                return status;
            }
        }
    *out = c;
    return KVR_OK;
}

int kvr_cache_load_mem(kvr_cache **out, const void *buf, size_t len)
{
    if (!out)
        return kvr_fail(KVR_EINVAL, "kvr_cache_load_mem: out is NULL");
    *out = NULL;
    if (!buf && len > 0)
        return kvr_fail(KVR_EINVAL, "kvr_cache_load_mem: buf is NULL with len = %zu", len);
    return load_buffer(out, buf, len, "kvr_cache_load_mem: buffer");
}

/* Read n bytes (fewer at the end of the file) into p; *got says how many.
 * KVR_EIO on a read error. */
static int read_some(FILE *fp, unsigned char *p /*[n]*/, size_t n, size_t *got, const char *fn, const char *path)
{
    *got = 0;
    while (*got < n) {
        size_t r = fread(p + *got, 1, n - *got, fp);
        *got += r;
        if (r == 0) {
            if (ferror(fp))
                return kvr_fail(KVR_EIO, "%s: cannot read '%s': %s", fn, path, strerror(errno));
            break;
        }
    }
    return KVR_OK;
}

/* Read the file at path and parse it.  The header is read and checked
 * first, and nothing is allocated for the payload beyond what the file can
 * hold: a regular file's length must be what the header announces before
 * the buffer is allocated; a pipe or device (no length) is read in growing
 * steps up to the announced length, so the buffer is never more than twice
 * what was actually read.  KVR_EIO names the path when it cannot be opened
 * or read (or is a directory); KVR_EFORMAT when it is not a valid cache
 * file. */
int kvr_cache_load(kvr_cache **out, const char *path)
{
    static const char fn[] = "kvr_cache_load";
    if (!out)
        return kvr_fail(KVR_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!path)
        return kvr_fail(KVR_EINVAL, "%s: path is NULL", fn);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return kvr_fail(KVR_EIO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
        int err = errno;
        fclose(fp);
        return S_ISDIR(st.st_mode) ? kvr_fail(KVR_EIO, "%s: '%s' is a directory, not a cache file", fn, path)
                                   : kvr_fail(KVR_EIO, "%s: cannot stat '%s': %s", fn, path, strerror(err));
    }
    char name[600];
    snprintf(name, sizeof name, "%s: '%s'", fn, path);
    unsigned char head[HEADER_BYTES], *buf = NULL;
    size_t len = 0;
    uint32_t version;
    uint64_t payload;
    int status = read_some(fp, head, HEADER_BYTES, &len, fn, path);
    if (status == KVR_OK)
        status = check_header(head, len, name, &version, &payload);
    if (status == KVR_OK && S_ISREG(st.st_mode) && st.st_size >= HEADER_BYTES &&
        payload != (uint64_t)st.st_size - HEADER_BYTES)
        status = wrong_length(name, payload, (uint64_t)st.st_size - HEADER_BYTES);
    if (status == KVR_OK && payload > SIZE_MAX - HEADER_BYTES - 1)
        status = kvr_fail(KVR_EFORMAT, "%s: the header announces %llu payload bytes, more than memory can address",
                          name, (unsigned long long)payload);
    /* the whole file, and one byte more to see trailing bytes: [want] */
    size_t want = status == KVR_OK ? HEADER_BYTES + (size_t)payload + 1 : 0, cap = 0;
    while (status == KVR_OK && len < want) {
        size_t ncap = S_ISREG(st.st_mode) ? want : cap < 32768 ? 65536 : 2 * cap;
        if (ncap > want)
            ncap = want;
        unsigned char *nbuf = kvr_malloc(ncap);
        if (!nbuf) {
            status = kvr_fail(KVR_ENOMEM, "%s: '%s': %zu bytes", fn, path, ncap);
            break;
        }
        memcpy(nbuf, buf ? buf : head, len);
        kvr_free(buf);
        buf = nbuf;
        cap = ncap;
        size_t ask = cap - len, got;
        status = read_some(fp, buf + len, ask, &got, fn, path);
        len += got;
        if (got < ask)                      /* the end of the file */
            break;
    }
    fclose(fp);
    if (status == KVR_OK && len == want)
        status = kvr_fail(KVR_EFORMAT, "%s: trailing bytes after the %llu payload bytes the header announces", name,
                          (unsigned long long)payload);
    if (status == KVR_OK)
        status = load_buffer(out, buf, len, name);
    kvr_free(buf);
    return status;
}
