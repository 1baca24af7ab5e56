/* bench/explain_one: the embedded call that POST /v1/explain stands for,
 * one MNIST digit at a time in this process: its PNG bytes decoded and
 * preprocessed, the model's prediction as the target, the method run on
 * that one image, on one thread (a worker's --threads 1). p50, p99 and
 * mean over CALLS calls; bench/http_latency.sh prints them beside the
 * latency of the same work over HTTP. Run from the repository root:
 *
 *   build/bench/explain_one [METHOD,METHOD... [CALLS]]
 *
 * (sal,lime and 200 by default), on the first 50 digits of
 * data/mnist/test in name order, as bench/http_latency.sh sends them. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config/model_config.h"
#include "data/image.h"
#include "explain/explainer.h"
#include "model/model.h"
#include "model/score.h"
#include "util/file.h"

#define IMAGES 50

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The first IMAGES digits' PNG bytes in the order bench/http_latency.sh
 * sends them (the sorted list of data/mnist/test's PNGs). */
static int load_pngs(unsigned char **png, size_t *len)
{
    FILE *p = popen("ls data/mnist/test/*/*.png 2>/dev/null | LC_ALL=C sort | head -50", "r");
    char path[512];
    int n = 0;
    while (p && n < IMAGES && fgets(path, sizeof path, p)) {
        path[strcspn(path, "\n")] = '\0';
        if ((png[n] = sm_file_read(path, 1 << 20, &len[n], NULL)))
            n++;
    }
    if (p)
        pclose(p);
    return n;
}

int main(int argc, char **argv)
{
    const char *methods = argc > 1 ? argv[1] : "sal,lime";
    int calls = argc > 2 ? atoi(argv[2]) : 200;
    sm_err err = {0};
    openblas_set_num_threads(1);
    unsigned char *png[IMAGES];
    size_t len[IMAGES];
    int n_png = load_pngs(png, len);
    sm_model *m = sm_model_load_file("models/mnist_cnn.onnx", &err);
    sm_model_config *cfg = m ? sm_model_config_load("models/mnist_cnn.yaml", &err) : NULL;
    if (calls < 1 || n_png == 0 || !cfg || sm_vips_init(argv[0], &err)) {
        fprintf(stderr, "explain_one: %s\n", n_png == 0 ? "no data/mnist/test (make data)"
                                             : calls < 1 ? "CALLS: at least 1" : err.msg);
        return 1;
    }
    sm_model_set_threads(m, 1);
    sm_preproc pp;
    sm_model_config_preproc(cfg, &pp);
    int64_t shape[4] = {1, pp.channels, pp.height, pp.width};
    sm_tensor *x = sm_tensor_new(4, shape);
    float *map = malloc(sizeof(float) * (size_t)(pp.height * pp.width));
    double *lat = malloc(sizeof(double) * (size_t)calls);
    sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, &pp};
    char list[256];
    snprintf(list, sizeof list, "%s", methods);
    for (char *save, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        sm_explainer *e = sm_explainer_new(name, &err);
        if (!e) {
            fprintf(stderr, "explain_one: %s\n", err.msg);
            return 1;
        }
        for (int k = -1; k < calls; k++) { /* k = -1: a warm-up call */
            int i = (k < 0 ? 0 : k) % n_png;
            double t0 = bench_now();
            const sm_tensor *y;
            if (sm_image_load_buffer(png[i], len[i], "digit", &pp, x->data, &err) ||
                !(y = sm_model_forward(m, x->data, 1, &err))) {
                fprintf(stderr, "explain_one: %s\n", err.msg);
                return 1;
            }
            int target = (int)sm_model_argmax_row(y->data, y->shape[1]);
            const char *id = "digit";
            sm_explain_batch b = {x, &target, &id};
            sm_explain_out out = {.map = map};
            if (sm_explainer_run(e, &ctx, &b, &out, &err)) {
                fprintf(stderr, "explain_one: %s: %s\n", name, err.msg);
                return 1;
            }
            if (k >= 0)
                lat[k] = bench_now() - t0;
        }
        qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
        double sum = 0;
        for (int k = 0; k < calls; k++)
            sum += lat[k];
        printf("%s: embedded, one digit a call, 1 thread, %d calls: p50 %.2f ms, "
               "p99 %.2f ms, mean %.2f ms\n", name, calls, 1e3 * lat[calls / 2],
               1e3 * lat[(int)(0.99 * (calls - 1))], 1e3 * sum / calls);
        sm_explainer_destroy(&e);
    }
    for (int i = 0; i < n_png; i++)
        free(png[i]);
    free(lat);
    free(map);
    sm_tensor_destroy(&x);
    sm_model_config_destroy(&cfg);
    sm_model_destroy(&m);
    return 0;
}
