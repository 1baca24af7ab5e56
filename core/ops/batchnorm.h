/* BatchNormalization's per-channel affine form, shared with the engine's
 * folding of BatchNormalization into the Conv before it. */
#ifndef SM_BATCHNORM_H
#define SM_BATCHNORM_H

#include "ops/op.h"

extern const sm_op_class sm_op_batchnormalization;

/* Writes the y = a * x + b that an inference BatchNormalization with params
 * p (a node of sm_op_batchnormalization) and inputs in[1..4] (scale, B,
 * mean, var: C floats each) applies per channel, into a and b. */
void sm_batchnorm_affine(const void *p, const sm_tensor *const *in, float *a,
                         float *b);

#endif
