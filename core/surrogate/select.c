/* LIME's feature selection, after lime_base.py's feature_selection():
 * forward selection by weighted R² of unregularised fits, highest
 * |β_j·x_0j| of a ridge (α = 0.01) on all features, or the last point of the
 * LARS-lasso path with at most num_features non-zero coefficients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate/internal.h"
#include "surrogate/surrogate.h"

static const char *const names[] = {
    [SM_LIME_SELECT_AUTO] = "auto",
    [SM_LIME_SELECT_NONE] = "none",
    [SM_LIME_SELECT_FORWARD] = "forward_selection",
    [SM_LIME_SELECT_HIGHEST] = "highest_weights",
    [SM_LIME_SELECT_LASSO] = "lasso_path",
};
enum { NMETHODS = sizeof names / sizeof *names };

int sm_lime_select_parse(const char *name, sm_lime_select *out, sm_err *err)
{
    for (int m = 0; m < NMETHODS; m++)
        if (name && strcmp(name, names[m]) == 0) {
            *out = (sm_lime_select)m;
            return 0;
        }
    return sm_err_set(err, "lime: unknown feature selection '%s' (auto, none,"
                      " forward_selection, highest_weights, lasso_path)",
                      name ? name : "(null)");
}

const char *sm_lime_select_name(sm_lime_select m)
{
    return (unsigned)m < NMETHODS ? names[m] : "?";
}

static int forward(const double *X, int n, int d, const double *y,
                   const double *w, int k, int *sel, double *coef, sm_err *err)
{
    for (int step = 0; step < k; step++) {
        double best_score = -1e8; /* the reference's starting max */
        int best = 0;
        for (int j = 0; j < d; j++) {
            int used = 0;
            for (int u = 0; u < step; u++)
                used |= sel[u] == j;
            if (used)
                continue;
            sel[step] = j;
            double b0, score;
            if (sm_ridge_fit(X, n, d, sel, step + 1, y, w, 0, coef, &b0,
                             &score, err) < 0)
                return -1;
            if (score > best_score)
                best_score = score, best = j;
        }
        sel[step] = best;
    }
    return k;
}

static int highest(const double *X, int n, int d, const double *y,
                   const double *w, int k, int *sel, double *coef, sm_err *err)
{
    double b0;
    if (sm_ridge_fit(X, n, d, NULL, d, y, w, 0.01, coef, &b0, NULL, err) < 0)
        return -1;
    for (int j = 0; j < d; j++)
        coef[j] = fabs(coef[j] * X[j]), sel[j] = j;
    /* Stable insertion sort by decreasing |β_j x_0j| (Python's sorted with
     * reverse=True keeps ties in index order). */
    for (int a = 1; a < d; a++) {
        int v = sel[a], b = a;
        for (; b > 0 && coef[sel[b - 1]] < coef[v]; b--)
            sel[b] = sel[b - 1];
        sel[b] = v;
    }
    return k;
}

/* LARS with the lasso modification (Efron et al. 2004, as sklearn's
 * lars_path(method='lasso')) on the Gram matrix G = XᵀX and c = Xᵀy of the
 * centred, sqrt-weighted data. Walks the path from α_max down and keeps the
 * support of the last breakpoint with at most k non-zeros, as
 * lime_base.py. */
static int lasso(const double *X, int n, int d, const double *y,
                 const double *w, int k, int *sel, sm_err *err)
{
    size_t dd = (size_t)d * d;
    double *buf = calloc(dd * 2 + (size_t)d * 6 + (size_t)n + (size_t)d + 1,
                         sizeof *buf);
    int *act = malloc(sizeof *act * (size_t)d);
    if (!buf || !act) {
        free(buf), free(act);
        return sm_err_set(err, "lime lasso_path: out of memory (d = %d)", d);
    }
    double *G = buf, *GA = G + dd, *c = GA + dd, *beta = c + d, *cor = beta + d,
           *dir = cor + d, *a = dir + d, *sgn = a + d, *yc = sgn + d,
           *mean = yc + n; /* d + 1: features, then y */
    double sw = 0;
    for (int i = 0; i < n; i++)
        sw += w[i];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++)
            mean[j] += w[i] * X[(size_t)i * d + j] / sw;
        mean[d] += w[i] * y[i] / sw;
    }
    for (int i = 0; i < n; i++)
        yc[i] = sqrt(w[i]) * (y[i] - mean[d]);
    for (int i = 0; i < n; i++) {
        double si = sqrt(w[i]);
        for (int p = 0; p < d; p++) {
            double xp = si * (X[(size_t)i * d + p] - mean[p]);
            c[p] += xp * yc[i];
            for (int q = p; q < d; q++)
                G[p * d + q] += xp * si * (X[(size_t)i * d + q] - mean[q]);
        }
    }
    for (int p = 0; p < d; p++)
        for (int q = 0; q < p; q++)
            G[p * d + q] = G[q * d + p];

    /* Breakpoint 0 is β = 0; if no later one qualifies the reference keeps
     * the support of breakpoint 1 (or everything when the path is empty). */
    int nact = 0, nsel = -1, drop = 0, rc = 0;
    double tiny = 1e-12;
    for (int iter = 0; iter < 500; iter++) {
        double C = 0;
        for (int p = 0; p < d; p++) {
            cor[p] = c[p];
            for (int q = 0; q < d; q++)
                cor[p] -= G[p * d + q] * beta[q];
        }
        if (!drop) {
            int best = -1;
            for (int p = 0; p < d; p++) {
                int in = 0;
                for (int u = 0; u < nact; u++)
                    in |= act[u] == p;
                if (!in && fabs(cor[p]) > C)
                    C = fabs(cor[p]), best = p;
            }
            if (best < 0 || C < tiny || nact >= n - 1)
                break;
            act[nact++] = best;
        } else {
            for (int u = 0; u < nact; u++)
                C = fmax(C, fabs(cor[act[u]]));
        }
        drop = 0;
        /* Equiangular direction: G_AA v = sign(cor_A), scaled to unit
         * correlation gain AA. */
        for (int u = 0; u < nact; u++) {
            sgn[u] = cor[act[u]] >= 0 ? 1 : -1;
            dir[u] = sgn[u];
            for (int v = 0; v < nact; v++)
                GA[u * nact + v] = G[act[u] * d + act[v]];
        }
        if ((rc = sm_sur_solve_psd(GA, dir, nact, err)) < 0)
            break;
        double ss = 0;
        for (int u = 0; u < nact; u++)
            ss += sgn[u] * dir[u];
        if (!(ss > 0))
            break; /* collinear active set: the path ends here */
        double AA = 1 / sqrt(ss);
        for (int u = 0; u < nact; u++)
            dir[u] *= AA;
        for (int p = 0; p < d; p++) {
            a[p] = 0;
            for (int u = 0; u < nact; u++)
                a[p] += G[p * d + act[u]] * dir[u];
        }
        double gamma = C / AA;
        for (int p = 0; p < d; p++) {
            int in = 0;
            for (int u = 0; u < nact; u++)
                in |= act[u] == p;
            if (in)
                continue;
            double g1 = (C - cor[p]) / (AA - a[p]);
            double g2 = (C + cor[p]) / (AA + a[p]);
            if (g1 > tiny && g1 < gamma)
                gamma = g1;
            if (g2 > tiny && g2 < gamma)
                gamma = g2;
        }
        /* Lasso modification: stop where an active coefficient crosses 0
         * and drop it. */
        int out = -1;
        for (int u = 0; u < nact; u++) {
            double g = -beta[act[u]] / dir[u];
            if (g > tiny && g < gamma)
                gamma = g, out = u;
        }
        for (int u = 0; u < nact; u++)
            beta[act[u]] += gamma * dir[u];
        if (out >= 0) {
            beta[act[out]] = 0;
            act[out] = act[--nact];
            drop = 1;
        }
        /* A breakpoint: its support, in index order. */
        int nz = 0;
        for (int p = 0; p < d; p++)
            nz += beta[p] != 0;
        if (nz <= k) {
            nsel = 0;
            for (int p = 0; p < d; p++)
                if (beta[p] != 0)
                    sel[nsel++] = p;
        }
        if (!drop && (nact == d || gamma >= C / AA * (1 - 1e-12)))
            break; /* reached the least-squares solution */
    }
    free(buf), free(act);
    if (rc < 0)
        return sm_err_prefix(err, "lime lasso_path");
    if (nsel < 0) { /* empty path: all features, as the reference */
        for (int p = 0; p < d; p++)
            sel[p] = p;
        nsel = d;
    }
    return nsel;
}

int sm_lime_select_features(const double *X, int n, int d, const double *y,
                            const double *w, int num_features,
                            sm_lime_select method, int *sel, sm_err *err)
{
    if (sm_sur_check("lime feature selection", n, d, y, w, err) < 0)
        return -1;
    if (num_features < 1 && method != SM_LIME_SELECT_NONE)
        return sm_err_set(err, "lime feature selection: num_features is %d"
                          " (must be >= 1)", num_features);
    if (method == SM_LIME_SELECT_AUTO)
        method = num_features <= 6 ? SM_LIME_SELECT_FORWARD
                                   : SM_LIME_SELECT_HIGHEST;
    int k = num_features < d ? num_features : d;
    if (method == SM_LIME_SELECT_NONE) {
        for (int j = 0; j < d; j++)
            sel[j] = j;
        return d;
    }
    if (method == SM_LIME_SELECT_LASSO)
        return lasso(X, n, d, y, w, k, sel, err);
    if (method != SM_LIME_SELECT_FORWARD && method != SM_LIME_SELECT_HIGHEST)
        return sm_err_set(err, "lime feature selection: unknown method %d",
                          (int)method);
    double *coef = malloc(sizeof *coef * (size_t)d);
    if (!coef)
        return sm_err_set(err, "lime feature selection: out of memory");
    int r = method == SM_LIME_SELECT_FORWARD
                ? forward(X, n, d, y, w, k, sel, coef, err)
                : highest(X, n, d, y, w, k, sel, coef, err);
    free(coef);
    return r;
}
