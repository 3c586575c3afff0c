/* vectors_scripts.c: levels 4-7 of the conformance vectors (doc/porting.md):
 * scripted sequences of prefill, append and attend on one layer of a model
 * cache, from explicit seeds, with
 *   level 4  the part of every position after every operation (exact),
 *   level 5  the sketch after the sequence: sums, signed counts, loads and
 *            running sums (tolerance of spec §14 for the float sums),
 *   level 6  the reconstruction of every vague position (every 8th in the
 *            long scenario) after the sequence,
 *   level 7  the output of every attention step.
 * The inputs are generated with integer arithmetic only (SplitMix64), so they
 * regenerate bit for bit, and are written out anyway: a port reads them.
 * They do not depend on the library's rounding (spec §4): a scenario's inputs
 * are either representable in its element type by construction (truncated,
 * below) or deliberately not (raw scenarios, which the port must round), so
 * a wrong rounding in the library changes outputs, never inputs. */
#include <config.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "tolerance.h"
#include "common/message.h"
#include "vectors.h"

kvr_backend vec_backend = KVR_BACKEND_REF;

/* How the keys are drawn (values are always independent uniforms). */
typedef enum {
    KEYS_RANDOM,   /* independent uniforms in [-1, 1) */
    KEYS_TWO,      /* two fixed vectors: A at positions p % 3 != 0, B at p % 3 == 0,
                      so attention weights (and TOVA scores) tie exactly within each */
    KEYS_LOW,      /* random, except one fixed low-scoring key at the positions
                      low_from <= p < low_to and at p % 7 == 3 beyond the prefill:
                      equal prefill and decode scores, so the tie rules decide */
    KEYS_BLOCKS    /* three key types (head_dim a multiple of 3): type y = "12012120"[p % 8]
                      is 1 on the y-th third of the coordinates and 0 elsewhere; the
                      last observed query of query head g (g < 3) is 128 on the thirds
                      of the types in {0}, {1}, {1, 2} and 0 elsewhere, so each softmax
                      is exactly uniform over the positions of those types (every other
                      weight is exp(-147.8) = 0): the prefill scores are sums of
                      fl(1/m), independent of the exponential; with 10, 15 and 15
                      positions of each type in a prompt of 40, type 0 scores
                      fl(1/10) and type 1 fl(fl(1/15) + fl(1/30)), different, but
                      equal once divided by 3 */
} key_pattern;

typedef struct {
    const char *name;
    const char *about;
    int head_dim, kv_heads, group, layer;
    int sinks, window, candidates, depth, width, obs_window;
    kvr_rows rows;
    int centre, shrink;
    kvr_importance importance;
    kvr_elem elem;
    uint64_t data_seed;
    const char *script;   /* tokens: P<n>/<n_obs> prefill, A<n> append, T attend, k*A<n>T */
    key_pattern keys;
    int low_from, low_to;
    int probe_stride;     /* 1: every vague position */
    kvr_vague vague;      /* attention route (spec 11 or 17); 0 = reconstruct */
    double var_cap;       /* moment route: variance cap (spec 17.3) */
    kvr_pool pool;        /* snapkv prefill pooling (spec 6.2); 0 = avg */
    int pool_kernel;      /* 0 = 5, the default */
    int raw;              /* 1: inputs not representable in elem, the port rounds
                             them (spec 4.1), with ties and a wide exponent range */
    kvr_store store;      /* exact parts in elem (0), or quantized (spec 18) */
    int kivi_bits, kivi_group;  /* KIVI (spec 18.6): 0 = off; the body holds every token past
                                   the sinks and the window of the script */
    int tier_bits, tier_tokens; /* the quantized tier (spec 19): 0 = none; b bits, Q positions */
    int zero_step;        /* 0, or an attend step (from 1) whose query is 0: every logit is 0,
                             so every held position gets exactly fl(1/n) per query head,
                             whatever the exponential: under tova every score ties */
    int promote;          /* 1: the promotion threshold (spec 19.5) is that fl(1/n), so at
                             the zero step every tier token is exactly at it; 0: no promotion */
    int balance;          /* 1: the tier's channel balancer (spec 19.12); the keys' channel i
                             is scaled by 2^(i mod 7 - 3), so the exponents vary */
    int rotate;           /* 1: the tier's Walsh-Hadamard rotation (spec 19.13) */
} scenario;

/* A scenario leaves out the fields after its last one on purpose: they are
 * zero, each field's default (see the comments above), so the compiler's
 * note that they are missing is silenced here, for this table only. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
static const scenario scenarios[] = {
    { "one_token", "context of one token: prefill it, attend (snapkv, d=3 median, centring)",
      64, 1, 1, 0, 4, 8, 4, 3, 8, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_SNAPKV, KVR_F32,
      101, "P1/1 T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "tova_ties", "append-only TOVA with two distinct keys: candidate scores tie exactly, "
      "the oldest of the tied leaves first (spec 3.4); d=1, mean, no centring, GQA 4",
      64, 1, 4, 1, 2, 4, 3, 1, 16, 4, KVR_ROWS_MEAN, 0, 0, KVR_IMP_TOVA, KVR_F32,
      202, "10*A1T A2 T 6*A1T A3 8*A1T", KEYS_TWO, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "prefill_ties", "snapkv prefill whose middle holds one repeated low key: pooled scores "
      "tie and the newer are kept (spec 10); then decode with h2o accumulation where tied "
      "candidates leave oldest first and low newcomers go straight to the sketch; f16, d=5 median, "
      "small w, 2 kv heads",
      128, 2, 1, 0, 2, 4, 12, 5, 8, 4, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_SNAPKV, KVR_F16,
      303, "P30/4 T 14*A1T A2 T", KEYS_LOW, 6, 24, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "bf16_gqa4", "bf16 storage, GQA group 4, d=3 mean rows, centring and shrinkage, snapkv prefill "
      "of 200 tokens then decode",
      64, 2, 4, 1, 4, 16, 24, 3, 32, 16, KVR_ROWS_MEAN, 1, 1, KVR_IMP_SNAPKV, KVR_BF16,
      404, "P200/16 12*A1T A5 T 4*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "f32_d5_wide", "f32, d=5 median rows, large w, no centring, h2o prefill of 300 then decode",
      64, 1, 1, 0, 4, 32, 32, 5, 128, 32, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_H2O, KVR_F32,
      505, "P300/32 8*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "evict_f16", "eviction baseline (no sketch: vague positions are dropped, spec 3.6), "
      "head_dim 128, f16, GQA 4",
      128, 1, 4, 0, 4, 8, 8, 0, 0, 8, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_SNAPKV, KVR_F16,
      606, "P64/8 8*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "stream_sketch", "no candidates (importance none): every token leaving the window goes to "
      "a small sketch (w=4, heavy collisions), appended from empty, d=3 median, centring",
      64, 1, 1, 0, 1, 4, 0, 3, 4, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_NONE, KVR_F32,
      707, "4*A1T A3 30*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "long_2k", "a 2048-token snapkv prefill then decode, d=3 median, centring, f32, w=64 "
      "(reconstructions of every 8th vague position)",
      64, 1, 1, 0, 4, 32, 64, 3, 64, 32, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_SNAPKV, KVR_F32,
      808, "P2048/32 6*A1T", KEYS_RANDOM, 0, 0, 8, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "moment_default", "the moment route without a tier (spec 17; kvreviver-moment, the default "
      "before the tier): the mean-field bulk, d=1, h2o prefill of 300 then decode, 2 kv heads, GQA 2",
      64, 2, 2, 0, 4, 16, 16, 1, 8, 32, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_H2O, KVR_F32,
      909, "P300/32 8*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_MOMENT, 0.0 },
    { "moment_gauss_f16", "moment route with the uncapped Gaussian bulk (variance and covariance terms), "
      "d=3 median, f16, GQA 4, snapkv prefill of 200 then decode",
      64, 1, 4, 0, 2, 8, 12, 3, 16, 16, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_SNAPKV, KVR_F16,
      1010, "P200/16 6*A1T A4 T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_MOMENT, INFINITY },
    { "moment_cap_bf16", "moment route with var_cap 1, bf16, d=2 mean rows, no candidates, appended "
      "from empty (the bulk from its first token on)",
      32, 1, 1, 0, 1, 4, 0, 2, 4, 8, KVR_ROWS_MEAN, 1, 0, KVR_IMP_NONE, KVR_BF16,
      1111, "4*A1T A3 20*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_MOMENT, 1.0 },
    { "round_f16", "inputs NOT representable in f16 (ties, subnormals, magnitudes up to 2^15): the port "
      "rounds them (spec 4.1) before anything uses them, prefill scores included (spec 4.3); h2o prefill, "
      "d=3 median, GQA 2",
      32, 1, 2, 0, 2, 4, 4, 3, 8, 4, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_H2O, KVR_F16,
      1212, "P16/4 T 8*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 1, KVR_STORE_ELEM, 0, 0 },
    { "round_bf16", "inputs NOT representable in bf16 (ties, float32 subnormals, magnitudes to 2^60): the "
      "port rounds them (spec 4.1); appended from empty, no candidates, d=2 mean rows, 2 kv heads",
      32, 2, 1, 0, 1, 4, 0, 2, 8, 8, KVR_ROWS_MEAN, 1, 0, KVR_IMP_NONE, KVR_BF16,
      1313, "12*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 1, KVR_STORE_ELEM, 0, 0 },
    { "median_even", "the median of an even number of rows (spec 8.2): d=4, the mean of the two middle "
      "values; small w, appended from empty, no candidates",
      32, 1, 1, 0, 1, 4, 0, 4, 4, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_NONE, KVR_F32,
      1414, "A3 20*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0, KVR_STORE_ELEM, 0, 0 },
    { "pool_max", "snapkv prefill with max pooling over a kernel of 7 (spec 6.2), 12 observed queries of "
      "which the last obs_window=6 count; one sink and a window of 2, so edge positions are in the middle",
      32, 1, 2, 0, 1, 2, 6, 2, 8, 6, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_SNAPKV, KVR_F32,
      1515, "P40/12 T 3*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_MAX, 7, 0, KVR_STORE_ELEM, 0, 0 },
    { "pool_edge", "snapkv prefill with average pooling (kernel 5) where edge positions are in the middle "
      "(no sinks, a window of 1): the average divides by the kernel size at the edges too (spec 6.2); "
      "10 observed queries, obs_window=6; 2 kv heads",
      32, 2, 1, 0, 0, 1, 5, 1, 8, 6, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_SNAPKV, KVR_F32,
      1616, "P24/10 T 3*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0, KVR_STORE_ELEM, 0, 0 },
    { "tova_prefill", "tova prefill (spec 6.2): the scores are the last observed query's attention alone; "
      "8 observed queries, then appends that move window tokens to the candidates by those scores",
      32, 1, 4, 0, 2, 2, 4, 1, 8, 8, KVR_ROWS_MEAN, 0, 0, KVR_IMP_TOVA, KVR_F32,
      1717, "P30/8 A2 T 3*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0, KVR_STORE_ELEM, 0, 0 },
    { "store_q4_h2o", "quantized storage (spec 18): every exact key and value as 4-bit codes with a "
      "float16 zero point and scale per token and head; h2o eviction, f16, 2 kv heads, GQA 2, "
      "prefill of 60 then decode (a port quantizes the rounded inputs as it stores them)",
      64, 2, 2, 0, 4, 8, 12, 0, 0, 8, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_H2O, KVR_F16,
      1818, "P60/8 10*A1T A3 T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_Q4, 0, 0 },
    { "store_q8_snapkv", "quantized storage (spec 18), 8-bit codes; snapkv eviction, bf16, GQA 4, "
      "prefill of 40 then decode",
      32, 1, 4, 0, 2, 4, 8, 0, 0, 4, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_SNAPKV, KVR_BF16,
      1919, "P40/4 8*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_Q8, 0, 0 },
    { "store_q4_odd", "quantized storage (spec 18), 4-bit codes of an odd head_dim (37: the last "
      "byte of a row holds one code), sinks and window only (streaming), f32, appended from empty",
      37, 1, 1, 0, 1, 5, 0, 0, 0, 8, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_NONE, KVR_F32,
      2020, "20*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_Q4, 0, 0 },
    { "kivi_b3", "KIVI (spec 18.6): every token kept; keys 3-bit per channel over groups of 3 body "
      "positions (exact while the group fills), values 3-bit per token, 2 sinks and a residual of 4 "
      "exact; f16, 2 kv heads, GQA 2, prefill of 20 then decode (parts: 5 = quantized)",
      20, 2, 2, 0, 2, 4, 0, 0, 0, 8, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_NONE, KVR_F16,
      2121, "P20/0 T 13*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 3, 3 },
    { "tier_b2", "the quantized tier (spec 19): 2-bit keys and values with a float16 zero point and "
      "scale per token, 4 tier positions between the candidates and the bulk; tova with two distinct "
      "keys, so tier scores tie exactly and the oldest of the tied leaves for the bulk first (spec 19.3); "
      "tova prefill ranked into candidates, tier and bulk (spec 19.8); moment route, f16, GQA 2 "
      "(parts: 5 = quantized)",
      16, 1, 2, 0, 2, 3, 3, 3, 8, 4, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_TOVA, KVR_F16,
      2222, "P16/4 T 14*A1T", KEYS_TWO, 0, 0, 1, KVR_VAGUE_MOMENT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 0, 0, 2, 4 },
    { "tier_default", "the default kvreviver (doc/methods.md 13.2): exact sinks, window and candidates "
      "in f16, a 4-bit tier of 12 positions (spec 19), the moment route's mean-field bulk behind it, "
      "d=1, h2o prefill of 80 then decode (tokens leave the candidates for the tier and the tier's "
      "least important for the bulk), 2 kv heads, GQA 2 (parts: 5 = quantized)",
      64, 2, 2, 0, 4, 8, 8, 1, 8, 16, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_H2O, KVR_F16,
      2323, "P80/16 12*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_MOMENT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 0, 0, 4, 12 },
    { "tier_promote", "promotion (spec 19.5): a 4-bit tier of 6 positions, tova, promote= the float32 "
      "1/43, so that tokens attended above it return to the candidates (swapping with the candidate "
      "that leaves first when they are full) and, at attend step 4, whose query is 0, every position "
      "is attended with exactly 1/43 (scores tie): every tier token is exactly at the threshold and "
      "stays (strictly above promotes); the reconstruction route, d=2 median, f16, GQA 2 "
      "(parts: 5 = quantized)",
      16, 1, 2, 0, 2, 4, 4, 2, 8, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_TOVA, KVR_F16,
      2424, "P40/8 T 12*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 0, 0, 4, 6, 4, 1 },
    { "tier_newcomer", "the tier's tie clause (spec 19.3): tova, a 2-bit tier of 3 positions behind 6 "
      "candidates, filled by the prefill (one repeated low key at positions 8-17: the candidates are "
      "older than the tier); the first attend step's query is 0, so every score ties, "
      "and at the append after it the oldest candidate leaves for the full tier tied with the "
      "tier's leaving token (its oldest) and older than it: it goes to the bulk itself; then "
      "decode; moment route, f16, GQA 2 (parts: 5 = quantized)",
      16, 1, 2, 0, 1, 2, 6, 1, 8, 4, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_TOVA, KVR_F16,
      2525, "P20/4 T 12*A1T", KEYS_LOW, 8, 18, 1, KVR_VAGUE_MOMENT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 0, 0, 2, 3, 1, 0 },
    { "tova_g3", "tova with a GQA group of 3 (not a power of two): three key types and observed "
      "queries that make the prefill scores of two types differ by one ulp, and tie once divided by "
      "3 (the scores are the group's sum, spec 6.2); eviction (no sketch), f32, head_dim 12, "
      "prefill of 40 then decode",
      12, 1, 3, 0, 2, 4, 6, 0, 0, 1, KVR_ROWS_MEDIAN, 0, 0, KVR_IMP_TOVA, KVR_F32,
      2626, "P40/1 T 6*A1T", KEYS_BLOCKS, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0 },
    { "mikv_b2", "mikv's layout (doc/methods.md 13.3): h2o candidates exact in f16 and a complete 2-bit "
      "tier (spec 19.11) holding every other token, none dropped, its keys coded through the channel "
      "balancer (spec 19.12: power-of-two exponents from the prefill's largest |q| and |k|, keys with "
      "channel scales 2^-3 .. 2^3); no sketch, 2 kv heads, GQA 2, prefill of 30 then decode "
      "(parts: 5 = quantized)",
      16, 2, 2, 0, 2, 3, 3, 0, 0, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_H2O, KVR_F16,
      2727, "P30/8 T 10*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 0, 0, 2, 32, 0, 0, 1 },
    { "body_b2", "candidates over a KIVI body (spec 18.8): every token that leaves the window enters "
      "a 2-bit KIVI body (keys per channel over groups of 4, values per token), and 3 h2o candidates "
      "are exact copies of body positions beside it: nothing evicted; a candidate that leaves reads "
      "from the body again (two do here); h2o prefill of 24 with one observed query ranks the "
      "candidates, then decode; 2 sinks, a window of "
      "3, f16, 2 kv heads, GQA 2 (parts: 2 = candidate, 5 = the body's other positions)",
      16, 2, 2, 0, 2, 3, 3, 0, 0, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_H2O, KVR_F16,
      2828, "P24/1 T 14*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 2, 4 },
    { "rotate_b3", "the tier's rotation (spec 19.13) with the balancer (19.12): a 3-bit tier of 12 "
      "positions behind f16 h2o candidates, its keys (channel scales 2^-3 .. 2^3) and values coded as "
      "W x 2^-4 (W the 16-point Walsh-Hadamard butterfly) and read back as W of the code; the rest "
      "dropped; 2 kv heads, GQA 2, prefill of 30 then decode (parts: 5 = quantized, 4 = dropped)",
      16, 2, 2, 0, 2, 3, 3, 0, 0, 8, KVR_ROWS_MEDIAN, 1, 0, KVR_IMP_H2O, KVR_F16,
      2929, "P30/8 T 10*A1T", KEYS_RANDOM, 0, 0, 1, KVR_VAGUE_RECONSTRUCT, 0.0, KVR_POOL_AVG, 0, 0,
      KVR_STORE_ELEM, 0, 0, 3, 12, 0, 0, 1, 1 },
};
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

enum { OP_PREFILL = 0, OP_APPEND = 1, OP_ATTEND = 2 };
typedef struct { int32_t op, n, n_obs; } script_op;

/* Parse a script into ops (at most cap).  Returns the count, -1 when bad. */
static int parse_script(const char *s, script_op *ops, int cap)
{
    int n_ops = 0;
    while (*s) {
        while (*s == ' ') s++;
        if (!*s) break;
        int rep = 1, a = 0, b = 0, len = 0;
        if (sscanf(s, "%d*A%dT%n", &rep, &a, &len) == 2 && len > 0) {
            for (int i = 0; i < rep; i++) {
                if (n_ops + 2 > cap) return -1;
                ops[n_ops++] = (script_op){ OP_APPEND, a, 0 };
                ops[n_ops++] = (script_op){ OP_ATTEND, 0, 0 };
            }
        } else if (sscanf(s, "P%d/%d%n", &a, &b, &len) == 2 && len > 0) {
            if (n_ops + 1 > cap) return -1;
            ops[n_ops++] = (script_op){ OP_PREFILL, a, b };
        } else if (sscanf(s, "A%d%n", &a, &len) == 1 && len > 0) {
            if (n_ops + 1 > cap) return -1;
            ops[n_ops++] = (script_op){ OP_APPEND, a, 0 };
        } else if (*s == 'T') {
            if (n_ops + 1 > cap) return -1;
            ops[n_ops++] = (script_op){ OP_ATTEND, 0, 0 };
            len = 1;
        } else {
            return -1;
        }
        s += len;
    }
    return n_ops;
}

/* ---- deterministic inputs ------------------------------------------------ */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t x = (*state += UINT64_C(0x9E3779B97F4A7C15));
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* Uniform in [-1, 1) with 24 bits: exact in float32 on every platform. */
static float uniform(uint64_t *state)
{
    return (float)((double)(next_u64(state) >> 40) / 8388608.0 - 1.0);
}

/* x truncated (toward zero) to elem's precision: representable in elem by
 * construction for the values uniform() draws (multiples of 2^-23 below 1
 * in magnitude: below 2^-14 they are f16 subnormals already).  The kit's
 * own operation, not the library's rounding: see the head of this file. */
static float representable(kvr_elem elem, float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (elem == KVR_F16)
        u &= ~UINT32_C(0x1FFF);
    else if (elem == KVR_BF16)
        u &= ~UINT32_C(0xFFFF);
    memcpy(&x, &u, sizeof x);
    return x;
}

/* A raw input (spec 4.1 exercised): a uniform scaled by 2^e with e cycling
 * over a range that reaches elem's subnormals (f16) and, for values, large
 * magnitudes (up to 2^15 for f16); every third element is moved onto an
 * exact tie between two neighbours of elem, half of them a tie whose even
 * neighbour is the larger. */
static float raw_input(kvr_elem elem, float x, size_t i, int is_value)
{
    static const int e16k[] = { -26, -22, -18, -15, -12, -6, 0, 1 };
    static const int e16v[] = { -25, -16, -8, 0, 4, 9, 13, 15 };
    static const int ebfk[] = { -130, -100, -40, -10, -3, 0, 1, 2 };
    static const int ebfv[] = { -133, -100, -40, -3, 0, 2, 20, 60 };
    const int *e = elem == KVR_F16 ? (is_value ? e16v : e16k) : (is_value ? ebfv : ebfk);
    float y = ldexpf(x, e[i % 8]);
    if (i % 3 == 0 && y != 0.0f) {
        uint32_t u, half = elem == KVR_F16 ? 0x1000u : 0x8000u;
        float t = representable(elem, y);
        memcpy(&u, &t, sizeof u);
        if (elem == KVR_F16 && fabsf(t) < 0x1p-14f) {   /* f16 subnormal: ties at odd multiples of 2^-25 */
            float m = truncf(fabsf(y) * 0x1p24f);
            t = copysignf((m + 0.5f) * 0x1p-24f, y);
            return t;
        }
        u |= half;                      /* t + half an ulp of elem: an exact tie */
        memcpy(&t, &u, sizeof t);
        return t;
    }
    return y;
}

static const char *imp_name(kvr_importance i)
{
    static const char *const names[] = { "none", "h2o", "snapkv", "tova" };
    return names[i];
}

/* Everything one scenario holds while it runs. */
typedef struct {
    const scenario *sc;
    script_op ops[128];
    int n_ops, n_tokens, n_obs, n_attend, n_q;
    float *k, *v;          /* [n_tokens][H][D], rounded to the element type */
    float *q_obs;          /* [n_obs][Hq][D] */
    float *q;              /* [n_attend][Hq][D] */
    float *hk, *hv;        /* [H][n_tokens][D]: per-head copies for the tolerance model */
    int32_t *parts;        /* [n_ops][H][n_tokens] */
    float *out, *tol_out;  /* [n_attend][Hq][D] */
} run_state;

static void run_free(run_state *r)
{
    free(r->k); free(r->v); free(r->q_obs); free(r->q); free(r->hk); free(r->hv);
    free(r->parts); free(r->out); free(r->tol_out);
}

/* Draw the inputs of a scenario (see key_pattern). */
static int make_inputs(run_state *r)
{
    const scenario *sc = r->sc;
    size_t D = (size_t)sc->head_dim, H = (size_t)sc->kv_heads, Hq = H * (size_t)sc->group;
    size_t N = (size_t)r->n_tokens;
    uint64_t st = sc->data_seed;
    r->k = malloc(N * H * D * sizeof(float));
    r->v = malloc(N * H * D * sizeof(float));
    r->q_obs = malloc(((size_t)r->n_obs * Hq * D + 1) * sizeof(float));
    r->q = malloc(((size_t)r->n_attend * Hq * D + 1) * sizeof(float));
    r->hk = malloc(N * H * D * sizeof(float));
    r->hv = malloc(N * H * D * sizeof(float));
    r->parts = malloc((size_t)r->n_ops * H * N * sizeof(int32_t));
    r->out = malloc(((size_t)r->n_attend * Hq * D + 1) * sizeof(float));
    r->tol_out = malloc(((size_t)r->n_attend * Hq * D + 1) * sizeof(float));
    if (!r->k || !r->v || !r->q_obs || !r->q || !r->hk || !r->hv || !r->parts || !r->out || !r->tol_out) {
        msg_error("vectors: out of memory");
        return 1;
    }
    float fixed_a[256], fixed_b[256];          /* D <= 256 here */
    for (size_t i = 0; i < D; i++) {
        fixed_a[i] = uniform(&st);
        fixed_b[i] = uniform(&st);
    }
    /* queries: positive coordinates when keys are LOW (the low key points
     * against them), otherwise uniforms scaled by 3 for a peaked softmax */
    int positive = sc->keys == KEYS_LOW;
    for (size_t t = 0; t < N; t++) {
        int prefilled = r->ops[0].op == OP_PREFILL && (int)t < r->ops[0].n;
        int low = sc->keys == KEYS_LOW && (((int)t >= sc->low_from && (int)t < sc->low_to)
                                            || (!prefilled && t % 7 == 3));
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < D; i++) {
                float x = uniform(&st), y = uniform(&st);
                if (sc->keys == KEYS_TWO)
                    x = (t % 3 == 0 ? fixed_b : fixed_a)[i];
                else if (sc->keys == KEYS_BLOCKS)
                    x = (size_t)("12012120"[t % 8] - '0') == i / (D / 3) ? 1.0f : 0.0f;
                else if (low)
                    x = -0.5f;
                if (sc->balance)
                    x *= ldexpf(1.0f, (int)(i % 7) - 3);   /* channel scales: the balancer has work */
                size_t at = (t * H + h) * D + i;
                r->k[at] = sc->raw ? raw_input(sc->elem, x, at, 0) : representable(sc->elem, x);
                r->v[at] = sc->raw ? raw_input(sc->elem, y, at, 1) : representable(sc->elem, y);
            }
    }
    for (size_t j = 0; j < (size_t)r->n_obs * Hq * D; j++) {
        float x = uniform(&st);
        r->q_obs[j] = positive ? 0.625f + 0.375f * x : 3.0f * x;
    }
    if (sc->keys == KEYS_BLOCKS && r->n_obs > 0)    /* the last observed query: see KEYS_BLOCKS */
        for (size_t g = 0; g < Hq; g++)
            for (size_t i = 0; i < D; i++) {
                static const unsigned sets[3] = { 1u, 2u, 6u };
                size_t y = i / (D / 3);
                r->q_obs[((size_t)(r->n_obs - 1) * Hq + g) * D + i] = g < 3 && (sets[g] >> y & 1u) ? 128.0f : 0.0f;
            }
    for (size_t j = 0; j < (size_t)r->n_attend * Hq * D; j++) {
        float x = uniform(&st);
        r->q[j] = positive ? 0.625f + 0.375f * x : 3.0f * x;
        if (sc->zero_step > 0 && j / (Hq * D) == (size_t)sc->zero_step - 1)
            r->q[j] = 0.0f;
    }
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < N; t++) {
            memcpy(r->hk + (h * N + t) * D, r->k + (t * H + h) * D, D * sizeof(float));
            memcpy(r->hv + (h * N + t) * D, r->v + (t * H + h) * D, D * sizeof(float));
        }
    if (sc->raw)                    /* the tolerance model takes the stored values (spec 4.3) */
        for (size_t j = 0; j < N * H * D; j++) {
            r->hk[j] = kvr_elem_round(sc->elem, r->hk[j]);
            r->hv[j] = kvr_elem_round(sc->elem, r->hv[j]);
        }
    return 0;
}

/* Record the part of every position of every head after operation op. */
static void record_parts(run_state *r, const kvr_cache *cache, int op)
{
    const scenario *sc = r->sc;
    size_t H = (size_t)sc->kv_heads, N = (size_t)r->n_tokens;
    long len = kvr_length(cache, sc->layer);
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < N; t++) {
            kvr_part p = KVR_PART_DROPPED;
            int32_t *slot = &r->parts[((size_t)op * H + h) * N + t];
            *slot = -1;
            if ((long)t < len && kvr_part_of(cache, sc->layer, (int)h, (long)t, &p) == KVR_OK)
                *slot = (int32_t)p;
        }
}

/* Run the script on a fresh cache, filling parts, out and tol_out. */
static int run_script(run_state *r, kvr_cache *cache)
{
    const scenario *sc = r->sc;
    size_t D = (size_t)sc->head_dim, H = (size_t)sc->kv_heads, G = (size_t)sc->group;
    size_t Hq = H * G, N = (size_t)r->n_tokens;
    long next = 0;
    int step = 0;
    for (int o = 0; o < r->n_ops; o++) {
        const script_op *op = &r->ops[o];
        int status = KVR_OK;
        if (op->op == OP_PREFILL) {
            status = kvr_prefill(cache, sc->layer, op->n, r->k, r->v, op->n_obs, r->q_obs);
            next += op->n;
        } else if (op->op == OP_APPEND) {
            status = kvr_append(cache, sc->layer, op->n, r->k + (size_t)next * H * D,
                                r->v + (size_t)next * H * D);
            next += op->n;
        } else {
            const float *q = r->q + (size_t)step * Hq * D;
            if (sc->store != KVR_STORE_ELEM || sc->kivi_bits > 0)
                /* spec 18.7: the tolerance model takes the values the positions
                 * carry now: dequantized (a KIVI key once its group is
                 * complete); these scenarios have no sketch */
                for (size_t h = 0; h < H; h++)
                    for (long t = 0; t < kvr_length(cache, sc->layer); t++)
                        (void)kvr_reconstruct(cache, sc->layer, (int)h, t, r->hk + (h * N + (size_t)t) * D,
                                              r->hv + (h * N + (size_t)t) * D);   /* dropped: left as is */
            for (size_t h = 0; h < H && status == KVR_OK; h++)
                status = kvr_tol_attend(kvr_cache_head(cache, sc->layer, (int)h), r->hk + h * N * D,
                                        r->hv + h * N * D, (int)G, q + h * G * D,
                                        r->tol_out + ((size_t)step * Hq + h * G) * D);
            if (status == KVR_OK)
                status = kvr_attend(cache, sc->layer, q, r->out + (size_t)step * Hq * D, 0);
            step++;
        }
        if (status != KVR_OK) {
            msg_error("vectors: scenario %s, operation %d: %s", sc->name, o, kvr_last_error());
            return 1;
        }
        record_parts(r, cache, o);
        if (sc->tier_bits > 0)
            /* spec 19.2, 19.3: a tier position carries its dequantized key and
             * value, and keeps them when it leaves for the bulk (the script's
             * appends are of one token, so every token that enters the tier
             * is in it after some operation) */
            for (size_t h = 0; h < H; h++)
                for (long t = 0; t < kvr_length(cache, sc->layer); t++) {
                    kvr_part p = KVR_PART_DROPPED;
                    /* and a promoted one (spec 19.5) its stored values, which are
                     * the tier's, rounded: every exact part as stored */
                    if (kvr_part_of(cache, sc->layer, (int)h, t, &p) == KVR_OK && p != KVR_PART_VAGUE
                        && p != KVR_PART_DROPPED)
                        (void)kvr_reconstruct(cache, sc->layer, (int)h, t, r->hk + (h * N + (size_t)t) * D,
                                              r->hv + (h * N + (size_t)t) * D);
                }
    }
    return 0;
}

/* spec 19.5: the promotion threshold of a scenario: 0 (off), or with a
 * zero_step the float32 1/n at that attend step (n: the positions appended
 * before it, all held: the scenarios with a tier have a sketch), as a
 * double that converts back to that float32 exactly. */
static double promote_of(const run_state *r)
{
    if (r->sc->tier_bits == 0 || r->sc->zero_step == 0 || !r->sc->promote)
        return 0.0;
    long n = 0;
    int step = 0;
    for (int o = 0; o < r->n_ops; o++) {
        if (r->ops[o].op != OP_ATTEND)
            n += r->ops[o].n;
        else if (++step == r->sc->zero_step)
            break;
    }
    return (double)(1.0f / (float)n);
}

/* Write the manifest lines describing the scenario and its script. */
static void describe(vec_writer *w, const run_state *r)
{
    const scenario *sc = r->sc;
    char kivi[96] = "";
    if (sc->kivi_bits > 0)
        snprintf(kivi, sizeof kivi, " kivi_bits=%d kivi_group=%d kivi_tokens=%d", sc->kivi_bits, sc->kivi_group,
                 r->n_tokens - sc->sinks - sc->window);
    else if (sc->tier_bits > 0)
        snprintf(kivi, sizeof kivi, " tier_bits=%d tier_tokens=%d tier_promote=%.9g%s%s", sc->tier_bits,
                 sc->tier_tokens, promote_of(r), sc->balance ? " tier_balance=1" : "",
                 sc->rotate ? " tier_rotate=1" : "");
    vw_line(w, "scenario %s layers=%d layer=%d kv_heads=%d q_heads=%d group=%d head_dim=%d "
            "sinks=%d window=%d candidates=%d depth=%d width=%d seed=0x%016" PRIx64 " rows=%s "
            "centre=%d shrink=%d importance=%s obs_window=%d pool_kernel=%d pool=%s elem=%s "
            "rounded=%d vague=%s var_cap=%g revive=0%s%s%s tokens=%d -- %s",
            sc->name, sc->layer + 1, sc->layer, sc->kv_heads, sc->kv_heads * sc->group, sc->group,
            sc->head_dim, sc->sinks, sc->window, sc->candidates, sc->depth, sc->width,
            UINT64_C(0x5EED0000) + sc->data_seed, sc->rows == KVR_ROWS_MEDIAN ? "median" : "mean",
            sc->centre, sc->shrink, imp_name(sc->importance), sc->obs_window,
            sc->pool_kernel ? sc->pool_kernel : 5, sc->pool == KVR_POOL_MAX ? "max" : "avg",
            kvr_elem_name(sc->elem), !sc->raw, sc->vague == KVR_VAGUE_MOMENT ? "moment" : "reconstruct",
            sc->var_cap, sc->store != KVR_STORE_ELEM ? " store=" : "",
            sc->store != KVR_STORE_ELEM ? kvr_store_name(sc->store) : "", kivi, r->n_tokens, sc->about);
    char line[4096];
    size_t at = 0;
    long pos = 0;
    for (int o = 0; o < r->n_ops && at < sizeof line - 64; o++) {
        const script_op *op = &r->ops[o];
        if (op->op == OP_PREFILL)
            at += (size_t)snprintf(line + at, sizeof line - at, "%sprefill %ld..%ld n_obs=%d",
                                   o ? "; " : "", pos, pos + op->n - 1, op->n_obs);
        else if (op->op == OP_APPEND)
            at += (size_t)snprintf(line + at, sizeof line - at, "%sappend %ld..%ld",
                                   o ? "; " : "", pos, pos + op->n - 1);
        else
            at += (size_t)snprintf(line + at, sizeof line - at, "%sattend", o ? "; " : "");
        if (op->op != OP_ATTEND)
            pos += op->n;
    }
    vw_line(w, "script %s %s", sc->name, line);
}

/* Levels 3 and 4: the sketch and the reconstructions, after the script. */
static int write_sketch(vec_writer *w, const run_state *r, const kvr_cache *cache)
{
    const scenario *sc = r->sc;
    size_t D = (size_t)sc->head_dim, H = (size_t)sc->kv_heads, N = (size_t)r->n_tokens;
    size_t d = (size_t)sc->depth, wd = (size_t)sc->width, dwD = d * wd * D;
    char rel[VEC_PATH_MAX], tol[VEC_PATH_MAX], kind[VEC_PATH_MAX + 8];
    const char *nm = sc->name;
    int status = 1;
    float *sk = malloc(2 * H * dwD * sizeof(float)), *tk = malloc(2 * H * dwD * sizeof(float));
    int32_t *cnt = malloc(2 * H * d * wd * sizeof(int32_t));
    double *run = calloc(2 * H * D, sizeof(double)), *trun = calloc(2 * H * D, sizeof(double));
    if (!sk || !tk || !cnt || !run || !trun) {
        msg_error("vectors: out of memory");
        goto done;
    }
    for (size_t h = 0; h < H; h++) {
        const ref_head *hd = kvr_cache_head(cache, sc->layer, (int)h);
        memcpy(sk + h * dwD, hd->sk_k, dwD * sizeof(float));
        memcpy(sk + (H + h) * dwD, hd->sk_v, dwD * sizeof(float));
        memcpy(cnt + h * d * wd, hd->sk_count, d * wd * sizeof(int32_t));
        memcpy(cnt + (H + h) * d * wd, hd->sk_load, d * wd * sizeof(int32_t));
        if (kvr_tol_sketch(hd, r->hk + h * N * D, r->hv + h * N * D, tk + h * dwD,
                           tk + (H + h) * dwD) != KVR_OK) {
            msg_error("vectors: %s: %s", nm, kvr_last_error());
            goto done;
        }
        if (sc->centre) {
            /* spec 7.4: float64 sums of the vague keys and values; another
             * summation order moves them by at most gamma64_{n-1} sum|x| each,
             * so two implementations by twice that */
            double nv = (double)hd->n_vague, g = nv > 1 ? (nv - 1) * 0x1p-53 / (1 - (nv - 1) * 0x1p-53) : 0;
            for (size_t i = 0; i < D; i++) {
                run[h * D + i] = hd->sum_k[i];
                run[(H + h) * D + i] = hd->sum_v[i];
                double ak = 0, av = 0;
                for (size_t t = 0; t < N; t++)
                    if ((long)t < hd->n && ref_part_of(hd, (long)t) == KVR_PART_VAGUE) {
                        ak += fabs((double)r->hk[(h * N + t) * D + i]);
                        av += fabs((double)r->hv[(h * N + t) * D + i]);
                    }
                trun[h * D + i] = 2 * g * ak;
                trun[(H + h) * D + i] = 2 * g * av;
            }
        }
    }
    size_t s_sums[5] = { 2, H, d, wd, D }, s_cnt[4] = { 2, H, d, wd }, s_run[3] = { 2, H, D };
    snprintf(rel, sizeof rel, "expected/%s/sketch_sums.npy", nm);
    snprintf(tol, sizeof tol, "tolerance/%s/sketch_sums.npy", nm);
    snprintf(kind, sizeof kind, "tol:%s", tol);
    if (vw_array(w, tol, KVR_NPY_F32, 5, s_sums, tk, "tolerance", "tolerance of %s", rel) != 0
        || vw_array(w, rel, KVR_NPY_F32, 5, s_sums, sk, kind,
                    "level 5 (spec 7): after the script, [0] key sums and [1] value sums [kv_head][row][bucket][dim]") != 0)
        goto done;
    snprintf(rel, sizeof rel, "expected/%s/sketch_counts.npy", nm);
    if (vw_array(w, rel, KVR_NPY_I32, 4, s_cnt, cnt, "exact",
                 "level 5 (spec 7): after the script, [0] signed counts and [1] loads [kv_head][row][bucket]") != 0)
        goto done;
    if (sc->centre) {
        snprintf(rel, sizeof rel, "expected/%s/running_sums.npy", nm);
        snprintf(tol, sizeof tol, "tolerance/%s/running_sums.npy", nm);
        snprintf(kind, sizeof kind, "tol:%s", tol);
        if (vw_array(w, tol, KVR_NPY_F64, 3, s_run, trun, "tolerance", "tolerance of %s", rel) != 0
            || vw_array(w, rel, KVR_NPY_F64, 3, s_run, run, kind,
                        "level 5 (spec 7.4): after the script, float64 running sums of the vague [0] keys and [1] values [kv_head][dim]") != 0)
            goto done;
    }
    status = 0;
done:
    free(sk); free(tk); free(cnt); free(run); free(trun);
    return status;
}

/* Level 4: key and value of the probe positions (every vague position of
 * any head, or every probe_stride-th), as kvr_reconstruct gives them. */
static int write_reconstructions(vec_writer *w, const run_state *r, const kvr_cache *cache)
{
    const scenario *sc = r->sc;
    size_t D = (size_t)sc->head_dim, H = (size_t)sc->kv_heads, N = (size_t)r->n_tokens;
    char rel[VEC_PATH_MAX], tol[VEC_PATH_MAX], kind[VEC_PATH_MAX + 8];
    int32_t *probe = malloc(N * sizeof(int32_t));
    size_t P = 0, seen = 0;
    int status = 1;
    float *rec = NULL, *trec = NULL;
    if (!probe) {
        msg_error("vectors: out of memory");
        return 1;
    }
    for (size_t t = 0; t < N; t++) {
        int vague = 0;
        for (size_t h = 0; h < H; h++) {
            kvr_part p;
            if (kvr_part_of(cache, sc->layer, (int)h, (long)t, &p) == KVR_OK && p == KVR_PART_VAGUE)
                vague = 1;
        }
        if (vague && seen++ % (size_t)sc->probe_stride == 0)
            probe[P++] = (int32_t)t;
    }
    if (P == 0) {
        free(probe);
        return 0;
    }
    rec = malloc(2 * H * P * D * sizeof(float));
    trec = malloc(2 * H * P * D * sizeof(float));
    if (!rec || !trec) {
        msg_error("vectors: out of memory");
        goto done;
    }
    for (size_t h = 0; h < H; h++) {
        const ref_head *hd = kvr_cache_head(cache, sc->layer, (int)h);
        for (size_t j = 0; j < P; j++) {
            float *ko = rec + (h * P + j) * D, *vo = rec + ((H + h) * P + j) * D;
            float *tko = trec + (h * P + j) * D, *tvo = trec + ((H + h) * P + j) * D;
            if (kvr_reconstruct(cache, sc->layer, (int)h, probe[j], ko, vo) != KVR_OK
                || kvr_tol_reconstruct(hd, r->hk + h * N * D, r->hv + h * N * D, probe[j], tko, tvo) != KVR_OK) {
                msg_error("vectors: %s: %s", sc->name, kvr_last_error());
                goto done;
            }
        }
    }
    size_t s_p[1] = { P }, s_rec[4] = { 2, H, P, D };
    snprintf(rel, sizeof rel, "inputs/%s/probe_pos.npy", sc->name);
    if (vw_array(w, rel, KVR_NPY_I32, 1, s_p, probe, "input",
                 "level 6: positions to reconstruct after the script (vague in some kv head%s)",
                 sc->probe_stride > 1 ? "; every 8th such position" : "") != 0)
        goto done;
    snprintf(rel, sizeof rel, "expected/%s/reconstruct.npy", sc->name);
    snprintf(tol, sizeof tol, "tolerance/%s/reconstruct.npy", sc->name);
    snprintf(kind, sizeof kind, "tol:%s", tol);
    if (vw_array(w, tol, KVR_NPY_F32, 4, s_rec, trec, "tolerance", "tolerance of %s (0: exact part)", rel) != 0
        || vw_array(w, rel, KVR_NPY_F32, 4, s_rec, rec, kind,
                    "level 6 (spec 8): [0] key and [1] value [kv_head][probe][dim] of each probe position as "
                    "reconstruct gives it (the stored value where that head keeps it exact)") != 0)
        goto done;
    status = 0;
done:
    free(probe); free(rec); free(trec);
    return status;
}

static int write_scenario(vec_writer *w, const scenario *sc)
{
    run_state r;
    memset(&r, 0, sizeof r);
    r.sc = sc;
    r.n_ops = parse_script(sc->script, r.ops, (int)(sizeof r.ops / sizeof r.ops[0]));
    if (r.n_ops <= 0) {
        msg_error("vectors: scenario %s: bad script '%s'", sc->name, sc->script);
        return 1;
    }
    for (int o = 0; o < r.n_ops; o++) {
        if (r.ops[o].op != OP_ATTEND) r.n_tokens += r.ops[o].n;
        if (r.ops[o].op == OP_PREFILL) r.n_obs = r.ops[o].n_obs;
        if (r.ops[o].op == OP_ATTEND) r.n_attend++;
    }
    kvr_config cfg;
    kvr_config_paper(&cfg);
    cfg.sinks = sc->sinks; cfg.window = sc->window; cfg.candidates = sc->candidates;
    cfg.depth = sc->depth; cfg.width = sc->width; cfg.seed = UINT64_C(0x5EED0000) + sc->data_seed;
    cfg.rows = sc->rows; cfg.centre = sc->centre; cfg.shrink = sc->shrink;
    cfg.importance = sc->importance; cfg.obs_window = sc->obs_window; cfg.elem = sc->elem;
    cfg.vague = sc->vague; cfg.var_cap = sc->var_cap; cfg.revive = 0.0;
    cfg.pool = sc->pool; cfg.pool_kernel = sc->pool_kernel ? sc->pool_kernel : 5;
    cfg.store = sc->store;
    if (sc->kivi_bits > 0) {        /* spec 18.6: room for every token of the script */
        cfg.kivi_bits = sc->kivi_bits;
        cfg.kivi_group = sc->kivi_group;
        cfg.kivi_tokens = r.n_tokens - sc->sinks - sc->window;
    }
    cfg.tier_bits = sc->tier_bits;  /* spec 19: promotion off (tier_promote 0) but with a zero_step */
    cfg.tier_tokens = sc->tier_tokens;
    cfg.tier_promote = promote_of(&r);
    cfg.tier_balance = sc->balance;
    cfg.tier_rotate = sc->rotate;
    kvr_cache *cache = NULL;
    int status = 1;
    if (make_inputs(&r) != 0)
        goto done;
    if (kvr_cache_create(&cache, sc->layer + 1, sc->kv_heads, sc->kv_heads * sc->group,
                         sc->head_dim, &cfg, vec_backend) != KVR_OK) {
        msg_error("vectors: scenario %s: %s", sc->name, kvr_last_error());
        goto done;
    }
    if (run_script(&r, cache) != 0)
        goto done;

    size_t D = (size_t)sc->head_dim, H = (size_t)sc->kv_heads, Hq = H * (size_t)sc->group;
    size_t N = (size_t)r.n_tokens;
    char rel[VEC_PATH_MAX], tol[VEC_PATH_MAX], kind[VEC_PATH_MAX + 8];
    describe(w, &r);
    int32_t script[128 * 3];
    for (int o = 0; o < r.n_ops; o++) {
        script[o * 3] = r.ops[o].op; script[o * 3 + 1] = r.ops[o].n; script[o * 3 + 2] = r.ops[o].n_obs;
    }
    size_t s_script[2] = { (size_t)r.n_ops, 3 }, s_kv[3] = { N, H, D };
    size_t s_qo[3] = { (size_t)r.n_obs, Hq, D }, s_q[3] = { (size_t)r.n_attend, Hq, D };
    size_t s_parts[3] = { (size_t)r.n_ops, H, N };
    const char *nm = sc->name;
#define PATH(buf, fmt) snprintf(buf, sizeof buf, fmt, nm)
    PATH(rel, "inputs/%s/script.npy");
    if (vw_array(w, rel, KVR_NPY_I32, 2, s_script, script, "input",
                 "operations in order: (op, n, n_obs) with op 0 prefill of the next n tokens using "
                 "the n_obs queries of q_obs, 1 append of the next n tokens, 2 attend with the next "
                 "query of q (scores updated)") != 0)
        goto done;
    PATH(rel, "inputs/%s/k.npy");
    if (vw_array(w, rel, KVR_NPY_F32, 3, s_kv, r.k, "input",
                 "keys [position][kv_head][dim], %s %s (float32)", sc->raw ? "NOT representable in" :
                 "already representable in", kvr_elem_name(sc->elem)) != 0)
        goto done;
    PATH(rel, "inputs/%s/v.npy");
    if (vw_array(w, rel, KVR_NPY_F32, 3, s_kv, r.v, "input",
                 "values [position][kv_head][dim], %s %s (float32)", sc->raw ? "NOT representable in" :
                 "already representable in", kvr_elem_name(sc->elem)) != 0)
        goto done;
    if (r.n_obs > 0) {
        PATH(rel, "inputs/%s/q_obs.npy");
        if (vw_array(w, rel, KVR_NPY_F32, 3, s_qo, r.q_obs, "input",
                     "prefill observation queries [obs][q_head][dim] of the last n_obs prompt positions") != 0)
            goto done;
    }
    if (r.n_attend > 0) {
        PATH(rel, "inputs/%s/q.npy");
        if (vw_array(w, rel, KVR_NPY_F32, 3, s_q, r.q, "input",
                     "decode queries [attend step][q_head][dim]; q_head h*group+g uses kv_head h") != 0)
            goto done;
    }
    PATH(rel, "expected/%s/parts.npy");
    if (vw_array(w, rel, KVR_NPY_I32, 3, s_parts, r.parts, "exact",
                 "level 4 (spec 3, 6, 10): part of each position after each operation [op][kv_head][position]: "
                 "0 sink, 1 recent, 2 candidate, 3 vague, 4 dropped%s, -1 not appended yet",
                 sc->kivi_bits > 0 ? ", 5 quantized (KIVI's body, spec 18.6)"
                 : sc->tier_bits > 0 ? ", 5 quantized (the tier, spec 19)" : "") != 0)
        goto done;
    if (r.n_attend > 0) {
        PATH(rel, "expected/%s/attend.npy");
        PATH(tol, "tolerance/%s/attend.npy");
        snprintf(kind, sizeof kind, "tol:%s", tol);
        if (vw_array(w, tol, KVR_NPY_F32, 3, s_q, r.tol_out, "tolerance", "tolerance of %s", rel) != 0
            || vw_array(w, rel, KVR_NPY_F32, 3, s_q, r.out, kind,
                        "level 7 (spec %s): attention output [attend step][q_head][dim]",
                        sc->vague == KVR_VAGUE_MOMENT ? "17" : "11") != 0)
            goto done;
    }
    if (sc->store != KVR_STORE_ELEM || sc->kivi_bits > 0) {
        /* spec 18.2, 18.3, 18.6: the stored (dequantized) key and value of every
         * position after the script, bit-exact; 0 where dropped */
        size_t s_st[4] = { 2, H, N, D };
        float *st = calloc(2 * H * N * D, sizeof(float));
        if (!st) {
            msg_error("vectors: out of memory");
            goto done;
        }
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < N; t++)
                if (kvr_reconstruct(cache, sc->layer, (int)h, (long)t, st + (h * N + t) * D,
                                    st + ((H + h) * N + t) * D) != KVR_OK)
                    memset(st + (h * N + t) * D, 0, D * sizeof(float));
        PATH(rel, "expected/%s/stored.npy");
        int bad = vw_array(w, rel, KVR_NPY_F32, 4, s_st, st, "exact",
                           "level 2 (spec 18.2, 18.3): [0] key and [1] value [kv_head][position][dim] of every "
                           "position as stored after the script: fl(z + q s) of its %s codes (bit-exact); "
                           "0 where dropped", sc->kivi_bits > 0 ? "KIVI" : kvr_store_name(sc->store));
        free(st);
        if (bad)
            goto done;
    }
#undef PATH
    if (sc->depth > 0 && sc->width > 0 && write_sketch(w, &r, cache) != 0)
        goto done;
    if (write_reconstructions(w, &r, cache) != 0)
        goto done;
    status = 0;
done:
    kvr_cache_free(cache);
    run_free(&r);
    return status;
}

int vec_write_scripts(vec_writer *w)
{
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        msg_progress("vectors: scenario %s", scenarios[i].name);
        if (write_scenario(w, &scenarios[i]) != 0)
            return 1;
    }
    msg_progress_done();
    return 0;
}
