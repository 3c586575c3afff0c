/* reconstruct.cu: a vague token's key and value from the sketch (spec §8),
 * mirror of ref/reconstruct.c.
 *
 * Row r's estimate e_r = s_r (alpha_r (S[r][b] - c mu)) + mu, combined by
 * the median (even d: 0.5 (lo + hi)) or the mean (row-order sum / d).  The
 * kernels are compiled without fused multiply-add (cuda/local.mk), so every
 * operation is the reference's float32 operation: the results are
 * bit-identical.  kvr_dev_estimate is shared with the attention kernel,
 * which reconstructs median rows on chip. */
#include <cuda_runtime.h>
#include "common.cuh"
#include "reconstruct.cuh"

/* grid n_items, block >= D threads: item j, coordinate threadIdx.x */
__global__ void reconstruct(kvr_cuda_params p, const kvr_cuda_head *heads, const int *head_of,
                            const int32_t *pos, float *k, float *v)
{
    const kvr_cuda_head &h = heads[head_of[blockIdx.x]];
    kvr_row_hash rows[KVR_CUDA_MAX_DEPTH];
    for (int r = 0; r < p.depth; r++)
        rows[r] = kvr_dev_row(p, h, r, pos[blockIdx.x]);
    for (int i = threadIdx.x; i < p.head_dim; i += blockDim.x) {
        size_t at = (size_t)blockIdx.x * p.head_dim + i;
        k[at] = kvr_dev_estimate(p, rows, h.sk_k, h.mu_k[i], i);
        v[at] = kvr_dev_estimate(p, rows, h.sk_v, h.mu_v[i], i);
    }
}

extern "C" int kvr_cuda_reconstruct(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_items,
                                    const int *head_dev, const int32_t *pos_dev, float *k_dev, float *v_dev)
{
    if (n_items <= 0)
        return 0;
    int threads = ((p->head_dim + 31) / 32) * 32;
    if (threads > 256) threads = 256;
    reconstruct<<<(unsigned)n_items, threads>>>(*p, heads_dev, head_dev, pos_dev, k_dev, v_dev);
    return (int)cudaGetLastError();
}
