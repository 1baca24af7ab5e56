/* GRAD, gradient x input (Shrikumar 2016): the map is the sum over the
 * channels of x * d f_c / d x. One forward and one backward per batch. */
#include <stdlib.h>

#include "explain/gradient.h"

static int grad_run(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_batch *b, sm_explain_out *out,
                    sm_err *err)
{
    (void)params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    int64_t numel = sm_tensor_numel(x);
    float *g = malloc(sizeof(float) * (size_t)numel);
    double *score = malloc(sizeof(double) * (size_t)n);
    int rc = -1;
    if (!g || !score)
        sm_err_set(err, "out of memory");
    else if (sm_explain_gradient(ctx, x, b->target, g, score, err) == 0) {
        for (int64_t e = 0; e < numel; e++)
            g[e] *= x->data[e];
        for (int64_t i = 0; i < n; i++) {
            sm_explain_reduce(g + i * c * hw, c, hw, SM_REDUCE_SUM, out[i].map);
            out[i].score = score[i];
            out[i].evals = 1;
        }
        rc = 0;
    }
    free(g);
    free(score);
    return rc;
}

static const sm_param_def grad_params[] = {{NULL}};

const sm_explainer_class sm_explainer_grad = {
    .name = "grad",
    .summary = "gradient x input, summed over channels",
    .backward = 1,
    .params = grad_params,
    .params_size = 0,
    .run = grad_run,
};
