#include "broker/path.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int bpath_too_long(sm_err *err, const char *what)
{
    return sm_err_set(err, "%.80s: path longer than %d bytes", what,
                      BPATH_MAX - 1);
}

int bpath(char *buf, sm_err *err, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, BPATH_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= BPATH_MAX ? bpath_too_long(err, what) : 0;
}

char *bpath_heap(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}
