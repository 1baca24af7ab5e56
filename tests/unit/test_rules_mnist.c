/* Anchor and LORE on the shipped MNIST model (models/mnist_cnn.onnx), the
 * first 100 test digits, hidden superpixels 0 (MNIST's runs), checked
 * outside the methods with the model itself:
 * - each anchor's precision, estimated again from 2,000 fresh samples (the
 *   anchor's superpixels shown, every other one shown with probability
 *   0.5, drawn from a stream the method never uses), is at least the lower
 *   bound the method reported for >= 90% of the digits (delta = 0.1);
 * - each of lore's counterfactuals, applied to the digit (its mask from
 *   the record), changes the model's label, and lore's map is nonzero only
 *   on the superpixels of its rule.
 * Needs data/mnist (make data), as `make test` provides. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    sm_err err = {{0}};
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
    sm_err err = {{0}};
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

Test(rules_mnist, anchor_precision_holds_on_fresh_samples, .timeout = 600)
{
    sm_tensor *x = digits(DIGITS);
    sm_err err = {{0}};
    sm_model *m = sm_model_load_file(MODEL, &err);
    cr_assert_not_null(m, "%s", err.msg);
    int target[DIGITS];
    labels(m, x->data, DIGITS, target);
    char idbuf[DIGITS][24]; /* "digit" and any int */
    const char *ids[DIGITS];
    for (int i = 0; i < DIGITS; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "digit%d", i);
        ids[i] = idbuf[i];
    }
    float *maps = malloc(sizeof(float) * DIGITS * HW);
    sm_explain_out out[DIGITS] = {0};
    sm_explain_ctx ctx = {m, 0, 0, 0, 0, NULL, 0};
    cr_assert_eq(tmodel_explain("anchor", hide0, &ctx, x, target, ids, maps,
                                out, &err),
                 0, "%s", err.msg);
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
    sm_explain_out_free(out, DIGITS);
    free(maps);
    free(batch);
    free(lab);
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
}
