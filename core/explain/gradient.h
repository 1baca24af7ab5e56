/* What the gradient family shares: target scores, their gradient with
 * respect to the input, and reducing C x H x W to an H x W map. */
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

typedef enum sm_reduce {
    SM_REDUCE_SUM,     /* sum over channels (signed) */
    SM_REDUCE_MAX_ABS, /* max over channels of |v| */
} sm_reduce;

/* The maps of the single-gradient methods for a whole batch: the gradient
 * (times the input when times_input), reduced over channels; scores and
 * one evaluation per image recorded in out. One forward and one backward. */
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
 * holds one image's copies only: BLAS results depend in their last bits on
 * the run's size, so only then is an image's result bit-identical whatever
 * else its batch held. */
typedef struct sm_explain_copies {
    int64_t copies; /* per image */
    int64_t cap;    /* copies per model run, >= 1 */
    int per_image;  /* 1: runs never mix images */
    void (*make)(void *u, int64_t i, int64_t k, float *dst);
    void (*take)(void *u, int64_t i, int64_t k, const float *copy,
                 const float *grad, double score);
    void *u;
} sm_explain_copies;

int sm_explain_gradient_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                               const int *target, const sm_explain_copies *how,
                               sm_err *err);

/* The same without the backward (occlusion, RISE): one forward a run, and
 * take() receives grad NULL with each copy's target score. */
int sm_explain_score_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                            const int *target, const sm_explain_copies *how,
                            sm_err *err);

/* Gauss-Legendre quadrature on [-1, 1]: n nodes in increasing order and
 * their weights, by Newton's method on the Legendre polynomial P_n (intg.c).
 * 0, or -1 when n < 1. */
int sm_gauss_legendre(int n, double *node, double *weight);

/* Through libvips, on planes x h x w floats (each plane on its own). */
/* Gaussian blur with standard deviation sigma (pixels), the kernel cut
 * where it falls below 1/1000 of its peak (3.7 sigma; the least libvips
 * takes), edges extended by copying the border pixels. */
int sm_explain_blur(const float *src, int planes, int h, int w, double sigma,
                    float *dst, sm_err *err);
/* Bilinear resampling to oh x ow with PyTorch's align_corners=False
 * geometry (F.interpolate, Captum): source coordinate (d + 0.5) * h / oh -
 * 0.5, clamped at the borders. */
int sm_explain_upsample(const float *src, int planes, int h, int w,
                        float *dst, int oh, int ow, sm_err *err);

#endif
