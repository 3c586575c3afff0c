/* message.h: the tool's lines on standard error (tool/common/README). */
#ifndef KVR_MESSAGE_H
#define KVR_MESSAGE_H

/* Print "kvreviver: " and the message, then a newline, to stderr. */
void msg_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A progress line on stderr: redrawn in place on a terminal; elsewhere (a
 * pipe, a log) printed as a plain line at most every KVR_PROGRESS_INTERVAL
 * seconds (default 5, 0: every update, negative: never), the first after
 * that long, so short runs print none.  msg_progress_done() clears it
 * before other output. */
void msg_progress(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void msg_progress_done(void);
/* Long runs: msg_progress_clock() starts the clock; msg_progress_count()
 * then shows the message followed by "[done/total, 1m05s elapsed, about
 * 3m10s left]", the time left estimated as elapsed * (total - done) / done
 * (no estimate while done is 0), shown like msg_progress.
 * msg_progress_tick(frac) shows the current line again, its estimate
 * counting frac (0 to 1) of the current item as done: long items call it
 * as they go, so a single long cell still reports every few seconds. */
void msg_progress_clock(void);
void msg_progress_count(long done, long total, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void msg_progress_tick(double frac);
/* "1h02m", "3m05s" or "42s": a duration of s seconds into buf. */
void msg_duration(char *buf, unsigned long cap, double s);

#endif
