/* Flatten: [d0..dn) -> [d0*..*d(axis-1), daxis*..*d(n-1)], axis in [-n, n]
 * (default 1). The data is copied into the output's own buffer. */
#include <string.h>

#include "ops/op.h"
#include "ops/op_util.h"

typedef struct flatten_params {
    int64_t axis;
} flatten_params;

static const char *const flatten_attrs[] = {"axis", NULL};

static int flatten_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    flatten_params *p = p_;
    return sm_attrs_int(a, "axis", 1, &p->axis, err);
}

static int flatten_infer(const void *p_, const sm_tensor *const *in, int n_in,
                         sm_tensor *const *out, int n_out, sm_err *err)
{
    const flatten_params *p = p_;
    const sm_tensor *x = in[0];
    (void)n_in;
    (void)n_out;
    if (sm_op_need_float(x, "input", "Flatten", err))
        return -1;
    /* Unlike most axes, Flatten's may equal the rank. */
    if (p->axis < -(int64_t)x->ndim || p->axis > x->ndim)
        return sm_op_shape_err(err, "input", x, "Flatten attribute 'axis' is "
                               "%lld (must be in [%d, %d])", (long long)p->axis,
                               -x->ndim, x->ndim);
    int ax = (int)(p->axis < 0 ? p->axis + x->ndim : p->axis);
    int64_t shape[2] = {sm_op_prod(x->shape, 0, ax),
                        sm_op_prod(x->shape, ax, x->ndim)};
    sm_op_set_shape(out[0], 2, shape);
    return 0;
}

const sm_op_class sm_op_flatten = {
    .name = "Flatten",
    .params_size = sizeof(flatten_params),
    .attrs = flatten_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = flatten_parse,
    .infer = flatten_infer,
    .run = sm_op_copy_run,
    .backward = sm_op_copy_backward,
    .backward_fresh = sm_op_copy_backward_fresh,
    .bwd_fresh_inputs = 1,
};
