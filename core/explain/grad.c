/* GRAD, gradient x input (Shrikumar 2016): the map is the sum over the
 * channels of x * d f_c / d x. One forward and one backward per batch. */
#include "explain/gradient.h"

static int grad_run(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_batch *b, sm_explain_out *out,
                    sm_err *err)
{
    (void)params;
    return sm_explain_gradient_maps(ctx, b, 1, SM_REDUCE_SUM, out, err);
}

static const sm_param_def grad_params[] = {{NULL}};

const sm_explainer_class sm_explainer_grad = {
    .name = "grad",
    .signed_map = sm_explain_signed,
    .summary = "gradient x input, summed over channels",
    .backward = 1,
    .params = grad_params,
    .params_size = 0,
    .run = grad_run,
};
