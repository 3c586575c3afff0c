/* message.c: the tool's lines on standard error: errors, and a progress
 * line that only a terminal sees.  Every room of tool/ may use it; it calls
 * nothing but the C library. */
#include <config.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include "message.h"

void msg_error(const char *fmt, ...)
{
    va_list ap;
    fputs("kvreviver: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int progress_shown;

void msg_progress(const char *fmt, ...)
{
    if (!isatty(STDERR_FILENO))
        return;
    va_list ap;
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    progress_shown = 1;
}

void msg_progress_done(void)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        progress_shown = 0;
    }
}

