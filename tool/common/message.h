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

#endif
