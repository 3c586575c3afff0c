/* moment.c: the bulk term of the moment route on the CPU (spec §17.1,
 * §17.3), mirror of attend_one in ref/moment.c for the mean-field bulk of
 * the default kvreviver (var_cap 0, revive 0).
 *
 * With var_cap = 0 the variance term min(tau^2, var_cap) / 2 is 0 whatever
 * tau^2 is, and with revive = 0 no vague token is revived, so the bulk term
 * needs the vague part's means only: logit m + ln(n_v) with m = (q . mu_K)
 * scale, value mu_V.  The sketch's buckets are not read (the reference
 * forms them, O(d w D) a query head, and discards them).  The float
 * operations are the reference's, in its order. */
#include <config.h>
#include <math.h>
#include "internal.h"
#include "cpu.h"

void cpu_bulk_term(const ref_head *h, int G, const float *q, float *logit, float *u, float *mk)
{
    int D = h->head_dim;
    float scale = 1.0f / sqrtf((float)D);
    long n_v = h->n_vague, n_rev = 0, n_b = n_v;
    double sum_x = 0.0, var = 0.0;                   /* no revival; var = min(tau^2, 0) = 0 */
    for (int i = 0; i < D; i++) {
        mk[i] = ref_vague_mean(h, h->sum_k, i);
        float mv = ref_vague_mean(h, h->sum_v, i);
        float mu_b = (float)(((double)n_v * mv - 0.0) / (double)n_b);
        u[i] = mu_b + (float)0.0;                    /* + cov, 0 with var_cap 0 */
    }
    for (int g = 0; g < G; g++) {
        const float *qg = q + (size_t)g * D;
        float qmu = 0.0f;
        for (int i = 0; i < D; i++)
            qmu += qg[i] * mk[i];
        float m = qmu * scale;
        float m_b = (float)(((double)n_v * m - ((double)n_rev * m + sum_x)) / (double)n_b);
        logit[g] = m_b + (float)(0.5 * var);
        if (kvr_cpu_mutant != 1)                     /* mutant 1 forgets ln(n_b) */
            logit[g] += (float)log((double)n_b);
    }
}
