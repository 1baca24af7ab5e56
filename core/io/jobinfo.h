/* sm_jobinfo: OUT/job.json, what a job was (docs/OUTPUTS.md): written when
 * the job starts and again, with its end, when it finishes, by whichever
 * process writes the maps (the broker, or `salmap explain --direct`).
 * What reads an output folder afterwards (the PNGs, the figure, the
 * report) finds there the dataset, the input size and how each method's
 * map is signed.
 *
 *   {"salmap": 1, "id": "...", "name": "...",
 *    "model": "models/mnist_cnn.onnx", "model_hash": "...",
 *    "config": "...", "dataset": "data/mnist/test",
 *    "input": {"channels": 1, "height": 28, "width": 28},
 *    "methods": [{"name": "sal", "signed": false, "params": {...}}, ...],
 *    "seed": 7, "target": "predicted", "score": "logit", "limit": 0,
 *    "metrics": true, "images": 10000,
 *    "started": "2026-12-06T23:15:00Z", "finished": "..." or null,
 *    "seconds": 12.5, "workers": ["w1", "w2"], "maps": 30000, "failed": 1,
 *    "state": "done",
 *    "failures": [{"id": "3/3_0001", "method": "lime", "error": "..."}]} */
#ifndef SM_IO_JOBINFO_H
#define SM_IO_JOBINFO_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct sm_jobinfo_method {
    const char *name;
    const char *params; /* a JSON object */
    int signed_map;     /* 1: drawn on a diverging colour map */
} sm_jobinfo_method;

/* A map that could not be made (the image's id, the method, why). */
typedef struct sm_jobinfo_failure {
    const char *id, *method, *error;
} sm_jobinfo_failure;

/* Every pointer is borrowed (by sm_jobinfo_write from the caller; in a
 * loaded file, from the file). NULL strings are written as null. */
typedef struct sm_jobinfo {
    const char *id, *name;
    const char *model, *model_hash;
    const char *config;     /* the config's path or text; NULL: default */
    const char *dataset;    /* as the writing process opens it */
    int channels, height, width;
    const sm_jobinfo_method *methods;
    int n_methods;
    uint64_t seed, limit;
    const char *target, *score;
    int metrics;
    uint64_t images;
    double started, finished; /* seconds since the epoch; finished 0:
                                 not finished */
    const char *const *workers; /* who computed maps, by name */
    int n_workers;
    uint64_t maps, failed;
    const char *state;      /* "running", "done", "failed", "cancelled" */
    /* "failures": the failed maps named (at most SM_JOBINFO_FAILURES; an
     * older job.json without the key reads as none) */
    const sm_jobinfo_failure *failures;
    int n_failures;
} sm_jobinfo;

#define SM_JOBINFO_FAILURES 1000

/* Writes OUT/job.json atomically. 0 or -1 with a message. */
int sm_jobinfo_write(const char *out, const sm_jobinfo *ji, sm_err *err);

typedef struct sm_jobinfo_file sm_jobinfo_file;

/* Reads OUT/job.json. NULL with a message naming the file and the key
 * that is missing or of the wrong type. */
sm_jobinfo_file *sm_jobinfo_load(const char *out, sm_err *err);
void sm_jobinfo_file_destroy(sm_jobinfo_file **f);
/* What f holds (borrowed from f). */
const sm_jobinfo *sm_jobinfo_of(const sm_jobinfo_file *f);
/* The method named `name` in ji, or NULL. */
const sm_jobinfo_method *sm_jobinfo_method_find(const sm_jobinfo *ji,
                                                const char *name);

#endif
