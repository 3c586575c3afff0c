/* tier.c: the quantized tier of a head cache (spec §19).
 *
 * Between the exact candidates and the bulk (the vague part of spec §3.3),
 * a head cache with tier_bits = b > 0 holds up to Q = tier_tokens tokens
 * individually at b bits: each token's key and each token's value as one
 * vector of D b-bit codes with a float16 zero point and scale (the quantizer
 * of spec §18.2), with its int32 position and float32 score.  Slots are
 * sorted by position, as the candidates are.
 *
 *   entering (spec §19.3)  a token leaving the exact set enters the tier; when
 *                          the tier is full, the lowest score among the Q + 1
 *                          leaves for the bulk (ties: the oldest position);
 *   attention (§19.4)      a tier token is attended with its dequantized key
 *                          and value (spec §18.3), and its score accumulates;
 *   promotion (§19.5)      a tier token whose attention is above the threshold
 *                          becomes a candidate again, its dequantized key and
 *                          value becoming its stored ones;
 *   balancer (§19.12)      with tier_balance, a key's channel i is coded as
 *                          k_i 2^-e_i (exact), e_i set at prefill from the
 *                          prompt's largest |q_i| and |k_i|, and read back as
 *                          the dequantized code times 2^e_i (exact);
 *   rotation (§19.13)      with tier_rotate, a key (after the balancer) and a
 *                          value are coded as W x 2^-L, W the D-point
 *                          Walsh-Hadamard butterfly, D = 2^L, and read back as
 *                          W of the dequantized code (W W = D I). */
#include <config.h>
#include <math.h>
#include <string.h>
#include "base.h"
#include "ref.h"

int ref_cfg_has_tier(const kvr_config *cfg)
{
    return cfg->tier_bits > 0 && cfg->tier_tokens > 0;
}

int ref_has_tier(const ref_head *h)
{
    return ref_cfg_has_tier(&h->cfg);
}

/* Bytes of one tier token's key (or value) codes: ceil(D b / 8). */
static size_t code_bytes(const ref_head *h)
{
    return ref_quant_row_bytes((size_t)h->head_dim, h->cfg.tier_bits);
}

/* Index of pos among the tier's slots (sorted by position), or -1. */
int ref_tier_find(const ref_head *h, long pos)
{
    int lo = 0, hi = h->n_tier - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (h->tier_pos[mid] == pos) return mid;
        if (h->tier_pos[mid] < pos) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* spec §19.2: the dequantized key and value ([D] each) of slot j. */
void ref_tier_get(const ref_head *h, int j, float *k, float *v)
{
    size_t D = (size_t)h->head_dim, B = code_bytes(h);
    int b = h->cfg.tier_bits;
    ref_dequant_row(h->tier_k + (size_t)j * B, h->tier_kq + 2 * (size_t)j, D, b, k);
    ref_dequant_row(h->tier_v + (size_t)j * B, h->tier_vq + 2 * (size_t)j, D, b, v);
    if (h->cfg.tier_rotate) {                     /* spec §19.13: back from the rotated basis */
        ref_tier_butterfly(k, D);
        ref_tier_butterfly(v, D);
    }
    if (h->tier_bal)                              /* spec §19.12: undo the balancer, exactly */
        for (size_t i = 0; i < D; i++)
            k[i] = ldexpf(k[i], h->tier_bal[i]);
}

/* spec §19.13: the Walsh-Hadamard butterfly W, in place on x [D], D a power
 * of two: stages h = 1, 2, 4, .. D/2; in each, every pair (j, j + h) with
 * j mod 2h < h becomes (a + b, a - b), float32, in increasing j.  W W = D I. */
void ref_tier_butterfly(float *x, size_t D)
{
    for (size_t h = 1; h < D; h *= 2)
        for (size_t i = 0; i < D; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

/* spec §19.13: the coded form of a row entering the tier: W x 2^-L (the
 * scale exact: a power of two of a float16-range value stays normal). */
static void rotate_in(float *x, size_t D)
{
    int L = 0;
    while (((size_t)1 << L) < D)
        L++;
    ref_tier_butterfly(x, D);
    for (size_t i = 0; i < D; i++)
        x[i] = ldexpf(x[i], -L);
}

/* Move `count` slots from slot src to slot dst (ranges may overlap). */
static void slots_move(ref_head *h, int dst, int src, int count)
{
    size_t B = code_bytes(h), c = (size_t)count;
    memmove(&h->tier_pos[dst], &h->tier_pos[src], c * sizeof(int32_t));
    memmove(&h->tier_score[dst], &h->tier_score[src], c * sizeof(float));
    memmove(h->tier_k + (size_t)dst * B, h->tier_k + (size_t)src * B, c * B);
    memmove(h->tier_v + (size_t)dst * B, h->tier_v + (size_t)src * B, c * B);
    memmove(h->tier_kq + 2 * (size_t)dst, h->tier_kq + 2 * (size_t)src, 2 * c * sizeof(uint16_t));
    memmove(h->tier_vq + 2 * (size_t)dst, h->tier_vq + 2 * (size_t)src, 2 * c * sizeof(uint16_t));
}

/* Remove slot j, keeping the others sorted. */
static void slot_remove(ref_head *h, int j)
{
    slots_move(h, j, j + 1, h->n_tier - j - 1);
    h->n_tier--;
}

/* Insert a token at its place in position order (n_tier < Q): its key and
 * value quantized at tier_bits (spec §19.2).  The values lie in float16's
 * range (the caller's input checks), so quantization cannot fail. */
static void slot_insert(ref_head *h, long pos, float score, const float *k, const float *v)
{
    int j = h->n_tier;
    while (j > 0 && h->tier_pos[j - 1] > pos)
        j--;
    slots_move(h, j + 1, j, h->n_tier - j);
    h->n_tier++;
    size_t D = (size_t)h->head_dim, B = code_bytes(h);
    int b = h->cfg.tier_bits;
    h->tier_pos[j] = (int32_t)pos;
    h->tier_score[j] = score;
    if (h->tier_bal) {                            /* spec §19.12: channel i coded as k_i 2^-e_i (exact) */
        float *kb = h->scratch + 6 * D;           /* scratch row 6: rows 0-5 hold the callers' values */
        for (size_t i = 0; i < D; i++)
            kb[i] = ldexpf(k[i], -h->tier_bal[i]);
        k = kb;
    }
    if (h->cfg.tier_rotate) {                     /* spec §19.13: scratch rows 6 (the key) and 7 */
        float *kr = h->scratch + 6 * D, *vr = h->scratch + 7 * D;
        if (k != kr)
            memcpy(kr, k, D * sizeof(float));
        memcpy(vr, v, D * sizeof(float));
        rotate_in(kr, D);
        rotate_in(vr, D);
        k = kr;
        v = vr;
    }
    (void)ref_quant_row(k, D, b, h->tier_k + (size_t)j * B, h->tier_kq + 2 * (size_t)j);
    (void)ref_quant_row(v, D, b, h->tier_v + (size_t)j * B, h->tier_vq + 2 * (size_t)j);
}

/* spec §19.3: the slot that leaves first: the lowest score; among equal
 * scores the oldest position, which is the first found (slots are sorted). */
static int tier_least(const ref_head *h)
{
    int j = 0;
    for (int i = 1; i < h->n_tier; i++)
        if (h->tier_score[i] < h->tier_score[j])
            j = i;
    return j;
}

/* spec §19.3: the token at pos (score, k, v: [D] float32 as it was stored)
 * enters the tier; when the tier is full, the token that leaves first among
 * the Q + 1 goes to the bulk (ref_to_bulk) with its dequantized values. */
void ref_tier_enter(ref_head *h, long pos, float score, const float *k, const float *v)
{
    if (h->n_tier < h->cfg.tier_tokens) {
        slot_insert(h, pos, score, k, v);
        return;
    }
    int j = tier_least(h);
    if (score < h->tier_score[j] || (score == h->tier_score[j] && pos < h->tier_pos[j])) {
        ref_to_bulk(h, pos, k, v);
        return;
    }
    /* scratch rows 4 and 5: rows 0-3 may hold the caller's k and v (head.c) */
    float *ek = h->scratch + 4 * (size_t)h->head_dim, *ev = h->scratch + 5 * (size_t)h->head_dim;
    long epos = h->tier_pos[j];
    ref_tier_get(h, j, ek, ev);
    slot_remove(h, j);
    ref_to_bulk(h, epos, ek, ev);
    slot_insert(h, pos, score, k, v);
}

/* spec §19.5: the values a promoted token is stored with: its dequantized
 * key and value, clamped to float16's finite range (a reconstruction can
 * overshoot the largest input by up to half a scale step, and the exact
 * parts' types f16 and q8/q4 need the range). */
static void promoted_values(const ref_head *h, int s, float *k, float *v)
{
    ref_tier_get(h, s, k, v);
    for (int i = 0; i < h->head_dim; i++) {
        k[i] = k[i] > 65504.0f ? 65504.0f : k[i] < -65504.0f ? -65504.0f : k[i];
        v[i] = v[i] > 65504.0f ? 65504.0f : v[i] < -65504.0f ? -65504.0f : v[i];
    }
}

/* spec §19.5: after an importance update with probabilities prob (summed
 * over the group's G query heads, indexed by position), promote every tier
 * token with prob / G > theta (float32), in increasing position order.  The
 * set is fixed first (the tier's positions when the probabilities were
 * taken, in h->tier_marks), so a candidate demoted into the tier by a
 * promotion is not promoted back in the same step.  Cannot fail. */
void ref_tier_promote(ref_head *h, const float *prob, int group)
{
    float theta = (float)h->cfg.tier_promote;
    if (!ref_has_tier(h) || !(theta > 0.0f) || h->cfg.candidates == 0)
        return;
    int n_mark = 0;
    for (int j = 0; j < h->n_tier; j++)
        if (prob[h->tier_pos[j]] / (float)group > theta)
            h->tier_marks[n_mark++] = h->tier_pos[j];
    int D = h->head_dim;
    float *k = h->scratch, *v = h->scratch + D;   /* the promoted token */
    float *ck = h->scratch + 2 * (size_t)D, *cv = h->scratch + 3 * (size_t)D;  /* the demoted candidate */
    for (int m = 0; m < n_mark; m++) {
        long pos = h->tier_marks[m];
        int s = ref_tier_find(h, pos);            /* still there: only promoted slots leave */
        float score = h->tier_score[s];
        if (h->n_cand == h->cfg.candidates) {
            /* spec §3.4 among the C + 1: the promoted token leaves first, so stays */
            int j = ref_cand_least(h);
            if (score < h->cand_score[j] || (score == h->cand_score[j] && pos < h->cand_pos[j]))
                continue;
            promoted_values(h, s, k, v);
            slot_remove(h, s);
            long cpos = h->cand_pos[j];
            float cscore = h->cand_score[j];
            ref_cand_take(h, j, ck, cv);
            ref_cand_insert(h, pos, score, k, v);
            slot_insert(h, cpos, cscore, ck, cv);
        } else {
            promoted_values(h, s, k, v);
            slot_remove(h, s);
            ref_cand_insert(h, pos, score, k, v);
        }
    }
}

/* spec §19.12: the balancer's exponents from a prompt of n stored keys
 * (k [n][D], rounded to elem) and its n_obs observed queries (q_obs
 * [n_obs][group][D]): for each channel i, mk_i = max_t |k_t,i| and mq_i the
 * largest |q_i| over the observed queries of the group; where both are
 * above 0, t_i = sqrtf(mq_i) / sqrtf(mk_i) (MiKV's balancer sqrt(mq/mk),
 * written so that it cannot overflow: a channel whose keys are large
 * against its queries is scaled down); with T = max t_i, r_i = t_i / T in
 * [0, 1] and e_i = 8 when r_i <= 2^-8, else -floor(log2 r_i), read exactly
 * from frexpf (r = m 2^E, m in [0.5, 1): floor(log2 r) = E - 1).  Channels
 * without both maxima above 0 keep e_i = 0, as does every channel when no
 * channel has them.  Cannot fail. */
void ref_tier_balance(ref_head *h, int group, int n, const float *k, int n_obs, const float *q_obs)
{
    if (!h->tier_bal)
        return;
    int D = h->head_dim;
    float *t = h->scratch + 6 * (size_t)D;        /* [D] t_i, or 0 where unset */
    float T = 0.0f;
    for (int i = 0; i < D; i++) {
        float mk = 0.0f, mq = 0.0f;
        for (int p = 0; p < n; p++)
            mk = fmaxf(mk, fabsf(k[(size_t)p * D + i]));
        for (long j = 0; j < (long)n_obs * group; j++)
            mq = fmaxf(mq, fabsf(q_obs[(size_t)j * D + i]));
        t[i] = mk > 0.0f && mq > 0.0f ? sqrtf(mq) / sqrtf(mk) : 0.0f;   /* never overflows */
        T = fmaxf(T, t[i]);
    }
    for (int i = 0; i < D; i++) {
        h->tier_bal[i] = 0;
        if (t[i] > 0.0f) {
            float r = t[i] / T;
            int E;
            (void)frexpf(r, &E);
            h->tier_bal[i] = r <= 0x1p-8f ? 8 : 1 - E;
        }
    }
}
