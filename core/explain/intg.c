/* INTG, integrated gradients (Sundararajan 2017), as Captum computes it:
 * map = sum over channels of (x - b) * sum_k w_k grad f_c(b + a_k (x - b)),
 * with Gauss-Legendre nodes by default or Captum's Riemann rules. All the
 * path points of several images share a model run (internal_batch), which
 * is what makes it fast on small models. The completeness delta
 * sum(attr) - (f_c(x) - f_c(b)) and f_c(b) are recorded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/gradient.h"
#include "explain/quadrature.h"
#include "explain/resample.h"

typedef struct intg_params {
    int steps;
    char method[SM_PARAM_STR];
    char baseline[SM_PARAM_STR];
    double baseline_value;
    double sigma;
    int internal_batch;
} intg_params;

/* Path fractions a_k in [0, 1] and weights w_k (summing to 1). */
static void path_rule(const char *method, int n, double *a, double *w)
{
    if (strcmp(method, "gausslegendre") == 0) {
        sm_gauss_legendre(n, a, w);
        for (int k = 0; k < n; k++) {
            a[k] = (1 + a[k]) / 2;
            w[k] /= 2;
        }
        return;
    }
    for (int k = 0; k < n; k++) {
        w[k] = 1.0 / n;
        if (strcmp(method, "riemann_left") == 0)
            a[k] = (double)k / n;
        else if (strcmp(method, "riemann_right") == 0)
            a[k] = (k + 1.0) / n;
        else if (strcmp(method, "riemann_middle") == 0)
            a[k] = (k + 0.5) / n;
        else { /* riemann_trapezoid: n >= 2, checked */
            a[k] = (double)k / (n - 1);
            w[k] = (k == 0 || k == n - 1 ? 0.5 : 1.0) / (n - 1);
        }
    }
}

/* The baseline of every image into b (shaped like x). */
static int make_baseline(const intg_params *p, const sm_tensor *x, float *b,
                         sm_err *err)
{
    int64_t numel = sm_tensor_numel(x);
    if (strcmp(p->baseline, "zero") == 0 || strcmp(p->baseline, "constant") == 0) {
        float v = strcmp(p->baseline, "zero") == 0 ? 0.0f : (float)p->baseline_value;
        for (int64_t e = 0; e < numel; e++)
            b[e] = v;
        return 0;
    }
    if (sm_explain_blur(x->data, (int)(x->shape[0] * x->shape[1]),
                        (int)x->shape[2], (int)x->shape[3], p->sigma, b, err))
        return sm_err_prefix(err, "blurred baseline");
    return 0;
}

typedef struct intg_job {
    const float *x, *b;
    const double *alpha, *wk;
    double *acc; /* N x numel: sum_k w_k grad */
    int64_t numel;
} intg_job;

static void intg_make(void *u, int64_t i, int64_t k, float *dst)
{
    const intg_job *j = u;
    const float *x = j->x + i * j->numel, *b = j->b + i * j->numel;
    float a = (float)j->alpha[k];
    for (int64_t e = 0; e < j->numel; e++)
        dst[e] = b[e] + a * (x[e] - b[e]);
}

static void intg_take(void *u, int64_t i, int64_t k, const float *copy,
                      const float *grad, double score)
{
    (void)copy;
    (void)score;
    const intg_job *j = u;
    double *acc = j->acc + i * j->numel, wk = j->wk[k];
    for (int64_t e = 0; e < j->numel; e++)
        acc[e] += wk * grad[e];
}

static int intg_run(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_batch *bt, sm_explain_out *out,
                    sm_err *err)
{
    const intg_params *p = params;
    const sm_tensor *x = bt->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    int64_t numel = c * hw;
    int steps = p->steps;
    /* x and b stacked: one forward gives f(x) and f(b) */
    int64_t shape2[SM_MAX_DIMS];
    memcpy(shape2, x->shape, sizeof shape2);
    shape2[0] = 2 * n;
    sm_tensor *xb = sm_tensor_new(x->ndim, shape2);
    double *alpha = malloc(sizeof(double) * (size_t)steps);
    double *wk = malloc(sizeof(double) * (size_t)steps);
    double *acc = calloc((size_t)(n * numel), sizeof(double));
    double *f = malloc(sizeof(double) * (size_t)(2 * n));
    int *tgt = malloc(sizeof(int) * (size_t)(2 * n));
    float *attr = malloc(sizeof(float) * (size_t)numel);
    int rc = -1;
    if (!xb || !alpha || !wk || !acc || !f || !tgt || !attr) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    float *b = xb->data + n * numel;
    memcpy(xb->data, x->data, sizeof(float) * (size_t)(n * numel));
    if (make_baseline(p, x, b, err))
        goto done;
    for (int64_t i = 0; i < n; i++)
        tgt[i] = tgt[n + i] = bt->target[i];
    if (sm_explain_scores(ctx, xb, tgt, f, err))
        goto done;
    path_rule(p->method, steps, alpha, wk);
    intg_job job = {x->data, b, alpha, wk, acc, numel};
    sm_explain_copies how = {steps, p->internal_batch, 0, intg_make,
                             intg_take, &job, 0, 0};
    if (sm_explain_gradient_copies(ctx, x, bt->target, &how, err))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x->data + i * numel, *bi = b + i * numel;
        const double *ai = acc + i * numel;
        double total = 0;
        for (int64_t e = 0; e < numel; e++) {
            double v = ((double)xi[e] - bi[e]) * ai[e];
            attr[e] = (float)v;
            total += v;
        }
        sm_explain_reduce(attr, c, hw, SM_REDUCE_SUM, out[i].map);
        out[i].score = f[i];
        out[i].evals = steps + 2;
        sm_record *rec = &out[i].record; /* explainer.c checks it */
        sm_record_addf(rec, "delta", "%.9g", total - (f[i] - f[n + i]));
        sm_record_addf(rec, "f_baseline", "%.9g", f[n + i]);
        sm_record_addf(rec, "sum_attr", "%.9g", total);
    }
    rc = 0;
done:
    sm_tensor_destroy(&xb);
    free(alpha);
    free(wk);
    free(acc);
    free(f);
    free(tgt);
    free(attr);
    return rc;
}

static int intg_check(const void *params, sm_err *err)
{
    const intg_params *p = params;
    if (strcmp(p->method, "riemann_trapezoid") == 0 && p->steps < 2)
        return sm_err_set(err, "intg.steps: '%d' is too few for "
                          "riemann_trapezoid (needs at least 2)", p->steps);
    return 0;
}

static const char *const intg_methods[] = {
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
    "riemann_trapezoid", NULL};
static const char *const intg_baselines[] = {"zero", "constant", "blur", NULL};

#define P(f) offsetof(intg_params, f)
static const sm_param_def intg_params_def[] = {
    {"steps", SM_PARAM_INT, P(steps), "50", 1, 100000, NULL,
     "points on the path from the baseline to the image"},
    {"method", SM_PARAM_STRING, P(method), "gausslegendre", 0, 0, intg_methods,
     "quadrature rule (Captum's names)"},
    {"baseline", SM_PARAM_STRING, P(baseline), "zero", 0, 0, intg_baselines,
     "zero, a constant (baseline_value) or the image Gaussian-blurred (sigma)"},
    {"baseline_value", SM_PARAM_FLOAT, P(baseline_value), "0", -1e30, 1e30,
     NULL, "the constant baseline's value (model input units)"},
    {"sigma", SM_PARAM_FLOAT, P(sigma), "5", 0.01, 1000, NULL,
     "the blurred baseline's standard deviation, in pixels"},
    {"internal_batch", SM_PARAM_INT, P(internal_batch), "256", 1, 1000000,
     NULL, "path points per model run (over several images)"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_intg = {
    .name = "intg",
    .signed_map = sm_explain_signed,
    .summary = "integrated gradients (Gauss-Legendre, 50 steps, zero baseline)",
    .backward = 1,
    .params = intg_params_def,
    .params_size = sizeof(intg_params),
    .check = intg_check,
    .run = intg_run,
};
