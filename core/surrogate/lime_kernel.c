/* LIME's neighbourhood weights (lime_image: cosine distance to the
 * instance, which is the all-ones row; exponential kernel, width 0.25). */
#include <math.h>

#include "surrogate/internal.h"
#include "surrogate/surrogate.h"

double sm_lime_distance(const uint8_t *z, int d)
{
    int k = 0;
    for (int j = 0; j < d; j++)
        k += z[j] != 0;
    /* cos(z, 1) = k / (sqrt(k) sqrt(d)); the empty row has no direction and
     * sklearn's cosine distance gives it 1. */
    return k == 0 ? 1.0 : 1.0 - sqrt((double)k / d);
}

int sm_lime_weights(const uint8_t *Z, int n, int d, double width, double *w,
                    sm_err *err)
{
    if (n < 1 || d < 1)
        return sm_err_set(err, "lime weights: need samples and features, got"
                          " %d×%d", n, d);
    if (!isfinite(width))
        return sm_err_set(err, "lime weights: kernel width is %g", width);
    if (sm_sur_check_mask("lime weights", Z, n, d, err) < 0)
        return -1;
    if (width <= 0)
        width = SM_LIME_KERNEL_WIDTH;
    for (int i = 0; i < n; i++) {
        double dist = sm_lime_distance(Z + (size_t)i * d, d);
        w[i] = sqrt(exp(-dist * dist / (width * width)));
    }
    return 0;
}
