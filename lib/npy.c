/* npy.c: NumPy .npy reading and writing (doc/porting.md).
 *
 * The file format: the magic "\x93NUMPY", a major and a minor version byte,
 * the header length (2 bytes little-endian in version 1.0, 4 bytes in 2.0
 * and 3.0), then the header: a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by a newline, then the data: the elements in
 * C order.  We write version 1.0 with the header padded so that the data
 * starts at a multiple of 64 bytes, as NumPy does.  We read 1.0, 2.0 and 3.0
 * headers (3.0 only differs by allowing UTF-8 in the header, which no valid
 * header of ours contains).
 *
 * The reader is a parser of untrusted files: every size is bounded, the
 * shape product and the byte count are overflow-checked, the data must be
 * exactly as long as the shape says (no more, no less), and the only
 * accepted header is the dict above with exactly those three keys in any
 * order.  Only little-endian (or byte-order-free) types, C order. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"
#include "npy.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 65536u   /* bytes of header we accept (NumPy's own limit is 10000) */
#define NPY_ALIGN 64            /* data offset alignment when writing */

/* The descr strings, one per type (the canonical spelling NumPy writes). */
static const char *const type_descr[] = {
    [KVR_NPY_F32] = "<f4", [KVR_NPY_F16] = "<f2", [KVR_NPY_U16] = "<u2",
    [KVR_NPY_I32] = "<i4", [KVR_NPY_U64] = "<u8", [KVR_NPY_F64] = "<f8",
    [KVR_NPY_U8] = "|u1",  [KVR_NPY_I64] = "<i8",
};
#define N_TYPES ((int)(sizeof type_descr / sizeof type_descr[0]))

size_t kvr_npy_type_size(kvr_npy_type type)
{
    switch (type) {
    case KVR_NPY_U8: return 1;
    case KVR_NPY_F32: case KVR_NPY_I32: return 4;
    case KVR_NPY_F16: case KVR_NPY_U16: return 2;
    case KVR_NPY_U64: case KVR_NPY_F64: case KVR_NPY_I64: return 8;
    }
    return 0;
}

const char *kvr_npy_type_descr(kvr_npy_type type)
{
    if ((int)type < 0 || (int)type >= N_TYPES)
        return NULL;
    return type_descr[type];
}

/* 1 on a little-endian host.  The data arrays are in the host's layout;
 * on a big-endian host they are byte-swapped on the way in and out. */
static int host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Reverse the bytes of each of count elements of size bytes, in place. */
static void swap_elements(void *data, size_t count, size_t size)
{
    unsigned char *p = data;
    for (size_t e = 0; e < count; e++, p += size)
        for (size_t i = 0; i < size / 2; i++) {
            unsigned char t = p[i];
            p[i] = p[size - 1 - i];
            p[size - 1 - i] = t;
        }
}

/* ---- the header parser ---------------------------------------------------
 * A cursor over the header text; each parse_* function advances it and
 * returns 0, or -1 after writing what went wrong into why. */
typedef struct {
    const char *s;
    size_t len, at;
    char why[160];
} cursor;

static int bad(cursor *c, const char *what)
{
    snprintf(c->why, sizeof c->why, "%s at header offset %zu", what, c->at);
    return -1;
}

static void skip_space(cursor *c)
{
    while (c->at < c->len && (c->s[c->at] == ' ' || c->s[c->at] == '\t'
                              || c->s[c->at] == '\n' || c->s[c->at] == '\r'))
        c->at++;
}

/* Consume the character ch (after optional whitespace). */
static int expect(cursor *c, char ch, const char *what)
{
    skip_space(c);
    if (c->at >= c->len || c->s[c->at] != ch)
        return bad(c, what);
    c->at++;
    return 0;
}

/* A quoted string ('...' or "..." without escapes) of at most cap-1 bytes. */
static int parse_string(cursor *c, char *buf, size_t cap)
{
    skip_space(c);
    if (c->at >= c->len || (c->s[c->at] != '\'' && c->s[c->at] != '"'))
        return bad(c, "expected a quoted string");
    char q = c->s[c->at++];
    size_t n = 0;
    while (c->at < c->len && c->s[c->at] != q) {
        unsigned char ch = (unsigned char)c->s[c->at];
        if (ch == '\\' || ch < 0x20 || ch > 0x7e)
            return bad(c, "unsupported character in string");
        if (n + 1 >= cap)
            return bad(c, "string too long");
        buf[n++] = (char)ch;
        c->at++;
    }
    if (c->at >= c->len)
        return bad(c, "unterminated string");
    c->at++;
    buf[n] = '\0';
    return 0;
}

/* A non-negative decimal integer (Python syntax: no leading zeros). */
static int parse_size(cursor *c, size_t *out)
{
    skip_space(c);
    size_t start = c->at, v = 0;
    while (c->at < c->len && c->s[c->at] >= '0' && c->s[c->at] <= '9') {
        size_t digit = (size_t)(c->s[c->at] - '0');
        if (v > (SIZE_MAX - digit) / 10)
            return bad(c, "dimension too large");
        v = v * 10 + digit;
        c->at++;
    }
    if (c->at == start)
        return bad(c, "expected a non-negative integer dimension");
    if (c->at - start > 1 && c->s[start] == '0')
        return bad(c, "dimension with a leading zero");
    *out = v;
    return 0;
}

/* True or False. */
static int parse_bool(cursor *c, int *out)
{
    skip_space(c);
    if (c->len - c->at >= 4 && memcmp(c->s + c->at, "True", 4) == 0) {
        c->at += 4;
        *out = 1;
    } else if (c->len - c->at >= 5 && memcmp(c->s + c->at, "False", 5) == 0) {
        c->at += 5;
        *out = 0;
    } else {
        return bad(c, "expected True or False");
    }
    return 0;
}

/* A tuple of dimensions: (), (n,), (n, m), (n, m,) ... */
static int parse_shape(cursor *c, int *ndim, size_t *shape)
{
    if (expect(c, '(', "expected '(' opening the shape"))
        return -1;
    *ndim = 0;
    skip_space(c);
    if (c->at < c->len && c->s[c->at] == ')') {
        c->at++;
        return 0;
    }
    for (;;) {
        if (*ndim >= KVR_NPY_MAX_DIMS)
            return bad(c, "too many dimensions");
        if (parse_size(c, &shape[*ndim]))
            return -1;
        (*ndim)++;
        skip_space(c);
        if (c->at < c->len && c->s[c->at] == ')') {
            /* Python: (n) is not a tuple; one dimension needs the comma */
            if (*ndim == 1)
                return bad(c, "one-dimensional shape without its comma");
            c->at++;
            return 0;
        }
        if (expect(c, ',', "expected ',' or ')' in the shape"))
            return -1;
        skip_space(c);
        if (c->at < c->len && c->s[c->at] == ')') {
            c->at++;
            return 0;
        }
    }
}

/* The whole header dict.  Fills *type, *ndim, shape; 0 or -1 with c->why. */
static int parse_header(cursor *c, kvr_npy_type *type, int *ndim, size_t *shape)
{
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    char key[32], descr[32];

    if (expect(c, '{', "expected '{' opening the header dict"))
        return -1;
    for (;;) {
        skip_space(c);
        if (c->at < c->len && c->s[c->at] == '}')
            break;
        if (parse_string(c, key, sizeof key))
            return -1;
        if (expect(c, ':', "expected ':' after a key"))
            return -1;
        if (strcmp(key, "descr") == 0) {
            if (have_descr++)
                return bad(c, "duplicate key 'descr'");
            if (parse_string(c, descr, sizeof descr))
                return -1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_order++)
                return bad(c, "duplicate key 'fortran_order'");
            if (parse_bool(c, &fortran))
                return -1;
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++)
                return bad(c, "duplicate key 'shape'");
            if (parse_shape(c, ndim, shape))
                return -1;
        } else {
            snprintf(c->why, sizeof c->why, "unexpected key '%s' in the header", key);
            return -1;
        }
        skip_space(c);
        if (c->at < c->len && c->s[c->at] == '}')
            break;
        if (expect(c, ',', "expected ',' or '}' after a value"))
            return -1;
    }
    c->at++;   /* the '}' */
    skip_space(c);
    if (c->at != c->len)
        return bad(c, "trailing characters after the header dict");
    if (!have_descr || !have_order || !have_shape) {
        snprintf(c->why, sizeof c->why, "header lacks the key '%s'",
                 !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
        return -1;
    }
    if (fortran) {
        snprintf(c->why, sizeof c->why, "fortran_order True is not supported (C order only)");
        return -1;
    }
    for (int t = 0; t < N_TYPES; t++)
        if (strcmp(descr, type_descr[t]) == 0
            || (t == KVR_NPY_U8 && strcmp(descr, "<u1") == 0)) {
            *type = (kvr_npy_type)t;
            return 0;
        }
    if (descr[0] == '>')
        snprintf(c->why, sizeof c->why, "big-endian dtype '%s' is not supported", descr);
    else
        snprintf(c->why, sizeof c->why, "unsupported dtype '%s'", descr);
    return -1;
}

/* ---- reading ------------------------------------------------------------- */

/* Little-endian unsigned integer of n bytes. */
static uint32_t le_uint(const unsigned char *b, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* Read a whole .npy file into *out (see npy.h).  On any failure the file is
 * closed, nothing stays allocated and *out is zeroed. */
int kvr_npy_read(const char *path, kvr_npy *out)
{
    unsigned char pre[12];
    char *header = NULL;
    void *data = NULL;
    FILE *f = NULL;
    int status;
    kvr_npy a;

    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out)
        return kvr_fail(KVR_EINVAL, "kvr_npy_read: %s is NULL", !path ? "path" : "out");
    memset(&a, 0, sizeof a);

    f = fopen(path, "rb");
    if (!f)
        return kvr_fail(KVR_EIO, "kvr_npy_read(%s): cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        status = kvr_fail(KVR_EIO, "kvr_npy_read(%s): not a regular file", path);
        goto fail;
    }
    size_t file_size = (size_t)st.st_size;

    /* magic, version, header length */
    size_t got = fread(pre, 1, 10, f);
    if (got < 10 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        if (ferror(f))
            status = kvr_fail(KVR_EIO, "kvr_npy_read(%s): read error", path);
        else
            status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): not a .npy file (too short or bad magic)", path);
        goto fail;
    }
    int major = pre[6], minor = pre[7];
    size_t prefix, hlen;
    if (major == 1 && minor == 0) {
        prefix = 10;
        hlen = le_uint(pre + 8, 2);
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): truncated header length", path);
            goto fail;
        }
        prefix = 12;
        hlen = le_uint(pre + 8, 4);
    } else {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): unsupported format version %d.%d",
                          path, major, minor);
        goto fail;
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER) {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): header length %zu outside 1..%u",
                          path, hlen, NPY_MAX_HEADER);
        goto fail;
    }
    if (hlen > file_size - prefix) {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): truncated header (%zu bytes announced, "
                          "file has %zu)", path, hlen, file_size - prefix);
        goto fail;
    }
    header = kvr_malloc(hlen);
    if (!header) {
        status = kvr_fail(KVR_ENOMEM, "kvr_npy_read(%s): no memory for a %zu-byte header", path, hlen);
        goto fail;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        status = ferror(f) ? kvr_fail(KVR_EIO, "kvr_npy_read(%s): read error", path)
                           : kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): truncated header", path);
        goto fail;
    }
    if (header[hlen - 1] != '\n') {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): header does not end with a newline", path);
        goto fail;
    }

    cursor c = { header, hlen, 0, "" };
    if (parse_header(&c, &a.type, &a.ndim, a.shape)) {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): %s", path, c.why);
        goto fail;
    }
    kvr_free(header);
    header = NULL;

    /* element count and byte count, overflow-checked */
    size_t size = kvr_npy_type_size(a.type), count = 1;
    for (int i = 0; i < a.ndim; i++) {
        if (a.shape[i] != 0 && count > SIZE_MAX / a.shape[i]) {
            status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): shape product overflows", path);
            goto fail;
        }
        count *= a.shape[i];
    }
    if (count > SIZE_MAX / size) {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): data size overflows", path);
        goto fail;
    }
    size_t bytes = count * size, have = file_size - prefix - hlen;
    if (have != bytes) {
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): data is %zu bytes, the shape needs %zu (%s)",
                          path, have, bytes, have < bytes ? "truncated" : "trailing bytes");
        goto fail;
    }
    data = kvr_malloc(bytes);
    if (!data) {
        status = kvr_fail(KVR_ENOMEM, "kvr_npy_read(%s): no memory for %zu bytes", path, bytes);
        goto fail;
    }
    if (bytes && fread(data, 1, bytes, f) != bytes) {
        status = ferror(f) ? kvr_fail(KVR_EIO, "kvr_npy_read(%s): read error", path)
                           : kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): truncated data", path);
        goto fail;
    }
    if (fgetc(f) != EOF) {   /* the file grew since fstat */
        status = kvr_fail(KVR_EFORMAT, "kvr_npy_read(%s): trailing bytes after the data", path);
        goto fail;
    }
    fclose(f);
    if (!host_is_little())
        swap_elements(data, count, size);
    a.count = count;
    a.data = data;
    *out = a;
    return KVR_OK;

fail:
    kvr_free(header);
    kvr_free(data);
    if (f)
        fclose(f);
    return status;
}

/* ---- writing ------------------------------------------------------------- */

/* Write a version 1.0 file: header padded with spaces and a newline so the
 * data starts at a multiple of 64 bytes.  KVR_EINVAL for bad arguments,
 * KVR_EIO when the file cannot be written (a partial file is removed). */
int kvr_npy_write(const char *path, kvr_npy_type type, int ndim, const size_t *shape, const void *data)
{
    char header[NPY_ALIGN * 8];
    size_t count = 1, size;
    int n;

    if (!path)
        return kvr_fail(KVR_EINVAL, "kvr_npy_write: path is NULL");
    if ((int)type < 0 || (int)type >= N_TYPES)
        return kvr_fail(KVR_EINVAL, "kvr_npy_write(%s): type %d unknown", path, (int)type);
    if (ndim < 0 || ndim > KVR_NPY_MAX_DIMS || (ndim > 0 && !shape))
        return kvr_fail(KVR_EINVAL, "kvr_npy_write(%s): ndim %d (or shape NULL)", path, ndim);
    size = kvr_npy_type_size(type);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] != 0 && count > SIZE_MAX / shape[i])
            return kvr_fail(KVR_EINVAL, "kvr_npy_write(%s): shape product overflows", path);
        count *= shape[i];
    }
    if (count > SIZE_MAX / size)
        return kvr_fail(KVR_EINVAL, "kvr_npy_write(%s): data size overflows", path);
    if (count > 0 && !data)
        return kvr_fail(KVR_EINVAL, "kvr_npy_write(%s): data is NULL", path);

    /* the dict, then padding; 10 bytes of prefix come before it */
    n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                 type_descr[type]);
    for (int i = 0; i < ndim; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, i ? ", %zu" : "%zu", shape[i]);
    n += snprintf(header + n, sizeof header - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    size_t total = 10 + (size_t)n + 1;                         /* with the newline */
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t hlen = padded - 10;
    if (hlen >= sizeof header)
        return kvr_fail(KVR_EINVAL, "kvr_npy_write(%s): header too long", path);
    memset(header + n, ' ', hlen - 1 - (size_t)n);
    header[hlen - 1] = '\n';

    unsigned char pre[10];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);

    FILE *f = fopen(path, "wb");
    if (!f)
        return kvr_fail(KVR_EIO, "kvr_npy_write(%s): cannot create: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, hlen, f) == hlen;
    if (ok && count > 0) {
        if (host_is_little()) {
            ok = fwrite(data, size, count, f) == count;
        } else {
            /* byte-swap element by element into a small buffer */
            const unsigned char *p = data;
            unsigned char e[8];
            for (size_t i = 0; ok && i < count; i++) {
                memcpy(e, p + i * size, size);
                swap_elements(e, 1, size);
                ok = fwrite(e, 1, size, f) == size;
            }
        }
    }
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        remove(path);
        return kvr_fail(KVR_EIO, "kvr_npy_write(%s): write failed", path);
    }
    return KVR_OK;
}

void kvr_npy_free(kvr_npy *a)
{
    if (a) {
        kvr_free(a->data);
        memset(a, 0, sizeof *a);
    }
}
