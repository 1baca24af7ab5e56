/* Extremal perturbation's objective, exposed for its finite-difference
 * test: the method itself is reached through the registry ("extremal"). */
#ifndef SM_EXTREMAL_H
#define SM_EXTREMAL_H

#include "explain/explainer.h"

/* The objective of each image of b at grid parameters p (N x ceil(H/step)
 * x ceil(W/step)) into loss[N], its gradient with respect to p into dp.
 * 0, or -1 with a message. */
int sm_extremal_objective(const sm_explain_ctx *ctx, const sm_explain_batch *b,
                          int delete_variant, double area, int step,
                          double sigma, double blur_sigma, double lambda,
                          const double *p, double *loss, double *dp,
                          sm_err *err);

#endif
