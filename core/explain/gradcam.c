/* Grad-CAM (Selvaraju 2017): on a feature map A (K x h x w, the last
 * convolutional block's output unless `layer` names a value), weights
 * a_k = spatial mean of d f_c / d A_k, coarse map ReLU(sum_k a_k A_k) (the
 * ReLU as in the paper; relu=0 leaves it off, as Captum's default), then
 * bilinear upsampling to H x W with PyTorch's align_corners=False
 * geometry. One forward and one backward per batch (a run of
 * sm_explain_backward_rows images at a time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/gradient.h"
#include "explain/resample.h"

typedef struct gradcam_params {
    char layer[SM_PARAM_STR];
    int relu;
} gradcam_params;

/* The coarse maps of images [r0, r0 + rows) of the last run into cam
 * (rows x hw), from the feature map a and its gradient ga. */
static void coarse_maps(const gradcam_params *p, const sm_tensor *a,
                        const sm_tensor *ga, float *cam)
{
    int64_t rows = a->shape[0], k = a->shape[1];
    int64_t hw = a->shape[2] * a->shape[3];
    for (int64_t i = 0; i < rows; i++) {
        const float *ai = a->data + i * k * hw, *gi = ga->data + i * k * hw;
        float *ci = cam + i * hw;
        for (int64_t q = 0; q < hw; q++)
            ci[q] = 0;
        for (int64_t ch = 0; ch < k; ch++) {
            double s = 0;
            for (int64_t q = 0; q < hw; q++)
                s += gi[ch * hw + q];
            float alpha = (float)(s / (double)hw);
            for (int64_t q = 0; q < hw; q++)
                ci[q] += alpha * ai[ch * hw + q];
        }
        if (p->relu)
            for (int64_t q = 0; q < hw; q++)
                ci[q] = ci[q] > 0 ? ci[q] : 0;
    }
}

static int gradcam_run(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_batch *b, sm_explain_out *out,
                       sm_err *err)
{
    const gradcam_params *p = params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], row = sm_tensor_numel(x) / (n ? n : 1);
    int oh = (int)x->shape[2], ow = (int)x->shape[3];
    float *g = malloc(sizeof(float) * (size_t)sm_tensor_numel(x));
    double *score = malloc(sizeof(double) * (size_t)n);
    sm_tensor *act = NULL;
    float *cam = NULL;
    int64_t k = 0, h = 0, w = 0, step;
    int rc = -1;
    const char *name = p->layer[0] ? p->layer : NULL;
    if (!g || !score) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if ((step = sm_explain_backward_rows(ctx, x, err)) < 0)
        goto done;
    for (int64_t r0 = 0; r0 < n; r0 += step) {
        const int64_t m = n - r0 < step ? n - r0 : step;
        sm_tensor rows = sm_tensor_rows(x, r0, m);
        if (sm_explain_gradient(ctx, &rows, b->target + r0, g + r0 * row,
                                score + r0, err))
            goto done;
        if (!name && !(name = sm_model_last_spatial(ctx->model))) {
            sm_err_set(err, "the model has no spatial (N x K x h x w) value: "
                       "name one with gradcam.layer");
            goto done;
        }
        /* a copy: asking for the gradient may reuse the activation's
         * buffer */
        const sm_tensor *a = sm_model_activation(ctx->model, name, err);
        sm_tensor_destroy(&act);
        if (!a || !(act = sm_tensor_clone(a))) {
            if (a)
                sm_err_set(err, "out of memory");
            sm_err_prefix(err, "layer '%s'", name);
            goto done;
        }
        if (act->ndim != 4 || act->shape[0] != m) {
            char sb[96];
            sm_err_set(err, "layer '%s' is %s, not N x K x h x w", name,
                       sm_shape_str(act->ndim, act->shape, sb, sizeof sb));
            goto done;
        }
        const sm_tensor *ga = sm_model_activation_grad(ctx->model, name, err);
        if (!ga) {
            sm_err_prefix(err, "layer '%s'", name);
            goto done;
        }
        if (!cam) {
            k = act->shape[1], h = act->shape[2], w = act->shape[3];
            if (!(cam = malloc(sizeof(float) * (size_t)(n * h * w)))) {
                sm_err_set(err, "out of memory");
                goto done;
            }
        }
        coarse_maps(p, act, ga, cam + r0 * h * w);
    }
    /* the whole batch in one libvips call, into a buffer, since the
     * caller's maps need not be contiguous */
    if (h != oh || w != ow) {
        float *up = malloc(sizeof(float) * (size_t)(n * oh * ow));
        if (!up || sm_explain_upsample(cam, (int)n, (int)h, (int)w, up, oh, ow,
                                       err)) {
            if (!up)
                sm_err_set(err, "out of memory");
            free(up);
            goto done;
        }
        free(cam);
        cam = up;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(out[i].map, cam + i * oh * ow, sizeof(float) * (size_t)(oh * ow));
        out[i].score = score[i];
        out[i].evals = 1;
        sm_record_str(&out[i].record, "layer", name);
        sm_record_addf(&out[i].record, "shape", "[%lld, %lld, %lld]",
                       (long long)k, (long long)h, (long long)w);
    }
    rc = 0;
done:
    free(g);
    free(score);
    free(cam);
    sm_tensor_destroy(&act);
    return rc;
}

#define P(f) offsetof(gradcam_params, f)
static const sm_param_def gradcam_params_def[] = {
    {"layer", SM_PARAM_STRING, P(layer), "", 0, 0, NULL,
     "feature map (a value of the model); empty: the last N x K x h x w one"},
    {"relu", SM_PARAM_INT, P(relu), "1", 0, 1, NULL,
     "1: ReLU on the coarse map (the paper); 0: signed (Captum's default)"},
    {NULL},
};
#undef P

static int gradcam_signed(const void *params)
{
    return !((const gradcam_params *)params)->relu;
}

const sm_explainer_class sm_explainer_gradcam = {
    .name = "gradcam",
    .signed_map = gradcam_signed,
    .summary = "Grad-CAM on the last convolutional block, upsampled bilinearly",
    .backward = 1,
    .params = gradcam_params_def,
    .params_size = sizeof(gradcam_params),
    .run = gradcam_run,
};
