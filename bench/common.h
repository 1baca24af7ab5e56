/* What the benchmarks share: a clock and this machine's sgemm rate,
 * measured in the same run as the figures it is the floor for. */
#ifndef SM_BENCH_COMMON_H
#define SM_BENCH_COMMON_H

#include <stddef.h>
#include <sys/types.h>

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Best GFLOP/s of an n x n x n sgemm over repetitions for at least a
 * second, with OpenBLAS's current thread count: the best, since a VM's
 * neighbours only ever slow a run down. */
double bench_sgemm_rate(int n);

/* Starts argv[0] (a path) with stdout and stderr into the file log; its
 * pid, or -1 with a message on stderr. */
pid_t bench_spawn(char *const argv[], const char *log);

/* The build folder whose bin/ holds the programs: $BUILD, else the folder
 * above argv0's bench/, else "build". */
void bench_build_dir(const char *argv0, char *build, size_t cap);

#endif
