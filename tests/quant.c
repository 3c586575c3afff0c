/* quant.c: quantized storage (spec §18).
 *
 * The codes, zero points and scales of ref/quant.c are checked bit for bit
 * against an independent computation written here (float16 grid rounding in
 * float64 with frexp/ldexp/floor/ceil, round-half-even by hand, packing by
 * shifting a 64-bit word), on random vectors of many seeds and on
 * adversarial ones: exact ties, constant vectors, huge and tiny ranges,
 * large offsets.  The dequantization error is checked against the bound of
 * spec §18.4 over many seeds (misses counted, zero asserted), with a
 * negative control: half the bound is exceeded often, so the bound is not
 * vacuous. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "tolerance.h"

static const int all_bits[] = {2, 3, 4, 8};

/* The float16 grid at |v| (v != 0): the spacing of float16 values in the
 * binade of |v| (subnormal spacing 2^-24 below 2^-14). */
static double f16_ulp(double v)
{
    int e;
    frexp(fabs(v), &e);                 /* |v| in [2^(e-1), 2^e) */
    int expo = e - 1 < -14 ? -14 : e - 1;
    return ldexp(1.0, expo - 10);
}

/* Largest float16 value <= v (float64, exact); -Inf when none is finite. */
static double f16_floor(double v)
{
    if (v == 0.0)
        return 0.0;
    double r = v > 0 ? floor(v / f16_ulp(v)) * f16_ulp(v)
                     : -ceil(-v / f16_ulp(v)) * f16_ulp(v);
    if (r > 65504.0) r = 65504.0;
    if (r < -65504.0) r = -INFINITY;
    return r;
}

/* Smallest float16 value >= v > 0; +Inf above 65504. */
static double f16_ceil(double v)
{
    double r = ceil(v / f16_ulp(v)) * f16_ulp(v);
    return r > 65504.0 ? INFINITY : r;
}

/* Round half to even, by hand. */
static double rint_even(double t)
{
    double f = floor(t), d = t - f;
    if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0.0))
        return f + 1.0;
    return f;
}

/* The spec §18.2 computation, written independently: zero point, scale,
 * codes; returns 0 on success, 1 when the parameters overflow float16. */
static int indep_quant(const float *x, int n, int stride, int bits, double *z, double *s, unsigned *q)
{
    double lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        lo = fmin(lo, x[(size_t)i * stride]);
        hi = fmax(hi, x[(size_t)i * stride]);
    }
    int L = (1 << bits) - 1;
    *z = f16_floor(lo);
    if (isinf(*z))
        return 1;
    volatile float r = (float)hi - (float)*z;     /* the float32 operation fl(hi - z) */
    if (r == 0.0f) {
        *s = 0.0;
    } else {
        volatile float rl = r / (float)L;
        *s = f16_ceil(rl);
        if (isinf(*s))
            return 1;
    }
    for (int i = 0; i < n; i++) {
        if (*s == 0.0) { q[i] = 0; continue; }
        volatile float a = x[(size_t)i * stride] - (float)*z;  /* fl(x - z) */
        volatile float t = a / (float)*s;
        double c = rint_even(t);
        q[i] = c > L ? (unsigned)L : (unsigned)c;
    }
    return 0;
}

/* Pack codes into bytes by a 64-bit shift register, least significant first. */
static void indep_pack(const unsigned *q, int n, int bits, unsigned char *out, size_t nbytes)
{
    uint64_t acc = 0;
    int have = 0;
    size_t o = 0;
    memset(out, 0, nbytes);
    for (int i = 0; i < n; i++) {
        acc |= (uint64_t)q[i] << have;
        have += bits;
        while (have >= 8) { out[o++] = (unsigned char)(acc & 0xFF); acc >>= 8; have -= 8; }
    }
    if (have > 0)
        out[o++] = (unsigned char)acc;
    TU_EQ(o, nbytes);
}

/* Vectors where the directed roundings of z and s differ from rounding to
 * nearest: a port that rounded to nearest would fail on those (the
 * negative control of the bit-exact comparison). */
static long z_not_nearest, s_not_nearest;

/* Compare ref_quant_row with the independent computation on one vector. */
static void check_row(const float *x, int n, int bits)
{
    unsigned q[1024];
    unsigned char want[1024], got[1024];
    uint16_t zs[2] = {0xABCD, 0xABCD};
    double z, s;
    size_t nb = ref_quant_row_bytes((size_t)n, bits);
    TU_EQ(nb, ((size_t)n * bits + 7) / 8);
    int overflow = indep_quant(x, n, 1, bits, &z, &s, q);
    int status = ref_quant_row(x, (size_t)n, bits, got, zs);
    if (overflow) {
        TU_EQ(status, KVR_ERANGE);
        TU_OK(zs[0] == 0xABCD && zs[1] == 0xABCD);  /* nothing written */
        return;
    }
    TU_EQ(status, KVR_OK);
    TU_CHECK((double)kvr_f16_to_f32(zs[0]) == z && zs[0] != 0x8000u,
             "bits %d: zero point %04x (%a), expected %a", bits, zs[0], (double)kvr_f16_to_f32(zs[0]), z);
    TU_CHECK((double)kvr_f16_to_f32(zs[1]) == s && zs[1] != 0x8000u,
             "bits %d: scale %04x (%a), expected %a", bits, zs[1], (double)kvr_f16_to_f32(zs[1]), s);
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) { lo = fminf(lo, x[i]); hi = fmaxf(hi, x[i]); }
    z_not_nearest += (double)kvr_f16_to_f32(kvr_f32_to_f16(lo)) != z;
    if (s > 0) {
        float rl = (hi - (float)z) / (float)((1 << bits) - 1);
        s_not_nearest += (double)kvr_f16_to_f32(kvr_f32_to_f16(rl)) != s;
    }
    indep_pack(q, n, bits, want, nb);
    for (size_t i = 0; i < nb; i++)
        TU_CHECK(got[i] == want[i], "bits %d: code byte %zu is %02x, expected %02x", bits, i, got[i], want[i]);
    for (int i = 0; i < n; i++) {
        TU_EQ(ref_pack_get(got, (size_t)i, bits), q[i]);
        /* dequantization: one rounding of z + q s, exact in float64 (both
         * terms are multiples of 2^-24 below 2^24) */
        volatile float d = (float)(z + (double)q[i] * s);
        TU_CHECK(ref_dequant(q[i], zs[0], zs[1]) == d, "bits %d: deq of code %u", bits, q[i]);
    }
}

START_TEST(test_codes_random)
{
    tu_rng r;
    float x[256];
    for (uint64_t seed = 1; seed <= 400; seed++) {
        tu_seed(&r, seed);
        int n = tu_int(&r, 1, 256);
        double mean = (tu_unif(&r) - 0.5) * 20.0, sd = ldexp(1.0, tu_int(&r, -20, 8));
        tu_fill(&r, x, (size_t)n, mean, sd);
        for (size_t b = 0; b < sizeof all_bits / sizeof all_bits[0]; b++)
            check_row(x, n, all_bits[b]);
    }
    /* about half of the random vectors have a zero point, and about half a
     * scale, that rounding to nearest would get wrong */
    printf("quant: %ld zero points and %ld scales of 1600 differ from rounding to nearest\n",
           z_not_nearest, s_not_nearest);
    TU_OK(z_not_nearest > 400 && s_not_nearest > 400);
}
END_TEST

/* Exact ties: z and s chosen as float16 values so that x = z + (k + 1/2) s
 * is exact and t is exactly k + 1/2; rint goes to the even neighbour. */
START_TEST(test_codes_ties)
{
    for (size_t b = 0; b < sizeof all_bits / sizeof all_bits[0]; b++) {
        int bits = all_bits[b], L = (1 << bits) - 1;
        float s = 0.0625f, x[520];
        int n = 0;
        x[n++] = 0.0f;                            /* lo = z = 0 */
        x[n++] = (float)L * s;                    /* hi: r / L = s exactly */
        for (int k = 0; k < L; k++)
            x[n++] = ((float)k + 0.5f) * s;
        check_row(x, n, bits);
        unsigned char codes[520];
        uint16_t zs[2];
        TU_EQ(ref_quant_row(x, (size_t)n, bits, codes, zs), KVR_OK);
        for (int k = 0; k < L; k++) {
            unsigned c = ref_pack_get(codes, (size_t)(k + 2), bits);
            TU_CHECK(c == (unsigned)(k % 2 == 0 ? k : k + 1), "bits %d: tie %d.5 coded %u", bits, k, c);
        }
    }
}
END_TEST

START_TEST(test_codes_adversarial)
{
    float x[64];
    for (size_t b = 0; b < sizeof all_bits / sizeof all_bits[0]; b++) {
        int bits = all_bits[b];
        /* constant vectors: float16-representable (s = 0, exact) and not */
        const float consts[] = {0.0f, -0.0f, 1.0f, -3.5f, 0.1f, 1000.3f, -65504.0f, 6e-8f, 65504.0f, 70000.0f};
        for (size_t c = 0; c < sizeof consts / sizeof consts[0]; c++) {
            for (int i = 0; i < 64; i++) x[i] = consts[c];
            check_row(x, 64, bits);
        }
        /* huge ranges (and the overflows: lo < -65504, scale > 65504) */
        const float edges[][2] = {{-60000.0f, 60000.0f}, {-65504.0f, 65504.0f}, {-65505.0f, 0.0f},
                                  {-70000.0f, 1.0f}, {0.0f, 3e5f}, {0.0f, 1.6e7f}, {0.0f, 1.7e7f},
                                  {1e-30f, 2e-30f}, {-1e-7f, 1e-7f}, {1000.25f, 1000.3f}, {-0.0f, 1e-45f}};
        for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
            for (int i = 0; i < 64; i++)
                x[i] = edges[e][0] + (edges[e][1] - edges[e][0]) * (float)i / 63.0f;
            x[63] = edges[e][1];
            check_row(x, 64, bits);
        }
        /* one element */
        x[0] = 0.3f;
        check_row(x, 1, bits);
    }
    /* the overflow rules themselves */
    uint16_t z, s;
    x[0] = -70000.0f; x[1] = 0.0f;
    TU_EQ(ref_quant_params(x, 2, 1, 4, &z, &s), KVR_ERANGE);
    x[0] = 0.0f; x[1] = 3e5f;
    TU_EQ(ref_quant_params(x, 2, 1, 2, &z, &s), KVR_ERANGE);   /* 1e5 > 65504 */
    TU_EQ(ref_quant_params(x, 2, 1, 8, &z, &s), KVR_OK);       /* 1176 */
}
END_TEST

/* Strided vectors (a KIVI key channel over a group) give the same
 * parameters as the gathered vector. */
START_TEST(test_params_strided)
{
    tu_rng r;
    float m[32][8], col[32];
    for (uint64_t seed = 1; seed <= 50; seed++) {
        tu_seed(&r, seed);
        tu_fill(&r, &m[0][0], 32 * 8, 0.0, 2.0);
        for (int c = 0; c < 8; c++) {
            for (int i = 0; i < 32; i++) col[i] = m[i][c];
            uint16_t z1, s1, z2, s2;
            TU_EQ(ref_quant_params(&m[0][c], 32, 8, 2, &z1, &s1), KVR_OK);
            TU_EQ(ref_quant_params(col, 32, 1, 2, &z2, &s2), KVR_OK);
            TU_OK(z1 == z2 && s1 == s2);
            double z, s;
            unsigned q[32];
            TU_EQ(indep_quant(&m[0][c], 32, 8, 2, &z, &s, q), 0);
            TU_OK((double)kvr_f16_to_f32(z1) == z && (double)kvr_f16_to_f32(s1) == s);
            for (int i = 0; i < 32; i++)
                TU_EQ(ref_quant_code(m[i][c], z1, s1, 2), q[i]);
        }
    }
}
END_TEST

/* spec §18.4: |x - deq| <= B for every element over many seeds and scales;
 * half of B is exceeded on a good share of elements (the bound is tight to
 * within a factor 2, not vacuous). */
START_TEST(test_error_bound)
{
    tu_rng r;
    float x[128], y[128];
    unsigned char codes[128];
    uint16_t zs[2];
    for (size_t b = 0; b < sizeof all_bits / sizeof all_bits[0]; b++) {
        int bits = all_bits[b];
        long misses = 0, over_half = 0, total = 0;
        double worst = 0.0;
        for (uint64_t seed = 1; seed <= 2000; seed++) {
            tu_seed(&r, seed * 7919 + (uint64_t)bits);
            int n = tu_int(&r, 1, 128);
            double mean = (tu_unif(&r) - 0.5) * ldexp(1.0, tu_int(&r, -10, 12));
            double sd = ldexp(1.0, tu_int(&r, -24, 10));
            tu_fill(&r, x, (size_t)n, mean, sd);
            TU_EQ(ref_quant_row(x, (size_t)n, bits, codes, zs), KVR_OK);
            ref_dequant_row(codes, zs, (size_t)n, bits, y);
            double B = ref_quant_bound(zs[0], zs[1], bits);
            for (int i = 0; i < n; i++) {
                double err = fabs((double)x[i] - (double)y[i]);
                misses += err > B;
                over_half += err > B / 2;
                total++;
                if (B > 0 && err / B > worst) worst = err / B;
            }
        }
        printf("quant: %d bits: %ld elements, %ld above the bound, %ld above half of it, worst %.3f of the bound\n",
               bits, total, misses, over_half, worst);
        TU_CHECK(misses == 0, "%d bits: %ld of %ld elements above the bound of spec §18.4", bits, misses, total);
        TU_CHECK(over_half > total / 5, "%d bits: only %ld of %ld elements above half the bound: vacuous?",
                 bits, over_half, total);
    }
}
END_TEST

/* A constant float16-representable vector is reproduced exactly (s = 0). */
START_TEST(test_degenerate_exact)
{
    float x[16], y[16];
    unsigned char codes[16];
    uint16_t zs[2];
    for (int i = 0; i < 16; i++) x[i] = -2.75f;
    TU_EQ(ref_quant_row(x, 16, 4, codes, zs), KVR_OK);
    TU_EQ(zs[1], 0);
    ref_dequant_row(codes, zs, 16, 4, y);
    for (int i = 0; i < 16; i++)
        TU_OK(y[i] == x[i]);
    TU_OK(ref_quant_bound(zs[0], zs[1], 4) == 0.0);
}
END_TEST

/* ---- the planner (spec §9.2 with §18.5, §18.6) ----------------------------- */

/* The methods of the sweeps: every listed method, kivi with its levers, and
 * every eviction and kvreviver method with store=q8 and store=q4. */
static const char *sweep_methods[] = {
    "kivi", "kivi/bits=3", "kivi/bits=4", "kivi/group=16", "kivi/residual=64", "kivi/bits=4/group=128",
    "streaming/store=q8", "streaming/store=q4", "h2o/store=q8", "h2o/store=q4",
    "snapkv/store=q8", "snapkv/store=q4", "tova/store=q8", "tova/store=q4",
    "kvreviver/store=q8", "kvreviver/store=q4", "kvreviver-paper/store=q4", "h2o/store=elem",
    "kvreviver-moment/store=q4", "kvreviver/bits=2", "kvreviver/bits=1/tier=0.75", "kvreviver-paper/bits=4",
};

/* Bytes of a head cache of this configuration counted here from spec §9.1,
 * §18.5, §18.6 and §19.6, independently of lib/budget.c. */
static size_t indep_head_bytes(const kvr_config *c, size_t D)
{
    size_t e = c->elem == KVR_F32 ? 4 : 2;
    int b = c->store == KVR_STORE_Q8 ? 8 : c->store == KVR_STORE_Q4 ? 4 : 0;
    size_t kv = b ? 2 * ((D * (size_t)b + 7) / 8) + 2 * 2 * 2 : 2 * D * e;
    int scores = c->importance != KVR_IMP_NONE && c->candidates > 0;
    int sketch = c->depth > 0 && c->width > 0;
    size_t bytes = ((size_t)c->sinks + (size_t)c->window) * kv + (scores ? (size_t)c->window * 4 : 0)
                 + (size_t)c->candidates * (kv + 8);
    if (sketch)
        bytes += (size_t)c->depth * c->width * (8 * D + 8) + (c->centre ? 16 * D : 0);
    if (c->tier_bits > 0)                         /* spec §19.6: position, score, K and V codes + zero, scale */
        bytes += (size_t)c->tier_tokens * (4 + 4 + 2 * ((D * (size_t)c->tier_bits + 7) / 8 + 4));
    if (c->kivi_bits) {
        size_t Q = (size_t)c->kivi_tokens, G = (size_t)c->kivi_group, row = (D * c->kivi_bits + 7) / 8;
        size_t groups = Q / G;                    /* complete groups at capacity */
        bytes += (Q < G ? Q : G) * D * e;         /* fill buffer */
        bytes += groups * G * row + groups * D * 2 * 2;   /* key codes, f16 zero and scale per channel */
        bytes += Q * row + Q * 2 * 2;             /* value codes, f16 zero and scale per token */
    }
    return bytes;
}

/* Every method, ratio 0.05 .. 0.5, context, head_dim and full-cache type:
 * the plan holds at most floor(ratio * full) bytes counted at capacity (and
 * the independent count agrees), passes kvr_config_check, and for kivi
 * keeps every token; a refusal is KVR_EBUDGET with cfg unchanged. */
START_TEST(test_plan_sweep)
{
    static const double ratios[] = {0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5};
    static const long contexts[] = {1, 2, 7, 100, 1000, 4096, 32768};
    static const int dims[] = {1, 8, 64, 128};
    long ok = 0, refused = 0;
    int n_listed = 0;
    while (kvr_method_name(n_listed)) n_listed++;
    int n_methods = n_listed + (int)(sizeof sweep_methods / sizeof sweep_methods[0]);
    for (int m = 0; m < n_methods; m++)
        for (size_t ri = 0; ri < sizeof ratios / sizeof ratios[0]; ri++)
            for (size_t ci = 0; ci < sizeof contexts / sizeof contexts[0]; ci++)
                for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
                    for (int e = 0; e < 3; e++) {
                        const char *name = m < n_listed ? kvr_method_name(m) : sweep_methods[m - n_listed];
                        double ratio = strcmp(name, "full") ? ratios[ri] : 1.0;
                        long n = contexts[ci];
                        int D = dims[di];
                        kvr_config cfg, before;
                        memset(&cfg, 0x5A, sizeof cfg);
                        before = cfg;
                        int status = kvr_method_config(name, ratios[ri], n, D, (kvr_elem)e, &cfg);
                        if (status != KVR_OK) {
                            TU_CHECK(status == KVR_EBUDGET, "%s %g %ld %d: %s", name, ratio, n, D, kvr_last_error());
                            TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
                            refused++;
                            continue;
                        }
                        ok++;
                        size_t budget = (size_t)floor(ratio * (double)kvr_full_bytes(n, D, (kvr_elem)e));
                        size_t bytes = kvr_head_bytes(&cfg, D);
                        TU_CHECK(bytes <= budget, "%s ratio %g context %ld D %d %s: %zu bytes > %zu",
                                 name, ratio, n, D, kvr_elem_name((kvr_elem)e), bytes, budget);
                        TU_CHECK(bytes == indep_head_bytes(&cfg, (size_t)D), "%s: %zu bytes, counted %zu",
                                 name, bytes, indep_head_bytes(&cfg, (size_t)D));
                        TU_EQ(kvr_config_check(&cfg, D), KVR_OK);
                        TU_EQ(cfg.elem, e);
                        if (cfg.kivi_bits) {
                            TU_EQ((long)cfg.sinks + cfg.window + cfg.kivi_tokens, n);   /* every token kept */
                            TU_EQ(cfg.candidates + cfg.depth + cfg.width, 0);
                            TU_EQ(cfg.store, KVR_STORE_ELEM);
                        } else {
                            TU_OK((long)cfg.sinks + cfg.window + cfg.candidates <= n);
                        }
                        if (strstr(name, "store=q8")) TU_EQ(cfg.store, KVR_STORE_Q8);
                        if (strstr(name, "store=q4")) TU_EQ(cfg.store, KVR_STORE_Q4);
                    }
    printf("quant: plan sweep: %ld plans, %ld refused\n", ok, refused);
    TU_OK(ok > 5000 && refused > 100);
}
END_TEST

/* KIVI's residual is the largest that fits, by brute force over every R,
 * and the group is the first of 32, 64, 128 that fits any R. */
START_TEST(test_kivi_largest_residual)
{
    static const char *names[] = {"kivi", "kivi/bits=3", "kivi/bits=4", "kivi/group=5"};
    long checked = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (long n = 1; n <= 400; n += 3)
            for (int D = 1; D <= 16; D += 5)
                for (int e = 0; e < 2; e++)
                    for (double ratio = 0.05; ratio <= 1.0; ratio += 0.0875) {
                        kvr_config cfg;
                        int status = kvr_method_config(names[k], ratio, n, D, (kvr_elem)e, &cfg);
                        size_t budget = (size_t)floor(ratio * (double)kvr_full_bytes(n, D, (kvr_elem)e));
                        kvr_config t;
                        kvr_method_config("kivi", 1.0, n, D, (kvr_elem)e, &t);     /* a valid template */
                        t.kivi_bits = k == 1 ? 3 : k == 2 ? 4 : 2;
                        long S = 4 < n - 1 ? 4 : n - 1, M = n - S, best = 0, bestG = 0;
                        const long tries[3] = {32, 64, 128};
                        for (int g = 0; g < (k == 3 ? 1 : 3) && !best; g++) {
                            t.kivi_group = (int)(k == 3 ? 5 : tries[g]);
                            for (long R = M; R >= 1 && !best; R--) {
                                t.sinks = (int)S;
                                t.window = (int)R;
                                t.kivi_tokens = (int)(M - R);
                                if (indep_head_bytes(&t, (size_t)D) <= budget) { best = R; bestG = t.kivi_group; }
                            }
                        }
                        if (!best) {
                            TU_CHECK(status == KVR_EBUDGET, "%s n %ld D %d: planned though nothing fits", names[k], n, D);
                            continue;
                        }
                        TU_CHECK(status == KVR_OK, "%s n %ld D %d ratio %g: refused, R = %ld fits", names[k], n, D, ratio, best);
                        TU_CHECK(cfg.window == best && cfg.kivi_group == bestG,
                                 "%s n %ld D %d ratio %g: R %d G %d, the largest is R %ld G %ld",
                                 names[k], n, D, ratio, cfg.window, cfg.kivi_group, best, bestG);
                        checked++;
                    }
    TU_OK(checked > 1000);
}
END_TEST

/* The levers: store= and obs= on eviction and kvreviver methods, bits=,
 * group=, residual= on kivi; anything else is KVR_EINVAL with cfg unchanged. */
START_TEST(test_quant_levers)
{
    enum { N = 4096, D = 64 };
    kvr_config cfg, before;
    TU_EQ(kvr_method_config("h2o/store=q4", 0.1, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.store, KVR_STORE_Q4);
    TU_EQ(kvr_method_config("kvreviver/share=0.2/store=q8", 0.1, N, D, KVR_F16, &cfg), KVR_OK);
    TU_EQ(cfg.store, KVR_STORE_Q8);
    TU_EQ(kvr_method_config("kivi/bits=4/group=64/residual=100", 0.5, N, D, KVR_F32, &cfg), KVR_OK);
    TU_OK(cfg.kivi_bits == 4 && cfg.kivi_group == 64 && cfg.window == 100 && cfg.kivi_tokens == N - 4 - 100);
    /* obs=: the observation window, and SnapKV's window with it (spec §6.2, §9.2) */
    TU_EQ(kvr_method_config("snapkv/obs=16", 0.1, N, D, KVR_F32, &cfg), KVR_OK);
    TU_OK(cfg.obs_window == 16 && cfg.window == 16);
    TU_EQ(kvr_method_config("h2o/obs=8/store=q4", 0.1, N, D, KVR_F32, &cfg), KVR_OK);
    TU_OK(cfg.obs_window == 8 && cfg.store == KVR_STORE_Q4);
    TU_EQ(kvr_method_config("kvreviver/obs=64", 0.1, N, D, KVR_F16, &cfg), KVR_OK);
    TU_EQ(cfg.obs_window, 64);
    TU_EQ(kvr_method_config("kivi", 0.1, N, D, KVR_F32, &cfg), KVR_OK);
    TU_OK(cfg.kivi_bits == 2 && cfg.kivi_group == 32);
    before = cfg;
    static const char *bad[] = {
        "h2o/store=q3", "h2o/store=", "h2o/store=f16", "kivi/bits=5", "kivi/bits=8", "kivi/bits=1", "kivi/bits=2.5",
        "kivi/store=q4", "h2o/bits=2", "kvreviver/group=32", "full/store=q4", "kivi/share=0.1",
        "kivi/group=0", "kivi/residual=0", "snapkv/depth=2", "kivi/group=-3",
        "snapkv/obs=0", "snapkv/obs=1.5", "kivi/obs=8", "full/obs=8", "tova/obs=70000",
        /* spec §18.8: a body of 2 to 4 bits, on the kvreviver methods, exact parts in elem, no tier */
        "kvreviver/body=1", "kvreviver/body=5", "kvreviver/body=two", "h2o/body=2", "kivi/body=2",
        "kvreviver/body=2/store=q4", "kvreviver/body=2/bits=4", "kvreviver/body=3/depth=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kvr_method_config(bad[i], 0.5, N, D, KVR_F32, &cfg) != KVR_EINVAL)
            ck_abort_msg("'%s' was accepted", bad[i]);
        TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    }
    /* refusals name KIVI and the budget */
    TU_EQ(kvr_method_config("kivi", 0.1, N, D, KVR_F16, &cfg), KVR_EBUDGET);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "kivi"));
    TU_EQ(kvr_method_config("kivi/residual=1000", 0.2, N, D, KVR_F32, &cfg), KVR_EBUDGET);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "residual of 1000"));
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    /* spec §18.8: the candidates are body positions; without candidates it is KIVI */
    TU_EQ(kvr_method_config("kvreviver/body=2", 0.5, N, D, KVR_F32, &cfg), KVR_OK);
    kvr_config t = cfg;
    t.candidates = t.kivi_tokens + 1;
    TU_EQ(kvr_config_check(&t, D), KVR_EINVAL);
    t.candidates = t.kivi_tokens;
    TU_EQ(kvr_config_check(&t, D), KVR_OK);
    TU_EQ(kvr_method_config("kvreviver/body=2/body=0", 0.5, N, D, KVR_F32, &t), KVR_OK);
    TU_OK(t.kivi_bits == 0 && t.tier_bits == 0 && t.depth == 0);   /* the body's levers stay undone */
    cfg = before;
    /* names */
    kvr_store st = KVR_STORE_Q8;
    TU_EQ(kvr_store_parse("q4", &st), KVR_OK);
    TU_EQ(st, KVR_STORE_Q4);
    TU_EQ(kvr_store_parse("q2", &st), KVR_EINVAL);
    TU_EQ(st, KVR_STORE_Q4);
    TU_OK(!strcmp(kvr_store_name(KVR_STORE_Q8), "q8") && kvr_store_bits(KVR_STORE_Q4) == 4
          && kvr_store_bits(KVR_STORE_ELEM) == 0);
}
END_TEST

/* ---- caches with quantized storage (spec §18.1, §18.6) -------------------- */

/* The value the spec gives a stored vector x[n] (rounded to elem): the
 * dequantized codes of the independent computation. */
static void indep_deq(const float *x, int n, int stride, int bits, float *out, int out_stride)
{
    double z, s;
    unsigned q[1024];
    TU_EQ(indep_quant(x, n, stride, bits, &z, &s, q), 0);
    for (int i = 0; i < n; i++)
        out[(size_t)i * out_stride] = (float)(z + (double)q[i] * s);
}

/* An eviction or kvreviver method with store=q8 or q4: every exact
 * position reads back as its own per-token quantization of the rounded
 * input, bit for bit, however often it moved between parts; the parts and
 * invariants hold; attention agrees with float64 attention over what
 * kvr_reconstruct gives. */
START_TEST(test_cache_store)
{
    static const char *names[] = {"h2o/store=q4", "snapkv/store=q8", "streaming/store=q4", "tova/store=q8",
                                  "kvreviver/store=q4", "kvreviver-paper/store=q8"};
    enum { N = 240, H = 2, D = 24 };
    const char *name = names[_i % 6];
    kvr_elem elem = (kvr_elem)(_i % 3);
    int bits = strstr(name, "q8") ? 8 : 4;
    kvr_config cfg;
    TU_EQ(kvr_method_config(name, 0.1, N, D, elem, &cfg), KVR_OK);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, 2 * H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N * H * D], v[N * H * D], q[2 * H * D], out[2 * H * D];
    tu_rng r;
    tu_seed(&r, 100 + (uint64_t)_i);
    tu_fill(&r, k, sizeof k / sizeof(float), 0.3, 1.5);
    tu_fill(&r, v, sizeof v / sizeof(float), -0.2, 1.0);
    for (size_t i = 0; i < sizeof k / sizeof(float); i++) {
        k[i] = kvr_elem_round(elem, k[i]);
        v[i] = kvr_elem_round(elem, v[i]);
    }
    long n = 0, exact_checked = 0;
    if (_i % 2) {                                 /* a prefill first: placed parts are quantized too */
        static float q_obs[32 * 2 * H * D];
        tu_fill(&r, q_obs, sizeof q_obs / sizeof(float), 0, 1);
        TU_EQ(kvr_prefill(c, 0, 100, k, v, 32, q_obs), KVR_OK);
        n = 100;
    }
    while (n < N) {
        int step = n < 50 ? 1 : tu_int(&r, 1, 20);
        if (n + step > N) step = (int)(N - n);
        TU_EQ(kvr_append(c, 0, step, k + (size_t)n * H * D, v + (size_t)n * H * D), KVR_OK);
        n += step;
        tu_fill(&r, q, 2 * H * D, 0, 1);
        TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
        tu_assert_heads_ok(c);
        tu_assert_parts(c, 0);
        if (cfg.vague == KVR_VAGUE_RECONSTRUCT || cfg.depth * cfg.width == 0)
            tu_assert_attention(c, 0, q, out);   /* the moment route attends to moments, not reconstructions */
        for (int h = 0; h < H; h++)
            for (long p = 0; p < n; p++) {
                kvr_part part;
                TU_EQ(kvr_part_of(c, 0, h, p, &part), KVR_OK);
                if (part != KVR_PART_SINK && part != KVR_PART_RECENT && part != KVR_PART_CANDIDATE)
                    continue;
                float rk[D], rv[D], wk[D], wv[D];
                TU_EQ(kvr_reconstruct(c, 0, h, p, rk, rv), KVR_OK);
                indep_deq(k + ((size_t)p * H + h) * D, D, 1, bits, wk, 1);
                indep_deq(v + ((size_t)p * H + h) * D, D, 1, bits, wv, 1);
                for (int i = 0; i < D; i++)
                    TU_CHECK(rk[i] == wk[i] && rv[i] == wv[i], "%s head %d position %ld (%s) coordinate %d: "
                             "%a %a, expected %a %a", name, h, p, kvr_part_name(part), i, rk[i], rv[i], wk[i], wv[i]);
                exact_checked++;
            }
    }
    TU_OK(exact_checked > 200);
    size_t held, full;
    TU_EQ(kvr_bytes(c, &held, &full), KVR_OK);
    TU_OK(held <= (size_t)H * (size_t)floor(0.1 * (double)kvr_full_bytes(N, D, elem)));
    kvr_cache_free(c);
}
END_TEST

/* kivi: sinks and the residual are the rounded inputs; a body value is its
 * per-token quantization; a body key is its channel's quantization over its
 * group once the group is complete, and exact while it fills.  Past the
 * capacity an append is KVR_ESTATE and changes nothing; prefill gives the
 * same cache as appending. */
START_TEST(test_cache_kivi)
{
    enum { N = 90, H = 2, D = 12 };
    static const char *names[] = {"kivi/group=4/residual=3", "kivi/bits=3/group=7/residual=10", "kivi/bits=4/group=32"};
    const char *name = names[_i % 3];
    kvr_elem elem = (kvr_elem)(_i % 3 == 2 ? 1 : _i % 2);
    kvr_config cfg;
    TU_EQ(kvr_method_config(name, 0.6, N, D, elem, &cfg), KVR_OK);
    int bits = cfg.kivi_bits, G = cfg.kivi_group, S = cfg.sinks, R = cfg.window;
    kvr_cache *c, *p;
    TU_EQ(kvr_cache_create(&c, 1, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[(N + 1) * H * D], v[(N + 1) * H * D], q[H * D], out[H * D];
    tu_rng r;
    tu_seed(&r, 300 + (uint64_t)_i);
    tu_fill(&r, k, sizeof k / sizeof(float), 0.5, 2.0);
    tu_fill(&r, v, sizeof v / sizeof(float), 0.0, 1.0);
    for (size_t i = 0; i < sizeof k / sizeof(float); i++) {
        k[i] = kvr_elem_round(elem, k[i]);
        v[i] = kvr_elem_round(elem, v[i]);
    }
    for (long n = 1; n <= N; n++) {
        TU_EQ(kvr_append(c, 0, 1, k + (size_t)(n - 1) * H * D, v + (size_t)(n - 1) * H * D), KVR_OK);
        tu_assert_heads_ok(c);
        tu_assert_parts(c, 0);
        long body = n - S - R > 0 ? n - S - R : 0;
        for (int h = 0; h < H; h++)
            for (long pos = 0; pos < n; pos++) {
                float rk[D], rv[D], wk[D], wv[D];
                const float *xk = k + ((size_t)pos * H + h) * D, *xv = v + ((size_t)pos * H + h) * D;
                TU_EQ(kvr_reconstruct(c, 0, h, pos, rk, rv), KVR_OK);
                memcpy(wk, xk, sizeof wk);
                memcpy(wv, xv, sizeof wv);
                if (pos >= S && pos < n - R) {                    /* the body */
                    long j = pos - S, g = j / G;
                    indep_deq(xv, D, 1, bits, wv, 1);
                    if ((g + 1) * G <= body)                      /* complete group: per channel */
                        for (int i = 0; i < D; i++) {
                            float col[256];
                            for (int u = 0; u < G; u++)
                                col[u] = k[((size_t)(S + g * G + u) * H + h) * D + i];
                            float dq[256];
                            indep_deq(col, G, 1, bits, dq, 1);
                            wk[i] = dq[j - g * G];
                        }
                }
                for (int i = 0; i < D; i++)
                    TU_CHECK(rk[i] == wk[i] && rv[i] == wv[i], "%s n %ld head %d position %ld coordinate %d: %a %a, expected %a %a",
                             name, n, h, pos, i, rk[i], rv[i], wk[i], wv[i]);
            }
        tu_fill(&r, q, H * D, 0, 1);
        TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
        tu_assert_attention(c, 0, q, out);
    }
    /* full: one more token is refused and nothing changes */
    tu_snap *snap = tu_snap_take(c);
    TU_EQ(kvr_append(c, 0, 1, k + (size_t)N * H * D, v + (size_t)N * H * D), KVR_ESTATE);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "capacity"));
    TU_ASSERT_UNCHANGED(snap, c);
    tu_snap_free(snap);
    /* prefill of the same tokens gives the same cache */
    TU_EQ(kvr_cache_create(&p, 1, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    TU_EQ(kvr_prefill(p, 0, N + 1, k, v, 0, NULL), KVR_ESTATE);
    TU_EQ(kvr_prefill(p, 0, N, k, v, 0, NULL), KVR_OK);
    char why[256] = "";
    TU_CHECK(tu_cache_same(c, p, why, sizeof why), "prefill differs from appending: %s", why);
    kvr_cache_free(p);
    kvr_cache_free(c);
}
END_TEST

/* Head h of a cache with candidates over a KIVI body (c) against the plain
 * KIVI cache fed the same tokens (k0), over its first n positions: a
 * candidate lies in the body and reads as the rounded input (k, v
 * [n][H][D]); every other position has k0's part and k0's stored key and
 * value, bit for bit.  Returns the head's candidate count. */
static long body_check(const kvr_cache *c, const kvr_cache *k0, int h, long n, const float *k, const float *v,
                       const kvr_config *cfg, const char *name)
{
    int H, D;
    int L, Hq;
    TU_EQ(kvr_cache_dims(c, &L, &H, &Hq, &D), KVR_OK);
    TU_OK(D <= 256);
    long n_cand = 0;
    for (long pos = 0; pos < n; pos++) {
        float rk[256], rv[256], wk[256], wv[256];
        kvr_part part;
        TU_EQ(kvr_part_of(c, 0, h, pos, &part), KVR_OK);
        TU_EQ(kvr_reconstruct(c, 0, h, pos, rk, rv), KVR_OK);
        if (part == KVR_PART_CANDIDATE) {
            TU_OK(pos >= cfg->sinks && pos < n - cfg->window);
            memcpy(wk, k + ((size_t)pos * H + h) * D, (size_t)D * sizeof(float));
            memcpy(wv, v + ((size_t)pos * H + h) * D, (size_t)D * sizeof(float));
            n_cand++;
        } else {
            kvr_part p0;
            TU_EQ(kvr_part_of(k0, 0, h, pos, &p0), KVR_OK);
            TU_EQ(part, p0);
            TU_EQ(kvr_reconstruct(k0, 0, h, pos, wk, wv), KVR_OK);
        }
        for (int i = 0; i < D; i++)
            TU_CHECK(rk[i] == wk[i] && rv[i] == wv[i], "%s n %ld head %d position %ld coordinate %d: %a %a, expected %a %a",
                     name, n, h, pos, i, rk[i], rv[i], wk[i], wv[i]);
    }
    return n_cand;
}

/* spec §18.8: candidates over a KIVI body.  Fed the same stream (appends
 * with attention between them, so H2O's scores move the candidates), the
 * body is bit for bit a plain KIVI cache's with the same sinks, window,
 * group and capacity: every body position that is not a candidate
 * reconstructs as the KIVI cache's; a candidate is the rounded input; the
 * parts are the sinks, the window, at most C candidates and the body; the
 * invariants hold after every append.  Prefill of the same tokens gives the
 * same body as a prefilled KIVI cache. */
START_TEST(test_body_is_kivi)
{
    enum { N = 120, H = 2, D = 12 };
    static const char *names[] = {"kvreviver/body=2", "kvreviver/body=3/recent=0.3", "kvreviver/body=4/recent=0.5"};
    const char *name = names[_i % 3];
    kvr_elem elem = (kvr_elem)(_i % 2);
    kvr_config cfg, kv;
    TU_CHECK(kvr_method_config(name, 0.6, N, D, elem, &cfg) == KVR_OK, "%s: %s", name, kvr_last_error());
    TU_OK(cfg.kivi_bits > 0 && cfg.candidates >= 1 && cfg.tier_bits == 0 && cfg.depth == 0);
    TU_EQ((long)cfg.sinks + cfg.window + cfg.kivi_tokens, N);
    kv = cfg;                                     /* the plain KIVI cache of the same body */
    kv.candidates = 0;
    kv.importance = KVR_IMP_NONE;
    TU_EQ(kvr_config_check(&kv, D), KVR_OK);
    kvr_cache *c, *k0;
    TU_EQ(kvr_cache_create(&c, 1, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    TU_EQ(kvr_cache_create(&k0, 1, H, H, D, &kv, KVR_BACKEND_REF), KVR_OK);
    static float k[N * H * D], v[N * H * D], q[H * D], out[H * D];
    tu_rng r;
    tu_seed(&r, 1800 + (uint64_t)_i);
    tu_fill(&r, k, sizeof k / sizeof(float), 0.5, 2.0);
    tu_fill(&r, v, sizeof v / sizeof(float), 0.0, 1.0);
    for (size_t i = 0; i < sizeof k / sizeof(float); i++) {
        k[i] = kvr_elem_round(elem, k[i]);
        v[i] = kvr_elem_round(elem, v[i]);
    }
    long seen_cand = 0;
    for (long n = 1; n <= N; n++) {
        const float *kn = k + (size_t)(n - 1) * H * D, *vn = v + (size_t)(n - 1) * H * D;
        TU_EQ(kvr_append(c, 0, 1, kn, vn), KVR_OK);
        TU_EQ(kvr_append(k0, 0, 1, kn, vn), KVR_OK);
        tu_assert_heads_ok(c);
        tu_assert_parts(c, 0);
        for (int h = 0; h < H; h++) {
            long n_cand = body_check(c, k0, h, n, k, v, &cfg, name);
            TU_OK(n_cand <= cfg.candidates);
            seen_cand += n_cand;
        }
        tu_fill(&r, q, H * D, 0, 1);
        TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
        tu_assert_attention(c, 0, q, out);
    }
    TU_OK(seen_cand > 0);
    /* prefill: the same body as KIVI's prefill, the candidates exact */
    kvr_cache *p, *p0;
    TU_EQ(kvr_cache_create(&p, 1, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    TU_EQ(kvr_cache_create(&p0, 1, H, H, D, &kv, KVR_BACKEND_REF), KVR_OK);
    static float pq[N * H * D];
    tu_fill(&r, pq, sizeof pq / sizeof(float), 0, 1);
    TU_EQ(kvr_prefill(p, 0, N, k, v, N, pq), KVR_OK);
    TU_EQ(kvr_prefill(p0, 0, N, k, v, 0, NULL), KVR_OK);
    tu_assert_heads_ok(p);
    for (int h = 0; h < H; h++) {
        long n_cand = body_check(p, p0, h, N, k, v, &cfg, name);
        TU_EQ(n_cand, cfg.candidates);            /* prefill fills every candidate slot */
    }
    /* a cache file round-trips it bit for bit */
    void *buf;
    size_t len;
    kvr_cache *l;
    TU_EQ(kvr_cache_save_mem(c, &buf, &len), KVR_OK);
    TU_EQ(kvr_cache_load_mem(&l, buf, len), KVR_OK);
    char why[256] = "";
    TU_CHECK(tu_cache_same(c, l, why, sizeof why), "%s: loaded cache differs: %s", name, why);
    kvr_cache_free(l);
    kvr_buffer_free(buf);
    kvr_cache_free(p);
    kvr_cache_free(p0);
    kvr_cache_free(c);
    kvr_cache_free(k0);
}
END_TEST

/* spec §18.8's planner: over ratios, contexts, head dims and element
 * types, a plan keeps every token (S + R + Q = context), holds at most
 * the budget (the independent count agrees), has at least one candidate,
 * and no more fit: one more candidate passes the budget or the body's
 * positions.  A refusal is KVR_EBUDGET with cfg unchanged, and then KIVI
 * refuses too or a window of one with one candidate does not fit. */
START_TEST(test_body_plan)
{
    static const char *names[] = {"kvreviver/body=2", "kvreviver/body=3", "kvreviver/body=4/recent=0.1",
                                  "kvreviver/body=2/recent=0"};
    static const int body_bits[] = {2, 3, 4, 2};
    static const double ratios[] = {0.1, 0.15, 0.2, 0.25, 0.35, 0.5};
    static const long contexts[] = {2, 7, 100, 1000, 4096, 32768};
    static const int dims[] = {1, 8, 64, 128};
    long ok = 0, refused = 0;
    for (size_t m = 0; m < sizeof names / sizeof names[0]; m++)
        for (size_t ri = 0; ri < sizeof ratios / sizeof ratios[0]; ri++)
            for (size_t ci = 0; ci < sizeof contexts / sizeof contexts[0]; ci++)
                for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
                    for (int e = 0; e < 3; e++) {
                        long n = contexts[ci];
                        int D = dims[di];
                        kvr_config cfg, before;
                        memset(&cfg, 0x5A, sizeof cfg);
                        before = cfg;
                        int status = kvr_method_config(names[m], ratios[ri], n, D, (kvr_elem)e, &cfg);
                        size_t budget = (size_t)floor(ratios[ri] * (double)kvr_full_bytes(n, D, (kvr_elem)e));
                        if (status != KVR_OK) {
                            TU_CHECK(status == KVR_EBUDGET, "%s: %s", names[m], kvr_last_error());
                            TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
                            refused++;
                            /* KIVI refuses, or its body with a window of one and one candidate is over */
                            char kname[32];
                            snprintf(kname, sizeof kname, "kivi/bits=%d", body_bits[m]);
                            kvr_config t;
                            if (kvr_method_config(kname, ratios[ri], n, D, (kvr_elem)e, &t) == KVR_OK) {
                                t.importance = KVR_IMP_H2O;
                                t.kivi_tokens += t.window - 1;
                                t.window = 1;
                                t.candidates = 1;
                                TU_CHECK(indep_head_bytes(&t, (size_t)D) > budget, "%s %g %ld %d: refused, but one candidate fits",
                                         names[m], ratios[ri], n, D);
                            }
                            continue;
                        }
                        ok++;
                        size_t bytes = kvr_head_bytes(&cfg, D);
                        TU_CHECK(bytes <= budget && bytes == indep_head_bytes(&cfg, (size_t)D),
                                 "%s %g %ld %d: %zu bytes, counted %zu, budget %zu", names[m], ratios[ri], n, D,
                                 bytes, indep_head_bytes(&cfg, (size_t)D), budget);
                        TU_EQ(kvr_config_check(&cfg, D), KVR_OK);
                        TU_EQ((long)cfg.sinks + cfg.window + cfg.kivi_tokens, n);
                        TU_OK(cfg.candidates >= 1 && cfg.candidates <= cfg.kivi_tokens && cfg.window >= 1);
                        TU_OK(cfg.tier_bits == 0 && cfg.depth == 0 && cfg.importance != KVR_IMP_NONE);
                        kvr_config more = cfg;
                        more.candidates++;
                        TU_CHECK(more.candidates > more.kivi_tokens || indep_head_bytes(&more, (size_t)D) > budget,
                                 "%s %g %ld %d: room for candidate %d", names[m], ratios[ri], n, D, more.candidates);
                    }
    printf("quant: body plan sweep: %ld plans, %ld refused\n", ok, refused);
    TU_OK(ok > 300 && refused > 30);
}
END_TEST

/* Values outside float16's range cannot be quantized: KVR_ERANGE, the
 * cache unchanged (spec §18.2), for store=q4 and kivi alike. */
START_TEST(test_quant_range)
{
    static const char *names[] = {"h2o/store=q4", "kivi/group=2"};
    enum { D = 4 };
    kvr_config cfg;
    TU_EQ(kvr_method_config(names[_i], 0.5, 64, D, KVR_F32, &cfg), KVR_OK);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    float k[D] = {1, 2, 3, 4}, v[D] = {0, 0, 0, 65504.0f};
    TU_EQ(kvr_append(c, 0, 1, k, v), KVR_OK);
    tu_snap *snap = tu_snap_take(c);
    v[3] = 65505.0f;
    TU_EQ(kvr_append(c, 0, 1, k, v), KVR_ERANGE);
    TU_ASSERT_UNCHANGED(snap, c);
    k[0] = -1e6f; v[3] = 0;
    TU_EQ(kvr_append(c, 0, 1, k, v), KVR_ERANGE);
    TU_ASSERT_UNCHANGED(snap, c);
    tu_snap_free(snap);
    kvr_cache_free(c);
}
END_TEST

/* Bytes at capacity: every method of the sweep (listed ones, kivi and the
 * store= variants), filled to the planned context with real tokens, holds
 * at most floor(ratio * full bytes) in float16 and float32 accounting
 * (kvr_bytes, which counts the arrays allocated), for ratios 0.05 .. 0.5. */
START_TEST(test_cache_bytes_at_capacity)
{
    static const double ratios[] = {0.05, 0.1, 0.25, 0.5};
    static const long contexts[] = {300, 1000};
    enum { H = 2, D = 32 };
    int n_listed = 0;
    while (kvr_method_name(n_listed)) n_listed++;
    int n_methods = n_listed + (int)(sizeof sweep_methods / sizeof sweep_methods[0]);
    long built = 0;
    static float k[1000 * H * D], v[1000 * H * D];
    tu_rng r;
    tu_seed(&r, 77);
    tu_fill(&r, k, sizeof k / sizeof(float), 0, 1);
    tu_fill(&r, v, sizeof v / sizeof(float), 0, 1);
    for (int m = 0; m < n_methods; m++)
        for (size_t ri = 0; ri < 4; ri++)
            for (size_t ci = 0; ci < 2; ci++)
                for (int e = 0; e < 2; e++) {
                    const char *name = m < n_listed ? kvr_method_name(m) : sweep_methods[m - n_listed];
                    long n = contexts[ci];
                    kvr_config cfg;
                    if (kvr_method_config(name, ratios[ri], n, D, (kvr_elem)e, &cfg) != KVR_OK)
                        continue;
                    double ratio = strcmp(name, "full") ? ratios[ri] : 1.0;
                    kvr_cache *c;
                    TU_EQ(kvr_cache_create(&c, 1, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
                    TU_EQ(kvr_append(c, 0, (int)n, k, v), KVR_OK);
                    size_t held, full;
                    TU_EQ(kvr_bytes(c, &held, &full), KVR_OK);
                    TU_EQ(full, (size_t)H * kvr_full_bytes(n, D, (kvr_elem)e));
                    TU_EQ(tu_head_state_bytes(kvr_cache_head(c, 0, 1)), kvr_head_bytes(&cfg, D));
                    TU_CHECK(held <= (size_t)H * (size_t)floor(ratio * (double)(full / H)),
                             "%s ratio %g context %ld %s: %zu bytes held, full %zu", name, ratio, n,
                             kvr_elem_name((kvr_elem)e), held, full);
                    built++;
                    kvr_cache_free(c);
                }
    TU_OK(built > 100);
}
END_TEST

/* Cache files (spec §16): a quantized cache (store=q4, store=q8, kivi)
 * round-trips bit for bit in format version 3; a cache without quantization
 * is still written as version 2; a forged scale that is not finite is
 * refused. */
START_TEST(test_quant_file)
{
    static const char *names[] = {"h2o/store=q4", "kvreviver-paper/store=q8", "kivi/group=5/residual=4", "h2o"};
    enum { N = 120, H = 2, D = 8 };
    kvr_config cfg;
    TU_EQ(kvr_method_config(names[_i], 0.3, N, D, (kvr_elem)(_i % 2), &cfg), KVR_OK);
    kvr_cache *c, *l;
    TU_EQ(kvr_cache_create(&c, 2, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N * H * D], v[N * H * D];
    tu_rng r;
    tu_seed(&r, 900 + (uint64_t)_i);
    tu_fill(&r, k, sizeof k / sizeof(float), 0, 1);
    tu_fill(&r, v, sizeof v / sizeof(float), 0, 1);
    TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
    TU_EQ(kvr_append(c, 1, N / 2, k, v), KVR_OK);
    void *buf, *again;
    size_t len, len2;
    TU_EQ(kvr_cache_save_mem(c, &buf, &len), KVR_OK);
    unsigned char *b = buf;
    TU_EQ(b[8], _i == 3 ? 2 : 3);                 /* the format version */
    TU_EQ(kvr_cache_load_mem(&l, buf, len), KVR_OK);
    char why[256] = "";
    TU_CHECK(tu_cache_same(c, l, why, sizeof why), "%s: loaded cache differs: %s", names[_i], why);
    TU_EQ(kvr_cache_save_mem(l, &again, &len2), KVR_OK);
    TU_OK(len == len2 && memcmp(buf, again, len) == 0);
    kvr_buffer_free(again);
    kvr_cache_free(l);
    if (_i < 3) {
        /* the last head's last {zero point, scale} array ends the payload
         * for store=q4 and kivi alike: make its last scale +Inf, fix the CRC */
        unsigned char *f = malloc(len);
        memcpy(f, buf, len);
        f[len - 2] = 0x00; f[len - 1] = 0x7C;     /* little-endian 0x7C00 */
        uint32_t crc = 0xFFFFFFFFu;
        for (size_t i = 32; i < len; i++) {
            crc ^= f[i];
            for (int j = 0; j < 8; j++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
        crc ^= 0xFFFFFFFFu;
        for (int j = 0; j < 4; j++) f[24 + j] = (unsigned char)(crc >> (8 * j));
        TU_EQ(kvr_cache_load_mem(&l, f, len), KVR_EFORMAT);
        ck_assert_ptr_nonnull(strstr(kvr_last_error(), "scale"));
        free(f);
    }
    kvr_buffer_free(buf);
    kvr_cache_free(c);
}
END_TEST

/* spec §18.7: the tolerance model takes the dequantized values as the stored
 * inputs.  With them, the reference's attention is within half the
 * tolerance (the bound B of one implementation) of float64 attention over
 * the same values, for quantized exact parts and KIVI's body. */
START_TEST(test_quant_tolerance)
{
    static const char *names[] = {"h2o/store=q4", "snapkv/store=q8", "kivi/group=8/residual=6", "streaming/store=q4"};
    enum { N = 200, G = 2, D = 16 };
    const char *name = names[_i % 4];
    kvr_elem elem = (kvr_elem)(_i / 4);
    kvr_config cfg;
    TU_EQ(kvr_method_config(name, strncmp(name, "kivi", 4) ? 0.15 : 0.5, N, D, elem, &cfg), KVR_OK);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N * D], v[N * D], q[G * D], out[G * D], tol[G * D];
    static unsigned char held[N];
    double o[D], t64[D];
    tu_rng r;
    tu_seed(&r, 500 + (uint64_t)_i);
    tu_fill(&r, k, N * D, 0.2, 1.0);
    tu_fill(&r, v, N * D, 0.0, 2.0);
    TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
    for (long t = 0; t < N; t++) {                /* the values each position carries */
        int st = kvr_reconstruct(c, 0, 0, t, k + (size_t)t * D, v + (size_t)t * D);
        TU_OK(st == KVR_OK || st == KVR_EDROPPED);
        held[t] = st == KVR_OK;
    }
    tu_tally all = TU_TALLY_INIT;
    for (int rep = 0; rep < 20; rep++) {
        tu_fill(&r, q, G * D, 0, 1.5);
        TU_EQ(kvr_attend(c, 0, q, out, KVR_ATTEND_PEEK), KVR_OK);
        TU_EQ(kvr_tol_attend(kvr_cache_head(c, 0, 0), k, v, G, q, tol), KVR_OK);
        for (int g = 0; g < G; g++) {
            tu_attention64(N, D, q + g * D, k, v, held, o, t64);
            double half[D];
            for (int i = 0; i < D; i++) half[i] = tol[g * D + i] / 2;
            tu_tally_floats(&all, D, out + g * D, o, half);
        }
    }
    tu_tally_check("attention over dequantized values vs float64, within B = tolerance / 2", &all, 0);
    kvr_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tu_tcase(s, "codes");
    tcase_add_test(tc, test_codes_random);
    tcase_add_test(tc, test_codes_ties);
    tcase_add_test(tc, test_codes_adversarial);
    tcase_add_test(tc, test_params_strided);
    tc = tu_tcase(s, "bound");
    tcase_add_test(tc, test_error_bound);
    tcase_add_test(tc, test_degenerate_exact);
    tc = tu_tcase(s, "plan");
    tcase_add_test(tc, test_plan_sweep);
    tcase_add_test(tc, test_kivi_largest_residual);
    tcase_add_test(tc, test_quant_levers);
    tc = tu_tcase(s, "cache");
    tcase_add_loop_test(tc, test_cache_store, 0, 18);
    tcase_add_loop_test(tc, test_cache_kivi, 0, 6);
    tcase_add_loop_test(tc, test_quant_range, 0, 2);
    tcase_add_loop_test(tc, test_body_is_kivi, 0, 6);
    tcase_add_test(tc, test_body_plan);
    tcase_add_test(tc, test_cache_bytes_at_capacity);
    tcase_add_loop_test(tc, test_quant_file, 0, 4);
    tcase_add_loop_test(tc, test_quant_tolerance, 0, 8);
    return tu_run(s);
}
