/* Elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh, Clip. */
#include <float.h>
#include <math.h>

#include "ops/op.h"
#include "ops/op_util.h"

typedef struct unary_params {
    float alpha;    /* LeakyRelu */
    float min, max; /* Clip: attributes (opset < 11) or defaults */
    int opset;
} unary_params;

/* Output shape = shape of input 0, named X (Clip: input). */
static int same_shape(const char *op, const char *input,
                      const sm_tensor *const *in, sm_tensor *const *out,
                      sm_err *err)
{
    if (sm_op_need_float(in[0], input, op, err))
        return -1;
    sm_op_set_shape(out[0], in[0]->ndim, in[0]->shape);
    return 0;
}

/* Each operator: an infer that runs CHECK (extra input checks) and names
 * it, a run that evaluates PRE once, then EXPR for each element x[i], and a
 * backward that evaluates PRE, then adds GRAD (from x[i], the output y[i]
 * and its gradient g[i]) to the input's gradient (or writes 0 + GRAD:
 * backward_fresh), then calls EXTRA for the gradients of the other inputs
 * (Clip's bounds). */
#define UNARY_OP(id, NAME, INPUT, PARSE, ATTRS, MAXIN, CHECK, PRE, EXPR, GRAD, \
                 EXTRA)                                                        \
    static int id##_infer(const void *p, const sm_tensor *const *in,           \
                          int n_in, sm_tensor *const *out, int n_out,          \
                          sm_err *err)                                         \
    {                                                                          \
        (void)n_out;                                                           \
        return CHECK(p, in, n_in, err) ? -1                                    \
               : same_shape(NAME, INPUT, in, out, err);                        \
    }                                                                          \
    /* restrict works on parameters, not on locals: hence the split. */     \
    static void id##_loop(const unary_params *p, const sm_tensor *const *in,   \
                          int n_in, const float *restrict x,                   \
                          float *restrict y, int64_t n)                        \
    {                                                                          \
        (void)p;                                                               \
        (void)in;                                                              \
        (void)n_in;                                                            \
        PRE;                                                                   \
        SM_OP_FOR(i, n, y[i] = EXPR);                                          \
    }                                                                          \
    static void id##_run(const void *p, const sm_tensor *const *in, int n_in,  \
                         sm_tensor *const *out, int n_out, float *ws)          \
    {                                                                          \
        (void)n_out;                                                           \
        (void)ws;                                                              \
        id##_loop(p, in, n_in, in[0]->data, out[0]->data,                      \
                  sm_tensor_numel(in[0]));                                     \
    }                                                                          \
    static void id##_bwd_loop(const unary_params *p,                           \
                              const sm_tensor *const *in, int n_in,            \
                              const float *restrict x,                         \
                              const float *restrict y,                         \
                              const float *restrict g, float *restrict gx,     \
                              int64_t n, int fresh)                            \
    {                                                                          \
        (void)p;                                                               \
        (void)in;                                                              \
        (void)n_in;                                                            \
        (void)x;                                                               \
        (void)y;                                                               \
        PRE;                                                                   \
        if (fresh) {                                                           \
            /* a zero GCC cannot see: 0.0f + (c ? g : 0) it would turn into  \
             * c ? g + 0 : 0, which may not be vectorised (the add could     \
             * trap), and Relu's backward ran 3x slower */                    \
            volatile float zero_v = 0.0f;                                      \
            const float zero = zero_v;                                         \
            SM_OP_FOR(i, n, gx[i] = zero + (GRAD));                            \
        } else {                                                               \
            SM_OP_FOR(i, n, gx[i] += GRAD);                                    \
        }                                                                      \
    }                                                                          \
    static void id##_backward_fresh(                                           \
        const void *p, const float *packed, const sm_tensor *const *in,        \
        int n_in, const sm_tensor *const *out, int n_out,                      \
        const sm_tensor *const *gout, sm_tensor *const *gin, unsigned fresh,   \
        float *ws)                                                             \
    {                                                                          \
        (void)packed;                                                          \
        (void)n_out;                                                           \
        (void)ws;                                                              \
        if (!gout[0]) /* fresh comes with a gradient (op.h) */               \
            return;                                                            \
        if (gin[0])                                                            \
            id##_bwd_loop(p, in, n_in, in[0]->data, out[0]->data,              \
                          gout[0]->data, gin[0]->data,                         \
                          sm_tensor_numel(in[0]), fresh & 1u);                 \
        EXTRA(p, in, n_in, gout[0], gin);                                      \
    }                                                                          \
    static void id##_backward(const void *p, const sm_tensor *const *in,       \
                              int n_in, const sm_tensor *const *out,           \
                              int n_out, const sm_tensor *const *gout,         \
                              sm_tensor *const *gin, float *ws)                \
    {                                                                          \
        id##_backward_fresh(p, NULL, in, n_in, out, n_out, gout, gin, 0, ws);  \
    }                                                                          \
    const sm_op_class sm_op_##id = {                                           \
        .name = NAME,                                                          \
        .params_size = sizeof(unary_params),                                   \
        .attrs = ATTRS,                                                        \
        .min_inputs = 1, .max_inputs = MAXIN,                                  \
        .min_outputs = 1, .max_outputs = 1,                                    \
        .parse = PARSE,                                                        \
        .infer = id##_infer,                                                   \
        .run = id##_run,                                                       \
        .backward = id##_backward,                                             \
        .backward_fresh = id##_backward_fresh,                                 \
        .bwd_fresh_inputs = 1,                                                 \
    };

static void no_extra(const void *p, const sm_tensor *const *in, int n_in,
                     const sm_tensor *g, sm_tensor *const *gin)
{
    (void)p;
    (void)in;
    (void)n_in;
    (void)g;
    (void)gin;
}

static int no_check(const void *p, const sm_tensor *const *in, int n_in,
                    sm_err *err)
{
    (void)p;
    (void)in;
    (void)n_in;
    (void)err;
    return 0;
}

/* --- LeakyRelu ----------------------------------------------------------- */

static const char *const leakyrelu_attrs[] = {"alpha", NULL};

static int leakyrelu_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    unary_params *p = p_;
    return sm_attrs_float(a, "alpha", 0.01f, &p->alpha, err);
}

/* Both sides always computed, so the select vectorises; NaN stays NaN. */
static inline float leakyrelu(float x, float alpha)
{
    return (x < 0 ? 0.0f : x) + alpha * (x < 0 ? x : 0.0f);
}

/* --- Sigmoid: stable for large |x| (exp never overflows) ----------------- */

static inline float sigmoid(float x)
{
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* --- Clip ---------------------------------------------------------------- */

static const char *const clip_attrs[] = {"min", "max", NULL};

static int clip_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    unary_params *p = p_;
    p->opset = sm_attrs_opset(a);
    if (p->opset >= 11) {
        /* Since opset 11 the bounds are inputs; attributes would be ignored
         * by other runtimes, so refuse rather than guess. */
        if (sm_attrs_has(a, "min") || sm_attrs_has(a, "max"))
            return sm_err_set(err, "Clip attributes 'min'/'max' exist only "
                              "before opset 11 (the model imports opset %d, "
                              "where the bounds are inputs)", p->opset);
        p->min = -FLT_MAX;
        p->max = FLT_MAX;
        return 0;
    }
    return sm_attrs_float(a, "min", -FLT_MAX, &p->min, err) ||
                   sm_attrs_float(a, "max", FLT_MAX, &p->max, err)
               ? -1
               : 0;
}

static int clip_check(const void *p_, const sm_tensor *const *in, int n_in,
                      sm_err *err)
{
    const unary_params *p = p_;
    if (p->opset < 11 && n_in > 1)
        return sm_err_set(err, "Clip takes its bounds as inputs only since "
                          "opset 11 (the model imports opset %d: use the "
                          "'min'/'max' attributes)", p->opset);
    if (sm_op_need_scalar(n_in > 1 ? in[1] : NULL, "min", "Clip", err))
        return -1;
    return sm_op_need_scalar(n_in > 2 ? in[2] : NULL, "max", "Clip", err);
}

/* Comparisons rather than fminf/fmaxf so that NaN stays NaN (as numpy). */
static inline float clip(float x, float lo, float hi)
{
    float v = x < lo ? lo : x;
    return v > hi ? hi : v;
}

/* Bounds from the optional inputs (read at run time: they need not be
 * constants), else from the attributes. min > max gives max everywhere, as
 * the spec says, because max is applied last. */
#define CLIP_BOUNDS                                                            \
    const float lo = n_in > 1 && in[1] ? in[1]->data[0] : p->min;              \
    const float hi = n_in > 2 && in[2] ? in[2]->data[0] : p->max

/* Clip's gradient follows PyTorch's clamp(x, min, max): x gets g where
 * min <= x <= max (boundaries included, so a value exactly at a bound still
 * passes the gradient), min gets g where x < min (and min < max), max gets g
 * where x > max or max < min (where the output is max throughout). The
 * bounds are scalars: theirs are sums over x. Boundaries are measure-zero;
 * the choice only has to be consistent with what users compare against. */
#define CLIP_GRAD                                                              \
    (x[i] >= lo) & (x[i] <= hi) ? g[i] : 0.0f

static void clip_bound_grads(const void *p_, const sm_tensor *const *in,
                             int n_in, const sm_tensor *gy,
                             sm_tensor *const *gin)
{
    const unary_params *p = p_;
    CLIP_BOUNDS;
    const float *restrict x = in[0]->data, *restrict g = gy->data;
    int64_t n = sm_tensor_numel(in[0]);
    float s;
    if (n_in > 1 && in[1] && gin[1] && lo < hi) {
        SM_OP_SUM(s, i, n, x[i] < lo ? g[i] : 0.0f);
        gin[1]->data[0] += s;
    }
    if (n_in > 2 && in[2] && gin[2]) {
        SM_OP_SUM(s, i, n, (x[i] > hi) | (hi < lo) ? g[i] : 0.0f);
        gin[2]->data[0] += s;
    }
}

/* Relu and LeakyRelu at exactly 0 take the left side's slope (0 and alpha),
 * as PyTorch does. Sigmoid and Tanh differentiate through their output. */
/* Gradients as functions of loaded values: with g[i] read on one side of
 * a ternary only, GCC keeps a branch per element instead of a select. */
static inline float relu_grad(float x, float g)
{
    return x > 0 ? g : 0.0f;
}

static inline float leakyrelu_grad(float x, float g, float alpha)
{
    return x > 0 ? g : alpha * g;
}

UNARY_OP(relu, "Relu", "X", sm_op_parse_none, sm_op_no_attrs, 1, no_check,
         (void)0, sm_op_relu1(x[i]), relu_grad(x[i], g[i]), no_extra)
UNARY_OP(leakyrelu, "LeakyRelu", "X", leakyrelu_parse, leakyrelu_attrs, 1,
         no_check, const float alpha = p->alpha, leakyrelu(x[i], alpha),
         leakyrelu_grad(x[i], g[i], alpha), no_extra)
UNARY_OP(sigmoid, "Sigmoid", "X", sm_op_parse_none, sm_op_no_attrs, 1,
         no_check, (void)0, sigmoid(x[i]), g[i] * y[i] * (1.0f - y[i]),
         no_extra)
UNARY_OP(tanh, "Tanh", "X", sm_op_parse_none, sm_op_no_attrs, 1, no_check,
         (void)0, tanhf(x[i]), g[i] * (1.0f - y[i] * y[i]), no_extra)
UNARY_OP(clip, "Clip", "input", clip_parse, clip_attrs, 3, clip_check,
         CLIP_BOUNDS, clip(x[i], lo, hi), CLIP_GRAD, clip_bound_grads)
