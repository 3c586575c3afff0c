/* ref.h: the scalar reference's head cache and its operations.
 *
 * One head cache is one KV head of one layer (spec §2).  Read the files in
 * this order: head.c (the parts and the lifecycle, spec §3), importance.c
 * (spec §6), sketch.c (spec §7), reconstruct.c (spec §8), dot.c and
 * attend.c (spec §11), prefill.c (spec §10), quant.c (spec §18).  The
 * reference stands on base/ (base.h: errors, storage types, hash,
 * allocation) and on nothing above it (lib/): tests/floors.sh. */
#ifndef KVR_REF_H
#define KVR_REF_H

#include <stddef.h>
#include <stdint.h>
#include "kvreviver.h"

typedef struct {
    /* identity and configuration */
    kvr_config cfg;
    int head_dim;            /* D */
    uint32_t layer, kv_head; /* hash inputs (spec §5) */
    long n;                  /* tokens appended so far; the next position */

    /* sinks: positions 0 .. S-1 (spec §3.1) */
    void *sink_k, *sink_v;   /* [S][D] elem (or codes, below) */

    /* window: a ring over positions max(S, n-R) .. n-1; position p lives in
     * slot p mod R (spec §3.1) */
    void *win_k, *win_v;     /* [R][D] elem (or codes) */
    float *win_score;        /* [R] importance, or NULL when scores are not kept */

    /* candidates, sorted by position (spec §3.1) */
    int n_cand;
    int32_t *cand_pos;       /* [C] */
    float *cand_score;       /* [C] */
    void *cand_k, *cand_v;   /* [C][D] elem (or codes) */

    /* sketch of the vague part (spec §7); NULL arrays when depth*width == 0 */
    float *sk_k, *sk_v;      /* [d][w][D] sums of signed keys and values */
    int32_t *sk_count;       /* [d][w] signed count: sum of signs */
    int32_t *sk_load;        /* [d][w] occupancy: number of tokens */
    double *sum_k, *sum_v;   /* [D] running sums of vague keys and values (centring) */
    long n_vague;            /* tokens in the vague part (dropped ones for eviction) */

    /* quantized exact parts (spec §18.2; cfg.store q8 or q4): sink_k .. cand_v
     * then hold packed codes, [.][ceil(D b / 8)] bytes, and these the float16
     * {zero point, scale} of each token's key and value; NULL otherwise */
    uint16_t *sink_kq, *sink_vq;   /* [S][2] */
    uint16_t *win_kq, *win_vq;     /* [R][2] */
    uint16_t *cand_kq, *cand_vq;   /* [C][2] */

    /* KIVI's body (spec §18.6; cfg.kivi_bits > 0): body row j = position S + j,
     * key groups of G rows; NULL arrays otherwise.  Q = cfg.kivi_tokens,
     * m = floor(Q / G), B = ceil(D kivi_bits / 8). */
    void *kivi_fill;               /* [min(G, Q)][D] elem: keys of the group filling, row j mod G */
    unsigned char *kivi_kc;        /* [m G][B] key codes of the complete groups */
    uint16_t *kivi_kq;             /* [m][D][2] per channel {zero point, scale} */
    unsigned char *kivi_vc;        /* [Q][B] value codes */
    uint16_t *kivi_vq;             /* [Q][2] per token {zero point, scale} */

    /* the quantized tier (spec §19; cfg.tier_bits > 0 and tier_tokens > 0):
     * Q = cfg.tier_tokens slots, n_tier used, sorted by position;
     * B = ceil(D tier_bits / 8); NULL arrays otherwise */
    int n_tier;
    int32_t *tier_pos;             /* [Q] */
    float *tier_score;             /* [Q] */
    unsigned char *tier_k, *tier_v;  /* [Q][B] packed codes */
    uint16_t *tier_kq, *tier_vq;   /* [Q][2] {zero point, scale} */
    int32_t *tier_marks;           /* [Q] workspace of promotion (spec §19.5); not state */
    int32_t *tier_bal;             /* [D] the balancer's exponents e_i in 0..8 (spec §19.12): a tier key's
                                    * channel i is coded as k_i 2^-e_i; with tier_balance only */

    float *scratch;          /* [8][D] workspace for moving tokens between parts;
                                not state, so not counted in the bytes held */
} ref_head;

/* head.c: the arrays of a head cache (spec §3.1, §9.1).  One table lists
 * them, computed from the configuration and D alone; allocation, free,
 * reset, the bytes held (lib/budget.c), saving and loading (lib/file.c) and
 * the tests' snapshots all walk it.  The order is the order of the cache
 * file (spec §16): keep it.  The scratch workspace is not state and not in
 * the table. */
typedef enum {
    REF_KV,      /* exact keys and values, in the element type cfg->elem */
    REF_SCORE,   /* importance scores, float32 */
    REF_SKETCH,  /* sketch sums of keys and values, float32 */
    REF_SUM,     /* running sums for centring, float64 */
    REF_QPARAM,  /* quantization {zero point, scale} pairs, float16 (spec §18.2) */
    REF_INDEX,   /* positions, signed counts and occupancies, int32 */
    REF_CODE     /* packed quantization codes, bytes (spec §18.5) */
} ref_kind;
typedef struct {
    const char *name;   /* the ref_head field */
    size_t offset;      /* offsetof(ref_head, field): where the array's pointer lives */
    ref_kind kind;
    size_t elem_size;   /* bytes of one element (and the unit of byte order in files) */
    size_t count;       /* elements at full capacity; 0 when the configuration has no such array */
} ref_array;
#define REF_HEAD_N_ARRAYS 33
/* Fill a[] with the arrays of a head cache of configuration cfg and head
 * dimension head_dim, in file order.  Cannot fail. */
void ref_head_arrays(const kvr_config *cfg, int head_dim, ref_array a[REF_HEAD_N_ARRAYS]);
/* The pointer field of h that entry a describes (NULL when not allocated). */
void **ref_array_slot(ref_head *h, const ref_array *a);
const void *ref_array_data(const ref_head *h, const ref_array *a);
/* 1 when a head cache of this configuration keeps importance scores (spec
 * §6): the one place that decides it. */
int ref_cfg_keeps_scores(const kvr_config *cfg);
/* 1 when a head cache of this configuration has a sketch (spec §7). */
int ref_cfg_has_sketch(const kvr_config *cfg);

/* head.c: allocation, the parts and the lifecycle (spec §3) */
/* KVR_OK or KVR_ENOMEM; on failure, nothing stays allocated and *out is
 * NULL. */
int ref_head_alloc(ref_head **out, const kvr_config *cfg, int head_dim,
                   uint32_t layer, uint32_t kv_head);
void ref_head_free(ref_head *h);
void ref_head_reset(ref_head *h);
kvr_part ref_part_of(const ref_head *h, long pos);
/* ref_cfg_keeps_scores and ref_cfg_has_sketch of h's configuration */
int ref_keeps_scores(const ref_head *h);
int ref_has_sketch(const ref_head *h);
/* index of pos among the candidates, or -1 */
int ref_cand_find(const ref_head *h, long pos);
/* the stored (exact) key and value of an exact position; 0 if not exact */
int ref_exact_kv(const ref_head *h, long pos, float *k, float *v);
/* A walk over positions in increasing order, from {0, 0}: ref_walk_part
 * gives ref_part_of(h, pos) and leaves the cursors at the position's
 * candidate or tier slot, which ref_walk_exact_kv reads (as ref_exact_kv,
 * with the part that ref_walk_part gave). */
typedef struct {
    int cand, tier;   /* cursors into cand_pos and tier_pos */
} ref_walk;
kvr_part ref_walk_part(const ref_head *h, ref_walk *wk, long pos);
int ref_walk_exact_kv(const ref_head *h, const ref_walk *wk, long pos, kvr_part part, float *k, float *v);
/* pointer to the score of an exact scored position, or NULL */
float *ref_score_slot(ref_head *h, long pos);
/* append one token whose k, v ([D]) are already known representable */
void ref_append(ref_head *h, const float *k, const float *v);
/* store a token directly into a part, no transition (prefill) */
void ref_place(ref_head *h, long pos, kvr_part part, const float *k, const float *v, float score);
/* how many bytes the arrays hold (spec §9.1) */
size_t ref_head_bytes(const ref_head *h);
/* the same for a head cache of configuration cfg: the sum over the table of
 * ref_head_arrays, each at full capacity in its own type (kvr_head_bytes) */
size_t ref_cfg_bytes(const kvr_config *cfg, int head_dim);
/* check the lifecycle invariants (spec §3.5); 0 when they hold */
int ref_head_check(const ref_head *h, char *why, size_t why_len);

/* head.c, for the tier (spec §19): a token going to the bulk (the vague
 * part of spec §3.3: the sketch, or dropped); the candidate that leaves
 * first (spec §3.4); remove candidate j, giving its key and value as
 * float32; insert a candidate at its place in position order (n_cand < C),
 * stored in the exact parts' storage type. */
void ref_to_bulk(ref_head *h, long pos, const float *k, const float *v);
int ref_cand_least(const ref_head *h);
void ref_cand_take(ref_head *h, int j, float *k /*[D]*/, float *v /*[D]*/);
void ref_cand_insert(ref_head *h, long pos, float score, const float *k, const float *v);

/* tier.c (spec §19): the quantized tier */
/* 1 when a head cache of this configuration has a tier (tier_bits > 0 and
 * tier_tokens > 0): the one place that decides it. */
int ref_cfg_has_tier(const kvr_config *cfg);
int ref_has_tier(const ref_head *h);
/* index of pos among the tier's slots, or -1 */
int ref_tier_find(const ref_head *h, long pos);
/* the dequantized key and value of slot j */
void ref_tier_get(const ref_head *h, int j, float *k /*[D]*/, float *v /*[D]*/);
/* the Walsh-Hadamard butterfly of spec §19.13, in place; D a power of two */
void ref_tier_butterfly(float *x /*[D]*/, size_t D);
/* spec §19.3: the token enters the tier (its values in float32 as stored) */
void ref_tier_enter(ref_head *h, long pos, float score, const float *k, const float *v);
/* spec §19.12: set the balancer's exponents from a prompt's stored keys and
 * its observed queries (with tier_balance; otherwise nothing) */
void ref_tier_balance(ref_head *h, int group, int n, const float *k /*[n][D]*/, int n_obs,
                      const float *q_obs /*[n_obs][group][D]*/);
/* spec §19.5: promote the tier tokens with prob[t] / group > tier_promote */
void ref_tier_promote(ref_head *h, const float *prob /*[n]*/, int group);

/* importance.c (spec §6) */
void ref_importance_update(ref_head *h, const float *prob /*[n]*/, int group);
/* Prefill scores (spec §6.2) of n prompt positions into score.  KVR_OK or
 * KVR_ENOMEM; on failure, nothing changes (score is not written). */
int ref_prefill_scores(const kvr_config *cfg, int head_dim, int group, int n,
                       const float *k /*[n][D] rounded*/, int n_obs,
                       const float *q_obs /*[n_obs][group][D]*/, float *score /*[n]*/);

/* sketch.c (spec §7) */
size_t ref_bucket(const ref_head *h, int r, long pos, float *sign);
void ref_sketch_insert(ref_head *h, long pos, const float *k, const float *v);
float ref_vague_mean(const ref_head *h, const double *running /*[D] or NULL*/, int i);

/* reconstruct.c (spec §8) */
float ref_combine(float *x /*[d], may be reordered*/, int d, kvr_rows rows);
void ref_reconstruct(const ref_head *h, long pos, float *k /*[D]*/, float *v /*[D]*/);
/* The same for many tokens: mean holds the vague part's means, key then value
 * (ref_vague_means), computed once instead of once per token. */
void ref_vague_means(const ref_head *h, float *mean /*[2][D]*/);
void ref_reconstruct_with(const ref_head *h, long pos, const float *mean /*[2][D]*/,
                          float *k /*[D]*/, float *v /*[D]*/);

/* dot.c (spec §11.2, §6.2).  ref_dots: the m <= 4 dot products q . k[pos[j]]
 * ([D] rows of k), each summed over i in increasing order in float32, the
 * same float as computed alone; the four are computed side by side so that
 * the processor overlaps their independent chains of additions. */
void ref_dots(const float *q /*[D]*/, const float *k /*[.][D]*/, const long *pos /*[m]*/, int m, int D,
              float *dot /*[m]*/);
/* y += a x, coordinate by coordinate (y[i] = y[i] + a * x[i]); x and y must
 * not overlap, so a compiler may do several coordinates at once with the
 * same float32 results. */
void ref_add_scaled(int D, float a, const float *restrict x /*[D]*/, float *restrict y /*[D]*/);

/* The workspace holds what one step needs for n
 * positions; reserve it before changing anything, so a step cannot fail
 * halfway. */
typedef struct {
    long cap;               /* positions the arrays can hold */
    int head_dim;
    float *k, *v;           /* [cap][D] keys and values as attention sees them */
    float *p;               /* [cap] exp(logit - max) of one query head */
    float *prob;            /* [cap] attention probability summed over the group */
    unsigned char *held;    /* [cap] 1 when the position takes part (2: revived, spec §17.2) */
    double *wide;           /* [cap] float64 logits of the wide pass (spec §12.4) */
    float *mean;            /* [2][D] the vague part's means, key then value (spec §8.1) */
    float *moment;          /* [moment_cap] the moment route's buckets and vectors (moment.c) */
    double *moment_sum;     /* [moment_cap - 2 moment_dim]: sums of values [D], and for the wide
                               pass the bulk value [D] and the bucket logits [d*w] */
    size_t moment_cap;
    int moment_dim;
} ref_work;
/* KVR_OK or KVR_ENOMEM; on failure, nothing changes (w keeps its arrays). */
int ref_work_reserve(ref_work *w, long n, int head_dim);
/* spec §12.4, the wide pass: a float64 softmax over the held positions
 * (logits in w->wide, values in w->v) and, when bulk_v is not NULL, one
 * more term (logit bulk_logit, value bulk_v [D]); writes out ([D]) and
 * exp(logit - max) into w->p, returns the sum of the terms (>= 1). */
double ref_softmax_wide(long n, int D, ref_work *w, double bulk_logit, const double *bulk_v, float *out);
/* spec §11.2: q . k scale into w->p for the positions with held 1 (the
 * exact ones; 2, a revived token of spec §17.2, and 0 are left as they
 * are), four at a time with ref_dots: each the same float as alone. */
void ref_logits(long n, int D, const float *q /*[D]*/, float scale, ref_work *w);
void ref_work_free(ref_work *w);
void ref_attend(ref_head *h, int group, const float *q /*[group][D]*/,
                float *out /*[group][D]*/, int update, ref_work *w);

/* sketchattend.c (spec §8.2, §11): mean-row attention through the sketch
 * domain, O(N d + d w D) for the vague part; other configurations go to
 * ref_attend.  Returns KVR_OK or KVR_ENOMEM (nothing changed). */
int ref_attend_sketch(ref_head *h, int group, const float *q /*[group][D]*/,
                      float *out /*[group][D]*/, int update, ref_work *w);

/* prefill.c (spec §10): place n prompt tokens into the empty head cache h.
 * KVR_OK or KVR_ENOMEM (the workspace, taken before anything is placed); on
 * failure, nothing changes. */
int ref_prefill(ref_head *h, int group, int n, const float *k /*[n][D]*/,
                const float *v /*[n][D]*/, int n_obs, const float *q_obs /*[n_obs][group][D]*/);

/* lib/cache.c: the head cache behind a model cache (for tests and tools) */
const ref_head *kvr_cache_head(const kvr_cache *c, int layer, int kv_head);

/* moment.c (spec §17): attention with the vague part as its moment-matched
 * bulk plus revived outliers, for a head cache with vague = moment; any
 * other head cache goes to ref_attend.  The workspace w must hold h->n
 * positions (ref_work_reserve) and h's buckets (ref_work_reserve_moment). */
void ref_attend_moment(ref_head *h, int group, const float *q /*[group][D]*/,
                       float *out /*[group][D]*/, int update, ref_work *w);
/* Reserve what ref_attend_moment needs for h beside the positions of
 * ref_work_reserve; KVR_OK or KVR_ENOMEM (w unchanged). */
int ref_work_reserve_moment(ref_work *w, const ref_head *h);

/* quant.c (spec §18): b-bit asymmetric quantization with a float16 zero
 * point and scale.  bits is 2, 3, 4 or 8. */
/* Zero point and scale (float16 bits) for values in [lo, hi] (finite,
 * lo <= hi); KVR_ERANGE when they do not fit float16 (nothing written). */
int ref_quant_range(float lo, float hi, int bits, uint16_t *zero, uint16_t *scale);
/* Bytes of n packed b-bit codes: ceil(n b / 8) (spec §18.5). */
size_t ref_quant_row_bytes(size_t n, int bits);
/* Zero point and scale (float16 bits) of the n values x[0], x[stride], ...
 * (finite); KVR_ERANGE when they do not fit float16 (nothing written). */
int ref_quant_params(const float *x /*[n][stride]*/, size_t n, size_t stride, int bits,
                     uint16_t *zero, uint16_t *scale);
/* The code of x under (zero, scale): min(rint(fl(fl(x - z) / s)), 2^b - 1). */
unsigned ref_quant_code(float x, uint16_t zero, uint16_t scale, int bits);
/* fl(z + code * s) */
float ref_dequant(unsigned code, uint16_t zero, uint16_t scale);
/* Code i of a packed row: bits i*b .. i*b+b-1, least significant first. */
void ref_pack_put(unsigned char *row, size_t i, int bits, unsigned code);
unsigned ref_pack_get(const unsigned char *row, size_t i, int bits);
/* Quantize one vector x[n] into codes[ref_quant_row_bytes(n, bits)] and
 * zs[2] = {zero, scale}; KVR_ERANGE (nothing written) as ref_quant_params. */
int ref_quant_row(const float *x /*[n]*/, size_t n, int bits, unsigned char *codes, uint16_t *zs /*[2]*/);
void ref_dequant_row(const unsigned char *codes, const uint16_t *zs /*[2]*/, size_t n,
                     int bits, float *x /*[n]*/);
/* The error bound of spec §18.4: |x - deq| <= this for every element. */
double ref_quant_bound(uint16_t zero, uint16_t scale, int bits);
/* KIVI's body (spec §18.6): the token at pos (the next body position,
 * S + rows held) enters it: its value is quantized, its key joins the
 * group filling, and a group that is then complete is quantized per
 * channel.  k, v ([D]) are the stored (elem) values, within float16's range
 * (the caller checked); there is room (the caller checked). */
void ref_kivi_push(ref_head *h, long pos, const float *k, const float *v);
/* Key and value of body position pos as attention reads them. */
void ref_kivi_get(const ref_head *h, long pos, float *k /*[D]*/, float *v /*[D]*/);
/* Tokens in KIVI's body: max(0, n - S - R); 0 without KIVI. */
long ref_kivi_rows(const ref_head *h);

#endif
