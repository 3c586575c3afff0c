/* make-corpus.c: writes the seed corpus of the cache_load fuzz target
 * (fuzz/corpus/cache_load/): small cache files of every configuration
 * variant at a few lengths.  Not built by default; to regenerate:
 *
 *   cc -Ilib -Iref -I. fuzz/make-corpus.c .libs/libkvreviver.a -lm -o /tmp/mc
 *   /tmp/mc fuzz/corpus/cache_load
 */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "kvreviver.h"

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: make-corpus DIR\n"); return 2; }
    static const int lengths[] = {0, 3, 12};
    uint32_t x = 12345;
    for (int variant = 0; variant < 7; variant++)
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            kvr_config cfg;
            kvr_config_paper(&cfg);
            cfg.sinks = 1; cfg.window = 2; cfg.candidates = 2; cfg.depth = 3; cfg.width = 2;
            if (variant == 1) { cfg.depth = 0; cfg.width = 0; cfg.importance = KVR_IMP_H2O; }
            if (variant == 2) { cfg.elem = KVR_F16; cfg.rows = KVR_ROWS_MEAN; cfg.shrink = 1; cfg.centre = 0;
                              cfg.vague = KVR_VAGUE_RECONSTRUCT; }
            if (variant == 3) { cfg.candidates = 0; cfg.importance = KVR_IMP_NONE; cfg.depth = 1; }
            if (variant == 4) { cfg.revive = 2.0; cfg.var_cap = INFINITY; }
            if (variant == 5) { cfg.store = KVR_STORE_Q4; cfg.depth = 0; cfg.width = 0;   /* spec 18: version 3 */
                              cfg.importance = KVR_IMP_H2O; }
            if (variant == 6) { cfg.candidates = 0; cfg.depth = 0; cfg.width = 0; cfg.importance = KVR_IMP_NONE;
                              cfg.kivi_bits = 2; cfg.kivi_group = 2; cfg.kivi_tokens = 10; }  /* KIVI */
            kvr_cache *c;
            if (kvr_cache_create(&c, 1, 1, 2, 2, &cfg, KVR_BACKEND_REF) != KVR_OK) return 1;
            for (int t = 0; t < lengths[li]; t++) {
                float k[2], v[2], q[4], out[4];
                for (int i = 0; i < 2; i++) {
                    x = x * 1103515245u + 12345u; k[i] = (float)(x >> 16) / 65536.0f - 0.5f;
                    x = x * 1103515245u + 12345u; v[i] = (float)(x >> 16) / 65536.0f - 0.5f;
                }
                for (int i = 0; i < 4; i++) q[i] = k[i % 2] + 0.25f * (float)i;
                if (kvr_append(c, 0, 1, k, v) != KVR_OK || kvr_attend(c, 0, q, out, 0) != KVR_OK) return 1;
            }
            char path[512];
            snprintf(path, sizeof path, "%s/v%d-n%d.kvr", argv[1], variant, lengths[li]);
            if (kvr_cache_save(c, path) != KVR_OK) { fprintf(stderr, "%s\n", kvr_last_error()); return 1; }
            kvr_cache_free(c);
        }
    return 0;
}
