/* sm_explain_task: what a worker computes, in memory, without files: the
 * targets of a batch, its maps and metrics; or one chunk of a round of an
 * image's neighbourhood, and the step over all of a round's scores. The pipeline (broker,
 * worker) and the direct loop (job.c) both call these, so a map is the
 * same bits whichever ran it. */
#ifndef SM_EXPLAIN_TASK_H
#define SM_EXPLAIN_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "explain/explainer.h"
#include "explain/job.h"
#include "metrics/metrics.h"

/* What the tasks of one job share on one worker (all borrowed). */
typedef struct sm_explain_setup {
    sm_model *model;
    int out_idx;              /* the output holding class scores */
    int output_probs;         /* that output holds probabilities */
    uint64_t seed;
    sm_target_kind target;
    int target_index;         /* SM_TARGET_INDEX */
    int score_prob;
    int metrics;              /* deletion and insertion AUC and the quality
                                 metrics (metrics.h) */
    sm_metric_params metric;  /* their parameters (zero: the defaults) */
    const sm_explain_aux *aux; /* the job's auxiliary models */
    int n_aux;
    const sm_preproc *preproc; /* the model's preprocessing (borrowed) */
} sm_explain_setup;

/* One image's outcome. */
typedef struct sm_explain_result {
    int failed;               /* 1: error holds why; nothing else is set */
    char error[SM_ERR_MAX];
    int predicted, target;
    double score;
    long evals;
    double seconds;
    float *map;               /* h x w, the caller's buffer (untouched
                                 for a method with no_map) */
    sm_record record;         /* the method's; freed by
                                 sm_explain_results_free */
    int has_metrics;
    double deletion_auc, insertion_auc;
    /* with has_metrics; NaN: undefined, or max-sensitivity off */
    double faithfulness, sparseness, complexity, sensitivity;
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
 * s->metrics, their metrics (max-sensitivity explains each image again with
 * e: do not share e with another thread meanwhile). 0 or -1. */
int sm_explain_images(const sm_explain_setup *s, sm_explainer *e,
                      const sm_tensor *x, const char *const *ids,
                      sm_explain_result *res, sm_err *err);

/* Neighbourhood methods (sm_explainer_chunked): the rounds of image x
 * (1 x C x H x W, borrowed with id until destroyed) for target `target`,
 * begun (state NULL) or taken up from the state the pipeline carried.
 * Chunks of its round: sm_explain_rounds_score. NULL with a message. */
sm_explain_rounds *sm_explain_rounds_open(const sm_explain_setup *s,
                                          sm_explainer *e, const sm_tensor *x,
                                          const char *id, int target,
                                          const uint8_t *state, size_t len,
                                          sm_err *err);

/* A step: the n scores y of r's round in, then the next round proposed
 * (1: r holds it, to encode and score) or the image finished into res
 * with its metrics (0; res->predicted and res->target set by the caller,
 * res->seconds the step's own time: the chunks were scored elsewhere).
 * -1 with a message. */
int sm_explain_step(const sm_explain_setup *s, sm_explain_rounds *r,
                    const sm_tensor *x, const double *y, int64_t n,
                    sm_explain_result *res, sm_err *err);

/* Frees the records of res[0..n). */
void sm_explain_results_free(sm_explain_result *res, int64_t n);

#endif
