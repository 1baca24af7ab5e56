/* SmoothGrad (Smilkov 2017): the mean of a gradient map over noisy copies
 * x + N(0, sigma^2), sigma = noise_level * (max x - min x) per image, as in
 * the paper. The base map is SAL (default) or GRAD (gradient x the noisy
 * input, as Captum's NoiseTunnel applies it). Noise element e of sample s
 * is counter s * numel + e of sm_rng_normals' stream keyed by (seed,
 * image id, "smoothgrad"), and an image's samples run without other images (up to
 * internal_batch a run), so a map is bit-identical whatever batch it came
 * in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/gradient.h"
#include "util/rng.h"

typedef struct smoothgrad_params {
    int samples;
    double noise_level;
    char base[SM_PARAM_STR];
    int internal_batch;
} smoothgrad_params;

typedef struct sg_job {
    const float *x;
    const uint64_t *key;
    const double *sigma;
    int64_t c, hw;
    int use_grad; /* base grad (else sal) */
    float *tmp;   /* hw */
    double *acc;  /* N x hw: sum of the sample maps */
} sg_job;

/* Reentrant (the copies are made on the model's threads at once): the
 * noise goes through a block on the stack. */
static void sg_make(void *u, int64_t i, int64_t k, float *dst)
{
    const sg_job *j = u;
    int64_t numel = j->c * j->hw;
    const float *x = j->x + i * numel;
    double z[256];
    for (int64_t e0 = 0; e0 < numel; e0 += 256) {
        int64_t len = numel - e0 < 256 ? numel - e0 : 256;
        sm_rng_normals(j->key[i], (uint64_t)(k * numel + e0), len, z);
        for (int64_t e = 0; e < len; e++)
            dst[e0 + e] = x[e0 + e] + (float)(j->sigma[i] * z[e]);
    }
}

static void sg_take(void *u, int64_t i, int64_t k, const float *copy,
                    const float *grad, double score)
{
    (void)k;
    (void)score;
    sg_job *j = u;
    if (j->use_grad) {
        for (int64_t q = 0; q < j->hw; q++)
            j->tmp[q] = 0;
        for (int64_t ch = 0; ch < j->c; ch++)
            for (int64_t q = 0; q < j->hw; q++)
                j->tmp[q] += copy[ch * j->hw + q] * grad[ch * j->hw + q];
    } else {
        sm_explain_reduce(grad, j->c, j->hw, SM_REDUCE_MAX_ABS, j->tmp);
    }
    double *acc = j->acc + i * j->hw;
    for (int64_t q = 0; q < j->hw; q++)
        acc[q] += j->tmp[q];
}

static int smoothgrad_run(const void *params, const sm_explain_ctx *ctx,
                          const sm_explain_batch *b, sm_explain_out *out,
                          sm_err *err)
{
    const smoothgrad_params *p = params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    int64_t numel = c * hw;
    uint64_t *key = malloc(sizeof(uint64_t) * (size_t)n);
    double *sigma = malloc(sizeof(double) * (size_t)n);
    double *score = malloc(sizeof(double) * (size_t)n);
    float *tmp = malloc(sizeof(float) * (size_t)hw);
    double *acc = calloc((size_t)(n * hw), sizeof(double));
    int rc = -1;
    if (!key || !sigma || !score || !tmp || !acc) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if (sm_explain_scores(ctx, x, b->target, score, err))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x->data + i * numel;
        float lo = xi[0], hi = xi[0];
        for (int64_t e = 1; e < numel; e++) {
            lo = xi[e] < lo ? xi[e] : lo;
            hi = xi[e] > hi ? xi[e] : hi;
        }
        sigma[i] = p->noise_level * ((double)hi - lo);
        key[i] = sm_rng_key(ctx->seed, (const char *[]){b->ids[i], "smoothgrad", NULL});
    }
    sg_job job = {x->data, key, sigma, c, hw, strcmp(p->base, "grad") == 0,
                  tmp, acc};
    sm_explain_copies how = {p->samples, p->internal_batch, 1, sg_make,
                             sg_take, &job, 0, 1};
    if (sm_explain_gradient_copies(ctx, x, b->target, &how, err))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t q = 0; q < hw; q++)
            out[i].map[q] = (float)(acc[i * hw + q] / p->samples);
        out[i].score = score[i];
        out[i].evals = p->samples + 1;
        sm_record_addf(&out[i].record, "sigma", "%.9g", sigma[i]);
    }
    rc = 0;
done:
    free(key);
    free(sigma);
    free(score);
    free(tmp);
    free(acc);
    return rc;
}

static const char *const smoothgrad_bases[] = {"sal", "grad", NULL};

#define P(f) offsetof(smoothgrad_params, f)
static const sm_param_def smoothgrad_params_def[] = {
    {"samples", SM_PARAM_INT, P(samples), "50", 1, 1000000, NULL,
     "noisy copies averaged"},
    {"noise_level", SM_PARAM_FLOAT, P(noise_level), "0.15", 0, 100, NULL,
     "noise standard deviation as a fraction of the image's value range"},
    {"base", SM_PARAM_STRING, P(base), "sal", 0, 0, smoothgrad_bases,
     "the map averaged: sal (|gradient|) or grad (gradient x input)"},
    {"internal_batch", SM_PARAM_INT, P(internal_batch), "256", 1, 1000000,
     NULL, "noisy copies of one image per model run"},
    {NULL},
};
#undef P

/* grad's noisy average is signed, sal's is not */
static int smoothgrad_signed(const void *params)
{
    return !strcmp(((const smoothgrad_params *)params)->base, "grad");
}

const sm_explainer_class sm_explainer_smoothgrad = {
    .name = "smoothgrad",
    .signed_map = smoothgrad_signed,
    .summary = "SmoothGrad: mean of SAL over 50 copies with 15% Gaussian noise",
    .backward = 1,
    .params = smoothgrad_params_def,
    .params_size = sizeof(smoothgrad_params),
    .run = smoothgrad_run,
};
