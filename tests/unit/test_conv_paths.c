/* Conv's kernels (core/ops/conv.c: im2col + sm_sgemm channel-major or
 * pixel-major with weights packed at planning, the direct kernel at
 * strides 1 and more, the depthwise kernel) against their common definition, bit for bit: each
 * output one fmaf chain over (ci, ki, kj) in order from zero, padding
 * taps included, then the bias added. On every instruction set with
 * fused multiply-add this CPU has, at batch 1 and in a batch of 5 (an
 * image's bits do not depend on the batch), on one thread and on two (a
 * batch split by images), through the engine (so the packed weights are
 * the ones run). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "onnx/writer.h"
#include "util/isa.h"
#include "util/rng.h"

typedef struct ccase {
    int64_t c, h, w, m, k, group, stride, pad;
    const char *what;
} ccase;

static sm_tensor *filled(int ndim, const int64_t *shape, uint64_t salt)
{
    sm_tensor *t = sm_tensor_new(ndim, shape);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = (float)(2.0 * sm_rng_uniform(salt, (uint64_t)i) - 1.0);
    return t;
}

static int64_t out_size(const ccase *k, int64_t in)
{
    return (in + 2 * k->pad - k->k) / k->stride + 1;
}

/* The definition for image n of x. */
static void definition(const ccase *k, const sm_tensor *x, int64_t n,
                       const sm_tensor *wt, const sm_tensor *b, float *y)
{
    const int64_t oh = out_size(k, k->h), ow = out_size(k, k->w);
    const int64_t cg = k->c / k->group, mg = k->m / k->group;
    for (int64_t m = 0; m < k->m; m++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                float acc = 0.0f;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t i = 0; i < k->k; i++)
                        for (int64_t j = 0; j < k->k; j++) {
                            int64_t iy = oy * k->stride - k->pad + i;
                            int64_t ix = ox * k->stride - k->pad + j;
                            int64_t c = m / mg * cg + ci;
                            float xv = iy < 0 || iy >= k->h || ix < 0 || ix >= k->w
                                           ? 0.0f
                                           : x->data[((n * k->c + c) * k->h + iy) * k->w + ix];
                            acc = fmaf(xv, wt->data[((m * cg + ci) * k->k + i) * k->k + j],
                                       acc);
                        }
                y[(m * oh + oy) * ow + ox] = acc + b->data[m];
            }
}

/* relu: the model is Conv then Relu, which the plan fuses into the Conv
 * (its kernels then write the Relu in the same pass): the Relu of the
 * definition is wanted. */
static void check(const ccase *k, int relu)
{
    const int64_t oh = out_size(k, k->h), ow = out_size(k, k->w);
    const int64_t plane = k->m * oh * ow;
    sm_tensor *x = filled(4, (int64_t[]){5, k->c, k->h, k->w}, 1);
    sm_tensor *wt = filled(4, (int64_t[]){k->m, k->c / k->group, k->k, k->k}, 2);
    sm_tensor *b = filled(1, &k->m, 3);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, k->c, k->h, k->w});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_initializer(w, "b", b);
    sm_onnx_writer_node(w, "Conv", "conv", (const char *[]){"x", "w", "b"}, 3,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){k->stride, k->stride}, 2);
    sm_onnx_writer_attr_int(w, "group", k->group);
    sm_onnx_writer_attr_ints(w, "pads",
                             (int64_t[]){k->pad, k->pad, k->pad, k->pad}, 4);
    if (relu)
        sm_onnx_writer_node(w, "Relu", "relu", (const char *[]){"y"}, 1,
                            (const char *[]){"r"}, 1);
    sm_onnx_writer_output(w, relu ? "r" : "y", 4, (int64_t[]){-1, k->m, -1, -1});
    size_t len;
    unsigned char *bytes = sm_onnx_writer_serialize(w, &len, NULL);
    sm_onnx_writer_destroy(&w);
    cr_assert_not_null(bytes);
    float *want = malloc(sizeof(float) * (size_t)(5 * plane));
    for (int64_t n = 0; n < 5; n++)
        definition(k, x, n, wt, b, want + n * plane);
    if (relu)
        for (int64_t i = 0; i < 5 * plane; i++)
            want[i] = want[i] < 0 ? 0.0f : want[i];
    unsetenv("SALMAP_ISA");
    const int best = sm_isa();
    for (int isa = SM_ISA_AVX2; isa <= best; isa++) {
        setenv("SALMAP_ISA", sm_isa_name(isa), 1);
        sm_err err = {0};
        sm_model *m = sm_model_load_buffer(bytes, len, "conv", &err);
        cr_assert_not_null(m, "%s", err.msg);
        /* one thread; then two (batch 5 split by images) */
        for (int pass = 0; pass < 4; pass++) {
            sm_model_set_threads(m, pass < 2 ? 1 : 2);
            const int batch = pass % 2 ? 1 : 5;
            for (int64_t n = 0; n < 5; n += batch) {
                const sm_tensor *y = sm_model_forward(
                    m, x->data + n * k->c * k->h * k->w, batch, &err);
                cr_assert_not_null(y, "%s", err.msg);
                int64_t cnt = batch * plane, bad = 0;
                for (int64_t i = 0; i < cnt; i++)
                    bad += memcmp(&y->data[i], &want[n * plane + i], sizeof(float)) != 0;
                cr_assert_eq(bad, 0, "%s%s, %s, batch %d, %d threads: %lld of "
                             "%lld outputs differ from the definition", k->what,
                             relu ? ", Relu" : "", sm_isa_name(isa), batch,
                             pass < 2 ? 1 : 2,
                             (long long)bad, (long long)cnt);
            }
        }
        sm_model_destroy(&m);
    }
    unsetenv("SALMAP_ISA");
    free(want);
    free(bytes);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_tensor_destroy(&b);
}

Test(conv_paths, every_kernel_rounds_as_the_definition)
{
    const ccase cases[] = {
        /* c   h   w   m  k  g  s  p */
        {3, 20, 18, 16, 7, 1, 2, 3, "7x7/2 stem, channel-major"},
        {16, 9, 9, 16, 3, 1, 1, 1, "3x3, direct"},
        {16, 8, 8, 32, 3, 1, 2, 1, "3x3/2 to 4x4, pixel-major"},
        {16, 16, 17, 32, 3, 1, 2, 1, "3x3/2 to 8x9, direct in phases"},
        {5, 23, 21, 8, 5, 1, 3, 2, "5x5/3 to 8x7, direct in phases"},
        {64, 2, 2, 128, 3, 1, 1, 1, "3x3 on 2x2, pixel-major"},
        {40, 4, 4, 70, 3, 1, 1, 1, "3x3 on 4x4, 70 channels (panel edges)"},
        {32, 4, 4, 64, 1, 1, 2, 0, "1x1/2, pixel-major"},
        {48, 5, 3, 40, 1, 1, 1, 0, "1x1 pointwise, pixel-major"},
        {64, 4, 4, 64, 3, 2, 1, 1, "grouped, pixel-major"},
        {24, 5, 5, 40, 3, 1, 2, 1, "3x3/2 on 5x5 to 3x3, padded both ends, pixel-major"},
        {32, 8, 8, 32, 3, 1, 1, 1, "3x3 on 8x8, 32 channels, pixel-major"},
        {16, 5, 9, 32, 3, 1, 1, 1, "3x3 on 5x9, 45 pixels, pixel-major"},
        {16, 16, 16, 24, 1, 1, 1, 0, "1x1 pointwise on 16x16, channel-major by image"},
        {16, 8, 12, 40, 1, 1, 1, 0, "1x1 pointwise on 8x12, channel-major by image"},
        {12, 5, 5, 20, 1, 1, 1, 0, "1x1 pointwise on 5x5, channel-major batched"},
        {8, 4, 4, 20, 1, 1, 1, 0, "1x1 pointwise on 4x4, channel-major batched"},
        {16, 8, 8, 24, 1, 1, 2, 0, "1x1/2, channel-major batched"},
        {64, 8, 8, 128, 1, 1, 1, 0, "1x1 pointwise on 8x8, pixel-major"},
        {128, 4, 4, 128, 1, 1, 1, 0, "1x1 pointwise on 4x4, pixel-major"},
        {24, 11, 10, 24, 3, 24, 1, 1, "3x3 depthwise"},
        {24, 11, 10, 24, 3, 24, 2, 1, "3x3/2 depthwise"},
        {8, 7, 6, 8, 5, 8, 1, 2, "5x5 depthwise"},
        {17, 3, 3, 17, 3, 17, 1, 1, "3x3 depthwise on 3x3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int relu = 0; relu < 2; relu++)
            check(&cases[i], relu);
}
