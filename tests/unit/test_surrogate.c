/* The surrogate numerics (core/surrogate/): ridge against the normal
 * equations, LIME's kernel by hand, KernelSHAP against known Shapley values
 * and across chunkings, LIME's feature selection on planted features. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate/internal.h"
#include "surrogate/surrogate.h"
#include "util/rng.h"

/* Solves the k×k system A x = b in place by Gaussian elimination with
 * partial pivoting: an independent check of the LAPACK path. */
static void gauss(double *A, double *b, int k)
{
    for (int c = 0; c < k; c++) {
        int piv = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(A[r * k + c]) > fabs(A[piv * k + c]))
                piv = r;
        for (int j = 0; j < k; j++) {
            double t = A[c * k + j];
            A[c * k + j] = A[piv * k + j], A[piv * k + j] = t;
        }
        double t = b[c];
        b[c] = b[piv], b[piv] = t;
        for (int r = c + 1; r < k; r++) {
            double f = A[r * k + c] / A[c * k + c];
            for (int j = c; j < k; j++)
                A[r * k + j] -= f * A[c * k + j];
            b[r] -= f * b[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        for (int j = c + 1; j < k; j++)
            b[c] -= A[c * k + j] * b[j];
        b[c] /= A[c * k + c];
    }
}

/* Ridge with intercept as one system over θ = (b, β): (X1ᵀWX1 + P) θ =
 * X1ᵀWy with X1 = [1 X] and P = diag(0, α, …, α). */
static void direct_ridge(const double *X, int n, int ld, const int *cols,
                         int p, const double *y, const double *w, double alpha,
                         double *theta)
{
    int k = p + 1;
    double A[64] = {0};
    for (int a = 0; a < k; a++)
        theta[a] = 0;
    for (int i = 0; i < n; i++) {
        double x1[8] = {1};
        for (int a = 0; a < p; a++)
            x1[a + 1] = X[i * ld + cols[a]];
        for (int a = 0; a < k; a++) {
            for (int b = 0; b < k; b++)
                A[a * k + b] += w[i] * x1[a] * x1[b];
            theta[a] += w[i] * x1[a] * y[i];
        }
    }
    for (int a = 1; a < k; a++)
        A[a * k + a] += alpha;
    gauss(A, theta, k);
}

Test(surrogate, ridge_matches_normal_equations)
{
    enum { N = 60, D = 6, P = 4 };
    uint64_t key = sm_rng_key(7, (const char *[]){"ridge", NULL});
    double X[N * D], y[N], w[N];
    for (int i = 0; i < N * D; i++)
        X[i] = sm_rng_normal(key, (uint64_t)i) + 0.5;
    for (int i = 0; i < N; i++) {
        y[i] = 2 + sm_rng_normal(key, 1000 + (uint64_t)i);
        w[i] = sm_rng_uniform(key, 2000 + (uint64_t)i);
    }
    int cols[P] = {5, 0, 3, 2};
    for (int t = 0; t < 3; t++) {
        double alpha = (double[]){0, 1, 7.5}[t];
        double coef[P], b0, score, theta[P + 1];
        sm_err err = {0};
        cr_assert_eq(sm_ridge_fit(X, N, D, cols, P, y, w, alpha, coef, &b0,
                                  &score, &err), 0, "%s", err.msg);
        direct_ridge(X, N, D, cols, P, y, w, alpha, theta);
        cr_assert_float_eq(b0, theta[0], 1e-10, "alpha %g", alpha);
        for (int a = 0; a < P; a++)
            cr_assert_float_eq(coef[a], theta[a + 1], 1e-10, "alpha %g", alpha);
        /* weighted R² from the direct solution */
        double sw = 0, my = 0, res = 0, tot = 0;
        for (int i = 0; i < N; i++)
            sw += w[i], my += w[i] * y[i];
        my /= sw;
        for (int i = 0; i < N; i++) {
            double f = theta[0];
            for (int a = 0; a < P; a++)
                f += theta[a + 1] * X[i * D + cols[a]];
            res += w[i] * (y[i] - f) * (y[i] - f);
            tot += w[i] * (y[i] - my) * (y[i] - my);
        }
        cr_assert_float_eq(score, 1 - res / tot, 1e-10);
    }
}

Test(surrogate, ridge_refuses_bad_input)
{
    double X[4] = {0, 1, 1, 0}, y[2] = {1, 2}, w[2] = {1, 1}, c[2], b;
    sm_err err = {0};
    cr_assert_eq(sm_ridge_fit(X, 1, 2, NULL, 2, y, w, 1, c, &b, NULL, &err), -1);
    cr_assert(strstr(err.msg, "at least 2 samples"), "%s", err.msg);
    cr_assert_eq(sm_ridge_fit(X, 2, 2, NULL, 0, y, w, 1, c, &b, NULL, &err), -1);
    cr_assert(strstr(err.msg, "at least 1 feature"), "%s", err.msg);
    y[1] = NAN;
    cr_assert_eq(sm_ridge_fit(X, 2, 2, NULL, 2, y, w, 1, c, &b, NULL, &err), -1);
    cr_assert(strstr(err.msg, "prediction 1 is nan"), "%s", err.msg);
    y[1] = 2, w[0] = -1;
    cr_assert_eq(sm_ridge_fit(X, 2, 2, NULL, 2, y, w, 1, c, &b, NULL, &err), -1);
    cr_assert(strstr(err.msg, "weight 0"), "%s", err.msg);
    w[0] = 1;
    cr_assert_eq(sm_ridge_fit(X, 2, 2, NULL, 2, y, w, -1, c, &b, NULL, &err), -1);
    cr_assert(strstr(err.msg, "alpha"), "%s", err.msg);
}

Test(surrogate, lime_kernel_by_hand)
{
    const uint8_t Z[5 * 4] = {1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1,
                              0, 0, 0, 0, 1, 1, 1, 0};
    double w[5];
    sm_err err = {0};
    cr_assert_eq(sm_lime_weights(Z, 5, 4, 0, w, &err), 0, "%s", err.msg);
    /* k ones of 4: distance 1 − sqrt(k/4); weight exp(−dist²/(2·0.25²)) */
    double d2 = 1 - sqrt(0.5), d3 = 1 - sqrt(0.75);
    cr_assert_float_eq(w[0], 1.0, 1e-15);
    cr_assert_float_eq(w[1], exp(-2.0), 1e-15); /* dist 0.5 */
    cr_assert_float_eq(w[2], exp(-d2 * d2 * 8), 1e-15);
    cr_assert_float_eq(w[3], exp(-8.0), 1e-15); /* empty row: dist 1 */
    cr_assert_float_eq(w[4], exp(-d3 * d3 * 8), 1e-15);
    cr_assert_eq(sm_lime_weights(Z, 5, 4, 0.5, w, &err), 0, "%s", err.msg);
    cr_assert_float_eq(w[1], exp(-0.5), 1e-15);
    const uint8_t bad[2] = {1, 2};
    cr_assert_eq(sm_lime_weights(bad, 1, 2, 0, w, &err), -1);
    cr_assert(strstr(err.msg, "0/1"), "%s", err.msg);
}

/* f over coalitions: linear part a, plus c·z0·z1·z2 (Shapley: c/3 each). */
static double black_box(const uint8_t *z, int M, double c)
{
    double f = 0.25;
    for (int j = 0; j < M; j++)
        f += z[j] * (0.1 * (j + 1) * (j % 2 ? -1 : 1));
    return c != 0 ? f + c * z[0] * z[1] * z[2] : f; /* M may be < 3 */
}

static void shap_run(int M, long budget, double c, double *phi, long *nenum)
{
    sm_err err = {0};
    sm_shap_plan *p = sm_shap_plan_new(M, budget, 42, &err);
    cr_assert_not_null(p, "%s", err.msg);
    long n = sm_shap_plan_rows(p);
    uint8_t *Z = malloc((size_t)n * M), ones[32], zeros[32] = {0};
    double *y = malloc(sizeof *y * (size_t)n), *w = malloc(sizeof *w * (size_t)n);
    cr_assert_eq(sm_shap_plan_fill(p, 0, n, Z, w, &err), 0, "%s", err.msg);
    double sw = 0;
    for (long i = 0; i < n; i++)
        y[i] = black_box(Z + i * M, M, c), sw += w[i];
    cr_assert_float_eq(sw, 1.0, 1e-12, "weights sum to %g", sw);
    memset(ones, 1, sizeof ones);
    double fx = black_box(ones, M, c), f0 = black_box(zeros, M, c);
    cr_assert_eq(sm_shap_solve(Z, (int)n, M, y, w, fx, f0, phi, &err), 0,
                 "%s", err.msg);
    double s = 0;
    for (int j = 0; j < M; j++)
        s += phi[j];
    cr_assert_float_eq(s, fx - f0, 1e-12, "sum %.17g vs %.17g", s, fx - f0);
    *nenum = sm_shap_plan_enumerated(p);
    free(Z), free(y), free(w);
    sm_shap_plan_destroy(&p);
}

Test(surrogate, kernelshap_exact_with_full_enumeration)
{
    for (int M = 2; M <= 10; M++) {
        double phi[10];
        long nenum;
        shap_run(M, 0, 0, phi, &nenum);
        cr_assert_eq(nenum, (1L << M) - 2, "M %d: enumerated %ld", M, nenum);
        for (int j = 0; j < M; j++)
            cr_assert_float_eq(phi[j], 0.1 * (j + 1) * (j % 2 ? -1 : 1), 1e-10,
                               "M %d, phi[%d] = %g", M, j, phi[j]);
    }
    /* Not linear: exact Shapley values need the whole enumeration. */
    double phi[6];
    long nenum;
    shap_run(6, 0, 0.9, phi, &nenum);
    for (int j = 0; j < 6; j++)
        cr_assert_float_eq(phi[j], 0.1 * (j + 1) * (j % 2 ? -1 : 1) +
                                       (j < 3 ? 0.3 : 0), 1e-10, "phi[%d]", j);
}

Test(surrogate, kernelshap_sampled_plan)
{
    enum { M = 20 };
    double phi[M];
    long nenum;
    shap_run(M, 0, 0, phi, &nenum); /* budget 2M + 2048 */
    cr_assert(nenum > 0 && nenum < 2 * M + 2048, "enumerated %ld", nenum);
    for (int j = 0; j < M; j++)
        cr_assert_float_eq(phi[j], 0.1 * (j + 1) * (j % 2 ? -1 : 1), 1e-9,
                           "phi[%d] = %g", j, phi[j]);
    shap_run(M, 0, 0.9, phi, &nenum);
    for (int j = 0; j < M; j++)
        cr_assert_float_eq(phi[j], 0.1 * (j + 1) * (j % 2 ? -1 : 1) +
                                       (j < 3 ? 0.3 : 0), 0.03,
                           "phi[%d] = %g", j, phi[j]);
}

Test(surrogate, kernelshap_plan_is_the_same_in_any_chunking)
{
    enum { M = 20 };
    sm_err err = {0};
    uint64_t key = sm_rng_key(3, (const char *[]){"img7", "kernelshap", NULL});
    sm_shap_plan *p = sm_shap_plan_new(M, 0, key, &err);
    cr_assert_not_null(p, "%s", err.msg);
    long n = sm_shap_plan_rows(p);
    cr_assert_eq(n, 2 * M + 2048);
    uint8_t *z1 = malloc((size_t)n * M), *z7 = malloc((size_t)n * M);
    double *w1 = malloc(sizeof *w1 * (size_t)n), *w7 = malloc(sizeof *w7 * (size_t)n);
    cr_assert_eq(sm_shap_plan_fill(p, 0, n, z1, w1, &err), 0, "%s", err.msg);
    /* 7 uneven chunks, filled in the order 4 1 6 0 3 5 2 (odd boundaries
     * split complementary pairs) */
    long cut[8] = {0, 1, 333, 700, 701, 1500, 2001, n};
    int order[7] = {4, 1, 6, 0, 3, 5, 2};
    for (int c = 0; c < 7; c++) {
        long a = cut[order[c]], b = cut[order[c] + 1];
        cr_assert_eq(sm_shap_plan_fill(p, a, b - a, z7 + a * M, w7 + a, &err),
                     0, "%s", err.msg);
    }
    cr_assert_eq(memcmp(z1, z7, (size_t)n * M), 0);
    cr_assert_eq(memcmp(w1, w7, sizeof *w1 * (size_t)n), 0);
    /* sampled pairs are complements; every row is a proper coalition */
    long e = sm_shap_plan_enumerated(p);
    for (long k = 0; k < n; k++) {
        int s = 0;
        for (int j = 0; j < M; j++)
            s += z1[k * M + j];
        cr_assert(s > 0 && s < M, "row %ld has %d ones", k, s);
        if (k >= e && (k - e) % 2 == 1)
            for (int j = 0; j < M; j++)
                cr_assert_eq(z1[k * M + j], 1 - z1[(k - 1) * M + j]);
    }
    cr_assert_eq(sm_shap_plan_fill(p, n - 1, 2, z1, w1, &err), -1);
    cr_assert(strstr(err.msg, "out of"), "%s", err.msg);
    free(z1), free(z7), free(w1), free(w7);
    sm_shap_plan_destroy(&p);
}

Test(surrogate, kernelshap_kernel_and_bad_input)
{
    cr_assert_float_eq(sm_shap_kernel(5, 2), 4.0 / (10 * 2 * 3), 1e-15);
    cr_assert(isinf(sm_shap_kernel(5, 0)));
    sm_err err = {0};
    cr_assert_null(sm_shap_plan_new(0, 0, 1, &err));
    cr_assert(strstr(err.msg, "at least 1 feature"), "%s", err.msg);
    uint8_t Z[6] = {1, 0, 0, 1, 1, 1};
    double y[2] = {1, NAN}, w[2] = {1, 1}, phi[3];
    cr_assert_eq(sm_shap_solve(Z, 1, 3, y, w, 1, 0, phi, &err), -1);
    cr_assert(strstr(err.msg, "at least 2 samples"), "%s", err.msg);
    cr_assert_eq(sm_shap_solve(Z, 2, 0, y, w, 1, 0, phi, &err), -1);
    cr_assert(strstr(err.msg, "at least 1 feature"), "%s", err.msg);
    cr_assert_eq(sm_shap_solve(Z, 2, 3, y, w, 1, 0, phi, &err), -1);
    cr_assert(strstr(err.msg, "prediction 1 is nan"), "%s", err.msg);
    y[1] = 0;
    cr_assert_eq(sm_shap_solve(Z, 2, 3, y, w, NAN, 0, phi, &err), -1);
    cr_assert(strstr(err.msg, "f(x)"), "%s", err.msg);
}

/* A LIME neighbourhood (row 0 all ones) where only features 1, 4 and 7 of
 * D matter, with a little noise. */
enum { LN = 400, LD = 10 };
static void planted(uint8_t *Z, double *X, double *y, double *w)
{
    uint64_t key = sm_rng_key(11, (const char *[]){"planted", NULL});
    for (int i = 0; i < LN; i++)
        for (int j = 0; j < LD; j++)
            Z[i * LD + j] = i == 0 || sm_rng_uniform(key, (uint64_t)(i * LD + j)) < 0.5;
    for (int i = 0; i < LN * LD; i++)
        X[i] = Z[i];
    for (int i = 0; i < LN; i++)
        y[i] = 0.2 + 0.3 * Z[i * LD + 1] - 0.25 * Z[i * LD + 4] +
               0.2 * Z[i * LD + 7] + 0.01 * sm_rng_normal(key, 100000 + (uint64_t)i);
    sm_err err = {0};
    cr_assert_eq(sm_lime_weights(Z, LN, LD, 0, w, &err), 0, "%s", err.msg);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

Test(surrogate, feature_selection_finds_planted_features)
{
    static uint8_t Z[LN * LD];
    static double X[LN * LD];
    double y[LN], w[LN];
    planted(Z, X, y, w);
    sm_lime_select ms[] = {SM_LIME_SELECT_FORWARD, SM_LIME_SELECT_HIGHEST,
                           SM_LIME_SELECT_LASSO, SM_LIME_SELECT_AUTO};
    for (int m = 0; m < 4; m++) {
        int sel[LD];
        sm_err err = {0};
        int k = sm_lime_select_features(X, LN, LD, y, w, 3, ms[m], sel, &err);
        cr_assert_eq(k, 3, "%s: %d features (%s)", sm_lime_select_name(ms[m]),
                     k, err.msg);
        if (ms[m] == SM_LIME_SELECT_FORWARD || ms[m] == SM_LIME_SELECT_HIGHEST)
            cr_assert_eq(sel[0], 1, "%s: strongest first",
                         sm_lime_select_name(ms[m]));
        qsort(sel, 3, sizeof *sel, cmp_int);
        cr_assert(sel[0] == 1 && sel[1] == 4 && sel[2] == 7, "%s: %d %d %d",
                  sm_lime_select_name(ms[m]), sel[0], sel[1], sel[2]);
    }
    int sel[LD];
    cr_assert_eq(sm_lime_select_features(X, LN, LD, y, w, 3,
                                         SM_LIME_SELECT_NONE, sel, NULL), LD);
    /* lasso with room for 2: the two strongest */
    int k = sm_lime_select_features(X, LN, LD, y, w, 2, SM_LIME_SELECT_LASSO,
                                    sel, NULL);
    cr_assert(k == 2 && sel[0] == 1 && sel[1] == 4, "%d: %d %d", k, sel[0], sel[1]);
}

Test(surrogate, lime_fit_recovers_a_linear_black_box)
{
    static uint8_t Z[LN * LD];
    static double X[LN * LD];
    double y[LN], w[LN];
    planted(Z, X, y, w);
    sm_err err = {0};
    sm_lime_fit *f = sm_lime_fit_new(Z, LN, LD, y, w, 3, SM_LIME_SELECT_AUTO,
                                     1.0, &err);
    cr_assert_not_null(f, "%s", err.msg);
    cr_assert_eq(f->n_selected, 3);
    double want[LD] = {0, 0.3, 0, 0, -0.25, 0, 0, 0.2, 0, 0};
    for (int j = 0; j < LD; j++)
        cr_assert_float_eq(f->coef[j], want[j], 0.02, "coef[%d] = %g", j, f->coef[j]);
    cr_assert_float_eq(f->intercept, 0.2, 0.02, "%g", f->intercept);
    cr_assert_float_eq(f->local_pred, f->intercept + f->coef[1] + f->coef[4] +
                                          f->coef[7], 1e-12);
    cr_assert(f->score > 0.95 && f->score <= 1, "R² %g", f->score);
    sm_lime_fit_destroy(&f);
    cr_assert_null(f);

    cr_assert_null(sm_lime_fit_new(Z, 1, LD, y, w, 3, SM_LIME_SELECT_AUTO, 1, &err));
    cr_assert(strstr(err.msg, "lime: need at least 2 samples"), "%s", err.msg);
    cr_assert_null(sm_lime_fit_new(Z, LN, 0, y, w, 3, SM_LIME_SELECT_AUTO, 1, &err));
    cr_assert(strstr(err.msg, "lime: need at least 1 feature"), "%s", err.msg);
    y[5] = NAN;
    cr_assert_null(sm_lime_fit_new(Z, LN, LD, y, w, 3, SM_LIME_SELECT_AUTO, 1, &err));
    cr_assert(strstr(err.msg, "prediction 5 is nan"), "%s", err.msg);
    sm_lime_select m;
    cr_assert_eq(sm_lime_select_parse("lasso_path", &m, &err), 0);
    cr_assert_eq(m, SM_LIME_SELECT_LASSO);
    cr_assert_eq(sm_lime_select_parse("lasso", &m, &err), -1);
    cr_assert(strstr(err.msg, "unknown feature selection 'lasso'"), "%s", err.msg);
}

/* The surrogates' linear solve: Cholesky on a hand-made system with an
 * exact solution, the residual of a larger one, and the minimum-norm
 * solution of a singular one (numpy's pinv gives [1, 1] for [[1, 1],
 * [1, 1]] x = [2, 2]). Only the upper triangle is read. */
Test(surrogate, solve_psd_by_hand)
{
    double A[9] = {4, 2, 0, -99, 5, 1, -99, -99, 3}; /* lower: ignored */
    double b[3] = {0, -5, 7};                        /* A (1, -2, 3) */
    cr_assert_eq(sm_sur_solve_psd(A, b, 3, NULL), 0);
    const double want[3] = {1, -2, 3};
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(b[i], want[i], 1e-12, "x[%d] = %.17g", i, b[i]);

    enum { P = 40 };
    static double M[P * P], S[P * P], x[P], r[P];
    for (int i = 0; i < P * P; i++)
        M[i] = sm_rng_normal(3, (uint64_t)i);
    for (int i = 0; i < P; i++) /* S = M Mᵀ + I, b = S 1 */
        for (int j = 0; j < P; j++) {
            double s = i == j;
            for (int k = 0; k < P; k++)
                s += M[i * P + k] * M[j * P + k];
            S[i * P + j] = s;
        }
    for (int i = 0; i < P; i++) {
        x[i] = 0;
        for (int j = 0; j < P; j++)
            x[i] += S[i * P + j];
        r[i] = x[i];
    }
    static double S0[P * P];
    memcpy(S0, S, sizeof S);
    cr_assert_eq(sm_sur_solve_psd(S, x, P, NULL), 0);
    for (int i = 0; i < P; i++) {
        double ax = 0;
        for (int j = 0; j < P; j++)
            ax += S0[i * P + j] * x[j];
        cr_assert_float_eq(ax, r[i], 1e-9 * fabs(r[i]) + 1e-9, "row %d", i);
    }

    double Z[4] = {1, 1, 1, 1}, c[2] = {2, 2};
    cr_assert_eq(sm_sur_solve_psd(Z, c, 2, NULL), 0);
    cr_assert_float_eq(c[0], 1.0, 1e-12);
    cr_assert_float_eq(c[1], 1.0, 1e-12);
}
