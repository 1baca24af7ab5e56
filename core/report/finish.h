/* sm_output_finish: what a finished job leaves for people beside its maps
 * (docs/OUTPUTS.md): the PNGs of every map, the comparison figure
 * (figure.png, figure.svg) and the report (report/index.html). Written at
 * the end of every job, embedded or distributed; `salmap report OUT`
 * writes them again on demand. */
#ifndef SM_REPORT_FINISH_H
#define SM_REPORT_FINISH_H

#include "util/err.h"

typedef struct sm_output_opts {
    int png;       /* 1: the PNGs of every map (the default) */
    int scale_job; /* 1: one colour scale per method across the job */
    /* sm_output_start: called from the pass's thread once it has ended
     * (e.g. to wake a poll loop); NULL: nothing */
    void (*on_end)(void *u);
    void *on_end_u;
} sm_output_opts;

/* Writes the PNGs (unless !o->png), the figure and the report of OUT from
 * its files (job.json, index.csv, maps/). Every part is tried; -1 with
 * the first failure's message after the others ran, 0 when all did. */
int sm_output_finish(const char *out, const sm_output_opts *o, sm_err *err);

/* The same in a thread of its own, so that a broker keeps serving while
 * the pages are written. NULL with a message when it cannot start. */
typedef struct sm_output_task sm_output_task;
sm_output_task *sm_output_start(const char *out, const sm_output_opts *o,
                                sm_err *err);
/* 1 once the pass has ended (sm_output_join then returns at once). */
int sm_output_ended(const sm_output_task *t);
/* Waits for the pass, frees t (NULLs it) and returns its result: 0 or -1
 * with its message. */
int sm_output_join(sm_output_task **t, sm_err *err);

#endif
