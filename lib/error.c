/* error.c: status codes, messages and the replaceable error handler (spec §12).
 *
 * Every failing call goes through kvr_fail(), which formats a message naming
 * the argument and its value, keeps it for kvr_last_error() (one per thread)
 * and hands it to the installed handler.  Nothing is printed by default. */
#include <config.h>
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local char last_message[512];
static kvr_error_handler *handler = NULL;

const char *kvr_strerror(int status)
{
    switch (status) {
    case KVR_OK:         return "success";
    case KVR_EINVAL:     return "invalid argument";
    case KVR_ENOMEM:     return "out of memory";
    case KVR_ENONFINITE: return "NaN or Inf in input";
    case KVR_ERANGE:     return "value not representable in the storage type";
    case KVR_EBUDGET:    return "budget too small for the sinks and the window";
    case KVR_ESTATE:     return "call does not fit the cache's state";
    case KVR_EBACKEND:   return "backend not available";
    case KVR_EIO:        return "input/output error";
    case KVR_EFORMAT:    return "malformed file";
    case KVR_EDROPPED:   return "position was dropped";
    default:             return "unknown status";
    }
}

const char *kvr_last_error(void)
{
    return last_message;
}

kvr_error_handler *kvr_set_error_handler(kvr_error_handler *h)
{
    kvr_error_handler *previous = handler;
    handler = h;
    return previous;
}

int kvr_fail(int status, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(last_message, sizeof last_message, "%s: ", kvr_strerror(status));
    if (n < 0 || (size_t)n >= sizeof last_message)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(last_message + n, sizeof last_message - (size_t)n, fmt, ap);
    va_end(ap);
    if (handler)
        handler(status, last_message);
    return status;
}

const char *kvr_version(void)
{
    return PACKAGE_VERSION;
}
