/* model_load.c: fuzz target for the model checkpoint parsers (doc/model.md):
 * kvr_model_load on llama2.c checkpoints and GGUF files.  The loaders take a
 * path, so each input is written to a temporary file first.  Any input must
 * load (and then pass kvr_model_check) or be rejected with KVR_EFORMAT or
 * KVR_EIO, leaving nothing allocated; a crash or a sanitizer report is a
 * bug. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "model.h"
#include "fuzz.h"

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/kvr-fuzz-model-%ld.bin", dir && strlen(dir) < 30 ? dir : "/tmp",
                 (long)getpid());
    }
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    size_t wrote = fwrite(data, 1, size, fp);
    if (fclose(fp) != 0 || wrote != size)
        return 0;
    kvr_model m;
    int status = kvr_model_load(&m, path);
    remove(path);
    if (status == KVR_OK) {
        if (kvr_model_check(&m, path) != KVR_OK)
            abort();                  /* a loaded model must be consistent */
        kvr_model_free(&m);
        return 0;
    }
    if (status == KVR_EFORMAT || status == KVR_EIO)
        return 0;
    abort();
}
