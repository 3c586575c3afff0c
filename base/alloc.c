/* alloc.c: every allocation of the library goes through here, so a test
 * build can make the k-th allocation fail (spec §12.3) and check that each
 * public call then returns KVR_ENOMEM, leaks nothing and stays usable. */
#include <config.h>
#include <stdlib.h>
#include "base.h"

static long fail_countdown = 0;   /* 0: never fail; k: the k-th allocation from now fails */

void kvr_alloc_fail_at(long k)
{
    fail_countdown = k > 0 ? k : 0;
}

static int should_fail(void)
{
    if (fail_countdown == 0)
        return 0;
    return --fail_countdown == 0;
}

void *kvr_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size ? size : 1);
}

void *kvr_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void kvr_free(void *p)
{
    free(p);
}
