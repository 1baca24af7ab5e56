/* Reshape. Opset >= 5: the target shape is input 'shape', which must be a
 * constant int64 tensor (the output shape is planned before any run); opset
 * < 5: the 'shape' attribute. 0 copies the input's dim at that index unless
 * allowzero = 1 (then 0 is a zero dim, refused below as an empty output);
 * one -1 is inferred from the element count. The data is copied. */
#include "ops/op.h"
#include "ops/op_util.h"

typedef struct reshape_params {
    int opset;
    int allowzero;
    int n_shape; /* opset < 5: the attribute */
    int64_t shape[SM_MAX_DIMS];
} reshape_params;

static const char *const reshape_attrs[] = {"shape", "allowzero", NULL};

static int reshape_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    reshape_params *p = p_;
    int64_t az;
    p->opset = sm_attrs_opset(a);
    if (sm_attrs_int(a, "allowzero", 0, &az, err))
        return -1;
    if (az != 0 && az != 1)
        return sm_err_set(err, "attribute 'allowzero' is %lld (must be 0 or 1)",
                          (long long)az);
    p->allowzero = (int)az;
    if (p->opset >= 5) {
        if (sm_attrs_has(a, "shape"))
            return sm_err_set(err, "Reshape attribute 'shape' exists only "
                              "before opset 5 (the model imports opset %d, "
                              "where the shape is an input)", p->opset);
        return 0;
    }
    if (!sm_attrs_has(a, "shape"))
        return sm_err_set(err, "attribute 'shape' is required by Reshape "
                          "before opset 5");
    return sm_attrs_ints(a, "shape", p->shape, SM_MAX_DIMS, &p->n_shape, err);
}

static int reshape_infer(const void *p_, const sm_tensor *const *in, int n_in,
                         sm_tensor *const *out, int n_out, sm_err *err)
{
    const reshape_params *p = p_;
    const sm_tensor *x = in[0];
    const int64_t *want;
    int n;
    char buf[256];
    (void)n_out;
    if (sm_op_need_float(x, "data", "Reshape", err))
        return -1;
    if (p->opset >= 5) {
        if (n_in < 2 || !in[1])
            return sm_err_set(err, "Reshape needs input 'shape' (opset %d)",
                              p->opset);
        if (sm_op_need_i64_const(in[1], "shape", "Reshape", err))
            return -1;
        if (in[1]->ndim == 1 && in[1]->shape[0] > SM_MAX_DIMS)
            return sm_op_shape_err(err, "shape", in[1], "salmap supports at "
                                   "most %d dims", SM_MAX_DIMS);
        want = in[1]->i64;
        n = (int)sm_tensor_numel(in[1]);
    } else {
        if (n_in > 1)
            return sm_err_set(err, "Reshape takes the shape as an input only "
                              "since opset 5 (the model imports opset %d)",
                              p->opset);
        want = p->shape;
        n = p->n_shape;
    }

    int64_t shape[SM_MAX_DIMS], known = 1;
    int infer_at = -1;
    const char *w = sm_shape_str(n, want, buf, sizeof buf);
    for (int i = 0; i < n; i++) {
        int64_t d = want[i];
        if (d == 0 && !p->allowzero) {
            if (i >= x->ndim)
                return sm_op_shape_err(err, "data", x, "Reshape to %s copies "
                                       "dim %d, which the input lacks", w, i);
            d = x->shape[i];
        } else if (d == -1) {
            if (infer_at >= 0)
                return sm_err_set(err, "Reshape to %s: more than one -1", w);
            infer_at = i;
            shape[i] = -1;
            continue;
        } else if (d < -1) {
            return sm_err_set(err, "Reshape to %s: negative dim %lld", w,
                              (long long)d);
        }
        /* d >= 0 here; a product past int64 cannot match the input. */
        if (d && known > INT64_MAX / d)
            return sm_op_shape_err(err, "data", x, "it cannot be reshaped to "
                                   "%s (more than 2^63 elements)", w);
        shape[i] = d;
        known *= d;
    }
    int64_t numel = sm_tensor_numel(x);
    if (infer_at >= 0) {
        if (known == 0 || numel % known)
            return sm_op_shape_err(err, "data", x, "it cannot be reshaped to "
                                   "%s (%lld elements)", w, (long long)numel);
        shape[infer_at] = numel / known;
    } else if (known != numel) {
        return sm_op_shape_err(err, "data", x, "it cannot be reshaped to %s "
                               "(%lld elements, not %lld)", w,
                               (long long)numel, (long long)known);
    }
    if (sm_op_check_out_shape(n, shape, "Reshape", err))
        return -1;
    sm_op_set_shape(out[0], n, shape);
    return 0;
}

const sm_op_class sm_op_reshape = {
    .name = "Reshape",
    .params_size = sizeof(reshape_params),
    .attrs = reshape_attrs,
    .min_inputs = 1, .max_inputs = 2,
    .min_outputs = 1, .max_outputs = 1,
    .parse = reshape_parse,
    .infer = reshape_infer,
    .run = sm_op_copy_run,
    .backward = sm_op_copy_backward,
    .backward_fresh = sm_op_copy_backward_fresh,
    .bwd_fresh_inputs = 1,
};
