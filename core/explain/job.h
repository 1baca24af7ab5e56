/* sm_explain_job: explain a dataset with several methods and write, per
 * image and method, OUT/maps/<image id>/<method>.npy (float32 H x W, the
 * model's input resolution) and a row of OUT/index.csv:
 *   id,label,predicted,target,score,method,seconds,evals,
 *   deletion_auc,insertion_auc,faithfulness,sparseness,complexity,
 *   sensitivity,precision,coverage,fidelity,rule_length,relevance,params,
 *   extras
 * (params and extras are JSON objects). Each (image, method) is complete
 * when its map and its row (OUT/maps/<id>/<method>.row) exist; both are
 * written atomically, so a run started again with the same OUT skips what
 * is complete and loses nothing. index.csv is assembled from the rows at
 * the end, in dataset order. Methods may use auxiliary models (an
 * autoencoder) besides the classifier, given by name. */
#ifndef SM_EXPLAIN_JOB_H
#define SM_EXPLAIN_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "util/err.h"

typedef enum sm_target_kind {
    SM_TARGET_PREDICTED, /* the model's predicted class (default) */
    SM_TARGET_LABEL,     /* the image's true label */
    SM_TARGET_INDEX,     /* a fixed class index */
} sm_target_kind;

typedef struct sm_explain_job {
    const char *model;        /* ONNX file */
    const char *config;       /* model config YAML, or NULL: the default */
    const char *const *aux_names; /* auxiliary models (ONNX files) that */
    const char *const *aux_paths; /*   methods use, by name: n_aux */
    int n_aux;
    const char *dataset;
    const char *out;          /* output folder */
    const char *const *methods;
    int n_methods;
    const char *const *settings; /* "method.key=value" */
    int n_settings;
    size_t limit;             /* first N images; 0: all */
    uint64_t seed;
    int batch;                /* images per batch */
    sm_target_kind target;
    int target_index;
    int score_prob;           /* 1: explain the probability, 0: the logit */
    int metrics;              /* 1: deletion and insertion AUC and the
                                 quality metrics (metrics.h) */
    sm_metric_params metric;  /* their parameters (zero: the defaults) */
    int progress;             /* 1: a progress bar (terminal), 0: log lines */
    int no_png;               /* 1: no PNGs of the maps (report/finish.h) */
    int scale_job;            /* 1: the PNGs on one scale per method */
} sm_explain_job;

typedef struct sm_explain_stats {
    size_t images, maps_written, maps_skipped, images_failed;
    double seconds;
} sm_explain_stats;

/* Runs the job. A bad image is reported on stderr and skipped (counted in
 * images_failed); a bad model, config, dataset, method or setting is an
 * error before anything is written. 0 or -1 with a message. */
int sm_explain_job_run(const sm_explain_job *job, sm_explain_stats *stats,
                       sm_err *err);

#endif
