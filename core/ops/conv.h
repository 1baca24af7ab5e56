/* Conv's one switch the engine sets: batch-invariant evaluation. */
#ifndef SM_OP_CONV_H
#define SM_OP_CONV_H

#include "ops/op.h"

extern const sm_op_class sm_op_conv;

/* on: every image is its own GEMM (columns of one image only), so an
 * image's results never depend on which images share its run; off (the
 * default): several images' columns share one GEMM, which is faster for
 * small feature maps. params: a node of sm_op_conv's. */
void sm_op_conv_per_image(void *params, int on);

#endif
