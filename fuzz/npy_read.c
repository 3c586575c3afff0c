/* npy_read.c: fuzz target for the NumPy file reader (lib/npy.h,
 * kvr_npy_read).  The reader takes a path, so each input is written to a
 * temporary file first.  Any input must be read (with a shape whose product
 * is the element count) or rejected with KVR_EFORMAT, leaving nothing
 * allocated, and no allocation may be larger than the input (the header and
 * the data are checked against the file's length first); a crash or a
 * sanitizer report is a bug.  While lib/npy.c is
 * the stub, every read fails with KVR_EIO "not implemented", accepted here. */
#include <config.h>
#include <stdlib.h>
#include "internal.h"
#include "npy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file(data, size, "npy");
    if (!path)
        return 0;
    kvr_npy a;
    kvr_alloc_largest_reset();
    int status = kvr_npy_read(path, &a);
    remove(path);
    fuzz_check_alloc("kvr_npy_read", kvr_alloc_largest(), size, 1);
    if (status == KVR_OK) {
        size_t count = 1;
        if (a.ndim < 0 || a.ndim > KVR_NPY_MAX_DIMS)
            abort();
        for (int i = 0; i < a.ndim; i++)
            count *= a.shape[i];
        if (count != a.count || (count > 0 && !a.data))
            abort();
        /* every element readable */
        volatile unsigned char sink = 0;
        for (size_t i = 0; i < count * kvr_npy_type_size(a.type); i++)
            sink ^= ((const unsigned char *)a.data)[i];
        (void)sink;
        kvr_npy_free(&a);
        return 0;
    }
    if (a.data != NULL)
        abort();
    if (status == KVR_EFORMAT || (status == KVR_EIO && strstr(kvr_last_error(), "not implemented")))
        return 0;
    abort();
}
