/* Networks exported by an independent framework (PyTorch 1.13, see
 * tests/fixtures/README.md): salmap's outputs must match torch's own. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
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

Test(fixtures, split_batches_match_one_thread)
{
    sm_err err = {0};
    const char *models[] = {FIX "lenet.onnx", FIX "resnet18s.onnx",
                            FIX "mobilenets.onnx"};
    const char *inputs[] = {FIX "lenet_input.npy", FIX "resnet18s_input.npy",
                            FIX "mobilenets_input.npy"};
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
    const char *models[] = {FIX "resnet18s.onnx", FIX "mobilenets.onnx"};
    const char *inputs[] = {FIX "resnet18s_input.npy", FIX "mobilenets_input.npy"};
    for (int k = 0; k < 2; k++) {
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
