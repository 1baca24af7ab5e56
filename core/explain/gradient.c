/* Target scores and their gradients, reducing gradients to maps, and
 * perturbed copies of images evaluated in batches. */
#include "explain/gradient.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/pool.h"

sm_model_scoring sm_explain_scoring(const sm_explain_ctx *ctx)
{
    sm_model_scoring s = {ctx->model, ctx->output, ctx->output_probs,
                          ctx->score_prob, 0};
    return s;
}

/* sm_explain_scores; forward_only: by sm_model_infer, for runs nothing
 * goes back through. */
static int scores(const sm_explain_ctx *ctx, const sm_tensor *x,
                  const int *target, double *score, int forward_only,
                  sm_err *err)
{
    sm_model_scoring s = sm_explain_scoring(ctx);
    s.forward_only = forward_only;
    return sm_model_target_scores(&s, x, target, score, err);
}

int sm_explain_scores(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, double *score, sm_err *err)
{
    return scores(ctx, x, target, score, 0, err);
}

int sm_explain_gradient(const sm_explain_ctx *ctx, const sm_tensor *x,
                        const int *target, float *grad, double *score,
                        sm_err *err)
{
    sm_model_scoring sc = sm_explain_scoring(ctx);
    const sm_tensor *y = sm_model_class_scores(&sc, x, target, err);
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
        if (sm_model_scoring_softmax(&sc)) {
            /* d p_c / d z_j = p_c (delta_cj - p_j) */
            sm_model_softmax_row(row, k, p);
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

int64_t sm_explain_backward_rows(const sm_explain_ctx *ctx,
                                 const sm_tensor *x, sm_err *err)
{
    const sm_tensor *in[1] = {x};
    return sm_model_backward_rows(ctx->model, in, 1, err);
}

int sm_explain_gradient_maps(const sm_explain_ctx *ctx,
                             const sm_explain_batch *b, int times_input,
                             sm_reduce how, sm_explain_out *out, sm_err *err)
{
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    int64_t numel = sm_tensor_numel(x);
    float *g = malloc(sizeof(float) * (size_t)numel);
    double *score = malloc(sizeof(double) * (size_t)n);
    const int64_t step = sm_explain_backward_rows(ctx, x, err);
    int rc = step < 0 ? -1 : 0;
    if (rc == 0 && (!g || !score))
        rc = sm_err_set(err, "out of memory");
    for (int64_t r0 = 0; rc == 0 && r0 < n; r0 += step) {
        const int64_t m = n - r0 < step ? n - r0 : step;
        sm_tensor rows = sm_tensor_rows(x, r0, m);
        rc = sm_explain_gradient(ctx, &rows, b->target + r0, g + r0 * c * hw,
                                 score + r0, err);
    }
    if (rc == 0) {
        if (times_input)
            for (int64_t e = 0; e < numel; e++)
                g[e] *= x->data[e];
        for (int64_t i = 0; i < n; i++) {
            sm_explain_reduce(g + i * c * hw, c, hw, how, out[i].map);
            out[i].score = score[i];
            out[i].evals = 1;
        }
    }
    free(g);
    free(score);
    return rc;
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

/* The label of each image of x into label[N] (as doubles): the index of
 * its highest class score, the first of equals, as the prediction. */
static int copy_labels(const sm_explain_ctx *ctx, const sm_tensor *x,
                       const int *target, double *label, sm_err *err)
{
    sm_model_scoring sc = sm_explain_scoring(ctx);
    sc.forward_only = 1;
    const sm_tensor *y = sm_model_class_scores(&sc, x, target, err);
    if (!y)
        return -1;
    int64_t n = y->shape[0], k = y->shape[1];
    for (int64_t i = 0; i < n; i++)
        label[i] = (double)sm_model_argmax_row(y->data + i * k, k);
    return 0;
}

/* A share of a run's copies to make: copies at + j, j in [j0, j1), into
 * dst + j * numel. */
typedef struct copy_share {
    const sm_explain_copies *how;
    float *dst;
    int64_t at, j0, j1, numel;
} copy_share;

static void make_share(void *arg)
{
    const copy_share *s = arg;
    const sm_explain_copies *how = s->how;
    for (int64_t j = s->j0; j < s->j1; j++)
        how->make(how->u, (s->at + j) / how->copies, (s->at + j) % how->copies,
                  s->dst + j * s->numel);
}

/* Copies at .. at + m - 1 into dst: on the model's threads when make()
 * allows it. */
static void make_copies(const sm_explain_ctx *ctx, const sm_explain_copies *how,
                        int64_t at, int64_t m, int64_t numel, float *dst)
{
    int lanes = how->parallel ? sm_model_threads(ctx->model) : 1;
    lanes = lanes > SM_POOL_MAX ? SM_POOL_MAX : lanes < 1 ? 1 : lanes;
    lanes = m < lanes ? (int)m : lanes;
    copy_share share[SM_POOL_MAX];
    for (int l = 0; l < lanes; l++)
        share[l] = (copy_share){how, dst, at, m * l / lanes,
                                m * (l + 1) / lanes, numel};
    sm_pool_run(make_share, share, sizeof share[0], lanes);
}

/* The run loop of sm_explain_gradient_copies and sm_explain_score_copies:
 * with backward, each run is a forward + backward; else a forward only and
 * take() receives grad NULL. */
static int run_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, const sm_explain_copies *how,
                      int backward, sm_err *err)
{
    int64_t n = x->shape[0], numel = sm_tensor_numel(x) / (n ? n : 1);
    int64_t total = n * how->copies;
    int64_t cap = how->cap < total ? how->cap : total;
    if (cap < 1)
        return 0;
    if (backward) {
        const int64_t rows = sm_explain_backward_rows(ctx, x, err);
        if (rows < 0)
            return -1;
        cap = rows < cap ? rows : cap;
    }
    int64_t shape[SM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = cap;
    sm_tensor *batch = sm_tensor_new(x->ndim, shape);
    float *grad = backward ? malloc(sizeof(float) * (size_t)(cap * numel))
                           : NULL;
    double *score = malloc(sizeof(double) * (size_t)cap);
    int *tgt = malloc(sizeof(int) * (size_t)cap);
    int rc = 0;
    if (!batch || (backward && !grad) || !score || !tgt)
        rc = sm_err_set(err, "out of memory");
    for (int64_t at = 0, m; rc == 0 && at < total; at += m) {
        m = total - at < cap ? total - at : cap;
        if (how->per_image && m > how->copies - at % how->copies)
            m = how->copies - at % how->copies;
        batch->shape[0] = m; /* the last run may be shorter */
        make_copies(ctx, how, at, m, numel, batch->data);
        for (int64_t j = 0; j < m; j++)
            tgt[j] = target[(at + j) / how->copies];
        rc = backward     ? sm_explain_gradient(ctx, batch, tgt, grad, score, err)
             : how->labels ? copy_labels(ctx, batch, tgt, score, err)
                           : scores(ctx, batch, tgt, score, 1, err);
        for (int64_t j = 0; rc == 0 && j < m; j++)
            how->take(how->u, (at + j) / how->copies, (at + j) % how->copies,
                      batch->data + j * numel,
                      backward ? grad + j * numel : NULL, score[j]);
    }
    sm_tensor_destroy(&batch);
    free(grad);
    free(score);
    free(tgt);
    return rc;
}

int sm_explain_gradient_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                               const int *target, const sm_explain_copies *how,
                               sm_err *err)
{
    return run_copies(ctx, x, target, how, 1, err);
}

int sm_explain_score_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                            const int *target, const sm_explain_copies *how,
                            sm_err *err)
{
    return run_copies(ctx, x, target, how, 0, err);
}
