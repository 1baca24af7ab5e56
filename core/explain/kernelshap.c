/* KernelSHAP (Lundberg & Lee 2017; shap's KernelExplainer) on the same
 * superpixels and hide values as LIME (superpixel.c): the coalition plan of
 * surrogate/shap.c (sizes weighted (M-1)/(s(M-s)), complementary sizes
 * paired, enumerated while the budget allows, the rest sampled from the
 * stream keyed by (seed, image id, "kernelshap"), every row a pure function
 * of its index), f(x) and f(all hidden) evaluated with the plan's rows, then
 * the weighted least squares with sum(phi) = f(x) - f(all hidden) enforced
 * exactly. Scores are the target's probability, as LIME's. Map: each pixel
 * gets its superpixel's phi. The scoring and the fit are separate steps
 * over (Z, y). */
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

/* One image: segment, score x, the empty coalition and the plan, solve. */
static int kernelshap_image(const void *params,
                            const sm_explain_ctx *ctx, const float *x,
                            int64_t c, int64_t h, int64_t w, int target,
                            const char *id, sm_explain_out *out, sm_err *err)
{
    const kernelshap_params *p = params;
    sm_superpixel_image s;
    if (sm_superpixel_segment(&p->sp, x, c, h, w, &s, err))
        return sm_err_prefix(err, "image '%s'", id);
    int M = s.d, rc = -1;
    uint64_t key = sm_rng_key(ctx->seed, (const char *[]){id, "kernelshap",
                                                            NULL});
    sm_shap_plan *plan = sm_shap_plan_new(M, p->budget, key, err);
    long rows = plan ? sm_shap_plan_rows(plan) : 0;
    /* rows 0 and 1: all shown (x itself) and all hidden; then the plan */
    uint8_t *Z = malloc((size_t)(rows + 2) * (size_t)M);
    double *y = malloc(sizeof(double) * (size_t)(rows + 2));
    double *wt = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    double *phi = malloc(sizeof(double) * (size_t)M);
    if (!plan)
        goto done;
    if (!Z || !y || !wt || !phi) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    memset(Z, 1, (size_t)M);
    memset(Z + M, 0, (size_t)M);
    if (sm_shap_plan_fill(plan, 0, rows, Z + 2 * M, wt, err) ||
        sm_superpixel_scores(ctx, &s, target, Z, rows + 2,
                             p->sp.internal_batch, y, err) ||
        sm_shap_solve(Z + 2 * M, (int)rows, M, y + 2, wt, y[0], y[1], phi,
                      err))
        goto done;
    sm_superpixel_paint(&s, phi, out->map);
    out->score = y[0];
    out->evals = rows + 2;
    size_t cap = sizeof out->extras, off = (size_t)snprintf(
        out->extras, cap,
        "{\"n_segments\": %d, \"base_value\": %.9g, \"fx\": %.9g, "
        "\"rows\": %ld, \"enumerated\": %ld, \"segmentation\": %s, ", M, y[1],
        y[0], rows, sm_shap_plan_enumerated(plan), s.json);
    sm_superpixel_json_array(out->extras, cap, &off, "phi", phi, M);
    if (off < cap)
        snprintf(out->extras + off, cap - off, "}");
    rc = 0;
done:
    if (rc)
        sm_err_prefix(err, "image '%s'", id);
    sm_shap_plan_destroy(&plan);
    free(Z);
    free(y);
    free(wt);
    free(phi);
    sm_superpixel_image_free(&s);
    return rc;
}

static int kernelshap_run(const void *params, const sm_explain_ctx *ctx,
                           const sm_explain_batch *b, sm_explain_out *out,
                           sm_err *err)
{
    return sm_superpixel_run_each(kernelshap_image, params, ctx, b, out, err);
}

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
    .summary = "KernelSHAP: Shapley values of superpixels by the Shapley "
               "kernel's weighted least squares (2M + 2048 coalitions)",
    .backward = 0,
    .params = kernelshap_params_def,
    .params_size = sizeof(kernelshap_params),
    .check = NULL,
    .run = kernelshap_run,
};
