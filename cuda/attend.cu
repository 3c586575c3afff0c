/* attend.cu: fused decode attention over the exact and the vague part
 * (spec §11), mirror of ref/attend.c (median rows) and ref/sketchattend.c
 * (mean rows), for a batch of head caches per launch.
 *
 * The work of one head cache is a list of items: its E exact rows (sinks,
 * window, candidates: loaded from their element type) and, when it has a
 * sketch, its M middle positions (each a candidate, skipped there, or a
 * vague token).  The list is split into chunks over the context
 * (FlashDecoding): a block handles one chunk of one head cache and leaves a
 * partial softmax state per query head (running max m, sum l, unnormalised
 * output acc[D]); a merge kernel combines the chunks.
 *
 *   exact rows, 16-bit elements, D in {64, 128, 256} (exact_fast): D/8
 *     lanes per row, one 16-byte load each, several rows in flight per
 *     lane, K and V read once for the G query heads of the group; other
 *     element types: a warp per row, lanes over the D coordinates.
 *   median vague tokens: a warp per token, lanes over the D coordinates,
 *     reconstructed on chip from the sketch (the reference's operations;
 *     rows in registers for depth <= 4); a warp hashes 32 tokens at once.
 *   mean vague tokens: the sketch-domain form (ref/sketchattend.c).  A first
 *     kernel forms the d*w bucket dot products P[g][r][b] = q_g . S_K[r][b]
 *     and q_g . mu_k; then each vague token's logit costs O(d), a thread per
 *     token.  Their values are not summed token by token: after the merge
 *     gives the final max M_g and sum L_g, a kernel adds p_t s_r(t) into
 *     W[g][r][b] (p_t = exp(logit_t - M_g)), and a last kernel forms
 *     (sum p_t) mu_v + (1/d) sum W alpha (S_V - c mu_v): O(N d + d w D).
 *
 * Kernels, in launch order: sketch_scores (mean rows), attend_split,
 * attend_merge, vague_weights and vague_finish (mean rows), exact_probs
 * (when the caller wants probabilities for the importance update). */
#include <cuda_runtime.h>
#include <stdlib.h>
#include "common.cuh"
#include "reconstruct.cuh"

#define WARPS 4                 /* warps per block of attend_split */
#define G_MAX KVR_CUDA_MAX_GROUP
#define TARGET_BLOCKS 2048      /* chunks are sized so a launch has about this many blocks */
#define SMEM_W_MAX (200 * 1024) /* largest shared copy of W per block (H100: 227 KiB) */
#define BM_WORDS 512           /* candidate bitmap words: 16384 middle positions per window */

struct kvr_cuda_attend_ws {
    int n_heads, chunk_cap, exact_cap, dw, G, D;
    float *part_m, *part_l;     /* [n_heads][chunk_cap][G] */
    float *part_acc;            /* [n_heads][chunk_cap][G][D] */
    float *M, *L, *qmu, *sumv;  /* [n_heads][G] */
    float *P, *W;               /* [n_heads][G][d*w] */
    float *logit;               /* [n_heads][G][exact_cap] */
};

/* Combine (m, l) with (m2, l2); returns the factor to rescale the first
 * state's accumulator by.  -inf is an empty state. */
__device__ inline float merge_state(float &m, float &l, float m2, float l2)
{
    if (m2 == -INFINITY) return 1.0f;
    if (m == -INFINITY) { m = m2; l = l2; return 0.0f; }
    float M = fmaxf(m, m2);
    float a = expf(m - M), b = expf(m2 - M);
    l = l * a + l2 * b;
    m = M;
    return a;
}

/* The logit of a mean-row vague token from the bucket dot products, the
 * operations of ref/sketchattend.c.  P: [d*w] of query head g. */
template <int DM>
__device__ inline float mean_logit(const kvr_cuda_params &p, const kvr_row_hash (&rows)[DM], const float *P,
                                   float qmu, float inv_d, float scale)
{
    float acc = 0.0f;
#pragma unroll(DM <= 4 ? DM : 1)
    for (int r = 0; r < DM; r++)
        if (r < p.depth)
            acc += rows[r].sign * (rows[r].alpha * (P[rows[r].bucket] - rows[r].count * qmu));
    return (qmu + acc * inv_d) * scale;
}

/* The d <= DM row hashes of position pos from the rows' hash prefixes
 * (pre: [d], shared), unrolled so that rows stays in registers. */
template <int DM>
__device__ __forceinline__ void rows_of(const kvr_cuda_params &p, const kvr_cuda_head &h, const uint64_t *pre, long pos,
                                        kvr_row_hash (&rows)[DM])
{
#pragma unroll(DM <= 4 ? DM : 1)
    for (int r = 0; r < DM; r++)
        if (r < p.depth)
            rows[r] = kvr_dev_row_pre(p, h, r, pre[r], pos);
}

/* One coordinate of a median-row estimate (kvr_dev_estimate's values) with
 * the d <= DM rows in registers: the row estimates are sorted by a stable
 * exchange sort (unrolled, the same order as the reference's insertion
 * sort), padding rows r >= d with +inf at the end. */
template <int DM>
__device__ __forceinline__ float median_estimate(const kvr_cuda_params &p, const kvr_row_hash (&rows)[DM],
                                                 const float *sums, float mu, int i)
{
    float x[DM];
    const int d = p.depth;
#pragma unroll
    for (int r = 0; r < DM; r++) {
        x[r] = INFINITY;
        if (r < d) {
            float centred = sums[(size_t)rows[r].bucket * p.head_dim + i] - rows[r].count * mu;
            x[r] = rows[r].sign * (rows[r].alpha * centred) + mu;
        }
    }
#pragma unroll
    for (int a = 0; a < DM - 1; a++)
#pragma unroll
        for (int j = 0; j < DM - 1 - a; j++)
            if (x[j] > x[j + 1]) { float t = x[j]; x[j] = x[j + 1]; x[j + 1] = t; }
    float lo = x[0], hi = x[0];
#pragma unroll
    for (int r = 1; r < DM; r++) {
        if (r == d / 2) hi = x[r];
        if (r == d / 2 - 1) lo = x[r];
    }
    return d % 2 == 1 ? hi : 0.5f * (lo + hi);
}

/* grid (n_heads, d, ceil((w+1)/8)), block 256: P[h][g][r][b] = q_g . S_K[r][b];
 * bucket index b == w (row 0 only) gives qmu[h][g] = q_g . mu_k.  A warp
 * per bucket, lanes over coordinates: the bucket's row is read once for the
 * G query heads, whose sums are kept side by side (each in the order
 * i = lane, lane + 32, ..., then the warp sum). */
__global__ void sketch_scores(kvr_cuda_params p, const kvr_cuda_head *heads, const float *q, float *P, float *qmu)
{
    const kvr_cuda_head &h = heads[blockIdx.x];
    const int r = blockIdx.y, D = p.head_dim, G = p.group, dw = p.depth * p.width;
    const int lane = threadIdx.x % 32, b = (int)blockIdx.z * (blockDim.x / 32) + threadIdx.x / 32;
    const int last = r == 0 ? p.width : p.width - 1;
    if (h.n_vague == 0 || b > last) return;             /* uniform over the warp (no block barrier) */
    const float *row = b < p.width ? h.sk_k + ((size_t)r * p.width + b) * D : h.mu_k;
    const float *qh = q + (size_t)blockIdx.x * G * D;
    float s[G_MAX];
#pragma unroll
    for (int g = 0; g < G_MAX; g++) s[g] = 0.0f;
    for (int i = lane; i < D; i += 32) {
        const float x = row[i];
#pragma unroll
        for (int g = 0; g < G_MAX; g++)
            if (g < G) s[g] += qh[(size_t)g * D + i] * x;
    }
#pragma unroll
    for (int g = 0; g < G_MAX; g++) {
        if (g >= G) break;
        float t = kvr_warp_sum(s[g]);
        if (lane == 0) {
            if (b < p.width) P[((size_t)blockIdx.x * G + g) * dw + (size_t)r * p.width + b] = t;
            else qmu[(size_t)blockIdx.x * G + g] = t;
        }
    }
}

/* Exact row `it` of a head cache: sinks, then window positions n-R'..n-1,
 * then candidates.  K, V: the part's arrays; row: the row in them. */
__device__ __forceinline__ void exact_row(const kvr_cuda_head &h, const kvr_parts &parts, int it,
                                          const void *&K, const void *&V, size_t &row)
{
    if (it < parts.s) { K = h.sink_k; V = h.sink_v; row = (size_t)it; }
    else if (it < parts.s + parts.r) {
        long pos = (long)h.n - parts.r + (it - parts.s);
        K = h.win_k; V = h.win_v; row = (size_t)(pos % h.window);
    } else { K = h.cand_k; V = h.cand_v; row = (size_t)(it - parts.s - parts.r); }
}

/* Lane's coordinates (j*32 + lane) of exact row `it` (any element type). */
template <int VM>
__device__ __forceinline__ void load_exact(const kvr_cuda_params &p, const kvr_cuda_head &h, const kvr_parts &parts,
                                           int it, int lane, float (&kc)[VM], float (&vc)[VM])
{
    const void *K, *V;
    size_t row;
    exact_row(h, parts, it, K, V, row);
#pragma unroll
    for (int j = 0; j < VM; j++) {
        int i = j * 32 + lane;
        kc[j] = i < p.head_dim ? kvr_dev_load(K, p.elem, row * p.head_dim + i) : 0.0f;
        vc[j] = i < p.head_dim ? kvr_dev_load(V, p.elem, row * p.head_dim + i) : 0.0f;
    }
}

/* Online softmax (spec §11.2) of one token for the G query heads of a warp:
 * logit = (q . k) * scale, then the running max m, sum l and output acc
 * (lane-distributed) absorb it.  lg_out: NULL, or where to store the logit
 * of query head g at lg_out[g * stride]. */
template <int GM, int VM>
__device__ __forceinline__ void absorb(int G, int lane, float scale, const float (&qr)[GM][VM],
                                       const float (&kc)[VM], const float (&vc)[VM], float (&m)[GM],
                                       float (&l)[GM], float (&acc)[GM][VM], float *lg_out, int stride)
{
#pragma unroll
    for (int g = 0; g < GM; g++) {
        if (g >= G) break;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < VM; j++)
            s += qr[g][j] * kc[j];
        float lg = kvr_warp_sum(s) * scale;
        if (lg_out && lane == 0)
            lg_out[(size_t)g * stride] = lg;
        float M = fmaxf(m[g], lg);
        float corr = expf(m[g] - M), pt = expf(lg - M);
        l[g] = l[g] * corr + pt;
        m[g] = M;
#pragma unroll
        for (int j = 0; j < VM; j++)
            acc[g][j] = acc[g][j] * corr + pt * vc[j];
    }
}

/* exp(x - M) that is 0 for an empty state x = -inf (also when M = -inf). */
__device__ __forceinline__ float exp_or_zero(float x, float M)
{
    return x == -INFINITY ? 0.0f : expf(x - M);
}

/* The exact rows [t0, t1) of one block, 16-bit elements, D == VM*32, every
 * exact array 16-byte aligned: the bandwidth path.  A row of K (and of V)
 * is read by LPT = D/8 lanes, one 16-byte load each (8 coordinates), so a
 * warp reads 32/LPT whole rows per load instruction, coalesced; each lane
 * keeps U tokens' loads in flight before using them.  K and V are read once
 * for all G query heads.  The logit is the LPT lanes' partial dot products
 * summed by shuffles; the softmax state is kept per lane group, rescaled
 * once per U tokens, and the groups are merged at the end.  The warp's
 * state is left in (m, l, acc) in the layout of attend_split (lane holds
 * coordinates j*32 + lane); sm: this warp's [GM][VM*32] scratch. */
template <int GM, int VM>
__device__ __forceinline__ void exact_fast(const kvr_cuda_params &p, const kvr_cuda_head &h, const kvr_parts &parts,
                                           const float *qh, int t0, int t1, float scale, float *lg_out, int stride,
                                           float (&m)[GM], float (&l)[GM], float (&acc)[GM][VM], float *sm)
{
    constexpr int LPT = VM * 4, TPW = 32 / LPT, U = GM <= 4 ? 4 : 2, D = VM * 32;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane / LPT, sl = lane % LPT;
    const int G = p.group, elem = p.elem;
    float qf[GM][8], fm[GM], fl[GM], fa[GM][8];
#pragma unroll
    for (int g = 0; g < GM; g++) {
        fm[g] = -INFINITY;
        fl[g] = 0.0f;
#pragma unroll
        for (int c = 0; c < 8; c++) {
            qf[g][c] = g < G ? qh[(size_t)g * D + sl * 8 + c] : 0.0f;
            fa[g][c] = 0.0f;
        }
    }
    for (int base = t0; base < t1; base += WARPS * TPW * U) {      /* uniform over the warp */
        uint4 ku[U], vu[U];
        int it[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            it[u] = base + (u * WARPS + warp) * TPW + sub;
            ku[u] = vu[u] = make_uint4(0, 0, 0, 0);
            if (it[u] < t1) {
                const void *K, *V;
                size_t row;
                exact_row(h, parts, it[u], K, V, row);
                ku[u] = kvr_dev_raw8(K, row * D + sl * 8);
                vu[u] = kvr_dev_raw8(V, row * D + sl * 8);
            }
        }
        float lg[U][GM];
#pragma unroll
        for (int u = 0; u < U; u++) {
            float kx[8];
            kvr_dev_unpack8(ku[u], elem, kx);
#pragma unroll
            for (int g = 0; g < GM; g++) {
                lg[u][g] = -INFINITY;
                if (g < G) {
                    float s = 0.0f;
#pragma unroll
                    for (int c = 0; c < 8; c++)
                        s = __fmaf_rn(qf[g][c], kx[c], s);
#pragma unroll
                    for (int o = LPT / 2; o > 0; o >>= 1)
                        s += __shfl_xor_sync(0xffffffffu, s, o);
                    if (it[u] < t1) {
                        lg[u][g] = s * scale;
                        if (lg_out && sl == 0)
                            lg_out[(size_t)g * stride + it[u]] = lg[u][g];
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < GM; g++) {                 /* one rescale per U tokens */
            if (g < G) {
                float mx = lg[0][g];
#pragma unroll
                for (int u = 1; u < U; u++)
                    mx = fmaxf(mx, lg[u][g]);
                float M = fmaxf(fm[g], mx), corr = exp_or_zero(fm[g], M);
                fl[g] *= corr;
#pragma unroll
                for (int c = 0; c < 8; c++)
                    fa[g][c] *= corr;
                fm[g] = M;
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            float vx[8];
            kvr_dev_unpack8(vu[u], elem, vx);
#pragma unroll
            for (int g = 0; g < GM; g++) {
                if (g < G) {
                    float pt = exp_or_zero(lg[u][g], fm[g]);
                    fl[g] += pt;
#pragma unroll
                    for (int c = 0; c < 8; c++)
                        fa[g][c] = __fmaf_rn(pt, vx[c], fa[g][c]);
                }
            }
        }
    }
#pragma unroll
    for (int o = LPT; o < 32; o <<= 1)                 /* merge the warp's lane groups */
#pragma unroll
        for (int g = 0; g < GM; g++) {
            if (g < G) {
                float m2 = __shfl_xor_sync(0xffffffffu, fm[g], o), l2 = __shfl_xor_sync(0xffffffffu, fl[g], o);
                float M = fmaxf(fm[g], m2), a = exp_or_zero(fm[g], M), b = exp_or_zero(m2, M);
#pragma unroll
                for (int c = 0; c < 8; c++) {
                    float x2 = __shfl_xor_sync(0xffffffffu, fa[g][c], o);
                    fa[g][c] = fa[g][c] * a + x2 * b;
                }
                fl[g] = fl[g] * a + l2 * b;
                fm[g] = M;
            }
        }
    if (sub == 0)
#pragma unroll
        for (int g = 0; g < GM; g++)
            if (g < G)
#pragma unroll
                for (int c = 0; c < 8; c++)
                    sm[g * D + sl * 8 + c] = fa[g][c];
    __syncwarp();
#pragma unroll
    for (int g = 0; g < GM; g++) {
        m[g] = fm[g];
        l[g] = fl[g];
#pragma unroll
        for (int j = 0; j < VM; j++)
            acc[g][j] = g < G ? sm[g * D + j * 32 + lane] : 0.0f;
    }
    __syncwarp();
}

/* First index of the sorted candidate positions with cand_pos[i] >= v. */
__device__ inline int cand_lower_bound(const kvr_cuda_head &h, long v)
{
    int lo = 0, hi = h.n_cand;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (h.cand_pos[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Whole block: bm[(x - a) / 32] bit (x - a) % 32 is set when middle index x
 * in [a, b) (b - a <= 32 * BM_WORDS) is a candidate position s + x, so the
 * per-token test costs one shared-memory read instead of a binary search
 * in global memory.  Ends with __syncthreads. */
__device__ void cand_bitmap(const kvr_cuda_head &h, int s, int a, int b, unsigned *bm)
{
    for (int x = threadIdx.x; x < (b - a + 31) / 32; x += blockDim.x)
        bm[x] = 0u;
    __syncthreads();
    int lo = cand_lower_bound(h, (long)s + a), hi = cand_lower_bound(h, (long)s + b);
    for (int i = lo + (int)threadIdx.x; i < hi; i += blockDim.x) {
        int x = h.cand_pos[i] - s - a;
        atomicOr(&bm[x >> 5], 1u << (x & 31));
    }
    __syncthreads();
}

__device__ __forceinline__ int cand_bit(const unsigned *bm, int x)
{
    return (bm[x >> 5] >> (x & 31)) & 1;
}

/* A median-row vague token, reconstructed on chip by the warp (lane: its
 * coordinates j*32 + lane) and absorbed into its softmax state; code: the
 * token's row codes (bucket | sign << 31) at code[r * 32].  DM bounds the
 * depth: 4 keeps the rows and estimates in registers; the largest depth
 * uses kvr_dev_estimate (reconstruct.cuh) itself. */
template <int GM, int VM, int DM>
__device__ __forceinline__ void median_token(const kvr_cuda_params &p, const kvr_cuda_head &h, const int *code, int lane,
                                             float scale, const float (&qr)[GM][VM], float (&m)[GM], float (&l)[GM],
                                             float (&acc)[GM][VM])
{
    kvr_row_hash rows[DM];
#pragma unroll(DM <= 4 ? DM : 1)
    for (int r = 0; r < DM; r++)
        if (r < p.depth) {
            int c = code[r * 32];
            rows[r].bucket = c & 0x7fffffff;
            rows[r].sign = c < 0 ? -1.0f : 1.0f;
            rows[r].count = (float)h.sk_count[rows[r].bucket];
            rows[r].alpha = p.shrink ? 1.0f / (float)h.sk_load[rows[r].bucket] : 1.0f;
        }
    float kc[VM], vc[VM];
#pragma unroll
    for (int jj = 0; jj < VM; jj++) {
        int i = jj * 32 + lane;
        if (DM == KVR_CUDA_MAX_DEPTH) {
            kc[jj] = i < p.head_dim ? kvr_dev_estimate(p, rows, h.sk_k, h.mu_k[i], i) : 0.0f;
            vc[jj] = i < p.head_dim ? kvr_dev_estimate(p, rows, h.sk_v, h.mu_v[i], i) : 0.0f;
        } else {
            kc[jj] = i < p.head_dim ? median_estimate<DM>(p, rows, h.sk_k, h.mu_k[i], i) : 0.0f;
            vc[jj] = i < p.head_dim ? median_estimate<DM>(p, rows, h.sk_v, h.mu_v[i], i) : 0.0f;
        }
    }
    absorb<GM, VM>(p.group, lane, scale, qr, kc, vc, m, l, acc, NULL, 0);
}

/* Mean-row vague tokens [xa, xb) of a thread's stride (the block's threads
 * in turn): their logits in O(d) (P, qmu: this head's [G][d*w] and [G]),
 * folded into the thread's (tm, tl) with one exp each; bm: the window's
 * candidate bitmap from wa. */
template <int GM, int DM>
__device__ __forceinline__ void mean_tokens(const kvr_cuda_params &p, const kvr_cuda_head &h, const uint64_t *pre,
                                            const unsigned *bm, int s, int wa, int wb, const float *P, const float *qmu,
                                            float scale, float (&tm)[GM], float (&tl)[GM])
{
    const float inv_d = 1.0f / (float)p.depth;
    const int dw = p.depth * p.width, G = p.group;
    for (int x = wa + threadIdx.x; x < wb; x += blockDim.x) {
        if (cand_bit(bm, x - wa)) continue;
        kvr_row_hash rows[DM];
        rows_of<DM>(p, h, pre, (long)s + x, rows);
#pragma unroll
        for (int g = 0; g < GM; g++) {
            if (g >= G) break;
            float lg = mean_logit<DM>(p, rows, P + (size_t)g * dw, qmu[g], inv_d, scale);
            if (lg > tm[g]) { tl[g] = tl[g] * exp_or_zero(tm[g], lg) + 1.0f; tm[g] = lg; }
            else tl[g] += expf(lg - tm[g]);
        }
    }
}

/* grid (chunks, n_heads), block WARPS*32.  Partial softmax state of one
 * chunk of items [c*chunk, (c+1)*chunk) of one head cache.  Instantiated for
 * GM >= G query heads and VM >= D/32 coordinates per lane, so the query and
 * the accumulators of a lane stay in registers, and for MID = 0 (no sketch:
 * exact rows only, fewer registers, more blocks per SM) or 1.
 *   q: [n_heads][G][D]; part_*: see the workspace; logit: NULL or
 *   [n_heads][G][exact_cap] (the logit of every exact row) */
template <int GM, int VM, int MID>
__global__ void __launch_bounds__(WARPS * 32, (MID || GM > 4 || VM > 4) ? 1 : 4)
attend_split(kvr_cuda_params p, const kvr_cuda_head *heads, const float *q, int chunk, int chunk_cap,
             const float *P, const float *qmu_all, float *part_m, float *part_l, float *part_acc,
             float *logit, int exact_cap)
{
    __shared__ float sm_m[WARPS][GM], sm_l[WARPS][GM];
    __shared__ float sm_acc[WARPS][GM][VM * 32];
    __shared__ unsigned sm_bm[BM_WORDS];
    __shared__ uint64_t sm_pre[KVR_CUDA_MAX_DEPTH];
    __shared__ int sm_code[WARPS][KVR_CUDA_MAX_DEPTH][32];
    const int hd = blockIdx.y, c = blockIdx.x;
    const kvr_cuda_head &h = heads[hd];
    const int D = p.head_dim, G = p.group, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float scale = 1.0f / sqrtf((float)D);
    kvr_parts parts = kvr_dev_parts(p, h);
    const int items = parts.e + parts.m;
    const int t0 = c * chunk, t1 = min(t0 + chunk, items);
    const int mean_vague = p.rows == 1 && parts.m > 0;

    float acc[GM][VM], m[GM], l[GM];
#pragma unroll
    for (int g = 0; g < GM; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < VM; j++)
            acc[g][j] = 0.0f;
    }

    const int exact_end = min(t1, parts.e);
    float *lg_out = logit ? logit + (size_t)hd * G * exact_cap : NULL;
    const uintptr_t al = (uintptr_t)h.sink_k | (uintptr_t)h.sink_v | (uintptr_t)h.win_k | (uintptr_t)h.win_v
                         | (uintptr_t)h.cand_k | (uintptr_t)h.cand_v;
    const int fast = p.elem != 0 && D == VM * 32 && (al & 15) == 0;
    if (fast && t0 < exact_end)
        exact_fast<GM, VM>(p, h, parts, q + (size_t)hd * G * D, t0, exact_end, scale, lg_out, exact_cap, m, l, acc,
                           &sm_acc[warp][0][0]);

    float qr[GM][VM];
#pragma unroll
    for (int g = 0; g < GM; g++)
#pragma unroll
        for (int j = 0; j < VM; j++) {
            int i = j * 32 + lane;
            qr[g][j] = (g < G && i < D) ? q[((size_t)hd * G + g) * D + i] : 0.0f;
        }

    /* any element type or layout: warp per item, two rows per step, both
     * loaded before either is used */
    if (!fast)
        for (int it = t0 + warp; it < exact_end; it += 2 * WARPS) {
            float kc[VM], vc[VM], kc2[VM], vc2[VM];
            const int it2 = it + WARPS;
            load_exact<VM>(p, h, parts, it, lane, kc, vc);
            if (it2 < exact_end)
                load_exact<VM>(p, h, parts, it2, lane, kc2, vc2);
            absorb<GM, VM>(G, lane, scale, qr, kc, vc, m, l, acc, lg_out ? lg_out + it : NULL, exact_cap);
            if (it2 < exact_end)
                absorb<GM, VM>(G, lane, scale, qr, kc2, vc2, m, l, acc, lg_out ? lg_out + it2 : NULL, exact_cap);
        }

    /* middle indices [x0, x1) of this chunk: vague tokens and candidates */
    const int x0 = max(t0, parts.e) - parts.e, x1 = t1 - parts.e;
    float tm[GM], tl[GM];
#pragma unroll
    for (int g = 0; g < GM; g++) { tm[g] = -INFINITY; tl[g] = 0.0f; }
    if (MID && x0 < x1) {                                /* uniform over the block */
        if ((int)threadIdx.x < p.depth)
            sm_pre[threadIdx.x] = kvr_dev_hash_prefix(p.seed, h.layer, h.kv_head, threadIdx.x);
        const int dw = p.depth * p.width;
        for (int wa = x0; wa < x1; wa += 32 * BM_WORDS) {
            const int wb = min(x1, wa + 32 * BM_WORDS);
            cand_bitmap(h, parts.s, wa, wb, sm_bm);
            if (!mean_vague) {
                /* median rows, warp per token, reconstructed on chip; the
                 * warp hashes 32 tokens at once (a lane each) */
                for (int base = wa + warp * 32; base < wb; base += WARPS * 32) {
                    const int x = base + lane;
                    const int live = x < wb && !cand_bit(sm_bm, x - wa);
                    if (live)
                        for (int r = 0; r < p.depth; r++) {
                            uint64_t hx = kvr_dev_hash_pos(sm_pre[r], (uint64_t)(parts.s + (long)x));
                            int b = r * p.width + (int)kvr_dev_bucket(hx, (uint32_t)p.width);
                            sm_code[warp][r][lane] = b | (int)((unsigned)(hx & 1u) << 31);
                        }
                    unsigned mask = __ballot_sync(0xffffffffu, live);
                    __syncwarp();
                    while (mask) {
                        const int j = __ffs(mask) - 1;
                        mask &= mask - 1;
                        if (p.depth <= 4)
                            median_token<GM, VM, 4>(p, h, &sm_code[warp][0][j], lane, scale, qr, m, l, acc);
                        else
                            median_token<GM, VM, KVR_CUDA_MAX_DEPTH>(p, h, &sm_code[warp][0][j], lane, scale, qr,
                                                                     m, l, acc);
                    }
                    __syncwarp();
                }
            } else {
                /* mean rows, thread per token, logits in O(d); they add to
                 * (m, l) only: their values come from vague_weights/vague_finish */
                const float *Ph = P + (size_t)hd * G * dw, *qmu = qmu_all + (size_t)hd * G;
                if (p.depth <= 4)
                    mean_tokens<GM, 4>(p, h, sm_pre, sm_bm, parts.s, wa, wb, Ph, qmu, scale, tm, tl);
                else
                    mean_tokens<GM, KVR_CUDA_MAX_DEPTH>(p, h, sm_pre, sm_bm, parts.s, wa, wb, Ph, qmu, scale, tm, tl);
            }
            __syncthreads();                             /* before the next window's bitmap */
        }
    }
    if (MID && mean_vague) {
#pragma unroll
        for (int g = 0; g < GM; g++) {                   /* warp-combine, then into the warp state */
            if (g >= G) break;
            for (int o = 16; o > 0; o >>= 1) {
                float m2 = __shfl_xor_sync(0xffffffffu, tm[g], o);
                float l2 = __shfl_xor_sync(0xffffffffu, tl[g], o);
                merge_state(tm[g], tl[g], m2, l2);
            }
            float a = merge_state(m[g], l[g], tm[g], tl[g]);
#pragma unroll
            for (int j = 0; j < VM; j++)
                acc[g][j] *= a;
        }
    }

    /* block merge of the warps' states, then the chunk's partial */
#pragma unroll
    for (int g = 0; g < GM; g++) {
        if (g >= G) break;
        if (lane == 0) { sm_m[warp][g] = m[g]; sm_l[warp][g] = l[g]; }
#pragma unroll
        for (int j = 0; j < VM; j++) {
            int i = j * 32 + lane;
            if (i < D) sm_acc[warp][g][i] = acc[g][j];
        }
    }
    __syncthreads();
    for (int x = threadIdx.x; x < G * D; x += blockDim.x) {
        int g = x / D, i = x % D;
        float M = -INFINITY;
        for (int w = 0; w < WARPS; w++) M = fmaxf(M, sm_m[w][g]);
        float L = 0.0f, A = 0.0f;
        if (M != -INFINITY)
            for (int w = 0; w < WARPS; w++) {
                if (sm_m[w][g] == -INFINITY) continue;
                float f = expf(sm_m[w][g] - M);
                L += sm_l[w][g] * f;
                A += sm_acc[w][g][i] * f;
            }
        size_t at = ((size_t)hd * chunk_cap + c) * G + g;
        part_acc[at * D + i] = A;
        if (i == 0) { part_m[at] = M; part_l[at] = L; }
    }
}

/* grid (G, n_heads), block >= 32: merge the chunks' partials of query head
 * g into M, L and the output A / L, a thread per coordinate (each thread
 * forms M and L itself from the chunks' (m, l)); with mean-row vague tokens
 * vague_finish adds their part (also divided by L) afterwards. */
__global__ void attend_merge(kvr_cuda_params p, const kvr_cuda_head *heads, int n_chunks, int chunk_cap,
                             const float *part_m, const float *part_l, const float *part_acc,
                             float *M_out, float *L_out, float *out)
{
    const int g = blockIdx.x, hd = blockIdx.y, G = p.group, D = p.head_dim;
    float M = -INFINITY, L = 0.0f;
    for (int c = 0; c < n_chunks; c++)
        M = fmaxf(M, part_m[((size_t)hd * chunk_cap + c) * G + g]);
    for (int c = 0; c < n_chunks; c++) {
        size_t at = ((size_t)hd * chunk_cap + c) * G + g;
        if (part_m[at] != -INFINITY) L += part_l[at] * expf(part_m[at] - M);
    }
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float A = 0.0f;
        for (int c = 0; c < n_chunks; c++) {
            size_t at = ((size_t)hd * chunk_cap + c) * G + g;
            if (part_m[at] != -INFINITY) A += part_acc[at * D + i] * expf(part_m[at] - M);
        }
        out[((size_t)hd * G + g) * D + i] = A / L;
    }
    if (threadIdx.x == 0) { M_out[(size_t)hd * G + g] = M; L_out[(size_t)hd * G + g] = L; }
}

/* vague_weights' tokens [wa, wb) of this thread's stride, rows in
 * registers (d <= DM): p_t into mass[g], p_t s_r(t) into Wh[g][r][b]. */
template <int DM>
__device__ __forceinline__ void weigh_tokens(const kvr_cuda_params &p, const kvr_cuda_head &h, int hd, const uint64_t *pre,
                                             const unsigned *bm, int s, int wa, int wb, const float *P,
                                             const float *qmu_all, const float *M_all, float *Wh, float (&mass)[G_MAX])
{
    const int G = p.group, dw = p.depth * p.width;
    const float scale = 1.0f / sqrtf((float)p.head_dim), inv_d = 1.0f / (float)p.depth;
    for (int x = wa + threadIdx.x; x < wb; x += blockDim.x) {
        if (cand_bit(bm, x - wa)) continue;
        kvr_row_hash rows[DM];
        rows_of<DM>(p, h, pre, (long)s + x, rows);
#pragma unroll
        for (int g = 0; g < G_MAX; g++) {
            if (g >= G) break;
            size_t hg = (size_t)hd * G + g;
            float lg = mean_logit<DM>(p, rows, P + hg * dw, qmu_all[hg], inv_d, scale);
            float pt = expf(lg - M_all[hg]);
            mass[g] += pt;
#pragma unroll(DM <= 4 ? DM : 1)
            for (int r = 0; r < DM; r++)
                if (r < p.depth)
                    atomicAdd(&Wh[(size_t)g * dw + rows[r].bucket], pt * rows[r].sign);
        }
    }
}

/* grid (ceil(max M / span), n_heads), block 256, mean rows: the block's
 * threads walk the middle positions [x*span, (x+1)*span); for a vague one,
 * p_t = exp(logit_t - M_g) is added with its sign into W[h][g][r][b] and
 * into sumv[h][g].  W and sumv start at zero.  With use_smem the block first
 * sums into a copy of its head's W in shared memory ([G][d*w], dynamic) and
 * adds that into W once, which replaces most global atomics by shared ones.
 * Candidates are recognised with a shared bitmap, hashes from the rows'
 * prefixes (one mix per token and row).
 * (Float atomics: the order of these sums is not fixed; the bound of
 * tests/sketchattend.c does not depend on it.) */
__global__ void vague_weights(kvr_cuda_params p, const kvr_cuda_head *heads, const float *P, const float *qmu_all,
                              const float *M_all, float *W, float *sumv, int span, int use_smem)
{
    extern __shared__ float sW[];
    __shared__ unsigned sm_bm[BM_WORDS];
    __shared__ uint64_t sm_pre[KVR_CUDA_MAX_DEPTH];
    const int hd = blockIdx.y, G = p.group, dw = p.depth * p.width;
    const kvr_cuda_head &h = heads[hd];
    kvr_parts parts = kvr_dev_parts(p, h);
    const int x0 = blockIdx.x * span, x1 = min((int)(blockIdx.x + 1) * span, parts.m);
    if (x0 >= x1) return;                                /* uniform over the block */
    float *Wh = use_smem ? sW : W + (size_t)hd * G * dw;
    if (use_smem)
        for (int x = threadIdx.x; x < G * dw; x += blockDim.x) sW[x] = 0.0f;
    if ((int)threadIdx.x < p.depth)
        sm_pre[threadIdx.x] = kvr_dev_hash_prefix(p.seed, h.layer, h.kv_head, threadIdx.x);
    float mass[G_MAX];
#pragma unroll
    for (int g = 0; g < G_MAX; g++) mass[g] = 0.0f;
    for (int wa = x0; wa < x1; wa += 32 * BM_WORDS) {
        const int wb = min(x1, wa + 32 * BM_WORDS);
        cand_bitmap(h, parts.s, wa, wb, sm_bm);          /* (its first barrier also covers sW, sm_pre) */
        if (p.depth <= 4)
            weigh_tokens<4>(p, h, hd, sm_pre, sm_bm, parts.s, wa, wb, P, qmu_all, M_all, Wh, mass);
        else
            weigh_tokens<KVR_CUDA_MAX_DEPTH>(p, h, hd, sm_pre, sm_bm, parts.s, wa, wb, P, qmu_all, M_all, Wh, mass);
        __syncthreads();
    }
#pragma unroll
    for (int g = 0; g < G_MAX; g++) {
        if (g >= G) break;
        float s = kvr_warp_sum(mass[g]);
        if (threadIdx.x % 32 == 0 && s != 0.0f)
            atomicAdd(&sumv[(size_t)hd * G + g], s);
    }
    if (use_smem) {
        float *Wg = W + (size_t)hd * G * dw;
        for (int x = threadIdx.x; x < G * dw; x += blockDim.x)
            if (sW[x] != 0.0f) atomicAdd(&Wg[x], sW[x]);
    }
}

/* grid (n_heads, parts), block slices*D threads (slices = max(1, 256/D)),
 * mean rows: for each query head g, out += (sumv mu_v + (1/d) sum_b W[b]
 * alpha_b (S_V[b] - c_b mu_v)) / L (attend_merge left out = acc / L).
 * Block y sums the buckets b = y*slices + slice, stepping parts*slices, for
 * coordinate i and all G query heads at once, so the sketch's values are
 * read once per head; the slices are added in shared memory and each block
 * adds its share into out with one atomic per output (block 0 also the
 * sumv mu_v term). */
__global__ void vague_finish(kvr_cuda_params p, const kvr_cuda_head *heads, const float *W, const float *sumv,
                             const float *L_all, float *out)
{
    __shared__ float sm[256 * G_MAX];                   /* [slices][G][D], slices*D <= 256 */
    const int hd = blockIdx.x, G = p.group, D = p.head_dim, dw = p.depth * p.width;
    const int slices = blockDim.x / D, slice = threadIdx.x / D, i = threadIdx.x % D;
    const int first = (int)blockIdx.y * slices + slice, step = (int)gridDim.y * slices;
    const kvr_cuda_head &h = heads[hd];
    kvr_parts parts = kvr_dev_parts(p, h);
    if (parts.m == 0) return;                            /* uniform over the block */
    const float inv_d = 1.0f / (float)p.depth;
    const float *Wh = W + (size_t)hd * G * dw;
    float acc[G_MAX];
#pragma unroll
    for (int g = 0; g < G_MAX; g++) acc[g] = 0.0f;
    const float mv = h.mu_v[i];
#pragma unroll 4
    for (int b = first; b < dw; b += step) {
        int load = h.sk_load[b];                         /* an empty bucket adds 0 */
        float alpha = load == 0 ? 0.0f : p.shrink ? 1.0f / (float)load : 1.0f;
        float t = alpha * (h.sk_v[(size_t)b * D + i] - (float)h.sk_count[b] * mv);
#pragma unroll
        for (int g = 0; g < G_MAX; g++)
            if (g < G) acc[g] += Wh[(size_t)g * dw + b] * t;
    }
#pragma unroll
    for (int g = 0; g < G_MAX; g++)
        if (g < G) sm[(slice * G + g) * D + i] = acc[g];
    __syncthreads();
    if (slice == 0)
        for (int g = 0; g < G; g++) {
            float a = 0.0f;
            for (int s = 0; s < slices; s++)
                a += sm[(s * G + g) * D + i];
            const size_t hg = (size_t)hd * G + g;
            float o = a * inv_d;
            if (blockIdx.y == 0) o += sumv[hg] * mv;
            atomicAdd(&out[hg * D + i], o / L_all[hg]);
        }
}

/* grid n_heads, block 256: the probability of each exact row summed over
 * the group, sum_g exp(logit - M_g) / L_g (spec §6.1). */
__global__ void exact_probs(kvr_cuda_params p, const kvr_cuda_head *heads, const float *logit, int exact_cap,
                            const float *M_all, const float *L_all, float *prob)
{
    const int hd = blockIdx.x, G = p.group;
    kvr_parts parts = kvr_dev_parts(p, heads[hd]);
    for (int e = threadIdx.x; e < exact_cap; e += blockDim.x) {
        float s = 0.0f;
        if (e < parts.e)
            for (int g = 0; g < G; g++) {
                size_t hg = (size_t)hd * G + g;
                s += expf(logit[hg * exact_cap + e] - M_all[hg]) / L_all[hg];
            }
        prob[(size_t)hd * exact_cap + e] = s;
    }
}

static int chunk_cap_of(int n_heads)
{
    int cap = TARGET_BLOCKS / (n_heads > 0 ? n_heads : 1);
    return cap < 1 ? 1 : cap;
}

extern "C" int kvr_cuda_attend_ws_create(kvr_cuda_attend_ws **out, const kvr_cuda_params *p, int n_heads,
                                         long max_items, int exact_cap)
{
    (void)max_items;
    *out = NULL;
    kvr_cuda_attend_ws *ws = (kvr_cuda_attend_ws *)calloc(1, sizeof *ws);
    if (!ws)
        return (int)cudaErrorMemoryAllocation;
    ws->n_heads = n_heads;
    ws->chunk_cap = chunk_cap_of(n_heads);
    ws->exact_cap = exact_cap;
    ws->dw = p->depth * p->width;
    ws->G = p->group;
    ws->D = p->head_dim;
    size_t hg = (size_t)n_heads * p->group;
    size_t parts = hg * ws->chunk_cap;
    cudaError_t e = cudaMalloc(&ws->part_m, parts * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->part_l, parts * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->part_acc, parts * p->head_dim * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->M, hg * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->L, hg * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->qmu, hg * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->sumv, hg * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->P, (hg * ws->dw + 1) * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->W, (hg * ws->dw + 1) * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&ws->logit, (hg * exact_cap + 1) * sizeof(float));
    if (e != cudaSuccess) {
        kvr_cuda_attend_ws_free(ws);
        return (int)e;
    }
    *out = ws;
    return 0;
}

extern "C" void kvr_cuda_attend_ws_free(kvr_cuda_attend_ws *ws)
{
    if (!ws) return;
    cudaFree(ws->part_m); cudaFree(ws->part_l); cudaFree(ws->part_acc);
    cudaFree(ws->M); cudaFree(ws->L); cudaFree(ws->qmu); cudaFree(ws->sumv);
    cudaFree(ws->P); cudaFree(ws->W); cudaFree(ws->logit);
    free(ws);
}

extern "C" int kvr_cuda_attend(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_heads,
                               long max_items, const float *q_dev, float *out_dev, float *prob_dev,
                               kvr_cuda_attend_ws *ws)
{
    if (n_heads <= 0)
        return 0;
    if (n_heads > ws->n_heads || p->group != ws->G || p->head_dim != ws->D || p->depth * p->width > ws->dw
        || p->group > G_MAX || p->head_dim > KVR_CUDA_MAX_DIM || p->depth > KVR_CUDA_MAX_DEPTH)
        return (int)cudaErrorInvalidValue;
    int cap = ws->chunk_cap;                                /* the workspace's partial slots */
    long chunk = (max_items + cap - 1) / cap;
    chunk = ((chunk + 63) / 64) * 64;                       /* whole warps' worth of tokens */
    if (chunk < 64) chunk = 64;
    int n_chunks = (int)((max_items + chunk - 1) / chunk);
    if (n_chunks < 1) n_chunks = 1;
    int mean = p->rows == 1 && p->depth > 0 && p->width > 0;
    size_t hg = (size_t)n_heads * p->group;
    cudaError_t e = cudaSuccess;
    if (mean) {
        sketch_scores<<<dim3((unsigned)n_heads, (unsigned)p->depth, (unsigned)(p->width / 8 + 1)), 256>>>(*p, heads_dev, q_dev, ws->P, ws->qmu);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) {
        dim3 grid((unsigned)n_chunks, (unsigned)n_heads);
        float *lg = prob_dev ? ws->logit : NULL;
        int gm = p->group <= 1 ? 1 : p->group <= 4 ? 4 : 8;
        int vm = p->head_dim <= 64 ? 2 : p->head_dim <= 128 ? 4 : 8;
        const int mid = p->depth > 0 && p->width > 0;
#define SPLIT(G_, V_) (mid ? attend_split<G_, V_, 1> : attend_split<G_, V_, 0>)<<<grid, WARPS * 32>>>(*p, heads_dev, q_dev, (int)chunk, ws->chunk_cap, \
                          ws->P, ws->qmu, ws->part_m, ws->part_l, ws->part_acc, lg, ws->exact_cap)
        switch (gm * 10 + vm) {
        case 12: SPLIT(1, 2); break;
        case 14: SPLIT(1, 4); break;
        case 18: SPLIT(1, 8); break;
        case 42: SPLIT(4, 2); break;
        case 44: SPLIT(4, 4); break;
        case 48: SPLIT(4, 8); break;
        case 82: SPLIT(8, 2); break;
        case 84: SPLIT(8, 4); break;
        default: SPLIT(8, 8); break;
        }
#undef SPLIT
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) {
        int mt = ((p->head_dim + 31) / 32) * 32;
        attend_merge<<<dim3((unsigned)p->group, (unsigned)n_heads), (unsigned)(mt > 256 ? 256 : mt)>>>(*p, heads_dev, n_chunks, ws->chunk_cap, ws->part_m, ws->part_l,
                                                ws->part_acc, ws->M, ws->L, out_dev);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess && mean) {
        e = cudaMemsetAsync(ws->W, 0, hg * ws->dw * sizeof(float));
        if (e == cudaSuccess) e = cudaMemsetAsync(ws->sumv, 0, hg * sizeof(float));
        if (e == cudaSuccess) {
            /* spans of positions sized for about TARGET_BLOCKS blocks */
            long span = (max_items * n_heads + TARGET_BLOCKS - 1) / TARGET_BLOCKS;
            span = span < 256 ? 256 : ((span + 255) / 256) * 256;
            unsigned blocks = (unsigned)((max_items + span - 1) / span);
            size_t smem = (size_t)p->group * p->depth * p->width * sizeof(float);
            int use_smem = smem <= SMEM_W_MAX && span >= 1024;
            if (use_smem && smem > 48 * 1024
                && cudaFuncSetAttribute(vague_weights, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)
                   != cudaSuccess) {
                (void)cudaGetLastError();          /* a card with less shared memory: global atomics */
                use_smem = 0;
            }
            if (e == cudaSuccess) {
                vague_weights<<<dim3(blocks, (unsigned)n_heads), 256, use_smem ? smem : 0>>>(
                    *p, heads_dev, ws->P, ws->qmu, ws->M, ws->W, ws->sumv, (int)span, use_smem);
                e = cudaGetLastError();
            }
        }
        if (e == cudaSuccess) {
            int slices = 256 / p->head_dim, dw = p->depth * p->width;
            if (slices < 1) slices = 1;
            int fparts = dw / (64 * slices);                /* about 64 buckets per thread at least */
            fparts = fparts < 1 ? 1 : fparts > 32 ? 32 : fparts;
            vague_finish<<<dim3((unsigned)n_heads, (unsigned)fparts), (unsigned)(slices * p->head_dim)>>>(*p, heads_dev, ws->W, ws->sumv, ws->L, out_dev);
            e = cudaGetLastError();
        }
    }
    if (e == cudaSuccess && prob_dev) {
        exact_probs<<<(unsigned)n_heads, 256>>>(*p, heads_dev, ws->logit, ws->exact_cap, ws->M, ws->L, prob_dev);
        e = cudaGetLastError();
    }
    return (int)e;
}
