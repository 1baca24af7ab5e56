/* Softmax and LogSoftmax.
 *
 * Opset >= 13: along `axis` (default -1). Opset < 13: the input is coerced
 * to 2-D at `axis` (default 1) and normalised along the second dim, i.e.
 * over all dims from axis on. Both are the same loop over (outer, n, inner)
 * blocks: opset 13 has inner = product of the dims after axis, the old form
 * inner = 1 and n = product of dims from axis on. The maximum is subtracted
 * first so that exp never overflows. */
#include <math.h>

#include "ops/op.h"
#include "ops/op_util.h"

typedef struct softmax_params {
    int64_t axis;
    int opset;
    int log; /* LogSoftmax */
} softmax_params;

static const char *const softmax_attrs[] = {"axis", NULL};

static int parse(softmax_params *p, const sm_attrs *a, int log, sm_err *err)
{
    p->opset = sm_attrs_opset(a);
    p->log = log;
    return sm_attrs_int(a, "axis", p->opset >= 13 ? -1 : 1, &p->axis, err);
}

static int softmax_parse(void *p, const sm_attrs *a, sm_err *err)
{
    return parse(p, a, 0, err);
}

static int logsoftmax_parse(void *p, const sm_attrs *a, sm_err *err)
{
    return parse(p, a, 1, err);
}

/* The (outer, n, inner) blocking of x for the params. */
static void blocks(const softmax_params *p, const sm_tensor *x, int64_t *outer,
                   int64_t *n, int64_t *inner)
{
    int ax = sm_op_axis(p->axis, x->ndim);
    *outer = sm_op_prod(x->shape, 0, ax);
    if (p->opset >= 13) {
        *n = x->shape[ax];
        *inner = sm_op_prod(x->shape, ax + 1, x->ndim);
    } else {
        *n = sm_op_prod(x->shape, ax, x->ndim);
        *inner = 1;
    }
}

static int softmax_infer(const void *p_, const sm_tensor *const *in, int n_in,
                         sm_tensor *const *out, int n_out, sm_err *err)
{
    const softmax_params *p = p_;
    const char *op = p->log ? "LogSoftmax" : "Softmax";
    (void)n_in;
    (void)n_out;
    if (sm_op_need_float(in[0], "input", op, err))
        return -1;
    /* A scalar has no axis to normalise along. */
    if (in[0]->ndim == 0 || sm_op_axis(p->axis, in[0]->ndim) < 0)
        return sm_op_shape_err(err, "input", in[0], "%s attribute 'axis' is "
                               "%lld (must be in [%d, %d])", op,
                               (long long)p->axis, -in[0]->ndim,
                               in[0]->ndim - 1);
    sm_op_set_shape(out[0], in[0]->ndim, in[0]->shape);
    return 0;
}

static size_t softmax_workspace(const void *p, const sm_tensor *const *in,
                                int n_in, const sm_tensor *const *out,
                                int n_out)
{
    int64_t outer, n, inner;
    (void)n_in;
    (void)out;
    (void)n_out;
    blocks(p, in[0], &outer, &n, &inner);
    return inner > 1 ? (size_t)(2 * inner) : 0; /* running max and sum */
}

/* One contiguous row of n values. Softmax keeps exp(x - max) in y so that
 * exp runs once per element. */
static void row(const float *x, float *y, int64_t n, int log)
{
    float m = x[0], s = 0;
    for (int64_t k = 1; k < n; k++)
        m = x[k] > m ? x[k] : m;
    if (log) {
        for (int64_t k = 0; k < n; k++)
            s += expf(x[k] - m);
        float ls = logf(s);
        for (int64_t k = 0; k < n; k++)
            y[k] = (x[k] - m) - ls;
    } else {
        for (int64_t k = 0; k < n; k++) {
            y[k] = expf(x[k] - m);
            s += y[k];
        }
        float r = 1.0f / s;
        for (int64_t k = 0; k < n; k++)
            y[k] *= r;
    }
}

/* n rows of `inner` values each, normalised column-wise; the loops run along
 * rows so that memory access stays contiguous. m and s: inner floats each. */
static void block(const float *x, float *y, int64_t n, int64_t inner, int log,
                  float *m, float *s)
{
    for (int64_t j = 0; j < inner; j++) {
        m[j] = x[j];
        s[j] = 0;
    }
    for (int64_t k = 1; k < n; k++)
        for (int64_t j = 0; j < inner; j++)
            m[j] = x[k * inner + j] > m[j] ? x[k * inner + j] : m[j];
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < inner; j++) {
            float e = expf(x[k * inner + j] - m[j]);
            s[j] += e;
            if (!log)
                y[k * inner + j] = e;
        }
    for (int64_t j = 0; j < inner; j++)
        s[j] = log ? logf(s[j]) : 1.0f / s[j];
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t i = k * inner + j;
            y[i] = log ? (x[i] - m[j]) - s[j] : y[i] * s[j];
        }
}

static void softmax_run(const void *p_, const sm_tensor *const *in, int n_in,
                        sm_tensor *const *out, int n_out, float *ws)
{
    const softmax_params *p = p_;
    int64_t outer, n, inner;
    (void)n_in;
    (void)n_out;
    blocks(p, in[0], &outer, &n, &inner);
    if (n == 0 || inner == 0)
        return;
    for (int64_t o = 0; o < outer; o++) {
        const float *x = in[0]->data + o * n * inner;
        float *y = out[0]->data + o * n * inner;
        if (inner == 1)
            row(x, y, n, p->log);
        else
            block(x, y, n, inner, p->log, ws, ws + inner);
    }
}

/* --- backward ------------------------------------------------------------
 * Along each normalised row, with y the output and g its gradient:
 *   Softmax:    gx = y * (g - sum(g * y))
 *   LogSoftmax: gx = g - exp(y) * sum(g)
 * Same (outer, n, inner) blocking as the forward; for inner > 1 the sums
 * of the `inner` interleaved rows are kept in ws so that memory is walked
 * contiguously. */

static size_t softmax_bwd_workspace(const void *p, const sm_tensor *const *in,
                                    int n_in, const sm_tensor *const *out,
                                    int n_out)
{
    int64_t outer, n, inner;
    (void)n_in;
    (void)out;
    (void)n_out;
    blocks(p, in[0], &outer, &n, &inner);
    return inner > 1 ? (size_t)inner : 0;
}

/* n rows of `inner` values (inner = 1: one contiguous row), s: inner
 * floats for the sums (a local for inner = 1). The two operators' loops are
 * kept apart: a shared loop with a select computed expf for both. */
static void block_backward(const float *restrict y, const float *restrict g,
                           float *restrict gx, int64_t n, int64_t inner,
                           int log, float *restrict s)
{
    for (int64_t j = 0; j < inner; j++)
        s[j] = 0;
    for (int64_t k = 0; k < n; k++) {
        const float *restrict yk = y + k * inner, *restrict gk = g + k * inner;
        if (log)
            SM_OP_FOR(j, inner, s[j] += gk[j]);
        else
            SM_OP_FOR(j, inner, s[j] += gk[j] * yk[j]);
    }
    for (int64_t k = 0; k < n; k++) {
        const float *restrict yk = y + k * inner, *restrict gk = g + k * inner;
        float *restrict gxk = gx + k * inner;
        if (log)
            SM_OP_FOR(j, inner, gxk[j] += gk[j] - expf(yk[j]) * s[j]);
        else
            SM_OP_FOR(j, inner, gxk[j] += yk[j] * (gk[j] - s[j]));
    }
}

static void softmax_backward(const void *p_, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out,
                             const sm_tensor *const *gout,
                             sm_tensor *const *gin, float *ws)
{
    const softmax_params *p = p_;
    int64_t outer, n, inner;
    float s1;
    (void)n_in;
    (void)n_out;
    if (!gout[0] || !gin[0])
        return;
    blocks(p, in[0], &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = o * n * inner;
        block_backward(out[0]->data + off, gout[0]->data + off,
                       gin[0]->data + off, n, inner, p->log,
                       inner > 1 ? ws : &s1);
    }
}

const sm_op_class sm_op_softmax = {
    .name = "Softmax",
    .params_size = sizeof(softmax_params),
    .attrs = softmax_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = softmax_parse,
    .infer = softmax_infer,
    .workspace = softmax_workspace,
    .run = softmax_run,
    .backward = softmax_backward,
    .bwd_workspace = softmax_bwd_workspace,
};

const sm_op_class sm_op_logsoftmax = {
    .name = "LogSoftmax",
    .params_size = sizeof(softmax_params),
    .attrs = softmax_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = logsoftmax_parse,
    .infer = softmax_infer,
    .workspace = softmax_workspace,
    .run = softmax_run,
    .backward = softmax_backward,
    .bwd_workspace = softmax_bwd_workspace,
};
