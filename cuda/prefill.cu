/* prefill.cu: prefill importance scores of one KV head (spec §6.2), mirror
 * of ref_prefill_scores (ref/importance.c).
 *
 * raw_t = sum over the last `used` observation queries j and the G query
 * heads g of softmax_t(q_{j,g} . k_t / sqrt(D)) over the causal positions
 * t <= qpos(j).  One block per (j, g) query: its threads form the logits
 * (a thread per position, looping over D), reduce max and sum in shared
 * memory, and add p_t / sum into raw (float atomics: the order of the sum
 * over queries is not fixed; the conformance suite allows for it).  A second
 * kernel turns raw into scores: snapkv pools (kernel k, zero padding, avg
 * divides by k, or max), tova and h2o keep raw (tova: its last query alone).
 * The host (lib/cuda_backend.c) keeps the reference's selection
 * of candidates and placement, so partitions stay the reference's. */
#include <cuda_runtime.h>
#include "common.cuh"

#define PF_THREADS 256

/* grid used*G, block PF_THREADS.  logits: [used*G][n] workspace */
__global__ void prefill_raw(int D, int G, int n, const float *k, int n_obs, int used, const float *q,
                            float *logits, float *raw)
{
    __shared__ float red[PF_THREADS];
    int j = n_obs - used + (int)blockIdx.x / G, g = (int)blockIdx.x % G;
    int qpos = n - n_obs + j;
    const float *qg = q + ((size_t)j * G + g) * D;
    float *lg = logits + (size_t)blockIdx.x * n;
    float scale = 1.0f / sqrtf((float)D), mx = -INFINITY;
    for (int t = threadIdx.x; t <= qpos; t += blockDim.x) {
        float dot = 0.0f;
        for (int i = 0; i < D; i++)
            dot += qg[i] * k[(size_t)t * D + i];
        lg[t] = dot * scale;
        mx = fmaxf(mx, lg[t]);
    }
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    mx = red[0];
    __syncthreads();
    float sum = 0.0f;
    for (int t = threadIdx.x; t <= qpos; t += blockDim.x) {
        lg[t] = expf(lg[t] - mx);
        sum += lg[t];
    }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    sum = red[0];
    for (int t = threadIdx.x; t <= qpos; t += blockDim.x)
        atomicAdd(&raw[t], lg[t] / sum);
}

/* thread per position: the importance rule's score from raw (spec §6.2) */
__global__ void prefill_pool(int G, int importance, int kernel, int pool, int n, const float *raw, float *score)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    if (importance == 2) {                      /* snapkv */
        int half = kernel / 2;
        float acc = pool == 1 ? -INFINITY : 0.0f;
        for (int j = t - half; j <= t + half; j++) {
            float x = (j >= 0 && j < n) ? raw[j] : 0.0f;
            if (pool == 1) { if (x > acc) acc = x; } else acc += x;
        }
        score[t] = pool == 1 ? acc : acc / (float)kernel;
    } else {                                    /* h2o, and tova (its last query alone) */
        score[t] = raw[t];
    }
}

extern "C" int kvr_cuda_prefill_scores(int D, int G, int importance, int obs_window, int pool_kernel, int pool,
                                       int n, const float *k_dev, int n_obs, const float *q_dev, float *score_dev)
{
    int used = n_obs < obs_window ? n_obs : obs_window;
    if (importance == 3 && used > 1) used = 1;  /* tova: only the last query */
    float *raw = NULL, *logits = NULL;
    cudaError_t e = cudaMalloc(&raw, (size_t)n * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&logits, ((size_t)used * G * n + 1) * sizeof(float));
    if (e == cudaSuccess) e = cudaMemset(raw, 0, (size_t)n * sizeof(float));
    if (e == cudaSuccess && used > 0) {
        prefill_raw<<<(unsigned)(used * G), PF_THREADS>>>(D, G, n, k_dev, n_obs, used, q_dev, logits, raw);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) {
        prefill_pool<<<(unsigned)((n + 255) / 256), 256>>>(G, importance, pool_kernel, pool, n, raw, score_dev);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    cudaFree(raw);
    cudaFree(logits);
    return (int)e;
}
