/* Identity, and Dropout in inference (output = input). Both copy the data
 * into the output's own buffer: the engine gives every value one. */
#include "ops/op.h"
#include "ops/op_util.h"

/* An int64 constant passes through as one (exporters put Identity on
 * shared initializers, shapes included): the output borrows its values,
 * which live as long as the model or plan that owns the input. */
static int identity_infer(const void *p, const sm_tensor *const *in, int n_in,
                          sm_tensor *const *out, int n_out, sm_err *err)
{
    (void)p;
    (void)n_in;
    (void)n_out;
    (void)err;
    sm_op_set_shape(out[0], in[0]->ndim, in[0]->shape);
    out[0]->i64 = in[0]->i64;
    return 0;
}

const sm_op_class sm_op_identity = {
    .name = "Identity",
    .params_size = sizeof(int),
    .attrs = sm_op_no_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = sm_op_parse_none,
    .infer = identity_infer,
    .run = sm_op_copy_run,
    .backward = sm_op_copy_backward,
    .backward_fresh = sm_op_copy_backward_fresh,
    .bwd_fresh_inputs = 1,
};

/* Dropout: ratio is an attribute before opset 12 and an input after, seed
 * exists from opset 12 and is_test before opset 7; all are irrelevant to
 * inference, where the output is the input. */
static const char *const dropout_attrs[] = {"ratio", "seed", "is_test", NULL};

static int dropout_infer(const void *p, const sm_tensor *const *in, int n_in,
                         sm_tensor *const *out, int n_out, sm_err *err)
{
    (void)p;
    if (n_out > 1 && out[1])
        return sm_err_set(err, "Dropout's second output (mask, boolean) is not "
                          "supported");
    if (sm_op_need_float(in[0], "data", "Dropout", err) ||
        sm_op_need_scalar(n_in > 1 ? in[1] : NULL, "ratio", "Dropout", err))
        return -1;
    if (n_in > 2 && in[2]) {
        const sm_tensor *t = in[2];
        /* Only a constant false keeps the meaning of the graph: training
         * mode drops values at random. */
        int known = (t->data || t->i64) && sm_tensor_numel(t) == 1;
        if (!known || (t->i64 ? t->i64[0] != 0 : t->data[0] != 0))
            return sm_err_set(err, "Dropout input 'training_mode' must be "
                              "absent or a constant false: salmap runs "
                              "inference only");
    }
    sm_op_set_shape(out[0], in[0]->ndim, in[0]->shape);
    return 0;
}

const sm_op_class sm_op_dropout = {
    .name = "Dropout",
    .params_size = sizeof(int),
    .attrs = dropout_attrs,
    .min_inputs = 1, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 2,
    .parse = sm_op_parse_none,
    .infer = dropout_infer,
    .run = sm_op_copy_run,
    .backward = sm_op_copy_backward,
    .backward_fresh = sm_op_copy_backward_fresh,
    .bwd_fresh_inputs = 1,
};
