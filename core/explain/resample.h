/* Resampling float planes through libvips: Gaussian blur (intg's blurred
 * baseline, extremal's blurred image) and bilinear upsampling (gradcam's
 * coarse maps; rise.c computes the same directly, tested against it). Each
 * plane of planes x h x w floats on its own. */
#ifndef SM_EXPLAIN_RESAMPLE_H
#define SM_EXPLAIN_RESAMPLE_H

#include "util/err.h"

/* Gaussian blur with standard deviation sigma (pixels), the kernel cut
 * where it falls below 1/1000 of its peak (3.7 sigma; the least libvips
 * takes), edges extended by copying the border pixels. */
int sm_explain_blur(const float *src, int planes, int h, int w, double sigma,
                    float *dst, sm_err *err);

/* Bilinear resampling to oh x ow with PyTorch's align_corners=False
 * geometry (F.interpolate, Captum): source coordinate (d + 0.5) * h / oh -
 * 0.5, clamped at the borders. */
int sm_explain_upsample(const float *src, int planes, int h, int w,
                        float *dst, int oh, int ow, sm_err *err);

#endif
