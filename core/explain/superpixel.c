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

/* What s's hidden pixels take: hide_value, or each superpixel's mean per
 * channel (LIME's default). s->label must hold 0..d-1, each at least once
 * (checked: labels may come from a state on the wire). 0 or -1. */
static int superpixel_hide(const sm_superpixel_params *p,
                           sm_superpixel_image *s, sm_err *err)
{
    int64_t c = s->c, hw = s->h * s->w;
    double *sum = calloc((size_t)(s->d * c), sizeof(double));
    int64_t *count = calloc((size_t)s->d, sizeof(int64_t));
    int rc = 0;
    if (!sum || !count) {
        rc = sm_err_set(err, "out of memory");
        goto done;
    }
    for (int64_t q = 0; q < hw && rc == 0; q++)
        if (s->label[q] < 0 || s->label[q] >= s->d)
            rc = sm_err_set(err, "superpixel %d of pixel %lld is not one "
                            "of %d", (int)s->label[q], (long long)q, s->d);
    int constant = strcmp(p->hide, "constant") == 0;
    for (int64_t q = 0; q < hw && rc == 0; q++) {
        count[s->label[q]]++;
        for (int64_t ch = 0; ch < c && !constant; ch++)
            sum[s->label[q] * c + ch] += s->x[ch * hw + q];
    }
    for (int l = 0; l < s->d && rc == 0; l++)
        if (!count[l])
            rc = sm_err_set(err, "superpixel %d has no pixel", l);
    for (int64_t q = 0; q < hw && rc == 0; q++)
        for (int64_t ch = 0; ch < c; ch++)
            s->hidden[ch * hw + q] =
                constant ? (float)p->hide_value
                         : (float)(sum[s->label[q] * c + ch] /
                                   count[s->label[q]]);
done:
    free(sum);
    free(count);
    return rc;
}

/* s for image x before its labels: the segmentation to use, whether the
 * pixels are stretched for it (*lo..*hi), buffers. 0 or -1. */
static int superpixel_prepare(const sm_superpixel_params *p, const float *x,
                              int64_t c, int64_t h, int64_t w,
                              sm_superpixel_image *s, float *lo, float *hi,
                              sm_err *err)
{
    int64_t hw = h * w;
    memset(s, 0, sizeof *s);
    s->x = x;
    s->c = c;
    s->h = h;
    s->w = w;
    superpixel_params(p, c, h, w, &s->used);
    *lo = *hi = x[0];
    for (int64_t e = 0; e < c * hw; e++) {
        *lo = x[e] < *lo ? x[e] : *lo;
        *hi = x[e] > *hi ? x[e] : *hi;
    }
    s->rescaled = *lo < 0 || *hi > 1;
    s->label = malloc(sizeof(int32_t) * (size_t)hw);
    s->hidden = malloc(sizeof(float) * (size_t)(c * hw));
    if (!s->label || !s->hidden) {
        sm_superpixel_image_free(s);
        return sm_err_set(err, "out of memory");
    }
    return 0;
}

int sm_superpixel_segment(const sm_superpixel_params *p, const float *x,
                          int64_t c, int64_t h, int64_t w,
                          sm_superpixel_image *s, sm_err *err)
{
    int64_t hw = h * w;
    float lo, hi;
    if (superpixel_prepare(p, x, c, h, w, s, &lo, &hi, err))
        return -1;
    /* the segmenter takes 1 or 3 channels: others are segmented as their
     * mean, grayscale */
    int64_t sc = c == 1 || c == 3 ? c : 1;
    float *img = NULL;
    if (s->rescaled || sc != c) {
        if (!(img = malloc(sizeof(float) * (size_t)(sc * hw)))) {
            sm_superpixel_image_free(s);
            return sm_err_set(err, "out of memory");
        }
        if (sc != c)
            for (int64_t q = 0; q < hw; q++) {
                double m = 0;
                for (int64_t ch = 0; ch < c; ch++)
                    m += x[ch * hw + q];
                img[q] = (float)(m / c);
            }
        else
            memcpy(img, x, sizeof(float) * (size_t)(c * hw));
    }
    if (s->rescaled) /* a normalised input: stretched for the segmenter */
        for (int64_t e = 0; e < sc * hw; e++)
            img[e] = hi > lo ? (img[e] - lo) / (hi - lo) : 0;
    int rc = sm_segment(&s->used, img ? img : x, (int)sc, (int)h, (int)w,
                        s->label, &s->d, err) ||
             superpixel_hide(p, s, err);
    free(img);
    if (rc)
        sm_superpixel_image_free(s);
    return rc ? -1 : 0;
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

/* Copies of s with the rows of Z applied, scored (labels 0) or labelled. */
static int superpixel_run(const sm_explain_ctx *ctx,
                          const sm_superpixel_image *s, int target,
                          const uint8_t *Z, int64_t n, int cap, int labels,
                          double *y, sm_err *err)
{
    /* a one-image view: the copies are per image anyway (segments differ) */
    sm_tensor one = {.ndim = 4, .shape = {1, s->c, s->h, s->w},
                     .data = (float *)s->x};
    superpixel_job job = {s, Z, y};
    sm_explain_ctx prob = *ctx;
    prob.score_prob = 1; /* LIME and SHAP explain probabilities */
    sm_explain_copies how = {n, cap, 1, superpixel_make, superpixel_take,
                             &job, labels, 0};
    return sm_explain_score_copies(&prob, &one, &target, &how, err);
}

int sm_superpixel_scores(const sm_explain_ctx *ctx, const sm_superpixel_image *s,
                         int target, const uint8_t *Z, int64_t n, int cap,
                         double *y, sm_err *err)
{
    return superpixel_run(ctx, s, target, Z, n, cap, 0, y, err);
}

int sm_superpixel_labels(const sm_explain_ctx *ctx,
                         const sm_superpixel_image *s, const uint8_t *Z,
                         int64_t n, int cap, double *label, sm_err *err)
{
    return superpixel_run(ctx, s, 0, Z, n, cap, 1, label, err);
}

void sm_superpixel_paint(const sm_superpixel_image *s, const double *v,
                         float *map)
{
    for (int64_t q = 0; q < s->h * s->w; q++)
        map[q] = (float)v[s->label[q]];
}

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

/* One image's one round: its superpixels, n, and the n scores once in.
 * The state carries the labels, so a chunk worker does not segment. */
typedef struct superpixel_state {
    sm_superpixel_image s;
    int64_t n;
    double *y; /* NULL until update */
} superpixel_state;

void sm_superpixel_release(void *st)
{
    superpixel_state *t = st;
    if (!t)
        return;
    sm_superpixel_image_free(&t->s);
    free(t->y);
    free(t);
}

/* A state with s and its n; NULL with a message naming the image. */
static superpixel_state *state_of(const sm_superpixel_method *m,
                                  const void *params,
                                  const sm_explain_ctx *ctx,
                                  const sm_explain_image *im,
                                  sm_superpixel_image *s, sm_err *err)
{
    superpixel_state *t = calloc(1, sizeof *t);
    if (!t) {
        sm_superpixel_image_free(s);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    t->s = *s;
    if ((t->n = m->samples(params, ctx, &t->s, im->id, err)) < 0) {
        sm_superpixel_release(t);
        sm_err_prefix(err, "image '%s'", im->id);
        return NULL;
    }
    return t;
}

void *sm_superpixel_begin(const sm_superpixel_method *m, const void *params,
                          const sm_explain_ctx *ctx,
                          const sm_explain_image *im, sm_err *err)
{
    sm_superpixel_image s;
    if (sm_superpixel_segment(params, im->x, im->c, im->h, im->w, &s, err)) {
        sm_err_prefix(err, "image '%s'", im->id);
        return NULL;
    }
    return state_of(m, params, ctx, im, &s, err);
}

int64_t sm_superpixel_propose(const void *params, const sm_explain_ctx *ctx,
                              const sm_explain_image *im, void *st,
                              sm_err *err)
{
    (void)params, (void)ctx, (void)im, (void)err;
    const superpixel_state *t = st;
    return t->y ? 0 : t->n;
}

int sm_superpixel_round_score(const sm_superpixel_method *m,
                              const void *params, const sm_explain_ctx *ctx,
                              const sm_explain_image *im, const void *st,
                              int64_t first, int64_t count, double *y,
                              sm_err *err)
{
    const superpixel_state *t = st;
    if (superpixel_score_rows(m, params, ctx, &t->s, im->target, im->id,
                              first, count, y, err))
        return sm_err_prefix(err, "image '%s'", im->id);
    return 0;
}

int sm_superpixel_update(const void *params, const sm_explain_ctx *ctx,
                         const sm_explain_image *im, void *st,
                         const double *y, int64_t n, sm_err *err)
{
    (void)params, (void)ctx, (void)im;
    superpixel_state *t = st;
    if (!(t->y = malloc(sizeof(double) * (size_t)(n ? n : 1))))
        return sm_err_set(err, "out of memory");
    memcpy(t->y, y, sizeof(double) * (size_t)n);
    return 0;
}

int sm_superpixel_finish(const sm_superpixel_method *m, const void *params,
                         const sm_explain_ctx *ctx,
                         const sm_explain_image *im, void *st,
                         sm_explain_out *out, sm_err *err)
{
    const superpixel_state *t = st;
    if (m->fit(params, ctx, &t->s, im->id, t->y, t->n, out, err))
        return sm_err_prefix(err, "image '%s'", im->id);
    return 0;
}

int sm_superpixel_image_encode(const sm_superpixel_image *s, sm_text *t,
                               sm_err *err)
{
    int32_t d = s->d;
    if (sm_text_add(t, &d, sizeof d) ||
        sm_text_add(t, s->label, sizeof(int32_t) * (size_t)(s->h * s->w)))
        return sm_err_set(err, "out of memory");
    return 0;
}

int sm_superpixel_image_decode(const sm_superpixel_params *p,
                               const sm_explain_image *im, const uint8_t *b,
                               size_t len, sm_superpixel_image *s,
                               size_t *used, sm_err *err)
{
    size_t hw = (size_t)(im->h * im->w), need = sizeof(int32_t) * (1 + hw);
    int32_t d;
    float lo, hi;
    if (len < need)
        return sm_err_set(err, "image '%s': superpixel state of %zu bytes, "
                          "not at least %zu", im->id, len, need);
    memcpy(&d, b, sizeof d);
    if (d < 1 || (size_t)d > hw)
        return sm_err_set(err, "image '%s': a superpixel state of %d "
                          "superpixels", im->id, (int)d);
    if (superpixel_prepare(p, im->x, im->c, im->h, im->w, s, &lo, &hi, err))
        return -1;
    s->d = d;
    memcpy(s->label, b + sizeof d, sizeof(int32_t) * hw);
    if (superpixel_hide(p, s, err)) {
        sm_superpixel_image_free(s);
        return sm_err_prefix(err, "image '%s'", im->id);
    }
    *used = need;
    return 0;
}

/* Bytes: the image's labels (sm_superpixel_image_encode). Encoded only
 * while the round is proposed, so without scores; n is the generic
 * header's, checked against the decoded state's. */
int sm_superpixel_encode(const void *params, const void *st, sm_text *t,
                         sm_err *err)
{
    (void)params;
    const superpixel_state *u = st;
    return sm_superpixel_image_encode(&u->s, t, err);
}

void *sm_superpixel_decode(const sm_superpixel_method *m, const void *params,
                           const sm_explain_ctx *ctx,
                           const sm_explain_image *im, const uint8_t *b,
                           size_t len, sm_err *err)
{
    sm_superpixel_image s;
    size_t used;
    if (sm_superpixel_image_decode(params, im, b, len, &s, &used, err))
        return NULL;
    if (used != len) {
        sm_superpixel_image_free(&s);
        sm_err_set(err, "image '%s': superpixel state of %zu bytes, not %zu",
                   im->id, len, used);
        return NULL;
    }
    return state_of(m, params, ctx, im, &s, err);
}
