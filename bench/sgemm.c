/* bench/sgemm: what owning the GEMM costs. salmap's sm_sgemm (one fused
 * multiply-add chain an output, the same bits whatever the batch or CPU:
 * ops/sgemm.h) against OpenBLAS's cblas_sgemm on one thread, on the
 * products of the models salmap runs: LeNet's fully connected layers at
 * batch 64 and 256 (Gemm, B transposed), the im2col GEMMs (weights x
 * columns) of convolutions that do not run direct (strided, 1 x 1, planes
 * under 64 pixels: a ResNet-18's) with as many images side by side as
 * core/ops/conv.c puts in one GEMM, and one image alone (a batch of 1, the
 * narrowest), and a square 512.
 *
 *   ratio = sm_sgemm GFLOP/s / OpenBLAS GFLOP/s   (1 = no cost)
 *
 * Both measured alternately in the same run, best of several repetitions
 * each (a VM's neighbours only ever slow a run down). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "ops/sgemm.h"
#include "util/isa.h"

typedef struct shape {
    const char *what;
    int tb, m, n, k;
} shape;

/* Best GFLOP/s of one product over repetitions for about 0.2 s. */
static double rate(int ours, const shape *s, const float *a, const float *b,
                   float *c, float *ws)
{
    double best = 0, start = bench_now();
    for (int r = 0; r < 5 || bench_now() - start < 0.2; r++) {
        double t0 = bench_now();
        if (ours)
            sm_sgemm(0, s->tb, s->m, s->n, s->k, 1.0f, a, s->k, b,
                     s->tb ? s->k : s->n, 0, c, s->n, ws);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k,
                        1.0f, a, s->k, b, s->tb ? s->k : s->n, 0.0f, c, s->n);
        double g = 2.0 * s->m * (double)s->n * s->k / (bench_now() - t0) / 1e9;
        if (g > best)
            best = g;
    }
    return best;
}

int main(void)
{
    const shape shapes[] = {
        {"lenet fc1, batch 64", 1, 64, 120, 256},
        {"lenet fc2, batch 64", 1, 64, 84, 120},
        {"lenet fc1, batch 256", 1, 256, 120, 256},
        {"conv 7x7/2 3->64 to 32x32", 0, 64, 1024, 147},
        {"conv 3x3/2 64->128 to 8x8, 5 img", 0, 128, 320, 576},
        {"conv 1x1/2 128->256 to 4x4, 42 img", 0, 256, 672, 128},
        {"conv 3x3 256->256 on 4x4, 6 img", 0, 256, 96, 2304},
        {"conv 3x3 512->512 on 2x2, 12 img", 0, 512, 48, 4608},
        {"conv 3x3 256->256 on 4x4, 1 img", 0, 256, 16, 2304},
        {"square 512", 0, 512, 512, 512},
    };
    openblas_set_num_threads(1);
    printf("one thread; sm_sgemm on %s, OpenBLAS %s kernels\n",
           sm_isa_name(sm_isa()), openblas_get_corename());
    printf("%-36s %14s | %9s %9s | %6s\n", "product", "m x n x k", "ours",
           "OpenBLAS", "ratio");
    double logsum = 0;
    int count = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        float *a = malloc(sizeof(float) * (size_t)s->m * (size_t)s->k);
        float *b = malloc(sizeof(float) * (size_t)s->k * (size_t)s->n);
        float *c = malloc(sizeof(float) * (size_t)s->m * (size_t)s->n);
        float *ws = malloc(sizeof(float) * sm_sgemm_workspace(s->k));
        if (!a || !b || !c || !ws) {
            fprintf(stderr, "bench: out of memory\n");
            return 1;
        }
        for (size_t q = 0; q < (size_t)s->m * (size_t)s->k; q++)
            a[q] = (float)(q % 7) * 0.1f;
        for (size_t q = 0; q < (size_t)s->k * (size_t)s->n; q++)
            b[q] = (float)(q % 5) * 0.1f;
        double ours = 0, blas = 0;
        for (int round = 0; round < 3; round++) { /* alternate */
            double o = rate(1, s, a, b, c, ws), r = rate(0, s, a, b, c, ws);
            ours = o > ours ? o : ours;
            blas = r > blas ? r : blas;
        }
        char dims[32];
        snprintf(dims, sizeof dims, "%dx%dx%d", s->m, s->n, s->k);
        printf("%-36s %14s | %9.1f %9.1f | %6.2f\n", s->what, dims, ours, blas,
               ours / blas);
        logsum += __builtin_log(ours / blas);
        count++;
        free(a), free(b), free(c), free(ws);
    }
    printf("geometric mean ratio: %.2f\n", __builtin_exp(logsum / count));
    return 0;
}
