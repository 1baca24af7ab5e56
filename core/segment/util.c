/* Helpers shared by the segmenters: colour conversion, smoothing and
 * relabelling, each matching what scikit-image does at that step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segment/segment.h"

/* skimage.color.colorconv: xyz_from_rgb and the D65 2-degree white. */
static const double XYZ_FROM_RGB[3][3] = {
    {0.412453, 0.357580, 0.180423},
    {0.212671, 0.715160, 0.072169},
    {0.019334, 0.119193, 0.950227},
};
static const double D65_WHITE[3] = {0.95047, 1.0, 1.08883};

void sm_segment_rgb2lab(const double rgb[3], double lab[3])
{
    double lin[3], f[3];
    for (int i = 0; i < 3; i++) /* sRGB companding undone */
        lin[i] = rgb[i] > 0.04045 ? pow((rgb[i] + 0.055) / 1.055, 2.4)
                                  : rgb[i] / 12.92;
    for (int i = 0; i < 3; i++) {
        double t = (XYZ_FROM_RGB[i][0] * lin[0] + XYZ_FROM_RGB[i][1] * lin[1] +
                    XYZ_FROM_RGB[i][2] * lin[2]) / D65_WHITE[i];
        f[i] = t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0;
    }
    lab[0] = 116.0 * f[1] - 16.0;
    lab[1] = 500.0 * (f[0] - f[1]);
    lab[2] = 200.0 * (f[1] - f[2]);
}

double *sm_segment_pixels(const float *img, int c, int h, int w, int flags)
{
    size_t hw = (size_t)h * (size_t)w, n = (size_t)c * hw;
    double *px = malloc(sizeof(double) * 3 * hw);
    if (!px)
        return NULL;
    double lo = 0, span = 1;
    if (flags & SM_SEGMENT_RESCALE) {
        double hi = img[0];
        lo = img[0];
        for (size_t i = 1; i < n; i++) {
            lo = img[i] < lo ? img[i] : lo;
            hi = img[i] > hi ? img[i] : hi;
        }
        span = hi > lo ? hi - lo : 1; /* constant: only shifted, as skimage */
    }
    for (size_t q = 0; q < hw; q++) {
        double rgb[3];
        for (int k = 0; k < 3; k++) /* grayscale: three equal channels */
            rgb[k] = (img[(c == 1 ? 0 : (size_t)k) * hw + q] - lo) / span;
        if (flags & SM_SEGMENT_LAB)
            sm_segment_rgb2lab(rgb, px + 3 * q);
        else
            memcpy(px + 3 * q, rgb, sizeof rgb);
    }
    return px;
}

/* scipy's 'reflect' (half-sample symmetric, d c b a | a b c d), for any
 * offset: the kernel can be wider than a small image. */
static int reflect(int i, int n)
{
    int period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

/* One 1-D pass along lines of `len` samples `stride` doubles apart, `count`
 * lines starting `step` doubles apart, 3 interleaved channels. */
static void gauss_pass(double *px, double *line, const double *k, int r,
                       int len, size_t stride, int count, size_t step)
{
    for (int l = 0; l < count; l++) {
        double *base = px + (size_t)l * step;
        for (int i = 0; i < len; i++)
            memcpy(line + 3 * i, base + (size_t)i * stride, 3 * sizeof(double));
        for (int i = 0; i < len; i++) {
            double acc[3] = {0, 0, 0};
            for (int j = -r; j <= r; j++) {
                const double *s = line + 3 * reflect(i + j, len);
                for (int ch = 0; ch < 3; ch++)
                    acc[ch] += k[j + r] * s[ch];
            }
            memcpy(base + (size_t)i * stride, acc, sizeof acc);
        }
    }
}

/* Written here rather than through vips_gaussblur: libvips cuts its kernel
 * by amplitude and extends edges by copying, so results near edges and on
 * small (28x28) images would differ from the reference's; and a libvips
 * call costs more than the arithmetic on such images. */
int sm_segment_gauss(double *px, int h, int w, double sigma)
{
    if (!(sigma > 0))
        return 0;
    int r = (int)(4.0 * sigma + 0.5); /* scipy: truncate 4.0 */
    int len = h > w ? h : w;
    double *k = malloc(sizeof(double) * (size_t)(2 * r + 1));
    double *line = malloc(sizeof(double) * 3 * (size_t)len);
    if (!k || !line) {
        free(k);
        free(line);
        return -1;
    }
    double sum = 0;
    for (int j = -r; j <= r; j++)
        sum += k[j + r] = exp(-0.5 * j * j / (sigma * sigma));
    for (int j = 0; j <= 2 * r; j++)
        k[j] /= sum;
    /* Rows axis first, then columns, as scipy's axis order. */
    gauss_pass(px, line, k, r, h, 3 * (size_t)w, w, 3);
    gauss_pass(px, line, k, r, w, 3, h, 3 * (size_t)w);
    free(k);
    free(line);
    return 0;
}

int sm_segment_relabel(const int32_t *root, int n_px, int32_t *labels)
{
    int32_t *map = malloc(sizeof(int32_t) * (size_t)n_px);
    if (!map)
        return -1;
    for (int i = 0; i < n_px; i++)
        map[i] = -1;
    for (int i = 0; i < n_px; i++)
        map[root[i]] = 0;
    int n = 0;
    for (int i = 0; i < n_px; i++) /* increasing representative: np.unique */
        if (map[i] == 0)
            map[i] = n++;
    for (int i = 0; i < n_px; i++)
        labels[i] = map[root[i]];
    free(map);
    return n;
}
