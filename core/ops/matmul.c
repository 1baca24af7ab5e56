/* MatMul with numpy semantics: 1-D operands are promoted (and the promoted
 * dim dropped from the result), leading dims broadcast. When B is a single
 * matrix, all of A's leading dims fold into one GEMM. Products on sm_sgemm
 * (ops/sgemm.h), but for the gradient of such a B: a sum over the batch
 * that only training asks for, on OpenBLAS. */
#include <cblas.h>
#include <string.h>

#include "ops/op.h"
#include "ops/sgemm.h"

typedef struct mm_dims {
    int64_t m, k, n;
    int nb;                      /* broadcast batch rank */
    int64_t batch[SM_MAX_DIMS];  /* broadcast batch shape */
    int64_t abatch[SM_MAX_DIMS], bbatch[SM_MAX_DIMS]; /* right-aligned */
} mm_dims;

/* Returns 0, or -1 when the shapes do not multiply. */
static int get_dims(const sm_tensor *a, const sm_tensor *b, mm_dims *d)
{
    if (a->ndim < 1 || b->ndim < 1)
        return -1;
    d->m = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
    d->k = a->shape[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    d->n = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    if (d->k != kb)
        return -1;
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0;
    if (sm_shape_broadcast(na, a->shape, nb, b->shape, &d->nb, d->batch))
        return -1;
    for (int i = 0; i < d->nb; i++) {
        d->abatch[i] = i < d->nb - na ? 1 : a->shape[i - (d->nb - na)];
        d->bbatch[i] = i < d->nb - nb ? 1 : b->shape[i - (d->nb - nb)];
    }
    return 0;
}

static int matmul_infer(const void *pv, const sm_tensor *const *in, int n_in,
                        sm_tensor *const *out, int n_out, sm_err *err)
{
    (void)pv;
    (void)n_in;
    (void)n_out;
    mm_dims d;
    char s1[96], s2[96];
    if (get_dims(in[0], in[1], &d))
        return sm_err_set(err, "A %s and B %s do not multiply",
                          sm_shape_str(in[0]->ndim, in[0]->shape, s1, sizeof s1),
                          sm_shape_str(in[1]->ndim, in[1]->shape, s2, sizeof s2));
    int64_t y[SM_MAX_DIMS];
    int r = d.nb;
    memcpy(y, d.batch, (size_t)d.nb * sizeof(int64_t));
    if (in[0]->ndim > 1)
        y[r++] = d.m;
    if (in[1]->ndim > 1)
        y[r++] = d.n;
    if (r > SM_MAX_DIMS)
        return sm_err_set(err, "result rank too large");
    sm_op_set_shape(out[0], r, y);
    return 0;
}

/* sm_sgemm's panel, forward (inner dimension k) and backward (dA's n,
 * dB's m). */
static size_t matmul_workspace(const void *pv, const sm_tensor *const *in,
                               int n_in, const sm_tensor *const *out,
                               int n_out)
{
    (void)pv, (void)n_in, (void)out, (void)n_out;
    mm_dims d;
    get_dims(in[0], in[1], &d);
    int64_t inner = d.k > d.n ? d.k : d.n;
    return sm_sgemm_workspace(inner > d.m ? inner : d.m);
}

static void matmul_run(const void *pv, const sm_tensor *const *in, int n_in,
                       sm_tensor *const *out, int n_out, float *ws)
{
    (void)pv;
    (void)n_in;
    (void)n_out;
    const sm_tensor *a = in[0], *b = in[1];
    mm_dims d;
    get_dims(a, b, &d);
    float *y = out[0]->data;
    int64_t batches = sm_shape_numel(d.nb, d.batch);
    if (d.m == 0 || d.n == 0 || batches == 0)
        return;
    if (d.k == 0) {
        memset(y, 0, (size_t)(batches * d.m * d.n) * sizeof(float));
        return;
    }
    if (b->ndim <= 2 && a->ndim >= 2) {
        /* Fold A's batch into rows: one GEMM. */
        sm_sgemm(0, 0, batches * d.m, d.n, d.k, 1.0f, a->data, d.k, b->data,
                 d.n, 0, y, d.n, ws);
        return;
    }
    int64_t idx[SM_MAX_DIMS] = {0};
    for (int64_t t = 0; t < batches; t++) {
        int64_t ao = 0, bo = 0;
        for (int i = 0; i < d.nb; i++) {
            ao = ao * d.abatch[i] + (d.abatch[i] == 1 ? 0 : idx[i]);
            bo = bo * d.bbatch[i] + (d.bbatch[i] == 1 ? 0 : idx[i]);
        }
        sm_sgemm(0, 0, d.m, d.n, d.k, 1.0f, a->data + ao * d.m * d.k, d.k,
                 b->data + bo * d.k * d.n, d.n, 0, y + t * d.m * d.n, d.n, ws);
        for (int i = d.nb - 1; i >= 0; i--) {
            if (++idx[i] < d.batch[i])
                break;
            idx[i] = 0;
        }
    }
}

static double matmul_flops(const void *pv, const sm_tensor *const *in,
                           int n_in, const sm_tensor *const *out, int n_out)
{
    (void)pv;
    (void)n_in;
    (void)out;
    (void)n_out;
    mm_dims d;
    get_dims(in[0], in[1], &d);
    return 2.0 * (double)sm_shape_numel(d.nb, d.batch) * (double)d.m *
           (double)d.n * (double)d.k;
}

/* dA = dY B^T and dB = A^T dY per batch element; broadcast operands add up
 * the gradients of every batch element that reused them (gin accumulates). */
static void matmul_backward(const void *pv, const sm_tensor *const *in,
                            int n_in, const sm_tensor *const *out, int n_out,
                            const sm_tensor *const *gout,
                            sm_tensor *const *gin, float *ws)
{
    (void)pv;
    (void)n_in;
    (void)out;
    (void)n_out;
    const sm_tensor *a = in[0], *b = in[1], *gy = gout[0];
    if (!gy)
        return;
    mm_dims d;
    get_dims(a, b, &d);
    int64_t batches = sm_shape_numel(d.nb, d.batch);
    if (d.m == 0 || d.n == 0 || d.k == 0 || batches == 0)
        return;
    const int m = (int)d.m, n = (int)d.n, k = (int)d.k;
    if (b->ndim <= 2 && a->ndim >= 2) { /* A's batch folded into rows */
        const int rows = (int)(batches * d.m);
        if (gin[0])
            sm_sgemm(0, 1, rows, k, n, 1.0f, gy->data, n, b->data, n, 1,
                     gin[0]->data, k, ws);
        if (gin[1])
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, rows,
                        1.0f, a->data, k, gy->data, n, 1.0f, gin[1]->data, n);
        return;
    }
    int64_t idx[SM_MAX_DIMS] = {0};
    for (int64_t t = 0; t < batches; t++) {
        int64_t ao = 0, bo = 0;
        for (int i = 0; i < d.nb; i++) {
            ao = ao * d.abatch[i] + (d.abatch[i] == 1 ? 0 : idx[i]);
            bo = bo * d.bbatch[i] + (d.bbatch[i] == 1 ? 0 : idx[i]);
        }
        const float *gyt = gy->data + t * d.m * d.n;
        if (gin[0])
            sm_sgemm(0, 1, m, k, n, 1.0f, gyt, n, b->data + bo * d.k * d.n, n,
                     1, gin[0]->data + ao * d.m * d.k, k, ws);
        if (gin[1])
            sm_sgemm(1, 0, k, n, m, 1.0f, a->data + ao * d.m * d.k, k, gyt, n,
                     1, gin[1]->data + bo * d.k * d.n, n, ws);
        for (int i = d.nb - 1; i >= 0; i--) {
            if (++idx[i] < d.batch[i])
                break;
            idx[i] = 0;
        }
    }
}

static const char *const matmul_attrs[] = {NULL};

const sm_op_class sm_op_matmul = {
    .name = "MatMul",
    .params_size = 0,
    .attrs = matmul_attrs,
    .min_inputs = 2, .max_inputs = 2,
    .min_outputs = 1, .max_outputs = 1,
    .infer = matmul_infer,
    .workspace = matmul_workspace,
    .run = matmul_run,
    .flops = matmul_flops,
    .backward = matmul_backward,
    .bwd_workspace = matmul_workspace,
};
