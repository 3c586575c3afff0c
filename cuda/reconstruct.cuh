/* reconstruct.cuh: one coordinate of a vague token's reconstruction (spec
 * §8), the operations of ref/reconstruct.c's estimate() in the same order. */
#ifndef KVR_CUDA_RECONSTRUCT_CUH
#define KVR_CUDA_RECONSTRUCT_CUH
#include "common.cuh"

/* sums: sk_k or sk_v [d][w][D]; mu: coordinate i of the vague mean;
 * rows: the token's d row hashes (kvr_dev_row). */
__device__ inline float kvr_dev_estimate(const kvr_cuda_params &p, const kvr_row_hash *rows,
                                         const float *sums, float mu, int i)
{
    float x[KVR_CUDA_MAX_DEPTH];
    int d = p.depth;
    for (int r = 0; r < d; r++) {
        float centred = sums[(size_t)rows[r].bucket * p.head_dim + i] - rows[r].count * mu;
        x[r] = rows[r].sign * (rows[r].alpha * centred) + mu;
    }
    if (p.rows == 1) {                          /* mean: row-order sum / d */
        float sum = 0.0f;
        for (int r = 0; r < d; r++)
            sum += x[r];
        return sum / (float)d;
    }
    for (int a = 1; a < d; a++) {               /* median: insertion sort, as ref */
        float key = x[a];
        int j = a - 1;
        while (j >= 0 && x[j] > key) { x[j + 1] = x[j]; j--; }
        x[j + 1] = key;
    }
    if (d % 2 == 1)
        return x[d / 2];
    return 0.5f * (x[d / 2 - 1] + x[d / 2]);
}
#endif
