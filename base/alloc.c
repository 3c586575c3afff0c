/* alloc.c: every allocation of the library goes through here, so a test
 * build can make the k-th allocation fail (spec §12.3) and check that each
 * public call then returns KVR_ENOMEM, leaks nothing and stays usable. */
#include <config.h>
#include <stdint.h>
#include <stdlib.h>
#include "base.h"

static long fail_countdown = 0;   /* 0: never fail; k: the k-th allocation from now fails */
static _Thread_local size_t largest = 0;   /* the largest request on this thread since the reset */

/* The largest single request (in bytes) made on this thread since the last
 * kvr_alloc_largest_reset(): the fuzz targets and tests/file.c check with
 * it that a parser never asks for more than its input can justify. */
size_t kvr_alloc_largest(void)
{
    return largest;
}

void kvr_alloc_largest_reset(void)
{
    largest = 0;
}

static void note(size_t bytes)
{
    if (bytes > largest)
        largest = bytes;
}

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
    note(size);
    return should_fail() ? NULL : malloc(size ? size : 1);
}

void *kvr_calloc(size_t count, size_t size)
{
    note(size && count > SIZE_MAX / size ? SIZE_MAX : count * size);
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void kvr_free(void *p)
{
    free(p);
}
