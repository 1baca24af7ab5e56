/* Sparseness (metrics.h): the Gini index of |map|. */
#include "metrics/metrics.h"

#include <math.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sm_metric_sparseness(const float *map, int64_t n, double *value,
                         sm_err *err)
{
    double *a = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!a)
        return sm_err_set(err, "sparseness: out of memory");
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += a[i] = fabs((double)map[i]);
    if (n < 1 || !isfinite(sum)) {
        *value = n < 1 ? 0 : NAN;
        free(a);
        return 0;
    }
    qsort(a, (size_t)n, sizeof *a, by_value);
    double g = 0;
    for (int64_t i = 1; i <= n; i++)
        g += (double)(2 * i - n - 1) * a[i - 1];
    *value = sum > 0 ? g / ((double)n * sum) : 0;
    free(a);
    return 0;
}
