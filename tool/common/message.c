/* message.c: the tool's lines on standard error: errors, and a progress
 * line (redrawn on a terminal, plain lines every few seconds elsewhere).  Every room of tool/ may use it; it calls
 * nothing but the C library. */
#include <config.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- progress --------------------------------------------------------------
 * On a terminal the progress line is redrawn in place.  Anywhere else (a
 * pipe, a file, a CI log) the same line is printed as a plain line, at most
 * once every KVR_PROGRESS_INTERVAL seconds (default 5; 0 prints every
 * update; a negative value turns it off), so a long run is never silent. */

static double clock_start;
static double last_plain;          /* when the last plain line was printed */
static double interval = -2.0;     /* -2: not read from the environment yet */
static char current[256];          /* the message of the current item */
static long cur_done, cur_total;   /* its count; cur_total 0: no count */

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double plain_interval(void)
{
    if (interval == -2.0) {
        const char *e = getenv("KVR_PROGRESS_INTERVAL");
        char *end;
        double v = e && *e ? strtod(e, &end) : 5.0;
        interval = e && *e && (*end || v != v) ? 5.0 : v;
    }
    return interval;
}

/* Print the current line: redrawn on a terminal, plain (throttled)
 * otherwise; frac in [0, 1) is how much of the current item is done. */
static void show(double frac, int force_tty)
{
    double now = seconds_now(), elapsed = now - clock_start;
    int tty = isatty(STDERR_FILENO);
    if (tty && !force_tty && now - last_plain < 1.0)   /* a terminal: redrawn at most once a second by ticks */
        return;
    if (!tty) {                 /* plain lines only once a long run started its clock */
        double every = plain_interval();
        if (clock_start == 0.0)
            return;
        if (every < 0.0 || now - last_plain < every)
            return;
    }
    last_plain = now;
    char tail[128] = "";
    if (cur_total > 0) {
        char e[32], left[64] = "";
        msg_duration(e, sizeof e, elapsed);
        double done = (double)cur_done + frac;
        if (done > 0.0 && cur_total >= cur_done) {
            char l[32];
            msg_duration(l, sizeof l, elapsed * ((double)cur_total - done) / done);
            snprintf(left, sizeof left, ", about %s left", l);
        }
        snprintf(tail, sizeof tail, "  [%ld/%ld, %s elapsed%s]", cur_done, cur_total, e, left);
    } else if (clock_start > 0.0 && elapsed >= 1.0) {   /* no clock: no time */
        char e[32];
        msg_duration(e, sizeof e, elapsed);
        snprintf(tail, sizeof tail, "  [%s elapsed]", e);
    }
    if (tty) {
        fprintf(stderr, "\r\033[K%s%s", current, tail);
        progress_shown = 1;
    } else {
        fprintf(stderr, "kvreviver: %s%s\n", current, tail);
    }
    fflush(stderr);
}

void msg_progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current, sizeof current, fmt, ap);
    va_end(ap);
    cur_done = cur_total = 0;
    show(0.0, 1);
}

void msg_progress_done(void)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        progress_shown = 0;
    }
    current[0] = '\0';
}

void msg_progress_clock(void)
{
    clock_start = last_plain = seconds_now();
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
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current, sizeof current, fmt, ap);
    va_end(ap);
    cur_done = done;
    cur_total = total;
    show(0.0, 1);
}

void msg_progress_tick(double frac)
{
    if (!current[0])
        return;
    show(frac < 0.0 ? 0.0 : frac > 1.0 ? 1.0 : frac, 0);
}
