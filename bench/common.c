#include "common.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/clock.h"

double bench_now(void)
{
    return sm_clock_now();
}

/* Best GFLOP/s of a square sgemm over repetitions for at least a second:
 * the best, since a VM's neighbours only ever slow a run down. */
double bench_sgemm_rate(int n)
{
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)n);
    float *b = malloc(sizeof(float) * (size_t)n * (size_t)n);
    float *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    if (!a || !b || !c) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double best = 0, start = bench_now();
    for (int r = 0; r < 8 || bench_now() - start < 1.0; r++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a,
                    n, b, n, 0.0f, c, n);
        double g = 2.0 * n * (double)n * n / (bench_now() - t0) / 1e9;
        if (g > best)
            best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

