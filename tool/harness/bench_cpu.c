/* bench_cpu.c: `kvreviver bench --backend cpu` (doc/cpu-results.md): the CPU
 * kernels' decode attention (cpu/) for the default kvreviver (f16 exact
 * parts, the 4-bit tier, the mean-field bulk) against a full-cache f16
 * decode attention through the same kernels (the baseline: every position
 * an exact row, the kvr_method_config("full") cache), with the machine's
 * streaming read bandwidth measured in the same run.
 *
 * The head caches are built directly (ref_head_alloc, then their arrays
 * filled with random values and the counts set, as the CUDA bench builds
 * device data), so a 128k context costs no prefill: every array the step
 * reads is written once before timing.  The bytes a step must read are the
 * exact rows' keys and values, the tier's codes with their float16 zero
 * points and scales, and the vague part's float64 running sums (the bulk's
 * means); positions are read only for the importance update, which the
 * timed steps (like KVR_ATTEND_PEEK) do not make. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common/message.h"
#include "bench.h"
#include "internal.h"
#include "../../cpu/kvr_cpu.h"
#include "../../cpu/simd.h"

enum { BH = 8, BQ = 32, BD = 128, BG = BQ / BH };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next64(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

/* n float16 values in [-1, 1) (or n random bytes for codes). */
static void fill_f16(uint16_t *x, size_t n)
{
    for (size_t i = 0; i < n; i += 4) {
        uint64_t r = next64();
        for (size_t j = 0; j < 4 && i + j < n; j++) {
            uint16_t m = (uint16_t)((r >> (16 * j)) & 0x03FFu);      /* mantissa */
            uint16_t e = (uint16_t)(((r >> (16 * j + 10)) & 3u) + 12); /* exponent 2^-3 .. 2^0 */
            x[i + j] = (uint16_t)(((r >> (16 * j + 15)) & 1u) << 15 | e << 10 | m);
        }
    }
}

static void fill_bytes(unsigned char *x, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = next64();
        memcpy(x + i, &r, n - i < 8 ? n - i : 8);
    }
}

/* ---- the machine's read bandwidth --------------------------------------- */
typedef struct {
    const char *buf;
    size_t bytes;
    int parts;
    double sink[256];
} read_job;

#ifdef KVR_CPU_X86
KVR_AVX2 static double read_avx2(const char *p, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps((const float *)(p + i)));
        a1 = _mm256_add_ps(a1, _mm256_load_ps((const float *)(p + i + 32)));
        a2 = _mm256_add_ps(a2, _mm256_load_ps((const float *)(p + i + 64)));
        a3 = _mm256_add_ps(a3, _mm256_load_ps((const float *)(p + i + 96)));
    }
    return kvr_v8_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}
#endif

static double read_plain(const char *p, size_t n)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) { a += w[i]; b += w[i + 1]; c += w[i + 2]; d += w[i + 3]; }
    return (double)(a ^ b ^ c ^ d);
}

static void read_item(void *arg, int item, int thread)
{
    read_job *j = arg;
    size_t per = (j->bytes / (size_t)j->parts) & ~(size_t)127;
    const char *p = j->buf + (size_t)item * per;
    (void)thread;
#ifdef KVR_CPU_X86
    if (!strcmp(kvr_cpu_isa(), "avx2")) { j->sink[item % 256] += read_avx2(p, per); return; }
#endif
    j->sink[item % 256] += read_plain(p, per);
}

/* GB/s of a streaming read of `bytes` (median of 5) with `threads` threads
 * of the pool (1: the calling thread alone). */
static double read_bandwidth(kvr_cpu_pool *pool, const char *buf, size_t bytes, int threads)
{
    double t[5];
    read_job j = {buf, bytes, threads, {0}};
    for (int r = -1; r < 5; r++) {
        double t0 = now_s();
        if (threads == 1) read_item(&j, 0, 0);
        else kvr_cpu_pool_run(pool, threads, read_item, &j);
        if (r >= 0) t[r] = now_s() - t0;
    }
    qsort(t, 5, sizeof(double), by_double);
    return (double)((bytes / (size_t)threads) & ~(size_t)127) * threads / t[2] / 1e9;
}

/* ---- head caches built directly ------------------------------------------ */

static void heads_free(ref_head **h, int n)
{
    for (int i = 0; i < n; i++) ref_head_free(h[i]);
    free(h);
}

/* n head caches of configuration cfg (f16, D = BD) holding N positions:
 * sinks and window full, C candidates, Q tier tokens, the rest vague.
 * NULL on failure (reported). */
static ref_head **heads_build(const kvr_config *cfg, long N, int n, double *bytes)
{
    ref_head **h = calloc((size_t)n, sizeof *h);
    if (!h) { msg_error("bench: out of memory"); return NULL; }
    long S = cfg->sinks, R = cfg->window, C = cfg->candidates, M = N - S - R;
    long Q = ref_cfg_has_tier(cfg) ? cfg->tier_tokens : 0;
    if (M < 0) M = 0;
    if (C > M) C = M;
    if (Q > M - C) Q = M - C;
    size_t row = (size_t)BD * 2, B = ref_quant_row_bytes(BD, cfg->tier_bits > 0 ? cfg->tier_bits : 4);
    for (int i = 0; i < n; i++) {
        if (ref_head_alloc(&h[i], cfg, BD, 0, (uint32_t)(i % BH)) != KVR_OK) {
            msg_error("bench: head cache %d at N = %ld: %s", i, N, kvr_last_error());
            heads_free(h, n);
            return NULL;
        }
        ref_head *x = h[i];
        x->n = N;
        fill_f16(x->sink_k, (size_t)S * BD); fill_f16(x->sink_v, (size_t)S * BD);
        fill_f16(x->win_k, (size_t)R * BD); fill_f16(x->win_v, (size_t)R * BD);
        x->n_cand = (int)C;
        fill_f16(x->cand_k, (size_t)C * BD); fill_f16(x->cand_v, (size_t)C * BD);
        for (long j = 0; j < C; j++) x->cand_pos[j] = (int32_t)(S + j);
        if (Q > 0) {
            x->n_tier = (int)Q;
            fill_bytes(x->tier_k, (size_t)Q * B); fill_bytes(x->tier_v, (size_t)Q * B);
            for (long j = 0; j < Q; j++) {
                x->tier_pos[j] = (int32_t)(S + C + j * (M - C) / Q);
                x->tier_kq[2 * j] = x->tier_vq[2 * j] = kvr_f32_to_f16(-1.0f);
                x->tier_kq[2 * j + 1] = x->tier_vq[2 * j + 1] = kvr_f32_to_f16(2.0f / 15.0f);
            }
        }
        x->n_vague = M - C - Q;
        if (x->sum_k)
            for (int d = 0; d < BD; d++) {
                x->sum_k[d] = 0.01 * (double)x->n_vague * (double)((d % 7) - 3);
                x->sum_v[d] = 0.02 * (double)x->n_vague * (double)((d % 5) - 2);
            }
    }
    int sums = h[0]->sum_k != NULL && h[0]->n_vague > 0;
    *bytes = (double)n * ((double)(S + R + C) * 2 * row + (double)Q * 2 * (B + 4) + (sums ? 2.0 * BD * 8 : 0.0));
    return h;
}

/* Median microseconds of `repeats` steps over the heads (2 warm-up). */
static int time_heads(kvr_cpu_pool *pool, ref_head **h, int n, const kvr_config *cfg, int repeats, double *us)
{
    int T = kvr_cpu_pool_threads(pool), status = 1;
    kvr_cpu_ws *ws = calloc((size_t)T, sizeof *ws);
    float *q = malloc((size_t)n * BG * BD * sizeof(float)), *out = malloc((size_t)n * BG * BD * sizeof(float));
    int *finite = malloc((size_t)n * sizeof(int));
    double *t = malloc((size_t)repeats * sizeof(double));
    if (!ws || !q || !out || !finite || !t) { msg_error("bench: out of memory"); goto done; }
    for (int i = 0; i < T; i++)
        if (kvr_cpu_ws_reserve(&ws[i], BG, BD, kvr_cpu_rows_cap(cfg)) != KVR_OK) {
            msg_error("bench: %s", kvr_last_error());
            goto done;
        }
    for (size_t i = 0; i < (size_t)n * BG * BD; i++) q[i] = (float)((double)(next64() >> 11) / 9007199254740992.0 - 0.5);
    for (int r = -2; r < repeats; r++) {
        double t0 = now_s();
        kvr_cpu_attend(pool, (const ref_head *const *)h, n, BG, q, out, NULL, ws, finite);
        if (r >= 0) t[r] = now_s() - t0;
    }
    for (int i = 0; i < n; i++)
        if (!finite[i]) { msg_error("bench: head %d: the output is not finite", i); goto done; }
    qsort(t, (size_t)repeats, sizeof(double), by_double);
    *us = 1e6 * t[repeats / 2];
    status = 0;
done:
    for (int i = 0; ws && i < T; i++) kvr_cpu_ws_free(&ws[i]);
    free(ws); free(q); free(out); free(finite); free(t);
    return status;
}

static void print_row(long N, int batch, const char *what, double us, double bytes, double bw1, double bwall,
                      double full_us)
{
    double gbps = bytes / (us * 1e-6) / 1e9;
    printf("%7ld %5d  %-24s %11.1f %9.2f %7.2f %7.1f%% %7.1f%% %8.2fx %9.3f\n", N, batch, what, us, bytes / 1e6,
           gbps, 100.0 * gbps / bw1, 100.0 * gbps / bwall, full_us / us, us / ((double)N / 1024.0) / batch);
    fflush(stdout);
}

int ev_bench_cpu(int repeats, long max_n, int quick, const ev_bench_grid *g)
{
    kvr_cpu_pool *pool = NULL;
    if (kvr_cpu_pool_create(&pool, 0) != KVR_OK) { msg_error("bench: %s", kvr_last_error()); return 1; }
    int T = kvr_cpu_pool_threads(pool);
    /* the read buffer: 4 times the last-level cache as the system reports
     * it, at least 1 GiB and at most 4 GiB */
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t big = (size_t)1 << 30;
    if (llc > 0 && 4 * (size_t)llc > big) big = 4 * (size_t)llc;
    if (big > ((size_t)4 << 30)) big = (size_t)4 << 30;
    big &= ~(size_t)4095;
    char *buf = aligned_alloc(4096, big);
    if (!buf) { kvr_cpu_pool_free(pool); msg_error("bench: out of memory (%zu byte read buffer)", big); return 1; }
    for (size_t i = 0; i < big; i += 8) { uint64_t r = next64() & 0x3F3F3F3F3F3F3F3Fu; memcpy(buf + i, &r, 8); }
    double bw1 = read_bandwidth(pool, buf, big, 1), bwall = read_bandwidth(pool, buf, big, T);
    free(buf);
    printf("backend cpu: kernels %s, %d threads; streaming read of %.2f GiB (last-level cache %.0f MiB): "
           "%.2f GB/s (1 thread), %.2f GB/s (%d threads)\n", kvr_cpu_isa(), T, (double)big / (1 << 30),
           llc > 0 ? (double)llc / (1 << 20) : 0.0, bw1, bwall, T);
    printf("decode attention: head_dim %d, %d query heads on %d KV heads per sequence, float16 exact parts;\n"
           "kvreviver: 4-bit tier, mean-field bulk; full: every position exact (the baseline)\n", BD, BQ, BH);
    printf("%7s %5s  %-24s %11s %9s %7s %8s %8s %9s %9s\n", "N", "batch", "method", "us/step", "MB_read", "GB/s",
           "of_1thr", "of_all", "vs_full", "us/k/seq");
    int n_batch = g->n_batch, status = 0;
    for (int ni = 0; ni < g->n_n && status == 0; ni++) {
        long N = g->n[ni];
        if (max_n > 0 && N > max_n) continue;
        for (int bi = 0; bi < n_batch && status == 0; bi++) {
            int batch = g->batch[bi], n = batch * BH;
            int reps = N >= 65536 ? (repeats / 3 > 3 ? repeats / 3 : 3) : repeats;
            kvr_config cfg;
            double bytes = 0, full_us = 0, us = 0;
            if (kvr_method_config("full", 1.0, N, BD, KVR_F16, &cfg) != KVR_OK) {
                msg_error("bench: full at N = %ld: %s", N, kvr_last_error());
                status = 1;
                break;
            }
            ref_head **h = heads_build(&cfg, N, n, &bytes);
            if (!h || time_heads(pool, h, n, &cfg, reps, &full_us)) { if (h) heads_free(h, n); status = 1; break; }
            heads_free(h, n);
            print_row(N, batch, "full f16 (baseline)", full_us, bytes, bw1, bwall, full_us);
            for (int ui = 0; ui < (quick ? 1 : g->n_budget); ui++) {
                if (kvr_method_config("kvreviver", g->budget[ui], N, BD, KVR_F16, &cfg) != KVR_OK) {
                    msg_error("bench: kvreviver at %g, N = %ld: %s", g->budget[ui], N, kvr_last_error());
                    status = 1;
                    break;
                }
                h = heads_build(&cfg, N, n, &bytes);
                if (!h || time_heads(pool, h, n, &cfg, reps, &us)) { if (h) heads_free(h, n); status = 1; break; }
                heads_free(h, n);
                char what[64];
                snprintf(what, sizeof what, "kvreviver %2.0f%% Q%d", 100 * g->budget[ui], cfg.tier_tokens);
                print_row(N, batch, what, us, bytes, bw1, bwall, full_us);
            }
        }
    }
    kvr_cpu_pool_free(pool);
    return status;
}
