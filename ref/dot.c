/* dot.c: the float32 sums that attention (spec §11.2) and the prefill
 * scores (spec §6.2) share: dot products, four at a time, and y += a x.
 * The bottom of ref/: it calls nothing, so attend.c and importance.c both
 * build on it without calling each other (importance.c is below attend.c). */
#include <config.h>
#include "ref.h"

void ref_dots(const float *q, const float *k, const long *pos, int m, int D, float *dot)
{
    if (m == 4) {
        const float *k0 = k + (size_t)pos[0] * D, *k1 = k + (size_t)pos[1] * D;
        const float *k2 = k + (size_t)pos[2] * D, *k3 = k + (size_t)pos[3] * D;
        float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
        for (int i = 0; i < D; i++) {
            d0 += q[i] * k0[i];
            d1 += q[i] * k1[i];
            d2 += q[i] * k2[i];
            d3 += q[i] * k3[i];
        }
        dot[0] = d0; dot[1] = d1; dot[2] = d2; dot[3] = d3;
        return;
    }
    for (int j = 0; j < m; j++) {
        const float *kj = k + (size_t)pos[j] * D;
        float d = 0.0f;
        for (int i = 0; i < D; i++)
            d += q[i] * kj[i];
        dot[j] = d;
    }
}

void ref_add_scaled(int D, float a, const float *restrict x /*[D]*/, float *restrict y /*[D]*/)
{
    for (int i = 0; i < D; i++)
        y[i] += a * x[i];
}
