/* model_load.c: fuzz target for the model checkpoint parsers (doc/model.md):
 * lm_model_load on llama2.c checkpoints and GGUF files.  The loaders take a
 * path, so each input is written to a temporary file first.  Any input must
 * load (and then pass lm_model_check) or be rejected with KVR_EFORMAT or
 * KVR_EIO, leaving nothing allocated, and no allocation of the loaders may
 * exceed 8 times the input's length (the file itself, and the float32
 * weights only once the tensors are known to fill them: at most 128 bytes
 * of floats per 18-byte Q4_0 block); a crash or a sanitizer report is a
 * bug. */
#include <config.h>
#include <stdlib.h>
#include "internal.h"
#include "runtime/model.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file(data, size, "model");
    if (!path)
        return 0;
    lm_model m;
    lm_alloc_largest_reset();
    int status = lm_model_load(&m, path);
    remove(path);
    fuzz_check_alloc("lm_model_load", lm_alloc_largest(), size, 8);
    if (status == KVR_OK) {
        if (lm_model_check(&m, path) != KVR_OK)
            abort();                  /* a loaded model must be consistent */
        lm_model_free(&m);
        return 0;
    }
    if (status == KVR_EFORMAT || status == KVR_EIO)
        return 0;
    abort();
}
