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

/* ---- tree.c -------------------------------------------------------------
 * A CART classification tree, equal to scikit-learn 1.2's
 * DecisionTreeClassifier(criterion="gini", splitter="best",
 * max_features=None, class_weight="balanced" or None) on data without
 * improvement ties: the surrogate of LORE (0/1 superpixel features) and
 * ABELE (continuous latent features). Ties go to the lower feature index,
 * then the lower threshold (sklearn draws the feature order at random).
 * Deterministic: the same data gives the same bits. Features are compared
 * as sklearn compares its float32 copies (values within 1e-7 in float32
 * arithmetic are equal), so sklearn agrees exactly on features that float32
 * holds; a feature beyond float32's range is refused, as sklearn does.
 * A leaf's threshold is 0. See docs/SURROGATE.md. */
typedef struct sm_tree_params {
    int max_depth;         /* 0: unlimited */
    int min_samples_split; /* >= 2 */
    int min_samples_leaf;  /* >= 1 */
    int balanced;          /* 1: class weights n / (k * n_c) over the k classes present (sklearn's "balanced") */
} sm_tree_params;

typedef struct sm_tree_node {
    int feature;      /* split feature; -1 for a leaf */
    double threshold; /* left when x[feature] <= threshold */
    int left, right;  /* children (node indices), -1 for a leaf */
    int label;        /* the class of largest weight at the node (lowest index of equals) */
    int n;            /* training samples reaching it */
    double weight;    /* their weighted count */
    double impurity;  /* gini of the weighted class counts */
} sm_tree_node;

typedef struct sm_tree {
    int n_nodes, n_features, n_classes;
    sm_tree_node *node; /* node[0] the root; depth-first pre-order, left subtree first (sklearn's node order) */
    double *value;      /* n_nodes x n_classes weighted class counts (balanced weights applied) */
} sm_tree;

/* Fits X (n x d, row-major doubles), labels y[n] in 0..n_classes-1, optional sample weights w[n] (NULL: all 1; multiplied by the balanced class weights when p->balanced). NULL with a message on bad input (n < 1, d < 1, a label out of range, a negative or non-finite weight or feature, bad params). */
sm_tree *sm_tree_fit(const double *X, int n, int d, const int *y, int n_classes, const double *w, const sm_tree_params *p, sm_err *err);
void sm_tree_destroy(sm_tree **t);      /* NULLs *t; accepts NULL */
int sm_tree_leaf(const sm_tree *t, const double *x);    /* the leaf x falls in */
int sm_tree_predict(const sm_tree *t, const double *x); /* that leaf's label */
/* sklearn's feature_importances_: weighted impurity decrease per feature, normalised to sum 1 (all 0 for a single-leaf tree), into imp[d]. */
void sm_tree_importances(const sm_tree *t, double *imp);

/* A rule: the conditions of a root-to-leaf path, merged per feature into lo < x[f] <= hi (lo = -INFINITY or hi = INFINITY when that side is open), in increasing feature order. */
typedef struct sm_tree_cond {
    int feature;
    double lo, hi;
} sm_tree_cond;

typedef struct sm_tree_rule {
    int leaf, label;
    int n_cond;
    sm_tree_cond *cond; /* owned; freed by sm_tree_rule_free */
    int cost;           /* counterfactuals: premises x falsifies, a falsified two-sided interval counting 2; 0 for x's own rule */
} sm_tree_rule;

/* The rule of the leaf x falls in. 0 or -1 (out of memory). */
int sm_tree_rule_of(const sm_tree *t, const double *x, sm_tree_rule *r, sm_err *err);
/* Counterfactual rules: for every leaf whose label differs from x's leaf label, the rule of that leaf restricted to the conditions x falsifies (what must change), with cost; sorted by cost, then label, then leaf index. *out gets a malloc'd array of *n rules (free with sm_tree_rules_free). 0 or -1. */
int sm_tree_counterfactuals(const sm_tree *t, const double *x, sm_tree_rule **out, int *n, sm_err *err);
void sm_tree_rule_free(sm_tree_rule *r);
/* The distinct labels of y[n] in increasing order into cls (*k of them,
 * room for n), and each y[i] replaced by its index there: a tree's classes
 * are then the labels present (any int, however large, costs no more than
 * a small one). */
void sm_tree_dense_labels(int *y, int64_t n, int *cls, int *k);
/* Which of counterfactuals cf[0..n) (sorted by cost) to keep, given the
 * model's label of x with each applied: per class (the leaf's label) the
 * first whose model label is not `label` (x's). keep[k] = 1 for those;
 * returns the candidates the model rejected before a class had one. */
int sm_tree_counterfactuals_kept(const sm_tree_rule *cf, int n,
                                 const int *model_label, int label,
                                 uint8_t *keep);
void sm_tree_rules_free(sm_tree_rule *r, int n);

#endif
