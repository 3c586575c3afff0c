/* vectors_write.c: writing a conformance-vector directory: the .npy arrays
 * and the plain-text manifest that describes each of them (doc/porting.md). */
#include <config.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "kvreviver.h"
#include "common/message.h"
#include "vectors.h"

/* mkdir -p of the directory part of path (everything before the last '/'
 * when file is 1, the whole path when file is 0).  0 or -1 (errno set). */
static int make_dirs(const char *path, int file)
{
    char buf[2 * VEC_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    if (file) {
        char *slash = strrchr(buf, '/');
        if (!slash)
            return 0;
        *slash = '\0';
    }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

const char *const vec_level_names[VEC_LEVELS + 1] = {
    NULL, "hash", "elem", "planner", "parts", "sketch", "reconstruct", "attend"
};

/* Spec sections and contents of the levels (doc/porting.md §1). */
static const char *const level_about[VEC_LEVELS + 1] = {
    NULL,
    "spec 5 -- the hash, its sign and buckets (hash/)",
    "spec 4 -- rounding to the storage types (elem/)",
    "spec 9 -- bytes counted and the planner (planner/)",
    "spec 3, 6, 10 -- parts after every operation: append, importance, prefill, tie rules (*/parts.npy)",
    "spec 7 -- sketch sums, signed counts, loads and running sums (*/sketch_*.npy, */running_sums.npy)",
    "spec 8 -- reconstruction of the probe positions (*/reconstruct.npy)",
    "spec 11, 17 -- attention outputs, both routes (*/attend.npy)",
};

int vw_open(vec_writer *w, const char *root)
{
    char path[2 * VEC_PATH_MAX];
    memset(w, 0, sizeof *w);
    if (strlen(root) >= sizeof w->root - 32) {
        msg_error("vectors: output directory name too long");
        return 1;
    }
    strcpy(w->root, root);
    if (make_dirs(root, 0) != 0) {
        msg_error("vectors: cannot create %s: %s", root, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/MANIFEST", root);
    w->manifest = fopen(path, "w");
    if (!w->manifest) {
        msg_error("vectors: cannot create %s: %s", path, strerror(errno));
        return 1;
    }
    fprintf(w->manifest,
            "# KVReviver conformance vectors (doc/porting.md).  Lines:\n"
            "#   format N                the manifest format version\n"
            "#   version V               the kvreviver version that wrote them\n"
            "#   scenario NAME KEY=VALUE...  a scripted sequence's configuration\n"
            "#   script NAME OP; OP; ...     its operations, in order\n"
            "#   level N NAME SPEC -- WHAT    a level: the arrays that check one step of doc/porting.md\n"
            "#   array PATH DTYPE SHAPE KIND DESCRIPTION\n"
            "#   file PATH SIZE DIGEST       the file's size in bytes and FNV-1a 64 digest (hex)\n"
            "# PATH is relative to this directory; SHAPE is dims joined by 'x' ('scalar' for none);\n"
            "# KIND is input, tolerance, exact (must match bit for bit) or tol:PATH (|port -\n"
            "# expected| <= that tolerance array, element by element).  A port writes every\n"
            "# expected/X under the same name X in its own directory.  The DESCRIPTION of an\n"
            "# expected array starts with 'level N', the level it belongs to.  validate refuses\n"
            "# a set whose file is missing or differs from its file line.\n"
            "format %d\nversion %s\n", VEC_FORMAT, kvr_version());
    for (int l = 1; l <= VEC_LEVELS; l++)
        fprintf(w->manifest, "level %d %s %s\n", l, vec_level_names[l], level_about[l]);
    return 0;
}

int vec_file_digest(const char *path, unsigned long long *size, unsigned long long *digest)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char buf[65536];
    uint64_t h = 0xcbf29ce484222325u;          /* FNV-1a 64: offset basis, then prime */
    unsigned long long n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < got; i++)
            h = (h ^ buf[i]) * 0x100000001b3u;
        n += got;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) {
        errno = err;
        return -1;
    }
    *size = n;
    *digest = h;
    return 0;
}

int vw_close(vec_writer *w)
{
    int bad = ferror(w->manifest);
    if (fclose(w->manifest) != 0 || bad) {
        msg_error("vectors: writing %s/MANIFEST failed", w->root);
        return 1;
    }
    w->manifest = NULL;
    return 0;
}

void vw_line(vec_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(w->manifest, fmt, ap);
    va_end(ap);
    fputc('\n', w->manifest);
}

int vw_array(vec_writer *w, const char *rel, kvr_npy_type type, int ndim, const size_t *shape,
             const void *data, const char *kind, const char *fmt, ...)
{
    char path[2 * VEC_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", w->root, rel);
    if (make_dirs(path, 1) != 0) {
        msg_error("vectors: cannot create the directory of %s: %s", path, strerror(errno));
        return 1;
    }
    if (kvr_npy_write(path, type, ndim, shape, data) != KVR_OK) {
        msg_error("vectors: %s", kvr_last_error());
        return 1;
    }
    size_t count = 1;
    fprintf(w->manifest, "array %s %s ", rel, kvr_npy_type_descr(type));
    if (ndim == 0)
        fputs("scalar", w->manifest);
    for (int i = 0; i < ndim; i++) {
        fprintf(w->manifest, i ? "x%zu" : "%zu", shape[i]);
        count *= shape[i];
    }
    fprintf(w->manifest, " %s ", kind);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(w->manifest, fmt, ap);
    va_end(ap);
    fputc('\n', w->manifest);
    unsigned long long size, digest;
    if (vec_file_digest(path, &size, &digest) != 0) {
        msg_error("vectors: cannot read back %s: %s", path, strerror(errno));
        return 1;
    }
    fprintf(w->manifest, "file %s %llu %016llx\n", rel, size, digest);
    w->bytes += count * kvr_npy_type_size(type);
    w->n_arrays++;
    return 0;
}
