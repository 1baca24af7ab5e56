/* sm_segment: superpixels for the model-agnostic explainers (LIME and
 * KernelSHAP; docs/SEGMENT.md).
 *
 * The image is the model's input before normalisation: C x H x W floats in
 * [0, 1], C = 1 (grayscale, segmented as three equal channels, as LIME does)
 * or C = 3 (sRGB). Quickshift and SLIC work on CIELAB (sRGB, D65, as
 * skimage.color.rgb2lab); Felzenszwalb on RGB, as scikit-image does. The
 * algorithms follow scikit-image's (docs/SEGMENT.md lists where they
 * differ). The output is one int32 label per pixel (row-major H x W),
 * labels 0..n-1, every label used. A segmentation with a single segment is
 * an error that names the method and the parameters that caused it. */
#ifndef SM_SEGMENT_H
#define SM_SEGMENT_H

#include <stdint.h>

#include "util/err.h"

typedef enum sm_segment_method {
    SM_SEGMENT_GRID,
    SM_SEGMENT_QUICKSHIFT,
    SM_SEGMENT_SLIC,
    SM_SEGMENT_FELZENSZWALB,
} sm_segment_method;

typedef struct sm_segment_params {
    sm_segment_method method;
    struct { /* cells x cells rectangles of (nearly) equal size */
        int cells;
    } grid;
    struct {
        double kernel_size; /* density kernel width (pixels), >= 1 */
        double max_dist;    /* cut links longer than this */
        double ratio;       /* colour weight against space, in [0, 1] */
        double sigma;       /* Gaussian pre-smoothing, 0 = none */
    } quickshift;
    struct {
        int n_segments;           /* approximate number of segments */
        double compactness;       /* higher: squarer segments */
        double sigma;             /* Gaussian pre-smoothing, 0 = none */
        int max_iter;             /* k-means iterations */
        int enforce_connectivity; /* 1: merge/split so segments connect */
    } slic;
    struct {
        double scale;  /* higher: larger segments */
        double sigma;  /* Gaussian pre-smoothing, 0 = none */
        int min_size;  /* segments smaller than this are merged */
    } felzenszwalb;
} sm_segment_params;

/* The defaults of every method (LIME's quickshift: kernel_size 4, max_dist
 * 200, ratio 0.2, sigma 0; SLIC 100, 10, sigma 1, 10 iterations,
 * connectivity on; Felzenszwalb 1, 0.8, 20; grid 8), method quickshift. */
void sm_segment_params_default(sm_segment_params *p);

/* The method's name ("grid", "quickshift", "slic", "felzenszwalb"), and the
 * method of a name (-1 when unknown). */
const char *sm_segment_method_name(sm_segment_method m);
int sm_segment_method_parse(const char *name);

/* Segments img (c x h x w floats, c = 1 or 3) into labels (h*w int32) and
 * writes the number of segments. Refuses bad parameters, bad shapes,
 * non-finite pixels and a result of one segment. Deterministic. */
int sm_segment(const sm_segment_params *p, const float *img, int c, int h,
               int w, int32_t *labels, int *n_segments, sm_err *err);

/* The algorithms behind sm_segment, on an already checked image; each
 * returns the number of segments (labels 0..n-1) or -1. */
int sm_segment_grid(const sm_segment_params *p, int h, int w,
                    int32_t *labels, sm_err *err);
int sm_segment_quickshift(const sm_segment_params *p, const float *img,
                          int c, int h, int w, int32_t *labels, sm_err *err);
int sm_segment_slic(const sm_segment_params *p, const float *img, int c,
                    int h, int w, int32_t *labels, sm_err *err);
int sm_segment_felzenszwalb(const sm_segment_params *p, const float *img,
                            int c, int h, int w, int32_t *labels, sm_err *err);

/* Shared helpers (core/segment/util.c). */

/* sRGB in [0, 1] to CIELAB (D65, 2 degrees), exactly as skimage's rgb2lab
 * (the same matrix, white point and thresholds), in double. */
void sm_segment_rgb2lab(const double rgb[3], double lab[3]);

/* Flags of sm_segment_pixels. */
enum {
    SM_SEGMENT_LAB = 1,     /* convert to CIELAB */
    SM_SEGMENT_RESCALE = 2, /* first stretch min..max (all channels) to 0..1 */
};

/* img (c x h x w, c = 1 or 3) as h x w x 3 doubles, grayscale repeated,
 * transformed as flags say. Caller frees; NULL when out of memory. */
double *sm_segment_pixels(const float *img, int c, int h, int w, int flags);

/* Smooths h x w x 3 interleaved pixels in place with a Gaussian of sigma,
 * as scipy.ndimage.gaussian_filter (mode 'reflect', truncate 4.0). -1 when
 * out of memory. */
int sm_segment_gauss(double *px, int h, int w, double sigma);

/* Relabels roots (one int per pixel, each pixel's representative pixel
 * index) to 0..n-1 in increasing order of the representative, as
 * numpy.unique(..., return_inverse=True); returns n or -1 (memory). */
int sm_segment_relabel(const int32_t *root, int n_px, int32_t *labels);

#endif
