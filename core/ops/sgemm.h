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

#endif
