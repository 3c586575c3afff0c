/* message.h: the tool's lines on standard error (tool/common/README). */
#ifndef KVR_MESSAGE_H
#define KVR_MESSAGE_H

/* Print "kvreviver: " and the message, then a newline, to stderr. */
void msg_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A progress line on stderr, redrawn in place, only when stderr is a
 * terminal; msg_progress_done() clears it before other output. */
void msg_progress(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void msg_progress_done(void);
/* Long runs: msg_progress_clock() starts the clock; msg_progress_count()
 * then shows the message followed by "[done/total, 1m05s elapsed, about
 * 3m10s left]", the time left estimated as elapsed * (total - done) / done
 * (no estimate while done is 0).  Only on a terminal, like msg_progress. */
void msg_progress_clock(void);
void msg_progress_count(long done, long total, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* "1h02m", "3m05s" or "42s": a duration of s seconds into buf. */
void msg_duration(char *buf, unsigned long cap, double s);

#endif
