/* bench/process: whole salmap commands against the engine's steady state
 * measured in the same run. A command costs loading and planning the
 * model, reading and preprocessing its inputs and writing its outputs on
 * top of the engine's work; this shows how much:
 *
 *   predict --input    25,600 LeNet inputs from a .npy
 *                      (tests/fixtures/lenet.onnx, batch 256)
 *   predict --dataset  the PNGs of data/mnist/test (models/mnist_cnn.onnx)
 *   explain sal        the first 1,000 of them, --no-metrics --no-png,
 *                      embedded (the default) and --direct
 *
 * each timed from spawn to exit, best of 3 runs (the machine may be
 * shared), against the engine on inputs already in memory, on the same
 * cores: sm_model_forward on batches of 256 (predict), sal's explainer on
 * batches of 64 (explain's default batch). Prints images per second of
 * both and the ratio command / engine.
 *
 * Run from the repository root (make bench); the commands are taken from
 * $BUILD/bin (bench_build_dir). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "explain/explainer.h"
#include "io/npy.h"
#include "model/model.h"
#include "util/file.h"
#include "util/rng.h"

#define N_INPUT 25600
#define N_EXPLAIN 1000
#define ROUNDS 3

static char build[512], tmp[256];
static long cores = 1;

/* Seconds of the best of ROUNDS runs of the command argv (its output in
 * tmp/NAME.log; out, when set, removed before each run), or -1 when a run
 * failed. */
static double best_run(const char *name, char *const argv[], const char *out)
{
    char log[512];
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    double best = -1;
    for (int r = 0; r < ROUNDS; r++) {
        if (out)
            sm_file_remove_tree(out);
        double t0 = bench_now();
        pid_t pid = bench_spawn(argv, log);
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench: %s failed (see %s)\n", name, log);
            return -1;
        }
        double t = bench_now() - t0;
        if (best < 0 || t < best)
            best = t;
    }
    return best;
}

typedef struct sal {
    sm_explainer *e;
    sm_explain_ctx *ctx;
    sm_explain_batch *b;
    sm_explain_out *out;
} sal;

static int run_sal(void *u, long n)
{
    (void)n; /* the batch's */
    sal *s = u;
    sm_err err;
    if (sm_explainer_run(s->e, s->ctx, s->b, s->out, &err) == 0)
        return 0;
    fprintf(stderr, "bench: %s\n", err.msg);
    return -1;
}

/* The engine's forward rate for the model at path, batch n, on the cores;
 * x: n inputs. */
static double forward_rate(const char *path, const float *x, int64_t n)
{
    sm_err err;
    sm_model *m = sm_model_load_file(path, &err);
    if (!m) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return -1;
    }
    sm_model_set_threads(m, (int)cores);
    bench_fwd f = {m, x, 0};
    double r = bench_forward(&f, n) ? -1 : bench_best_rate(bench_forward, &f, n);
    sm_model_destroy(&m);
    return r;
}

/* sal's rate on batches of 64 MNIST-size inputs x, as explain runs it
 * (one worker with the cores). */
static double sal_rate(const float *x)
{
    enum { B = 64 };
    sm_err err;
    sm_model *m = sm_model_load_file("models/mnist_cnn.onnx", &err);
    sm_explainer *e = m ? sm_explainer_new("sal", &err) : NULL;
    if (!e) {
        fprintf(stderr, "bench: %s\n", err.msg);
        sm_model_destroy(&m);
        return -1;
    }
    sm_model_set_threads(m, (int)cores);
    int64_t shape[4] = {B, 1, 28, 28};
    sm_tensor t = {0};
    t.ndim = 4;
    memcpy(t.shape, shape, sizeof shape);
    t.data = (float *)x;
    int target[B] = {0};
    const char *ids[B];
    char names[B][8];
    float *maps = malloc(sizeof(float) * B * 784);
    if (!maps) {
        sm_explainer_destroy(&e);
        sm_model_destroy(&m);
        return -1;
    }
    sm_explain_out out[B];
    memset(out, 0, sizeof out);
    for (int i = 0; i < B; i++) {
        snprintf(names[i], sizeof names[i], "i%d", i);
        ids[i] = names[i];
        out[i].map = maps + i * 784;
    }
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28);
    sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, &pp};
    sm_explain_batch b = {&t, target, ids};
    sal s = {e, &ctx, &b, out};
    double r = run_sal(&s, B) ? -1 : bench_best_rate(run_sal, &s, B);
    free(maps);
    sm_explainer_destroy(&e);
    sm_model_destroy(&m);
    return r;
}

static void line(const char *what, double n, double secs, double engine)
{
    if (secs <= 0 || engine <= 0) {
        printf("%-28s %10s %12.0f %8s\n", what, "failed", engine, "-");
        return;
    }
    printf("%-28s %10.0f %12.0f %8.2f\n", what, n / secs, engine, n / secs / engine);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_build_dir(argv[0], build, sizeof build);
    cores = sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores < 1 ? 1 : cores;
    openblas_set_num_threads(1);
    snprintf(tmp, sizeof tmp, "/tmp/salmap-bench-process-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("bench: mkdtemp");
        return 1;
    }
    /* the inputs: uniform in [0, 1), as preprocessed pixels */
    int64_t shape[4] = {N_INPUT, 1, 28, 28};
    sm_tensor *x = sm_tensor_new(4, shape);
    for (int64_t i = 0; x && i < sm_tensor_numel(x); i++)
        x->data[i] = (float)sm_rng_uniform(3, (uint64_t)i);
    char npy[512], ynpy[512], csv[512], out[512], salmap[600];
    snprintf(npy, sizeof npy, "%s/x.npy", tmp);
    snprintf(ynpy, sizeof ynpy, "%s/y.npy", tmp);
    snprintf(csv, sizeof csv, "%s/preds.csv", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(salmap, sizeof salmap, "%s/bin/salmap", build);
    sm_err err;
    if (!x || sm_npy_write(npy, x, &err)) {
        fprintf(stderr, "bench: %s\n", x ? err.msg : "out of memory");
        return 1;
    }
    printf("%d cores; commands from %s\n", (int)cores, salmap);
    printf("%-28s %10s %12s %8s\n", "command", "img/s", "engine img/s", "ratio");
    char n_explain[16];
    snprintf(n_explain, sizeof n_explain, "%d", N_EXPLAIN);

    char *predict_input[] = {salmap, "predict", "--model", "tests/fixtures/lenet.onnx",
                             "--input", npy, "--out", ynpy, NULL};
    line("predict --input (lenet)", N_INPUT, best_run("predict-input", predict_input, NULL),
         forward_rate("tests/fixtures/lenet.onnx", x->data, 256));

    char *predict_dataset[] = {salmap, "predict", "--model", "models/mnist_cnn.onnx",
                               "--config", "models/mnist_cnn.yaml", "--dataset",
                               "data/mnist/test", "--out", csv, NULL};
    size_t len;
    char log[512];
    snprintf(log, sizeof log, "%s/predict-dataset.log", tmp);
    double t = best_run("predict-dataset", predict_dataset, NULL);
    /* the command says how many images it classified */
    char *text = (char *)sm_file_read(log, 1 << 16, &len, &err);
    const char *at = text ? strstr(text, "salmap predict: ") : NULL;
    size_t n_test = at ? strtoul(at + 16, NULL, 10) : 0;
    free(text);
    line("predict --dataset (cnn)", (double)n_test, n_test ? t : -1,
         forward_rate("models/mnist_cnn.onnx", x->data, 256));

    double sal = sal_rate(x->data);
    char *explain[] = {salmap, "explain", "--model", "models/mnist_cnn.onnx",
                       "--config", "models/mnist_cnn.yaml", "--dataset",
                       "data/mnist/test", "--methods", "sal", "--out", out,
                       "--limit", n_explain, "--no-metrics", "--no-png", NULL,
                       NULL};
    line("explain sal (embedded)", N_EXPLAIN, best_run("explain", explain, out), sal);
    explain[16] = "--direct";
    line("explain sal --direct", N_EXPLAIN, best_run("explain-direct", explain, out), sal);

    sm_tensor_destroy(&x);
    sm_file_remove_tree(tmp);
    return 0;
}
