#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int vset(sm_err *err, int sys, const char *fmt, va_list ap)
{
    if (err) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        err->sys = sys;
    }
    return -1;
}

int sm_err_set(sm_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int sm_err_set_sys(sm_err *err, int sys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, sys, fmt, ap);
    va_end(ap);
    return -1;
}

int sm_err_prefix(sm_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char head[SM_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    /* Truncation is fine: the head and the start of the old message matter
     * most. */
    size_t hl = strlen(head);
    if (hl > SM_ERR_MAX - 3)
        hl = SM_ERR_MAX - 3;
    size_t ol = strnlen(err->msg, SM_ERR_MAX - 1);
    if (hl + 2 + ol > SM_ERR_MAX - 1)
        ol = SM_ERR_MAX - 1 - hl - 2;
    memmove(err->msg + hl + 2, err->msg, ol);
    memcpy(err->msg, head, hl);
    err->msg[hl] = ':';
    err->msg[hl + 1] = ' ';
    err->msg[hl + 2 + ol] = '\0';
    return -1;
}

void sm_err_clear(sm_err *err)
{
    if (err) {
        err->msg[0] = '\0';
        err->sys = 0;
    }
}

int sm_err_disk_full(const sm_err *err)
{
    return err->sys == ENOSPC || err->sys == EDQUOT;
}
