/* interval.c: the Wilson score interval of a success rate (doc/eval.md
 * §4.6), for needle_acc and passkey_acc. */
#include <config.h>
#include <math.h>
#include <gsl/gsl_cdf.h>
#include "interval.h"

void ev_wilson(long k, long n, double *lo, double *hi)
{
    if (n <= 0 || k < 0 || k > n) {
        *lo = *hi = NAN;
        return;
    }
    double z = gsl_cdf_ugaussian_Pinv(0.975), z2 = z * z, nn = (double)n, p = (double)k / nn;
    double denom = 1.0 + z2 / nn;
    double centre = (p + z2 / (2.0 * nn)) / denom;
    double half = z / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}
