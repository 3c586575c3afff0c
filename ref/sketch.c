/* sketch.c: the sketch of the vague part (spec §7).
 *
 * d rows of w buckets.  Bucket (r, b) holds the sum of the signed keys and of
 * the signed values of the vague tokens hashed to it, their signed count
 * c = sum of signs, and their number (the load).  Keys and values share the
 * bucket and the sign.  Beside the rows, the running sums of every vague key
 * and value (float64) give the exact mean used for centring (spec §8.1).
 *
 * Layout (spec §7.2): sums [d][w][D] float32, counts and loads [d][w] int32,
 * all row-major. */
#include <config.h>
#include "base.h"
#include "ref.h"

/* spec §5, §7.2: the bucket of position pos in row r, as an index r*w + b
 * into the row-major [d][w] arrays, and its sign (+1.0f or -1.0f). */
size_t ref_bucket(const ref_head *h, int r, long pos, float *sign)
{
    uint64_t x = kvr_hash(h->cfg.seed, h->layer, h->kv_head, (uint32_t)r, (uint64_t)pos);
    *sign = (float)kvr_hash_sign(x);
    return (size_t)r * h->cfg.width + kvr_hash_bucket(x, (uint32_t)h->cfg.width);
}

/* spec §7.3: add the token at pos, with key k and value v ([D], already
 * rounded to the storage type), into every row. */
void ref_sketch_insert(ref_head *h, long pos, const float *k, const float *v)
{
    int D = h->head_dim;
    for (int r = 0; r < h->cfg.depth; r++) {
        float s;
        size_t bucket = ref_bucket(h, r, pos, &s);
        float *sk = h->sk_k + bucket * D;           /* [D] */
        float *sv = h->sk_v + bucket * D;           /* [D] */
        for (int i = 0; i < D; i++) {
            sk[i] += s * k[i];
            sv[i] += s * v[i];
        }
        h->sk_count[bucket] += (int32_t)s;
        h->sk_load[bucket] += 1;
    }
    if (h->sum_k)                                   /* spec §7.4: running sums */
        for (int i = 0; i < D; i++) {
            h->sum_k[i] += (double)k[i];
            h->sum_v[i] += (double)v[i];
        }
    h->n_vague++;
}

/* spec §8.1: coordinate i of the exact mean of the vague part, from the
 * running sum `running` (sum_k or sum_v), rounded to float32; zero when
 * centring is off or the vague part is empty. */
float ref_vague_mean(const ref_head *h, const double *running /*[D] or NULL*/, int i)
{
    if (!running || h->n_vague == 0)
        return 0.0f;
    return (float)(running[i] / (double)h->n_vague);
}
