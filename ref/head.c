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
 *              baselines, spec §3.6);
 *   quantized  in a KIVI head cache, every other position, kept as codes
 *              (spec §18.6, ref/quant.c).
 *
 * The exact parts hold each token's key and value in the element type, or
 * with quantized storage (cfg.store, spec §18) as codes with a float16 zero
 * point and scale; a token moves between parts as it is stored.
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
#include "base.h"
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
 * sums without the sketch or without centring (spec §7.3), the quantization
 * parameters without quantized storage (spec §18.2), KIVI's body without
 * KIVI (spec §18.6).  The arrays added with quantized storage come last, so
 * that the order of the others in a file stays as it was. */
void ref_head_arrays(const kvr_config *cfg, int head_dim, ref_array a[REF_HEAD_N_ARRAYS])
{
    size_t D = (size_t)head_dim, es = kvr_elem_size(cfg->elem);
    size_t S = (size_t)cfg->sinks, R = (size_t)cfg->window, C = (size_t)cfg->candidates;
    size_t Rs = ref_cfg_keeps_scores(cfg) ? R : 0;
    size_t dw = ref_cfg_has_sketch(cfg) ? (size_t)cfg->depth * (size_t)cfg->width : 0;
    size_t Ds = dw > 0 && cfg->centre ? D : 0;
    /* exact keys and values: D elements a token, or with quantized storage
     * (spec §18.5) ceil(D b / 8) code bytes and a {zero point, scale} pair */
    int b = kvr_store_bits(cfg->store);
    ref_kind kv_kind = b ? REF_CODE : REF_KV;
    size_t kv_size = b ? 1 : es, kv_row = b ? ref_quant_row_bytes(D, b) : D, zs = b ? 2 : 0;
    /* KIVI's body (spec §18.6): Q positions, m = floor(Q / G) complete groups */
    int kb = cfg->kivi_bits;
    size_t Q = kb ? (size_t)cfg->kivi_tokens : 0, G = kb ? (size_t)cfg->kivi_group : 1;
    size_t m = Q / G, Bk = kb ? ref_quant_row_bytes(D, kb) : 0, fill = G < Q ? G : Q;
    /* the quantized tier (spec §19.2): Q slots of ceil(D b / 8) code bytes */
    size_t Qt = ref_cfg_has_tier(cfg) ? (size_t)cfg->tier_tokens : 0;
    size_t Bt = Qt ? ref_quant_row_bytes(D, cfg->tier_bits) : 0;
#define A(field, kind, size, count) {#field, offsetof(ref_head, field), kind, size, count}
    const ref_array t[REF_HEAD_N_ARRAYS] = {
        A(sink_k, kv_kind, kv_size, S * kv_row),    /* [S][D] elem, or [S][B] codes */
        A(sink_v, kv_kind, kv_size, S * kv_row),
        A(win_k, kv_kind, kv_size, R * kv_row),     /* [R][D] or [R][B] */
        A(win_v, kv_kind, kv_size, R * kv_row),
        A(win_score, REF_SCORE, 4, Rs),             /* [R] when scores are kept */
        A(cand_pos, REF_INDEX, 4, C),               /* [C] */
        A(cand_score, REF_SCORE, 4, C),             /* [C] */
        A(cand_k, kv_kind, kv_size, C * kv_row),    /* [C][D] or [C][B] */
        A(cand_v, kv_kind, kv_size, C * kv_row),
        A(sk_k, REF_SKETCH, 4, dw * D),             /* [d][w][D] */
        A(sk_v, REF_SKETCH, 4, dw * D),
        A(sk_count, REF_INDEX, 4, dw),              /* [d][w] */
        A(sk_load, REF_INDEX, 4, dw),
        A(sum_k, REF_SUM, 8, Ds),                   /* [D] with centring */
        A(sum_v, REF_SUM, 8, Ds),
        A(sink_kq, REF_QPARAM, 2, S * zs),          /* [S][2] with quantized storage */
        A(sink_vq, REF_QPARAM, 2, S * zs),
        A(win_kq, REF_QPARAM, 2, R * zs),           /* [R][2] */
        A(win_vq, REF_QPARAM, 2, R * zs),
        A(cand_kq, REF_QPARAM, 2, C * zs),          /* [C][2] */
        A(cand_vq, REF_QPARAM, 2, C * zs),
        A(kivi_fill, REF_KV, es, fill * D),         /* [min(G, Q)][D] KIVI */
        A(kivi_kc, REF_CODE, 1, m * G * Bk),        /* [m G][B] */
        A(kivi_kq, REF_QPARAM, 2, m * D * 2),       /* [m][D][2] */
        A(kivi_vc, REF_CODE, 1, Q * Bk),            /* [Q][B] */
        A(kivi_vq, REF_QPARAM, 2, Q * 2),           /* [Q][2] */
        A(tier_pos, REF_INDEX, 4, Qt),              /* [Q] the quantized tier, spec §19 */
        A(tier_score, REF_SCORE, 4, Qt),            /* [Q] */
        A(tier_k, REF_CODE, 1, Qt * Bt),            /* [Q][B] */
        A(tier_v, REF_CODE, 1, Qt * Bt),
        A(tier_kq, REF_QPARAM, 2, Qt * 2),          /* [Q][2] */
        A(tier_vq, REF_QPARAM, 2, Qt * 2),
        A(tier_bal, REF_INDEX, 4, Qt && cfg->tier_balance ? D : 0),   /* [D] spec §19.12 */
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
    h->scratch = kvr_calloc(8 * (size_t)head_dim, sizeof(float));
    ok = ok && h->scratch != NULL;
    if (ref_cfg_has_tier(cfg)) {
        h->tier_marks = kvr_calloc((size_t)cfg->tier_tokens, sizeof(int32_t));
        ok = ok && h->tier_marks != NULL;
    }
    if (!ok) {
        ref_head_free(h);
        return kvr_fail(KVR_ENOMEM, "head cache arrays: %zu bytes", ref_cfg_bytes(cfg, head_dim));
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
    kvr_free(h->tier_marks);
    kvr_free(h);
}

/* Return a head cache to its empty state (n = 0), keeping its arrays. */
void ref_head_reset(ref_head *h)
{
    h->n = 0;
    h->n_cand = 0;
    h->n_tier = 0;
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
        return KVR_PART_CANDIDATE;                  /* over a KIVI body too (spec §18.8) */
    if (h->cfg.kivi_bits > 0)
        return KVR_PART_QUANTIZED;                  /* spec §18.6: KIVI keeps every token */
    if (ref_has_tier(h) && ref_tier_find(h, pos) >= 0)
        return KVR_PART_QUANTIZED;                  /* the quantized tier, spec §19.2 */
    return ref_has_sketch(h) ? KVR_PART_VAGUE : KVR_PART_DROPPED;
}

/* Copy D stored elements starting at element offset `at` out as float32. */
static void load_row(kvr_elem elem, const void *src, size_t at, int D, float *dst)
{
    kvr_elem_load_row(elem, src, at, (size_t)D, dst);
}

static void store_row(kvr_elem elem, void *dst, size_t at, int D, const float *src)
{
    for (int i = 0; i < D; i++)
        kvr_elem_store(elem, src[i], dst, at + (size_t)i);  /* values were checked representable */
}

/* The rows of one exact part (spec §3.1): keys and values, in elem or as
 * codes, and with quantized storage their {zero point, scale} pairs
 * (spec §18.2; NULL otherwise).  Row j of a part is one token. */
typedef struct {
    void *k, *v;
    uint16_t *kq, *vq;
} part_rows;

static part_rows rows_of(const ref_head *h, kvr_part part)
{
    switch (part) {
    case KVR_PART_SINK:   return (part_rows){h->sink_k, h->sink_v, h->sink_kq, h->sink_vq};
    case KVR_PART_RECENT: return (part_rows){h->win_k, h->win_v, h->win_kq, h->win_vq};
    default:              return (part_rows){h->cand_k, h->cand_v, h->cand_kq, h->cand_vq};
    }
}

/* Bytes of one stored key (or value) in an exact part: D elements, or
 * ceil(D b / 8) code bytes (spec §18.5). */
static size_t row_bytes(const ref_head *h)
{
    int b = kvr_store_bits(h->cfg.store);
    return b ? ref_quant_row_bytes((size_t)h->head_dim, b) : (size_t)h->head_dim * kvr_elem_size(h->cfg.elem);
}

/* Store a token (k, v: [D], rounded to elem) at row j: in elem, or
 * quantized (spec §18.2); the caller checked that the values lie in
 * float16's range, so quantization cannot fail. */
static void row_put(const ref_head *h, part_rows p, size_t j, const float *k, const float *v)
{
    int b = kvr_store_bits(h->cfg.store), D = h->head_dim;
    if (!b) {
        store_row(h->cfg.elem, p.k, j * (size_t)D, D, k);
        store_row(h->cfg.elem, p.v, j * (size_t)D, D, v);
        return;
    }
    size_t rb = row_bytes(h);
    (void)ref_quant_row(k, (size_t)D, b, (unsigned char *)p.k + j * rb, p.kq + 2 * j);
    (void)ref_quant_row(v, (size_t)D, b, (unsigned char *)p.v + j * rb, p.vq + 2 * j);
}

/* The token at row j as float32: the stored element, or the dequantized
 * code (spec §18.3). */
static void row_get(const ref_head *h, part_rows p, size_t j, float *k, float *v)
{
    int b = kvr_store_bits(h->cfg.store), D = h->head_dim;
    if (!b) {
        load_row(h->cfg.elem, p.k, j * (size_t)D, D, k);
        load_row(h->cfg.elem, p.v, j * (size_t)D, D, v);
        return;
    }
    size_t rb = row_bytes(h);
    ref_dequant_row((const unsigned char *)p.k + j * rb, p.kq + 2 * j, (size_t)D, b, k);
    ref_dequant_row((const unsigned char *)p.v + j * rb, p.vq + 2 * j, (size_t)D, b, v);
}

/* Move `count` rows from src row sj to dst row dj as they are stored (codes
 * and parameters unchanged: a token is never quantized twice, spec §18.1);
 * the ranges may overlap. */
static void rows_move(const ref_head *h, part_rows dst, size_t dj, part_rows src, size_t sj, size_t count)
{
    size_t rb = row_bytes(h);
    memmove((char *)dst.k + dj * rb, (char *)src.k + sj * rb, count * rb);
    memmove((char *)dst.v + dj * rb, (char *)src.v + sj * rb, count * rb);
    if (kvr_store_bits(h->cfg.store)) {
        memmove(dst.kq + 2 * dj, src.kq + 2 * sj, 2 * count * sizeof(uint16_t));
        memmove(dst.vq + 2 * dj, src.vq + 2 * sj, 2 * count * sizeof(uint16_t));
    }
}

/* The stored key and value of an exact position whose part is known, with
 * its candidate or tier slot (ignored for the other parts). */
static int exact_at(const ref_head *h, long pos, kvr_part part, int cand, int tier, float *k, float *v)
{
    switch (part) {
    case KVR_PART_SINK:
        row_get(h, rows_of(h, part), (size_t)pos, k, v);
        return 1;
    case KVR_PART_RECENT:
        row_get(h, rows_of(h, part), (size_t)(pos % h->cfg.window), k, v);
        return 1;
    case KVR_PART_CANDIDATE:
        row_get(h, rows_of(h, part), (size_t)cand, k, v);
        return 1;
    case KVR_PART_QUANTIZED:
        if (h->cfg.kivi_bits > 0)
            ref_kivi_get(h, pos, k, v);
        else
            ref_tier_get(h, tier, k, v);   /* spec §19.2 */
        return 1;
    default:
        return 0;
    }
}

int ref_exact_kv(const ref_head *h, long pos, float *k, float *v)
{
    kvr_part part = ref_part_of(h, pos);
    int cand = part == KVR_PART_CANDIDATE ? ref_cand_find(h, pos) : -1;
    int tier = part == KVR_PART_QUANTIZED && h->cfg.kivi_bits == 0 ? ref_tier_find(h, pos) : -1;
    return exact_at(h, pos, part, cand, tier, k, v);
}

/* ref_part_of for positions visited in increasing order: the candidate and
 * tier slots are sorted by position (spec §3.1, §19.2), so a cursor into
 * each replaces the search.  The same part as ref_part_of, by the same
 * tests in the same order. */
kvr_part ref_walk_part(const ref_head *h, ref_walk *wk, long pos)
{
    if (pos < h->cfg.sinks)
        return KVR_PART_SINK;
    if (pos >= h->n - h->cfg.window)
        return KVR_PART_RECENT;
    while (wk->cand < h->n_cand && h->cand_pos[wk->cand] < pos)
        wk->cand++;
    if (wk->cand < h->n_cand && h->cand_pos[wk->cand] == pos)
        return KVR_PART_CANDIDATE;
    if (h->cfg.kivi_bits > 0)
        return KVR_PART_QUANTIZED;
    if (ref_has_tier(h)) {
        while (wk->tier < h->n_tier && h->tier_pos[wk->tier] < pos)
            wk->tier++;
        if (wk->tier < h->n_tier && h->tier_pos[wk->tier] == pos)
            return KVR_PART_QUANTIZED;
    }
    return ref_has_sketch(h) ? KVR_PART_VAGUE : KVR_PART_DROPPED;
}

int ref_walk_exact_kv(const ref_head *h, const ref_walk *wk, long pos, kvr_part part, float *k, float *v)
{
    return exact_at(h, pos, part, wk->cand, wk->tier, k, v);
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
    case KVR_PART_QUANTIZED:
        return ref_has_tier(h) ? &h->tier_score[ref_tier_find(h, pos)] : NULL;
    default:
        return NULL;
    }
}

/* spec §3.3: the bulk, the vague part proper: the sketch, or dropped. */
void ref_to_bulk(ref_head *h, long pos, const float *k, const float *v)
{
    if (ref_has_sketch(h))
        ref_sketch_insert(h, pos, k, v);
    else
        h->n_vague++;   /* eviction baseline: dropped for good */
}

/* spec §3.3: a token leaves the exact set (with its score) for the vague
 * part; in KIVI it enters the quantized body instead (spec §18.6), and
 * with candidates over the body it is there already (it entered when it
 * left the window, spec §18.8); with a tier it enters the tier (§19.3). */
static void to_vague(ref_head *h, long pos, float score, const float *k, const float *v)
{
    if (h->cfg.kivi_bits > 0 && h->cfg.candidates > 0)
        return;
    if (h->cfg.kivi_bits > 0)
        ref_kivi_push(h, pos, k, v);
    else if (ref_has_tier(h))
        ref_tier_enter(h, pos, score, k, v);
    else
        ref_to_bulk(h, pos, k, v);
}

/* spec §3.4: index of the candidate that leaves first: the lowest score;
 * among equal scores, the oldest (smallest) position.  Candidates are sorted
 * by position, so the first minimum found is the oldest. */
int ref_cand_least(const ref_head *h)
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
    int tail = h->n_cand - j - 1;
    part_rows c = rows_of(h, KVR_PART_CANDIDATE);
    memmove(&h->cand_pos[j], &h->cand_pos[j + 1], (size_t)tail * sizeof(int32_t));
    memmove(&h->cand_score[j], &h->cand_score[j + 1], (size_t)tail * sizeof(float));
    rows_move(h, c, (size_t)j, c, (size_t)j + 1, (size_t)tail);
    h->n_cand--;
}

/* Open a candidate row newer than every current one (it keeps the order);
 * the caller fills its key and value.  Returns its index. */
static size_t cand_open(ref_head *h, long pos, float score)
{
    int j = h->n_cand++;
    h->cand_pos[j] = (int32_t)pos;
    h->cand_score[j] = score;
    return (size_t)j;
}

/* Remove candidate j, giving its key and value (float32, as stored). */
void ref_cand_take(ref_head *h, int j, float *k, float *v)
{
    row_get(h, rows_of(h, KVR_PART_CANDIDATE), (size_t)j, k, v);
    cand_remove(h, j);
}

/* Insert a candidate at its place in position order (n_cand < C): the
 * later candidates shift up one slot; k and v (float32) are stored in the
 * exact parts' storage type, so they must lie in its range. */
void ref_cand_insert(ref_head *h, long pos, float score, const float *k, const float *v)
{
    part_rows c = rows_of(h, KVR_PART_CANDIDATE);
    int j = h->n_cand;
    while (j > 0 && h->cand_pos[j - 1] > pos)
        j--;
    int tail = h->n_cand - j;
    memmove(&h->cand_pos[j + 1], &h->cand_pos[j], (size_t)tail * sizeof(int32_t));
    memmove(&h->cand_score[j + 1], &h->cand_score[j], (size_t)tail * sizeof(float));
    rows_move(h, c, (size_t)j + 1, c, (size_t)j, (size_t)tail);
    h->n_cand++;
    h->cand_pos[j] = (int32_t)pos;
    h->cand_score[j] = score;
    row_put(h, c, (size_t)j, k, v);
}

/* spec §3.3 step 2: the token at pos, pushed out of the window (from its
 * ring slot) with its score, becomes a candidate, its stored row moved as
 * it is; if the candidates are then over capacity, the least important one
 * (spec §3.4) goes to the vague part. */
static void admit_candidate(ref_head *h, long pos, float score, size_t slot)
{
    int D = h->head_dim;
    part_rows win = rows_of(h, KVR_PART_RECENT), cand = rows_of(h, KVR_PART_CANDIDATE);
    float *ok = h->scratch + 2 * (size_t)D, *ov = h->scratch + 3 * (size_t)D;  /* the window token */
    if (h->cfg.candidates == 0) {
        row_get(h, win, slot, ok, ov);
        to_vague(h, pos, score, ok, ov);
        return;
    }
    if (h->n_cand < h->cfg.candidates) {
        rows_move(h, cand, cand_open(h, pos, score), win, slot, 1);
        return;
    }
    /* Full: among the C candidates and the newcomer, the lowest score leaves;
     * the newcomer is the newest, so on a tie a candidate leaves before it. */
    int j = ref_cand_least(h);
    if (score < h->cand_score[j]) {
        row_get(h, win, slot, ok, ov);
        to_vague(h, pos, score, ok, ov);
        return;
    }
    float *ek = h->scratch, *ev = h->scratch + D;  /* the evicted token's K and V */
    long epos = h->cand_pos[j];
    float escore = h->cand_score[j];
    row_get(h, cand, (size_t)j, ek, ev);
    cand_remove(h, j);
    to_vague(h, epos, escore, ek, ev);
    rows_move(h, cand, cand_open(h, pos, score), win, slot, 1);
}

/* spec §3.3: append the token at position n.  k and v ([D]) are already
 * rounded to the element type (the caller checked them). */
void ref_append(ref_head *h, const float *k, const float *v)
{
    int S = h->cfg.sinks, R = h->cfg.window;
    long pos = h->n;
    if (pos < S) {                                  /* step 0: a sink */
        row_put(h, rows_of(h, KVR_PART_SINK), (size_t)pos, k, v);
        h->n++;
        return;
    }
    size_t slot = (size_t)(pos % R);
    if (pos - R >= S) {                             /* step 1: the window is full */
        long old = pos - R;                         /* its oldest token leaves */
        float score = h->win_score ? h->win_score[slot] : 0.0f;
        if (h->cfg.kivi_bits > 0 && h->cfg.candidates > 0) {
            /* spec §18.8: it enters the body first, then competes for the candidates */
            float *bk = h->scratch + 2 * (size_t)h->head_dim, *bv = h->scratch + 3 * (size_t)h->head_dim;
            row_get(h, rows_of(h, KVR_PART_RECENT), slot, bk, bv);
            ref_kivi_push(h, old, bk, bv);
        }
        admit_candidate(h, old, score, slot);
    }
    row_put(h, rows_of(h, KVR_PART_RECENT), slot, k, v);   /* step 3: enter the window */
    if (h->win_score)
        h->win_score[slot] = 0.0f;
    h->n++;
}

/* Place the token at pos directly into a part, with no transition (prefill,
 * spec §10).  Positions must come in increasing order; afterwards n = pos+1.
 * k and v ([D]) are already rounded to the element type. */
void ref_place(ref_head *h, long pos, kvr_part part, const float *k, const float *v, float score)
{
    switch (part) {
    case KVR_PART_SINK:
        row_put(h, rows_of(h, part), (size_t)pos, k, v);
        break;
    case KVR_PART_RECENT: {
        size_t slot = (size_t)(pos % h->cfg.window);
        row_put(h, rows_of(h, part), slot, k, v);
        if (h->win_score)
            h->win_score[slot] = score;
        break;
    }
    case KVR_PART_CANDIDATE:
        row_put(h, rows_of(h, part), cand_open(h, pos, score), k, v);
        if (h->cfg.kivi_bits > 0)                   /* spec §18.8: a body position too */
            ref_kivi_push(h, pos, k, v);
        break;
    case KVR_PART_QUANTIZED:
        ref_tier_enter(h, pos, score, k, v);        /* prefill into the tier, spec §19.8 */
        break;
    default:                                        /* with a tier, prefill chose the bulk */
        if (h->cfg.kivi_bits > 0)
            ref_kivi_push(h, pos, k, v);            /* spec §18.6, §18.8: the body */
        else if (ref_has_tier(h))
            ref_to_bulk(h, pos, k, v);
        else
            to_vague(h, pos, score, k, v);
        break;
    }
    h->n = pos + 1;
}

/* spec §9.1: the sum of the bytes of every array of the table
 * (ref_head_arrays), each at full capacity in its own type. */
size_t ref_cfg_bytes(const kvr_config *cfg, int head_dim)
{
    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(cfg, head_dim, a);
    size_t bytes = 0;
    for (int i = 0; i < REF_HEAD_N_ARRAYS; i++)
        bytes += a[i].count * a[i].elem_size;
    return bytes;
}

size_t ref_head_bytes(const ref_head *h)
{
    return ref_cfg_bytes(&h->cfg, h->head_dim);
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
    long n_body = h->n - n_sink - n_win;            /* KIVI: every other position is in the body */
    if (h->cfg.kivi_bits > 0 && (n_body > h->cfg.kivi_tokens || h->n_cand > n_body || h->n_vague != 0)) {
        snprintf(why, len, "KIVI body holds %ld of %d positions, with %d candidates and %ld vague",
                 n_body, h->cfg.kivi_tokens, h->n_cand, h->n_vague);
        return 1;
    }
    if (h->cfg.kivi_bits == 0)
        n_body = 0;
    else
        n_body -= h->n_cand;                        /* spec §18.8: the candidates are body positions too */
    if (h->n_tier < 0 || h->n_tier > (ref_has_tier(h) ? h->cfg.tier_tokens : 0)) {
        snprintf(why, len, "%d tier tokens, capacity %d", h->n_tier, ref_has_tier(h) ? h->cfg.tier_tokens : 0);
        return 1;
    }
    for (int j = 0; j < h->n_tier; j++) {            /* spec §19.3 */
        long p = h->tier_pos[j];
        if (p < S || p >= h->n - n_win || (j > 0 && p <= h->tier_pos[j - 1]) || ref_cand_find(h, p) >= 0) {
            snprintf(why, len, "tier slot %d at position %ld is outside [%ld, %ld), out of order or a candidate",
                     j, p, S, h->n - n_win);
            return 1;
        }
    }
    if (n_sink + n_win + h->n_cand + h->n_tier + h->n_vague + n_body != h->n) {
        snprintf(why, len, "parts do not add up: %ld sinks + %ld recent + %d candidates + %d tier + %ld vague != %ld",
                 n_sink, n_win, h->n_cand, h->n_tier, h->n_vague, h->n);
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
