/* Weighted ridge with intercept: centre X and y on their weighted means
 * (so the intercept is not penalised, as sklearn), then solve the p×p
 * normal equations (Xcᵀ W Xc + αI) β = Xcᵀ W yc. p is small (superpixels
 * or fewer), so forming the normal equations is cheap and well enough
 * conditioned with α > 0. */
#include <math.h>
#include <stdlib.h>

#include "surrogate/internal.h"
#include "surrogate/surrogate.h"

int sm_ridge_fit(const double *X, int n, int ld, const int *cols, int p,
                 const double *y, const double *w, double alpha,
                 double *coef, double *intercept, double *score, sm_err *err)
{
    if (sm_sur_check("ridge", n, p, y, w, err) < 0)
        return -1;
    if (!(alpha >= 0) || !isfinite(alpha))
        return sm_err_set(err, "ridge: alpha is %g (must be finite and >= 0)",
                          alpha);
    double sw = 0;
    for (int i = 0; i < n; i++)
        sw += w[i];
    if (!(sw > 0))
        return sm_err_set(err, "ridge: the weights sum to 0");

    double *mean = calloc((size_t)p + 1, sizeof *mean); /* [p] = mean of y */
    double *A = calloc((size_t)p * p, sizeof *A);
    double *xc = malloc(sizeof *xc * (size_t)p);
    if (!mean || !A || !xc) {
        free(mean), free(A), free(xc);
        return sm_err_set(err, "ridge: out of memory (p = %d)", p);
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        for (int a = 0; a < p; a++) {
            double v = X[(size_t)i * ld + (cols ? cols[a] : a)];
            if (!isfinite(v))
                rc = sm_err_set(err, "ridge: X[%d][%d] is %g", i,
                                cols ? cols[a] : a, v);
            mean[a] += w[i] * v;
        }
        mean[p] += w[i] * y[i];
    }
    if (rc < 0)
        goto out;
    for (int a = 0; a <= p; a++)
        mean[a] /= sw;
    /* Upper triangle of Xcᵀ W Xc, and Xcᵀ W yc in coef. */
    for (int a = 0; a < p; a++)
        coef[a] = 0;
    for (int i = 0; i < n; i++) {
        for (int a = 0; a < p; a++)
            xc[a] = X[(size_t)i * ld + (cols ? cols[a] : a)] - mean[a];
        double yc = w[i] * (y[i] - mean[p]);
        for (int a = 0; a < p; a++) {
            double wa = w[i] * xc[a];
            for (int b = a; b < p; b++)
                A[a * p + b] += wa * xc[b];
            coef[a] += xc[a] * yc;
        }
    }
    for (int a = 0; a < p; a++) {
        A[a * p + a] += alpha;
        for (int b = 0; b < a; b++)
            A[a * p + b] = A[b * p + a]; /* the SVD fallback reads all of A */
    }
    if ((rc = sm_sur_solve_psd(A, coef, p, err)) < 0) {
        sm_err_prefix(err, "ridge");
        goto out;
    }
    double b0 = mean[p];
    for (int a = 0; a < p; a++)
        b0 -= mean[a] * coef[a];
    *intercept = b0;
    if (score) {
        /* Weighted R² as sklearn's r2_score: 1 − SSres/SStot, with a
         * constant target giving 1 when fitted exactly and 0 otherwise. */
        double res = 0, tot = 0;
        for (int i = 0; i < n; i++) {
            double f = b0;
            for (int a = 0; a < p; a++)
                f += X[(size_t)i * ld + (cols ? cols[a] : a)] * coef[a];
            res += w[i] * (y[i] - f) * (y[i] - f);
            tot += w[i] * (y[i] - mean[p]) * (y[i] - mean[p]);
        }
        *score = tot > 0 ? 1 - res / tot : (res == 0 ? 1 : 0);
    }
out:
    free(mean), free(A), free(xc);
    return rc;
}
