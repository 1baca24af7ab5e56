/* What the gradient and perturbation families share: target scores, their
 * gradient with respect to the input, reducing C x H x W to an H x W map,
 * and many perturbed copies of images evaluated in batches. */
#ifndef SM_EXPLAIN_GRADIENT_H
#define SM_EXPLAIN_GRADIENT_H

#include "explain/explainer.h"
#include "model/score.h"

/* How ctx scores images (its model, output and kind of score). */
sm_model_scoring sm_explain_scoring(const sm_explain_ctx *ctx);

/* The target score of each image of x (N x C x H x W) into score[N]:
 * sm_model_target_scores with ctx's scoring. One forward run. */
int sm_explain_scores(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, double *score, sm_err *err);

/* The gradient of each image's target score with respect to its input, into
 * grad (N x C x H x W floats), and the scores (score may be NULL). One
 * forward and one backward. */
int sm_explain_gradient(const sm_explain_ctx *ctx, const sm_tensor *x,
                        const int *target, float *grad, double *score,
                        sm_err *err);

/* Rows of x one forward + backward run should take
 * (sm_model_backward_rows: chunks only for memory-bound models); the
 * gradient methods run larger batches as runs of this many. >= 1, or -1
 * with a message. */
int64_t sm_explain_backward_rows(const sm_explain_ctx *ctx,
                                 const sm_tensor *x, sm_err *err);

typedef enum sm_reduce {
    SM_REDUCE_SUM,     /* sum over channels (signed) */
    SM_REDUCE_MAX_ABS, /* max over channels of |v| */
} sm_reduce;

/* The maps of the single-gradient methods for a whole batch: the gradient
 * (times the input when times_input), reduced over channels; scores and
 * one evaluation per image recorded in out. One forward and one backward
 * (a run of sm_explain_backward_rows images at a time). */
int sm_explain_gradient_maps(const sm_explain_ctx *ctx,
                             const sm_explain_batch *b, int times_input,
                             sm_reduce how, sm_explain_out *out, sm_err *err);

/* One image: v (C x HW) reduced over channels into map (HW). */
void sm_explain_reduce(const float *v, int64_t c, int64_t hw, sm_reduce how,
                       float *map);

/* Many perturbed copies of each image (IG's path points, SmoothGrad's noisy
 * samples), evaluated in batches: copy k of image i is written by make(),
 * and after its forward + backward take() receives it with its gradient and
 * its target score. Copies of several images share a run, at most cap
 * copies a run, so small images fill the model's batch; take() sees image
 * i's copies in increasing k whatever the chunking. With per_image, a run
 * holds one image's copies only. Results do not depend on it (every
 * operator computes each image on its own, ops/sgemm.h): it only changes
 * how copies are grouped into runs. */
typedef struct sm_explain_copies {
    int64_t copies; /* per image */
    int64_t cap;    /* copies per model run, >= 1 */
    int per_image;  /* 1: runs never mix images (grouping only) */
    void (*make)(void *u, int64_t i, int64_t k, float *dst);
    void (*take)(void *u, int64_t i, int64_t k, const float *copy,
                 const float *grad, double score);
    void *u;
    int labels;     /* 1: take() receives each copy's label, the model's
                       highest class (first of equals), as its score */
    int parallel;   /* 1: make() may run on the model's threads at once
                       (it writes dst only), a share of a run's copies
                       each */
} sm_explain_copies;

int sm_explain_gradient_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                               const int *target, const sm_explain_copies *how,
                               sm_err *err);

/* The same without the backward (occlusion, RISE): one forward a run, and
 * take() receives grad NULL with each copy's target score. */
int sm_explain_score_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                            const int *target, const sm_explain_copies *how,
                            sm_err *err);

#endif
