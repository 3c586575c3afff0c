/* error.c: status codes, messages and the replaceable error handler (spec §12).
 *
 * Every failing call goes through kvr_fail(), which formats a message naming
 * the argument and its value, keeps it for kvr_last_error() (one per thread)
 * and hands it to the installed handler.  Nothing is printed by default. */
#include <config.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "base.h"

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
    case KVR_EBUDGET:    return "budget too small";
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

/* The message is "<kvr_strerror(status)>: <the formatted text>".  A text
 * that quotes an earlier message of the same code (a call that wraps a
 * failure of another, as "malformed file: f: malformed file: ...") keeps the
 * code's name once: the quoted one is cut out, so a message never repeats
 * itself. */
int kvr_fail(int status, const char *fmt, ...)
{
    va_list ap;
    char text[sizeof last_message];
    const char *name = kvr_strerror(status);
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t len = strlen(name);
    for (char *p = text; (p = strstr(p, name)) != NULL;) {
        if (p[len] == ':' && p[len + 1] == ' ' && (p == text || p[-1] == ' ' || p[-1] == '('))
            memmove(p, p + len + 2, strlen(p + len + 2) + 1);
        else
            p += len;
    }
    size_t room = sizeof last_message - len - 3, n = strlen(text);   /* names are short */
    memcpy(last_message, name, len);
    memcpy(last_message + len, ": ", 2);
    memcpy(last_message + len + 2, text, n < room ? n : room);
    last_message[len + 2 + (n < room ? n : room)] = '\0';
    if (handler)
        handler(status, last_message);
    return status;
}

const char *kvr_version(void)
{
    return PACKAGE_VERSION;
}
