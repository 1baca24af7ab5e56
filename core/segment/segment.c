/* sm_segment: parameters, checks and the dispatch to the algorithms. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "segment/segment.h"

static const char *const NAMES[] = {"grid", "quickshift", "slic",
                                    "felzenszwalb"};

void sm_segment_params_default(sm_segment_params *p)
{
    memset(p, 0, sizeof *p);
    p->method = SM_SEGMENT_QUICKSHIFT;
    p->grid.cells = 8;
    p->quickshift.kernel_size = 4;
    p->quickshift.max_dist = 200;
    p->quickshift.ratio = 0.2;
    p->quickshift.sigma = 0;
    p->slic.n_segments = 100;
    p->slic.compactness = 10;
    p->slic.sigma = 1;
    p->slic.max_iter = 10;
    p->slic.enforce_connectivity = 1;
    p->felzenszwalb.scale = 1;
    p->felzenszwalb.sigma = 0.8;
    p->felzenszwalb.min_size = 20;
}

const char *sm_segment_method_name(sm_segment_method m)
{
    return (unsigned)m < sizeof NAMES / sizeof *NAMES ? NAMES[m] : "?";
}

int sm_segment_method_parse(const char *name)
{
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++)
        if (name && strcmp(name, NAMES[i]) == 0)
            return (int)i;
    return -1;
}

/* The method's parameters as the user would write them, for messages. */
static void describe(const sm_segment_params *p, char *buf, size_t n)
{
    switch (p->method) {
    case SM_SEGMENT_GRID:
        snprintf(buf, n, "grid (cells %d)", p->grid.cells);
        break;
    case SM_SEGMENT_QUICKSHIFT:
        snprintf(buf, n,
                 "quickshift (kernel_size %g, max_dist %g, ratio %g, sigma %g)",
                 p->quickshift.kernel_size, p->quickshift.max_dist,
                 p->quickshift.ratio, p->quickshift.sigma);
        break;
    case SM_SEGMENT_SLIC:
        snprintf(buf, n,
                 "slic (n_segments %d, compactness %g, sigma %g, max_iter %d, "
                 "enforce_connectivity %d)",
                 p->slic.n_segments, p->slic.compactness, p->slic.sigma,
                 p->slic.max_iter, p->slic.enforce_connectivity);
        break;
    case SM_SEGMENT_FELZENSZWALB:
        snprintf(buf, n, "felzenszwalb (scale %g, sigma %g, min_size %d)",
                 p->felzenszwalb.scale, p->felzenszwalb.sigma,
                 p->felzenszwalb.min_size);
        break;
    default:
        snprintf(buf, n, "method %d", (int)p->method);
    }
}

/* What to change when a method finds one segment. */
static const char *advice(sm_segment_method m)
{
    switch (m) {
    case SM_SEGMENT_GRID:
        return "raise cells";
    case SM_SEGMENT_QUICKSHIFT:
        return "lower kernel_size (1 for small images) or max_dist";
    case SM_SEGMENT_SLIC:
        return "raise n_segments";
    default:
        return "lower scale or min_size";
    }
}

/* NaN fails every comparison, so each check is written as "x in range". */
static const char *check_params(const sm_segment_params *p, int h, int w)
{
    switch (p->method) {
    case SM_SEGMENT_GRID:
        if (!(p->grid.cells >= 1 && p->grid.cells <= h && p->grid.cells <= w))
            return "cells must be in 1..min(height, width)";
        return NULL;
    case SM_SEGMENT_QUICKSHIFT: {
        double ks = p->quickshift.kernel_size;
        /* The window is (2 ceil(3 ks) + 1)^2 per pixel: 64 is already
         * far beyond any use. */
        if (!(ks >= 1 && ks <= 64))
            return "kernel_size must be in [1, 64]";
        if (!(p->quickshift.max_dist > 0))
            return "max_dist must be > 0";
        if (!(p->quickshift.ratio >= 0 && p->quickshift.ratio <= 1))
            return "ratio must be in [0, 1]";
        if (!(p->quickshift.sigma >= 0 && p->quickshift.sigma <= 100))
            return "sigma must be in [0, 100]";
        return NULL;
    }
    case SM_SEGMENT_SLIC:
        if (!(p->slic.n_segments >= 1))
            return "n_segments must be >= 1";
        if (!(p->slic.compactness > 0 && isfinite(p->slic.compactness)))
            return "compactness must be > 0";
        if (!(p->slic.sigma >= 0 && p->slic.sigma <= 100))
            return "sigma must be in [0, 100]";
        if (!(p->slic.max_iter >= 1))
            return "max_iter must be >= 1";
        return NULL;
    case SM_SEGMENT_FELZENSZWALB:
        if (!(p->felzenszwalb.scale > 0 && isfinite(p->felzenszwalb.scale)))
            return "scale must be > 0";
        if (!(p->felzenszwalb.sigma >= 0 && p->felzenszwalb.sigma <= 100))
            return "sigma must be in [0, 100]";
        if (!(p->felzenszwalb.min_size >= 0))
            return "min_size must be >= 0";
        return NULL;
    default:
        return "unknown method";
    }
}

int sm_segment(const sm_segment_params *p, const float *img, int c, int h,
               int w, int32_t *labels, int *n_segments, sm_err *err)
{
    char desc[256];
    describe(p, desc, sizeof desc);
    if (c != 1 && c != 3)
        return sm_err_set(err, "%s: %d channels: need 1 (grayscale) or 3 (RGB)",
                          desc, c);
    /* int32 labels hold a pixel index; the limit keeps h*w*3 in range too. */
    if (h < 1 || w < 1 || (long long)h * w > (1LL << 28))
        return sm_err_set(err, "%s: bad image size %dx%d", desc, h, w);
    const char *bad = check_params(p, h, w);
    if (bad)
        return sm_err_set(err, "%s: %s", desc, bad);
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(img[i]))
            return sm_err_set(err, "%s: pixel %zu of the %dx%dx%d image is not "
                              "finite", desc, i, c, h, w);
    int k;
    switch (p->method) {
    case SM_SEGMENT_GRID:
        k = sm_segment_grid(p, h, w, labels, err);
        break;
    case SM_SEGMENT_QUICKSHIFT:
        k = sm_segment_quickshift(p, img, c, h, w, labels, err);
        break;
    case SM_SEGMENT_SLIC:
        k = sm_segment_slic(p, img, c, h, w, labels, err);
        break;
    default:
        k = sm_segment_felzenszwalb(p, img, c, h, w, labels, err);
    }
    if (k < 0)
        return sm_err_prefix(err, "%s", desc);
    if (k < 2)
        return sm_err_set(err, "%s found %d segment in a %dx%d image: %s",
                          desc, k, h, w, advice(p->method));
    *n_segments = k;
    return 0;
}
