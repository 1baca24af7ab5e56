#include "common.h"

#include <cblas.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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


double bench_best_rate(int (*f)(void *u, long n), void *u, long n)
{
    double best = 0;
    for (int round = 0; round < 3; round++) {
        int runs = 0;
        double t0 = bench_now(), t;
        do {
            if (f(u, n))
                return -1;
            runs++;
            t = bench_now() - t0;
        } while (t < 1.0 || runs < 3);
        if (runs * (double)n / t > best)
            best = runs * (double)n / t;
    }
    return best;
}

int bench_forward(void *u, long n)
{
    bench_fwd *f = u;
    sm_err err;
    if ((f->keep ? sm_model_forward : sm_model_forward_infer)(f->m, f->x, n,
                                                              &err))
        return 0;
    fprintf(stderr, "bench: %s\n", err.msg);
    return -1;
}

pid_t bench_spawn(char *const argv[], const char *log)
{
    extern char **environ;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "bench: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

void bench_build_dir(const char *argv0, char *build, size_t cap)
{
    const char *env = getenv("BUILD");
    if (env && *env) {
        snprintf(build, cap, "%s", env);
        return;
    }
    /* BUILD/bench/<name> */
    snprintf(build, cap, "%s", argv0);
    char *slash = strrchr(build, '/');
    if (slash) {
        *slash = '\0';
        slash = strrchr(build, '/');
        const char *last = slash ? slash + 1 : build;
        if (strcmp(last, "bench") == 0) {
            if (slash)
                *slash = '\0';
            else
                snprintf(build, cap, ".");
            return;
        }
    }
    snprintf(build, cap, "build");
}
