/* llama2c.c: reading a llama2.c checkpoint (doc/model.md §2.1).
 *
 * The file is untrusted: every header value is range-checked, the size the
 * header implies is computed in 64-bit arithmetic and must equal the file's
 * length, and every weight must be finite.  Layout (little-endian):
 *   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *   (vocab_size < 0: a separate classifier follows the RoPE tables)
 *   float32 token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim],
 *   wk[L][kv*hs][dim], wv[L][kv*hs][dim], wo[L][dim][dim], rms_ffn[L][dim],
 *   w1[L][hidden][dim], w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
 *   two legacy RoPE tables of seq_len*hs/2 floats (skipped),
 *   [wcls[vocab][dim]].
 * RoPE base 10000 on every head dimension, RMSNorm eps 1e-5, BOS 1. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "loader.h"

int lm_model_load_llama2c(lm_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    unsigned char *data;
    size_t size;
    int status = lm_read_file(path, &data, &size);
    if (status != KVR_OK)
        return status;
    if (size < 7 * sizeof(int32_t)) {
        free(data);
        return lm_model_fail(KVR_EFORMAT, "%s: not a llama2.c or GGUF file (%zu bytes, shorter than the 28-byte llama2.c header)", path, size);
    }
    int32_t h[7];
    memcpy(h, data, sizeof h);
    int shared = h[5] > 0;
    m->dim = h[0];
    m->hidden_dim = h[1];
    m->n_layers = h[2];
    m->n_heads = h[3];
    m->n_kv_heads = h[4];
    m->vocab_size = h[5] == INT32_MIN ? 0 : (h[5] < 0 ? -h[5] : h[5]);
    m->seq_len = h[6];
    m->head_dim = m->n_heads > 0 && m->dim % m->n_heads == 0 ? m->dim / m->n_heads : 0;
    m->rms_eps = 1e-5f;
    m->rope_base = 10000.0f;
    m->rope_dims = m->head_dim;
    m->bos = 1;
    m->eos = -1;
    m->arch = LM_ARCH_LLAMA;
    m->embed_scale = 1.0f;
    m->attn_scale = m->head_dim > 0 ? 1.0f / sqrtf((float)m->head_dim) : 0.0f;
    if (m->n_heads > 0 && m->dim > 0 && m->dim % m->n_heads != 0) {
        free(data);
        memset(m, 0, sizeof *m);
        return lm_model_fail(KVR_EFORMAT, "%s: not a llama2.c or GGUF file (read as a llama2.c header, dim = %d is not a multiple of n_heads = %d)",
                              path, h[0], h[3]);
    }
    status = lm_model_check(m, path);
    if (status != KVR_OK) {   /* no GGUF magic and no llama2.c header: say what the file is not */
        char why[400];
        const char *e = lm_model_error();
        size_t skip = strlen(path);
        snprintf(why, sizeof why, "%s", strncmp(e, path, skip) == 0 && e[skip] == ':' ? e + skip + 2 : e);
        free(data);
        memset(m, 0, sizeof *m);
        return lm_model_fail(status, "%s: not a llama2.c or GGUF file (read as a llama2.c header, %s)", path, why);
    }
    /* sizes in floats, 64-bit: the check above bounds every factor */
    uint64_t D = (uint64_t)m->dim, F = (uint64_t)m->hidden_dim, L = (uint64_t)m->n_layers;
    uint64_t V = (uint64_t)m->vocab_size, hs = (uint64_t)m->head_dim;
    uint64_t kd = (uint64_t)m->n_kv_heads * hs;
    uint64_t n_floats = V * D + L * D + L * D * D + 2 * L * kd * D + L * D * D + L * D
                      + 3 * L * F * D + D + 2 * ((uint64_t)m->seq_len * hs / 2)
                      + (shared ? 0 : V * D);
    uint64_t want = 28 + 4 * n_floats;
    if ((uint64_t)size != want) {
        free(data);
        memset(m, 0, sizeof *m);
        return lm_model_fail(KVR_EFORMAT, "%s: the header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq_len %d) implies %llu bytes but the file has %zu",
                              path, h[0], h[1], h[2], h[3], h[4], h[5], h[6], (unsigned long long)want, size);
    }
    float *w = (float *)(void *)(data + 28);   /* malloc'd + 28: 4-byte aligned */
    for (uint64_t i = 0; i < n_floats; i++)
        if (!isfinite(w[i])) {
            free(data);
            memset(m, 0, sizeof *m);
            return lm_model_fail(KVR_EFORMAT, "%s: weight %llu (byte offset %llu) is not finite", path,
                                  (unsigned long long)i, (unsigned long long)(28 + 4 * i));
        }
    m->token_embedding = w; w += V * D;
    m->rms_att = w; w += L * D;
    m->wq = w; w += L * D * D;
    m->wk = w; w += L * kd * D;
    m->wv = w; w += L * kd * D;
    m->wo = w; w += L * D * D;
    m->rms_ffn = w; w += L * D;
    m->w1 = w; w += L * F * D;
    m->w2 = w; w += L * D * F;
    m->w3 = w; w += L * F * D;
    m->rms_final = w; w += D;
    w += 2 * ((uint64_t)m->seq_len * hs / 2);    /* legacy RoPE tables */
    m->wcls = shared ? m->token_embedding : w;
    m->owned[m->n_owned++] = data;
    return KVR_OK;
}
