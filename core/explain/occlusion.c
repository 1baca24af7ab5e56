/* Occlusion (Zeiler & Fergus 2014) with Captum's semantics: a window of the
 * baseline value, across all channels, slides over the image; each pixel's
 * value is f_c(x) - f_c(x with the window occluded), averaged over the
 * windows that cover it. Window positions per axis follow Captum's
 * Occlusion exactly: ceil((H - window) / stride) + 1 positions 0, stride,
 * 2 stride, ..., the last window cut at the image border when it would
 * overrun it (Captum pads the window with negative padding), so every
 * pixel is covered. Copy 0 of an image is x itself and copies 1.. its
 * windows, all in runs of that image alone (internal_batch a run), so f_c(x)
 * and the differences do not depend on what else the batch held. The
 * copies are the image's neighbourhood (explainer.h): scored in any chunks,
 * then summed in window order by the fit. */
#include <stdio.h>
#include <stdlib.h>

#include "explain/gradient.h"

typedef struct occlusion_params {
    int window;
    int stride;
    double baseline;
    int internal_batch;
} occlusion_params;

/* One image's windows and, when scoring, where the scores go. */
typedef struct occ_job {
    const float *x;      /* c x h x w */
    int64_t c, h, w;
    int win, stride, nw; /* nw: window positions along a row */
    int64_t windows;
    float baseline;
    int64_t first;       /* scoring: copy k of a run is sample first + k */
    double *y;           /* scoring: the samples' scores */
} occ_job;

/* Captum's count of window positions along an axis of n pixels. */
static int occ_positions(int64_t n, int win, int stride)
{
    return (int)((n - win + stride - 1) / stride) + 1;
}

/* The windows of an h x w image x; -1 when they do not fit it. */
static int occ_job_init(const occlusion_params *p, const float *x, int64_t c,
                        int64_t h, int64_t w, occ_job *j, sm_err *err)
{
    int win = p->window ? p->window : (int)((h + 6) / 7);
    int stride = p->stride ? p->stride : (win / 2 > 1 ? win / 2 : 1);
    if (win > h || win > w)
        return sm_err_set(err, "window %d exceeds the %lldx%lld "
                          "image", win, (long long)h, (long long)w);
    if (stride > win && (win < h || win < w)) /* Captum's condition */
        return sm_err_set(err, "stride %d is larger than the window %d: "
                          "pixels would be left uncovered", stride, win);
    int nh = occ_positions(h, win, stride), nw = occ_positions(w, win, stride);
    *j = (occ_job){.x = x, .c = c, .h = h, .w = w, .win = win,
                   .stride = stride, .nw = nw, .windows = (int64_t)nh * nw,
                   .baseline = (float)p->baseline};
    return 0;
}

/* Window k (from 0) as rows [*r0, *r1) and columns [*c0, *c1). */
static void occ_window(const occ_job *j, int64_t k, int64_t *r0, int64_t *r1,
                       int64_t *c0, int64_t *c1)
{
    *r0 = k / j->nw * j->stride;
    *c0 = k % j->nw * j->stride;
    *r1 = *r0 + j->win < j->h ? *r0 + j->win : j->h;
    *c1 = *c0 + j->win < j->w ? *c0 + j->win : j->w;
}

/* Sample 0 is x itself, sample k >= 1 x with window k - 1 occluded. */
static void occ_make(void *u, int64_t i, int64_t k, float *dst)
{
    (void)i;
    const occ_job *j = u;
    int64_t hw = j->h * j->w, sample = j->first + k;
    for (int64_t e = 0; e < j->c * hw; e++)
        dst[e] = j->x[e];
    if (sample == 0)
        return;
    int64_t r0, r1, c0, c1;
    occ_window(j, sample - 1, &r0, &r1, &c0, &c1);
    for (int64_t ch = 0; ch < j->c; ch++)
        for (int64_t r = r0; r < r1; r++)
            for (int64_t q = c0; q < c1; q++)
                dst[ch * hw + r * j->w + q] = j->baseline;
}

static void occ_take(void *u, int64_t i, int64_t k, const float *copy,
                     const float *grad, double score)
{
    (void)i;
    (void)copy;
    (void)grad;
    ((occ_job *)u)->y[k] = score;
}

static int64_t occlusion_samples(const void *params, const sm_explain_ctx *ctx,
                                 const float *x, int64_t c, int64_t h,
                                 int64_t w, int target, const char *id,
                                 sm_err *err)
{
    (void)ctx, (void)target, (void)id;
    occ_job j;
    return occ_job_init(params, x, c, h, w, &j, err) ? -1 : j.windows + 1;
}

static int occlusion_score(const void *params, const sm_explain_ctx *ctx,
                           const float *x, int64_t c, int64_t h, int64_t w,
                           int target, const char *id, int64_t first,
                           int64_t count, double *y, sm_err *err)
{
    const occlusion_params *p = params;
    occ_job j;
    if (occ_job_init(p, x, c, h, w, &j, err))
        return -1;
    if (first > j.windows + 1 - count)
        return sm_err_set(err, "image '%s': samples %lld..%lld are not "
                          "among its %lld", id, (long long)first,
                          (long long)(first + count - 1),
                          (long long)(j.windows + 1));
    j.first = first;
    j.y = y;
    /* a one-image view: runs hold this image's samples only */
    sm_tensor one = {.ndim = 4, .shape = {1, c, h, w}, .data = (float *)x};
    sm_explain_copies how = {count, p->internal_batch, 1, occ_make, occ_take,
                             &j, 0, 0};
    return sm_explain_score_copies(ctx, &one, &target, &how, err);
}

/* Each pixel: the mean over the windows covering it of f(x) - f(x with
 * the window occluded), summed in window order. */
static int occlusion_fit(const void *params, const sm_explain_ctx *ctx,
                         const float *x, int64_t c, int64_t h, int64_t w,
                         int target, const char *id, const double *y,
                         int64_t n, sm_explain_out *out, sm_err *err)
{
    (void)ctx, (void)target;
    occ_job j;
    if (occ_job_init(params, x, c, h, w, &j, err))
        return -1;
    if (n != j.windows + 1)
        return sm_err_set(err, "image '%s': %lld scores to fit, expected "
                          "%lld", id, (long long)n, (long long)(j.windows + 1));
    int64_t hw = h * w;
    double *acc = calloc((size_t)hw, sizeof(double));
    int *cover = calloc((size_t)hw, sizeof(int));
    if (!acc || !cover) {
        free(acc);
        free(cover);
        return sm_err_set(err, "out of memory");
    }
    for (int64_t k = 0; k < j.windows; k++) {
        int64_t r0, r1, c0, c1;
        occ_window(&j, k, &r0, &r1, &c0, &c1);
        double d = y[0] - y[k + 1];
        for (int64_t r = r0; r < r1; r++)
            for (int64_t q = c0; q < c1; q++) {
                acc[r * w + q] += d;
                cover[r * w + q]++;
            }
    }
    for (int64_t q = 0; q < hw; q++) /* cover >= 1: stride <= window */
        out->map[q] = (float)(acc[q] / cover[q]);
    out->score = y[0];
    out->evals = n;
    free(acc);
    free(cover);
    sm_record_addf(&out->record, "window", "%d", j.win);
    sm_record_addf(&out->record, "stride", "%d", j.stride);
    sm_record_addf(&out->record, "windows", "%lld", (long long)j.windows);
    return 0;
}

static int occlusion_check(const void *params, sm_err *err)
{
    const occlusion_params *p = params;
    if (p->window && p->stride > p->window)
        return sm_err_set(err, "occlusion.stride: '%d' is larger than the "
                          "window (%d): pixels would be left uncovered",
                          p->stride, p->window);
    return 0;
}

#define P(f) offsetof(occlusion_params, f)
static const sm_param_def occlusion_params_def[] = {
    {"window", SM_PARAM_INT, P(window), "0", 0, 100000, NULL,
     "side of the square window in pixels; 0: ceil(H/7)"},
    {"stride", SM_PARAM_INT, P(stride), "0", 0, 100000, NULL,
     "step between window positions; 0: half the window (at least 1)"},
    {"baseline", SM_PARAM_FLOAT, P(baseline), "0", -1e30, 1e30, NULL,
     "value of the occluded pixels (model-input units)"},
    {"internal_batch", SM_PARAM_INT, P(internal_batch), "256", 1, 1000000,
     NULL, "occluded copies of one image per model run"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_occlusion = {
    .name = "occlusion",
    .signed_map = sm_explain_signed,
    .summary = "Occlusion: score drop under a sliding baseline window "
               "(ceil(H/7) square, stride half of it)",
    .backward = 0,
    .params = occlusion_params_def,
    .params_size = sizeof(occlusion_params),
    .check = occlusion_check,
    .run = NULL, /* each image: samples, score(0, n), fit */
    .samples = occlusion_samples,
    .score = occlusion_score,
    .fit = occlusion_fit,
};
