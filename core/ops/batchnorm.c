/* BatchNormalization, inference form:
 *   Y = (X - mean) / sqrt(var + epsilon) * scale + B, per channel (dim 1).
 * Training mode (attribute training_mode = 1, the running-statistics
 * outputs, or spatial = 0 before opset 9) is refused. */
#include <math.h>

#include "ops/op.h"
#include "ops/batchnorm.h"
#include "ops/op_util.h"

typedef struct batchnorm_params {
    float epsilon;
} batchnorm_params;

static const char *const batchnorm_attrs[] = {"epsilon", "momentum",
                                              "training_mode", "spatial",
                                              "is_test", NULL};

static int batchnorm_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    batchnorm_params *p = p_;
    int64_t training, spatial;
    float momentum;
    if (sm_attrs_float(a, "epsilon", 1e-5f, &p->epsilon, err) ||
        sm_attrs_float(a, "momentum", 0.9f, &momentum, err) ||
        sm_attrs_int(a, "training_mode", 0, &training, err) ||
        sm_attrs_int(a, "spatial", 1, &spatial, err))
        return -1;
    if (training != 0)
        return sm_err_set(err, "attribute 'training_mode' is %lld: salmap "
                          "runs BatchNormalization in inference mode only",
                          (long long)training);
    if (spatial != 1)
        return sm_err_set(err, "attribute 'spatial' is %lld: only spatial = 1 "
                          "(per-channel statistics) is supported",
                          (long long)spatial);
    if (!(p->epsilon >= 0))
        return sm_err_set(err, "attribute 'epsilon' is %g (must be >= 0)",
                          (double)p->epsilon);
    return 0;
}

static int batchnorm_infer(const void *p, const sm_tensor *const *in, int n_in,
                           sm_tensor *const *out, int n_out, sm_err *err)
{
    static const char *const names[] = {"X", "scale", "B", "input_mean",
                                        "input_var"};
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    for (int i = 1; i < n_out; i++)
        if (out[i])
            return sm_err_set(err, "BatchNormalization has %d outputs: the "
                              "running mean/variance outputs exist in "
                              "training mode only, which salmap does not "
                              "support", n_out);
    for (int i = 0; i < 5; i++)
        if (sm_op_need_float(in[i], names[i], "BatchNormalization", err))
            return -1;
    if (x->ndim < 2)
        return sm_op_shape_err(err, "X", x, "BatchNormalization needs rank 2 "
                               "or more (N x C x ...)");
    for (int i = 1; i < 5; i++)
        if (in[i]->ndim != 1 || in[i]->shape[0] != x->shape[1])
            return sm_op_shape_err(err, names[i], in[i], "BatchNormalization "
                                   "needs [%lld] (the channels of X)",
                                   (long long)x->shape[1]);
    sm_op_set_shape(out[0], x->ndim, x->shape);
    return 0;
}

static size_t batchnorm_workspace(const void *p, const sm_tensor *const *in,
                                  int n_in, const sm_tensor *const *out,
                                  int n_out)
{
    (void)p;
    (void)n_in;
    (void)out;
    (void)n_out;
    return (size_t)(2 * in[0]->shape[1]); /* per-channel scale and shift */
}

/* y = x * a + b over one plane (restrict parameters let it vectorise). */
static void affine(const float *restrict x, float *restrict y, int64_t n,
                   float a, float b)
{
    SM_OP_FOR(k, n, y[k] = x[k] * a + b);
}

void sm_batchnorm_affine(const void *p_, const sm_tensor *const *in, float *a,
                         float *b)
{
    const batchnorm_params *p = p_;
    for (int64_t j = 0; j < in[1]->shape[0]; j++) {
        a[j] = in[1]->data[j] / sqrtf(in[4]->data[j] + p->epsilon);
        b[j] = in[2]->data[j] - in[3]->data[j] * a[j];
    }
}

static void batchnorm_run(const void *p_, const sm_tensor *const *in, int n_in,
                          sm_tensor *const *out, int n_out, float *ws)
{
    const batchnorm_params *p = p_;
    const sm_tensor *x = in[0];
    (void)n_in;
    (void)n_out;
    int64_t c = x->shape[1], n = x->shape[0];
    int64_t plane = sm_op_prod(x->shape, 2, x->ndim);
    /* Folded to y = x * a + b per channel, so the big loop is one FMA. */
    float *a = ws, *b = ws + c;
    sm_batchnorm_affine(p, in, a, b);
    const float *xp = x->data;
    float *y = out[0]->data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            affine(xp, y, plane, a[j], b[j]);
            xp += plane;
            y += plane;
        }
}

/* With r = 1 / sqrt(var + eps) and a = scale * r per channel, over that
 * channel's elements:
 *   dX = g * a                      dB = sum g
 *   dscale = r * sum g * (x - mean)   dmean = -a * sum g
 *   dvar = -a * r^2 / 2 * sum g * (x - mean)
 * (x - mean is summed as such, not as sum g*x - mean * sum g, which would
 * cancel badly.) No workspace: one channel at a time. */
static void batchnorm_backward(const void *p_, const sm_tensor *const *in,
                               int n_in, const sm_tensor *const *out,
                               int n_out, const sm_tensor *const *gout,
                               sm_tensor *const *gin, float *ws)
{
    const batchnorm_params *p = p_;
    const sm_tensor *x = in[0];
    (void)n_in;
    (void)out;
    (void)n_out;
    (void)ws;
    if (!gout[0])
        return;
    int64_t c = x->shape[1], n = x->shape[0];
    int64_t plane = sm_op_prod(x->shape, 2, x->ndim);
    int stats = gin[1] || gin[2] || gin[3] || gin[4];
    for (int64_t j = 0; j < c; j++) {
        const float r = 1.0f / sqrtf(in[4]->data[j] + p->epsilon);
        const float a = in[1]->data[j] * r, mean = in[3]->data[j];
        float sg = 0, sgx = 0; /* sum g, sum g * (x - mean) */
        for (int64_t i = 0; i < n; i++) {
            const float *restrict xp = x->data + (i * c + j) * plane;
            const float *restrict g = gout[0]->data + (i * c + j) * plane;
            if (gin[0]) {
                float *restrict gx = gin[0]->data + (i * c + j) * plane;
                SM_OP_FOR(k, plane, gx[k] += g[k] * a);
            }
            if (stats) {
                float s1, s2;
                SM_OP_SUM(s1, k, plane, g[k]);
                SM_OP_SUM(s2, k, plane, g[k] * (xp[k] - mean));
                sg += s1;
                sgx += s2;
            }
        }
        if (gin[1])
            gin[1]->data[j] += r * sgx;
        if (gin[2])
            gin[2]->data[j] += sg;
        if (gin[3])
            gin[3]->data[j] += -a * sg;
        if (gin[4])
            gin[4]->data[j] += -0.5f * a * r * r * sgx;
    }
}

const sm_op_class sm_op_batchnormalization = {
    .name = "BatchNormalization",
    .params_size = sizeof(batchnorm_params),
    .attrs = batchnorm_attrs,
    .min_inputs = 5, .max_inputs = 5,
    .min_outputs = 1, .max_outputs = 5,
    .parse = batchnorm_parse,
    .infer = batchnorm_infer,
    .workspace = batchnorm_workspace,
    .run = batchnorm_run,
    .backward = batchnorm_backward,
};
