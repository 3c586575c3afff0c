/* cuda.c: the CUDA backend's conformance suite against ref/ (doc/cuda.md).
 * Exits 77 (SKIP) where the CUDA backend is not built or no GPU is present. */
#include <config.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include "kvreviver.h"

int main(void)
{
    if (!kvr_backend_available(KVR_BACKEND_CUDA)) {
        printf("SKIP: the CUDA backend is %s\n",
#ifdef KVR_HAVE_CUDA
               "built but no usable GPU was found"
#else
               "not built (configure --with-cuda)"
#endif
        );
        return 77;
    }
    printf("CUDA backend available; the conformance suite arrives with the CUDA issue\n");
    return 77;
}
