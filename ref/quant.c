/* quant.c: b-bit asymmetric quantization of a vector (spec §18).
 *
 * A vector of n float32 values (a token's key or value over the head
 * dimension, or in KIVI one key channel over a group of positions) is held as
 * n b-bit codes with a float16 zero point z and scale s:
 *     z = the largest float16 <= min x,   r = fl(max x - z),
 *     s = the smallest float16 >= fl(r / L),   L = 2^b - 1,
 *     q = min(rint(fl(fl(x - z) / s)), L),     deq(q) = fl(z + q s).
 * Every step is one correctly rounded float32 operation, so the codes are a
 * bit-exact function of the input (spec §18.2). */
#include <config.h>
#include <math.h>
#include <string.h>
#include "base.h"
#include "ref.h"

/* The float16 bits of the largest float16 value <= v (v finite); +0 for a
 * zero result.  May return -Inf (0xFC00) when no finite float16 is <= v. */
static uint16_t f16_down(float v)
{
    uint16_t h = kvr_f32_to_f16(v);               /* nearest, ties to even */
    if (kvr_f16_to_f32(h) > v) {                  /* one float16 step toward -Inf */
        if (h == 0x0000u || h == 0x8000u) h = 0x8001u;
        else if (h & 0x8000u) h = (uint16_t)(h + 1u);
        else h = (uint16_t)(h - 1u);
    }
    return h == 0x8000u ? 0x0000u : h;
}

/* The float16 bits of the smallest float16 value >= v, for v > 0 (finite);
 * +Inf (0x7C00) when v is above 65504. */
static uint16_t f16_up(float v)
{
    uint16_t h = kvr_f32_to_f16(v);
    if (kvr_f16_to_f32(h) < v)                    /* v > 0: one step up */
        h = (uint16_t)(h + 1u);
    return h;
}

size_t ref_quant_row_bytes(size_t n, int bits)
{
    return (n * (size_t)bits + 7) / 8;
}

/* spec §18.2 steps 2-4: z = f16 down of lo, r = fl(hi - z), s = f16 up of
 * fl(r / L) (0 when r = 0).  KVR_ERANGE when z or s is not a finite
 * float16; nothing is written then. */
int ref_quant_range(float lo, float hi, int bits, uint16_t *zero, uint16_t *scale)
{
    uint16_t z = f16_down(lo);
    if ((z & 0x7C00u) == 0x7C00u)
        return KVR_ERANGE;                        /* lo < -65504 */
    float r = hi - kvr_f16_to_f32(z);             /* >= 0 */
    uint16_t s = 0x0000u;
    if (r > 0.0f) {
        float L = (float)((1u << bits) - 1u);
        s = f16_up(r / L);
        if ((s & 0x7C00u) == 0x7C00u)
            return KVR_ERANGE;                    /* scale above 65504 */
    }
    *zero = z;
    *scale = s;
    return KVR_OK;
}

/* spec §18.2 step 1 (lo and hi of the n values x[0], x[stride], ...), then
 * ref_quant_range. */
int ref_quant_params(const float *x, size_t n, size_t stride, int bits,
                     uint16_t *zero, uint16_t *scale)
{
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        float xi = x[i * stride];
        if (xi < lo) lo = xi;
        if (xi > hi) hi = xi;
    }
    return ref_quant_range(lo, hi, bits, zero, scale);
}

unsigned ref_quant_code(float x, uint16_t zero, uint16_t scale, int bits)
{
    float z = kvr_f16_to_f32(zero), s = kvr_f16_to_f32(scale);
    unsigned L = (1u << bits) - 1u;
    if (s == 0.0f)
        return 0;
    float t = (x - z) / s;                        /* >= 0: z <= every x */
    float q = nearbyintf(t);                      /* ties to even in the default mode */
    return q >= (float)L ? L : (unsigned)q;
}

float ref_dequant(unsigned code, uint16_t zero, uint16_t scale)
{
    return kvr_f16_to_f32(zero) + (float)code * kvr_f16_to_f32(scale);  /* q*s exact */
}

void ref_pack_put(unsigned char *row, size_t i, int bits, unsigned code)
{
    size_t bit = i * (size_t)bits;
    for (int k = 0; k < bits; k++, bit++) {
        unsigned char mask = (unsigned char)(1u << (bit % 8));
        if ((code >> k) & 1u) row[bit / 8] |= mask;
        else row[bit / 8] &= (unsigned char)~mask;
    }
}

/* ref_pack_get's body, static so that ref_dequant_row can inline it. */
static inline unsigned pack_get(const unsigned char *row, size_t i, int bits)
{
    size_t bit = i * (size_t)bits;
    if (8 % bits == 0)              /* 1, 2, 4, 8 bits: the code lies in one byte */
        return (unsigned)(row[bit / 8] >> (bit % 8)) & ((1u << bits) - 1u);
    unsigned code = 0;
    for (int k = 0; k < bits; k++, bit++)
        code |= (unsigned)((row[bit / 8] >> (bit % 8)) & 1u) << k;
    return code;
}

unsigned ref_pack_get(const unsigned char *row, size_t i, int bits)
{
    return pack_get(row, i, bits);
}

int ref_quant_row(const float *x, size_t n, int bits, unsigned char *codes,
                  uint16_t *zs)
{
    uint16_t z, s;
    int status = ref_quant_params(x, n, 1, bits, &z, &s);
    if (status != KVR_OK)
        return status;
    memset(codes, 0, ref_quant_row_bytes(n, bits));
    for (size_t i = 0; i < n; i++)
        ref_pack_put(codes, i, bits, ref_quant_code(x[i], z, s, bits));
    zs[0] = z;
    zs[1] = s;
    return KVR_OK;
}

/* ref_dequant_row for 4-bit codes: element 2j is the low nibble of byte j
 * and 2j + 1 the high one (pack_get), each z + code * s in float32 as
 * there; unaliased, so a compiler may do several at once. */
static void dequant_row4(const unsigned char *restrict codes, size_t n, float z, float s,
                         float *restrict x /*[n]*/)
{
    for (size_t j = 0; j < n / 2; j++) {
        x[2 * j] = z + (float)(codes[j] & 15u) * s;
        x[2 * j + 1] = z + (float)(codes[j] >> 4) * s;
    }
    if (n % 2)
        x[n - 1] = z + (float)(codes[n / 2] & 15u) * s;
}

void ref_dequant_row(const unsigned char *codes, const uint16_t *zs, size_t n,
                     int bits, float *x)
{
    float z = kvr_f16_to_f32(zs[0]), s = kvr_f16_to_f32(zs[1]);   /* ref_dequant's, once */
    if (bits == 4) {            /* two codes a byte, the low nibble first: the loop below, unrolled */
        dequant_row4(codes, n, z, s, x);
        return;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = z + (float)pack_get(codes, i, bits) * s;
}

/* spec §18.4: B = s/2 + 2^-22 (L s + |z|) + 2^-140 (1 + s), in float64;
 * every term is exact but the sum, which the factor 1 + 2^-40 covers. */
double ref_quant_bound(uint16_t zero, uint16_t scale, int bits)
{
    double z = fabs((double)kvr_f16_to_f32(zero)), s = (double)kvr_f16_to_f32(scale);
    double L = (double)((1u << bits) - 1u);
    if (s == 0.0)
        return 0.0;
    double b = s / 2 + ldexp(L * s + z, -22) + ldexp(1.0 + s, -140);
    return b * (1.0 + ldexp(1.0, -40));
}

/* ---- KIVI's body (spec §18.6) ------------------------------------------- */

long ref_kivi_rows(const ref_head *h)
{
    long rows = h->n - h->cfg.sinks - h->cfg.window;
    return h->cfg.kivi_bits > 0 && rows > 0 ? rows : 0;
}

/* The body row j = pos - S receives the token: its value as one vector over
 * D, its key into the fill buffer; when j closes group g = j / G, each
 * channel of the group's G keys is quantized as one vector (n = G) and the
 * codes go to rows g G .. g G + G - 1.  The inputs lie in float16's range,
 * which the caller checked, so no quantization fails (spec §18.2). */
void ref_kivi_push(ref_head *h, long pos, const float *k, const float *v)
{
    size_t D = (size_t)h->head_dim, G = (size_t)h->cfg.kivi_group;
    size_t j = (size_t)(pos - h->cfg.sinks);
    int b = h->cfg.kivi_bits;
    size_t B = ref_quant_row_bytes(D, b);
    kvr_elem e = h->cfg.elem;
    (void)ref_quant_row(v, D, b, h->kivi_vc + j * B, h->kivi_vq + 2 * j);
    for (size_t i = 0; i < D; i++)
        kvr_elem_store(e, k[i], h->kivi_fill, (j % G) * D + i);   /* k is already in elem */
    if (j % G != G - 1)
        return;
    size_t g = j / G;                             /* the group is complete */
    for (size_t i = 0; i < D; i++) {
        float lo = kvr_elem_load(e, h->kivi_fill, i), hi = lo;
        for (size_t r = 1; r < G; r++) {
            float x = kvr_elem_load(e, h->kivi_fill, r * D + i);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        uint16_t *zs = h->kivi_kq + 2 * (g * D + i);
        (void)ref_quant_range(lo, hi, b, &zs[0], &zs[1]);
        for (size_t r = 0; r < G; r++) {
            float x = kvr_elem_load(e, h->kivi_fill, r * D + i);
            ref_pack_put(h->kivi_kc + (g * G + r) * B, i, b, ref_quant_code(x, zs[0], zs[1], b));
        }
    }
}

/* A body key reads as its group's dequantized code once the group is
 * complete, else as the exact key in the fill buffer; a body value always
 * as its dequantized code. */
void ref_kivi_get(const ref_head *h, long pos, float *k, float *v)
{
    size_t D = (size_t)h->head_dim, G = (size_t)h->cfg.kivi_group;
    size_t j = (size_t)(pos - h->cfg.sinks), g = j / G;
    int b = h->cfg.kivi_bits;
    size_t B = ref_quant_row_bytes(D, b);
    ref_dequant_row(h->kivi_vc + j * B, h->kivi_vq + 2 * j, D, b, v);
    if ((g + 1) * G <= (size_t)ref_kivi_rows(h)) {
        for (size_t i = 0; i < D; i++) {
            const uint16_t *zs = h->kivi_kq + 2 * (g * D + i);
            k[i] = ref_dequant(ref_pack_get(h->kivi_kc + j * B, i, b), zs[0], zs[1]);
        }
    } else {
        for (size_t i = 0; i < D; i++)
            k[i] = kvr_elem_load(h->cfg.elem, h->kivi_fill, (j % G) * D + i);
    }
}
