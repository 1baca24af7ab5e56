/* Helpers shared by the operators: op.h's public ones and op_util.h's. */
#include "ops/op.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops/op_util.h"

int sm_op_axis(int64_t axis, int rank)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

void sm_op_set_shape(sm_tensor *out, int ndim, const int64_t *shape)
{
    out->ndim = ndim;
    if (ndim > 0)
        memcpy(out->shape, shape, (size_t)ndim * sizeof *shape);
}

int64_t sm_op_prod(const int64_t *shape, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++)
        n *= shape[i];
    return n;
}

const char *const sm_op_no_attrs[] = {NULL};

int sm_op_parse_none(void *p, const sm_attrs *a, sm_err *err)
{
    (void)p;
    (void)a;
    (void)err;
    return 0;
}

void sm_op_copy_run(const void *p, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, int n_out, float *ws)
{
    (void)p;
    (void)n_in;
    (void)n_out;
    (void)ws;
    int64_t n = sm_tensor_numel(in[0]);
    if (in[0]->i64) /* Identity of an int64 constant: see identity.c */
        return;
    if (n > 0 && out[0]->data != in[0]->data)
        memcpy(out[0]->data, in[0]->data, (size_t)n * sizeof(float));
}

void sm_op_copy_backward(const void *p, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out,
                         const sm_tensor *const *gout, sm_tensor *const *gin,
                         float *ws)
{
    (void)p;
    (void)out;
    (void)n_in;
    (void)n_out;
    (void)ws;
    if (!gout[0] || !gin[0])
        return;
    sm_op_add_to(gin[0]->data, gout[0]->data, sm_tensor_numel(in[0]));
}

void sm_op_add_to(float *restrict y, const float *restrict x, int64_t n)
{
    SM_OP_FOR(i, n, y[i] += x[i]);
}

void sm_op_write_to(float *restrict y, const float *restrict x, int64_t n)
{
    SM_OP_FOR(i, n, y[i] = 0.0f + x[i]);
}

void sm_op_copy_backward_fresh(const void *p, const float *packed,
                               const sm_tensor *const *in, int n_in,
                               const sm_tensor *const *out, int n_out,
                               const sm_tensor *const *gout,
                               sm_tensor *const *gin, unsigned fresh,
                               float *ws)
{
    (void)packed;
    if ((fresh & 1u) && gin[0]) /* fresh comes with gout[0] (op.h) */
        sm_op_write_to(gin[0]->data, gout[0]->data, sm_tensor_numel(in[0]));
    else
        sm_op_copy_backward(p, in, n_in, out, n_out, gout, gin, ws);
}

/* --- messages ------------------------------------------------------------ */

int sm_op_shape_err(sm_err *err, const char *input, const sm_tensor *t,
                    const char *fmt, ...)
{
    char shape[256], why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return sm_err_set(err, "input '%s' has shape %s but %s", input,
                      sm_shape_str(t->ndim, t->shape, shape, sizeof shape),
                      why);
}

int sm_op_need_float(const sm_tensor *t, const char *input, const char *op,
                     sm_err *err)
{
    if (t && t->i64)
        return sm_err_set(err, "input '%s' is an int64 tensor but %s computes "
                          "on float32 only", input, op);
    return 0;
}

int sm_op_need_i64_const(const sm_tensor *t, const char *input,
                         const char *op, sm_err *err)
{
    if (!t->i64)
        return sm_err_set(err, "input '%s' of %s must be a constant int64 "
                          "tensor (an initializer or a Constant): salmap "
                          "plans output shapes before any run", input, op);
    if (t->ndim > 1)
        return sm_op_shape_err(err, input, t, "%s needs a 1-D tensor", op);
    return 0;
}

int sm_op_need_scalar(const sm_tensor *t, const char *input, const char *op,
                      sm_err *err)
{
    if (!t)
        return 0;
    if (sm_op_need_float(t, input, op, err))
        return -1;
    if (sm_tensor_numel(t) != 1)
        return sm_op_shape_err(err, input, t, "%s needs a scalar", op);
    return 0;
}

int sm_op_check_out_shape(int ndim, const int64_t *shape, const char *op,
                          sm_err *err)
{
    char buf[256];
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return sm_err_set(err, "%s output would have shape %s: dim %d is "
                              "%s", op,
                              sm_shape_str(ndim, shape, buf, sizeof buf), i,
                              shape[i] ? "negative" : "zero");
    return 0;
}

/* --- broadcasting -------------------------------------------------------- */

void sm_op_bcast_init(sm_op_bcast *w, const sm_tensor *a, const sm_tensor *b,
                      const sm_tensor *out)
{
    /* Per output dim: size and the element strides of a and b (0 where the
     * operand is broadcast), dims of size 1 dropped; built inner to outer. */
    int64_t dt[SM_MAX_DIMS], sat[SM_MAX_DIMS], sbt[SM_MAX_DIMS];
    int n = out->ndim, m = 0;
    int64_t ra = 1, rb = 1; /* running strides of a and b, inner to outer */
    for (int i = n - 1; i >= 0; i--) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1;
        int64_t db = ib >= 0 ? b->shape[ib] : 1;
        int64_t xa = da == 1 ? 0 : ra, xb = db == 1 ? 0 : rb;
        ra *= da;
        rb *= db;
        if (out->shape[i] == 1)
            continue;
        /* Merge into the inner dim just kept when both operands walk on
         * contiguously (or both stay put) across the two. */
        if (m > 0 && xa == sat[m - 1] * dt[m - 1] &&
            xb == sbt[m - 1] * dt[m - 1]) {
            dt[m - 1] *= out->shape[i];
            continue;
        }
        dt[m] = out->shape[i];
        sat[m] = xa;
        sbt[m] = xb;
        m++;
    }
    /* Reverse to outer-to-inner order. */
    w->m = m;
    for (int i = 0; i < m; i++) {
        w->d[i] = dt[m - 1 - i];
        w->sa[i] = sat[m - 1 - i];
        w->sb[i] = sbt[m - 1 - i];
        w->idx[i] = 0;
    }
    w->inner = m ? w->d[m - 1] : 1;
    w->ia = m && w->sa[m - 1] ? 1 : 0;
    w->ib = m && w->sb[m - 1] ? 1 : 0;
    /* 0 for an empty output, whichever dim is 0 (the inner one too). */
    w->rows = w->inner ? sm_tensor_numel(out) / w->inner : 0;
    w->row = w->oa = w->ob = 0;
}

void sm_op_bcast_next(sm_op_bcast *w)
{
    w->row++;
    /* Odometer over the outer dims. */
    for (int j = w->m - 2; j >= 0; j--) {
        w->oa += w->sa[j];
        w->ob += w->sb[j];
        if (++w->idx[j] < w->d[j])
            break;
        w->oa -= w->sa[j] * w->d[j];
        w->ob -= w->sb[j] * w->d[j];
        w->idx[j] = 0;
    }
}

void sm_op_broadcast2(const sm_tensor *a, const sm_tensor *b, sm_tensor *out,
                      sm_op_kernel2 k)
{
    sm_op_bcast w;
    for (sm_op_bcast_init(&w, a, b, out); w.row < w.rows; sm_op_bcast_next(&w))
        k(a->data + w.oa, w.ia, b->data + w.ob, w.ib,
          out->data + w.row * w.inner, w.inner);
}
