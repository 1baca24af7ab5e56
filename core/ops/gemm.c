/* Gemm: Y = alpha * A' * B' + beta * C, C broadcast to [M, N]. The
 * product and dA on sm_sgemm (ops/sgemm.h); dB, a sum over the batch that
 * only training asks for, on OpenBLAS. */
#include <cblas.h>

#include "ops/op.h"
#include "ops/sgemm.h"

typedef struct gemm {
    float alpha, beta;
    int64_t trans_a, trans_b;
} gemm;

static const char *const gemm_attrs[] = {"alpha", "beta", "transA", "transB",
                                         NULL};

static int gemm_parse(void *pv, const sm_attrs *a, sm_err *err)
{
    gemm *p = pv;
    if (sm_attrs_float(a, "alpha", 1.0f, &p->alpha, err) ||
        sm_attrs_float(a, "beta", 1.0f, &p->beta, err) ||
        sm_attrs_int(a, "transA", 0, &p->trans_a, err) ||
        sm_attrs_int(a, "transB", 0, &p->trans_b, err))
        return -1;
    if ((p->trans_a != 0 && p->trans_a != 1) ||
        (p->trans_b != 0 && p->trans_b != 1))
        return sm_err_set(err, "attributes transA and transB must be 0 or 1");
    return 0;
}

static void mnk(const gemm *p, const sm_tensor *a, const sm_tensor *b,
                int64_t *m, int64_t *n, int64_t *k)
{
    *m = p->trans_a ? a->shape[1] : a->shape[0];
    *k = p->trans_a ? a->shape[0] : a->shape[1];
    *n = p->trans_b ? b->shape[0] : b->shape[1];
}

static int gemm_infer(const void *pv, const sm_tensor *const *in, int n_in,
                      sm_tensor *const *out, int n_out, sm_err *err)
{
    (void)n_out;
    const gemm *p = pv;
    const sm_tensor *a = in[0], *b = in[1], *c = n_in > 2 ? in[2] : NULL;
    char s1[96], s2[96];
    if (a->ndim != 2 || b->ndim != 2)
        return sm_err_set(err, "inputs A %s and B %s must both be matrices",
                          sm_shape_str(a->ndim, a->shape, s1, sizeof s1),
                          sm_shape_str(b->ndim, b->shape, s2, sizeof s2));
    int64_t m, n, k;
    mnk(p, a, b, &m, &n, &k);
    int64_t kb = p->trans_b ? b->shape[1] : b->shape[0];
    if (k != kb)
        return sm_err_set(err, "A %s and B %s do not multiply (transA %lld, "
                          "transB %lld)",
                          sm_shape_str(a->ndim, a->shape, s1, sizeof s1),
                          sm_shape_str(b->ndim, b->shape, s2, sizeof s2),
                          (long long)p->trans_a, (long long)p->trans_b);
    int64_t y[2] = {m, n};
    if (c) {
        int nd;
        int64_t bc[SM_MAX_DIMS];
        if (c->ndim > 2 || sm_shape_broadcast(c->ndim, c->shape, 2, y, &nd, bc) ||
            bc[0] != m || bc[1] != n)
            return sm_err_set(err, "C %s does not broadcast to [%lld, %lld]",
                              sm_shape_str(c->ndim, c->shape, s1, sizeof s1),
                              (long long)m, (long long)n);
    }
    sm_op_set_shape(out[0], 2, y);
    return 0;
}

/* sm_sgemm's panel, forward (inner dimension k) and backward (dA's, n). */
static size_t gemm_workspace(const void *pv, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out)
{
    (void)n_in, (void)out, (void)n_out;
    int64_t m, n, k;
    mnk(pv, in[0], in[1], &m, &n, &k);
    return sm_sgemm_workspace(k > n ? k : n);
}

/* The forward pass, op(B) packed beforehand (gemm_pack) or not (bp
 * NULL): the same bits either way (ops/sgemm.h). */
static void forward(const gemm *p, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, const float *bp, float *ws)
{
    const sm_tensor *a = in[0], *b = in[1], *c = n_in > 2 ? in[2] : NULL;
    float *y = out[0]->data;
    int64_t m, n, k;
    mnk(p, a, b, &m, &n, &k);
    const int with_c = c && p->beta != 0.0f;
    if (with_c) {
        /* beta * C broadcast into Y, then the product added onto it */
        int64_t cm = c->ndim == 2 ? c->shape[0] : 1;
        int64_t cn = c->ndim >= 1 ? c->shape[c->ndim - 1] : 1;
        for (int64_t i = 0; i < m; i++) {
            const float *crow = c->data + (cm == 1 ? 0 : i) * cn;
            float *yrow = y + i * n;
            for (int64_t j = 0; j < n; j++)
                yrow[j] = p->beta * crow[cn == n ? j : 0];
        }
    }
    if (bp)
        sm_sgemm_packed(p->trans_a, m, n, k, p->alpha, a->data, a->shape[1],
                        bp, with_c, y, n);
    else
        sm_sgemm(p->trans_a, p->trans_b, m, n, k, p->alpha, a->data,
                 a->shape[1], b->data, b->shape[1], with_c, y, n, ws);
}

static void gemm_run(const void *pv, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, float *ws)
{
    (void)n_out;
    forward(pv, in, n_in, out, NULL, ws);
}

/* A layer's weights (B constant) packed once for every run: packing them
 * at each run cost more than the product on small batches (an eighth of
 * anchor's time on the MNIST model, whose fc1 has 3136 x 128 weights). */
static size_t gemm_pack_size(const void *pv, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out)
{
    (void)n_in, (void)out, (void)n_out;
    int64_t m, n, k;
    mnk(pv, in[0], in[1], &m, &n, &k);
    return sm_sgemm_packed_size(k, n);
}

static void gemm_pack(const void *pv, const sm_tensor *const *in, int n_in,
                      const sm_tensor *const *out, int n_out, float *packed)
{
    (void)n_in, (void)out, (void)n_out;
    const gemm *p = pv;
    int64_t m, n, k;
    mnk(p, in[0], in[1], &m, &n, &k);
    sm_sgemm_pack((int)p->trans_b, in[1]->data, in[1]->shape[1], k, n, packed);
}

static void gemm_run_packed(const void *pv, const float *packed,
                            const sm_tensor *const *in, int n_in,
                            sm_tensor *const *out, int n_out, float *ws)
{
    (void)n_out;
    forward(pv, in, n_in, out, packed, ws);
}

static double gemm_flops(const void *pv, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out)
{
    (void)n_in;
    (void)out;
    (void)n_out;
    int64_t m, n, k;
    mnk(pv, in[0], in[1], &m, &n, &k);
    return 2.0 * (double)m * (double)n * (double)k;
}

/* dA' = alpha dY op(B)^T, dop(B) = alpha op(A)^T dY (transposed back when
 * the operand was given transposed), dC = beta dY summed over C's
 * broadcast dims. */
static void gemm_backward(const void *pv, const sm_tensor *const *in, int n_in,
                          const sm_tensor *const *out, int n_out,
                          const sm_tensor *const *gout, sm_tensor *const *gin,
                          float *ws)
{
    (void)out;
    (void)n_out;
    const gemm *p = pv;
    const sm_tensor *a = in[0], *b = in[1], *gy = gout[0];
    if (!gy)
        return;
    int64_t m, n, k;
    mnk(p, a, b, &m, &n, &k);
    int lda = (int)a->shape[1], ldb = (int)b->shape[1];
    if (gin[0] && m && n && k) {
        if (!p->trans_a) /* dA [M,K] = dY [M,N] op(B)^T */
            sm_sgemm(0, !p->trans_b, m, k, n, p->alpha, gy->data, n, b->data,
                     ldb, 1, gin[0]->data, lda, ws);
        else /* dA [K,M] = op(B) dY^T */
            sm_sgemm(p->trans_b, 1, k, m, n, p->alpha, b->data, ldb, gy->data,
                     n, 1, gin[0]->data, lda, ws);
    }
    if (gin[1] && m && n && k) {
        if (!p->trans_b) /* dB [K,N] = op(A)^T dY */
            cblas_sgemm(CblasRowMajor, p->trans_a ? CblasNoTrans : CblasTrans,
                        CblasNoTrans, (int)k, (int)n, (int)m, p->alpha, a->data,
                        lda, gy->data, (int)n, 1.0f, gin[1]->data, ldb);
        else /* dB [N,K] = dY^T op(A) */
            cblas_sgemm(CblasRowMajor, CblasTrans,
                        p->trans_a ? CblasTrans : CblasNoTrans, (int)n, (int)k,
                        (int)m, p->alpha, gy->data, (int)n, a->data, lda, 1.0f,
                        gin[1]->data, ldb);
    }
    if (n_in > 2 && gin[2]) {
        const sm_tensor *c = in[2];
        int64_t cm = c->ndim == 2 ? c->shape[0] : 1;
        int64_t cn = c->ndim >= 1 ? c->shape[c->ndim - 1] : 1;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                gin[2]->data[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)] +=
                    p->beta * gy->data[i * n + j];
    }
}

const sm_op_class sm_op_gemm = {
    .name = "Gemm",
    .params_size = sizeof(gemm),
    .attrs = gemm_attrs,
    .min_inputs = 2, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1,
    .parse = gemm_parse,
    .infer = gemm_infer,
    .workspace = gemm_workspace,
    .run = gemm_run,
    .flops = gemm_flops,
    .pack_size = gemm_pack_size,
    .pack = gemm_pack,
    .run_packed = gemm_run_packed,
    .backward = gemm_backward,
    .bwd_workspace = gemm_workspace,
};
