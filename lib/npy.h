/* npy.h: NumPy .npy files, format 1.0 (little-endian, C order; 2.0 and 3.0
 * headers are read too), for
 * conformance vectors and traces (doc/porting.md).  Internal to the project
 * (not installed). */
#ifndef KVR_NPY_H
#define KVR_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KVR_NPY_F32 = 0,   /* '<f4' */
    KVR_NPY_F16 = 1,   /* '<f2' */
    KVR_NPY_U16 = 2,   /* '<u2' (bfloat16 bits) */
    KVR_NPY_I32 = 3,   /* '<i4' */
    KVR_NPY_U64 = 4,   /* '<u8' */
    KVR_NPY_F64 = 5,   /* '<f8' */
    KVR_NPY_U8 = 6,    /* '|u1' (also read as '<u1') */
    KVR_NPY_I64 = 7    /* '<i8' */
} kvr_npy_type;

#define KVR_NPY_MAX_DIMS 8

typedef struct {
    kvr_npy_type type;
    int ndim;
    size_t shape[KVR_NPY_MAX_DIMS];
    size_t count;      /* product of the shape (1 for ndim 0) */
    void *data;        /* count elements, native little-endian layout */
} kvr_npy;

/* Bytes per element (0 for an unknown type) and the dtype string ('<f4'...,
 * NULL for an unknown type). */
size_t kvr_npy_type_size(kvr_npy_type type);
const char *kvr_npy_type_descr(kvr_npy_type type);
/* Read a whole .npy file.  KVR_EIO when it cannot be opened or read,
 * KVR_EFORMAT when malformed (the message names the path and the problem);
 * on failure *out is zeroed and nothing is left allocated. */
int kvr_npy_read(const char *path, kvr_npy *out);
/* Write a format 1.0 file (data starts at a multiple of 64 bytes).
 * KVR_EINVAL for bad arguments, KVR_EIO when writing fails (a partial file is
 * removed).  shape: [ndim]; data: count elements. */
int kvr_npy_write(const char *path, kvr_npy_type type, int ndim, const size_t *shape, const void *data);
void kvr_npy_free(kvr_npy *a);

#endif
