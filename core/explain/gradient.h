/* What the gradient family shares: target scores, their gradient with
 * respect to the input, and reducing C x H x W to an H x W map. */
#ifndef SM_EXPLAIN_GRADIENT_H
#define SM_EXPLAIN_GRADIENT_H

#include "explain/explainer.h"

/* The target score of each image of x (N x C x H x W) into score[N]: the
 * logit, or the softmax probability (ctx->score_prob), or the output itself
 * when it holds probabilities. One forward run. */
int sm_explain_scores(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, double *score, sm_err *err);

/* The gradient of each image's target score with respect to its input, into
 * grad (N x C x H x W floats), and the scores (score may be NULL). One
 * forward and one backward. */
int sm_explain_gradient(const sm_explain_ctx *ctx, const sm_tensor *x,
                        const int *target, float *grad, double *score,
                        sm_err *err);

typedef enum sm_reduce {
    SM_REDUCE_SUM,     /* sum over channels (signed) */
    SM_REDUCE_MAX_ABS, /* max over channels of |v| */
} sm_reduce;

/* One image: v (C x HW) reduced over channels into map (HW). */
void sm_explain_reduce(const float *v, int64_t c, int64_t hw, sm_reduce how,
                       float *map);

#endif
