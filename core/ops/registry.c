/* The supported operator set: one line an operator. */
#include <string.h>

#include "ops/op.h"

extern const sm_op_class sm_op_add, sm_op_sub, sm_op_mul, sm_op_div;
extern const sm_op_class sm_op_relu, sm_op_leakyrelu, sm_op_sigmoid,
    sm_op_tanh, sm_op_clip;
extern const sm_op_class sm_op_softmax, sm_op_logsoftmax;
extern const sm_op_class sm_op_maxpool, sm_op_averagepool,
    sm_op_globalaveragepool;
extern const sm_op_class sm_op_flatten, sm_op_reshape, sm_op_transpose,
    sm_op_concat, sm_op_pad;
extern const sm_op_class sm_op_batchnormalization;
extern const sm_op_class sm_op_identity, sm_op_dropout, sm_op_constant;
extern const sm_op_class sm_op_conv, sm_op_gemm, sm_op_matmul;

static const sm_op_class *const all[] = {
    &sm_op_add,
    &sm_op_averagepool,
    &sm_op_batchnormalization,
    &sm_op_clip,
    &sm_op_concat,
    &sm_op_constant,
    &sm_op_conv,
    &sm_op_div,
    &sm_op_dropout,
    &sm_op_flatten,
    &sm_op_gemm,
    &sm_op_globalaveragepool,
    &sm_op_identity,
    &sm_op_leakyrelu,
    &sm_op_logsoftmax,
    &sm_op_matmul,
    &sm_op_maxpool,
    &sm_op_mul,
    &sm_op_pad,
    &sm_op_relu,
    &sm_op_reshape,
    &sm_op_sigmoid,
    &sm_op_softmax,
    &sm_op_sub,
    &sm_op_tanh,
    &sm_op_transpose,
    NULL,
};

const sm_op_class *sm_op_find(const char *op_type)
{
    for (int i = 0; all[i]; i++)
        if (strcmp(all[i]->name, op_type) == 0)
            return all[i];
    return NULL;
}

const sm_op_class *const *sm_op_all(void)
{
    return all;
}
