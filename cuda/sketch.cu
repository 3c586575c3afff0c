/* sketch.cu: insertion of vague tokens into the sketch (spec §7.3), mirror
 * of ref_sketch_insert (ref/sketch.c), for many heads in one launch.
 *
 * One block per (head, row); thread i owns coordinate i of that row (and
 * thread 0 the bucket's signed count and load).  The block walks the head's
 * tokens in the order given, which is the order the reference inserts them,
 * and adds s * k_i to the token's bucket: the same float32 additions in the
 * same order, so the device sums are bit-identical to the reference's.
 * Rows are independent, so no two blocks touch the same memory and no
 * atomics are needed.  The running float64 sums for centring (spec §7.4)
 * stay on the host, which owns the vague count (lib/cuda_backend.c). */
#include <cuda_runtime.h>
#include "common.cuh"

/* grid (n_heads, d), block >= D threads (a multiple of 32)
 *   offsets: [n_heads + 1]; pos: [m]; k, v: [m][D] */
__global__ void sketch_insert(kvr_cuda_params p, const kvr_cuda_head *heads, const int *offsets,
                              const int32_t *pos, const float *k, const float *v)
{
    const kvr_cuda_head &h = heads[blockIdx.x];
    int r = blockIdx.y, D = p.head_dim;
    for (int e = offsets[blockIdx.x]; e < offsets[blockIdx.x + 1]; e++) {
        uint64_t x = kvr_dev_hash(p.seed, h.layer, h.kv_head, (uint32_t)r, (uint64_t)pos[e]);
        size_t bucket = (size_t)r * p.width + kvr_dev_bucket(x, (uint32_t)p.width);
        float s = kvr_dev_sign(x);
        for (int i = threadIdx.x; i < D; i += blockDim.x) {
            h.sk_k[bucket * D + i] += s * k[(size_t)e * D + i];
            h.sk_v[bucket * D + i] += s * v[(size_t)e * D + i];
        }
        if (threadIdx.x == 0) {
            h.sk_count[bucket] += (int32_t)s;
            h.sk_load[bucket] += 1;
        }
    }
}

extern "C" int kvr_cuda_sketch_insert(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_heads,
                                      const int *offsets_dev, const int32_t *pos_dev,
                                      const float *k_dev, const float *v_dev)
{
    if (n_heads <= 0 || p->depth <= 0 || p->width <= 0)
        return 0;
    int threads = ((p->head_dim + 31) / 32) * 32;
    if (threads > 256) threads = 256;
    sketch_insert<<<dim3((unsigned)n_heads, (unsigned)p->depth), threads>>>(*p, heads_dev, offsets_dev,
                                                                           pos_dev, k_dev, v_dev);
    return (int)cudaGetLastError();
}
