/* Blurring and bilinear resampling of float planes through libvips, all
 * the planes of a batch in one call. */
#include "explain/resample.h"

#include <stdlib.h>
#include <vips/vips.h>

#include "data/image.h"

/* Planes (planes x h x w floats) through the libvips operation job names,
 * as the bands of one image: one libvips call for a whole batch, since a
 * call costs far more than the arithmetic on small maps. */
enum vips_job { VIPS_JOB_BLUR, VIPS_JOB_RESIZE };

static int vips_planes(enum vips_job job, const float *src, int planes, int h,
                       int w, double sigma, float *dst, int oh, int ow,
                       sm_err *err)
{
    if (sm_vips_init(NULL, err))
        return -1;
    size_t hw = (size_t)h * (size_t)w, ohw = (size_t)oh * (size_t)ow;
    float *px = malloc(sizeof(float) * hw * (size_t)planes);
    if (!px)
        return sm_err_set(err, "out of memory");
    for (int b = 0; b < planes; b++) /* planar to interleaved */
        for (size_t q = 0; q < hw; q++)
            px[q * (size_t)planes + (size_t)b] = src[(size_t)b * hw + q];
    VipsImage *in = vips_image_new_from_memory(px, sizeof(float) * hw *
                                               (size_t)planes, w, h, planes,
                                               VIPS_FORMAT_FLOAT);
    VipsImage *out = NULL;
    int bad = !in;
    if (!bad && job == VIPS_JOB_BLUR) {
        bad = vips_gaussblur(in, &out, sigma, "precision",
                             VIPS_PRECISION_FLOAT, "min_ampl", 0.001, NULL);
    } else if (!bad) {
        /* X = a (x + idx) + odx with idx = 0.5, odx = -0.5 is PyTorch's
         * x = (X + 0.5) / a - 0.5; copying the edge pixels outwards gives
         * its clamping at the borders. */
        VipsInterpolate *bil = vips_interpolate_new("bilinear");
        VipsArrayInt *area = vips_array_int_newv(4, 0, 0, ow, oh);
        bad = !bil || !area ||
              vips_affine(in, &out, (double)ow / w, 0, 0, (double)oh / h,
                          "interpolate", bil, "oarea", area, "idx", 0.5,
                          "idy", 0.5, "odx", -0.5, "ody", -0.5, "extend",
                          VIPS_EXTEND_COPY, NULL);
        if (bil)
            g_object_unref(bil);
        if (area)
            vips_area_unref(VIPS_AREA(area));
    }
    size_t len = 0;
    float *res = bad ? NULL : vips_image_write_to_memory(out, &len);
    int rc = 0;
    if (!res || len != sizeof(float) * ohw * (size_t)planes) {
        rc = sm_err_set(err, "libvips %s of %d %dx%d planes: %s",
                        job == VIPS_JOB_BLUR ? "gaussblur" : "affine", planes,
                        h, w, vips_error_buffer());
        vips_error_clear();
    } else {
        for (int b = 0; b < planes; b++)
            for (size_t q = 0; q < ohw; q++)
                dst[(size_t)b * ohw + q] = res[q * (size_t)planes + (size_t)b];
    }
    g_free(res);
    if (out)
        g_object_unref(out);
    if (in)
        g_object_unref(in);
    free(px);
    return rc;
}

int sm_explain_blur(const float *src, int planes, int h, int w, double sigma,
                    float *dst, sm_err *err)
{
    return vips_planes(VIPS_JOB_BLUR, src, planes, h, w, sigma, dst, h, w, err);
}

int sm_explain_upsample(const float *src, int planes, int h, int w,
                        float *dst, int oh, int ow, sm_err *err)
{
    return vips_planes(VIPS_JOB_RESIZE, src, planes, h, w, 0, dst, oh, ow, err);
}
