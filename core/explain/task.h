/* sm_explain_task: what a worker computes, in memory, without files: the
 * targets of a batch, its maps and metrics; or one chunk of an image's
 * neighbourhood and the fit over all of its scores. The pipeline (broker,
 * worker) and the direct loop (job.c) both call these, so a map is the
 * same bits whichever ran it. */
#ifndef SM_EXPLAIN_TASK_H
#define SM_EXPLAIN_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "explain/explainer.h"
#include "explain/job.h"

/* What the tasks of one job share on one worker (all borrowed). */
typedef struct sm_explain_setup {
    sm_model *model;
    int out_idx;              /* the output holding class scores */
    int output_probs;         /* that output holds probabilities */
    uint64_t seed;
    sm_target_kind target;
    int target_index;         /* SM_TARGET_INDEX */
    int score_prob;
    int metrics;              /* deletion and insertion AUC */
} sm_explain_setup;

/* One image's outcome. */
typedef struct sm_explain_result {
    int failed;               /* 1: error holds why; nothing else is set */
    char error[SM_ERR_MAX];
    int predicted, target;
    double score;
    long evals;
    double seconds;
    float *map;               /* h x w, the caller's buffer */
    char extras[2048];        /* JSON */
    int has_metrics;
    double deletion_auc, insertion_auc;
} sm_explain_result;

/* The prediction of each of the n images of x (N >= n x C x H x W) and its
 * target by s->target: labels[r] is image r's class index (-1: unknown),
 * used for SM_TARGET_LABEL. An image whose target is not a model class is
 * marked failed in res[r] with a message naming ids[r]. -1 only when the
 * model fails. */
int sm_explain_targets(const sm_explain_setup *s, const sm_tensor *x,
                       const int *labels, const char *const *ids,
                       sm_explain_result *res, sm_err *err);

/* Explains the images of x not marked failed with e (their predicted and
 * target already set by sm_explain_targets), fills res (maps into the
 * res[r].map buffers, seconds = the batch's time shared evenly) and, when
 * s->metrics, their deletion and insertion AUC. 0 or -1. */
int sm_explain_images(const sm_explain_setup *s, sm_explainer *e,
                      const sm_tensor *x, const char *const *ids,
                      sm_explain_result *res, sm_err *err);

/* Neighbourhood methods (sm_explainer_chunked): the number of samples of
 * image x (1 x C x H x W) with target `target`, or -1 with a message. */
int64_t sm_explain_samples(const sm_explain_setup *s, sm_explainer *e,
                           const sm_tensor *x, const char *id, int target,
                           sm_err *err);

/* Scores samples [first, first + count) of that neighbourhood into y. */
int sm_explain_chunk(const sm_explain_setup *s, sm_explainer *e,
                     const sm_tensor *x, const char *id, int target,
                     int64_t first, int64_t count, double *y, sm_err *err);

/* The image's result from all n of its scores (res->predicted and
 * res->target set by the caller); metrics as sm_explain_images. */
int sm_explain_fit(const sm_explain_setup *s, sm_explainer *e,
                   const sm_tensor *x, const char *id, const double *y,
                   int64_t n, sm_explain_result *res, sm_err *err);

#endif
