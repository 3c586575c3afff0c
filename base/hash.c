/* hash.c: the sketch's bucket and sign of a position (spec §5).
 *
 * One 64-bit value per (seed, layer, kv_head, row, position), built by four
 * rounds of the SplitMix64 finalizer.  Only 64-bit integer arithmetic modulo
 * 2^64 is used, so every platform and the GPU produce the same bits. */
#include <config.h>
#include "base.h"

/* SplitMix64: add the golden-ratio increment, then two xor-shift-multiply
 * steps and a final xor-shift (spec §5.1). */
static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* spec §5.2: h = mix(mix(mix(mix(seed) ^ (layer<<32 | kv_head)) ^ row) ^ pos) */
uint64_t kvr_hash(uint64_t seed, uint32_t layer, uint32_t kv_head, uint32_t row, uint64_t pos)
{
    uint64_t h = mix64(seed);
    h = mix64(h ^ (((uint64_t)layer << 32) | kv_head));
    h = mix64(h ^ (uint64_t)row);
    h = mix64(h ^ pos);
    return h;
}

/* spec §5.3: bucket = floor(hi32(h) * width / 2^32), in [0, width). */
uint32_t kvr_hash_bucket(uint64_t h, uint32_t width)
{
    return (uint32_t)(((h >> 32) * (uint64_t)width) >> 32);
}

/* spec §5.3: sign = +1 when the lowest bit of h is 0, -1 when it is 1. */
int kvr_hash_sign(uint64_t h)
{
    return (h & 1u) ? -1 : +1;
}
