/* interval.h: confidence intervals of the harness's success rates
 * (doc/eval.md §4.6). */
#ifndef KVR_INTERVAL_H
#define KVR_INTERVAL_H

/* The Wilson score interval at 95% of k successes in n trials: with
 * z = Phi^-1(0.975) (GSL's gsl_cdf_ugaussian_Pinv), p = k/n,
 *   centre = (p + z^2/(2n)) / (1 + z^2/n),
 *   half   = z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / (4 n^2)),
 * lo = centre - half and hi = centre + half, clamped to [0, 1] against
 * rounding.  n = 0 (or k outside 0..n) gives NAN for both. */
void ev_wilson(long k, long n, double *lo, double *hi);

#endif
