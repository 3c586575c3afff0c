/* workload.h: attention workloads for eval and demo (doc/eval.md §2). */
#ifndef KVR_WORKLOAD_H
#define KVR_WORKLOAD_H

#include <stdint.h>

/* One layer's queries, keys and values for every position 0 .. n-1.  Eval
 * prefills positions 0 .. n_prefill-1 and decodes the rest one at a time. */
typedef struct {
    char name[64];
    int n;              /* positions */
    int n_prefill;      /* positions given at prefill; the rest are decode steps */
    int n_kv_heads, n_q_heads, head_dim;
    float *q;           /* [n][n_q_heads][head_dim] */
    float *k, *v;       /* [n][n_kv_heads][head_dim] */
    /* needle workloads: which decode steps look for which position */
    int n_needles;
    int *needle_pos;    /* [n_needles] */
    int *needle_step;   /* [n_needles] decode step (position) whose queries seek it */
} ev_workload;

typedef struct {
    int n_kv_heads, n_q_heads, head_dim;
    int decode_steps;
} ev_workload_shape;

/* Parameters of the synthetic heads (doc/eval.md §2.1).  Logit strengths are
 * in units of the attention logit (q.k)/sqrt(D), so they mean the same at
 * every head_dim. */
typedef struct {
    double offset_sd;   /* per-channel key offset o ~ N(0, offset_sd^2) */
    int rank;           /* rank r of the drifting content part U z_t */
    double rho;         /* AR(1) coefficient of the latent z_t */
    double content;     /* logit scale of the content match: beta * z_q . z_t */
    double key_noise;   /* key noise per channel, N(0, key_noise^2) */
    double query_noise; /* query noise per channel */
    double heavy_share; /* share of positions that are heavy hitters */
    double heavy_logit; /* logit bonus of a heavy hitter for every query */
    double sink_logit;  /* logit bonus of position 0 (the attention sink) */
    double needle_extra;/* needle logit = ln(n) + needle_extra for its query */
} ev_synth_params;

void ev_synth_default(ev_synth_params *p);

/* Synthetic heads (doc/eval.md §2.1): keys with per-channel offsets and a
 * slowly drifting low-rank part, a sink, a few heavy hitters, queries that
 * favour them and the recent window.  p NULL: the defaults.  On failure
 * (KVR_EINVAL for a bad shape, KVR_ENOMEM) *w is zeroed. */
int ev_workload_synthetic(ev_workload *w, const ev_workload_shape *shape, int context,
                           uint64_t seed, const ev_synth_params *p);
/* Needles (doc/eval.md §2.2): the synthetic context, plus one needle per
 * decode step: a position that gets little attention while the context is
 * read, and a decode query that looks for exactly it. */
int ev_workload_needle(ev_workload *w, const ev_workload_shape *shape, int context,
                        uint64_t seed, const ev_synth_params *p);
/* A recorded trace (doc/eval.md §2.3): layer `layer` of DIR, files
 * DIR/layer<L>/{q,k,v}.npy.  context <= 0 takes every position of the
 * trace; decode_steps as in shape (shape's head counts are ignored: the
 * files give them).  KVR_EIO/KVR_EFORMAT with kvr_last_error() naming the
 * file; *w is zeroed on failure. */
int ev_workload_trace(ev_workload *w, const char *dir, int layer, int context, int decode_steps);
/* Number of layers of a trace: layer0, layer1, ... while DIR/layer<L>/q.npy
 * exists.  0 when there is none. */
int ev_trace_layers(const char *dir);
/* The message of the last failed ev_workload_trace() (names the file). */
const char *ev_trace_error(void);
void ev_workload_free(ev_workload *w);

#endif
