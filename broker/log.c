/* The broker's log lines, and the switch that quiets its progress lines
 * (embedded runs), which is the log's business only. */
#include "broker/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "broker/internal.h"

static void vlog(const char *fmt, va_list ap)
{
    fprintf(stderr, "salmap-broker: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void sm_broker_info(const sm_broker *b, const char *fmt, ...)
{
    if (b->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void sm_broker_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void sm_broker_set_quiet(sm_broker *b, int quiet)
{
    b->quiet = quiet;
}
