/* device.cu: the CUDA backend's device probe, memory, copies and timing,
 * and the check of the device hash against the host's.
 *
 * The CUDA path mirrors ref/ concept by concept (doc/cuda.md).  This file
 * answers whether a usable device is present, so the library and the tests
 * can fall back or SKIP cleanly on machines without one, and wraps the few
 * runtime calls the C side needs, so that lib/ and tool/ include no CUDA
 * header. */
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <stdlib.h>
#include "kvr_cuda.h"
#include "hash.cuh"
#include "kvreviver.h"

extern "C" int kvr_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();   /* clear the sticky error: no driver, no device */
        return 0;
    }
    return n;
}

extern "C" const char *kvr_cuda_error_string(int code)
{
    return cudaGetErrorString((cudaError_t)code);
}

extern "C" const char *kvr_cuda_device_name(void)
{
    static cudaDeviceProp prop;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess)
        return "?";
    return prop.name;
}

extern "C" int kvr_cuda_malloc(void **dev, size_t bytes)
{
    *dev = NULL;
    return (int)cudaMalloc(dev, bytes > 0 ? bytes : 1);
}

extern "C" void kvr_cuda_free(void *dev)
{
    if (dev)
        (void)cudaFree(dev);
}

extern "C" int kvr_cuda_upload(void *dev, const void *host, size_t bytes)
{
    return bytes ? (int)cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice) : 0;
}

extern "C" int kvr_cuda_download(void *host, const void *dev, size_t bytes)
{
    return bytes ? (int)cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost) : 0;
}

extern "C" int kvr_cuda_memset(void *dev, int byte, size_t bytes)
{
    return bytes ? (int)cudaMemset(dev, byte, bytes) : 0;
}

extern "C" int kvr_cuda_sync(void)
{
    return (int)cudaDeviceSynchronize();
}

/* One element per thread, grid-stride: a SplitMix64 value of (seed, index)
 * mapped to [-scale, scale) and stored in the element type. */
__global__ void fill_random(void *p, size_t count, int elem, uint64_t seed, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        uint64_t x = kvr_dev_mix64(seed ^ kvr_dev_mix64(i));
        float u = (float)(x >> 40) * (1.0f / 16777216.0f);     /* [0, 1) */
        float val = (2.0f * u - 1.0f) * scale;
        if (elem == 0) ((float *)p)[i] = val;
        else if (elem == 1) ((__half *)p)[i] = __float2half_rn(val);
        else if (elem == 2) ((unsigned short *)p)[i] = (unsigned short)(__float_as_uint(val) >> 16);
        else ((int32_t *)p)[i] = (int32_t)(u * scale);
    }
}

extern "C" int kvr_cuda_fill_random(void *dev, size_t count, int elem, uint64_t seed, float scale)
{
    if (count == 0)
        return 0;
    fill_random<<<1024, 256>>>(dev, count, elem, seed, scale);
    return (int)cudaGetLastError();
}

static cudaEvent_t timer_a, timer_b;

extern "C" int kvr_cuda_timer_start(void)
{
    if (!timer_a) {
        cudaError_t e = cudaEventCreate(&timer_a);
        if (e == cudaSuccess) e = cudaEventCreate(&timer_b);
        if (e != cudaSuccess) return (int)e;
    }
    return (int)cudaEventRecord(timer_a);
}

extern "C" int kvr_cuda_timer_stop(float *ms)
{
    cudaError_t e = cudaEventRecord(timer_b);
    if (e == cudaSuccess) e = cudaEventSynchronize(timer_b);
    if (e == cudaSuccess) e = cudaEventElapsedTime(ms, timer_a, timer_b);
    return (int)e;
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

extern "C" int kvr_cuda_copy_bandwidth(size_t bytes, int reps, double *gbps)
{
    void *a = NULL, *b = NULL;
    cudaError_t e = cudaMalloc(&a, bytes);
    if (e == cudaSuccess) e = cudaMalloc(&b, bytes);
    if (e == cudaSuccess) e = cudaMemset(a, 1, bytes);
    float *t = (float *)malloc(sizeof(float) * (reps > 0 ? reps : 1));
    int kept = 0;
    if (!t) e = cudaErrorMemoryAllocation;
    for (int i = -2; e == cudaSuccess && i < reps; i++) {   /* two warm-up copies */
        float ms = 0;
        int s = kvr_cuda_timer_start();
        if (s == 0) e = cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
        if (s == 0 && e == cudaSuccess) s = kvr_cuda_timer_stop(&ms);
        if (s != 0) e = (cudaError_t)s;
        if (i >= 0) t[kept++] = ms;
    }
    cudaFree(a);
    cudaFree(b);
    if (e == cudaSuccess && kept > 0) {
        qsort(t, (size_t)kept, sizeof(float), by_value);
        *gbps = 2.0 * (double)bytes / (t[kept / 2] * 1e-3) / 1e9;
    }
    free(t);
    return (int)e;
}

__global__ void hash_many(uint64_t seed, int n, uint32_t width, uint64_t *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint64_t x = kvr_dev_mix64(seed + (uint64_t)i);        /* varied inputs */
    uint64_t h = kvr_dev_hash(seed, (uint32_t)(x & 0xFF), (uint32_t)((x >> 8) & 0xFF),
                              (uint32_t)((x >> 16) & 0x3F), (x >> 24) & 0xFFFFFFu);
    out[3 * i] = h;
    out[3 * i + 1] = kvr_dev_bucket(h, width);
    out[3 * i + 2] = kvr_dev_sign(h) > 0 ? 1u : 0u;
}

extern "C" int kvr_cuda_hash_check(uint64_t seed, int n, uint32_t width, int *mismatches)
{
    uint64_t *d = NULL;
    size_t count = 3 * (size_t)n;
    uint64_t *h = (uint64_t *)malloc(count * sizeof(uint64_t));
    if (!h) return (int)cudaErrorMemoryAllocation;
    cudaError_t e = cudaMalloc(&d, count * sizeof(uint64_t));
    if (e == cudaSuccess) {
        hash_many<<<(n + 255) / 256, 256>>>(seed, n, width, d);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpy(h, d, count * sizeof(uint64_t), cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e != cudaSuccess) { free(h); return (int)e; }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        uint64_t x = kvr_dev_mix64(seed + (uint64_t)i);
        uint64_t ref = kvr_hash(seed, (uint32_t)(x & 0xFF), (uint32_t)((x >> 8) & 0xFF),
                                (uint32_t)((x >> 16) & 0x3F), (x >> 24) & 0xFFFFFFu);
        if (h[3 * i] != ref || h[3 * i + 1] != kvr_hash_bucket(ref, width)
            || h[3 * i + 2] != (kvr_hash_sign(ref) > 0 ? 1u : 0u))
            bad++;
    }
    free(h);
    *mismatches = bad;
    return 0;
}
