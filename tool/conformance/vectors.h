/* vectors.h: the conformance vectors (doc/porting.md): the manifest, the
 * writer used by `kvreviver vectors` and the reader used by
 * `kvreviver validate`. */
#ifndef KVR_VECTORS_H
#define KVR_VECTORS_H

#include <stddef.h>
#include <stdio.h>
#include "npy.h"
#include "kvreviver.h"

/* The manifest's format version: bump it when a line's meaning changes.
 * Format 2 added the file lines (each file's size and FNV-1a 64 digest). */
#define VEC_FORMAT 2
#define VEC_PATH_MAX 256

/* The levels, numbered in the order doc/porting.md asks a port to implement
 * them.  vw_open writes one manifest line per level,
 *   level N NAME SPEC -- WHAT
 * and every expected array's description starts with "level N": the
 * validator sums its results per level. */
#define VEC_LEVELS 7
#define VEC_LEVEL_MAX 32       /* the largest level a validator accepts in a manifest */
extern const char *const vec_level_names[VEC_LEVELS + 1];   /* [1..VEC_LEVELS] */

/* ---- writing (vectors_write.c) --------------------------------------- */
typedef struct {
    char root[VEC_PATH_MAX];   /* DIR */
    FILE *manifest;            /* DIR/MANIFEST, open while writing */
    size_t bytes;              /* bytes of array data written so far */
    int n_arrays;
} vec_writer;

/* Create DIR (and its parents) and start DIR/MANIFEST.  1 after a
 * message on failure. */
int vw_open(vec_writer *w, const char *root);
/* Finish the manifest.  0 or 1. */
int vw_close(vec_writer *w);
/* A free-form manifest line (scenario descriptions, scripts). */
void vw_line(vec_writer *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The size in bytes and the FNV-1a 64-bit digest of the file at path.
 * 0, or -1 with errno set when it cannot be read. */
int vec_file_digest(const char *path, unsigned long long *size, unsigned long long *digest);

/* Write DIR/<rel> (creating its directories) and its manifest lines
 *   array <rel> <dtype> <shape> <kind> <description>
 *   file <rel> <size> <FNV-1a 64 digest, 16 hex digits>
 * kind: "input", "tolerance", "exact" or "tol:<rel path of the tolerance>".
 * 0 or 1 after a message. */
int vw_array(vec_writer *w, const char *rel, kvr_npy_type type, int ndim, const size_t *shape,
             const void *data, const char *kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;

/* ---- the generators (vectors_gen.c, vectors_scripts.c) ----------------- */
int vec_write_hashes(vec_writer *w);
int vec_write_elem(vec_writer *w);
int vec_write_planner(vec_writer *w);
int vec_write_scripts(vec_writer *w);
/* The backend the scripted scenarios run on (vectors --backend; default
 * KVR_BACKEND_REF, which the committed vectors come from). */
extern kvr_backend vec_backend;

/* ---- reading (validate.c) ---------------------------------------------- */
typedef struct {
    char rel[VEC_PATH_MAX];    /* path relative to DIR */
    char dtype[8];
    int ndim;
    size_t shape[KVR_NPY_MAX_DIMS];
    char kind[VEC_PATH_MAX + 8];
    int line;                  /* line number in the manifest */
    int level;                 /* "level N" at the head of the description; 0 if none */
} vec_entry;

/* Validate PORTDIR against the vectors in DIR, printing one line per array,
 * one summary line per level and the total.  0 when all pass, 1 otherwise. */
int vec_validate(const char *dir, const char *port);

#endif
