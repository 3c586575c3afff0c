/* common.cuh: small device helpers shared by the kernels: loading a stored
 * element as float32 (spec §4: exact, so device and reference see the same
 * values), warp reductions, one row's hash data, and the online-softmax
 * merge of two partial states. */
#ifndef KVR_CUDA_COMMON_CUH
#define KVR_CUDA_COMMON_CUH
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include "kvr_cuda.h"
#include "hash.cuh"

/* Element i of an array stored as kvr_elem elem (0 f32, 1 f16, 2 bf16). */
__device__ inline float kvr_dev_load(const void *p, int elem, size_t i)
{
    if (elem == 0)
        return ((const float *)p)[i];
    unsigned short b = ((const unsigned short *)p)[i];
    if (elem == 1)
        return __half2float(__ushort_as_half(b));
    return __uint_as_float((unsigned)b << 16);
}

__device__ inline float kvr_warp_sum(float x)
{
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ inline float kvr_warp_max(float x)
{
    for (int o = 16; o > 0; o >>= 1)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

/* Row r of position pos: the bucket index r*w + b, the sign, alpha and the
 * signed count, exactly as ref/reconstruct.c forms them. */
struct kvr_row_hash {
    int bucket;
    float sign, alpha, count;
};
__device__ inline kvr_row_hash kvr_dev_row(const kvr_cuda_params &p, const kvr_cuda_head &h, int r, long pos)
{
    uint64_t x = kvr_dev_hash(p.seed, h.layer, h.kv_head, (uint32_t)r, (uint64_t)pos);
    kvr_row_hash o;
    o.bucket = r * p.width + (int)kvr_dev_bucket(x, (uint32_t)p.width);
    o.sign = kvr_dev_sign(x);
    o.count = (float)h.sk_count[o.bucket];
    o.alpha = p.shrink ? 1.0f / (float)h.sk_load[o.bucket] : 1.0f;
    return o;
}

/* kvr_dev_row from the row's hash prefix (kvr_dev_hash_prefix): the same
 * values, one mix instead of four. */
__device__ inline kvr_row_hash kvr_dev_row_pre(const kvr_cuda_params &p, const kvr_cuda_head &h, int r,
                                               uint64_t prefix, long pos)
{
    uint64_t x = kvr_dev_hash_pos(prefix, (uint64_t)pos);
    kvr_row_hash o;
    o.bucket = r * p.width + (int)kvr_dev_bucket(x, (uint32_t)p.width);
    o.sign = kvr_dev_sign(x);
    o.count = (float)h.sk_count[o.bucket];
    o.alpha = p.shrink ? 1.0f / (float)h.sk_load[o.bucket] : 1.0f;
    return o;
}

/* Eight consecutive 16-bit elements (kvr_elem 1 f16, 2 bf16) at p + i, one
 * 16-byte load (p + i must be 16-byte aligned), as float32: the values of
 * kvr_dev_load. */
__device__ __forceinline__ uint4 kvr_dev_raw8(const void *p, size_t i)
{
    return __ldg((const uint4 *)((const unsigned short *)p + i));
}
__device__ __forceinline__ float kvr_dev_half(unsigned w, int hi, int elem)
{
    unsigned b = hi ? w >> 16 : w & 0xffffu;
    if (elem == 1)
        return __half2float(__ushort_as_half((unsigned short)b));
    return __uint_as_float(b << 16);
}
__device__ __forceinline__ void kvr_dev_unpack8(uint4 u, int elem, float (&x)[8])
{
    x[0] = kvr_dev_half(u.x, 0, elem); x[1] = kvr_dev_half(u.x, 1, elem);
    x[2] = kvr_dev_half(u.y, 0, elem); x[3] = kvr_dev_half(u.y, 1, elem);
    x[4] = kvr_dev_half(u.z, 0, elem); x[5] = kvr_dev_half(u.z, 1, elem);
    x[6] = kvr_dev_half(u.w, 0, elem); x[7] = kvr_dev_half(u.w, 1, elem);
}

/* 1 when pos is one of the (sorted) candidate positions. */
__device__ inline int kvr_dev_is_cand(const kvr_cuda_head &h, long pos)
{
    int lo = 0, hi = h.n_cand - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        int c = h.cand_pos[mid];
        if (c == pos) return 1;
        if (c < pos) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
}

/* Parts of a head cache seen by a kernel (spec §3.1): S' sinks held, R'
 * window positions held, E exact rows, M middle positions (candidates or
 * vague; 0 when vague tokens are dropped). */
struct kvr_parts {
    int s, r, e, m;
};
__device__ inline kvr_parts kvr_dev_parts(const kvr_cuda_params &p, const kvr_cuda_head &h)
{
    kvr_parts o;
    o.s = h.n < h.sinks ? h.n : h.sinks;
    o.r = h.n - o.s < h.window ? h.n - o.s : h.window;
    o.e = o.s + o.r + h.n_cand;
    o.m = (p.depth > 0 && p.width > 0) ? h.n - o.s - o.r : 0;
    return o;
}
#endif
