#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "surrogate/internal.h"

int sm_sur_check(const char *who, int n, int d, const double *y,
                 const double *w, sm_err *err)
{
    if (n < 2)
        return sm_err_set(err, "%s: need at least 2 samples, got %d", who, n);
    if (d < 1)
        return sm_err_set(err, "%s: need at least 1 feature, got %d", who, d);
    for (int i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return sm_err_set(err, "%s: prediction %d is %g (not finite)",
                              who, i, y[i]);
    if (w)
        for (int i = 0; i < n; i++)
            if (!isfinite(w[i]) || w[i] < 0)
                return sm_err_set(err, "%s: weight %d is %g (must be finite"
                                  " and >= 0)", who, i, w[i]);
    return 0;
}

int sm_sur_check_mask(const char *who, const uint8_t *Z, long n, int d,
                      sm_err *err)
{
    for (long i = 0; i < n * d; i++)
        if (Z[i] > 1)
            return sm_err_set(err, "%s: mask row %ld, feature %ld is %d"
                              " (masks are 0/1)", who, i / d, i % d, Z[i]);
    return 0;
}

/* A = Uᵀ U for the upper triangle of A (row-major), U in place; 0, or
 * j + 1 when the leading minor of order j + 1 is not positive definite.
 * Ours rather than LAPACK's dposv: its blocked kernels differ between
 * OpenBLAS's kernel sets in the last bits, and so did the maps; these loops
 * run in one order on every CPU. p is small (superpixels). */
static int cholesky(double *U, int p)
{
    for (int j = 0; j < p; j++) {
        double d = U[j * p + j];
        for (int k = 0; k < j; k++)
            d -= U[k * p + j] * U[k * p + j];
        if (!(d > 0))
            return j + 1;
        d = sqrt(d);
        U[j * p + j] = d;
        for (int i = j + 1; i < p; i++) {
            double s = U[j * p + i];
            for (int k = 0; k < j; k++)
                s -= U[k * p + j] * U[k * p + i];
            U[j * p + i] = s / d;
        }
    }
    return 0;
}

/* x = (Uᵀ U)⁻¹ x: forward through Uᵀ, back through U. */
static void cholesky_solve(const double *U, int p, double *x)
{
    for (int j = 0; j < p; j++) {
        double s = x[j];
        for (int k = 0; k < j; k++)
            s -= U[k * p + j] * x[k];
        x[j] = s / U[j * p + j];
    }
    for (int j = p - 1; j >= 0; j--) {
        double s = x[j];
        for (int k = j + 1; k < p; k++)
            s -= U[j * p + k] * x[k];
        x[j] = s / U[j * p + j];
    }
}

int sm_sur_solve_psd(double *A, double *b, int p, sm_err *err)
{
    /* Cholesky first (the usual case); keep A for the fallback. */
    double *U = malloc(sizeof *U * (size_t)p * p);
    double *s = malloc(sizeof *s * (size_t)p);
    if (!U || !s) {
        free(U), free(s);
        return sm_err_set(err, "surrogate solve: out of memory (p = %d)", p);
    }
    memcpy(U, A, sizeof *U * (size_t)p * p);
    int rc = 0;
    if (cholesky(U, p) == 0) {
        cholesky_solve(U, p, b);
    } else {
        /* Singular (e.g. a constant column with α = 0): the minimum-norm
         * solution via SVD, with numpy's pinv cut-off. LAPACK's, so its
         * last bits may follow the OpenBLAS kernels (docs/EXPLAIN.md). */
        lapack_int rank;
        rc = (int)LAPACKE_dgelsd(LAPACK_ROW_MAJOR, p, p, 1, A, p, b, 1, s,
                                 1e-15 * p, &rank);
    }
    free(U), free(s);
    if (rc != 0)
        return sm_err_set(err, "surrogate solve: LAPACK failed (info %d, p = %d)",
                          rc, p);
    return 0;
}
