/* loader.c: what every model loader shares (doc/model.md §2): freeing a
 * loaded model, checking its shape, and the runtime's error message.
 *
 * The loaders (llama2c.c, gguf.c) call only this file and the C library;
 * model.c calls the loaders.  Nothing here calls either, so the runtime's
 * calls go one way: model.c -> loaders -> loader.c. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "loader.h"

void lm_model_free(lm_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    memset(m, 0, sizeof *m);
}

/* Shape fields must be positive, consistent with GQA and small enough that
 * every array size fits comfortably in size_t. */
int lm_model_check(const lm_model *m, const char *path)
{
    const struct { const char *name; int v; int max; } f[] = {
        {"dim", m->dim, 1 << 16}, {"hidden_dim", m->hidden_dim, 1 << 18},
        {"n_layers", m->n_layers, 1024}, {"n_heads", m->n_heads, 1024},
        {"n_kv_heads", m->n_kv_heads, 1024}, {"head_dim", m->head_dim, 1 << 12},
        {"vocab_size", m->vocab_size, 1 << 22}, {"seq_len", m->seq_len, 1 << 24},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < 1 || f[i].v > f[i].max)
            return lm_model_fail(KVR_EFORMAT, "%s: %s = %d is not in [1, %d]", path, f[i].name, f[i].v, f[i].max);
    if (m->n_heads % m->n_kv_heads != 0)
        return lm_model_fail(KVR_EFORMAT, "%s: n_heads = %d is not a multiple of n_kv_heads = %d",
                              path, m->n_heads, m->n_kv_heads);
    if (m->rope_dims < 2 || m->rope_dims > m->head_dim || m->rope_dims % 2)
        return lm_model_fail(KVR_EFORMAT, "%s: rope dimension %d is not even and in [2, head_dim = %d]",
                              path, m->rope_dims, m->head_dim);
    if (!(m->rms_eps > 0.0f && m->rms_eps < 1.0f))
        return lm_model_fail(KVR_EFORMAT, "%s: RMSNorm epsilon %g is not in (0, 1)", path, (double)m->rms_eps);
    if (!(m->rope_base > 1.0f) || !isfinite(m->rope_base))
        return lm_model_fail(KVR_EFORMAT, "%s: RoPE base %g is not above 1", path, (double)m->rope_base);
    if (m->window < 0 || (m->window > 0 && m->swa_pattern < 2) || m->swa_pattern < 0)
        return lm_model_fail(KVR_EFORMAT, "%s: sliding window %d with pattern %d: need window >= 0 and a pattern >= 2",
                              path, m->window, m->swa_pattern);
    if (m->window > 0 && !(m->rope_base_local > 1.0f && isfinite(m->rope_base_local)))
        return lm_model_fail(KVR_EFORMAT, "%s: local RoPE base %g is not above 1", path, (double)m->rope_base_local);
    if (!(m->embed_scale > 0.0f && isfinite(m->embed_scale)) || !(m->attn_scale > 0.0f && isfinite(m->attn_scale))
        || !(m->softcap >= 0.0f && isfinite(m->softcap)))
        return lm_model_fail(KVR_EFORMAT, "%s: embedding scale %g, attention scale %g or soft-cap %g out of range",
                              path, (double)m->embed_scale, (double)m->attn_scale, (double)m->softcap);
    if (m->bos < 0 || m->bos >= m->vocab_size)
        return lm_model_fail(KVR_EFORMAT, "%s: BOS token %d is not in the vocabulary of %d", path, m->bos, m->vocab_size);
    return KVR_OK;
}

/* ---- reading and allocating ------------------------------------------- */

static _Thread_local size_t largest;   /* the largest lm_alloc request on this thread */

void *lm_alloc(size_t count, size_t size)
{
    size_t bytes = size && count > SIZE_MAX / size ? SIZE_MAX : count * size;
    if (bytes > largest)
        largest = bytes;
    return calloc(count ? count : 1, size ? size : 1);
}

size_t lm_alloc_largest(void)
{
    return largest;
}

void lm_alloc_largest_reset(void)
{
    largest = 0;
}

int lm_read_file(const char *path, unsigned char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lm_model_fail(KVR_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        fclose(f);
        return dir ? lm_model_fail(KVR_EIO, "%s is a directory, not a model file (a llama2.c checkpoint or a GGUF file)", path)
                   : lm_model_fail(KVR_EIO, "%s: not a regular file (a model is read from a file whose length is known)", path);
    }
    if ((uintmax_t)st.st_size > SIZE_MAX - 1) {
        fclose(f);
        return lm_model_fail(KVR_ENOMEM, "%s: %jd bytes do not fit in memory", path, (intmax_t)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = lm_alloc(len, 1);
    if (!buf) {
        fclose(f);
        return lm_model_fail(KVR_ENOMEM, "%s: cannot hold %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int err = ferror(f) ? errno : 0, more = got == len && fgetc(f) != EOF;
    fclose(f);
    if (got != len || more) {
        free(buf);
        return err ? lm_model_fail(KVR_EIO, "cannot read '%s': %s", path, strerror(err))
                   : lm_model_fail(KVR_EIO, "%s: its length changed while it was read", path);
    }
    *data = buf;
    *size = len;
    return KVR_OK;
}

int lm_layer_local(const lm_model *m, int l)
{
    return m->window > 0 && m->swa_pattern > 0 && l % m->swa_pattern != m->swa_pattern - 1;
}

int lm_global_layers(const lm_model *m)
{
    int n = 0;
    for (int l = 0; l < m->n_layers; l++)
        n += !lm_layer_local(m, l);
    return n;
}

int lm_global_index(const lm_model *m, int l)
{
    if (lm_layer_local(m, l))
        return -1;
    int g = 0;
    for (int i = 0; i < l; i++)
        g += !lm_layer_local(m, i);
    return g;
}

/* ---- model errors ------------------------------------------------------ */

static _Thread_local char model_message[512];   /* one per thread: caches run on threads */

int lm_model_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(model_message, sizeof model_message, fmt, ap);
    va_end(ap);
    return status;
}

const char *lm_model_error(void)
{
    return model_message;
}

