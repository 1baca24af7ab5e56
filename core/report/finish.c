/* The pass over a finished job's folder (finish.h). */
#include "report/finish.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render/render_out.h"
#include "report/figure.h"
#include "report/report.h"

/* A map the render pass could not draw: said on stderr, the pass goes on. */
static void say(const char *line, void *u)
{
    fprintf(stderr, "salmap: %s: %s\n", (const char *)u, line);
}

/* Keeps the first failure's message in *err. */
static void keep(int *rc, sm_err *err, const sm_err *e)
{
    if (*rc == 0)
        *err = *e;
    *rc = -1;
}

int sm_output_finish(const char *out, const sm_output_opts *o, sm_err *err)
{
    sm_err e;
    int rc = 0;
    if (o->png) {
        sm_render_opts ro;
        sm_render_opts_init(&ro);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        ro.scale = o->scale_job ? SM_RENDER_SCALE_JOB : SM_RENDER_SCALE_MAP;
        ro.threads = cores > 0 ? (int)cores : 1;
        ro.report = say;
        ro.u = (void *)out;
        sm_render_stats st;
        if (sm_render_out(out, &ro, &st, &e))
            keep(&rc, err, &e);
    }
    sm_figure_opts fo = {0};
    if (sm_report_figure(out, &fo, &e))
        keep(&rc, err, &e);
    if (sm_report_write(out, &e))
        keep(&rc, err, &e);
    return rc;
}

struct sm_output_task {
    pthread_t thread;
    char *out;
    sm_output_opts opts;
    atomic_int ended;
    int rc;
    sm_err err;
};

static void *task_main(void *arg)
{
    sm_output_task *t = arg;
    t->rc = sm_output_finish(t->out, &t->opts, &t->err);
    atomic_store(&t->ended, 1);
    if (t->opts.on_end)
        t->opts.on_end(t->opts.on_end_u);
    return NULL;
}

sm_output_task *sm_output_start(const char *out, const sm_output_opts *o,
                                sm_err *err)
{
    sm_output_task *t = calloc(1, sizeof *t);
    if (!t || !(t->out = strdup(out))) {
        free(t);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    t->opts = *o;
    if (pthread_create(&t->thread, NULL, task_main, t)) {
        free(t->out);
        free(t);
        sm_err_set(err, "%s: cannot start a thread for the report", out);
        return NULL;
    }
    return t;
}

int sm_output_ended(const sm_output_task *t)
{
    return atomic_load(&t->ended);
}

int sm_output_join(sm_output_task **tp, sm_err *err)
{
    sm_output_task *t = *tp;
    pthread_join(t->thread, NULL);
    int rc = t->rc;
    if (rc)
        *err = t->err;
    free(t->out);
    free(t);
    *tp = NULL;
    return rc;
}
