/* pool.c: the CPU kernels' thread pool (threads over heads and sequences).
 *
 * pthreads, created once per pool (a cpu cache owns one; the benchmark
 * makes its own) and parked on a condition variable between runs, so a
 * decode step pays a wake-up, not a thread creation.  A run hands out its
 * items one at a time through an atomic counter (a head cache per item:
 * heads of one step cost about the same, and a counter balances the rest);
 * the calling thread works too.  Thread t always uses workspace t. */
#include <config.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "internal.h"
#include "kvr_cpu.h"

struct kvr_cpu_pool {
    int n;                       /* threads, the caller's included */
    pthread_t *tid;              /* [n - 1] */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation;    /* bumped by each run */
    int stop, busy;              /* busy: workers still in the current run */
    int n_items;
    int next;                    /* the next item (atomic) */
    void (*fn)(void *, int, int);
    void *arg;
};

typedef struct {
    kvr_cpu_pool *p;
    int index;
} worker_arg;

static void drain(kvr_cpu_pool *p, int thread)
{
    for (;;) {
        int i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n_items)
            return;
        p->fn(p->arg, i, thread);
    }
}

static void *worker(void *a)
{
    worker_arg wa = *(worker_arg *)a;
    kvr_free(a);
    kvr_cpu_pool *p = wa.p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        drain(p, wa.index);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int kvr_cpu_pool_create(kvr_cpu_pool **out, int n_threads)
{
    *out = NULL;
    if (n_threads <= 0) {
        const char *e = getenv("KVR_CPU_THREADS");
        n_threads = e ? atoi(e) : 0;
        if (n_threads <= 0) {
            long c = sysconf(_SC_NPROCESSORS_ONLN);
            n_threads = c > 0 ? (int)c : 1;
        }
    }
    if (n_threads > 256) n_threads = 256;
    kvr_cpu_pool *p = kvr_calloc(1, sizeof *p);
    if (!p)
        return kvr_fail(KVR_ENOMEM, "cpu thread pool");
    p->n = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->tid = kvr_calloc((size_t)n_threads, sizeof *p->tid);
    if (!p->tid) {
        kvr_cpu_pool_free(p);
        return kvr_fail(KVR_ENOMEM, "cpu thread pool of %d threads", n_threads);
    }
    for (int t = 1; t < n_threads; t++) {
        worker_arg *a = kvr_malloc(sizeof *a);
        if (!a) break;
        a->p = p;
        a->index = t;
        if (pthread_create(&p->tid[t - 1], NULL, worker, a) != 0) {
            kvr_free(a);
            break;                                   /* fewer threads: still correct */
        }
        p->n++;
    }
    *out = p;
    return KVR_OK;
}

void kvr_cpu_pool_free(kvr_cpu_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int t = 0; t + 1 < p->n; t++)
        pthread_join(p->tid[t], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    kvr_free(p->tid);
    kvr_free(p);
}

int kvr_cpu_pool_threads(const kvr_cpu_pool *p)
{
    return p->n;
}

void kvr_cpu_pool_run(kvr_cpu_pool *p, int n_items, void (*fn)(void *, int, int), void *arg)
{
    if (p->n == 1 || n_items <= 1) {                 /* nothing to share */
        for (int i = 0; i < n_items; i++)
            fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n_items = n_items;
    __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
    p->busy = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    drain(p, 0);
    pthread_mutex_lock(&p->lock);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
