/* bench/explain: images per second of every saliency method on the MNIST
 * model (LeNet-size), batch 256, beside the floor the model's FLOPs and
 * this machine's sgemm rate (measured in the same run) imply:
 *
 *   floor img/s = sgemm rate / (evals per image x FLOPs per evaluation)
 *
 * where an evaluation with a backward pass costs twice the forward FLOPs
 * (the input gradient of a Conv or Gemm costs as much as the layer) and a
 * forward-only one its FLOPs. The gradient and relevance methods'
 * targets: sal and grad >= 15,000 img/s, intg (50 steps) >= 300 img/s,
 * elrp within 1.5x of sal's time.
 * Run from the repository root (make bench):
 *
 *   build/bench/explain [MODEL.onnx [METHOD,METHOD...]]
 *
 * the second argument keeps only the methods named (all by default).
 * abele runs on the autoencoder models/mnist_aae.yaml (skipped without
 * it, or for another model's input size); its floor adds a decoder run
 * to every evaluation. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "config/aae_config.h"
#include "data/dataset.h"
#include "explain/explainer.h"
#include "explain/job.h"
#include "model/model.h"
#include "model/score.h"
#include "util/rng.h"

#define N 256

/* Real MNIST test digits when data/ is there (superpixel methods behave
 * differently on noise), pixels scaled to [0, 1] as configs/mnist.yaml
 * says. 0 when loaded. */
static int load_digits(sm_tensor *x)
{
    sm_err err = {0};
    if (x->shape[1] != 1 || x->shape[2] != 28 || x->shape[3] != 28 ||
        sm_vips_init(NULL, &err))
        return -1;
    sm_dataset *ds = sm_dataset_open("data/mnist/test", &err);
    if (!ds || sm_dataset_count(ds) < N) {
        sm_dataset_destroy(&ds);
        return -1;
    }
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28);
    /* every 7th digit, for a mix of classes */
    int rc = 0;
    for (int i = 0; i < N && rc == 0; i++)
        rc = sm_dataset_load(ds, (size_t)i * 7 % sm_dataset_count(ds), &pp,
                             x->data + (int64_t)i * 784, &err);
    sm_dataset_destroy(&ds);
    return rc;
}

/* 1 when name is one of the comma-separated names in list. */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p += len + (e ? 1 : 0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "models/mnist_cnn.onnx";
    if (access(path, R_OK) != 0)
        path = "tests/fixtures/mnist_lenet_trained.onnx";
    sm_err err = {0};
    double peak = bench_sgemm_rate(1024);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(1);
    sm_model *m = sm_model_load_file(path, &err);
    if (!m) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    sm_model_set_threads(m, cores > 0 ? (int)cores : 1);
    int64_t shape[SM_MAX_DIMS];
    sm_model_input_shape(m, 0, shape);
    shape[0] = N;
    sm_tensor *x = sm_tensor_new(4, shape);
    if (load_digits(x))
        for (int64_t i = 0; i < sm_tensor_numel(x); i++)
            x->data[i] = (float)sm_rng_uniform(1, (uint64_t)i);
    if (!sm_model_forward(m, x->data, N, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double fwd = sm_model_flops(m) / N;
    printf("model %s: %.3f MFLOP/img forward; sgemm %.1f GFLOP/s (%s kernels)\n",
           path, fwd / 1e6, peak, openblas_get_corename());
    printf("%-11s %10s %10s %12s %8s\n", "method", "img/s", "evals/img",
           "floor img/s", "of floor");
    int *target = calloc(N, sizeof(int));
    const char **ids = malloc(sizeof(char *) * N);
    char (*names)[16] = malloc(16 * N);
    sm_explain_out *out = calloc(N, sizeof *out);
    float *maps = malloc(sizeof(float) * (size_t)(N * shape[2] * shape[3]));
    /* targets: the predicted classes, as a job's default */
    const sm_tensor *y = sm_model_forward(m, x->data, N, &err);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "img%d", i);
        ids[i] = names[i];
        target[i] = (int)sm_model_argmax_row(y->data + i * y->shape[1],
                                             y->shape[1]);
        out[i].map = maps + (int64_t)i * shape[2] * shape[3];
    }
    sm_preproc pp;
    sm_preproc_init(&pp, (int)shape[1], (int)shape[2], (int)shape[3]);
    sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, &pp};
    /* abele's autoencoder, when there is one for this input size */
    sm_aae_config acfg;
    sm_aae_models am = {0};
    sm_explain_aux aux[3];
    double dec_fwd = 0;
    int have_aae = sm_aae_config_load("models/mnist_aae.yaml", &acfg, &err) == 0;
    if (have_aae) {
        have_aae = acfg.channels == shape[1] && acfg.height == shape[2] &&
                   acfg.width == shape[3] &&
                   sm_aae_config_models(&acfg, &am, &err) == 0;
        if (have_aae) {
            sm_model *net[3] = {am.encoder, am.decoder, am.discriminator};
            const char *nn[3] = {"aae_encoder", "aae_decoder",
                                 "aae_discriminator"};
            for (int k = 0; k < 3; k++) {
                sm_model_set_threads(net[k], cores > 0 ? (int)cores : 1);
                aux[k] = (sm_explain_aux){nn[k], net[k]};
            }
            float *z = calloc((size_t)(N * acfg.latent), sizeof(float));
            if (z && sm_model_forward(am.decoder, z, N, &err))
                dec_fwd = sm_model_flops(am.decoder) / N;
            free(z);
            ctx.aux = aux, ctx.n_aux = 3;
        }
        sm_aae_config_free(&acfg);
    }
    const char *only = argc > 2 ? argv[2] : NULL;
    for (const sm_explainer_class *const *c = sm_explainer_all(); *c; c++) {
        if (only && !listed(only, (*c)->name))
            continue;
        int abele = strcmp((*c)->name, "abele") == 0;
        if (abele && !have_aae) {
            printf("%-11s (no models/mnist_aae.yaml for this model: skipped)\n",
                   (*c)->name);
            continue;
        }
        sm_explainer *e = sm_explainer_new((*c)->name, &err);
        /* the model-agnostic methods' targets are for RISE with 1,000
         * masks (4,000 by default) */
        if (e && strcmp((*c)->name, "rise") == 0)
            sm_explainer_set(e, "masks", "1000", &err);
        /* and LIME and KernelSHAP with 1,000 samples (KernelSHAP's budget
         * is capped at 2^M - 2 coalitions of M superpixels) */
        if (e && strcmp((*c)->name, "lime") == 0)
            sm_explainer_set(e, "samples", "1000", &err);
        if (e && strcmp((*c)->name, "kernelshap") == 0)
            sm_explainer_set(e, "budget", "1000", &err);
        /* the rule methods hide superpixels with 0, as MNIST's runs do */
        if (e && (strcmp((*c)->name, "anchor") == 0 ||
                  strcmp((*c)->name, "lore") == 0))
            sm_explainer_set(e, "hide", "constant", &err);
        /* A first run on 4 images tells the method's evaluations per image;
         * the timed runs then take about 40,000 evaluations' worth of
         * images (all 256 for the single-pass methods). */
        sm_tensor few = *x;
        few.owns = 0;
        few.shape[0] = 4;
        sm_explain_batch b4 = {&few, target, ids};
        if (!e || sm_explainer_run(e, &ctx, &b4, out, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        long e4 = (out[0].evals + out[1].evals + out[2].evals + out[3].evals) / 4;
        int64_t n = 40000 / (e4 > 0 ? e4 : 1);
        n = n < 4 ? 4 : n > N ? N : n;
        sm_tensor some = *x;
        some.owns = 0;
        some.shape[0] = n;
        sm_explain_batch b = {&some, target, ids};
        /* Single-pass methods get an untimed run at the timed batch
         * first: the first backward at a batch allocates the model's
         * gradient buffers, and their first touch cost sal, timed first,
         * 60% of its figure (a run of the others takes seconds). */
        if (e4 <= 1)
            sm_explainer_run(e, &ctx, &b, out, &err);
        int runs = 0;
        double t0 = bench_now(), t;
        do {
            sm_explainer_run(e, &ctx, &b, out, &err);
            runs++;
            t = bench_now() - t0;
        } while (t < 1.0 || runs < 2);
        double ips = runs * (double)n / t, evals = 0;
        for (int64_t i = 0; i < n; i++) /* adaptive methods: each its own */
            evals += (double)out[i].evals / (double)n;
        double per = fwd * ((*c)->backward ? 2 : 1) + (abele ? dec_fwd : 0);
        double floor_ips = peak * 1e9 / (evals * per);
        printf("%-11s %10.1f %10.0f %12.1f %7.0f%%  (%.1f ms/img)\n", (*c)->name,
               ips, evals, floor_ips, 100 * ips / floor_ips, 1000 / ips);
        fflush(stdout);
        sm_explainer_destroy(&e);
    }
    free(target);
    free(ids);
    free(names);
    free(out);
    free(maps);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_aae_models_free(&am);
    return 0;
}
