/* Gauss-Legendre quadrature nodes and weights (integrated gradients' path
 * rule). */
#include "explain/quadrature.h"

#include <math.h>

/* P_n(t) and P_n'(t) by the three-term recurrence (|t| < 1). */
static void legendre(int n, double t, double *p, double *dp)
{
    double p0 = 1, p1 = t;
    for (int k = 2; k <= n; k++) {
        double p2 = ((2.0 * k - 1) * t * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    *p = p1;
    *dp = n * (t * p1 - p0) / (t * t - 1);
}

int sm_gauss_legendre(int n, double *node, double *weight)
{
    if (n < 1)
        return -1;
    for (int i = 0; i < n; i++) {
        /* Tricomi's estimate of the i-th largest root, then Newton. */
        double t = cos(M_PI * (i + 0.75) / (n + 0.5)), p, dp;
        for (int it = 0; it < 100; it++) {
            legendre(n, t, &p, &dp);
            double step = p / dp;
            t -= step;
            if (fabs(step) < 1e-16)
                break;
        }
        legendre(n, t, &p, &dp);
        node[n - 1 - i] = t; /* increasing order, as numpy's leggauss */
        weight[n - 1 - i] = 2 / ((1 - t * t) * dp * dp);
    }
    return 0;
}
