#include "explain/gradient.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "data/image.h"

sm_model_scoring sm_explain_scoring(const sm_explain_ctx *ctx)
{
    sm_model_scoring s = {ctx->model, ctx->output, ctx->output_probs,
                          ctx->score_prob};
    return s;
}

int sm_explain_scores(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, double *score, sm_err *err)
{
    sm_model_scoring s = sm_explain_scoring(ctx);
    return sm_model_target_scores(&s, x, target, score, err);
}

int sm_explain_gradient(const sm_explain_ctx *ctx, const sm_tensor *x,
                        const int *target, float *grad, double *score,
                        sm_err *err)
{
    sm_model_scoring sc = sm_explain_scoring(ctx);
    const sm_tensor *y = sm_model_class_scores(&sc, x, target, err);
    if (!y)
        return -1;
    int64_t n = y->shape[0], k = y->shape[1];
    sm_tensor *seed = sm_tensor_new(2, y->shape);
    double *p = malloc(sizeof(double) * (size_t)k);
    if (!seed || !p) {
        sm_tensor_destroy(&seed);
        free(p);
        return sm_err_set(err, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = y->data + i * k;
        float *s = seed->data + i * k;
        int c = target[i];
        if (sm_model_scoring_softmax(&sc)) {
            /* d p_c / d z_j = p_c (delta_cj - p_j) */
            sm_model_softmax_row(row, k, p);
            for (int64_t j = 0; j < k; j++)
                s[j] = (float)(p[c] * ((j == c) - p[j]));
            if (score)
                score[i] = p[c];
        } else {
            s[c] = 1.0f;
            if (score)
                score[i] = row[c];
        }
    }
    free(p);
    const sm_tensor *g[8];
    int rc = sm_model_backward(ctx->model, ctx->output, seed, g, err);
    sm_tensor_destroy(&seed);
    if (rc)
        return -1;
    memcpy(grad, g[0]->data, (size_t)sm_tensor_numel(x) * sizeof(float));
    return 0;
}

int sm_explain_gradient_maps(const sm_explain_ctx *ctx,
                             const sm_explain_batch *b, int times_input,
                             sm_reduce how, sm_explain_out *out, sm_err *err)
{
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    int64_t numel = sm_tensor_numel(x);
    float *g = malloc(sizeof(float) * (size_t)numel);
    double *score = malloc(sizeof(double) * (size_t)n);
    int rc = -1;
    if (!g || !score)
        sm_err_set(err, "out of memory");
    else if (sm_explain_gradient(ctx, x, b->target, g, score, err) == 0) {
        if (times_input)
            for (int64_t e = 0; e < numel; e++)
                g[e] *= x->data[e];
        for (int64_t i = 0; i < n; i++) {
            sm_explain_reduce(g + i * c * hw, c, hw, how, out[i].map);
            out[i].score = score[i];
            out[i].evals = 1;
        }
        rc = 0;
    }
    free(g);
    free(score);
    return rc;
}

void sm_explain_reduce(const float *v, int64_t c, int64_t hw, sm_reduce how,
                       float *map)
{
    for (int64_t q = 0; q < hw; q++)
        map[q] = how == SM_REDUCE_SUM ? v[q] : fabsf(v[q]);
    for (int64_t ch = 1; ch < c; ch++) {
        const float *vc = v + ch * hw;
        if (how == SM_REDUCE_SUM)
            for (int64_t q = 0; q < hw; q++)
                map[q] += vc[q];
        else
            for (int64_t q = 0; q < hw; q++)
                map[q] = fabsf(vc[q]) > map[q] ? fabsf(vc[q]) : map[q];
    }
}

/* The run loop of sm_explain_gradient_copies and sm_explain_score_copies:
 * with backward, each run is a forward + backward; else a forward only and
 * take() receives grad NULL. */
static int run_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                      const int *target, const sm_explain_copies *how,
                      int backward, sm_err *err)
{
    int64_t n = x->shape[0], numel = sm_tensor_numel(x) / (n ? n : 1);
    int64_t total = n * how->copies;
    int64_t cap = how->cap < total ? how->cap : total;
    if (cap < 1)
        return 0;
    int64_t shape[SM_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = cap;
    sm_tensor *batch = sm_tensor_new(x->ndim, shape);
    float *grad = backward ? malloc(sizeof(float) * (size_t)(cap * numel))
                           : NULL;
    double *score = malloc(sizeof(double) * (size_t)cap);
    int *tgt = malloc(sizeof(int) * (size_t)cap);
    int rc = 0;
    if (!batch || (backward && !grad) || !score || !tgt)
        rc = sm_err_set(err, "out of memory");
    for (int64_t at = 0, m; rc == 0 && at < total; at += m) {
        m = total - at < cap ? total - at : cap;
        if (how->per_image && m > how->copies - at % how->copies)
            m = how->copies - at % how->copies;
        batch->shape[0] = m; /* the last run may be shorter */
        for (int64_t j = 0; j < m; j++) {
            int64_t i = (at + j) / how->copies, k = (at + j) % how->copies;
            how->make(how->u, i, k, batch->data + j * numel);
            tgt[j] = target[i];
        }
        rc = backward ? sm_explain_gradient(ctx, batch, tgt, grad, score, err)
                      : sm_explain_scores(ctx, batch, tgt, score, err);
        for (int64_t j = 0; rc == 0 && j < m; j++)
            how->take(how->u, (at + j) / how->copies, (at + j) % how->copies,
                      batch->data + j * numel,
                      backward ? grad + j * numel : NULL, score[j]);
    }
    sm_tensor_destroy(&batch);
    free(grad);
    free(score);
    free(tgt);
    return rc;
}

int sm_explain_gradient_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                               const int *target, const sm_explain_copies *how,
                               sm_err *err)
{
    return run_copies(ctx, x, target, how, 1, err);
}

int sm_explain_score_copies(const sm_explain_ctx *ctx, const sm_tensor *x,
                            const int *target, const sm_explain_copies *how,
                            sm_err *err)
{
    return run_copies(ctx, x, target, how, 0, err);
}

/* Planes (planes x h x w floats) through the libvips operation job names,
 * as the bands of one image: one libvips call for a whole batch, since a
 * call costs far more than the arithmetic on small maps. */
enum vips_job { VIPS_JOB_BLUR, VIPS_JOB_RESIZE };

static int vips_planes(enum vips_job job, const float *src, int planes, int h,
                       int w, double sigma, float *dst, int oh, int ow,
                       sm_err *err)
{
    if (sm_vips_init(NULL, err))
        return -1;
    size_t hw = (size_t)h * (size_t)w, ohw = (size_t)oh * (size_t)ow;
    float *px = malloc(sizeof(float) * hw * (size_t)planes);
    if (!px)
        return sm_err_set(err, "out of memory");
    for (int b = 0; b < planes; b++) /* planar to interleaved */
        for (size_t q = 0; q < hw; q++)
            px[q * (size_t)planes + (size_t)b] = src[(size_t)b * hw + q];
    VipsImage *in = vips_image_new_from_memory(px, sizeof(float) * hw *
                                               (size_t)planes, w, h, planes,
                                               VIPS_FORMAT_FLOAT);
    VipsImage *out = NULL;
    int bad = !in;
    if (!bad && job == VIPS_JOB_BLUR) {
        bad = vips_gaussblur(in, &out, sigma, "precision",
                             VIPS_PRECISION_FLOAT, "min_ampl", 0.001, NULL);
    } else if (!bad) {
        /* X = a (x + idx) + odx with idx = 0.5, odx = -0.5 is PyTorch's
         * x = (X + 0.5) / a - 0.5; copying the edge pixels outwards gives
         * its clamping at the borders. */
        VipsInterpolate *bil = vips_interpolate_new("bilinear");
        VipsArrayInt *area = vips_array_int_newv(4, 0, 0, ow, oh);
        bad = !bil || !area ||
              vips_affine(in, &out, (double)ow / w, 0, 0, (double)oh / h,
                          "interpolate", bil, "oarea", area, "idx", 0.5,
                          "idy", 0.5, "odx", -0.5, "ody", -0.5, "extend",
                          VIPS_EXTEND_COPY, NULL);
        if (bil)
            g_object_unref(bil);
        if (area)
            vips_area_unref(VIPS_AREA(area));
    }
    size_t len = 0;
    float *res = bad ? NULL : vips_image_write_to_memory(out, &len);
    int rc = 0;
    if (!res || len != sizeof(float) * ohw * (size_t)planes) {
        rc = sm_err_set(err, "libvips %s of %d %dx%d planes: %s",
                        job == VIPS_JOB_BLUR ? "gaussblur" : "affine", planes,
                        h, w, vips_error_buffer());
        vips_error_clear();
    } else {
        for (int b = 0; b < planes; b++)
            for (size_t q = 0; q < ohw; q++)
                dst[(size_t)b * ohw + q] = res[q * (size_t)planes + (size_t)b];
    }
    g_free(res);
    if (out)
        g_object_unref(out);
    if (in)
        g_object_unref(in);
    free(px);
    return rc;
}

int sm_explain_blur(const float *src, int planes, int h, int w, double sigma,
                    float *dst, sm_err *err)
{
    return vips_planes(VIPS_JOB_BLUR, src, planes, h, w, sigma, dst, h, w, err);
}

int sm_explain_upsample(const float *src, int planes, int h, int w,
                        float *dst, int oh, int ow, sm_err *err)
{
    return vips_planes(VIPS_JOB_RESIZE, src, planes, h, w, 0, dst, oh, ow, err);
}
