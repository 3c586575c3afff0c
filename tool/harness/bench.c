/* bench.c: the timings of `kvreviver bench` (doc/cuda.md): the scalar
 * reference's decode attention for growing contexts (--backend ref), and
 * the CUDA kernels on device data against a full-cache float16 split-K
 * decode attention of our own, with the card's device-to-device copy
 * bandwidth measured in the same run (--backend cuda).  The front end
 * (tool/cmd_bench.c) parses the options into an ev_bench_grid. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/message.h"
#include "bench.h"
#include "kvreviver.h"
#ifdef KVR_HAVE_CUDA
#include "../../cuda/kvr_cuda.h"
#endif

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

static uint64_t bench_rng = 88172645463325252u;
static float rnd(void)
{
    bench_rng ^= bench_rng << 13; bench_rng ^= bench_rng >> 7; bench_rng ^= bench_rng << 17;
    return (float)((double)(bench_rng >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* ---- --backend ref ------------------------------------------------------ */
/* With g->n_n == 0, N = 512, 1k, 2k, ... up to max_n while the run stays
 * within about a minute; otherwise the contexts of g up to max_n. */
int ev_bench_ref(int repeats, long max_n, const ev_bench_grid *g)
{
    const int H = 8, QH = 32, D = 128, n_obs = 32;
    double start = now_s(), budget_s = 55.0, prev = 0.0, ratio = g->budget[0];
    printf("backend ref: 1 layer, %d KV heads, %d query heads, head_dim %d, kvreviver at %g%%, f32\n",
           H, QH, D, 100.0 * ratio);
    printf("%8s %12s %12s %10s\n", "N", "prefill_s", "us/step", "x_prev");
    for (int ni = 0; g->n_n == 0 || ni < g->n_n; ni++) {
        long N = g->n_n ? g->n[ni] : 512L << ni;
        if (max_n > 0 && N > max_n) {
            if (g->n_n) continue;
            break;
        }
        if (!g->n_n && N > (1L << 20)) break;
        kvr_config cfg;
        kvr_cache *c = NULL;
        if (kvr_method_config("kvreviver", ratio, N, D, KVR_F32, &cfg) != KVR_OK
            || kvr_cache_create(&c, 1, H, QH, D, &cfg, KVR_BACKEND_REF) != KVR_OK) {
            msg_error("bench: ref cache at N = %ld: %s", N, kvr_last_error());
            return 1;
        }
        size_t kvn = (size_t)N * H * D;
        float *k = malloc(kvn * sizeof(float)), *v = malloc(kvn * sizeof(float));
        float *q = malloc((size_t)n_obs * QH * D * sizeof(float)), *out = malloc((size_t)QH * D * sizeof(float));
        double *t = malloc((size_t)repeats * sizeof(double));
        if (!k || !v || !q || !out || !t) {
            free(k); free(v); free(q); free(out); free(t); kvr_cache_free(c);
            msg_error("bench: out of memory at N = %ld", N);
            return 1;
        }
        for (size_t i = 0; i < kvn; i++) { k[i] = rnd(); v[i] = rnd(); }
        for (size_t i = 0; i < (size_t)n_obs * QH * D; i++) q[i] = rnd();
        double t0 = now_s();
        int status = kvr_prefill(c, 0, (int)N, k, v, n_obs, q);
        double t_prefill = now_s() - t0;
        for (int r = 0; status == KVR_OK && r < repeats; r++) {
            t0 = now_s();
            status = kvr_attend(c, 0, q, out, KVR_ATTEND_PEEK);
            t[r] = now_s() - t0;
        }
        free(k); free(v); free(q); free(out);
        kvr_cache_free(c);
        if (status != KVR_OK) {
            free(t);
            msg_error("bench: ref at N = %ld: %s", N, kvr_last_error());
            return 1;
        }
        qsort(t, (size_t)repeats, sizeof(double), by_double);
        double us = 1e6 * t[repeats / 2];
        free(t);
        if (prev > 0)
            printf("%8ld %12.3f %12.1f %10.2f\n", N, t_prefill, us, us / prev);
        else
            printf("%8ld %12.3f %12.1f %10s\n", N, t_prefill, us, "-");
        fflush(stdout);
        prev = us;
        double spent = now_s() - start;   /* the next N costs about 2-4x this one */
        if (!g->n_n && spent + 3.0 * (t_prefill + repeats * us * 1e-6) > budget_s)
            break;
    }
    return 0;
}

#ifdef KVR_HAVE_CUDA
/* ---- --backend cuda ----------------------------------------------------- */
#define CU(call) do { int e_ = (call); if (e_) { msg_error("bench: %s: %s", #call, kvr_cuda_error_string(e_)); goto fail; } } while (0)

enum { BH = 8, BQ = 32, BD = 128 };

/* Time repeats launches of attention over the given heads; median in us. */
static int time_attend(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_heads, long max_items,
                       const float *q, float *out, kvr_cuda_attend_ws *ws, int repeats, double *us)
{
    double *t = malloc((size_t)repeats * sizeof(double));
    if (!t) return 2;   /* cudaErrorMemoryAllocation */
    int e = 0;
    for (int r = -3; !e && r < repeats; r++) {
        float ms = 0;
        e = kvr_cuda_timer_start();
        if (!e) e = kvr_cuda_attend(p, heads_dev, n_heads, max_items, q, out, NULL, ws);
        if (!e) e = kvr_cuda_timer_stop(&ms);
        if (r >= 0) t[r] = 1e3 * ms;
    }
    if (!e) {
        qsort(t, (size_t)repeats, sizeof(double), by_double);
        *us = t[repeats / 2];
    }
    free(t);
    return e;
}

static void print_row(long N, int batch, const char *what, double us, double bytes, double copy_gbps, double full_us)
{
    double gbps = bytes / (us * 1e-6) / 1e9;
    printf("%7ld %5d  %-30s %11.1f %10.1f %8.0f %8.1f%% %8.2fx\n", N, batch, what, us, bytes / 1e6, gbps,
           100.0 * gbps / copy_gbps, full_us / us);
    fflush(stdout);
}

/* Full-cache float16 baseline and the compressed kernels at one (N, batch). */
static int bench_point(long N, int batch, const double *budgets, int n_budgets, int repeats, double copy_gbps)
{
    int n_heads = batch * BH, status = 1;
    size_t es = 2, row = (size_t)BD * es;
    void *big = NULL, *extra = NULL;
    float *q = NULL, *out = NULL;
    kvr_cuda_head *desc = malloc((size_t)n_heads * sizeof *desc), *desc_dev = NULL;
    kvr_cuda_attend_ws *ws = NULL;
    int32_t *pos_host = NULL;
    double full_us = 0;
    if (!desc) { msg_error("bench: out of memory"); return 1; }
    CU(kvr_cuda_malloc((void **)&q, (size_t)n_heads * 4 * BD * sizeof(float)));
    CU(kvr_cuda_malloc((void **)&out, (size_t)n_heads * 4 * BD * sizeof(float)));
    CU(kvr_cuda_fill_random(q, (size_t)n_heads * 4 * BD, 0, 7, 1.0f));
    CU(kvr_cuda_malloc((void **)&desc_dev, (size_t)n_heads * sizeof *desc));

    {   /* the baseline: every position exact, float16, one window of N rows */
        size_t per = (size_t)N * row;
        kvr_cuda_params p = {BD, 4, 0, 0, 0, 0, KVR_F16, 1};
        CU(kvr_cuda_malloc(&big, 2 * per * n_heads));
        CU(kvr_cuda_fill_random(big, 2 * per * n_heads / es, KVR_F16, 11, 1.0f));
        memset(desc, 0, (size_t)n_heads * sizeof *desc);
        for (int h = 0; h < n_heads; h++) {
            desc[h].win_k = (char *)big + (size_t)h * 2 * per;
            desc[h].win_v = (char *)big + (size_t)h * 2 * per + per;
            desc[h].n = (int)N;
            desc[h].window = (int)N;
            desc[h].kv_head = (uint32_t)(h % BH);
        }
        CU(kvr_cuda_upload(desc_dev, desc, (size_t)n_heads * sizeof *desc));
        CU(kvr_cuda_attend_ws_create(&ws, &p, n_heads, N, 0));
        CU(time_attend(&p, desc_dev, n_heads, N, q, out, ws, repeats, &full_us));
        print_row(N, batch, "full f16 (baseline)", full_us, (double)n_heads * 2 * per, copy_gbps, full_us);
        kvr_cuda_attend_ws_free(ws); ws = NULL;
        kvr_cuda_free(big); big = NULL;
    }
    for (int bi = 0; bi < n_budgets; bi++)
        for (int mi = 0; mi < 2; mi++) {
            const char *method = mi == 0 ? "kvreviver-paper" : "kvreviver-mean";
            kvr_config cfg;
            if (kvr_method_config(method, budgets[bi], N, BD, KVR_F16, &cfg) != KVR_OK) {
                msg_error("bench: %s at %g: %s", method, budgets[bi], kvr_last_error());
                goto fail;
            }
            int S = cfg.sinks, R = cfg.window, C = cfg.candidates;
            int d = cfg.depth > 0 && cfg.width > 0 ? cfg.depth : 0, w = d ? cfg.width : 0;
            long middle = N - S - R;
            if (C > middle) C = (int)(middle > 0 ? middle : 0);
            kvr_cuda_params p = {BD, 4, d, w, (int)cfg.rows, cfg.shrink, KVR_F16, cfg.seed};
            /* two allocations: the exact rows (float16), and the candidate
             * positions, sketch and means (32-bit) */
            size_t ex = (size_t)(S + R + C) * row, dw = (size_t)d * w;
            size_t per = (size_t)C * 4 + 2 * dw * BD * 4 + 2 * dw * 4 + 2 * BD * 4;
            per = (per + 255) & ~(size_t)255;
            CU(kvr_cuda_malloc(&big, 2 * ex * n_heads));
            CU(kvr_cuda_fill_random(big, 2 * ex * n_heads / es, KVR_F16, 17, 1.0f));
            CU(kvr_cuda_malloc(&extra, per * n_heads));
            CU(kvr_cuda_fill_random(extra, per * n_heads / 4, 0, 13, 0.5f));
            pos_host = malloc((size_t)(C > 0 ? C : 1) * sizeof(int32_t));
            if (!pos_host) { msg_error("bench: out of memory"); goto fail; }
            for (int j = 0; j < C; j++)                  /* candidates spread over the middle */
                pos_host[j] = (int32_t)(S + (long)j * middle / C);
            memset(desc, 0, (size_t)n_heads * sizeof *desc);
            for (int h = 0; h < n_heads; h++) {
                char *b = (char *)extra + (size_t)h * per, *xb = (char *)big + (size_t)h * 2 * ex;
                kvr_cuda_head *x = &desc[h];
                x->sink_k = xb; x->sink_v = xb + (size_t)S * row;
                x->win_k = xb + 2 * (size_t)S * row; x->win_v = (char *)x->win_k + (size_t)R * row;
                x->cand_k = (char *)x->win_v + (size_t)R * row; x->cand_v = (char *)x->cand_k + (size_t)C * row;
                x->cand_pos = (int32_t *)b;
                x->sk_k = (float *)(b + (size_t)C * 4);
                x->sk_v = x->sk_k + dw * BD;
                x->sk_count = (int32_t *)(x->sk_v + dw * BD);
                x->sk_load = x->sk_count + dw;
                x->mu_k = (float *)(x->sk_load + dw);
                x->mu_v = x->mu_k + BD;
                x->n = (int)N; x->sinks = S; x->window = R; x->n_cand = C;
                x->n_vague = (int)(middle - C);
                x->layer = 0; x->kv_head = (uint32_t)(h % BH);
                CU(kvr_cuda_upload((void *)x->cand_pos, pos_host, (size_t)C * 4));
                if (dw) {   /* counts in [-2, 2], loads 4: plausible, and no division by zero */
                    int32_t *cl = malloc(2 * dw * sizeof(int32_t));
                    if (!cl) { msg_error("bench: out of memory"); goto fail; }
                    for (size_t i = 0; i < dw; i++) { cl[i] = (int32_t)(i % 5) - 2; cl[dw + i] = 4; }
                    int e = kvr_cuda_upload(x->sk_count, cl, 2 * dw * sizeof(int32_t));
                    free(cl);
                    CU(e);
                }
            }
            free(pos_host); pos_host = NULL;
            CU(kvr_cuda_upload(desc_dev, desc, (size_t)n_heads * sizeof *desc));
            CU(kvr_cuda_attend_ws_create(&ws, &p, n_heads, N + C, S + R + C));
            double us = 0;
            CU(time_attend(&p, desc_dev, n_heads, N + C, q, out, ws, repeats, &us));
            /* bytes that must be read: exact rows, candidate positions, the
             * sketch once (sums, counts, loads) and the means */
            double bytes = (double)n_heads * (2.0 * ex + 4.0 * C + dw * (2.0 * BD * 4 + 8) + 2.0 * BD * 4);
            char what[64];
            snprintf(what, sizeof what, "%s %2.0f%% d%d w%d", method, 100 * budgets[bi], d, w);
            print_row(N, batch, what, us, bytes, copy_gbps, full_us);
            kvr_cuda_attend_ws_free(ws); ws = NULL;
            kvr_cuda_free(extra); extra = NULL;
            kvr_cuda_free(big); big = NULL;
        }
    status = 0;
fail:
    free(pos_host);
    kvr_cuda_attend_ws_free(ws);
    kvr_cuda_free(big); kvr_cuda_free(extra); kvr_cuda_free(q); kvr_cuda_free(out); kvr_cuda_free(desc_dev);
    free(desc);
    return status;
}

/* Sketch insertion (the device half of append) and prefill scores. */
static int bench_throughput(int repeats)
{
    int status = 1, n_heads = 32 * BH, per_head = 64, m = n_heads * per_head;
    int d = 3, w = 1024;
    kvr_cuda_params p = {BD, 4, d, w, 0, 0, KVR_F16, 1};
    kvr_cuda_head *desc = calloc((size_t)n_heads, sizeof *desc), *desc_dev = NULL;
    int *off = malloc((size_t)(n_heads + 1) * sizeof(int)), *off_dev = NULL;
    int32_t *pos = malloc((size_t)m * sizeof(int32_t)), *pos_dev = NULL;
    float *kv = NULL, *sk = NULL, *kd = NULL, *qd = NULL, *sd = NULL;
    double *t = malloc((size_t)repeats * sizeof(double));
    if (!desc || !off || !pos || !t) { msg_error("bench: out of memory"); goto fail; }
    CU(kvr_cuda_malloc((void **)&kv, 2 * (size_t)m * BD * sizeof(float)));
    CU(kvr_cuda_fill_random(kv, 2 * (size_t)m * BD, 0, 5, 1.0f));
    CU(kvr_cuda_malloc((void **)&sk, (size_t)n_heads * (2 * (size_t)d * w * BD + 2 * (size_t)d * w) * 4));
    CU(kvr_cuda_memset(sk, 0, (size_t)n_heads * (2 * (size_t)d * w * BD + 2 * (size_t)d * w) * 4));
    for (int h = 0; h < n_heads; h++) {
        float *b = sk + (size_t)h * (2 * (size_t)d * w * BD + 2 * (size_t)d * w);
        desc[h].sk_k = b; desc[h].sk_v = b + (size_t)d * w * BD;
        desc[h].sk_count = (int32_t *)(b + 2 * (size_t)d * w * BD);
        desc[h].sk_load = desc[h].sk_count + (size_t)d * w;
        desc[h].kv_head = (uint32_t)(h % BH);
    }
    CU(kvr_cuda_malloc((void **)&desc_dev, (size_t)n_heads * sizeof *desc));
    CU(kvr_cuda_upload(desc_dev, desc, (size_t)n_heads * sizeof *desc));
    CU(kvr_cuda_malloc((void **)&off_dev, (size_t)(n_heads + 1) * sizeof(int)));
    CU(kvr_cuda_malloc((void **)&pos_dev, (size_t)m * sizeof(int32_t)));
    printf("\nappend (sketch insertion, %d heads, d=%d w=%d, head_dim %d)\n", n_heads, d, w, BD);
    for (int tokens = 1; tokens <= per_head; tokens *= 64) {
        for (int h = 0; h <= n_heads; h++) off[h] = h * tokens;
        for (int i = 0; i < n_heads * tokens; i++) pos[i] = 100000 + i;
        CU(kvr_cuda_upload(off_dev, off, (size_t)(n_heads + 1) * sizeof(int)));
        CU(kvr_cuda_upload(pos_dev, pos, (size_t)n_heads * tokens * sizeof(int32_t)));
        int e = 0;
        for (int r = -3; !e && r < repeats; r++) {
            float ms = 0;
            e = kvr_cuda_timer_start();
            if (!e) e = kvr_cuda_sketch_insert(&p, desc_dev, n_heads, off_dev, pos_dev, kv, kv + (size_t)m * BD);
            if (!e) e = kvr_cuda_timer_stop(&ms);
            if (r >= 0) t[r] = 1e3 * ms;
        }
        CU(e);
        qsort(t, (size_t)repeats, sizeof(double), by_double);
        printf("  %3d token(s) per head: %9.1f us per launch, %8.2f M tokens/s (token = one KV head)\n",
               tokens, t[repeats / 2], n_heads * tokens / t[repeats / 2]);
    }
    printf("\nprefill scores (one KV head, 4 query heads, 32 observation queries, snapkv pooling;\n"
           "  each call allocates and frees its workspace, included in the time)\n");
    for (int n = 2048; n <= 32768; n *= 4) {
        CU(kvr_cuda_malloc((void **)&kd, (size_t)n * BD * sizeof(float)));
        CU(kvr_cuda_malloc((void **)&qd, (size_t)32 * 4 * BD * sizeof(float)));
        CU(kvr_cuda_malloc((void **)&sd, (size_t)n * sizeof(float)));
        CU(kvr_cuda_fill_random(kd, (size_t)n * BD, 0, 3, 1.0f));
        CU(kvr_cuda_fill_random(qd, (size_t)32 * 4 * BD, 0, 4, 1.0f));
        int e = 0, reps = repeats < 5 ? repeats : 5;
        for (int r = -1; !e && r < reps; r++) {
            float ms = 0;
            e = kvr_cuda_timer_start();
            if (!e) e = kvr_cuda_prefill_scores(BD, 4, KVR_IMP_SNAPKV, 32, 5, KVR_POOL_AVG, n, kd, 32, qd, sd);
            if (!e) e = kvr_cuda_timer_stop(&ms);
            if (r >= 0) t[r] = 1e3 * ms;
        }
        CU(e);
        qsort(t, (size_t)reps, sizeof(double), by_double);
        printf("  n = %6d: %10.1f us, %8.2f M prompt tokens/s\n", n, t[reps / 2], n / t[reps / 2]);
        kvr_cuda_free(kd); kvr_cuda_free(qd); kvr_cuda_free(sd);
        kd = qd = sd = NULL;
    }
    status = 0;
fail:
    kvr_cuda_free(kv); kvr_cuda_free(sk); kvr_cuda_free(desc_dev); kvr_cuda_free(off_dev); kvr_cuda_free(pos_dev);
    kvr_cuda_free(kd); kvr_cuda_free(qd); kvr_cuda_free(sd);
    free(desc); free(off); free(pos); free(t);
    return status;
}

int ev_bench_cuda(int repeats, long max_n, int quick, const ev_bench_grid *g)
{
    if (!kvr_backend_available(KVR_BACKEND_CUDA)) {
        msg_error("bench: --backend cuda: no usable GPU here");
        return 1;
    }
    double copy_gbps = 0;
    int e = kvr_cuda_copy_bandwidth((size_t)1 << 30, 10, &copy_gbps);
    if (e) { msg_error("bench: copy bandwidth: %s", kvr_cuda_error_string(e)); return 1; }
    printf("backend cuda: %s; device-to-device copy bandwidth %.0f GB/s (read + write, 1 GiB cudaMemcpy)\n",
           kvr_cuda_device_name(), copy_gbps);
    printf("decode attention: head_dim %d, %d query heads on %d KV heads per sequence, float16 exact parts\n",
           BD, BQ, BH);
    printf("%7s %5s  %-30s %11s %10s %8s %9s %9s\n", "N", "batch", "kernel", "us/step", "MB_read", "GB/s",
           "of_copy", "vs_full");
    int n_batch = quick && g->n_batch > 2 ? 2 : g->n_batch;
    for (int ni = 0; ni < g->n_n; ni++) {
        long N = g->n[ni];
        if (max_n > 0 && N > max_n) continue;
        for (int bi = 0; bi < n_batch; bi++) {
            int reps = N >= 131072 ? (repeats / 4 > 3 ? repeats / 4 : 3) : repeats;
            if (bench_point(N, g->batch[bi], g->budget, quick ? 1 : g->n_budget, reps, copy_gbps) != 0)
                return 1;
        }
    }
    return bench_throughput(repeats);
}
#undef CU
#endif
