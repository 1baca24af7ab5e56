/* Concat along `axis` (required since opset 4, may be negative since 11;
 * default 1 before opset 4). Inputs are float32: int64 shape arithmetic is
 * not supported. */
#include <stdio.h>
#include <string.h>

#include "ops/op.h"
#include "ops/op_util.h"

typedef struct concat_params {
    int64_t axis;
} concat_params;

static const char *const concat_attrs[] = {"axis", NULL};

static int concat_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    concat_params *p = p_;
    if (sm_attrs_opset(a) >= 4 && !sm_attrs_has(a, "axis"))
        return sm_err_set(err, "attribute 'axis' is required by Concat");
    return sm_attrs_int(a, "axis", 1, &p->axis, err);
}

static int concat_infer(const void *p_, const sm_tensor *const *in, int n_in,
                        sm_tensor *const *out, int n_out, sm_err *err)
{
    const concat_params *p = p_;
    const sm_tensor *x = in[0];
    char name[32], want[256];
    (void)n_out;
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "inputs[%d]", i);
        if (!in[i])
            return sm_err_set(err, "Concat input %s is absent", name);
        if (sm_op_need_float(in[i], name, "Concat", err))
            return -1;
    }
    int ax = sm_op_axis(p->axis, x->ndim);
    if (ax < 0)
        return sm_op_shape_err(err, "inputs[0]", x, "Concat attribute 'axis' "
                               "is %lld (must be in [%d, %d])",
                               (long long)p->axis, -x->ndim, x->ndim - 1);
    int64_t shape[SM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    for (int i = 1; i < n_in; i++) {
        const sm_tensor *t = in[i];
        int ok = t->ndim == x->ndim;
        for (int j = 0; ok && j < x->ndim; j++)
            ok = j == ax || t->shape[j] == x->shape[j];
        if (!ok) {
            snprintf(name, sizeof name, "inputs[%d]", i);
            return sm_op_shape_err(err, name, t, "Concat along axis %d needs "
                                   "the other dims of inputs[0] %s", ax,
                                   sm_shape_str(x->ndim, x->shape, want,
                                                sizeof want));
        }
        shape[ax] += t->shape[ax];
    }
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

/* Each outer index takes one contiguous chunk from every input: the
 * forward copies the chunks into y, the backward adds y's gradient's chunks
 * to the wanted inputs' gradients (gin[i] NULL: skipped). */
static void chunks(const concat_params *p, const sm_tensor *const *in,
                   int n_in, float *y, sm_tensor *const *gin, int backward)
{
    int ax = sm_op_axis(p->axis, in[0]->ndim);
    int64_t outer = sm_op_prod(in[0]->shape, 0, ax);
    int64_t inner = sm_op_prod(in[0]->shape, ax + 1, in[0]->ndim);
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n_in; i++) {
            int64_t chunk = in[i]->shape[ax] * inner;
            if (backward && gin[i])
                sm_op_add_to(gin[i]->data + o * chunk, y, chunk);
            else if (!backward && chunk > 0)
                memcpy(y, in[i]->data + o * chunk,
                       (size_t)chunk * sizeof(float));
            y += chunk;
        }
}

static void concat_run(const void *p, const sm_tensor *const *in, int n_in,
                       sm_tensor *const *out, int n_out, float *ws)
{
    (void)n_out;
    (void)ws;
    chunks(p, in, n_in, out[0]->data, NULL, 0);
}

static void concat_backward(const void *p, const sm_tensor *const *in,
                            int n_in, const sm_tensor *const *out, int n_out,
                            const sm_tensor *const *gout,
                            sm_tensor *const *gin, float *ws)
{
    (void)out;
    (void)n_out;
    (void)ws;
    if (gout[0])
        chunks(p, in, n_in, gout[0]->data, gin, 1);
}

const sm_op_class sm_op_concat = {
    .name = "Concat",
    .params_size = sizeof(concat_params),
    .attrs = concat_attrs,
    .min_inputs = 1, .max_inputs = 1 << 20,
    .min_outputs = 1, .max_outputs = 1,
    .parse = concat_parse,
    .infer = concat_infer,
    .run = concat_run,
    .backward = concat_backward,
};
