/* Max-sensitivity (metrics.h; Yeh 2019): how far the map moves when the
 * image moves a little. */
#include "metrics/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "util/rng.h"

/* L2 norm of a - b (b NULL: of a) over n values. */
static double l2(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (b ? (double)b[i] : 0);
        s += d * d;
    }
    return sqrt(s);
}

int sm_metric_sensitivity(const float *x, int64_t c, int64_t h, int64_t w,
                          const float *map, const sm_metric_params *p,
                          uint64_t seed, const char *id, int64_t batch,
                          sm_metric_explain_fn explain, void *arg,
                          double *value, sm_err *err)
{
    const int64_t hw = h * w, per = c * hw, n = p->sensitivity_samples;
    double norm = l2(map, NULL, hw);
    *value = NAN;
    if (n < 1 || !(norm > 0) || !isfinite(norm))
        return 0;
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < per; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    double frac = p->sensitivity_radius > 0 ? p->sensitivity_radius
                                            : SM_METRIC_SENSITIVITY_RADIUS;
    double radius = frac * ((double)hi - (double)lo);
    if (batch < 1)
        batch = 64;
    if (batch > n)
        batch = n;
    uint64_t key = sm_rng_key(seed, (const char *[]){id, "metric",
                                                     "sensitivity", NULL});
    sm_tensor *t = NULL;
    float *maps = malloc(sizeof(float) * (size_t)(batch * hw));
    int rc = 0;
    double most = 0;
    if (!maps)
        rc = sm_err_set(err, "sensitivity: out of memory");
    for (int64_t k0 = 0; k0 < n && rc == 0; k0 += batch) {
        int64_t nb = n - k0 < batch ? n - k0 : batch;
        sm_tensor_destroy(&t);
        if (!(t = sm_tensor_new(4, (int64_t[]){nb, c, h, w}))) {
            rc = sm_err_set(err, "sensitivity: out of memory");
            break;
        }
        for (int64_t b = 0; b < nb; b++)
            for (int64_t i = 0; i < per; i++) {
                uint64_t at = (uint64_t)(k0 + b) * (uint64_t)per + (uint64_t)i;
                double d = radius * (2 * sm_rng_uniform(key, at) - 1);
                t->data[b * per + i] = (float)((double)x[i] + d);
            }
        if (explain(arg, t, maps, err)) {
            rc = -1;
            break;
        }
        for (int64_t b = 0; b < nb; b++) {
            double v = l2(maps + b * hw, map, hw) / norm;
            /* a NaN map makes the value NaN: not skipped */
            if (!isnan(most) && (isnan(v) || v > most))
                most = v;
        }
    }
    sm_tensor_destroy(&t);
    free(maps);
    if (rc == 0)
        *value = most;
    return rc;
}
