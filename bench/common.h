/* What the benchmarks share: a clock and this machine's sgemm rate,
 * measured in the same run as the figures it is the floor for. */
#ifndef SM_BENCH_COMMON_H
#define SM_BENCH_COMMON_H

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Best GFLOP/s of an n x n x n sgemm over repetitions for at least a
 * second, with OpenBLAS's current thread count: the best, since a VM's
 * neighbours only ever slow a run down. */
double bench_sgemm_rate(int n);

#endif
