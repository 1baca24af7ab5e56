/* The broker's log lines, and the switch that quiets its progress lines
 * (embedded runs), which is the log's business only. */
#include "broker/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void sm_broker_fault(sm_broker *b, const char *job, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (job)
        sm_broker_warn("job %s: %s", job, msg);
    else
        sm_broker_warn("%s", msg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t k = b->n_faults < BFAULTS ? b->n_faults++ : b->fault_at++ % BFAULTS;
    bfault *f = &b->faults[k];
    b->fault_at %= BFAULTS;
    free(f->job);
    free(f->message);
    /* out of memory: the fault is still logged, and kept without text */
    f->job = job ? strdup(job) : NULL;
    f->message = strdup(msg);
    f->at = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sm_broker_faults_free(sm_broker *b)
{
    for (size_t k = 0; k < b->n_faults; k++) {
        free(b->faults[k].job);
        free(b->faults[k].message);
    }
    b->n_faults = b->fault_at = 0;
}
