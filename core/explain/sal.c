/* SAL, the vanilla gradient (Simonyan 2013): the map is the largest
 * |d f_c / d x| over the channels of each pixel. One forward and one
 * backward per batch. */
#include <stdlib.h>

#include "explain/gradient.h"

static int sal_run(const void *params, const sm_explain_ctx *ctx,
                   const sm_explain_batch *b, sm_explain_out *out,
                   sm_err *err)
{
    (void)params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    float *g = malloc(sizeof(float) * (size_t)sm_tensor_numel(x));
    double *score = malloc(sizeof(double) * (size_t)n);
    int rc = -1;
    if (!g || !score)
        sm_err_set(err, "out of memory");
    else if (sm_explain_gradient(ctx, x, b->target, g, score, err) == 0) {
        for (int64_t i = 0; i < n; i++) {
            sm_explain_reduce(g + i * c * hw, c, hw, SM_REDUCE_MAX_ABS,
                              out[i].map);
            out[i].score = score[i];
            out[i].evals = 1;
        }
        rc = 0;
    }
    free(g);
    free(score);
    return rc;
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
