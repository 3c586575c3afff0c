/* hash.cuh: the device copy of the sketch hash (spec §5), bit-identical to
 * kvr_hash, kvr_hash_bucket and kvr_hash_sign in base/hash.c: only 64-bit
 * integer arithmetic modulo 2^64.  kvr_cuda_hash_check (device.cu) compares
 * the two on many inputs. */
#ifndef KVR_CUDA_HASH_CUH
#define KVR_CUDA_HASH_CUH
#include <stdint.h>

/* spec §5.1: SplitMix64 finalizer after the golden-ratio increment. */
__host__ __device__ inline uint64_t kvr_dev_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* spec §5.2: h = mix(mix(mix(mix(seed) ^ (layer<<32 | kv_head)) ^ row) ^ pos) */
__host__ __device__ inline uint64_t kvr_dev_hash(uint64_t seed, uint32_t layer, uint32_t kv_head,
                                                 uint32_t row, uint64_t pos)
{
    uint64_t h = kvr_dev_mix64(seed);
    h = kvr_dev_mix64(h ^ (((uint64_t)layer << 32) | kv_head));
    h = kvr_dev_mix64(h ^ (uint64_t)row);
    return kvr_dev_mix64(h ^ pos);
}

/* The same hash split in two: the first three mixes depend only on (seed,
 * layer, kv_head, row), so a kernel forms that prefix once per row and
 * kvr_dev_hash_pos(prefix, pos) == kvr_dev_hash(seed, layer, kv_head, row,
 * pos) costs one mix per position. */
__host__ __device__ inline uint64_t kvr_dev_hash_prefix(uint64_t seed, uint32_t layer, uint32_t kv_head,
                                                        uint32_t row)
{
    uint64_t h = kvr_dev_mix64(seed);
    h = kvr_dev_mix64(h ^ (((uint64_t)layer << 32) | kv_head));
    return kvr_dev_mix64(h ^ (uint64_t)row);
}

__host__ __device__ inline uint64_t kvr_dev_hash_pos(uint64_t prefix, uint64_t pos)
{
    return kvr_dev_mix64(prefix ^ pos);
}

/* spec §5.3 */
__host__ __device__ inline uint32_t kvr_dev_bucket(uint64_t h, uint32_t width)
{
    return (uint32_t)(((h >> 32) * (uint64_t)width) >> 32);
}

__host__ __device__ inline float kvr_dev_sign(uint64_t h)
{
    return (h & 1u) ? -1.0f : 1.0f;
}
#endif
