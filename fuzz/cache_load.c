/* cache_load.c: fuzz target for the cache file parser (spec §16,
 * kvr_cache_load_mem).  Any input must either load into a cache whose every
 * head passes its invariants and whose save gives back the same bytes, or be
 * rejected with KVR_EFORMAT (KVR_ENOMEM is not expected for inputs of a few
 * kilobytes).  Whatever the input, no single allocation may exceed
 * FUZZ_ALLOC_BOUND(size): the loader checks every size against the input's
 * length before it allocates (issue 29).  Anything else, a crash or a
 * sanitizer report, is a bug. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../ref/ref.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kvr_cache *c = NULL;
    kvr_alloc_largest_reset();
    int status = kvr_cache_load_mem(&c, data, size);
    fuzz_check_alloc("kvr_cache_load_mem", kvr_alloc_largest(), size, FUZZ_CACHE_FACTOR);
    if (status != KVR_OK) {
        if (status != KVR_EFORMAT || c != NULL)
            abort();
        return 0;
    }
    /* Accepted: the state must be consistent and round-trip exactly, and
     * attention over it must work. */
    int L, H, Q, D;
    kvr_cache_dims(c, &L, &H, &Q, &D);
    char why[200];
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            if (ref_head_check(kvr_cache_head(c, l, h), why, sizeof why) != 0)
                abort();
    void *buf;
    size_t len;
    if (kvr_cache_save_mem(c, &buf, &len) != KVR_OK || len != size || memcmp(buf, data, size) != 0)
        abort();
    kvr_buffer_free(buf);
    if ((size_t)Q * (size_t)D <= 4096) {
        float *q = calloc((size_t)Q * D, sizeof *q), *out = calloc((size_t)Q * D, sizeof *out);
        for (int i = 0; q && i < Q * D; i++) q[i] = (float)(i % 7) * 0.25f - 0.5f;
        for (int l = 0; q && out && l < L; l++)
            if (kvr_length(c, l) > 0 && kvr_length(c, l) <= 100000 &&
                kvr_attend(c, l, q, out, KVR_ATTEND_PEEK) != KVR_OK)
                abort();
        free(q);
        free(out);
    }
    kvr_cache_free(c);
    return 0;
}
