#include "metrics/deletion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#define BLUR_TAPS 11
#define BLUR_SIGMA 5.0

int sm_deletion_blur(const float *x, int64_t c, int64_t h, int64_t w,
                     float *out, sm_err *err)
{
    /* Petsiuk's kernel: a normalised 11-tap Gaussian, sigma 5, applied
     * separably with zeros outside the image. */
    VipsImage *mask = vips_image_new_matrix(BLUR_TAPS, 1);
    if (!mask)
        return sm_err_set(err, "blur: %s", vips_error_buffer());
    double sum = 0;
    for (int i = 0; i < BLUR_TAPS; i++) {
        double d = i - BLUR_TAPS / 2;
        sum += *VIPS_MATRIX(mask, i, 0) = exp(-d * d / (2 * BLUR_SIGMA * BLUR_SIGMA));
    }
    vips_image_set_double(mask, "scale", sum);
    int rc = 0;
    for (int64_t ch = 0; ch < c && rc == 0; ch++) {
        VipsImage *in = vips_image_new_from_memory(
            x + ch * h * w, (size_t)(h * w) * sizeof(float), (int)w, (int)h, 1,
            VIPS_FORMAT_FLOAT);
        VipsImage *pad = NULL, *conv = NULL, *crop = NULL;
        const int r = BLUR_TAPS / 2;
        if (!in ||
            vips_embed(in, &pad, r, r, (int)w + 2 * r, (int)h + 2 * r,
                       "extend", VIPS_EXTEND_BLACK, NULL) ||
            vips_convsep(pad, &conv, mask, "precision", VIPS_PRECISION_FLOAT,
                         NULL) ||
            vips_crop(conv, &crop, r, r, (int)w, (int)h, NULL)) {
            rc = sm_err_set(err, "blur: %s", vips_error_buffer());
            vips_error_clear();
        } else {
            size_t len;
            void *buf = vips_image_write_to_memory(crop, &len);
            if (buf && len == (size_t)(h * w) * sizeof(float))
                memcpy(out + ch * h * w, buf, len);
            else
                rc = sm_err_set(err, "blur: unexpected output size");
            g_free(buf);
        }
        if (in)
            g_object_unref(in);
        if (pad)
            g_object_unref(pad);
        if (conv)
            g_object_unref(conv);
        if (crop)
            g_object_unref(crop);
    }
    g_object_unref(mask);
    return rc;
}

typedef struct ranked {
    float v;
    int64_t i;
} ranked;

static int by_value_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? 1 : -1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Probabilities of `target` along the path from `from` to `to`, moving the
 * ranked pixels in steps; scores[0..n]. */
static int curve(const sm_model_scoring *sc, const float *from, const float *to,
                 int64_t c, int64_t h, int64_t w, const ranked *order,
                 int64_t step, int64_t n, int target, int64_t batch,
                 double *scores, sm_err *err)
{
    const int64_t hw = h * w, per = c * hw;
    sm_tensor *x = NULL;
    int *tg = malloc(sizeof(int) * (size_t)batch);
    float *cur = malloc(sizeof(float) * (size_t)per);
    if (!tg || !cur) {
        free(tg);
        free(cur);
        return sm_err_set(err, "out of memory");
    }
    memcpy(cur, from, sizeof(float) * (size_t)per);
    int64_t moved = 0;
    int rc = 0;
    for (int64_t k0 = 0; k0 <= n && rc == 0; k0 += batch) {
        int64_t nb = n + 1 - k0 < batch ? n + 1 - k0 : batch;
        sm_tensor_destroy(&x);
        x = sm_tensor_new(4, (int64_t[]){nb, c, h, w});
        if (!x) {
            rc = sm_err_set(err, "out of memory");
            break;
        }
        for (int64_t k = 0; k < nb; k++) {
            /* the image after (k0 + k) steps */
            int64_t upto = (k0 + k) * step < hw ? (k0 + k) * step : hw;
            for (; moved < upto; moved++)
                for (int64_t ch = 0; ch < c; ch++)
                    cur[ch * hw + order[moved].i] = to[ch * hw + order[moved].i];
            memcpy(x->data + k * per, cur, sizeof(float) * (size_t)per);
            tg[k] = target;
        }
        rc = sm_model_target_scores(sc, x, tg, scores + k0, err);
    }
    sm_tensor_destroy(&x);
    free(tg);
    free(cur);
    return rc;
}

static double auc(const double *s, int64_t n)
{
    double sum = 0;
    for (int64_t k = 0; k <= n; k++)
        sum += s[k];
    return (sum - s[0] / 2 - s[n] / 2) / (double)n;
}

int sm_deletion_insertion(const sm_model_scoring *sc, const float *x, int64_t c,
                          int64_t h, int64_t w, const float *map, int target,
                          int64_t step, int64_t batch, sm_deletion_result *r,
                          sm_err *err)
{
    const int64_t hw = h * w;
    if (step <= 0)
        step = w;
    if (batch < 1)
        batch = 64;
    int64_t n = (hw + step - 1) / step;
    ranked *order = malloc(sizeof(ranked) * (size_t)hw);
    float *zeros = calloc((size_t)(c * hw), sizeof(float));
    float *blur = malloc(sizeof(float) * (size_t)(c * hw));
    double *s = malloc(sizeof(double) * (size_t)(n + 1));
    int rc = -1;
    if (!order || !zeros || !blur || !s) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < hw; i++) {
        /* NaN ranks last */
        order[i].v = isnan(map[i]) ? -INFINITY : map[i];
        order[i].i = i;
    }
    qsort(order, (size_t)hw, sizeof *order, by_value_desc);
    /* The probability of the originally predicted class. */
    sm_model_scoring pc = *sc;
    pc.score_prob = 1;
    pc.forward_only = 1;
    if (curve(&pc, x, zeros, c, h, w, order, step, n, target, batch, s, err))
        goto out;
    r->deletion_auc = auc(s, n);
    if (sm_deletion_blur(x, c, h, w, blur, err) ||
        curve(&pc, blur, x, c, h, w, order, step, n, target, batch, s, err))
        goto out;
    r->insertion_auc = auc(s, n);
    r->evals = 2 * (n + 1);
    rc = 0;
out:
    free(order);
    free(zeros);
    free(blur);
    free(s);
    return rc;
}
