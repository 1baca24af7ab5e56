/* sm_surrogate: the numerics of the surrogate family (LIME, KernelSHAP)
 * over (Z: n×d 0/1 masks, y: n predictions, weights). No model calls: the
 * pipeline gathers predictions, possibly from several workers, then fits.
 * Matrices are row-major. All functions follow util/err.h: -1 (or NULL) and
 * a one-line message on bad input. See docs/SURROGATE.md. */
#ifndef SM_SURROGATE_H
#define SM_SURROGATE_H

#include <stdint.h>

#include "util/err.h"

/* ---- ridge.c ------------------------------------------------------------
 * Weighted ridge with an unpenalised intercept, as scikit-learn's Ridge with
 * sample_weight: minimise Σ w_i (y_i − b − x_i·β)² + α|β|². Uses columns
 * cols[0..p-1] of X (n rows, leading dimension ld); cols NULL means columns
 * 0..p-1. Writes β into coef[p], b into *intercept and, if score is not NULL,
 * the weighted R² of the fit (1 when y is constant and fitted exactly, as
 * sklearn). α = 0 is allowed: a singular system gets the minimum-norm
 * least-squares solution. */
int sm_ridge_fit(const double *X, int n, int ld, const int *cols, int p,
                 const double *y, const double *w, double alpha,
                 double *coef, double *intercept, double *score, sm_err *err);

/* ---- lime_kernel.c ------------------------------------------------------
 * LIME's neighbourhood weights: the cosine distance between row i of Z and
 * the all-ones row (1 − sqrt(k/d) with k ones; 1 for the empty row), then
 * sqrt(exp(−dist²/width²)). width ≤ 0 means the default 0.25. */
#define SM_LIME_KERNEL_WIDTH 0.25
double sm_lime_distance(const uint8_t *z, int d);
int sm_lime_weights(const uint8_t *Z, int n, int d, double width, double *w,
                    sm_err *err);

/* ---- select.c -----------------------------------------------------------
 * LIME's feature selection (lime_base.py). AUTO is FORWARD when at most 6
 * features are requested, else HIGHEST. NONE ignores num_features. */
typedef enum sm_lime_select {
    SM_LIME_SELECT_AUTO,
    SM_LIME_SELECT_NONE,
    SM_LIME_SELECT_FORWARD,
    SM_LIME_SELECT_HIGHEST,
    SM_LIME_SELECT_LASSO,
} sm_lime_select;

/* "auto", "none", "forward_selection", "highest_weights", "lasso_path". */
int sm_lime_select_parse(const char *name, sm_lime_select *out, sm_err *err);
const char *sm_lime_select_name(sm_lime_select m);

/* Selects features of X (n×d doubles, 0/1 for LIME) for targets y and
 * weights w. Writes the chosen indices into sel[d] in the reference's order
 * (forward: order of addition; highest: decreasing |β_j·x_0j|; lasso and
 * none: increasing index) and returns how many, or -1. */
int sm_lime_select_features(const double *X, int n, int d, const double *y,
                            const double *w, int num_features,
                            sm_lime_select method, int *sel, sm_err *err);

/* ---- lime.c -------------------------------------------------------------
 * The LIME surrogate: selection, then ridge (α, LIME's default 1) on the
 * selected features. Row 0 of Z is the instance (all ones in LIME). */
typedef struct sm_lime_fit {
    int d;
    double *coef;      /* d weights, 0 for features not selected */
    int n_selected;
    int *selected;     /* n_selected indices, in selection order */
    double intercept;
    double score;      /* weighted R² on the neighbourhood */
    double local_pred; /* the surrogate's prediction for row 0 */
} sm_lime_fit;

sm_lime_fit *sm_lime_fit_new(const uint8_t *Z, int n, int d, const double *y,
                             const double *w, int num_features,
                             sm_lime_select method, double alpha, sm_err *err);
void sm_lime_fit_destroy(sm_lime_fit **f);

/* ---- shap.c -------------------------------------------------------------
 * KernelSHAP's coalition plan (shap's KernelExplainer): coalition sizes
 * weighted (M−1)/(s(M−s)); sizes s and M−s paired; sizes enumerated (all
 * coalitions and their complements) while the budget allows, the rest
 * sampled in complementary pairs. Row k is a pure function of (plan, k): the
 * sampled pair j draws from the sub-key sm_rng_u64(key, j), so any chunking
 * or order gives the same rows. The plan holds coalitions only; f(x) (all
 * ones) and f(∅) (all zeros) are evaluated separately. */
typedef struct sm_shap_plan sm_shap_plan;

/* budget ≤ 0 means the default 2M + 2048; it is capped at 2^M − 2 (every
 * coalition but the full and the empty one). key from sm_rng_key(). */
sm_shap_plan *sm_shap_plan_new(int M, long budget, uint64_t key, sm_err *err);
void sm_shap_plan_destroy(sm_shap_plan **p);
long sm_shap_plan_rows(const sm_shap_plan *p);
/* Rows of the plan that were enumerated (the rest are sampled). */
long sm_shap_plan_enumerated(const sm_shap_plan *p);
/* Rows k0 .. k0+count−1 into z (count×M) and, if w is not NULL, their
 * kernel weights into w (the weights of all rows sum to 1). */
int sm_shap_plan_fill(const sm_shap_plan *p, long k0, long count, uint8_t *z,
                      double *w, sm_err *err);

/* The Shapley kernel weight of a coalition of size s of M features,
 * (M−1)/(C(M,s)·s·(M−s)) (infinite for s = 0 or M). */
double sm_shap_kernel(int M, int s);

/* Weighted least squares of y − f0 on Z under Σφ = fx − f0, enforced
 * exactly by eliminating φ_{M−1} (as shap). Writes φ[M]; base value = f0. */
int sm_shap_solve(const uint8_t *Z, int n, int M, const double *y,
                  const double *w, double fx, double f0, double *phi,
                  sm_err *err);

#endif
