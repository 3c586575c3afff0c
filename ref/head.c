/* head.c: one head cache, its three parts and the lifecycle (spec §3).
 *
 * A head cache holds the keys and values of one KV head of one layer.  Every
 * position 0 .. n-1 is in exactly one part (spec §3.1):
 *
 *   sink       positions 0 .. S-1, exact forever;
 *   recent     the last R positions, exact, in a ring buffer;
 *   candidate  up to C older positions judged important, exact;
 *   vague      every other position, added into the sketch (spec §7), or
 *              dropped when the configuration has no sketch (eviction
 *              baselines, spec §3.6).
 *
 * Appending a token (spec §3.3): it enters the window; the token the window
 * pushes out becomes a candidate; when that makes more than C candidates the
 * least important candidate leaves for the vague part (ties: the oldest
 * position leaves first, spec §3.4). */
#include <config.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "ref.h"

int ref_cfg_keeps_scores(const kvr_config *cfg)
{
    return cfg->importance != KVR_IMP_NONE && cfg->candidates > 0;
}

int ref_cfg_has_sketch(const kvr_config *cfg)
{
    return cfg->depth > 0 && cfg->width > 0;
}

int ref_keeps_scores(const ref_head *h)
{
    return ref_cfg_keeps_scores(&h->cfg);
}

int ref_has_sketch(const ref_head *h)
{
    return ref_cfg_has_sketch(&h->cfg);
}

/* The table of the arrays (spec §3.1) with their sizes at full capacity
 * (spec §9.1), in the order of the cache file (spec §16).  An array the
 * configuration does not have has count 0: window scores without scores
 * kept (spec §6), the sketch without depth and width (spec §7), the running
 * sums without the sketch or without centring (spec §7.3). */
void ref_head_arrays(const kvr_config *cfg, int head_dim, ref_array a[REF_HEAD_N_ARRAYS])
{
    size_t D = (size_t)head_dim, es = kvr_elem_size(cfg->elem);
    size_t S = (size_t)cfg->sinks, R = (size_t)cfg->window, C = (size_t)cfg->candidates;
    size_t Rs = ref_cfg_keeps_scores(cfg) ? R : 0;
    size_t dw = ref_cfg_has_sketch(cfg) ? (size_t)cfg->depth * (size_t)cfg->width : 0;
    size_t Ds = dw > 0 && cfg->centre ? D : 0;
#define A(field, kind, size, count) {#field, offsetof(ref_head, field), kind, size, count}
    const ref_array t[REF_HEAD_N_ARRAYS] = {
        A(sink_k, REF_KV, es, S * D),               /* [S][D] */
        A(sink_v, REF_KV, es, S * D),
        A(win_k, REF_KV, es, R * D),                /* [R][D] */
        A(win_v, REF_KV, es, R * D),
        A(win_score, REF_SCORE, 4, Rs),             /* [R] when scores are kept */
        A(cand_pos, REF_INDEX, 4, C),               /* [C] */
        A(cand_score, REF_SCORE, 4, C),             /* [C] */
        A(cand_k, REF_KV, es, C * D),               /* [C][D] */
        A(cand_v, REF_KV, es, C * D),
        A(sk_k, REF_SKETCH, 4, dw * D),             /* [d][w][D] */
        A(sk_v, REF_SKETCH, 4, dw * D),
        A(sk_count, REF_INDEX, 4, dw),              /* [d][w] */
        A(sk_load, REF_INDEX, 4, dw),
        A(sum_k, REF_SUM, 8, Ds),                   /* [D] with centring */
        A(sum_v, REF_SUM, 8, Ds),
    };
#undef A
    memcpy(a, t, sizeof t);
}

/* Every field the table names is an object pointer; they share one
 * representation, so each is reached as a void *. */
void **ref_array_slot(ref_head *h, const ref_array *a)
{
    return (void **)((char *)h + a->offset);
}

const void *ref_array_data(const ref_head *h, const ref_array *a)
{
    return *(void *const *)((const char *)h + a->offset);
}

/* Allocate a head cache with every array of the table at its full capacity
 * (zeroed), and the scratch workspace, so that no later operation
 * allocates.  On failure (KVR_ENOMEM) everything allocated is freed and
 * *out is NULL. */
int ref_head_alloc(ref_head **out, const kvr_config *cfg, int head_dim,
                   uint32_t layer, uint32_t kv_head)
{
    *out = NULL;
    ref_head *h = kvr_calloc(1, sizeof *h);
    if (!h)
        return kvr_fail(KVR_ENOMEM, "head cache: %zu bytes", sizeof *h);
    h->cfg = *cfg;
    h->head_dim = head_dim;
    h->layer = layer;
    h->kv_head = kv_head;

    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(cfg, head_dim, a);
    int ok = 1;
    for (int i = 0; i < REF_HEAD_N_ARRAYS; i++)
        if (a[i].count > 0) {
            void **p = ref_array_slot(h, &a[i]);
            *p = kvr_calloc(a[i].count, a[i].elem_size);
            ok = ok && *p != NULL;
        }
    h->scratch = kvr_calloc(4 * (size_t)head_dim, sizeof(float));
    ok = ok && h->scratch != NULL;
    if (!ok) {
        ref_head_free(h);
        return kvr_fail(KVR_ENOMEM, "head cache arrays: %zu bytes", kvr_head_bytes(cfg, head_dim));
    }
    *out = h;
    return KVR_OK;
}

void ref_head_free(ref_head *h)
{
    if (!h)
        return;
    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(&h->cfg, h->head_dim, a);
    for (int i = 0; i < REF_HEAD_N_ARRAYS; i++)
        kvr_free(*ref_array_slot(h, &a[i]));
    kvr_free(h->scratch);
    kvr_free(h);
}

/* Return a head cache to its empty state (n = 0), keeping its arrays. */
void ref_head_reset(ref_head *h)
{
    h->n = 0;
    h->n_cand = 0;
    h->n_vague = 0;
    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(&h->cfg, h->head_dim, a);
    for (int i = 0; i < REF_HEAD_N_ARRAYS; i++) {
        void *p = *ref_array_slot(h, &a[i]);
        if (p)
            memset(p, 0, a[i].count * a[i].elem_size);
    }
}

/* Index of pos among the candidates (sorted by position), or -1. */
int ref_cand_find(const ref_head *h, long pos)
{
    int lo = 0, hi = h->n_cand - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (h->cand_pos[mid] == pos) return mid;
        if (h->cand_pos[mid] < pos) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* spec §3.2: the part of a position 0 <= pos < n. */
kvr_part ref_part_of(const ref_head *h, long pos)
{
    if (pos < h->cfg.sinks)
        return KVR_PART_SINK;
    if (pos >= h->n - h->cfg.window)
        return KVR_PART_RECENT;
    if (ref_cand_find(h, pos) >= 0)
        return KVR_PART_CANDIDATE;
    return ref_has_sketch(h) ? KVR_PART_VAGUE : KVR_PART_DROPPED;
}

/* Copy D stored elements starting at element offset `at` out as float32. */
static void load_row(kvr_elem elem, const void *src, size_t at, int D, float *dst)
{
    for (int i = 0; i < D; i++)
        dst[i] = kvr_elem_load(elem, src, at + (size_t)i);
}

static void store_row(kvr_elem elem, void *dst, size_t at, int D, const float *src)
{
    for (int i = 0; i < D; i++)
        kvr_elem_store(elem, src[i], dst, at + (size_t)i);  /* values were checked representable */
}

int ref_exact_kv(const ref_head *h, long pos, float *k, float *v)
{
    int D = h->head_dim;
    kvr_elem e = h->cfg.elem;
    switch (ref_part_of(h, pos)) {
    case KVR_PART_SINK:
        load_row(e, h->sink_k, (size_t)pos * D, D, k);
        load_row(e, h->sink_v, (size_t)pos * D, D, v);
        return 1;
    case KVR_PART_RECENT: {
        size_t slot = (size_t)(pos % h->cfg.window);
        load_row(e, h->win_k, slot * D, D, k);
        load_row(e, h->win_v, slot * D, D, v);
        return 1;
    }
    case KVR_PART_CANDIDATE: {
        size_t j = (size_t)ref_cand_find(h, pos);
        load_row(e, h->cand_k, j * D, D, k);
        load_row(e, h->cand_v, j * D, D, v);
        return 1;
    }
    default:
        return 0;
    }
}

float *ref_score_slot(ref_head *h, long pos)
{
    if (!ref_keeps_scores(h))
        return NULL;
    switch (ref_part_of(h, pos)) {
    case KVR_PART_RECENT:
        return &h->win_score[pos % h->cfg.window];
    case KVR_PART_CANDIDATE:
        return &h->cand_score[ref_cand_find(h, pos)];
    default:
        return NULL;
    }
}

/* spec §3.3: a token leaves the exact set for the vague part. */
static void to_vague(ref_head *h, long pos, const float *k, const float *v)
{
    if (ref_has_sketch(h))
        ref_sketch_insert(h, pos, k, v);
    else
        h->n_vague++;   /* eviction baseline: dropped for good */
}

/* spec §3.4: index of the candidate that leaves first: the lowest score;
 * among equal scores, the oldest (smallest) position.  Candidates are sorted
 * by position, so the first minimum found is the oldest. */
static int least_important(const ref_head *h)
{
    int j = 0;
    for (int i = 1; i < h->n_cand; i++)
        if (h->cand_score[i] < h->cand_score[j])
            j = i;
    return j;
}

/* Remove candidate j, keeping the rest sorted by position. */
static void cand_remove(ref_head *h, int j)
{
    int D = h->head_dim;
    size_t es = kvr_elem_size(h->cfg.elem), row = (size_t)D * es;
    int tail = h->n_cand - j - 1;
    memmove(&h->cand_pos[j], &h->cand_pos[j + 1], (size_t)tail * sizeof(int32_t));
    memmove(&h->cand_score[j], &h->cand_score[j + 1], (size_t)tail * sizeof(float));
    memmove((char *)h->cand_k + (size_t)j * row, (char *)h->cand_k + (size_t)(j + 1) * row, (size_t)tail * row);
    memmove((char *)h->cand_v + (size_t)j * row, (char *)h->cand_v + (size_t)(j + 1) * row, (size_t)tail * row);
    h->n_cand--;
}

/* Add a candidate newer than every current one (it keeps the order). */
static void cand_push(ref_head *h, long pos, float score, const float *k, const float *v)
{
    int j = h->n_cand++;
    h->cand_pos[j] = (int32_t)pos;
    h->cand_score[j] = score;
    store_row(h->cfg.elem, h->cand_k, (size_t)j * h->head_dim, h->head_dim, k);
    store_row(h->cfg.elem, h->cand_v, (size_t)j * h->head_dim, h->head_dim, v);
}

/* spec §3.3 step 2: the token at pos, pushed out of the window with its
 * score, becomes a candidate; if the candidates are then over capacity, the
 * least important one (spec §3.4) goes to the vague part. */
static void admit_candidate(ref_head *h, long pos, float score, const float *k, const float *v)
{
    int D = h->head_dim;
    if (h->cfg.candidates == 0) {
        to_vague(h, pos, k, v);
        return;
    }
    if (h->n_cand < h->cfg.candidates) {
        cand_push(h, pos, score, k, v);
        return;
    }
    /* Full: among the C candidates and the newcomer, the lowest score leaves;
     * the newcomer is the newest, so on a tie a candidate leaves before it. */
    int j = least_important(h);
    if (score < h->cand_score[j]) {
        to_vague(h, pos, k, v);
        return;
    }
    float *ek = h->scratch, *ev = h->scratch + D;  /* the evicted token's K and V */
    long epos = h->cand_pos[j];
    load_row(h->cfg.elem, h->cand_k, (size_t)j * D, D, ek);
    load_row(h->cfg.elem, h->cand_v, (size_t)j * D, D, ev);
    cand_remove(h, j);
    to_vague(h, epos, ek, ev);
    cand_push(h, pos, score, k, v);
}

/* spec §3.3: append the token at position n.  k and v ([D]) are already
 * rounded to the element type (the caller checked them). */
void ref_append(ref_head *h, const float *k, const float *v)
{
    int D = h->head_dim, S = h->cfg.sinks, R = h->cfg.window;
    long pos = h->n;
    if (pos < S) {                                  /* step 0: a sink */
        store_row(h->cfg.elem, h->sink_k, (size_t)pos * D, D, k);
        store_row(h->cfg.elem, h->sink_v, (size_t)pos * D, D, v);
        h->n++;
        return;
    }
    size_t slot = (size_t)(pos % R);
    if (pos - R >= S) {                             /* step 1: the window is full */
        long old = pos - R;                         /* its oldest token leaves */
        float *ok = h->scratch + 2 * (size_t)D, *ov = h->scratch + 3 * (size_t)D;
        load_row(h->cfg.elem, h->win_k, slot * D, D, ok);
        load_row(h->cfg.elem, h->win_v, slot * D, D, ov);
        float score = h->win_score ? h->win_score[slot] : 0.0f;
        admit_candidate(h, old, score, ok, ov);
    }
    store_row(h->cfg.elem, h->win_k, slot * D, D, k); /* step 3: enter the window */
    store_row(h->cfg.elem, h->win_v, slot * D, D, v);
    if (h->win_score)
        h->win_score[slot] = 0.0f;
    h->n++;
}

/* Place the token at pos directly into a part, with no transition (prefill,
 * spec §10).  Positions must come in increasing order; afterwards n = pos+1.
 * k and v ([D]) are already rounded to the element type. */
void ref_place(ref_head *h, long pos, kvr_part part, const float *k, const float *v, float score)
{
    int D = h->head_dim;
    switch (part) {
    case KVR_PART_SINK:
        store_row(h->cfg.elem, h->sink_k, (size_t)pos * D, D, k);
        store_row(h->cfg.elem, h->sink_v, (size_t)pos * D, D, v);
        break;
    case KVR_PART_RECENT: {
        size_t slot = (size_t)(pos % h->cfg.window);
        store_row(h->cfg.elem, h->win_k, slot * D, D, k);
        store_row(h->cfg.elem, h->win_v, slot * D, D, v);
        if (h->win_score)
            h->win_score[slot] = score;
        break;
    }
    case KVR_PART_CANDIDATE:
        cand_push(h, pos, score, k, v);
        break;
    default:
        to_vague(h, pos, k, v);
        break;
    }
    h->n = pos + 1;
}

size_t ref_head_bytes(const ref_head *h)
{
    return kvr_head_bytes(&h->cfg, h->head_dim);
}

/* spec §3.5: the invariants that hold after every operation. */
int ref_head_check(const ref_head *h, char *why, size_t len)
{
    long S = h->cfg.sinks, R = h->cfg.window;
    long n_sink = h->n < S ? h->n : S;
    long n_win = h->n - n_sink < R ? h->n - n_sink : R;
    if (h->n_cand < 0 || h->n_cand > h->cfg.candidates) {
        snprintf(why, len, "%d candidates, capacity %d", h->n_cand, h->cfg.candidates);
        return 1;
    }
    for (int j = 0; j < h->n_cand; j++) {
        long p = h->cand_pos[j];
        if (p < S || p >= h->n - n_win || (j > 0 && p <= h->cand_pos[j - 1])) {
            snprintf(why, len, "candidate %d at position %ld is outside [%ld, %ld) or out of order",
                     j, p, S, h->n - n_win);
            return 1;
        }
    }
    if (n_sink + n_win + h->n_cand + h->n_vague != h->n) {
        snprintf(why, len, "parts do not add up: %ld sinks + %ld recent + %d candidates + %ld vague != %ld",
                 n_sink, n_win, h->n_cand, h->n_vague, h->n);
        return 1;
    }
    if (ref_has_sketch(h)) {
        for (int r = 0; r < h->cfg.depth; r++) {
            long load = 0;
            for (int b = 0; b < h->cfg.width; b++) {
                int32_t c = h->sk_count[(size_t)r * h->cfg.width + b];
                int32_t m = h->sk_load[(size_t)r * h->cfg.width + b];
                if (m < 0 || c > m || c < -m || ((m - c) & 1)) {
                    snprintf(why, len, "row %d bucket %d: signed count %d impossible for load %d", r, b, c, m);
                    return 1;
                }
                load += m;
            }
            if (load != h->n_vague) {
                snprintf(why, len, "row %d holds %ld tokens, vague part has %ld", r, load, h->n_vague);
                return 1;
            }
        }
    }
    return 0;
}
