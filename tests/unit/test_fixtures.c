/* Networks exported by an independent framework (PyTorch 1.13, see
 * tests/fixtures/README.md): salmap's outputs must match torch's own. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "model/exec.h"
#include "model/model.h"

#define FIX "tests/fixtures/"

static sm_tensor *npy(const char *path)
{
    sm_err err = {0};
    sm_tensor *t = sm_npy_read(path, &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

/* Largest |got - want| / max(1, |want|) over all elements. */
static double worst(const sm_tensor *got, const sm_tensor *want)
{
    cr_assert(sm_shape_equal(got->ndim, got->shape, want->ndim, want->shape),
              "output shape differs from the fixture's");
    double w = 0;
    for (int64_t i = 0; i < sm_tensor_numel(want); i++) {
        double d = fabs((double)got->data[i] - want->data[i]) /
                   fmax(1.0, fabs((double)want->data[i]));
        if (d > w)
            w = d;
    }
    return w;
}

static void check_model(const char *onnx, const char *in, const char *const *outs,
                        int n_out)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_file(onnx, &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_tensor *x = npy(in);
    const sm_tensor *inp[1] = {x};
    const sm_tensor *got[8];
    cr_assert_eq(sm_model_run(m, inp, 1, got, &err), 0, "%s", err.msg);
    for (int i = 0; i < n_out; i++) {
        sm_tensor *want = npy(outs[i]);
        double w = worst(got[i], want);
        cr_assert(w < 1e-4, "%s: output %d differs from torch by %g", onnx, i,
                  w);
        sm_tensor_destroy(&want);
    }
    /* With a symbolic batch, one image alone gives the same row (batch
     * planning). */
    int64_t decl[SM_MAX_DIMS];
    sm_model_input_shape(m, 0, decl);
    if (decl[0] >= 0) {
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
        return;
    }
    const sm_tensor *one = sm_model_forward(m, x->data, 1, &err);
    cr_assert_not_null(one, "%s", err.msg);
    sm_tensor *want0 = npy(outs[0]);
    int64_t k = sm_tensor_numel(want0) / want0->shape[0];
    for (int64_t j = 0; j < k; j++)
        cr_assert_float_eq(one->data[j], want0->data[j],
                           1e-4 * fmax(1.0, fabs(want0->data[j])));
    sm_tensor_destroy(&want0);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(fixtures, lenet_matches_torch)
{
    check_model(FIX "lenet.onnx", FIX "lenet_input.npy",
                (const char *[]){FIX "lenet_output.npy"}, 1);
}

Test(fixtures, resnet18_shaped_matches_torch)
{
    check_model(FIX "resnet18s.onnx", FIX "resnet18s_input.npy",
                (const char *[]){FIX "resnet18s_output.npy"}, 1);
}

/* Depthwise and pointwise convolutions (core/ops/conv_dw.c), BN folded:
 * against numpy's float64 forward pass from the weights themselves
 * (tests/fixtures/make_mobilenet_fixture.py; torch was not installed). */
Test(fixtures, mobilenet_shaped_matches_numpy)
{
    check_model(FIX "mobilenets.onnx", FIX "mobilenets_input.npy",
                (const char *[]){FIX "mobilenets_output.npy"}, 1);
}

Test(fixtures, misc_ops_match_torch)
{
    check_model(FIX "misc.onnx", FIX "misc_input.npy",
                (const char *[]){FIX "misc_softmax.npy", FIX "misc_logsoftmax.npy"},
                2);
}

/* The three networks of the fixtures and their inputs. */
static const char *const models[] = {FIX "lenet.onnx", FIX "resnet18s.onnx",
                                     FIX "mobilenets.onnx"};
static const char *const inputs[] = {FIX "lenet_input.npy",
                                     FIX "resnet18s_input.npy",
                                     FIX "mobilenets_input.npy"};

Test(fixtures, split_batches_match_one_thread)
{
    sm_err err = {0};
    for (int k = 0; k < 3; k++) {
        sm_model *m = sm_model_load_file(models[k], &err);
        cr_assert_not_null(m, "%s", err.msg);
        sm_tensor *x = npy(inputs[k]);
        /* 4 fixture images tiled to an odd batch of 11 */
        int64_t per = sm_tensor_numel(x) / x->shape[0];
        float *big = malloc(sizeof(float) * (size_t)(11 * per));
        for (int i = 0; i < 11; i++)
            memcpy(big + i * per, x->data + (i % 4) * per, sizeof(float) * (size_t)per);
        const sm_tensor *y1 = sm_model_forward(m, big, 11, &err);
        cr_assert_not_null(y1, "%s", err.msg);
        sm_tensor *ref = sm_tensor_clone(y1);
        double flops1 = sm_model_flops(m);
        for (int threads = 2; threads <= 3; threads++) {
            sm_model_set_threads(m, threads);
            const sm_tensor *y = sm_model_forward(m, big, 11, &err);
            cr_assert_not_null(y, "%s", err.msg);
            cr_assert(sm_shape_equal(y->ndim, y->shape, ref->ndim, ref->shape));
            for (int64_t i = 0; i < sm_tensor_numel(ref); i++)
                cr_assert_float_eq(y->data[i], ref->data[i],
                                   1e-5 * fmax(1.0, fabs(ref->data[i])),
                                   "%s, %d threads, element %lld", models[k],
                                   threads, (long long)i);
            cr_assert_float_eq(sm_model_flops(m), flops1, 1e-6 * flops1);
        }
        sm_tensor_destroy(&ref);
        free(big);
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
    }
}

/* Every image of the ResNet- and MobileNet-shaped fixtures run alone, on
 * one thread or two, has the very bits of its row in the batch of 4 (the
 * small planes' pixel-major GEMM, the depthwise and strided direct
 * kernels included). */
Test(fixtures, one_image_has_the_bits_of_its_row_in_the_batch)
{
    sm_err err = {0};
    for (int k = 1; k < 3; k++) { /* resnet18s and mobilenets */
        sm_model *m = sm_model_load_file(models[k], &err);
        cr_assert_not_null(m, "%s", err.msg);
        sm_tensor *x = npy(inputs[k]);
        int64_t per = sm_tensor_numel(x) / x->shape[0];
        const sm_tensor *y = sm_model_forward(m, x->data, x->shape[0], &err);
        cr_assert_not_null(y, "%s", err.msg);
        sm_tensor *all = sm_tensor_clone(y);
        int64_t row = sm_tensor_numel(all) / all->shape[0];
        for (int64_t i = 0; i < x->shape[0]; i++)
            for (int threads = 1; threads <= 2; threads++) {
                sm_model_set_threads(m, threads);
                const sm_tensor *one = sm_model_forward(m, x->data + i * per, 1, &err);
                cr_assert_not_null(one, "%s", err.msg);
                cr_assert_eq(memcmp(one->data, all->data + i * row,
                                    sizeof(float) * (size_t)row), 0,
                             "%s, image %lld, %d threads: not the bits of the "
                             "batch", models[k], (long long)i, threads);
            }
        sm_tensor_destroy(&all);
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
    }
}

/* One image on two threads: its nodes of SM_PLAN_SPLIT_TRY_FLOPS and
 * more split or not as the plan's trials find faster (model/exec.h):
 * through the trials without those splits, with them, and the choice,
 * every run has the bits of one thread's, by sm_model_run and by
 * sm_model_infer. */
Test(fixtures, one_image_split_or_not_as_trials_choose_keeps_its_bits)
{
    sm_err err = {0};
    for (int k = 1; k < 3; k++) { /* resnet18s and mobilenets */
        sm_model *m = sm_model_load_file(models[k], &err);
        cr_assert_not_null(m, "%s", err.msg);
        sm_tensor *x = npy(inputs[k]);
        int64_t shape[4];
        memcpy(shape, x->shape, sizeof shape);
        shape[0] = 1;
        sm_tensor one = {.ndim = 4, .data = x->data};
        memcpy(one.shape, shape, sizeof shape);
        const sm_tensor *in[1] = {&one}, *out[1];
        cr_assert_eq(sm_model_run(m, in, 1, out, &err), 0, "%s", err.msg);
        sm_tensor *ref = sm_tensor_clone(out[0]);
        sm_model_set_threads(m, 2);
        for (int r = 0; r < 2 * SM_PLAN_SPLIT_TRIALS + 8; r++) {
            int rc = r % 2 ? sm_model_infer(m, in, 1, out, &err)
                           : sm_model_run(m, in, 1, out, &err);
            cr_assert_eq(rc, 0, "%s", err.msg);
            cr_assert_eq(memcmp(out[0]->data, ref->data,
                                sizeof(float) * (size_t)sm_tensor_numel(ref)),
                         0, "%s, run %d: not the bits of one thread",
                         models[k], r);
            if (r == 0) /* else the trials would be of nothing */
                cr_assert(m->lanes[0].last->tried, "%s: no node to try",
                          models[k]);
        }
        sm_tensor_destroy(&ref);
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
    }
}

/* sm_model_infer runs a batch as chunks of images, split over the
 * threads: every output the very bits of sm_model_run's on one thread,
 * for chunks of one image up to the whole batch (budgets from 1 byte to
 * the default, so chunks of one and two sizes a lane), 23 images over up
 * to 3 lanes and 3 images in one lane whose nodes may split, and the same
 * FLOP count. Nothing is kept to go back through: backward and activations
 * say so, and the next sm_model_run gives them back. */
Test(fixtures, infer_in_chunks_has_the_bits_of_run)
{
    sm_err err = {0};
    const size_t budgets[] = {1, 1 << 16, 1 << 18, 1 << 20, 0};
    const int64_t sizes[] = {23, 3}; /* 3: one lane on 2 or 3 threads */
    for (int k = 0; k < 3; k++) {
        sm_model *m = sm_model_load_file(models[k], &err);
        cr_assert_not_null(m, "%s", err.msg);
        sm_tensor *x = npy(inputs[k]);
        int64_t per = sm_tensor_numel(x) / x->shape[0];
        for (int si = 0; si < 2; si++) {
            const int64_t n = sizes[si];
            int64_t shape[SM_MAX_DIMS];
            memcpy(shape, x->shape, sizeof shape);
            shape[0] = n;
            sm_tensor *big = sm_tensor_new(x->ndim, shape);
            for (int64_t i = 0; i < n; i++) /* every row its own */
                for (int64_t e = 0; e < per; e++)
                    big->data[i * per + e] =
                        x->data[(i % 4) * per + e] * (1.0f + 0.01f * (float)i);
            const sm_tensor *in[1] = {big}, *y[4];
            sm_model_set_threads(m, 1);
            cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
            sm_tensor *ref = sm_tensor_clone(y[0]);
            double flops = sm_model_flops(m);
            for (int threads = 1; threads <= 3; threads++)
                for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
                    sm_model_set_threads(m, threads);
                    sm_model_set_infer_bytes(m, budgets[b]);
                    cr_assert_eq(sm_model_infer(m, in, 1, y, &err), 0, "%s",
                                 err.msg);
                    cr_assert(sm_shape_equal(y[0]->ndim, y[0]->shape,
                                             ref->ndim, ref->shape));
                    cr_assert_eq(memcmp(y[0]->data, ref->data,
                                        sizeof(float) *
                                            (size_t)sm_tensor_numel(ref)),
                                 0, "%s, %lld images, %d threads, budget %zu: "
                                 "not run's bits", models[k], (long long)n,
                                 threads, budgets[b]);
                    cr_assert_float_eq(sm_model_flops(m), flops, 1e-6 * flops,
                                       "%s, %d threads, budget %zu", models[k],
                                       threads, budgets[b]);
                }
            if (si == 0) {
                sm_tensor *seed = sm_tensor_new(ref->ndim, ref->shape);
                const sm_tensor *g[1];
                cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), -1);
                cr_assert(strstr(err.msg, "sm_model_infer"), "%s", err.msg);
                cr_assert_null(sm_model_activation(
                    m, sm_model_output_name(m, 0), &err));
                cr_assert(strstr(err.msg, "sm_model_infer"), "%s", err.msg);
                cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
                cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s",
                             err.msg);
                sm_tensor_destroy(&seed);
            }
            sm_tensor_destroy(&ref);
            sm_tensor_destroy(&big);
        }
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
    }
}
