/* device.cu: the CUDA backend's device probe.
 *
 * The CUDA path mirrors ref/ concept by concept (doc/cuda.md).  This file
 * answers whether a usable device is present, so the library and the tests
 * can fall back or SKIP cleanly on machines without one. */
#include <cuda_runtime.h>

extern "C" int kvr_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();   /* clear the sticky error: no driver, no device */
        return 0;
    }
    return n;
}
