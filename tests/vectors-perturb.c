/* vectors-perturb.c: make a deliberately broken (or harmlessly perturbed)
 * port output for tests/vectors-perturb.sh.
 *
 *   vectors-perturb IN.npy TOL.npy SHARE OUT.npy
 *       copy a float32 array, moving its element with the largest tolerance
 *       t by SHARE * t (SHARE < 1: within tolerance, > 1: beyond it); checks
 *       that the rounded float32 value really lands on that side.
 *   vectors-perturb IN.npy - 1 OUT.npy
 *       copy an int32 array with 1 added to its first element.
 * Prints the flat index it changed.  Exit 0, or 1 with a message. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "npy.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: vectors-perturb IN.npy TOL.npy|- SHARE OUT.npy\n");
        return 1;
    }
    kvr_npy a, t;
    memset(&t, 0, sizeof t);
    if (kvr_npy_read(argv[1], &a) != KVR_OK) {
        fprintf(stderr, "vectors-perturb: %s\n", kvr_last_error());
        return 1;
    }
    double share = atof(argv[3]);
    size_t at = 0;
    if (strcmp(argv[2], "-") == 0) {
        if (a.type != KVR_NPY_I32 || a.count == 0) {
            fprintf(stderr, "vectors-perturb: %s is not a non-empty int32 array\n", argv[1]);
            return 1;
        }
        ((int32_t *)a.data)[0] += 1;
    } else {
        if (kvr_npy_read(argv[2], &t) != KVR_OK || t.count != a.count || a.type != KVR_NPY_F32
            || t.type != KVR_NPY_F32 || a.count == 0) {
            fprintf(stderr, "vectors-perturb: %s and %s are not matching float32 arrays\n", argv[1], argv[2]);
            return 1;
        }
        float *x = a.data, *tol = t.data;
        for (size_t i = 1; i < a.count; i++)
            if (tol[i] > tol[at])
                at = i;
        double old = x[at], want = old + share * (double)tol[at];
        x[at] = (float)want;
        double dev = fabs((double)x[at] - old);
        if (dev == 0.0 || (share < 1.0) != (dev <= (double)tol[at])) {
            fprintf(stderr, "vectors-perturb: moving element %zu by %g of its tolerance %g "
                    "lands at deviation %g: not on the intended side\n", at, share, (double)tol[at], dev);
            return 1;
        }
    }
    if (kvr_npy_write(argv[4], a.type, a.ndim, a.shape, a.data) != KVR_OK) {
        fprintf(stderr, "vectors-perturb: %s\n", kvr_last_error());
        return 1;
    }
    printf("%zu\n", at);
    kvr_npy_free(&a);
    kvr_npy_free(&t);
    return 0;
}
