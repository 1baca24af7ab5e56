/* Transpose: output dim i is input dim perm[i] (default: reversed). */
#include <string.h>

#include "ops/op.h"
#include "ops/op_util.h"

typedef struct transpose_params {
    int n_perm; /* 0: reverse */
    int64_t perm[SM_MAX_DIMS];
} transpose_params;

static const char *const transpose_attrs[] = {"perm", NULL};

static int transpose_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    transpose_params *p = p_;
    if (sm_attrs_ints(a, "perm", p->perm, SM_MAX_DIMS, &p->n_perm, err))
        return -1;
    /* Checked here as far as possible without the rank. */
    int seen[SM_MAX_DIMS] = {0};
    for (int i = 0; i < p->n_perm; i++) {
        if (p->perm[i] < 0 || p->perm[i] >= p->n_perm || seen[p->perm[i]]++)
            return sm_err_set(err, "attribute 'perm' is not a permutation of "
                              "0..%d", p->n_perm - 1);
    }
    return 0;
}

/* perm for rank n: the attribute or the reversal. */
static void get_perm(const transpose_params *p, int n, int *perm)
{
    for (int i = 0; i < n; i++)
        perm[i] = p->n_perm ? (int)p->perm[i] : n - 1 - i;
}

static int transpose_infer(const void *p_, const sm_tensor *const *in,
                           int n_in, sm_tensor *const *out, int n_out,
                           sm_err *err)
{
    const transpose_params *p = p_;
    const sm_tensor *x = in[0];
    int perm[SM_MAX_DIMS];
    (void)n_in;
    (void)n_out;
    if (sm_op_need_float(x, "data", "Transpose", err))
        return -1;
    if (p->n_perm && p->n_perm != x->ndim)
        return sm_op_shape_err(err, "data", x, "Transpose attribute 'perm' "
                               "has %d values", p->n_perm);
    get_perm(p, x->ndim, perm);
    int64_t shape[SM_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[perm[i]];
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

/* Walks x's elements in the output's order: the forward copies x into y
 * (y[k] = x[off]); the backward, its adjoint, adds g back into gx
 * (gx[off] += g[k]). */
static void walk(const transpose_params *p, const sm_tensor *x,
                 const float *src, float *dst, int backward)
{
    int perm[SM_MAX_DIMS], n = x->ndim;
    int64_t numel = sm_tensor_numel(x);
    if (numel == 0)
        return;
    get_perm(p, n, perm);
    int64_t xs[SM_MAX_DIMS], r = 1;
    for (int i = n - 1; i >= 0; i--) {
        xs[i] = r;
        r *= x->shape[i];
    }
    /* Output dims in order with their input strides; size-1 dims dropped
     * and dims that stay adjacent in the input merged, so that identity-like
     * permutations become one copy. */
    int64_t d[SM_MAX_DIMS], s[SM_MAX_DIMS];
    int m = 0;
    for (int i = 0; i < n; i++) {
        int64_t di = x->shape[perm[i]], si = xs[perm[i]];
        if (di == 1)
            continue;
        if (m > 0 && s[m - 1] == si * di) {
            d[m - 1] *= di;
            s[m - 1] = si;
            continue;
        }
        d[m] = di;
        s[m] = si;
        m++;
    }
    if (m == 0 || (m == 1 && s[0] == 1)) {
        if (backward)
            sm_op_add_to(dst, src, numel);
        else
            memcpy(dst, src, (size_t)numel * sizeof(float));
        return;
    }
    int64_t inner = d[m - 1], is = s[m - 1], rows = numel / inner;
    int64_t idx[SM_MAX_DIMS] = {0}, off = 0;
    for (int64_t row = 0; row < rows; row++) {
        if (backward) { /* src: the output's gradient, dst: x's */
            for (int64_t k = 0; k < inner; k++)
                dst[off + k * is] += src[row * inner + k];
        } else if (is == 1) {
            memcpy(dst + row * inner, src + off, (size_t)inner * sizeof(float));
        } else {
            for (int64_t k = 0; k < inner; k++)
                dst[row * inner + k] = src[off + k * is];
        }
        for (int j = m - 2; j >= 0; j--) {
            off += s[j];
            if (++idx[j] < d[j])
                break;
            off -= s[j] * d[j];
            idx[j] = 0;
        }
    }
}

static void transpose_run(const void *p, const sm_tensor *const *in, int n_in,
                          sm_tensor *const *out, int n_out, float *ws)
{
    (void)n_in;
    (void)n_out;
    (void)ws;
    walk(p, in[0], in[0]->data, out[0]->data, 0);
}

static void transpose_backward(const void *p, const sm_tensor *const *in,
                               int n_in, const sm_tensor *const *out,
                               int n_out, const sm_tensor *const *gout,
                               sm_tensor *const *gin, float *ws)
{
    (void)n_in;
    (void)out;
    (void)n_out;
    (void)ws;
    if (gout[0] && gin[0])
        walk(p, in[0], gout[0]->data, gin[0]->data, 1);
}

const sm_op_class sm_op_transpose = {
    .name = "Transpose",
    .params_size = sizeof(transpose_params),
    .attrs = transpose_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = transpose_parse,
    .infer = transpose_infer,
    .run = transpose_run,
    .backward = transpose_backward,
};
