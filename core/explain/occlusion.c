/* Occlusion (Zeiler & Fergus 2014) with Captum's semantics: a window of the
 * baseline value, across all channels, slides over the image; each pixel's
 * value is f_c(x) - f_c(x with the window occluded), averaged over the
 * windows that cover it. Window positions per axis follow Captum's
 * Occlusion exactly: ceil((H - window) / stride) + 1 positions 0, stride,
 * 2 stride, ..., the last window cut at the image border when it would
 * overrun it (Captum pads the window with negative padding), so every
 * pixel is covered. Copy 0 of an image is x itself and copies 1.. its
 * windows, all in runs of that image alone (internal_batch a run), so f_c(x)
 * and the differences do not depend on what else the batch held. */
#include <stdio.h>
#include <stdlib.h>

#include "explain/gradient.h"

typedef struct occlusion_params {
    int window;
    int stride;
    double baseline;
    int internal_batch;
} occlusion_params;

typedef struct occ_job {
    const float *x;
    int64_t c, h, w;
    int win, stride, nw; /* nw: window positions along a row */
    float baseline;
    double *fx;          /* N: f_c(x) */
    double *acc;         /* N x hw: sum of the differences */
} occ_job;

/* Window k (from 0) as rows [*r0, *r1) and columns [*c0, *c1). */
static void occ_window(const occ_job *j, int64_t k, int64_t *r0, int64_t *r1,
                       int64_t *c0, int64_t *c1)
{
    *r0 = k / j->nw * j->stride;
    *c0 = k % j->nw * j->stride;
    *r1 = *r0 + j->win < j->h ? *r0 + j->win : j->h;
    *c1 = *c0 + j->win < j->w ? *c0 + j->win : j->w;
}

static void occ_make(void *u, int64_t i, int64_t k, float *dst)
{
    const occ_job *j = u;
    int64_t hw = j->h * j->w;
    const float *x = j->x + i * j->c * hw;
    for (int64_t e = 0; e < j->c * hw; e++)
        dst[e] = x[e];
    if (k == 0)
        return;
    int64_t r0, r1, c0, c1;
    occ_window(j, k - 1, &r0, &r1, &c0, &c1);
    for (int64_t ch = 0; ch < j->c; ch++)
        for (int64_t r = r0; r < r1; r++)
            for (int64_t q = c0; q < c1; q++)
                dst[ch * hw + r * j->w + q] = j->baseline;
}

static void occ_take(void *u, int64_t i, int64_t k, const float *copy,
                     const float *grad, double score)
{
    (void)copy;
    (void)grad;
    occ_job *j = u;
    if (k == 0) { /* copies arrive in increasing k: f_c(x) first */
        j->fx[i] = score;
        return;
    }
    int64_t r0, r1, c0, c1;
    occ_window(j, k - 1, &r0, &r1, &c0, &c1);
    double d = j->fx[i] - score, *acc = j->acc + i * j->h * j->w;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t q = c0; q < c1; q++)
            acc[r * j->w + q] += d;
}

/* Captum's count of window positions along an axis of n pixels. */
static int occ_positions(int64_t n, int win, int stride)
{
    return (int)((n - win + stride - 1) / stride) + 1;
}

static int occlusion_run(const void *params, const sm_explain_ctx *ctx,
                         const sm_explain_batch *b, sm_explain_out *out,
                         sm_err *err)
{
    const occlusion_params *p = params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3], hw = h * w;
    int win = p->window ? p->window : (int)((h + 6) / 7);
    int stride = p->stride ? p->stride : (win / 2 > 1 ? win / 2 : 1);
    if (win > h || win > w)
        return sm_err_set(err, "window %d exceeds the %lldx%lld "
                          "image", win, (long long)h, (long long)w);
    if (stride > win && (win < h || win < w)) /* Captum's condition */
        return sm_err_set(err, "stride %d is larger than the window %d: "
                          "pixels would be left uncovered", stride, win);
    int nh = occ_positions(h, win, stride), nw = occ_positions(w, win, stride);
    int64_t windows = (int64_t)nh * nw;
    double *fx = malloc(sizeof(double) * (size_t)n);
    double *acc = calloc((size_t)(n * hw), sizeof(double));
    int *cover = calloc((size_t)hw, sizeof(int));
    int rc = -1;
    if (!fx || !acc || !cover) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    occ_job job = {x->data, x->shape[1], h, w, win, stride, nw,
                   (float)p->baseline, fx, acc};
    for (int64_t k = 0; k < windows; k++) {
        int64_t r0, r1, c0, c1;
        occ_window(&job, k, &r0, &r1, &c0, &c1);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t q = c0; q < c1; q++)
                cover[r * w + q]++;
    }
    sm_explain_copies how = {windows + 1, p->internal_batch, 1, occ_make,
                             occ_take, &job};
    if (sm_explain_score_copies(ctx, x, b->target, &how, err))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t q = 0; q < hw; q++) /* cover >= 1: stride <= window */
            out[i].map[q] = (float)(acc[i * hw + q] / cover[q]);
        out[i].score = fx[i];
        out[i].evals = windows + 1;
        snprintf(out[i].extras, sizeof out[i].extras,
                 "{\"window\": %d, \"stride\": %d, \"windows\": %lld}", win,
                 stride, (long long)windows);
    }
    rc = 0;
done:
    free(fx);
    free(acc);
    free(cover);
    return rc;
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
    .summary = "Occlusion: score drop under a sliding baseline window "
               "(ceil(H/7) square, stride half of it)",
    .backward = 0,
    .params = occlusion_params_def,
    .params_size = sizeof(occlusion_params),
    .check = occlusion_check,
    .run = occlusion_run,
};
