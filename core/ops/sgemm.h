/* salmap's own single-precision GEMM, for every product whose outputs
 * belong to one image each (the forward pass and input gradients of Conv,
 * Gemm and MatMul). OpenBLAS's kernels choose their summation order by
 * matrix shape, CPU and OPENBLAS_CORETYPE, so a row of its result can
 * change in the last bits with the rows around it; here each output is
 *
 *     acc = 0; for p = 0 .. k-1: acc = fma(A[i][p], B[p][j], acc)
 *     C[i][j] = alpha * acc            (accumulate = 0)
 *     C[i][j] = C[i][j] + alpha * acc  (accumulate = 1)
 *
 * whatever m, n, the tile it falls in, or the instruction set: AVX2 and
 * AVX-512 give the same bits. The baseline set (util/isa.h) has no fused
 * multiply-add and rounds the multiply and the add apart. */
#ifndef SM_OP_SGEMM_H
#define SM_OP_SGEMM_H

#include <stddef.h>
#include <stdint.h>

/* Floats of the workspace sm_sgemm needs for inner dimension k. */
size_t sm_sgemm_workspace(int64_t k);

/* C (m x n, row stride ldc) (+)= alpha * op(A) op(B), row-major: op(A) is
 * m x k (A itself, or its transpose when trans_a), op(B) k x n. ws holds
 * sm_sgemm_workspace(k) floats. Runs on the calling thread. */
void sm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b,
              int64_t ldb, int accumulate, float *c, int64_t ldc, float *ws);

/* The same product with op(B) packed beforehand, for a B that many
 * products share (a layer's weights): sm_sgemm_pack lays op(B) (k x n;
 * B itself, or its transpose when trans_b) out in bp, which holds
 * sm_sgemm_packed_size(k, n) floats, and sm_sgemm_packed computes C
 * (+)= alpha * op(A) op(B) from it, with the very bits of sm_sgemm. The
 * layout follows sm_isa(): pack and run under the same set. */
size_t sm_sgemm_packed_size(int64_t k, int64_t n);
void sm_sgemm_pack(int trans_b, const float *b, int64_t ldb, int64_t k,
                   int64_t n, float *bp);
void sm_sgemm_packed(int trans_a, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda,
                     const float *bp, int accumulate, float *c, int64_t ldc);

/* Where the general product's outputs go: index x of a dimension (a row
 * or a column of C) lies (x / group) * group_stride + (x % group) *
 * stride floats from C (group 0: no groups, x * stride). Conv stores
 * NCHW straight from a product over several images this way. */
typedef struct sm_sgemm_map {
    int64_t stride, group, group_stride;
} sm_sgemm_map;

/* The general product, of which sm_sgemm and sm_sgemm_packed are cases:
 * each output is out = alpha * acc (accumulate = 0) or C + alpha * acc,
 * then out + bias[i] (or + bias[j] with bias_per_col) when bias is not
 * NULL; out is stored in C at rows(i) + cols(j) and, when relu is not
 * NULL, its Relu (sm_op_relu1) at the same place from relu. op(A)'s
 * element (i, p) is a[i * a_rs + p * a_cs], or a[a_rows[i] + a_cols[p]]
 * when a_rows is not NULL (an indirect A: a convolution's pixels by its
 * kernel taps, read from the padded image with no im2col). op(B) is b
 * (ldb, trans_b as sm_sgemm, ws its workspace) or, when b is NULL, bp
 * from sm_sgemm_pack. */
typedef struct sm_sgemm_args {
    int64_t m, n, k;
    float alpha;
    const float *a;
    int64_t a_rs, a_cs;
    const int64_t *a_rows, *a_cols;
    const float *b;
    int64_t ldb;
    int trans_b;
    float *ws;
    const float *bp;
    float *c;
    sm_sgemm_map rows, cols;
    int accumulate;
    const float *bias;
    int bias_per_col;
    float *relu;
} sm_sgemm_args;

void sm_sgemm_run(const sm_sgemm_args *g);

#endif
