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
 * batch. */
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

typedef struct rise_job {
    const float *x;
    const uint64_t *key;
    int64_t c, h, w;
    int s, ch, cw; /* grid, cell height and width: ceil(H/s), ceil(W/s) */
    double p;
    const rise_tap *ty, *tx; /* (s+1) ch and (s+1) cw taps */
    unsigned char *cell;     /* s x s scratch */
    float *mask;             /* h x w scratch */
    double *fx;              /* N */
    double *acc;             /* N x hw: sum of f_c(x * M) M */
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

/* Mask m of image i into j->mask. */
static void rise_mask(rise_job *j, int64_t i, int64_t m)
{
    int s = j->s;
    uint64_t base = (uint64_t)m * (uint64_t)(s * s + 2), key = j->key[i];
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

static void rise_make(void *u, int64_t i, int64_t k, float *dst)
{
    rise_job *j = u;
    int64_t hw = j->h * j->w;
    const float *x = j->x + i * j->c * hw;
    if (k == 0) {
        for (int64_t e = 0; e < j->c * hw; e++)
            dst[e] = x[e];
        return;
    }
    rise_mask(j, i, k - 1);
    for (int64_t ch = 0; ch < j->c; ch++)
        for (int64_t q = 0; q < hw; q++)
            dst[ch * hw + q] = x[ch * hw + q] * j->mask[q];
}

static void rise_take(void *u, int64_t i, int64_t k, const float *copy,
                      const float *grad, double score)
{
    (void)copy;
    (void)grad;
    rise_job *j = u;
    if (k == 0) {
        j->fx[i] = score;
        return;
    }
    rise_mask(j, i, k - 1);
    double *acc = j->acc + i * j->h * j->w;
    for (int64_t q = 0; q < j->h * j->w; q++)
        acc[q] += score * j->mask[q];
}

static int rise_run(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_batch *b, sm_explain_out *out,
                    sm_err *err)
{
    const rise_params *p = params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3], hw = h * w;
    int s = p->grid;
    int ch = (int)((h + s - 1) / s), cw = (int)((w + s - 1) / s);
    uint64_t *key = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    rise_tap *ty = malloc(sizeof(rise_tap) * (size_t)((s + 1) * ch));
    rise_tap *tx = malloc(sizeof(rise_tap) * (size_t)((s + 1) * cw));
    unsigned char *cell = malloc((size_t)(s * s));
    float *mask = malloc(sizeof(float) * (size_t)hw);
    double *fx = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *acc = calloc((size_t)(n * hw), sizeof(double));
    int rc = -1;
    if (!key || !ty || !tx || !cell || !mask || !fx || (n && !acc)) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    rise_taps(s, (s + 1) * ch, ty);
    rise_taps(s, (s + 1) * cw, tx);
    for (int64_t i = 0; i < n; i++)
        key[i] = sm_rng_key(ctx->seed, (const char *[]){b->ids[i], "rise", NULL});
    rise_job job = {x->data, key, x->shape[1], h, w, s, ch, cw, p->p,
                    ty, tx, cell, mask, fx, acc};
    sm_explain_ctx prob = *ctx;
    prob.score_prob = 1; /* the paper's f, whatever the job's score */
    sm_explain_copies how = {(int64_t)p->masks + 1, p->internal_batch, 1,
                             rise_make, rise_take, &job};
    if (sm_explain_score_copies(&prob, x, b->target, &how, err))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t q = 0; q < hw; q++)
            out[i].map[q] = (float)(acc[i * hw + q] / (p->masks * p->p));
        out[i].score = fx[i];
        out[i].evals = p->masks + 1;
        snprintf(out[i].extras, sizeof out[i].extras, "{\"cell\": [%d, %d]}",
                 ch, cw);
    }
    rc = 0;
done:
    free(key);
    free(ty);
    free(tx);
    free(cell);
    free(mask);
    free(fx);
    free(acc);
    return rc;
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
    .run = rise_run,
};
