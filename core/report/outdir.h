/* sm_outdir: a finished job's output folder read back (docs/OUTPUTS.md)
 * for the figure and the report: OUT/index.csv (columns by header name)
 * and, when there, OUT/job.json. Its images are index.csv's ids in order
 * of first appearance, its methods job.json's (else index.csv's, in order
 * of first appearance). */
#ifndef SM_REPORT_OUTDIR_H
#define SM_REPORT_OUTDIR_H

#include <stddef.h>

#include "report/csvtab.h"
#include "io/jobinfo.h"
#include "util/err.h"

#define SM_OUTDIR_NONE ((size_t)-1)
#define SM_OUTDIR_PATH 4096 /* bytes of a path below OUT */

typedef struct sm_outdir_image {
    const char *id, *label, *predicted, *target; /* borrowed: never NULL */
} sm_outdir_image;

typedef struct sm_outdir_method {
    const char *name;
    int signed_map; /* 1 signed, 0 not, -1 unknown (no job.json) */
} sm_outdir_method;

typedef struct sm_outdir {
    const char *out;
    sm_jobinfo_file *jobfile;  /* NULL when OUT/job.json is absent */
    const sm_jobinfo *job;     /* its contents, or NULL */
    sm_csvtab *index;          /* OUT/index.csv */
    sm_outdir_image *images;
    size_t n_images;
    sm_outdir_method *methods;
    int n_methods;
    size_t *rows;              /* n_images x n_methods: the row of index
                                  of (image, method), or SM_OUTDIR_NONE */
    int c_id, c_label, c_predicted, c_target, c_method; /* index columns */
} sm_outdir;

/* Reads OUT. NULL with a message: no such folder, no index.csv (the job
 * wrote no maps yet), index.csv without rows or without an id or method
 * column, an unsafe id or method name (named with its line), a bad
 * job.json. */
sm_outdir *sm_outdir_open(const char *out, sm_err *err);
void sm_outdir_destroy(sm_outdir **od);

/* The image with that id, or SM_OUTDIR_NONE. */
size_t sm_outdir_image_find(const sm_outdir *od, const char *id);
/* The method of that name, or -1. */
int sm_outdir_method_find(const sm_outdir *od, const char *name);
/* The row of index.csv of (image i, method m), or SM_OUTDIR_NONE. */
size_t sm_outdir_row(const sm_outdir *od, size_t i, int m);

/* "OUT/maps/<id>/<file>" into buf (SM_OUTDIR_PATH bytes). 0, or -1 when
 * too long. */
int sm_outdir_path(const sm_outdir *od, char *buf, const char *id,
                   const char *file);
/* 1 when that path is a regular file. */
int sm_outdir_exists(const char *path);

/* 1 when column c of index.csv is one of its numbers (a metric, a time,
 * a count): every non-empty field a number, at least one; the columns
 * naming things (id, label, predicted, target, method, params, extras)
 * never are. */
int sm_outdir_numeric(const sm_outdir *od, int c);

#endif
