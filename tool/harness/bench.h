/* bench.h: the timings of `kvreviver bench` (bench.c, doc/cuda.md). */
#ifndef KVR_BENCH_H
#define KVR_BENCH_H

/* The grid: contexts, batch sizes and budgets (defaults: the grid;
 * the options choose a part of it or other values). */
enum { EV_BENCH_MAX_LIST = 16 };
typedef struct {
    long n[EV_BENCH_MAX_LIST];        /* contexts; n_n == 0: the backend's default */
    int n_n;
    int batch[EV_BENCH_MAX_LIST];
    int n_batch;
    double budget[EV_BENCH_MAX_LIST];
    int n_budget;
} ev_bench_grid;

/* The reference's decode attention: with g->n_n == 0, N = 512, 1k, 2k, ...
 * up to max_n (0: no limit) while the run stays within about a minute;
 * otherwise the contexts of g up to max_n.  Prints a table on stdout;
 * returns 0, or 1 after reporting a failure on stderr. */
int ev_bench_ref(int repeats, long max_n, const ev_bench_grid *g);

/* The CPU kernels (bench_cpu.c, doc/cpu-results.md) over the grid g
 * (contexts up to max_n; quick: the first budget only): the machine's
 * streaming read bandwidth (one thread, all threads), then per (N, batch)
 * the full-cache f16 baseline and the default kvreviver at each budget.
 * Returns 0, or 1 after reporting a failure on stderr. */
int ev_bench_cpu(int repeats, long max_n, int quick, const ev_bench_grid *g);

#ifdef KVR_HAVE_CUDA
/* The CUDA kernels over the grid g (contexts up to max_n; quick: two batch
 * sizes and one budget), then the throughput rows.  Returns 0, or 1 after
 * reporting a failure (no usable GPU among them) on stderr. */
int ev_bench_cuda(int repeats, long max_n, int quick, const ev_bench_grid *g);
#endif

#endif
