/* fuzz.h: the libFuzzer entry point every target in fuzz/ defines.  Built
 * with -fsanitize=fuzzer under --enable-fuzz (make fuzz), or linked with
 * fuzz/replay.c into a plain program that replays saved inputs in make
 * check (regression tests for every crash found). */
#ifndef KVR_FUZZ_H
#define KVR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* For parsers that take a path: write the input to a per-process temporary
 * file whose name carries tag and return its path (the caller removes it),
 * or NULL when it cannot be written (the target then skips the input). */
static inline const char *fuzz_input_file(const uint8_t *data, size_t size, const char *tag)
{
    static char path[96];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/kvr-fuzz-%s-%ld", dir && strlen(dir) < 40 ? dir : "/tmp", tag,
             (long)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return NULL;
    size_t wrote = fwrite(data, 1, size, fp);
    if (fclose(fp) != 0 || wrote != size)
        return NULL;
    return path;
}

/* How much a loaded cache may allocate per input byte: its arrays are
 * stored at full capacity, so each is at most the payload; the head
 * structures and workspaces add at most the same again.  (Measured on the
 * corpus: see fuzz/README or doc/files.md.) */
#define FUZZ_CACHE_FACTOR 2

/* Abort when the largest single allocation a parser made (bytes) exceeds
 * factor times the input's size plus 4 KiB (fixed-size structures):
 * every size read from an input must be checked against what the input
 * can hold before anything is allocated (issue 29). */
static inline void fuzz_check_alloc(const char *what, size_t bytes, size_t size, size_t factor)
{
    if (bytes > factor * size + 4096) {
        fprintf(stderr, "%s: an allocation of %zu bytes for an input of %zu bytes\n", what, bytes, size);
        abort();
    }
}

#endif
