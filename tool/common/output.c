/* output.c: the tool's output files, written whole or not at all, and the
 * final check of standard output (output.h).  Calls only the C library and
 * POSIX. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "output.h"

int out_temp_name(char *buf, size_t cap, const char *path)
{
    int n = snprintf(buf, cap, "%s.tmp%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int out_open(out_file *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (strlen(path) >= sizeof o->path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(o->path, path);
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return 0;
    }
    if (out_temp_name(o->tmp, sizeof o->tmp, path) != 0)
        return -1;
    o->f = fopen(o->tmp, "w");
    return o->f ? 0 : -1;
}

int out_commit(out_file *o)
{
    if (!o->f) {
        errno = EBADF;
        return -1;
    }
    if (o->f == stdout) {
        o->f = NULL;
        return fflush(stdout) != 0 || ferror(stdout) ? (errno ? -1 : (errno = EIO, -1)) : 0;
    }
    int err = 0;
    if (fflush(o->f) != 0)
        err = errno;
    if (ferror(o->f) && !err)
        err = EIO;
    if (fclose(o->f) != 0 && !err)
        err = errno;
    o->f = NULL;
    if (!err && rename(o->tmp, o->path) != 0)
        err = errno;
    if (err) {
        remove(o->tmp);
        errno = err;
        return -1;
    }
    return 0;
}

void out_abort(out_file *o)
{
    if (o->f && o->f != stdout) {
        fclose(o->f);
        remove(o->tmp);
    }
    o->f = NULL;
}

int out_check_stdout(void)
{
    errno = 0;
    int failed = fflush(stdout) != 0;
    int err = errno;
    if (ferror(stdout))
        failed = 1;
    if (!failed)
        return 0;
    errno = err ? err : EIO;
    return -1;
}
