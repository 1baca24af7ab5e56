/* What the benchmarks share: a clock and this machine's sgemm rate,
 * measured in the same run as the figures it is the floor for. */
#ifndef SM_BENCH_COMMON_H
#define SM_BENCH_COMMON_H

#include <stddef.h>
#include <sys/types.h>

#include "model/model.h"

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Best GFLOP/s of an n x n x n sgemm over repetitions for at least a
 * second, with OpenBLAS's current thread count: the best, since a VM's
 * neighbours only ever slow a run down. */
double bench_sgemm_rate(int n);

/* Images per second of f(u, n), a batch of n, as the best of 3 rounds of
 * at least one second and 3 calls each (the machine may be shared; ONNX
 * Runtime's side, bench/ort_forward.js, measures alike); -1 when a call
 * returns non-zero. Warm up (plan) before. */
double bench_best_rate(int (*f)(void *u, long n), void *u, long n);

/* One forward pass of m on the first n inputs of x, as bench_best_rate
 * calls it (u: a bench_fwd): by sm_model_infer (what predict and the
 * score-only methods run), or by sm_model_run when keep is 1 (what a
 * backward needs); 0, or -1 with the error on stderr. */
typedef struct bench_fwd {
    sm_model *m;
    const float *x;
    int keep;
} bench_fwd;
int bench_forward(void *u, long n);

/* Starts argv[0] (a path) with stdout and stderr into the file log; its
 * pid, or -1 with a message on stderr. */
pid_t bench_spawn(char *const argv[], const char *log);

/* The build folder whose bin/ holds the programs: $BUILD, else the folder
 * above argv0's bench/, else "build". */
void bench_build_dir(const char *argv0, char *build, size_t cap);

#endif
