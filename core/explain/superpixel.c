/* Superpixels for LIME and KernelSHAP (superpixel.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/gradient.h"
#include "explain/superpixel.h"

const char *const sm_superpixel_segmentations[] = {
    "quickshift", "slic", "felzenszwalb", "grid", NULL};
const char *const sm_superpixel_hides[] = {"mean", "constant", NULL};

/* The segmenter's parameters from ours; kernel_size 0 picks 1 for small
 * grayscale images (LIME's and ABELE's own MNIST runs: at 4 a 28x28 digit
 * often comes out as one or two segments) and LIME's 4 otherwise. */
static void superpixel_params(const sm_superpixel_params *p, int64_t c,
                              int64_t h, int64_t w, sm_segment_params *sp)
{
    sm_segment_params_default(sp);
    sp->method = (sm_segment_method)sm_segment_method_parse(p->segmentation);
    sp->grid.cells = p->cells;
    sp->quickshift.kernel_size = p->kernel_size > 0 ? p->kernel_size
                                 : c == 1 && h < 64 && w < 64 ? 1 : 4;
    sp->quickshift.max_dist = p->max_dist;
    sp->quickshift.ratio = p->ratio;
    sp->slic.n_segments = p->n_segments;
    sp->slic.compactness = p->compactness;
    sp->felzenszwalb.scale = p->scale;
    sp->felzenszwalb.min_size = p->min_size;
}

int sm_superpixel_record(const sm_superpixel_image *s, sm_record *rec)
{
    const sm_segment_params *sp = &s->used;
    const char *name = sm_segment_method_name(sp->method);
    sm_text t = {0};
    int rc = -1;
    switch (sp->method) {
    case SM_SEGMENT_QUICKSHIFT:
        rc = sm_text_addf(&t, "{\"method\": \"%s\", \"kernel_size\": %g, "
                          "\"max_dist\": %g, \"ratio\": %g", name,
                          sp->quickshift.kernel_size, sp->quickshift.max_dist,
                          sp->quickshift.ratio);
        break;
    case SM_SEGMENT_SLIC:
        rc = sm_text_addf(&t, "{\"method\": \"%s\", \"n_segments\": %d, "
                          "\"compactness\": %g, \"sigma\": %g", name,
                          sp->slic.n_segments, sp->slic.compactness,
                          sp->slic.sigma);
        break;
    case SM_SEGMENT_FELZENSZWALB:
        rc = sm_text_addf(&t, "{\"method\": \"%s\", \"scale\": %g, "
                          "\"sigma\": %g, \"min_size\": %d", name,
                          sp->felzenszwalb.scale, sp->felzenszwalb.sigma,
                          sp->felzenszwalb.min_size);
        break;
    case SM_SEGMENT_GRID:
        rc = sm_text_addf(&t, "{\"method\": \"%s\", \"cells\": %d", name,
                          sp->grid.cells);
        break;
    }
    rc = rc || sm_text_addf(&t, ", \"rescaled\": %s}",
                            s->rescaled ? "true" : "false") ||
         sm_record_addf(rec, "segmentation", "%s", t.s);
    sm_text_free(&t);
    return rc ? -1 : 0;
}

int sm_superpixel_segment(const sm_superpixel_params *p, const float *x,
                          int64_t c, int64_t h, int64_t w,
                          sm_superpixel_image *s, sm_err *err)
{
    int64_t hw = h * w;
    memset(s, 0, sizeof *s);
    s->x = x;
    s->c = c;
    s->h = h;
    s->w = w;
    sm_segment_params sp;
    superpixel_params(p, c, h, w, &sp);
    /* the segmenter takes 1 or 3 channels: others are segmented as their
     * mean, grayscale */
    int64_t sc = c == 1 || c == 3 ? c : 1;
    float lo = x[0], hi = x[0];
    for (int64_t e = 0; e < c * hw; e++) {
        lo = x[e] < lo ? x[e] : lo;
        hi = x[e] > hi ? x[e] : hi;
    }
    int rescaled = lo < 0 || hi > 1;
    float *img = NULL;
    double *sum = NULL;
    int64_t *count = NULL;
    s->label = malloc(sizeof(int32_t) * (size_t)hw);
    s->hidden = malloc(sizeof(float) * (size_t)(c * hw));
    if (rescaled || sc != c)
        img = malloc(sizeof(float) * (size_t)(sc * hw));
    if (!s->label || !s->hidden || ((rescaled || sc != c) && !img)) {
        sm_err_set(err, "out of memory");
        goto fail;
    }
    if (sc != c)
        for (int64_t q = 0; q < hw; q++) {
            double m = 0;
            for (int64_t ch = 0; ch < c; ch++)
                m += x[ch * hw + q];
            img[q] = (float)(m / c);
        }
    else if (rescaled)
        memcpy(img, x, sizeof(float) * (size_t)(c * hw));
    if (rescaled) /* a normalised input: stretched for the segmenter only */
        for (int64_t e = 0; e < sc * hw; e++)
            img[e] = hi > lo ? (img[e] - lo) / (hi - lo) : 0;
    if (sm_segment(&sp, img ? img : x, (int)sc, (int)h, (int)w, s->label,
                   &s->d, err))
        goto fail;
    s->used = sp;
    s->rescaled = rescaled;
    if (strcmp(p->hide, "constant") == 0) {
        for (int64_t e = 0; e < c * hw; e++)
            s->hidden[e] = (float)p->hide_value;
    } else { /* each superpixel's own mean, per channel (LIME's default) */
        sum = calloc((size_t)(s->d * c), sizeof(double));
        count = calloc((size_t)s->d, sizeof(int64_t));
        if (!sum || !count) {
            sm_err_set(err, "out of memory");
            goto fail;
        }
        for (int64_t q = 0; q < hw; q++) {
            count[s->label[q]]++;
            for (int64_t ch = 0; ch < c; ch++)
                sum[s->label[q] * c + ch] += x[ch * hw + q];
        }
        for (int64_t q = 0; q < hw; q++)
            for (int64_t ch = 0; ch < c; ch++)
                s->hidden[ch * hw + q] =
                    (float)(sum[s->label[q] * c + ch] / count[s->label[q]]);
    }
    free(img);
    free(sum);
    free(count);
    return 0;
fail:
    free(img);
    free(sum);
    free(count);
    sm_superpixel_image_free(s);
    return -1;
}

void sm_superpixel_image_free(sm_superpixel_image *s)
{
    free(s->label);
    free(s->hidden);
    s->label = NULL;
    s->hidden = NULL;
}

typedef struct superpixel_job {
    const sm_superpixel_image *s;
    const uint8_t *Z;
    double *y;
} superpixel_job;

static void superpixel_make(void *u, int64_t i, int64_t k, float *dst)
{
    (void)i;
    const superpixel_job *j = u;
    const sm_superpixel_image *s = j->s;
    const uint8_t *z = j->Z + k * s->d;
    int64_t hw = s->h * s->w;
    for (int64_t ch = 0; ch < s->c; ch++) {
        const float *x = s->x + ch * hw, *hid = s->hidden + ch * hw;
        float *o = dst + ch * hw;
        for (int64_t q = 0; q < hw; q++)
            o[q] = z[s->label[q]] ? x[q] : hid[q];
    }
}

static void superpixel_take(void *u, int64_t i, int64_t k, const float *copy,
                            const float *grad, double score)
{
    (void)i;
    (void)copy;
    (void)grad;
    superpixel_job *j = u;
    j->y[k] = score;
}

int sm_superpixel_scores(const sm_explain_ctx *ctx, const sm_superpixel_image *s,
                         int target, const uint8_t *Z, int64_t n, int cap,
                         double *y, sm_err *err)
{
    /* a one-image view: the copies are per image anyway (segments differ) */
    sm_tensor one = {.ndim = 4, .shape = {1, s->c, s->h, s->w},
                     .data = (float *)s->x};
    superpixel_job job = {s, Z, y};
    sm_explain_ctx prob = *ctx;
    prob.score_prob = 1; /* LIME and SHAP explain probabilities */
    sm_explain_copies how = {n, cap, 1, superpixel_make, superpixel_take,
                             &job};
    return sm_explain_score_copies(&prob, &one, &target, &how, err);
}

void sm_superpixel_paint(const sm_superpixel_image *s, const double *v,
                         float *map)
{
    for (int64_t q = 0; q < s->h * s->w; q++)
        map[q] = (float)v[s->label[q]];
}

/* What one call on one image asks of a superpixel method: its sample
 * count always; with y, the scores of rows [first, first + count); with
 * out, the fit of fit_y[0..fit_n), or when fit_y is NULL of the scores of
 * all n rows computed here (run()). */
typedef struct superpixel_call {
    int64_t n;
    int64_t first, count;
    double *y;
    const double *fit_y;
    int64_t fit_n;
    sm_explain_out *out;
} superpixel_call;

/* Scores rows [first, first + count) of s's neighbourhood into y, the
 * rows generated for that range only. */
static int superpixel_score_rows(const sm_superpixel_method *m,
                                 const void *params, const sm_explain_ctx *ctx,
                                 const sm_superpixel_image *s, int target,
                                 const char *id, int64_t first, int64_t count,
                                 double *y, sm_err *err)
{
    const sm_superpixel_params *p = params; /* the first member */
    uint8_t *Z = malloc((size_t)(count ? count : 1) * (size_t)s->d);
    if (!Z)
        return sm_err_set(err, "out of memory");
    int rc = m->rows(params, ctx, s, id, first, count, Z, err) ||
                     sm_superpixel_scores(ctx, s, target, Z, count,
                                          p->internal_batch, y, err)
                 ? -1
                 : 0;
    free(Z);
    return rc;
}

static int superpixel_call_on(const sm_superpixel_method *m,
                              const void *params, const sm_explain_ctx *ctx,
                              const sm_superpixel_image *s, int target,
                              const char *id, superpixel_call *k, sm_err *err)
{
    if ((k->n = m->samples(params, ctx, s, id, err)) < 0)
        return -1;
    if (k->y) {
        if (k->first < 0 || k->count < 0 || k->first > k->n - k->count)
            return sm_err_set(err, "samples %lld..%lld are not among its "
                              "%lld", (long long)k->first,
                              (long long)(k->first + k->count - 1),
                              (long long)k->n);
        if (superpixel_score_rows(m, params, ctx, s, target, id, k->first,
                                  k->count, k->y, err))
            return -1;
    }
    if (!k->out)
        return 0;
    if (k->fit_y) {
        if (k->fit_n != k->n)
            return sm_err_set(err, "%lld scores to fit, expected %lld",
                              (long long)k->fit_n, (long long)k->n);
        return m->fit(params, ctx, s, id, k->fit_y, k->n, k->out, err);
    }
    double *y = malloc(sizeof(double) * (size_t)(k->n ? k->n : 1));
    if (!y)
        return sm_err_set(err, "out of memory");
    int rc = superpixel_score_rows(m, params, ctx, s, target, id, 0, k->n, y,
                                   err) ||
                     m->fit(params, ctx, s, id, y, k->n, k->out, err)
                 ? -1
                 : 0;
    free(y);
    return rc;
}

/* Segments image x and carries out k on it; errors name the image. */
static int superpixel_call_image(const sm_superpixel_method *m,
                                 const void *params, const sm_explain_ctx *ctx,
                                 const float *x, int64_t c, int64_t h,
                                 int64_t w, int target, const char *id,
                                 superpixel_call *k, sm_err *err)
{
    sm_superpixel_image s;
    int rc = sm_superpixel_segment(params, x, c, h, w, &s, err);
    if (rc == 0) {
        rc = superpixel_call_on(m, params, ctx, &s, target, id, k, err);
        sm_superpixel_image_free(&s);
    }
    return rc ? sm_err_prefix(err, "image '%s'", id) : 0;
}

int sm_superpixel_run(const sm_superpixel_method *m, const void *params,
                      const sm_explain_ctx *ctx, const sm_explain_batch *b,
                      sm_explain_out *out, sm_err *err)
{
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
            w = x->shape[3];
    for (int64_t i = 0; i < n; i++) {
        superpixel_call k = {.out = out + i};
        if (superpixel_call_image(m, params, ctx, x->data + i * c * h * w, c,
                                  h, w, b->target[i], b->ids[i], &k, err))
            return -1;
    }
    return 0;
}

int64_t sm_superpixel_samples(const sm_superpixel_method *m,
                              const void *params, const sm_explain_ctx *ctx,
                              const float *x, int64_t c, int64_t h, int64_t w,
                              const char *id, sm_err *err)
{
    superpixel_call k = {0};
    return superpixel_call_image(m, params, ctx, x, c, h, w, 0, id, &k, err)
               ? -1
               : k.n;
}

int sm_superpixel_score(const sm_superpixel_method *m, const void *params,
                        const sm_explain_ctx *ctx, const float *x, int64_t c,
                        int64_t h, int64_t w, int target, const char *id,
                        int64_t first, int64_t count, double *y, sm_err *err)
{
    superpixel_call k = {.first = first, .count = count, .y = y};
    return superpixel_call_image(m, params, ctx, x, c, h, w, target, id, &k,
                                 err);
}

int sm_superpixel_fit(const sm_superpixel_method *m, const void *params,
                      const sm_explain_ctx *ctx, const float *x, int64_t c,
                      int64_t h, int64_t w, const char *id, const double *y,
                      int64_t n, sm_explain_out *out, sm_err *err)
{
    superpixel_call k = {.fit_y = y, .fit_n = n, .out = out};
    return superpixel_call_image(m, params, ctx, x, c, h, w, 0, id, &k, err);
}
