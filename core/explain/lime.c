/* LIME (Ribeiro 2016) on superpixels, with the reference's defaults
 * (lime_image.py, lime_base.py): d superpixels, 1000 samples z in {0,1}^d,
 * row 0 all ones, the rest Bernoulli(0.5) per superpixel; an off superpixel
 * takes its own mean colour (or a constant); the target's probability of
 * each perturbed image; LIME's kernel on the cosine distance to row 0
 * (width 0.25); feature selection, then weighted ridge (alpha 1, with
 * intercept). Map: each pixel gets its superpixel's weight.
 *
 * Unlike the reference, which seeds only the segmentation, the samples are
 * reproducible from the job: draw row * d + j of the stream keyed by (seed,
 * image id, "lime") decides superpixel j of row r (on when < 0.5), so any
 * chunk of the neighbourhood can be regenerated alone. The neighbourhood is
 * scored first (superpixel.c) and fitted after, over (Z, y) only: the
 * explainer's samples, score and fit ops, which run() is made of. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/superpixel.h"
#include "surrogate/surrogate.h"
#include "util/rng.h"

typedef struct lime_params {
    sm_superpixel_params sp; /* first: SM_SUPERPIXEL_PARAM_DEFS */
    int samples;
    double kernel_width;
    int num_features;
    char feature_selection[SM_PARAM_STR];
    double alpha;
} lime_params;

static const char *const lime_selections[] = {
    "auto", "none", "forward_selection", "highest_weights", "lasso_path",
    NULL};

static uint64_t lime_key(const sm_explain_ctx *ctx, const char *id)
{
    return sm_rng_key(ctx->seed, (const char *[]){id, "lime", NULL});
}

static int64_t lime_samples(const void *params, const sm_explain_ctx *ctx,
                            const sm_superpixel_image *s, const char *id,
                            sm_err *err)
{
    (void)ctx;
    (void)s;
    (void)id;
    (void)err;
    return ((const lime_params *)params)->samples;
}

/* Rows [first, first + count) of the neighbourhood into Z (count x d). */
static int lime_rows(const void *params, const sm_explain_ctx *ctx,
                     const sm_superpixel_image *s, const char *id,
                     int64_t first, int64_t count, uint8_t *Z, sm_err *err)
{
    (void)params;
    (void)err;
    uint64_t key = lime_key(ctx, id);
    int d = s->d;
    for (int64_t r = first; r < first + count; r++) {
        uint8_t *z = Z + (r - first) * d;
        if (r == 0) { /* the image itself */
            memset(z, 1, (size_t)d);
            continue;
        }
        for (int j = 0; j < d; j++)
            z[j] = sm_rng_uniform(key, (uint64_t)r * (uint64_t)d +
                                           (uint64_t)j) < 0.5;
    }
    return 0;
}

/* The kernel weights, feature selection and ridge over all n rows. */
static int lime_fit(const void *params, const sm_explain_ctx *ctx,
                    const sm_superpixel_image *s, const char *id,
                    const double *y, int64_t n, sm_explain_out *out,
                    sm_err *err)
{
    const lime_params *p = params;
    int d = s->d, rc = -1;
    uint8_t *Z = malloc((size_t)(n * d));
    double *wt = malloc(sizeof(double) * (size_t)n);
    sm_lime_fit *fit = NULL;
    sm_lime_select sel;
    if (!Z || !wt) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if (lime_rows(params, ctx, s, id, 0, n, Z, err) ||
        sm_lime_select_parse(p->feature_selection, &sel, err) ||
        sm_lime_weights(Z, (int)n, d, p->kernel_width, wt, err) ||
        !(fit = sm_lime_fit_new(Z, (int)n, d, y, wt, p->num_features, sel,
                                p->alpha, err)))
        goto done;
    sm_superpixel_paint(s, fit->coef, out->map);
    out->score = y[0];
    out->evals = n;
    sm_record *rec = &out->record; /* explainer.c checks it */
    sm_record_addf(rec, "n_segments", "%d", d);
    sm_record_addf(rec, "intercept", "%.9g", fit->intercept);
    sm_record_addf(rec, "score", "%.9g", fit->score);
    sm_record_addf(rec, "local_pred", "%.9g", fit->local_pred);
    sm_superpixel_record(s, rec);
    sm_record_nums(rec, "weights", fit->coef, (size_t)d);
    rc = 0;
done:
    sm_lime_fit_destroy(&fit);
    free(Z);
    free(wt);
    return rc;
}

static const sm_superpixel_method lime_method = {lime_samples, lime_rows,
                                                 lime_fit};
SM_SUPERPIXEL_OPS(lime, lime_method)

#define P(f) offsetof(lime_params, f)
static const sm_param_def lime_params_def[] = {
    SM_SUPERPIXEL_PARAM_DEFS(lime_params),
    {"samples", SM_PARAM_INT, P(samples), "1000", 2, 10000000, NULL,
     "neighbourhood size, the image itself included"},
    {"kernel_width", SM_PARAM_FLOAT, P(kernel_width), "0.25", 1e-9, 1e9,
     NULL, "width of the exponential kernel on the cosine distance"},
    {"num_features", SM_PARAM_INT, P(num_features), "100000", 1, 100000000,
     NULL, "superpixels the surrogate may use (default: all)"},
    {"feature_selection", SM_PARAM_STRING, P(feature_selection), "auto", 0, 0,
     lime_selections, "auto, none, forward_selection, highest_weights or "
     "lasso_path"},
    {"alpha", SM_PARAM_FLOAT, P(alpha), "1", 0, 1e12, NULL,
     "ridge penalty of the surrogate"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_lime = {
    .name = "lime",
    .signed_map = sm_explain_signed,
    .summary = "LIME: weighted ridge of the target probability on 1000 "
               "random on/off superpixel masks",
    .backward = 0,
    .params = lime_params_def,
    .params_size = sizeof(lime_params),
    .check = NULL,
    SM_SUPERPIXEL_CLASS_OPS(lime),
};
