/* The LIME surrogate fit (lime_base.py's explain_instance_with_data):
 * select features, then weighted ridge on them; report weights, intercept,
 * weighted R² and the local prediction for row 0. */
#include <stdlib.h>

#include "surrogate/internal.h"
#include "surrogate/surrogate.h"

void sm_lime_fit_destroy(sm_lime_fit **f)
{
    if (!f || !*f)
        return;
    free((*f)->coef);
    free((*f)->selected);
    free(*f);
    *f = NULL;
}

sm_lime_fit *sm_lime_fit_new(const uint8_t *Z, int n, int d, const double *y,
                             const double *w, int num_features,
                             sm_lime_select method, double alpha, sm_err *err)
{
    if (sm_sur_check("lime", n, d, y, w, err) < 0 ||
        sm_sur_check_mask("lime", Z, n, d, err) < 0)
        return NULL;
    sm_lime_fit *f = calloc(1, sizeof *f);
    double *X = malloc(sizeof *X * (size_t)n * d);
    double *beta = malloc(sizeof *beta * (size_t)d);
    if (f) {
        f->coef = calloc((size_t)d, sizeof *f->coef);
        f->selected = malloc(sizeof *f->selected * (size_t)d);
    }
    if (!f || !X || !beta || !f->coef || !f->selected) {
        sm_err_set(err, "lime: out of memory (%d samples × %d features)", n, d);
        goto fail;
    }
    f->d = d;
    for (size_t i = 0; i < (size_t)n * d; i++)
        X[i] = Z[i];
    int k = sm_lime_select_features(X, n, d, y, w, num_features, method,
                                    f->selected, err);
    if (k < 0)
        goto fail;
    f->n_selected = k;
    if (sm_ridge_fit(X, n, d, f->selected, k, y, w, alpha, beta, &f->intercept,
                     &f->score, err) < 0) {
        sm_err_prefix(err, "lime");
        goto fail;
    }
    f->local_pred = f->intercept;
    for (int a = 0; a < k; a++) {
        f->coef[f->selected[a]] = beta[a];
        f->local_pred += beta[a] * X[f->selected[a]];
    }
    free(X), free(beta);
    return f;
fail:
    free(X), free(beta);
    sm_lime_fit_destroy(&f);
    return NULL;
}
