/* Complexity (metrics.h): the entropy of the map's normalised |values|. */
#include "metrics/metrics.h"

#include <math.h>

double sm_metric_complexity(const float *map, int64_t n)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += fabs((double)map[i]);
    if (!(sum > 0) || !isfinite(sum))
        return NAN;
    double h = 0;
    for (int64_t i = 0; i < n; i++) {
        double p = fabs((double)map[i]) / sum;
        if (p > 0) /* 0 log 0 = 0 */
            h -= p * log(p);
    }
    return h;
}
