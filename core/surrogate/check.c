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

int sm_sur_solve_psd(double *A, double *b, int p, sm_err *err)
{
    /* Cholesky first (fast, the usual case); keep A for the fallback. */
    double *L = malloc(sizeof *L * (size_t)p * p);
    double *x = malloc(sizeof *x * (size_t)p);
    double *s = malloc(sizeof *s * (size_t)p);
    if (!L || !x || !s) {
        free(L), free(x), free(s);
        return sm_err_set(err, "surrogate solve: out of memory (p = %d)", p);
    }
    memcpy(L, A, sizeof *L * (size_t)p * p);
    memcpy(x, b, sizeof *x * (size_t)p);
    int rc = (int)LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', p, 1, L, p, x, 1);
    if (rc == 0) {
        memcpy(b, x, sizeof *x * (size_t)p);
    } else if (rc > 0) {
        /* Singular (e.g. a constant column with α = 0): the minimum-norm
         * solution via SVD, with numpy's pinv cut-off. */
        lapack_int rank;
        rc = (int)LAPACKE_dgelsd(LAPACK_ROW_MAJOR, p, p, 1, A, p, b, 1, s,
                                 1e-15 * p, &rank);
    }
    free(L), free(x), free(s);
    if (rc != 0)
        return sm_err_set(err, "surrogate solve: LAPACK failed (info %d, p = %d)",
                          rc, p);
    return 0;
}
