/* MaxPool, AveragePool (1 to 3 spatial dims) and GlobalAveragePool.
 *
 * Both windowed pools run one loop nest over three spatial dims: an input
 * with fewer is treated as having leading spatial dims of size 1. A window
 * is clipped to the input; the padding never enters a maximum (a window of
 * padding only gives -FLT_MAX, as onnxruntime), and enters an average only
 * as zeros counted by count_include_pad. Along the last dim, outputs whose
 * windows lie inside the input take a fast row-wise path; the few at the
 * borders take the general one. MaxPool over 1 or 2 dims runs the kernels
 * of ops/pool_max.c instead, with the general loops' bits. The window
 * geometry is Conv's (ops/conv_geom.h). */
#include <float.h>
#include <string.h>

#include "ops/conv_geom.h"
#include "ops/op.h"
#include "ops/op_util.h"
#include "ops/pool_max.h"

typedef struct pool_params {
    sm_conv_geom g;
    int max;               /* MaxPool, else AveragePool */
    int count_include_pad; /* AveragePool */
} pool_params;

static const char *const maxpool_attrs[] = {
    "kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations",
    "storage_order", NULL};
static const char *const avgpool_attrs[] = {
    "kernel_shape", "strides", "pads", "auto_pad", "ceil_mode",
    "count_include_pad", NULL};

static int window_parse(pool_params *p, const sm_attrs *a, sm_err *err)
{
    if (!sm_attrs_has(a, "kernel_shape"))
        return sm_err_set(err, "attribute 'kernel_shape' is required");
    return sm_conv_geom_parse(&p->g, a, p->max, err);
}

static int maxpool_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    pool_params *p = p_;
    int64_t so;
    p->max = 1;
    if (sm_attrs_int(a, "storage_order", 0, &so, err))
        return -1;
    /* storage_order only changes the Indices output, which is refused, but
     * a column-major request says the model expects something salmap does
     * not do: refuse it rather than ignore it. */
    if (so != 0)
        return sm_err_set(err, "attribute 'storage_order' is %lld: only 0 "
                          "(row major) is supported", (long long)so);
    return window_parse(p, a, err);
}

static int avgpool_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    pool_params *p = p_;
    int64_t cip;
    if (sm_attrs_int(a, "count_include_pad", 0, &cip, err))
        return -1;
    if (cip != 0 && cip != 1)
        return sm_err_set(err, "attribute 'count_include_pad' is %lld (must "
                          "be 0 or 1)", (long long)cip);
    p->count_include_pad = (int)cip;
    return window_parse(p, a, err);
}

/* Resolves the window over x's spatial dims. With ceil_mode, a last window
 * that would start in the end padding is dropped (PyTorch's rule, which
 * later ONNX versions adopted): it would see padding only. */
static int plan3(const pool_params *p, const sm_tensor *x, sm_pool_geom *g,
                 sm_err *err)
{
    const sm_conv_geom *cg = &p->g;
    int n = x->ndim - 2, lead = 3 - n;
    int64_t pb[SM_GEOM_MAX], out[SM_GEOM_MAX];
    if (sm_conv_geom_resolve(cg, n, x->shape + 2, cg->kernel, pb, out, err))
        return -1;
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        g->in[i] = j < 0 ? 1 : x->shape[2 + j];
        g->k[i] = j < 0 ? 1 : cg->kernel[j];
        g->s[i] = j < 0 ? 1 : cg->strides[j];
        g->d[i] = j < 0 ? 1 : cg->dilations[j];
        g->pb[i] = j < 0 ? 0 : pb[j];
        g->out[i] = j < 0 ? 1 : out[j];
        if (j >= 0 && cg->ceil_mode && cg->auto_pad == SM_PAD_NOTSET &&
            g->out[i] > 1 && (g->out[i] - 1) * g->s[i] >= g->in[i] + g->pb[i])
            g->out[i]--;
        /* The end padding: what the last window needs beyond the input, as
         * resolved (explicit pads, or the SAME split). */
        int64_t ke = (g->k[i] - 1) * g->d[i] + 1;
        int64_t need = (g->out[i] - 1) * g->s[i] + ke - g->in[i] - g->pb[i];
        if (j < 0)
            g->pe[i] = 0;
        else if (cg->auto_pad == SM_PAD_NOTSET)
            g->pe[i] = cg->n_pads ? cg->pads[n + j] : 0;
        else
            g->pe[i] = need > 0 ? need : 0;
    }
    return 0;
}

static int pool_infer(const void *p_, const sm_tensor *const *in, int n_in,
                      sm_tensor *const *out, int n_out, sm_err *err)
{
    const pool_params *p = p_;
    const char *op = p->max ? "MaxPool" : "AveragePool";
    const sm_tensor *x = in[0];
    int64_t shape[SM_MAX_DIMS];
    sm_pool_geom g;
    (void)n_in;
    if (n_out > 1 && out[1])
        return sm_err_set(err, "MaxPool's second output (Indices, int64) is "
                          "not supported");
    if (sm_op_need_float(x, "X", op, err))
        return -1;
    if (x->ndim != p->g.n_kernel + 2)
        return sm_op_shape_err(err, "X", x, "%s with a %d-D kernel_shape "
                               "needs rank %d", op, p->g.n_kernel,
                               p->g.n_kernel + 2);
    /* Checks strides/pads/dilations against the rank, then the sizes. */
    if (sm_conv_geom_infer(&p->g, x, NULL, shape, err) || plan3(p, x, &g, err))
        return -1;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    for (int i = 0; i < p->g.n_kernel; i++)
        shape[2 + i] = g.out[3 - p->g.n_kernel + i];
    if (sm_op_check_out_shape(x->ndim, shape, op, err))
        return -1;
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

/* Taps of an average window counted when padding counts: the window up to
 * the end of the end padding (ceil_mode windows may hang past it). */
static int64_t padded_taps(const sm_pool_geom *g, int i, int64_t start)
{
    int64_t end = start + g->k[i]; /* AveragePool has no dilations */
    if (end > g->in[i] + g->pe[i])
        end = g->in[i] + g->pe[i];
    return end - start;
}

/* One output along the last dim, the window clipped to the input: the
 * general case, used at the borders. */
static float pool_one(const pool_params *p, const sm_pool_geom *g,
                      const float *xp, int64_t a0, int64_t b0, int64_t s0,
                      int64_t a1, int64_t b1, int64_t s1, int64_t o2)
{
    int64_t a2, b2, s2 = sm_pool_taps(g, 2, o2, &a2, &b2);
    float acc = p->max ? -FLT_MAX : 0.0f;
    for (int64_t k0 = a0; k0 < b0; k0++)
        for (int64_t k1 = a1; k1 < b1; k1++) {
            const float *r = xp + ((s0 + k0 * g->d[0]) * g->in[1] +
                                   s1 + k1 * g->d[1]) * g->in[2] + s2;
            for (int64_t k2 = a2; k2 < b2; k2++) {
                float v = r[k2 * g->d[2]];
                acc = p->max ? (v > acc ? v : acc) : acc + v;
            }
        }
    if (p->max)
        return acc;
    int64_t cnt = p->count_include_pad
                      ? padded_taps(g, 0, s0) * padded_taps(g, 1, s1) *
                            padded_taps(g, 2, s2)
                      : (b0 - a0) * (b1 - a1) * (b2 - a2);
    return cnt > 0 ? acc / (float)cnt : 0.0f;
}

/* Outputs [lo, hi) along the last dim, whose windows lie inside the input
 * along it: one window row at a time across all of them, so the loops are
 * long and branch-free (per-output loops over 2 or 3 taps were 3x
 * slower). y is the output row. */
static void pool_interior(const pool_params *p, const sm_pool_geom *g,
                          const float *xp, int64_t a0, int64_t b0, int64_t s0,
                          int64_t a1, int64_t b1, int64_t s1, int64_t lo,
                          int64_t hi, float *restrict y)
{
    const int64_t st = g->s[2];
    for (int64_t o = lo; o < hi; o++)
        y[o] = p->max ? -FLT_MAX : 0.0f;
    for (int64_t k0 = a0; k0 < b0; k0++)
        for (int64_t k1 = a1; k1 < b1; k1++) {
            const float *r = xp + ((s0 + k0 * g->d[0]) * g->in[1] + s1 +
                                   k1 * g->d[1]) * g->in[2] - g->pb[2];
            for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                const float *restrict src = r + k2 * g->d[2];
                if (p->max) {
                    for (int64_t o = lo; o < hi; o++) {
                        float v = src[o * st];
                        y[o] = v > y[o] ? v : y[o];
                    }
                } else {
                    for (int64_t o = lo; o < hi; o++)
                        y[o] += src[o * st];
                }
            }
        }
    if (p->max)
        return;
    /* Along the last dim the window is whole, so padding adds nothing. */
    int64_t cnt = p->count_include_pad
                      ? padded_taps(g, 0, s0) * padded_taps(g, 1, s1) * g->k[2]
                      : (b0 - a0) * (b1 - a1) * g->k[2];
    const float r = cnt > 0 ? 1.0f / (float)cnt : 0.0f;
    for (int64_t o = lo; o < hi; o++)
        y[o] *= r;
}

/* Whether MaxPool on x runs the separable passes (ops/pool_max.h): over
 * 1 or 2 spatial dims; g its geometry then. */
static int separable(const pool_params *p, const sm_tensor *x, sm_pool_geom *g)
{
    return p->max && !plan3(p, x, g, NULL) && g->in[0] == 1;
}

static size_t pool_workspace(const void *p_, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out)
{
    sm_pool_geom g;
    (void)n_in, (void)out, (void)n_out;
    return separable(p_, in[0], &g)
               ? sm_pool_max_workspace(&g) : 0;
}

static void pool_run(const void *p_, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, float *ws)
{
    const pool_params *p = p_;
    const sm_tensor *x = in[0];
    sm_pool_geom g;
    (void)n_in;
    (void)n_out;
    plan3(p, x, &g, NULL); /* cannot fail: infer accepted this shape */
    int64_t planes = x->shape[0] * x->shape[1];
    if (p->max && sm_pool_is_2x2(&g)) {
        sm_pool_max2x2(&g, planes, x->data, out[0]->data);
        return;
    }
    if (p->max && g.in[0] == 1) {
        sm_pool_max_separable(&g, planes, x->data, out[0]->data, ws);
        return;
    }
    int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
    int64_t out_plane = g.out[0] * g.out[1] * g.out[2];
    /* Outputs [lo, hi) along the last dim have windows inside the input:
     * start = o * s - pb >= 0 and start + (k - 1) * d <= in - 1. */
    int64_t ext = (g.k[2] - 1) * g.d[2], s = g.s[2];
    int64_t lo = (g.pb[2] + s - 1) / s;
    int64_t hi = g.in[2] - 1 - ext + g.pb[2] < 0
                     ? 0 : (g.in[2] - 1 - ext + g.pb[2]) / s + 1;
    if (hi > g.out[2])
        hi = g.out[2];
    if (lo > hi)
        lo = hi;
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x->data + c * in_plane;
        float *y = out[0]->data + c * out_plane;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++) {
            int64_t a0, b0, s0 = sm_pool_taps(&g, 0, o0, &a0, &b0);
            for (int64_t o1 = 0; o1 < g.out[1]; o1++, y += g.out[2]) {
                int64_t a1, b1, s1 = sm_pool_taps(&g, 1, o1, &a1, &b1);
                for (int64_t o2 = 0; o2 < lo; o2++)
                    y[o2] = pool_one(p, &g, xp, a0, b0, s0, a1, b1, s1, o2);
                pool_interior(p, &g, xp, a0, b0, s0, a1, b1, s1, lo, hi, y);
                for (int64_t o2 = hi; o2 < g.out[2]; o2++)
                    y[o2] = pool_one(p, &g, xp, a0, b0, s0, a1, b1, s1, o2);
            }
        }
    }
}

/* --- backward ------------------------------------------------------------
 * Every output's window again, through the general path (the forward's
 * fast paths compute the same windows). MaxPool: the gradient goes to the
 * window's first maximum in row-major window order (strict >, as the
 * forward and PyTorch): on ties, one element gets it all; a window of
 * padding only (output -FLT_MAX) passes nothing. AveragePool: each input
 * in the window gets g / count, count as in the forward. */
static size_t pool_bwd_workspace(const void *p_, const sm_tensor *const *in,
                                 int n_in, const sm_tensor *const *out,
                                 int n_out)
{
    sm_pool_geom g;
    (void)n_in, (void)out, (void)n_out;
    return separable(p_, in[0], &g)
               ? sm_pool_max_bwd_workspace(&g) : 0;
}

static void pool_backward_fresh(const void *p_, const float *packed,
                                const sm_tensor *const *in, int n_in,
                                const sm_tensor *const *out, int n_out,
                                const sm_tensor *const *gout,
                                sm_tensor *const *gin, unsigned fresh,
                                float *ws)
{
    const pool_params *p = p_;
    const sm_tensor *x = in[0];
    sm_pool_geom g;
    (void)packed;
    (void)n_in;
    (void)n_out;
    (void)out;
    if (!gout[0] || !gin[0]) /* fresh comes with gout[0] (op.h) */
        return;
    plan3(p, x, &g, NULL);
    int64_t planes = x->shape[0] * x->shape[1];
    if (p->max && sm_pool_is_2x2(&g)) {
        sm_pool_max2x2_backward(&g, planes, x->data, gout[0]->data,
                                gin[0]->data, fresh & 1u);
        return;
    }
    if (fresh & 1u) /* the passes below add onto zeros */
        memset(gin[0]->data, 0, sizeof(float) * (size_t)sm_tensor_numel(x));
    if (p->max && g.in[0] == 1) {
        sm_pool_max_separable_backward(&g, planes, x->data, gout[0]->data,
                                       gin[0]->data, ws);
        return;
    }
    int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
    const float *gy = gout[0]->data;
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x->data + c * in_plane;
        float *gxp = gin[0]->data + c * in_plane;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++) {
            int64_t a0, b0, s0 = sm_pool_taps(&g, 0, o0, &a0, &b0);
            for (int64_t o1 = 0; o1 < g.out[1]; o1++) {
                int64_t a1, b1, s1 = sm_pool_taps(&g, 1, o1, &a1, &b1);
                for (int64_t o2 = 0; o2 < g.out[2]; o2++, gy++) {
                    int64_t a2, b2, s2 = sm_pool_taps(&g, 2, o2, &a2, &b2);
                    float best = -FLT_MAX, share = 0;
                    int64_t arg = -1;
                    if (!p->max) {
                        int64_t cnt = p->count_include_pad
                                          ? padded_taps(&g, 0, s0) *
                                                padded_taps(&g, 1, s1) *
                                                padded_taps(&g, 2, s2)
                                          : (b0 - a0) * (b1 - a1) * (b2 - a2);
                        share = cnt > 0 ? *gy / (float)cnt : 0.0f;
                    }
                    for (int64_t k0 = a0; k0 < b0; k0++)
                        for (int64_t k1 = a1; k1 < b1; k1++) {
                            int64_t r = ((s0 + k0 * g.d[0]) * g.in[1] + s1 +
                                         k1 * g.d[1]) * g.in[2] + s2;
                            for (int64_t k2 = a2; k2 < b2; k2++) {
                                int64_t i = r + k2 * g.d[2];
                                if (!p->max)
                                    gxp[i] += share;
                                else if (xp[i] > best) {
                                    best = xp[i];
                                    arg = i;
                                }
                            }
                        }
                    if (arg >= 0)
                        gxp[arg] += *gy;
                }
            }
        }
    }
}

static void pool_backward(const void *p, const sm_tensor *const *in, int n_in,
                          const sm_tensor *const *out, int n_out,
                          const sm_tensor *const *gout, sm_tensor *const *gin,
                          float *ws)
{
    pool_backward_fresh(p, NULL, in, n_in, out, n_out, gout, gin, 0, ws);
}

const sm_op_class sm_op_maxpool = {
    .name = "MaxPool",
    .params_size = sizeof(pool_params),
    .attrs = maxpool_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 2,
    .parse = maxpool_parse,
    .infer = pool_infer,
    .workspace = pool_workspace,
    .run = pool_run,
    .backward = pool_backward,
    .bwd_workspace = pool_bwd_workspace,
    .backward_fresh = pool_backward_fresh,
    .bwd_fresh_inputs = 1,
};

const sm_op_class sm_op_averagepool = {
    .name = "AveragePool",
    .params_size = sizeof(pool_params),
    .attrs = avgpool_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = avgpool_parse,
    .infer = pool_infer,
    .run = pool_run,
    .backward = pool_backward,
    .backward_fresh = pool_backward_fresh,
    .bwd_fresh_inputs = 1,
};

/* --- GlobalAveragePool --------------------------------------------------- */

static int gap_infer(const void *p, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, sm_err *err)
{
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    (void)n_out;
    if (sm_op_need_float(x, "X", "GlobalAveragePool", err))
        return -1;
    if (x->ndim < 3)
        return sm_op_shape_err(err, "X", x, "GlobalAveragePool needs rank 3 "
                               "or more (N x C x spatial dims)");
    if (x->shape[2] == 0 || sm_op_prod(x->shape, 2, x->ndim) == 0)
        return sm_op_shape_err(err, "X", x, "GlobalAveragePool needs "
                               "non-empty spatial dims");
    int64_t shape[SM_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = i < 2 ? x->shape[i] : 1;
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

static void gap_run(const void *p, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, int n_out, float *ws)
{
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    (void)n_out;
    (void)ws;
    int64_t planes = x->shape[0] * x->shape[1];
    int64_t n = sm_op_prod(x->shape, 2, x->ndim);
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x->data + c * n;
        float s = 0;
        for (int64_t i = 0; i < n; i++)
            s += xp[i];
        out[0]->data[c] = s / (float)n;
    }
}

static void gap_backward(const void *p, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out,
                         const sm_tensor *const *gout, sm_tensor *const *gin,
                         float *ws)
{
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    (void)out;
    (void)n_out;
    (void)ws;
    if (!gout[0] || !gin[0])
        return;
    int64_t planes = x->shape[0] * x->shape[1];
    int64_t n = sm_op_prod(x->shape, 2, x->ndim);
    for (int64_t c = 0; c < planes; c++) {
        float *restrict gx = gin[0]->data + c * n;
        const float share = gout[0]->data[c] / (float)n;
        SM_OP_FOR(i, n, gx[i] += share);
    }
}

const sm_op_class sm_op_globalaveragepool = {
    .name = "GlobalAveragePool",
    .params_size = sizeof(int),
    .attrs = sm_op_no_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = sm_op_parse_none,
    .infer = gap_infer,
    .run = gap_run,
    .backward = gap_backward,
};
