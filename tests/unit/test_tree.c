/* The CART tree (core/surrogate/tree.c): against scikit-learn's own trees
 * (tests/fixtures/tree, made by make_tree_fixtures.py), a split computed by
 * hand, tie-breaking, float32 feature comparisons, bit-identical rebuilds,
 * rules and counterfactuals, and bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate/surrogate.h"
#include "util/rng.h"

#define FIX "tests/fixtures/tree/"

/* ---- the fixtures' text format (see make_tree_fixtures.py) ------------ */

typedef struct record {
    char name[64];
    int count;
    double *v;
} record;

typedef struct fixture {
    record r[32];
    int n;
} fixture;

static void fixture_load(const char *path, fixture *fx)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    memset(fx, 0, sizeof *fx);
    int c;
    while ((c = fgetc(f)) == '#')
        while ((c = fgetc(f)) != '\n' && c != EOF)
            ;
    ungetc(c, f);
    char name[64];
    int count;
    while (fscanf(f, "%63s %d", name, &count) == 2) {
        cr_assert(fx->n < 32 && count >= 0, "%s: bad record %s", path, name);
        record *r = &fx->r[fx->n++];
        snprintf(r->name, sizeof r->name, "%s", name);
        r->count = count;
        r->v = malloc(sizeof *r->v * (size_t)(count ? count : 1));
        for (int i = 0; i < count; i++)
            cr_assert_eq(fscanf(f, "%lf", &r->v[i]), 1, "%s: record %s, value %d",
                         path, name, i);
    }
    cr_assert(feof(f), "%s: trailing text", path);
    fclose(f);
}

static void fixture_free(fixture *fx)
{
    for (int i = 0; i < fx->n; i++)
        free(fx->r[i].v);
}

/* The record's values; count checked unless -1; NULL if absent. */
static const double *rec(const fixture *fx, const char *name, int count)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->r[i].name, name) == 0) {
            cr_assert(count < 0 || fx->r[i].count == count,
                      "record %s: %d values, expected %d", name,
                      fx->r[i].count, count);
            return fx->r[i].v;
        }
    return NULL;
}

static int scalar(const fixture *fx, const char *name)
{
    const double *v = rec(fx, name, 1);
    cr_assert_not_null(v, "no record %s", name);
    return (int)v[0];
}

static int close_to(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

static void check_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, FIX "%s.txt", name);
    fixture fx;
    fixture_load(path, &fx);
    int n = scalar(&fx, "n"), d = scalar(&fx, "d"), k = scalar(&fx, "classes");
    sm_tree_params p = {scalar(&fx, "max_depth"),
                        scalar(&fx, "min_samples_split"),
                        scalar(&fx, "min_samples_leaf"), scalar(&fx, "balanced")};
    const double *X = rec(&fx, "X", n * d), *yd = rec(&fx, "y", n);
    const double *w = scalar(&fx, "weighted") ? rec(&fx, "w", n) : NULL;
    int *y = malloc(sizeof *y * (size_t)n);
    for (int i = 0; i < n; i++)
        y[i] = (int)yd[i];

    sm_err err = {0};
    sm_tree *t = sm_tree_fit(X, n, d, y, k, w, &p, &err);
    cr_assert_not_null(t, "%s: %s", name, err.msg);
    int nn = scalar(&fx, "nodes");
    cr_assert_eq(t->n_nodes, nn, "%s: %d nodes, sklearn %d", name, t->n_nodes, nn);
    cr_assert_eq(t->n_features, d);
    cr_assert_eq(t->n_classes, k);
    const double *cl = rec(&fx, "children_left", nn),
                 *cr = rec(&fx, "children_right", nn),
                 *feat = rec(&fx, "feature", nn),
                 *thr = rec(&fx, "threshold", nn),
                 *value = rec(&fx, "value", nn * k),
                 *nns = rec(&fx, "n_node_samples", nn),
                 *wns = rec(&fx, "weighted_n_node_samples", nn),
                 *imp = rec(&fx, "impurity", nn),
                 *fimp = rec(&fx, "importances", d),
                 *pred = rec(&fx, "predict", n);
    for (int c = 0; c < nn; c++) {
        const sm_tree_node *a = &t->node[c];
        cr_assert_eq(a->left, (int)cl[c], "%s: node %d left", name, c);
        cr_assert_eq(a->right, (int)cr[c], "%s: node %d right", name, c);
        cr_assert_eq(a->feature, feat[c] < 0 ? -1 : (int)feat[c],
                     "%s: node %d splits on %d, sklearn on %g", name, c,
                     a->feature, feat[c]);
        if (a->feature >= 0)
            cr_assert(close_to(a->threshold, thr[c], 1e-9),
                      "%s: node %d threshold %.17g, sklearn %.17g", name, c,
                      a->threshold, thr[c]);
        cr_assert_eq(a->n, (int)nns[c], "%s: node %d n", name, c);
        cr_assert(close_to(a->weight, wns[c], 1e-9), "%s: node %d weight %.17g,"
                  " sklearn %.17g", name, c, a->weight, wns[c]);
        cr_assert(close_to(a->impurity, imp[c], 1e-9), "%s: node %d impurity "
                  "%.17g, sklearn %.17g", name, c, a->impurity, imp[c]);
        for (int j = 0; j < k; j++)
            cr_assert(close_to(t->value[c * k + j], value[c * k + j], 1e-9),
                      "%s: node %d value[%d] %.17g, sklearn %.17g", name, c, j,
                      t->value[c * k + j], value[c * k + j]);
    }
    double *fi = malloc(sizeof *fi * (size_t)d);
    sm_tree_importances(t, fi);
    for (int f = 0; f < d; f++)
        cr_assert(close_to(fi[f], fimp[f], 1e-9), "%s: importance %d %.17g, "
                  "sklearn %.17g", name, f, fi[f], fimp[f]);
    for (int i = 0; i < n; i++)
        cr_assert_eq(sm_tree_predict(t, X + (size_t)i * d), (int)pred[i],
                     "%s: prediction %d", name, i);
    free(fi), free(y);
    sm_tree_destroy(&t);
    cr_assert_null(t);
    fixture_free(&fx);
}

Test(tree, matches_sklearn_continuous)
{
    check_fixture("a_continuous");
}

Test(tree, matches_sklearn_continuous_balanced)
{
    check_fixture("b_continuous_balanced");
}

Test(tree, matches_sklearn_binary_balanced)
{
    check_fixture("c_binary_balanced");
}

Test(tree, matches_sklearn_weighted)
{
    check_fixture("d_weighted");
}

Test(tree, matches_sklearn_weighted_balanced)
{
    check_fixture("e_weighted_balanced");
}

Test(tree, matches_sklearn_binary_weighted)
{
    check_fixture("f_binary_weighted");
}

/* ---- by hand ------------------------------------------------------------ */

static const sm_tree_params defaults = {0, 2, 1, 0};

static sm_tree *fit(const double *X, int n, int d, const int *y, int k,
                    const double *w, const sm_tree_params *p)
{
    sm_err err = {0};
    sm_tree *t = sm_tree_fit(X, n, d, y, k, w, p, &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

Test(tree, gini_split_by_hand)
{
    /* Root (4 of each, gini 1/2): x1 <= 3.5 leaves 4:2 and 0:2, proxy
     * −6·(1 − (16+4)/36) = −8/3, better than x0 (−3) or x1 at 1.5, 2.5
     * (−4). Its left: x0 <= 0.5 (3:0 and 1:2, −4/3) beats x1 (−2.5, −2).
     * Then {4, 5, 6}: x1 <= 2.5 (pure sides, 0). */
    const double X[8 * 2] = {0, 1, 0, 2, 0, 3, 0, 4, 1, 1, 1, 2, 1, 3, 1, 4};
    const int y[8] = {0, 0, 0, 1, 1, 1, 0, 1};
    sm_tree *t = fit(X, 8, 2, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 7);
    const struct {
        int feature;
        double threshold;
        int left, right, label, n;
        double impurity, v0, v1;
    } want[7] = {
        {1, 3.5, 1, 6, 0, 8, 0.5, 4, 4}, /* a tie: label 0 */
        {0, 0.5, 2, 3, 0, 6, 4.0 / 9, 4, 2},
        {-1, 0, -1, -1, 0, 3, 0, 3, 0},
        {1, 2.5, 4, 5, 1, 3, 4.0 / 9, 1, 2},
        {-1, 0, -1, -1, 1, 2, 0, 0, 2},
        {-1, 0, -1, -1, 0, 1, 0, 1, 0},
        {-1, 0, -1, -1, 1, 2, 0, 0, 2},
    };
    for (int c = 0; c < 7; c++) {
        const sm_tree_node *a = &t->node[c];
        cr_assert_eq(a->feature, want[c].feature, "node %d", c);
        cr_assert_eq(a->threshold, want[c].threshold, "node %d", c);
        cr_assert_eq(a->left, want[c].left, "node %d", c);
        cr_assert_eq(a->right, want[c].right, "node %d", c);
        cr_assert_eq(a->label, want[c].label, "node %d", c);
        cr_assert_eq(a->n, want[c].n, "node %d", c);
        cr_assert_eq(a->weight, want[c].n, "node %d", c);
        cr_assert_float_eq(a->impurity, want[c].impurity, 1e-15, "node %d", c);
        cr_assert_eq(t->value[2 * c], want[c].v0, "node %d", c);
        cr_assert_eq(t->value[2 * c + 1], want[c].v1, "node %d", c);
    }
    /* Decreases 8·1/2 − 6·4/9 = 4/3 (x1), 6·4/9 − 3·4/9 = 4/3 (x0), 3·4/9 =
     * 4/3 (x1): x0 1/3, x1 2/3. */
    double imp[2];
    sm_tree_importances(t, imp);
    cr_assert_float_eq(imp[0], 1.0 / 3, 1e-15);
    cr_assert_float_eq(imp[1], 2.0 / 3, 1e-15);
    const double x[2] = {1, 2.5};
    cr_assert_eq(sm_tree_leaf(t, x), 4); /* 2.5 <= 2.5 goes left */
    cr_assert_eq(sm_tree_predict(t, x), 1);
    sm_tree_destroy(&t);
}

Test(tree, balanced_weights_by_hand)
{
    /* 1 of class 0, 3 of class 2, none of class 1: k = 2 classes present,
     * weights 4/(2·1) = 2 and 4/(2·3) = 2/3; with w, multiplied. */
    const double X[4] = {0, 1, 2, 3};
    const int y[4] = {0, 2, 2, 2};
    const double w[4] = {1, 0.5, 1, 3};
    sm_tree_params p = {1, 2, 1, 1};
    sm_tree *t = fit(X, 4, 1, y, 3, w, &p);
    cr_assert_eq(t->n_nodes, 3);
    cr_assert_float_eq(t->value[0], 2.0, 1e-14);
    cr_assert_eq(t->value[1], 0.0);
    cr_assert_float_eq(t->value[2], (0.5 + 1 + 3) * 2.0 / 3, 1e-14);
    cr_assert_float_eq(t->node[0].weight, 2 + 4.5 * 2.0 / 3, 1e-14);
    cr_assert_eq(t->node[0].label, 2);
    cr_assert_eq(t->node[0].threshold, 0.5);
    sm_tree_destroy(&t);
}

Test(tree, ties_go_to_the_lower_feature_then_the_lower_threshold)
{
    /* x0 = 1..6, y 0 0 1 0 1 1: splits at 2.5 and 4.5 tie (−1.5 each); x1
     * mirrors x0, so every split of x1 ties with one of x0. */
    double X[6 * 2];
    const int y[6] = {0, 0, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++)
        X[2 * i] = i + 1, X[2 * i + 1] = 6 - i;
    sm_tree *t = fit(X, 6, 2, y, 2, NULL, &defaults);
    cr_assert_eq(t->node[0].feature, 0);
    cr_assert_eq(t->node[0].threshold, 2.5);
    for (int c = 0; c < t->n_nodes; c++)
        cr_assert(t->node[c].feature <= 0, "node %d splits on x1", c);
    sm_tree_destroy(&t);
}

Test(tree, a_split_without_improvement_is_made_as_sklearn)
{
    /* XOR: either root split leaves both children at gini 1/2, an
     * improvement of 0, which sklearn refuses only below −ε; then the
     * children split into pure leaves. */
    double X[8 * 2];
    int y[8];
    for (int i = 0; i < 8; i++) {
        X[2 * i] = i / 4, X[2 * i + 1] = i / 2 % 2;
        y[i] = (i / 4) != (i / 2 % 2);
    }
    sm_tree *t = fit(X, 8, 2, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 7);
    cr_assert_eq(t->node[0].feature, 0);
    cr_assert_eq(t->node[1].impurity, 0.5);
    cr_assert_eq(t->node[4].impurity, 0.5);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(sm_tree_predict(t, X + 2 * i), y[i]);
    sm_tree_destroy(&t);
}

Test(tree, values_within_sklearn_float32_threshold_are_equal)
{
    /* sklearn: b equals a when b <= a + 1e-7 in float32. 1 and the next
     * float32 (1.2e-7 up) are equal; 3 and the next (2.4e-7 up) are not. */
    const int y[2] = {0, 1};
    double X[2] = {1, 1 + 0x1p-23};
    sm_tree *t = fit(X, 2, 1, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 1);
    sm_tree_destroy(&t);
    X[0] = 3, X[1] = 3 + 0x1p-22;
    t = fit(X, 2, 1, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 3);
    cr_assert_eq(t->node[0].threshold, 3 + 0x1p-23);
    sm_tree_destroy(&t);
    /* the threshold is the midpoint, as halves summed */
    X[0] = 0, X[1] = 1e-6;
    t = fit(X, 2, 1, y, 2, NULL, &defaults);
    cr_assert_eq(t->node[0].threshold, 0.5e-6);
    sm_tree_destroy(&t);
}

Test(tree, stops_as_the_params_say)
{
    enum { N = 64 };
    double X[N];
    int y[N];
    for (int i = 0; i < N; i++)
        X[i] = i, y[i] = (i / 3) % 2; /* many small runs */
    sm_tree *t = fit(X, N, 1, y, 2, NULL, &defaults);
    int leaves = 0;
    for (int c = 0; c < t->n_nodes; c++)
        if (t->node[c].feature < 0) {
            leaves++;
            cr_assert_eq(t->node[c].impurity, 0.0, "leaf %d impure", c);
        }
    cr_assert_eq(leaves, 22); /* the runs: 21 of 3 and one of 1 */
    sm_tree_destroy(&t);
    sm_tree_params p = {3, 2, 1, 0};
    t = fit(X, N, 1, y, 2, NULL, &p);
    /* depth: a node's depth is at most 3, only nodes at depth < 3 split */
    int depth[512] = {0};
    for (int c = 0; c < t->n_nodes; c++) {
        cr_assert(depth[c] <= 3);
        if (t->node[c].feature >= 0) {
            cr_assert(depth[c] < 3);
            depth[t->node[c].left] = depth[t->node[c].right] = depth[c] + 1;
        }
    }
    sm_tree_destroy(&t);
    p = (sm_tree_params){0, 2, 5, 0};
    t = fit(X, N, 1, y, 2, NULL, &p);
    for (int c = 0; c < t->n_nodes; c++) {
        cr_assert(t->node[c].n >= 5, "node %d holds %d", c, t->node[c].n);
        if (t->node[c].feature >= 0)
            cr_assert(t->node[c].n >= 10);
    }
    sm_tree_destroy(&t);
    p = (sm_tree_params){0, 20, 1, 0};
    t = fit(X, N, 1, y, 2, NULL, &p);
    for (int c = 0; c < t->n_nodes; c++)
        if (t->node[c].feature >= 0)
            cr_assert(t->node[c].n >= 20, "node %d split with %d", c,
                      t->node[c].n);
    sm_tree_destroy(&t);
}

Test(tree, zero_weight_samples_are_left_out)
{
    /* As sklearn: a sample of weight 0 counts nowhere, not even in n. */
    const double X[5] = {0, 1, 2, 3, 4};
    const int y[5] = {0, 1, 0, 1, 1};
    const double w[5] = {1, 0, 1, 1, 1};
    sm_tree *t = fit(X, 5, 1, y, 2, w, &defaults);
    cr_assert_eq(t->node[0].n, 4);
    cr_assert_eq(t->n_nodes, 3);
    cr_assert_eq(t->node[0].threshold, 2.5);
    sm_tree_destroy(&t);
}

Test(tree, a_single_leaf)
{
    const double X[6] = {0, 1, 2, 3, 4, 5};
    const int y[3] = {1, 1, 1};
    sm_tree *t = fit(X, 3, 2, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 1);
    cr_assert_eq(t->node[0].label, 1);
    cr_assert_eq(t->node[0].feature, -1);
    double imp[2] = {9, 9};
    sm_tree_importances(t, imp);
    cr_assert(imp[0] == 0 && imp[1] == 0);
    sm_err err = {0};
    sm_tree_rule r;
    cr_assert_eq(sm_tree_rule_of(t, X, &r, &err), 0, "%s", err.msg);
    cr_assert(r.leaf == 0 && r.label == 1 && r.n_cond == 0 && r.cost == 0);
    sm_tree_rule_free(&r);
    sm_tree_rule dummy, *cf = &dummy;
    int n = -1;
    cr_assert_eq(sm_tree_counterfactuals(t, X, &cf, &n, &err), 0, "%s", err.msg);
    cr_assert(cf == NULL && n == 0);
    sm_tree_destroy(&t);
    sm_tree_destroy(&t); /* accepts NULL */
    sm_tree_destroy(NULL);
    sm_tree_rule_free(NULL);
    sm_tree_rules_free(NULL, 0);
}

/* ---- determinism -------------------------------------------------------- */

static void random_data(uint64_t seed, int n, int d, int binary, double *X,
                        int *y, double *w)
{
    uint64_t key = sm_rng_key(seed, (const char *[]){"tree", NULL});
    for (int i = 0; i < n * d; i++) {
        double u = sm_rng_uniform(key, (uint64_t)i);
        X[i] = binary ? (u < 0.5) : floor(u * 64) / 16; /* repeated values */
    }
    for (int i = 0; i < n; i++) {
        const double *x = X + (size_t)i * d;
        double u = sm_rng_uniform(key, (uint64_t)(n * d + i));
        y[i] = u < 0.15 ? (int)(u * 20) % 3 : (x[0] + x[1] > 1) + (x[2] > 0.5);
        if (w)
            w[i] = sm_rng_uniform(key, (uint64_t)(2 * n * d + i)) * 2;
    }
}

static void same_bits(const sm_tree *a, const sm_tree *b)
{
    cr_assert_eq(a->n_nodes, b->n_nodes);
    cr_assert_eq(memcmp(a->node, b->node, sizeof *a->node * (size_t)a->n_nodes),
                 0, "nodes differ");
    cr_assert_eq(memcmp(a->value, b->value,
                        sizeof *a->value * (size_t)a->n_nodes * a->n_classes),
                 0, "values differ");
}

Test(tree, rebuilds_are_bit_identical)
{
    enum { N = 1000, D = 30 };
    double *X = malloc(sizeof *X * N * D), *w = malloc(sizeof *w * N);
    int *y = malloc(sizeof *y * N);
    for (int binary = 0; binary < 2; binary++) {
        random_data(11 + binary, N, D, binary, X, y, w);
        for (int weighted = 0; weighted < 2; weighted++) {
            sm_tree_params p = {0, 2, 1, weighted};
            const double *ww = weighted ? w : NULL;
            sm_tree *a = fit(X, N, D, y, 3, ww, &p);
            sm_tree *b = fit(X, N, D, y, 3, ww, &p);
            double *X2 = malloc(sizeof *X2 * N * D), *w2 = malloc(sizeof *w2 * N);
            int *y2 = malloc(sizeof *y2 * N);
            memcpy(X2, X, sizeof *X2 * N * D);
            memcpy(w2, w, sizeof *w2 * N);
            memcpy(y2, y, sizeof *y2 * N);
            sm_tree *c = fit(X2, N, D, y2, 3, weighted ? w2 : NULL, &p);
            cr_assert(a->n_nodes > 50, "a tree of %d nodes", a->n_nodes);
            same_bits(a, b);
            same_bits(a, c);
            sm_tree_destroy(&a), sm_tree_destroy(&b), sm_tree_destroy(&c);
            free(X2), free(w2), free(y2);
        }
    }
    free(X), free(w), free(y);
}

Test(tree, unit_weights_equal_no_weights)
{
    /* Without weights the builder counts in integers, with weights it adds
     * them up; for weights of 1 both are exact, so the same bits. */
    enum { N = 500, D = 12 };
    double *X = malloc(sizeof *X * N * D), w[N];
    int y[N];
    for (int binary = 0; binary < 2; binary++) {
        random_data(21 + binary, N, D, binary, X, y, NULL);
        for (int i = 0; i < N; i++)
            w[i] = 1;
        sm_tree *a = fit(X, N, D, y, 3, NULL, &defaults);
        sm_tree *b = fit(X, N, D, y, 3, w, &defaults);
        same_bits(a, b);
        sm_tree_destroy(&a), sm_tree_destroy(&b);
    }
    free(X);
}

/* ---- rules -------------------------------------------------------------- */

/* x with the counterfactual's conditions applied: each condition's feature
 * moved inside its interval. */
static void apply(const sm_tree_rule *r, const double *x, double *out, int d)
{
    memcpy(out, x, sizeof *out * (size_t)d);
    for (int c = 0; c < r->n_cond; c++) {
        const sm_tree_cond *q = &r->cond[c];
        out[q->feature] = isfinite(q->hi) ? q->hi : q->lo + 1;
    }
}

Test(tree, rules_of_a_conjunction)
{
    enum { N = 300, D = 10 };
    double X[N * D];
    int y[N];
    uint64_t key = sm_rng_key(5, (const char *[]){"rules", NULL});
    for (int i = 0; i < N * D; i++)
        X[i] = sm_rng_uniform(key, (uint64_t)i) < 0.5;
    for (int i = 0; i < N; i++)
        y[i] = X[i * D + 3] > 0.5 && X[i * D + 7] > 0.5;
    sm_tree *t = fit(X, N, D, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 5);
    for (int i = 0; i < N; i++)
        cr_assert_eq(sm_tree_predict(t, X + i * D), y[i], "fidelity, row %d", i);

    double x[D] = {1, 0, 1, 1, 0, 1, 0, 1, 0, 1};
    sm_err err = {0};
    sm_tree_rule r;
    cr_assert_eq(sm_tree_rule_of(t, x, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.label, 1);
    cr_assert_eq(r.leaf, sm_tree_leaf(t, x));
    cr_assert_eq(r.cost, 0);
    cr_assert_eq(r.n_cond, 2);
    cr_assert(r.cond[0].feature == 3 && r.cond[0].lo == 0.5 &&
              r.cond[0].hi == INFINITY);
    cr_assert(r.cond[1].feature == 7 && r.cond[1].lo == 0.5 &&
              r.cond[1].hi == INFINITY);
    sm_tree_rule_free(&r);
    cr_assert_null(r.cond);

    sm_tree_rule *cf;
    int n;
    cr_assert_eq(sm_tree_counterfactuals(t, x, &cf, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    int seen3 = 0, seen7 = 0;
    for (int j = 0; j < n; j++) {
        cr_assert_eq(cf[j].cost, 1);
        cr_assert_eq(cf[j].label, 0);
        cr_assert_eq(cf[j].n_cond, 1);
        const sm_tree_cond *q = &cf[j].cond[0];
        cr_assert(q->lo == -INFINITY && q->hi == 0.5);
        seen3 += q->feature == 3, seen7 += q->feature == 7;
        if (j > 0)
            cr_assert(cf[j - 1].leaf < cf[j].leaf, "sorted by leaf");
        double x2[D];
        apply(&cf[j], x, x2, D);
        cr_assert_eq(sm_tree_leaf(t, x2), cf[j].leaf);
        cr_assert_eq(sm_tree_predict(t, x2), 0);
    }
    cr_assert(seen3 == 1 && seen7 == 1);
    sm_tree_rules_free(cf, n);
    sm_tree_destroy(&t);
}

Test(tree, a_falsified_interval_costs_two)
{
    /* y = 1 iff 3 < x0 <= 6 on x0 = 0, 0.05, …: the middle leaf's rule is
     * two-sided; x1 is noise the tree ignores. */
    enum { N = 200 };
    double X[N * 2];
    int y[N];
    for (int i = 0; i < N; i++) {
        X[2 * i] = i / 20.0;
        X[2 * i + 1] = (i * 37) % 11;
        y[i] = X[2 * i] > 3 && X[2 * i] <= 6;
    }
    sm_tree *t = fit(X, N, 2, y, 2, NULL, &defaults);
    cr_assert_eq(t->n_nodes, 5);
    sm_err err = {0};
    const double in[2] = {4.5, 0};
    sm_tree_rule r;
    cr_assert_eq(sm_tree_rule_of(t, in, &r, &err), 0, "%s", err.msg);
    cr_assert(r.label == 1 && r.n_cond == 1 && r.cond[0].feature == 0);
    cr_assert_float_eq(r.cond[0].lo, 3.025, 1e-12);
    cr_assert_float_eq(r.cond[0].hi, 6.025, 1e-12);
    sm_tree_rule_free(&r);
    for (int side = 0; side < 2; side++) {
        const double x[2] = {side ? 8 : 1, 3};
        sm_tree_rule *cf;
        int n;
        cr_assert_eq(sm_tree_counterfactuals(t, x, &cf, &n, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(n, 1);
        cr_assert_eq(cf[0].label, 1);
        cr_assert_eq(cf[0].cost, 2);
        cr_assert_eq(cf[0].n_cond, 1);
        cr_assert(isfinite(cf[0].cond[0].lo) && isfinite(cf[0].cond[0].hi));
        double x2[2];
        apply(&cf[0], x, x2, 2);
        cr_assert_eq(sm_tree_leaf(t, x2), cf[0].leaf);
        cr_assert_eq(sm_tree_predict(t, x2), 1);
        sm_tree_rules_free(cf, n);
    }
    sm_tree_destroy(&t);
}

Test(tree, counterfactuals_of_a_larger_tree)
{
    /* Every leaf of another label, each rule's conditions all falsified by
     * x, its cost their premises, sorted, and applied, x reaches it. */
    enum { N = 400, D = 6 };
    double X[N * D];
    int y[N];
    random_data(3, N, D, 0, X, y, NULL);
    sm_tree *t = fit(X, N, D, y, 3, NULL, &defaults);
    sm_err err = {0};
    for (int i = 0; i < 20; i++) {
        const double *x = X + i * D;
        int own = sm_tree_predict(t, x), others = 0;
        for (int c = 0; c < t->n_nodes; c++)
            others += t->node[c].feature < 0 && t->node[c].label != own;
        sm_tree_rule *cf;
        int n;
        cr_assert_eq(sm_tree_counterfactuals(t, x, &cf, &n, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(n, others);
        for (int j = 0; j < n; j++) {
            const sm_tree_rule *r = &cf[j];
            cr_assert_neq(r->label, own);
            cr_assert_eq(t->node[r->leaf].label, r->label);
            int cost = 0;
            cr_assert(r->n_cond >= 1);
            for (int c = 0; c < r->n_cond; c++) {
                const sm_tree_cond *q = &r->cond[c];
                if (c > 0)
                    cr_assert(r->cond[c - 1].feature < q->feature);
                cr_assert(!(q->lo < x[q->feature] && x[q->feature] <= q->hi));
                cost += isfinite(q->lo) + isfinite(q->hi);
            }
            cr_assert_eq(r->cost, cost);
            if (j > 0) {
                const sm_tree_rule *s = &cf[j - 1];
                cr_assert(s->cost < r->cost ||
                          (s->cost == r->cost &&
                           (s->label < r->label ||
                            (s->label == r->label && s->leaf < r->leaf))));
            }
            double x2[D];
            apply(r, x, x2, D);
            cr_assert_eq(sm_tree_leaf(t, x2), r->leaf);
        }
        sm_tree_rules_free(cf, n);
    }
    sm_tree_destroy(&t);
}

/* ---- bad input ---------------------------------------------------------- */

static void refused(const double *X, int n, int d, const int *y, int k,
                    const double *w, sm_tree_params p, const char *what)
{
    sm_err err = {0};
    cr_assert_null(sm_tree_fit(X, n, d, y, k, w, &p, &err), "%s accepted", what);
    cr_assert(strstr(err.msg, what), "'%s' not in: %s", what, err.msg);
}

Test(tree, refuses_bad_input)
{
    double X[4] = {0, 1, 2, 3}, w[2] = {1, 1};
    int y[2] = {0, 1};
    sm_tree_params p = defaults;
    refused(X, 0, 2, y, 2, NULL, p, "at least 1 sample");
    refused(X, 2, 0, y, 2, NULL, p, "at least 1 feature");
    refused(X, 2, 2, y, 0, NULL, p, "at least 1 class");
    y[1] = 2;
    refused(X, 2, 2, y, 2, NULL, p, "label of sample 1 is 2");
    y[1] = -1;
    refused(X, 2, 2, y, 2, NULL, p, "label of sample 1 is -1");
    y[1] = 1;
    X[1] = NAN;
    refused(X, 2, 2, y, 2, NULL, p, "feature 1 of sample 0");
    X[1] = INFINITY;
    refused(X, 2, 2, y, 2, NULL, p, "feature 1 of sample 0");
    X[1] = 1e39;
    refused(X, 2, 2, y, 2, NULL, p, "float32");
    X[1] = 1;
    w[1] = -1;
    refused(X, 2, 2, y, 2, w, p, "weight of sample 1 is -1");
    w[1] = NAN;
    refused(X, 2, 2, y, 2, w, p, "weight of sample 1");
    w[0] = w[1] = 0;
    refused(X, 2, 2, y, 2, w, p, "weights are all 0");
    p.min_samples_leaf = 0;
    refused(X, 2, 2, y, 2, NULL, p, "min_samples_leaf is 0");
    p = defaults, p.min_samples_split = 1;
    refused(X, 2, 2, y, 2, NULL, p, "min_samples_split is 1");
    p = defaults, p.max_depth = -1;
    refused(X, 2, 2, y, 2, NULL, p, "max_depth is -1");
    p = defaults, p.balanced = 2;
    refused(X, 2, 2, y, 2, NULL, p, "balanced is 2");
    sm_err err = {0};
    cr_assert_null(sm_tree_fit(X, 2, 2, y, 2, NULL, NULL, &err));
    cr_assert(strstr(err.msg, "params"), "%s", err.msg);
    /* err may be NULL */
    cr_assert_null(sm_tree_fit(X, 0, 2, y, 2, NULL, &defaults, NULL));
}
