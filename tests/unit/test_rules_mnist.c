/* Anchor and LORE on the shipped MNIST model (models/mnist_cnn.onnx), the
 * first 100 test digits, hidden superpixels 0 (MNIST's runs), checked
 * outside the methods with the model itself:
 * - each anchor's precision, estimated again from 2,000 fresh samples (the
 *   anchor's superpixels shown, every other one shown with probability
 *   0.5, drawn from a stream the method never uses), is at least the lower
 *   bound the method reported for >= 90% of the digits (delta = 0.1);
 * - each of lore's counterfactuals, applied to the digit (its mask from
 *   the record), changes the model's label;
 * - abele on the shipped autoencoder (models/mnist_aae.yaml): every
 *   exemplar lies in x's rule and its decoded image keeps x's label, every
 *   counter-exemplar's and every kept counterfactual's decoded image does
 *   not (decoded and labelled here), and the tree's fidelity on its
 *   neighbourhood is >= 0.9 for >= 90 of the digits.
 * Needs data/mnist (make data), as `make test` provides. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/aae_config.h"
#include "data/dataset.h"
#include "explain/explainer.h"
#include "model/model.h"
#include "model/score.h"
#include "tmodel.h"
#include "util/rng.h"

#define MODEL "models/mnist_cnn.onnx"
#define DIGITS 100
#define HW 784

/* The first n test digits (configs/mnist.yaml: pixel / 255). */
static sm_tensor *digits(int n)
{
    sm_err err = {0};
    struct stat st;
    if (stat("data/mnist/test", &st) != 0)
        cr_skip_test("data/mnist/test is missing: make data");
    sm_dataset *ds = sm_dataset_open("data/mnist/test", &err);
    cr_assert_not_null(ds, "%s", err.msg);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){n, 1, 28, 28});
    for (int i = 0; i < n; i++)
        cr_assert_eq(sm_dataset_load(ds, (size_t)i, &pp, x->data + i * HW,
                                     &err),
                     0, "%s", err.msg);
    sm_dataset_destroy(&ds);
    return x;
}

/* The model's labels of the n images at x. */
static void labels(sm_model *m, const float *x, int64_t n, int *label)
{
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, x, n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    for (int64_t i = 0; i < n; i++)
        label[i] = (int)sm_model_argmax_row(y->data + i * y->shape[1],
                                            y->shape[1]);
}

/* Digit x (HW) with superpixel j of seg shown where z[j], else 0. */
static void apply(const float *x, const float *seg, const uint8_t *z,
                  float *dst)
{
    for (int q = 0; q < HW; q++)
        dst[q] = z[(int)seg[q]] ? x[q] : 0;
}

static const char *const hide0[] = {"hide=constant", "hide_value=0", NULL};

/* A method run on the first DIGITS digits, predicted classes as targets,
 * hidden superpixels 0. */
typedef struct mnist_run {
    sm_tensor *x;
    sm_model *m;
    int target[DIGITS];
    char idbuf[DIGITS][24]; /* "digit" and any int */
    const char *ids[DIGITS];
    float *maps;
    sm_explain_out out[DIGITS];
} mnist_run;

static mnist_run *run_with(const char *method, const char *const *set,
                           const sm_explain_aux *aux, int n_aux)
{
    mnist_run *r = calloc(1, sizeof *r);
    sm_err err = {0};
    cr_assert_not_null(r);
    r->x = digits(DIGITS);
    r->m = sm_model_load_file(MODEL, &err);
    cr_assert_not_null(r->m, "%s", err.msg);
    sm_model_set_threads(r->m, 2);
    labels(r->m, r->x->data, DIGITS, r->target);
    for (int i = 0; i < DIGITS; i++) {
        snprintf(r->idbuf[i], sizeof r->idbuf[i], "digit%d", i);
        r->ids[i] = r->idbuf[i];
    }
    r->maps = malloc(sizeof(float) * DIGITS * HW);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28);
    sm_explain_ctx ctx = {r->m, 0, 0, 0, 0, aux, n_aux, &pp};
    cr_assert_eq(tmodel_explain(method, set, &ctx, r->x, r->target, r->ids,
                                r->maps, r->out, &err),
                 0, "%s", err.msg);
    return r;
}

static mnist_run *run_method(const char *method)
{
    return run_with(method, hide0, NULL, 0);
}

static void run_free(mnist_run *r)
{
    sm_explain_out_free(r->out, DIGITS);
    free(r->maps);
    sm_model_destroy(&r->m);
    sm_tensor_destroy(&r->x);
    free(r);
}

Test(rules_mnist, anchor_precision_holds_on_fresh_samples, .timeout = 600)
{
    mnist_run *r = run_method("anchor");
    sm_model *m = r->m;
    const sm_tensor *x = r->x;
    const int *target = r->target;
    const float *maps = r->maps;
    sm_explain_out *out = r->out;
    /* The model is deterministic: each distinct mask among the fresh
     * draws is labelled once (digits have a few superpixels). */
    enum { FRESH = 2000 };
    float *batch = malloc(sizeof(float) * FRESH * HW);
    int *lab = malloc(sizeof(int) * FRESH), held = 0;
    uint32_t code[FRESH], uniq[FRESH];
    uint64_t key = sm_rng_key(7, (const char *[]){"fresh samples", NULL});
    for (int i = 0; i < DIGITS; i++) {
        const float *xi = x->data + i * HW, *map = maps + i * HW;
        const sm_record_array *seg = tmodel_array(&out[i].record, "segments");
        double lb;
        cr_assert_not_null(seg);
        cr_assert_eq(sm_record_number(&out[i].record, "precision_lb", &lb), 1);
        int d = 0;
        for (int q = 0; q < HW; q++)
            d = (int)seg->data[q] + 1 > d ? (int)seg->data[q] + 1 : d;
        cr_assert(d <= 31, "%d superpixels", d);
        uint32_t in = 0;
        for (int q = 0; q < HW; q++) {
            cr_assert(map[q] == 0 || map[q] == 1);
            in |= (uint32_t)(map[q] == 1) << (int)seg->data[q];
        }
        int n_uniq = 0;
        for (int k = 0; k < FRESH; k++) {
            uint64_t s = (uint64_t)(i * FRESH + k) * (uint64_t)d;
            code[k] = in;
            for (int j = 0; j < d; j++)
                code[k] |= (uint32_t)(sm_rng_uniform(key, s + (uint64_t)j) <
                                      0.5) << j;
            int u = 0;
            while (u < n_uniq && uniq[u] != code[k])
                u++;
            if (u == n_uniq)
                uniq[n_uniq++] = code[k];
        }
        for (int u = 0; u < n_uniq; u++) {
            uint8_t z[32];
            for (int j = 0; j < d; j++)
                z[j] = uniq[u] >> j & 1;
            apply(xi, seg->data, z, batch + u * HW);
        }
        labels(m, batch, n_uniq, lab);
        long keep = 0;
        for (int k = 0; k < FRESH; k++) {
            int u = 0;
            while (uniq[u] != code[k])
                u++;
            keep += lab[u] == target[i];
        }
        held += (double)keep / FRESH >= lb;
    }
    cr_assert_geq(held, 90, "the lower bound held for %d of %d digits", held,
                  DIGITS);
    cr_log_info("anchor: the lower bound held for %d of %d digits", held,
                DIGITS);
    free(batch);
    free(lab);
    run_free(r);
}

Test(rules_mnist, lore_counterfactuals_change_the_label, .timeout = 600)
{
    mnist_run *r = run_method("lore");
    sm_model *m = r->m;
    const sm_tensor *x = r->x;
    const int *target = r->target;
    sm_explain_out *out = r->out;
    float img[HW];
    int total = 0, with_some = 0;
    for (int i = 0; i < DIGITS; i++) {
        const sm_record_array *seg = tmodel_array(&out[i].record, "segments");
        const sm_record_array *cf = tmodel_array(&out[i].record, "counterfactuals");
        double fid;
        cr_assert_not_null(seg);
        cr_assert_eq(sm_record_number(&out[i].record, "fidelity", &fid), 1);
        cr_assert(fid >= 0 && fid <= 1);
        if (!cf)
            continue;
        with_some++;
        int d = (int)cf->shape[1];
        for (int64_t k = 0; k < cf->shape[0]; k++) {
            uint8_t z[1024];
            cr_assert(d <= 1024);
            for (int j = 0; j < d; j++)
                z[j] = cf->data[k * d + j] != 0;
            apply(x->data + i * HW, seg->data, z, img);
            int lab;
            labels(m, img, 1, &lab);
            cr_assert_neq(lab, target[i],
                          "digit %d: counterfactual %lld keeps label %d", i,
                          (long long)k, lab);
            total++;
        }
    }
    cr_log_info("lore: %d counterfactuals on %d of %d digits all change the "
                "label", total, with_some, DIGITS);
    cr_assert_gt(with_some, DIGITS / 2);
    run_free(r);
}

/* The model's labels of n latents z (n x latent) decoded by dec: pixels
 * (t + 1) * 127.5, model input pixel / 255. */
static void decoded_labels(sm_model *dec, sm_model *m, const float *z,
                           int64_t n, int *label)
{
    sm_err err = {0};
    const sm_tensor *t = sm_model_forward(dec, z, n, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(sm_tensor_numel(t), n * HW);
    float *x = malloc(sizeof(float) * (size_t)(n * HW));
    for (int64_t q = 0; q < n * HW; q++)
        x[q] = (t->data[q] + 1.0f) * 127.5f / 255.0f;
    labels(m, x, n, label);
    free(x);
}

/* About 60 s on one core, ten times that under the sanitizers: on two
 * threads (maps do not depend on them) with room to spare. */
Test(rules_mnist, abele_exemplars_counterfactuals_and_fidelity,
     .timeout = 1500)
{
    sm_aae_config cfg;
    sm_aae_models am;
    sm_err err = {0};
    cr_assert_eq(sm_aae_config_load("models/mnist_aae.yaml", &cfg, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(sm_aae_config_models(&cfg, &am, &err), 0, "%s", err.msg);
    int L = cfg.latent;
    sm_aae_config_free(&cfg);
    sm_model_set_threads(am.encoder, 2);
    sm_model_set_threads(am.decoder, 2);
    sm_model_set_threads(am.discriminator, 2);
    const sm_explain_aux aux[3] = {{"aae_encoder", am.encoder},
                                   {"aae_decoder", am.decoder},
                                   {"aae_discriminator", am.discriminator}};
    mnist_run *r = run_with("abele", NULL, aux, 3);
    int faithful = 0;
    long n_ex = 0, n_cex = 0, n_cf = 0;
    int *lab = malloc(sizeof(int) * 1000);
    for (int i = 0; i < DIGITS; i++) {
        const sm_record *rec = &r->out[i].record;
        const char *json = sm_record_json(rec);
        faithful += tmodel_jnum(json, "fidelity") >= 0.9;
        const sm_record_array *box = tmodel_array(rec, "rule_bounds");
        cr_assert_not_null(box, "digit %d: no rule_bounds", i);
        const sm_record_array *ex = tmodel_array(rec, "exemplar_latents");
        if (ex) {
            int64_t n = ex->shape[0];
            cr_assert_leq(n, 1000);
            decoded_labels(am.decoder, r->m, ex->data, n, lab);
            for (int64_t k = 0; k < n; k++) {
                const float *z = ex->data + k * L;
                for (int j = 0; j < L; j++)
                    cr_assert(z[j] > box->data[j] && z[j] <= box->data[L + j],
                              "digit %d exemplar %lld: dim %d = %g outside "
                              "(%g, %g]", i, (long long)k, j, z[j],
                              box->data[j], box->data[L + j]);
                cr_assert_eq(lab[k], r->target[i], "digit %d exemplar %lld "
                             "decodes to %d", i, (long long)k, lab[k]);
            }
            n_ex += n;
        }
        const char *other[2] = {"counter_exemplar_latents", "counterfactuals"};
        for (int o = 0; o < 2; o++) {
            const sm_record_array *a = tmodel_array(rec, other[o]);
            if (!a)
                continue;
            int64_t n = a->shape[0];
            cr_assert_leq(n, 1000);
            decoded_labels(am.decoder, r->m, a->data, n, lab);
            for (int64_t k = 0; k < n; k++)
                cr_assert_neq(lab[k], r->target[i], "digit %d: %s %lld keeps "
                              "the label", i, other[o], (long long)k);
            *(o ? &n_cf : &n_cex) += n;
        }
    }
    cr_log_info("abele on %d digits: fidelity >= 0.9 for %d; %ld exemplars, "
                "%ld counter-exemplars, %ld counterfactuals checked",
                DIGITS, faithful, n_ex, n_cex, n_cf);
    cr_assert_geq(faithful, 90, "fidelity >= 0.9 for %d digits", faithful);
    cr_assert_gt(n_ex, 0);
    cr_assert_gt(n_cex, 0);
    cr_assert_gt(n_cf, 0);
    free(lab);
    run_free(r);
    sm_aae_models_free(&am);
}
