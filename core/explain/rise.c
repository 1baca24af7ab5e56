/* RISE (Petsiuk 2018), with TorchRay's and xplique's defaults: N random
 * masks, each an s x s grid of cells kept with probability p, bilinearly
 * upsampled to (s+1) ceil(H/s) x (s+1) ceil(W/s) and cropped to H x W at a
 * random offset; S = sum_i f_c(x * M_i) M_i / (N p), f the softmax
 * probability of the target (the paper's, whatever the job's score; the
 * model's output itself when it already holds probabilities).
 *
 * Mask m of an image uses draws m (s^2 + 2) + j of the stream keyed by
 * (seed, image id, "rise"): j < s^2 the cells in row-major order (kept when
 * the uniform draw is < p), then the row and the column offset
 * (floor(u ceil(H/s)), floor(u ceil(W/s))). The upsampling is PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) computed directly
 * here (a libvips call a mask would cost more than the model): source
 * coordinate (d + 1/2) s / (up) - 1/2, clamped at 0 and at the last cell.
 * Masks are regenerated when needed, never stored (N x H x W would not fit
 * for large images). Copy 0 of an image is x itself, for the score, and the
 * runs hold one image's copies only, so a map does not depend on its
 * batch. The copies are the image's neighbourhood (explainer.h): scored in
 * any chunks, then summed in mask order by the fit, which regenerates the
 * masks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "explain/gradient.h"
#include "util/rng.h"

typedef struct rise_params {
    int masks;
    int grid;
    double p;
    int internal_batch;
} rise_params;

/* One interpolation tap pair per output coordinate of an axis. */
typedef struct rise_tap {
    int i0, i1;
    double l; /* weight of i1 */
} rise_tap;

/* One image's masks: their geometry, the image, and scratch. */
typedef struct rise_job {
    const float *x;          /* c x h x w */
    uint64_t key;            /* (seed, image id, "rise") */
    int64_t c, h, w;
    int s, ch, cw; /* grid, cell height and width: ceil(H/s), ceil(W/s) */
    double p;
    rise_tap *ty, *tx;       /* (s+1) ch and (s+1) cw taps */
    unsigned char *cell;     /* s x s scratch */
    float *mask;             /* h x w scratch */
    int64_t first;           /* scoring: copy k of a run is sample first + k */
    double *y;               /* scoring: the samples' scores */
} rise_job;

/* The taps of bilinear resampling from n cells to up pixels, PyTorch's
 * align_corners=False geometry. */
static void rise_taps(int n, int up, rise_tap *t)
{
    for (int d = 0; d < up; d++) {
        double src = (d + 0.5) * n / up - 0.5;
        src = src < 0 ? 0 : src;
        int i0 = (int)src;
        t[d].i0 = i0;
        t[d].i1 = i0 + 1 < n ? i0 + 1 : n - 1;
        t[d].l = src - i0;
    }
}

static void rise_job_free(rise_job *j)
{
    free(j->ty);
    free(j->tx);
    free(j->cell);
    free(j->mask);
}

/* The masks of image x (c x h x w) with id. 0, or -1 out of memory (j is
 * then freed). */
static int rise_job_init(const rise_params *p, const sm_explain_ctx *ctx,
                         const float *x, int64_t c, int64_t h, int64_t w,
                         const char *id, rise_job *j, sm_err *err)
{
    int s = p->grid;
    int ch = (int)((h + s - 1) / s), cw = (int)((w + s - 1) / s);
    *j = (rise_job){.x = x, .c = c, .h = h, .w = w, .s = s, .ch = ch,
                    .cw = cw, .p = p->p};
    j->key = sm_rng_key(ctx->seed, (const char *[]){id, "rise", NULL});
    j->ty = malloc(sizeof(rise_tap) * (size_t)((s + 1) * ch));
    j->tx = malloc(sizeof(rise_tap) * (size_t)((s + 1) * cw));
    j->cell = malloc((size_t)(s * s));
    j->mask = malloc(sizeof(float) * (size_t)(h * w));
    if (!j->ty || !j->tx || !j->cell || !j->mask) {
        rise_job_free(j);
        return sm_err_set(err, "out of memory");
    }
    rise_taps(s, (s + 1) * ch, j->ty);
    rise_taps(s, (s + 1) * cw, j->tx);
    return 0;
}

/* Mask m of the image into j->mask. */
static void rise_mask(rise_job *j, int64_t m)
{
    int s = j->s;
    uint64_t base = (uint64_t)m * (uint64_t)(s * s + 2), key = j->key;
    for (int g = 0; g < s * s; g++)
        j->cell[g] = sm_rng_uniform(key, base + (uint64_t)g) < j->p;
    int oy = (int)(sm_rng_uniform(key, base + (uint64_t)(s * s)) * j->ch);
    int ox = (int)(sm_rng_uniform(key, base + (uint64_t)(s * s) + 1) * j->cw);
    for (int64_t r = 0; r < j->h; r++) {
        const rise_tap *ty = j->ty + oy + r;
        const unsigned char *a = j->cell + ty->i0 * s, *b = j->cell + ty->i1 * s;
        for (int64_t q = 0; q < j->w; q++) {
            const rise_tap *tx = j->tx + ox + q;
            double top = a[tx->i0] + tx->l * (a[tx->i1] - a[tx->i0]);
            double bot = b[tx->i0] + tx->l * (b[tx->i1] - b[tx->i0]);
            j->mask[r * j->w + q] = (float)(top + ty->l * (bot - top));
        }
    }
}

/* Sample 0 is x itself, sample k >= 1 x times mask k - 1. */
static void rise_make(void *u, int64_t i, int64_t k, float *dst)
{
    (void)i;
    rise_job *j = u;
    int64_t hw = j->h * j->w, sample = j->first + k;
    if (sample == 0) {
        for (int64_t e = 0; e < j->c * hw; e++)
            dst[e] = j->x[e];
        return;
    }
    rise_mask(j, sample - 1);
    for (int64_t ch = 0; ch < j->c; ch++)
        for (int64_t q = 0; q < hw; q++)
            dst[ch * hw + q] = j->x[ch * hw + q] * j->mask[q];
}

static void rise_take(void *u, int64_t i, int64_t k, const float *copy,
                      const float *grad, double score)
{
    (void)i;
    (void)copy;
    (void)grad;
    ((rise_job *)u)->y[k] = score;
}

static int64_t rise_samples(const void *params, const sm_explain_ctx *ctx,
                            const float *x, int64_t c, int64_t h, int64_t w,
                            int target, const char *id, sm_err *err)
{
    (void)ctx, (void)x, (void)c, (void)h, (void)w, (void)target, (void)id;
    (void)err;
    return (int64_t)((const rise_params *)params)->masks + 1;
}

static int rise_score(const void *params, const sm_explain_ctx *ctx,
                      const float *x, int64_t c, int64_t h, int64_t w,
                      int target, const char *id, int64_t first,
                      int64_t count, double *y, sm_err *err)
{
    const rise_params *p = params;
    if (first > (int64_t)p->masks + 1 - count)
        return sm_err_set(err, "image '%s': samples %lld..%lld are not "
                          "among its %d", id, (long long)first,
                          (long long)(first + count - 1), p->masks + 1);
    rise_job j;
    if (rise_job_init(p, ctx, x, c, h, w, id, &j, err))
        return -1;
    j.first = first;
    j.y = y;
    /* a one-image view: runs hold this image's samples only */
    sm_tensor one = {.ndim = 4, .shape = {1, c, h, w}, .data = (float *)x};
    sm_explain_ctx prob = *ctx;
    prob.score_prob = 1; /* the paper's f, whatever the job's score */
    sm_explain_copies how = {count, p->internal_batch, 1, rise_make,
                             rise_take, &j, 0, 0};
    int rc = sm_explain_score_copies(&prob, &one, &target, &how, err);
    rise_job_free(&j);
    return rc;
}

/* S = sum_m y[m + 1] mask_m / (N p), summed in m order. */
static int rise_fit(const void *params, const sm_explain_ctx *ctx,
                    const float *x, int64_t c, int64_t h, int64_t w,
                    int target, const char *id, const double *y, int64_t n,
                    sm_explain_out *out, sm_err *err)
{
    (void)target;
    const rise_params *p = params;
    int64_t hw = h * w;
    if (n != (int64_t)p->masks + 1)
        return sm_err_set(err, "image '%s': %lld scores to fit, expected "
                          "%d", id, (long long)n, p->masks + 1);
    rise_job j;
    if (rise_job_init(p, ctx, x, c, h, w, id, &j, err))
        return -1;
    double *acc = calloc((size_t)hw, sizeof(double));
    if (!acc) {
        rise_job_free(&j);
        return sm_err_set(err, "out of memory");
    }
    for (int64_t m = 0; m < p->masks; m++) {
        rise_mask(&j, m);
        for (int64_t q = 0; q < hw; q++)
            acc[q] += y[m + 1] * j.mask[q];
    }
    for (int64_t q = 0; q < hw; q++)
        out->map[q] = (float)(acc[q] / (p->masks * p->p));
    out->score = y[0];
    out->evals = n;
    sm_record_addf(&out->record, "cell", "[%d, %d]", j.ch, j.cw);
    free(acc);
    rise_job_free(&j);
    return 0;
}

static int rise_check(const void *params, sm_err *err)
{
    const rise_params *p = params;
    if (!(p->p > 0))
        return sm_err_set(err, "rise.p: '%g' must be above 0 (the "
                          "keep-probability divides the map)", p->p);
    return 0;
}

#define P(f) offsetof(rise_params, f)
static const sm_param_def rise_params_def[] = {
    {"masks", SM_PARAM_INT, P(masks), "4000", 1, 10000000, NULL,
     "random masks N"},
    {"grid", SM_PARAM_INT, P(grid), "7", 1, 1000, NULL,
     "cells s per side of a mask's grid"},
    {"p", SM_PARAM_FLOAT, P(p), "0.5", 0, 1, NULL,
     "keep-probability of a cell (above 0)"},
    {"internal_batch", SM_PARAM_INT, P(internal_batch), "256", 1, 1000000,
     NULL, "masked copies of one image per model run"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_rise = {
    .name = "rise",
    .summary = "RISE: mean of 4000 random 7x7 upsampled masks weighted by "
               "the softmax score of the masked image",
    .backward = 0,
    .params = rise_params_def,
    .params_size = sizeof(rise_params),
    .check = rise_check,
    .run = NULL, /* each image: samples, score(0, n), fit */
    .samples = rise_samples,
    .score = rise_score,
    .fit = rise_fit,
};
