/* SAL, the vanilla gradient (Simonyan 2013): the map is the largest
 * |d f_c / d x| over the channels of each pixel. One forward and one
 * backward per batch. */
#include "explain/gradient.h"

static int sal_run(const void *params, const sm_explain_ctx *ctx,
                   const sm_explain_batch *b, sm_explain_out *out,
                   sm_err *err)
{
    (void)params;
    return sm_explain_gradient_maps(ctx, b, 0, SM_REDUCE_MAX_ABS, out, err);
}

static const sm_param_def sal_params[] = {{NULL}};

const sm_explainer_class sm_explainer_sal = {
    .name = "sal",
    .summary = "vanilla gradient: max over channels of |d score / d x|",
    .backward = 1,
    .params = sal_params,
    .params_size = 0,
    .run = sal_run,
};
