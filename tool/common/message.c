/* message.c: the tool's lines on standard error: errors, and a progress
 * line that only a terminal sees.  Every room of tool/ may use it; it calls
 * nothing but the C library. */
#include <config.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
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


static double clock_start;

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void msg_progress_clock(void)
{
    clock_start = seconds_now();
}

void msg_duration(char *buf, unsigned long cap, double s)
{
    long t = s > 0.0 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lds", t);
}

void msg_progress_count(long done, long total, const char *fmt, ...)
{
    if (!isatty(STDERR_FILENO))
        return;
    double elapsed = seconds_now() - clock_start;
    char e[32], left[64] = "";
    msg_duration(e, sizeof e, elapsed);
    if (done > 0 && total >= done) {
        char l[32];
        msg_duration(l, sizeof l, elapsed * (double)(total - done) / (double)done);
        snprintf(left, sizeof left, ", about %s left", l);
    }
    va_list ap;
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "  [%ld/%ld, %s elapsed%s]", done, total, e, left);
    fflush(stderr);
    progress_shown = 1;
}
