/* bench/forward: images per second of the model engine at batch 1, 64 and
 * 256 on the LeNet-size, ResNet-18-shaped and MobileNet-shaped fixtures,
 * against the floor set by this machine's sgemm rate measured in the same
 * run, against ONNX Runtime (npm onnxruntime-node, CPU, installed into
 * build/ort by `make bench`) and against PyTorch on the same network when
 * Debian's python3-torch is installed.
 *
 *   ratio = achieved GFLOP/s / sgemm GFLOP/s   (100% = the floor)
 *   sal/ORT = the better of salmap's two img/s / ORT img/s on as many
 *             threads (at batch 1 a run splits layers of
 *             SM_PLAN_SPLIT_FLOPS and more, and those of
 *             SM_PLAN_SPLIT_TRY_FLOPS and more when its trials find it
 *             faster: model/exec.h; bench/split)
 *
 * The engine runs by sm_model_infer (as predict and the score-only
 * methods do: a batch in cache-sized chunks of images) on one thread,
 * then splitting the batch over as many threads as OpenBLAS would use
 * (the cores), and `run` by sm_model_run split so (what a backward
 * needs: the whole batch's activations kept); its GEMMs are its own
 * (ops/sgemm.h), so OpenBLAS's threads play no part. ONNX Runtime and
 * PyTorch get the same core count. The machine may be shared: only
 * ratios measured in the same run compare.
 *
 * Run from the repository root (make bench). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "model/model.h"

/* The first number a command prints, or 0 when it fails. */
static double command_rate(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return 0;
    double r = 0;
    if (fscanf(f, "%lf", &r) != 1)
        r = 0;
    if (pclose(f) != 0)
        r = 0;
    return r;
}

/* Images per second of PyTorch on the same network (TorchScript file saved
 * with the ONNX export), or 0 when torch is not installed or there is no
 * such file. */
static double torch_rate(const char *pt, int c, int h, int w, int batch,
                         int threads)
{
    if (!pt)
        return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 bench/torch_forward.py %s %d %d %d %d %d "
             "2>/dev/null", pt, c, h, w, batch, threads);
    return command_rate(cmd);
}

/* Images per second of ONNX Runtime on the ONNX file itself, or 0 when
 * node or onnxruntime-node is missing. */
static double ort_rate(const char *onnx, int c, int h, int w, int batch,
                       int threads)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "node bench/ort_forward.js %s %d %d %d %d %d 2>/dev/null", onnx,
             c, h, w, batch, threads);
    return command_rate(cmd);
}

/* Microseconds an image of model m when batches take sizes sizes[0..k)
 * in turn (more distinct sizes than plans kept: a plan is built for
 * nearly every run, as for an adaptive method's rounds), at least a
 * second of runs. */
static double varying_us(sm_model *m, const float *x, const int *sizes,
                         int k)
{
    sm_err err = {0};
    long imgs = 0;
    int runs = 0;
    double t0 = bench_now(), t;
    do {
        int n = sizes[runs++ % k];
        sm_model_forward(m, x, n, &err);
        imgs += n;
        t = bench_now() - t0;
    } while (t < 1.0 || runs < 2 * k);
    return 1e6 * t / (double)imgs;
}

typedef struct bench_model {
    const char *name, *onnx, *pt;
    int c, h, w;
} bench_model;

int main(void)
{
    int threads = openblas_get_num_threads();
    double peak = bench_sgemm_rate(1024);
    printf("sgemm 1024^3: %.1f GFLOP/s (OpenBLAS %s kernels, %d threads)\n",
           peak, openblas_get_corename(), threads);
    if (command_rate("/usr/bin/python3 -c 'import torch; print(1)' "
                     "2>/dev/null") <= 0)
        printf("PyTorch: skipped (python3-torch is not installed)\n");
    if (command_rate("node -e \"require(require('path').resolve("
                     "(process.env.ORT_DIR||'build/ort')+'/node_modules/onnxruntime-node'));"
                     "console.log(1)\" 2>/dev/null") <= 0)
        printf("ONNX Runtime: skipped (build/ort/node_modules/onnxruntime-node "
               "missing: make bench installs it with npm)\n");
    const bench_model models[] = {
        {"lenet", "tests/fixtures/lenet.onnx", "tests/fixtures/lenet.pt", 1, 28, 28},
        {"resnet18s", "tests/fixtures/resnet18s.onnx", "tests/fixtures/resnet18s.pt", 3, 64, 64},
        {"mobilenets", "tests/fixtures/mobilenets.onnx", "tests/fixtures/mobilenets.pt", 3, 64, 64},
    };
    const int batches[] = {1, 64, 256};
    printf("%-10s %5s %9s | %9s %5s | %9s %5s | %9s | %9s %7s | %9s %8s\n",
           "model", "batch", "MFLOP/img", "1thr img/s", "sgemm", "split img/s",
           "sgemm", "run img/s", "ORT img/s", "sal/ORT", "torch", "best/torch");
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        const bench_model *bm = &models[mi];
        sm_err err = {0};
        sm_model *m = sm_model_load_file(bm->onnx, &err);
        if (!m) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
            int n = batches[bi];
            size_t len = (size_t)n * (size_t)(bm->c * bm->h * bm->w);
            float *x = malloc(len * sizeof(float));
            for (size_t i = 0; i < len; i++)
                x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
            /* 1thr and split by sm_model_infer; run: split by
             * sm_model_run, which keeps the whole batch's activations */
            double ips[3], flops = 0;
            for (int mode = 0; mode < 3; mode++) {
                sm_model_set_threads(m, mode ? threads : 1);
                bench_fwd f = {m, x, mode == 2};
                if (bench_forward(&f, n)) /* warm-up, plan */
                    return 1;
                flops = sm_model_flops(m);
                ips[mode] = bench_best_rate(bench_forward, &f, n);
            }
            double per = flops / n;
            double orr = ort_rate(bm->onnx, bm->c, bm->h, bm->w, n, threads);
            double tr = torch_rate(bm->pt, bm->c, bm->h, bm->w, n, threads);
            double best = ips[0] > ips[1] ? ips[0] : ips[1];
            printf("%-10s %5d %9.3f | %9.0f %4.0f%% | %9.0f %4.0f%% | %9.0f | ",
                   bm->name, n, per / 1e6, ips[0], 100.0 * ips[0] * per / 1e9 / peak,
                   ips[1], 100.0 * ips[1] * per / 1e9 / peak, ips[2]);
            if (orr > 0)
                printf("%9.0f %7.2f | ", orr, best / orr);
            else
                printf("%9s %7s | ", "-", "-");
            if (tr > 0)
                printf("%9.0f %7.2fx\n", tr, best / tr);
            else
                printf("%9s %8s\n", "-", "-");
            fflush(stdout);
            free(x);
        }
        /* batches of changing size (adaptive rounds) against a fixed one
         * of about their mean */
        static const int sizes[] = {5, 13, 37, 64, 77, 91, 100, 23, 49, 71,
                                    88, 97};
        static const int fixed[] = {60};
        size_t len = 100 * (size_t)(bm->c * bm->h * bm->w);
        float *x = malloc(len * sizeof(float));
        for (size_t i = 0; i < len; i++)
            x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
        sm_model_set_threads(m, threads);
        double vary = varying_us(m, x, sizes, 12), fix = varying_us(m, x, fixed, 1);
        printf("%-10s batches of 12 sizes 5-100 in turn: %.1f us/img; fixed 60: "
               "%.1f us/img; ratio %.2f\n", bm->name, vary, fix, vary / fix);
        free(x);
        sm_model_destroy(&m);
    }
    return 0;
}
