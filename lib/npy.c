/* npy.c: NumPy .npy reading and writing (stub: issue 5 fills it in). */
#include <config.h>
#include <string.h>
#include "internal.h"
#include "npy.h"

size_t kvr_npy_type_size(kvr_npy_type type)
{
    switch (type) {
    case KVR_NPY_F32: case KVR_NPY_I32: return 4;
    case KVR_NPY_F16: case KVR_NPY_U16: return 2;
    case KVR_NPY_U64: case KVR_NPY_F64: return 8;
    }
    return 0;
}

int kvr_npy_read(const char *path, kvr_npy *out)
{
    if (out) memset(out, 0, sizeof *out);
    return kvr_fail(KVR_EIO, "kvr_npy_read(%s): not implemented yet", path ? path : "(null)");
}

int kvr_npy_write(const char *path, kvr_npy_type type, int ndim, const size_t *shape, const void *data)
{
    (void)type; (void)ndim; (void)shape; (void)data;
    return kvr_fail(KVR_EIO, "kvr_npy_write(%s): not implemented yet", path ? path : "(null)");
}

void kvr_npy_free(kvr_npy *a)
{
    if (a) { kvr_free(a->data); memset(a, 0, sizeof *a); }
}
