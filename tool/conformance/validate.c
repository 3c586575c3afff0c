/* validate.c: `kvreviver validate`: compare a port's outputs with the
 * conformance vectors (doc/porting.md).
 *
 * For every expected array of the manifest, the port's array of the same
 * name (PORTDIR/X for DIR/expected/X) must have the same dtype and shape,
 * then either match bit for bit (kind exact) or stay within the tolerance
 * array element by element (kind tol:PATH).  One line per array: PASS or
 * FAIL, the worst deviation, its multi-dimensional index, the two values and
 * the share of the tolerance it used; then one line per level (the manifest's
 * level lines name them, each array's description starts with its level), so
 * that a port sees at once which section of the spec to read. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"
#include "common/message.h"
#include "vectors.h"

/* Element i of a as a double (exactly, for every type but 64-bit integers
 * beyond 2^53, which are compared as integers anyway). */
static double value_at(const kvr_npy *a, size_t i)
{
    switch (a->type) {
    case KVR_NPY_F32: return ((const float *)a->data)[i];
    case KVR_NPY_F16: return kvr_f16_to_f32(((const uint16_t *)a->data)[i]);
    case KVR_NPY_U16: return ((const uint16_t *)a->data)[i];
    case KVR_NPY_I32: return ((const int32_t *)a->data)[i];
    case KVR_NPY_U64: return (double)((const uint64_t *)a->data)[i];
    case KVR_NPY_F64: return ((const double *)a->data)[i];
    case KVR_NPY_U8:  return ((const uint8_t *)a->data)[i];
    case KVR_NPY_I64: return (double)((const int64_t *)a->data)[i];
    }
    return NAN;
}

/* Element i as text: integers in full, floats with enough digits to round trip. */
static void format_value(const kvr_npy *a, size_t i, char *buf, size_t len)
{
    switch (a->type) {
    case KVR_NPY_U64:
        snprintf(buf, len, "%llu", (unsigned long long)((const uint64_t *)a->data)[i]);
        break;
    case KVR_NPY_I64:
        snprintf(buf, len, "%lld", (long long)((const int64_t *)a->data)[i]);
        break;
    case KVR_NPY_I32: case KVR_NPY_U16: case KVR_NPY_U8:
        snprintf(buf, len, "%.0f", value_at(a, i));
        break;
    case KVR_NPY_F64:
        snprintf(buf, len, "%.17g", value_at(a, i));
        break;
    default:
        snprintf(buf, len, "%.9g", value_at(a, i));
        break;
    }
}

/* "[i,j,k]" of flat index i in shape. */
static void format_index(const kvr_npy *a, size_t flat, char *buf, size_t len)
{
    size_t idx[KVR_NPY_MAX_DIMS];
    for (int d = a->ndim - 1; d >= 0; d--) {
        idx[d] = a->shape[d] ? flat % a->shape[d] : 0;
        flat = a->shape[d] ? flat / a->shape[d] : 0;
    }
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < a->ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, d ? ",%zu" : "%zu", idx[d]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
}

static void format_shape(const kvr_npy *a, char *buf, size_t len)
{
    size_t at = 0;
    if (a->ndim == 0)
        snprintf(buf, len, "scalar");
    for (int d = 0; d < a->ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, d ? "x%zu" : "%zu", a->shape[d]);
}

static int same_shape(const kvr_npy *a, const kvr_npy *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

/* Element i of an integer array as a signed 128-bit-safe pair: compare
 * integer elements exactly (bytes), and measure the deviation in double. */
static int elements_equal(const kvr_npy *a, const kvr_npy *b, size_t i)
{
    size_t s = kvr_npy_type_size(a->type);
    return memcmp((const char *)a->data + i * s, (const char *)b->data + i * s, s) == 0;
}

/* Compare one entry; prints its line.  Returns 1 pass, 0 fail, -1 when the
 * vectors themselves cannot be read (a runtime failure). */
static int check_entry(const char *dir, const char *port, const vec_entry *e)
{
    char path[3 * VEC_PATH_MAX], ppath[3 * VEC_PATH_MAX];
    const char *name = e->rel + strlen("expected/");
    kvr_npy exp, got, tol;
    memset(&tol, 0, sizeof tol);
    snprintf(path, sizeof path, "%s/%s", dir, e->rel);
    snprintf(ppath, sizeof ppath, "%s/%s", port, name);
    if (kvr_npy_read(path, &exp) != KVR_OK) {
        msg_error("validate: the vectors are unreadable: %s", kvr_last_error());
        return -1;
    }
    int is_tol = strncmp(e->kind, "tol:", 4) == 0;
    if (is_tol) {
        snprintf(path, sizeof path, "%s/%s", dir, e->kind + 4);
        if (kvr_npy_read(path, &tol) != KVR_OK || !same_shape(&tol, &exp)) {
            msg_error("validate: the tolerance %s of %s is unreadable or misshapen: %s",
                      e->kind + 4, e->rel, kvr_last_error());
            kvr_npy_free(&exp);
            kvr_npy_free(&tol);
            return -1;
        }
    }
    if (kvr_npy_read(ppath, &got) != KVR_OK) {
        printf("FAIL %s: %s\n", name, kvr_last_error());
        kvr_npy_free(&exp); kvr_npy_free(&tol);
        return 0;
    }
    char s1[128], s2[128];
    if (got.type != exp.type) {
        printf("FAIL %s: %s has dtype %s, expected %s\n", name, ppath,
               kvr_npy_type_descr(got.type), kvr_npy_type_descr(exp.type));
        kvr_npy_free(&exp); kvr_npy_free(&tol); kvr_npy_free(&got);
        return 0;
    }
    if (!same_shape(&got, &exp)) {
        format_shape(&got, s1, sizeof s1);
        format_shape(&exp, s2, sizeof s2);
        printf("FAIL %s: %s has shape %s, expected %s\n", name, ppath, s1, s2);
        kvr_npy_free(&exp); kvr_npy_free(&tol); kvr_npy_free(&got);
        return 0;
    }

    /* the worst element: by share of tolerance (tol) or by deviation (exact) */
    size_t worst = 0, bad = 0;
    double worst_dev = -1.0, worst_share = -1.0;
    for (size_t i = 0; i < exp.count; i++) {
        double x = value_at(&got, i), y = value_at(&exp, i);
        double dev = x == y ? 0.0 : fabs(x - y);
        if (isnan(dev)) dev = INFINITY;
        double share;
        if (is_tol) {
            double t = value_at(&tol, i);
            share = dev == 0.0 ? 0.0 : t > 0.0 ? dev / t : INFINITY;
            if (!(dev <= t)) bad++;
        } else {
            int eq = elements_equal(&got, &exp, i);
            if (!eq && dev == 0.0) dev = INFINITY;   /* e.g. u64 beyond 2^53, or -0 vs 0 */
            share = eq ? 0.0 : INFINITY;
            if (!eq) bad++;
        }
        if (share > worst_share || (share == worst_share && dev > worst_dev)) {
            worst_share = share;
            worst_dev = dev;
            worst = i;
        }
    }
    int pass = bad == 0;
    printf("%s %s", pass ? "PASS" : "FAIL", name);
    if (exp.count == 0) {
        printf(": empty\n");
    } else {
        char idx[128];
        format_index(&exp, worst, idx, sizeof idx);
        format_value(&got, worst, s1, sizeof s1);
        format_value(&exp, worst, s2, sizeof s2);
        if (!pass)
            printf(": %zu of %zu elements differ;", bad, exp.count);
        printf(" worst deviation %.3g at %s (port %s, expected %s)", worst_dev, idx, s1, s2);
        if (is_tol) {
            if (isinf(worst_share))
                printf(", tolerance %.3g exceeded (share inf)", value_at(&tol, worst));
            else
                printf(", %.1f%% of tolerance %.3g", 100.0 * worst_share, value_at(&tol, worst));
        } else {
            printf(pass ? ", exact" : ", must be exact");
        }
        printf("\n");
    }
    kvr_npy_free(&exp); kvr_npy_free(&tol); kvr_npy_free(&got);
    return pass;
}

/* Parse one "array" line of the manifest into e; 0 or -1. */
static int parse_array_line(const char *line, vec_entry *e)
{
    char shape[128];
    int used = 0;
    memset(e, 0, sizeof *e);
    if (sscanf(line, "array %255s %7s %127s %263s %n", e->rel, e->dtype, shape, e->kind, &used) < 4)
        return -1;
    if (strcmp(shape, "scalar") != 0) {
        char *s = shape;
        while (*s) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(s, &end, 10);
            if (end == s || errno || e->ndim >= KVR_NPY_MAX_DIMS)
                return -1;
            e->shape[e->ndim++] = (size_t)v;
            s = end;
            if (*s == 'x') s++;
            else if (*s) return -1;
        }
    }
    if (strstr(e->rel, "..") || e->rel[0] == '/')
        return -1;
    if (sscanf(line + used, "level %d", &e->level) != 1 || e->level < 0 || e->level > VEC_LEVEL_MAX)
        e->level = 0;
    return 0;
}

/* One manifest level line "level N NAME SPEC -- WHAT" into names[N]
 * (NAME and SPEC, as "NAME (SPEC)"); ignored when malformed. */
static void parse_level_line(const char *line, char names[][96])
{
    int n = 0, used = 0;
    char name[32];
    if (sscanf(line, "level %d %31s %n", &n, name, &used) < 2 || n < 1 || n > VEC_LEVEL_MAX)
        return;
    const char *spec = line + used, *end = strstr(spec, " --");
    int len = end ? (int)(end - spec) : (int)strcspn(spec, "\n");
    snprintf(names[n], 96, "%s (%.*s)", name, len > 60 ? 60 : len, spec);
}

/* The vectors themselves, before anything is compared: every file line of
 * the manifest must match its file (size and FNV-1a 64 digest), and every
 * array line must have a file line.  Then the port: a directory holding
 * none of the expected arrays is one message, not a FAIL line per array.
 * 0, or 1 after one message. */
static int check_set(const char *dir, const char *port, const char *manifest)
{
    FILE *f = fopen(manifest, "r");
    if (!f) {
        msg_error("validate: cannot read %s: %s", manifest, strerror(errno));
        return 1;
    }
    char line[8192], path[3 * VEC_PATH_MAX], first[3 * VEC_PATH_MAX + 128] = "";
    char (*files)[VEC_PATH_MAX] = NULL;
    size_t n_files = 0, cap = 0;
    int bad = 0, expected = 0, in_port = 0, status = 0;
    while (fgets(line, sizeof line, f) && !status) {          /* the file lines */
        char rel[VEC_PATH_MAX], hex[32];
        unsigned long long size, digest, got_size, got_digest;
        if (strncmp(line, "file ", 5) != 0)
            continue;
        if (sscanf(line, "file %255s %llu %31s", rel, &size, hex) != 3 || strstr(rel, "..") || rel[0] == '/') {
            msg_error("validate: %s: malformed file line: %.80s", manifest, line);
            status = 1;
            break;
        }
        if (n_files == cap) {
            size_t ncap = cap ? 2 * cap : 256;
            void *nf = realloc(files, ncap * sizeof *files);
            if (!nf) { msg_error("validate: out of memory"); status = 1; break; }
            files = nf;
            cap = ncap;
        }
        strcpy(files[n_files++], rel);
        digest = strtoull(hex, NULL, 16);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        const char *why = NULL;
        char what[160];
        if (vec_file_digest(path, &got_size, &got_digest) != 0) {
            snprintf(what, sizeof what, "cannot be read (%s)", strerror(errno));
            why = what;
        } else if (got_size != size) {
            snprintf(what, sizeof what, "is %llu bytes, the manifest says %llu (%s)", got_size, size,
                     got_size < size ? "truncated" : "changed");
            why = what;
        } else if (got_digest != digest) {
            snprintf(what, sizeof what, "has FNV-1a digest %016llx, the manifest says %s (changed)", got_digest, hex);
            why = what;
        }
        if (why && bad++ == 0)
            snprintf(first, sizeof first, "%s %s", rel, why);
    }
    rewind(f);
    int lineno = 0;
    while (!status && fgets(line, sizeof line, f)) {        /* the array lines */
        vec_entry e;
        lineno++;
        if (strncmp(line, "array ", 6) != 0 || parse_array_line(line, &e) != 0)
            continue;                                          /* the main pass reports malformed lines */
        size_t i = 0;
        while (i < n_files && strcmp(files[i], e.rel)) i++;
        if (i == n_files && bad++ == 0)
            snprintf(first, sizeof first, "%s has no file line (size and digest) in the manifest", e.rel);
        if (!strncmp(e.rel, "expected/", 9)) {
            struct stat st;
            expected++;
            snprintf(path, sizeof path, "%s/%s", port, e.rel + 9);
            in_port += stat(path, &st) == 0;
        }
    }
    fclose(f);
    free(files);
    if (status)
        return status;
    if (bad) {
        msg_error("validate: the vectors in %s do not match their MANIFEST: %s%s; nothing was compared "
                  "(regenerate them with 'kvreviver vectors --out DIR')", dir, first,
                  bad > 1 ? " (and more files)" : "");
        return 1;
    }
    if (expected > 0 && in_port == 0) {
        msg_error("validate: %s holds none of the %d expected arrays (a port writes DIR/expected/X as "
                  "PORTDIR/X, e.g. %s/hash/hash.npy): nothing to compare", port, expected, port);
        return 1;
    }
    return 0;
}

int vec_validate(const char *dir, const char *port)
{
    char path[2 * VEC_PATH_MAX], line[8192];
    struct stat st;
    if (stat(port, &st) != 0 || !S_ISDIR(st.st_mode)) {
        msg_error("validate: %s is not a readable directory", port);
        return 1;
    }
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        msg_error("validate: cannot read %s: %s", path, strerror(errno));
        return 1;
    }
    /* the format first: an older manifest has no file lines to check */
    int fmt = -1;
    while (fmt < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "format %d", &fmt) == 1 && fmt != VEC_FORMAT) {
            msg_error("validate: %s: format %d, this validator reads format %d%s", path, fmt, VEC_FORMAT,
                      fmt < VEC_FORMAT ? " (regenerate the vectors with 'kvreviver vectors --out DIR')" : "");
            fclose(f);
            return 1;
        }
    rewind(f);
    if (fmt == VEC_FORMAT && check_set(dir, port, path) != 0) {
        fclose(f);
        return 1;
    }
    int format = -1, lineno = 0, passed = 0, failed = 0, status = 0;
    int lv_pass[VEC_LEVEL_MAX + 1] = { 0 }, lv_fail[VEC_LEVEL_MAX + 1] = { 0 };
    char lv_name[VEC_LEVEL_MAX + 1][96];
    memset(lv_name, 0, sizeof lv_name);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "format %d", &format) == 1) {
            if (format != VEC_FORMAT) {
                msg_error("validate: %s: format %d, this validator reads format %d", path, format, VEC_FORMAT);
                status = 1;
                break;
            }
            continue;
        }
        if (strncmp(line, "level ", 6) == 0) {
            parse_level_line(line, lv_name);
            continue;
        }
        if (strncmp(line, "array ", 6) != 0)
            continue;
        vec_entry e;
        if (parse_array_line(line, &e) != 0) {
            msg_error("validate: %s:%d: malformed array line", path, lineno);
            status = 1;
            break;
        }
        e.line = lineno;
        if (strncmp(e.rel, "expected/", 9) != 0)
            continue;
        if (strcmp(e.kind, "exact") != 0 && strncmp(e.kind, "tol:", 4) != 0) {
            msg_error("validate: %s:%d: unknown comparison kind '%s'", path, lineno, e.kind);
            status = 1;
            break;
        }
        int r = check_entry(dir, port, &e);
        if (r < 0) {
            status = 1;
            break;
        }
        if (r) { passed++; lv_pass[e.level]++; } else { failed++; lv_fail[e.level]++; }
    }
    fclose(f);
    int first = 1;                       /* mark the lowest failing level: start there */
    for (int l = 0; l <= VEC_LEVEL_MAX; l++)
        if (lv_pass[l] + lv_fail[l] > 0) {
            printf("level %d %s: %d passed, %d failed%s\n", l, lv_name[l][0] ? lv_name[l] : l ? "?" : "(none)",
                   lv_pass[l], lv_fail[l], lv_fail[l] && first ? "  <- the first level that fails" : "");
            if (lv_fail[l]) first = 0;
        }
    if (status == 0 && format < 0) {
        msg_error("validate: %s has no format line: not a vectors manifest", path);
        status = 1;
    }
    if (status == 0 && passed + failed == 0) {
        msg_error("validate: %s lists no expected arrays", path);
        status = 1;
    }
    printf("validate: %d passed, %d failed\n", passed, failed);
    if (status != 0)
        return status;
    return failed ? 1 : 0;
}
