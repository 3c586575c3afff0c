#include <config.h>
#include "model.h"
int kvr_model_load_gguf(kvr_model *m, const char *path)
{
    (void)m;
    return kvr_model_fail(KVR_EFORMAT, "%s: GGUF not yet", path);
}
