/* KernelSHAP (Lundberg & Lee 2017; shap's KernelExplainer) on the same
 * superpixels and hide values as LIME (superpixel.c): the coalition plan of
 * surrogate/shap.c (sizes weighted (M-1)/(s(M-s)), complementary sizes
 * paired, enumerated while the budget allows, the rest sampled from the
 * stream keyed by (seed, image id, "kernelshap"), every row a pure function
 * of its index), f(x) and f(all hidden) evaluated with the plan's rows, then
 * the weighted least squares with sum(phi) = f(x) - f(all hidden) enforced
 * exactly. Scores are the target's probability, as LIME's. Map: each pixel
 * gets its superpixel's phi. The scoring and the fit are separate steps
 * over (Z, y): the explainer's samples, score and fit ops, which run() is
 * made of; rows 0 and 1 of the neighbourhood are x and all hidden, row k
 * >= 2 the plan's row k - 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/superpixel.h"
#include "surrogate/surrogate.h"
#include "util/rng.h"

typedef struct kernelshap_params {
    sm_superpixel_params sp; /* first: SM_SUPERPIXEL_PARAM_DEFS */
    int budget;
} kernelshap_params;

/* The image's coalition plan over its s->d superpixels. */
static sm_shap_plan *kernelshap_plan(const void *params,
                                     const sm_explain_ctx *ctx,
                                     const sm_superpixel_image *s,
                                     const char *id, sm_err *err)
{
    const kernelshap_params *p = params;
    uint64_t key = sm_rng_key(ctx->seed, (const char *[]){id, "kernelshap",
                                                            NULL});
    return sm_shap_plan_new(s->d, p->budget, key, err);
}

/* Rows 0 and 1: all shown (x itself) and all hidden; then the plan's. */
static int64_t kernelshap_samples(const void *params,
                                  const sm_explain_ctx *ctx,
                                  const sm_superpixel_image *s,
                                  const char *id, sm_err *err)
{
    sm_shap_plan *plan = kernelshap_plan(params, ctx, s, id, err);
    int64_t n = plan ? sm_shap_plan_rows(plan) + 2 : -1;
    sm_shap_plan_destroy(&plan);
    return n;
}

static int kernelshap_rows(const void *params, const sm_explain_ctx *ctx,
                           const sm_superpixel_image *s, const char *id,
                           int64_t first, int64_t count, uint8_t *Z,
                           sm_err *err)
{
    int M = s->d;
    int64_t r = first, end = first + count;
    for (; r < end && r < 2; r++)
        memset(Z + (r - first) * M, r == 0, (size_t)M);
    if (r == end)
        return 0;
    sm_shap_plan *plan = kernelshap_plan(params, ctx, s, id, err);
    int rc = !plan || sm_shap_plan_fill(plan, r - 2, end - r,
                                        Z + (r - first) * M, NULL, err)
                 ? -1
                 : 0;
    sm_shap_plan_destroy(&plan);
    return rc;
}

/* The constrained weighted least squares over the plan's rows, with f(x)
 * = y[0] and f(all hidden) = y[1]. */
static int kernelshap_fit(const void *params, const sm_explain_ctx *ctx,
                          const sm_superpixel_image *s, const char *id,
                          const double *y, int64_t n, sm_explain_out *out,
                          sm_err *err)
{
    int M = s->d, rc = -1;
    long rows = (long)n - 2;
    sm_shap_plan *plan = kernelshap_plan(params, ctx, s, id, err);
    uint8_t *Z = malloc((size_t)(rows ? rows : 1) * (size_t)M);
    double *wt = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    double *phi = malloc(sizeof(double) * (size_t)M);
    if (!plan)
        goto done;
    if (!Z || !wt || !phi) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if (sm_shap_plan_fill(plan, 0, rows, Z, wt, err) ||
        sm_shap_solve(Z, (int)rows, M, y + 2, wt, y[0], y[1], phi, err))
        goto done;
    sm_superpixel_paint(s, phi, out->map);
    out->score = y[0];
    out->evals = n;
    sm_record *rec = &out->record; /* explainer.c checks it */
    sm_record_addf(rec, "n_segments", "%d", M);
    sm_record_addf(rec, "base_value", "%.9g", y[1]);
    sm_record_addf(rec, "fx", "%.9g", y[0]);
    sm_record_addf(rec, "rows", "%ld", rows);
    sm_record_addf(rec, "enumerated", "%ld", sm_shap_plan_enumerated(plan));
    sm_superpixel_record(s, rec);
    sm_record_nums(rec, "phi", phi, (size_t)M);
    rc = 0;
done:
    sm_shap_plan_destroy(&plan);
    free(Z);
    free(wt);
    free(phi);
    return rc;
}

static const sm_superpixel_method kernelshap_method = {
    kernelshap_samples, kernelshap_rows, kernelshap_fit};
SM_SUPERPIXEL_OPS(kernelshap, kernelshap_method)

#define P(f) offsetof(kernelshap_params, f)
static const sm_param_def kernelshap_params_def[] = {
    SM_SUPERPIXEL_PARAM_DEFS(kernelshap_params),
    {"budget", SM_PARAM_INT, P(budget), "0", 0, 100000000, NULL,
     "coalitions evaluated besides x and the empty one; 0: 2M + 2048 "
     "(M superpixels), at most 2^M - 2"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_kernelshap = {
    .name = "kernelshap",
    .signed_map = sm_explain_signed,
    .summary = "KernelSHAP: Shapley values of superpixels by the Shapley "
               "kernel's weighted least squares (2M + 2048 coalitions)",
    .backward = 0,
    .params = kernelshap_params_def,
    .params_size = sizeof(kernelshap_params),
    .check = NULL,
    SM_SUPERPIXEL_CLASS_OPS(kernelshap),
};
