/* elem.c: storage element types of the exact parts (spec §4).
 *
 * Exact keys and values are stored as float32, IEEE float16 or bfloat16.
 * A value is rounded to the storage type once, when it is stored; everything
 * downstream (attention, the sketch a token later joins) sees that rounded
 * value.  Rounding is to nearest, ties to even. */
#include <config.h>
#include <math.h>
#include <string.h>
#include "base.h"

size_t kvr_elem_size(kvr_elem elem)
{
    return elem == KVR_F32 ? 4 : 2;
}

const char *kvr_elem_name(kvr_elem elem)
{
    switch (elem) {
    case KVR_F32:  return "f32";
    case KVR_F16:  return "f16";
    case KVR_BF16: return "bf16";
    }
    return "?";
}

int kvr_elem_parse(const char *name, kvr_elem *elem)
{
    if (!name || !elem)
        return kvr_fail(KVR_EINVAL, "kvr_elem_parse: name or elem is NULL");
    if (!strcmp(name, "f32") || !strcmp(name, "float32")) *elem = KVR_F32;
    else if (!strcmp(name, "f16") || !strcmp(name, "float16")) *elem = KVR_F16;
    else if (!strcmp(name, "bf16") || !strcmp(name, "bfloat16")) *elem = KVR_BF16;
    else if (!strcmp(name, "q8") || !strcmp(name, "q4"))
        return kvr_fail(KVR_EINVAL, "element type '%s' is not f32, f16 or bf16: the element type is the full "
                        "cache's; quantized storage of the exact parts is the store= lever (h2o/store=%s, spec §18)",
                        name, name);
    else return kvr_fail(KVR_EINVAL, "element type '%s' is not f32, f16 or bf16", name);
    return KVR_OK;
}

static uint32_t f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* float32 -> IEEE binary16, round to nearest even; overflow gives Inf. */
uint16_t kvr_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u)                          /* Inf or NaN */
        return (uint16_t)(sign | 0x7C00u | (a > 0x7F800000u ? 0x200u : 0u));
    if (a >= 0x477FF000u)                          /* rounds to >= 65520: Inf */
        return (uint16_t)(sign | 0x7C00u);
    if (a < 0x38800000u) {                         /* below 2^-14: subnormal or zero */
        /* value = a_float; f16 subnormal unit is 2^-24.  Scale and round. */
        float f = bits_f32(a) * 16777216.0f;       /* exact: multiply by 2^24 */
        float r = nearbyintf(f);                   /* ties to even in default mode */
        return (uint16_t)(sign | (uint16_t)r);
    }
    /* normal: rebias exponent, round mantissa from 23 to 10 bits */
    uint32_t m = a - 0x38000000u;                  /* exponent bias 127 -> 15 */
    uint32_t rest = m & 0x1FFFu;
    m >>= 13;
    if (rest > 0x1000u || (rest == 0x1000u && (m & 1u)))
        m += 1;                                    /* may carry into the exponent: correct */
    return (uint16_t)(sign | m);
}

/* float16 -> float32, exact.  Static so that the row loader below can
 * inline it (an exported function of a shared library is called through
 * its symbol); kvr_f16_to_f32 is the same function. */
static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {                                  /* zero or subnormal: m * 2^-24 */
        float f = (float)m * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    if (e == 31)
        return bits_f32(sign | 0x7F800000u | (m << 13));
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

float kvr_f16_to_f32(uint16_t h)
{
    return f16_to_f32(h);
}

/* float32 -> bfloat16: keep the top 16 bits, round to nearest even. */
uint16_t kvr_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)           /* NaN stays NaN */
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float kvr_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

int kvr_elem_store(kvr_elem elem, float x, void *dst, size_t index)
{
    switch (elem) {
    case KVR_F32:
        ((float *)dst)[index] = x;
        return KVR_OK;
    case KVR_F16: {
        uint16_t h = kvr_f32_to_f16(x);
        if (isfinite(x) && (h & 0x7C00u) == 0x7C00u)
            return KVR_ERANGE;
        ((uint16_t *)dst)[index] = h;
        return KVR_OK;
    }
    case KVR_BF16: {
        uint16_t b = kvr_f32_to_bf16(x);
        if (isfinite(x) && (b & 0x7F80u) == 0x7F80u)
            return KVR_ERANGE;
        ((uint16_t *)dst)[index] = b;
        return KVR_OK;
    }
    }
    return KVR_EINVAL;
}

float kvr_elem_load(kvr_elem elem, const void *src, size_t index)
{
    switch (elem) {
    case KVR_F32:  return ((const float *)src)[index];
    case KVR_F16:  return kvr_f16_to_f32(((const uint16_t *)src)[index]);
    case KVR_BF16: return kvr_bf16_to_f32(((const uint16_t *)src)[index]);
    }
    return NAN;
}

void kvr_elem_load_row(kvr_elem elem, const void *src, size_t at, size_t n, float *dst)
{
    const uint16_t *half = (const uint16_t *)src + at;
    switch (elem) {
    case KVR_F32:
        memcpy(dst, (const float *)src + at, n * sizeof(float));
        return;
    case KVR_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(half[i]);
        return;
    case KVR_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = kvr_bf16_to_f32(half[i]);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = NAN;
}

float kvr_elem_round(kvr_elem elem, float x)
{
    switch (elem) {
    case KVR_F32:  return x;
    case KVR_F16:  return kvr_f16_to_f32(kvr_f32_to_f16(x));
    case KVR_BF16: return kvr_bf16_to_f32(kvr_f32_to_bf16(x));
    }
    return NAN;
}

int kvr_all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* ---- quantized storage of the exact parts (spec §18.1) ------------------ */

const char *kvr_store_name(kvr_store store)
{
    switch (store) {
    case KVR_STORE_ELEM: return "elem";
    case KVR_STORE_Q8:   return "q8";
    case KVR_STORE_Q4:   return "q4";
    }
    return "?";
}

int kvr_store_bits(kvr_store store)
{
    return store == KVR_STORE_Q8 ? 8 : store == KVR_STORE_Q4 ? 4 : 0;
}

int kvr_store_parse(const char *name, kvr_store *store)
{
    if (!name || !store)
        return kvr_fail(KVR_EINVAL, "kvr_store_parse: name or store is NULL");
    if (!strcmp(name, "elem")) *store = KVR_STORE_ELEM;
    else if (!strcmp(name, "q8")) *store = KVR_STORE_Q8;
    else if (!strcmp(name, "q4")) *store = KVR_STORE_Q4;
    else return kvr_fail(KVR_EINVAL, "storage type '%s' is not elem, q8 or q4", name);
    return KVR_OK;
}
