/* vectors_gen.c: levels 1 (hash) and 6 (planner) of the conformance vectors
 * (doc/porting.md): grids of inputs and the outputs the spec gives for them,
 * all bit-exact. */
#include <config.h>
#include <stdlib.h>
#include <string.h>
#include "kvreviver.h"
#include "common/message.h"
#include "vectors.h"

/* Level 1, spec §5: the 64-bit hash, its sign, and its bucket for several
 * widths, over a grid of (seed, layer, kv_head, row, position) that includes
 * the extremes of every input. */
int vec_write_hashes(vec_writer *w)
{
    static const uint64_t seeds[] = { 0, 1, UINT64_C(0x6B7672657669766B), UINT64_MAX };
    static const uint32_t layers[] = { 0, 1, 31 }, heads[] = { 0, 3 }, rows[] = { 0, 1, 4 };
    static const uint64_t positions[] = { 0, 1, 2, 3, 1000, 65535, 2147483647 };
    static const int32_t widths[] = { 1, 2, 3, 7, 8, 64, 1000, 65536 };
#define LEN(a) (sizeof (a) / sizeof (a)[0])
    const size_t n = LEN(seeds) * LEN(layers) * LEN(heads) * LEN(rows) * LEN(positions);
    const size_t nw = LEN(widths);
    uint64_t *grid = malloc(n * 5 * sizeof *grid), *hash = malloc(n * sizeof *hash);
    int32_t *bucket = malloc(n * nw * sizeof *bucket), *sign = malloc(n * sizeof *sign);
    int status = 1;
    if (!grid || !hash || !bucket || !sign) {
        msg_error("vectors: out of memory");
        goto done;
    }
    size_t j = 0;
    for (size_t a = 0; a < LEN(seeds); a++)
        for (size_t b = 0; b < LEN(layers); b++)
            for (size_t c = 0; c < LEN(heads); c++)
                for (size_t r = 0; r < LEN(rows); r++)
                    for (size_t p = 0; p < LEN(positions); p++, j++) {
                        uint64_t *g = grid + j * 5;
                        g[0] = seeds[a]; g[1] = layers[b]; g[2] = heads[c]; g[3] = rows[r]; g[4] = positions[p];
                        hash[j] = kvr_hash(seeds[a], layers[b], heads[c], rows[r], positions[p]);
                        sign[j] = kvr_hash_sign(hash[j]);
                        for (size_t k = 0; k < nw; k++)
                            bucket[j * nw + k] = (int32_t)kvr_hash_bucket(hash[j], (uint32_t)widths[k]);
                    }
    size_t s_grid[2] = { n, 5 }, s_w[1] = { nw }, s_n[1] = { n }, s_b[2] = { n, nw };
    if (vw_array(w, "inputs/hash/grid.npy", KVR_NPY_U64, 2, s_grid, grid, "input",
                 "level 1 (spec 5): rows of (seed, layer, kv_head, row, position)") == 0
        && vw_array(w, "inputs/hash/widths.npy", KVR_NPY_I32, 1, s_w, widths, "input",
                    "level 1 (spec 5.3): sketch widths w for the buckets") == 0
        && vw_array(w, "expected/hash/hash.npy", KVR_NPY_U64, 1, s_n, hash, "exact",
                    "level 1 (spec 5.2): kvr_hash of each grid row") == 0
        && vw_array(w, "expected/hash/sign.npy", KVR_NPY_I32, 1, s_n, sign, "exact",
                    "level 1 (spec 5.3): sign (+1 or -1) of each grid row") == 0
        && vw_array(w, "expected/hash/bucket.npy", KVR_NPY_I32, 2, s_b, bucket, "exact",
                    "level 1 (spec 5.3): bucket of each grid row for each width") == 0)
        status = 0;
done:
    free(grid); free(hash); free(bucket); free(sign);
    return status;
}

/* Level 6, spec §9.2: the planner from the default configuration (spec
 * §13) with the depth of the grid, over (ratio, context, head_dim, element
 * type, depth).  Infeasible budgets give status KVR_EBUDGET and zeros. */
int vec_write_planner(vec_writer *w)
{
    static const double ratios[] = { 0.02, 0.05, 0.1, 0.25, 0.5, 1.0 };
    static const long contexts[] = { 1, 7, 100, 2048, 32768 };
    static const int dims[] = { 64, 128 }, depths[] = { 1, 3, 5 };
    static const kvr_elem elems[] = { KVR_F32, KVR_F16, KVR_BF16 };
    const size_t n = LEN(ratios) * LEN(contexts) * LEN(dims) * LEN(elems) * LEN(depths);
    double *grid = malloc(n * 5 * sizeof *grid);
    int32_t *plan = calloc(n * 6, sizeof *plan);
    uint64_t *bytes = calloc(n, sizeof *bytes);
    int status = 1;
    if (!grid || !plan || !bytes) {
        msg_error("vectors: out of memory");
        goto done;
    }
    size_t j = 0;
    for (size_t a = 0; a < LEN(ratios); a++)
        for (size_t b = 0; b < LEN(contexts); b++)
            for (size_t c = 0; c < LEN(dims); c++)
                for (size_t e = 0; e < LEN(elems); e++)
                    for (size_t r = 0; r < LEN(depths); r++, j++) {
                        double *g = grid + j * 5;
                        g[0] = ratios[a]; g[1] = (double)contexts[b]; g[2] = dims[c];
                        g[3] = elems[e]; g[4] = depths[r];
                        kvr_config cfg;
                        kvr_config_paper(&cfg);
                        cfg.elem = elems[e];
                        cfg.depth = depths[r];
                        int st = kvr_plan(ratios[a], contexts[b], dims[c], &cfg);
                        int32_t *p = plan + j * 6;
                        p[0] = st;
                        if (st == KVR_OK) {
                            p[1] = cfg.sinks; p[2] = cfg.window; p[3] = cfg.candidates;
                            p[4] = cfg.depth; p[5] = cfg.width;
                            bytes[j] = kvr_head_bytes(&cfg, dims[c]);
                        }
                    }
    size_t s_grid[2] = { n, 5 }, s_plan[2] = { n, 6 }, s_n[1] = { n };
    vw_line(w, "scenario planner sinks=4 importance=snapkv obs_window=32 centre=1 "
               "sketch_share=0.5 recent_share=0.5 -- kvr_plan from the paper-faithful configuration "
               "(kvr_config_paper, spec 13) with the grid row's elem (0 f32, 1 f16, 2 bf16) and depth");
    if (vw_array(w, "inputs/planner/grid.npy", KVR_NPY_F64, 2, s_grid, grid, "input",
                 "level 6 (spec 9.2): rows of (ratio, context, head_dim, elem, depth)") == 0
        && vw_array(w, "expected/planner/plan.npy", KVR_NPY_I32, 2, s_plan, plan, "exact",
                    "level 6 (spec 9.2): (status, sinks, window, candidates, depth, width) per row; "
                    "status 0 ok or -5 budget too small (then zeros)") == 0
        && vw_array(w, "expected/planner/bytes.npy", KVR_NPY_U64, 1, s_n, bytes, "exact",
                    "level 6 (spec 9.1): bytes one head cache holds with the plan (0 when infeasible)") == 0)
        status = 0;
done:
    free(grid); free(plan); free(bytes);
    return status;
}
