#include "explain/gradient.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Runs x and checks the output is N x K with every target in range. */
static const sm_tensor *run_scores(const sm_explain_ctx *ctx,
                                   const sm_tensor *x, const int *target,
                                   sm_err *err)
{
    const sm_tensor *in[1] = {x}, *outs[64];
    if (sm_model_n_outputs(ctx->model) > 64)
        return sm_err_set(err, "too many model outputs"), NULL;
    if (sm_model_run(ctx->model, in, 1, outs, err))
        return NULL;
    const sm_tensor *y = outs[ctx->output];
    int64_t n = x->shape[0];
    if (y->ndim != 2 || y->shape[0] != n) {
        char b[96];
        sm_err_set(err, "the model's output %s is not N x classes",
                   sm_shape_str(y->ndim, y->shape, b, sizeof b));
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (target[i] < 0 || target[i] >= y->shape[1]) {
            sm_err_set(err, "target class %d is not among the model's %lld "
                       "outputs", target[i], (long long)y->shape[1]);
            return NULL;
        }
    return y;
}

/* Softmax of row (k values) into p, in double. */
static void softmax_row(const float *row, int64_t k, double *p)
{
    double mx = row[0], s = 0;
    for (int64_t j = 1; j < k; j++)
        mx = row[j] > mx ? row[j] : mx;
    for (int64_t j = 0; j < k; j++)
        s += p[j] = exp((double)row[j] - mx);
    for (int64_t j = 0; j < k; j++)
        p[j] /= s;
}

static int use_softmax(const sm_explain_ctx *ctx)
{
    return ctx->score_prob && !ctx->output_probs;
}

int sm_explain_scores(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, double *score, sm_err *err)
{
    const sm_tensor *y = run_scores(ctx, x, target, err);
    if (!y)
        return -1;
    int64_t n = y->shape[0], k = y->shape[1];
    double *p = use_softmax(ctx) ? malloc(sizeof(double) * (size_t)k) : NULL;
    if (use_softmax(ctx) && !p)
        return sm_err_set(err, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        const float *row = y->data + i * k;
        if (p) {
            softmax_row(row, k, p);
            score[i] = p[target[i]];
        } else {
            score[i] = row[target[i]];
        }
    }
    free(p);
    return 0;
}

int sm_explain_gradient(const sm_explain_ctx *ctx, const sm_tensor *x,
                        const int *target, float *grad, double *score,
                        sm_err *err)
{
    const sm_tensor *y = run_scores(ctx, x, target, err);
    if (!y)
        return -1;
    int64_t n = y->shape[0], k = y->shape[1];
    sm_tensor *seed = sm_tensor_new(2, y->shape);
    double *p = malloc(sizeof(double) * (size_t)k);
    if (!seed || !p) {
        sm_tensor_destroy(&seed);
        free(p);
        return sm_err_set(err, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = y->data + i * k;
        float *s = seed->data + i * k;
        int c = target[i];
        if (use_softmax(ctx)) {
            /* d p_c / d z_j = p_c (delta_cj - p_j) */
            softmax_row(row, k, p);
            for (int64_t j = 0; j < k; j++)
                s[j] = (float)(p[c] * ((j == c) - p[j]));
            if (score)
                score[i] = p[c];
        } else {
            s[c] = 1.0f;
            if (score)
                score[i] = row[c];
        }
    }
    free(p);
    const sm_tensor *g[8];
    int rc = sm_model_backward(ctx->model, ctx->output, seed, g, err);
    sm_tensor_destroy(&seed);
    if (rc)
        return -1;
    memcpy(grad, g[0]->data, (size_t)sm_tensor_numel(x) * sizeof(float));
    return 0;
}

void sm_explain_reduce(const float *v, int64_t c, int64_t hw, sm_reduce how,
                       float *map)
{
    for (int64_t q = 0; q < hw; q++)
        map[q] = how == SM_REDUCE_SUM ? v[q] : fabsf(v[q]);
    for (int64_t ch = 1; ch < c; ch++) {
        const float *vc = v + ch * hw;
        if (how == SM_REDUCE_SUM)
            for (int64_t q = 0; q < hw; q++)
                map[q] += vc[q];
        else
            for (int64_t q = 0; q < hw; q++)
                map[q] = fabsf(vc[q]) > map[q] ? fabsf(vc[q]) : map[q];
    }
}
