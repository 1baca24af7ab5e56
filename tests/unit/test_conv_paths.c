/* Conv's kernels (core/ops/conv.c: im2col + sm_sgemm channel-major or
 * pixel-major with weights packed at planning, the direct kernel at
 * strides 1 and more, the depthwise kernels, channel-blocked and a plane
 * at a time) against their common definition, bit for bit: each output
 * one fmaf chain over (ci, ki, kj) in order from zero, padding taps
 * included, then the bias added (when there is one), then its Relu (a
 * Relu node the engine fuses into the Conv). On every instruction set
 * with fused multiply-add this CPU has, at batch 1 and in a batch of 5
 * (an image's bits do not depend on the batch), on one thread and on two
 * (a batch split by images, or a layer of one image by output channels),
 * through the engine (so the packed weights are the ones run), in 2 to 4
 * parts (op.h run_part) and unpacked (op.h run); and the depthwise layers
 * on the baseline set too, whose chain multiplies and adds apart.
 * Winograd's layers (core/ops/conv_wino.c) round otherwise: each output
 * within 1e-6 of the sum of its terms' magnitudes of the convolution in
 * double, and every run with the bits of AVX2's at batch 5. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"
#include "model/model.h"
#include "onnx/writer.h"
#include "util/isa.h"
#include "util/rng.h"

typedef struct ccase {
    int64_t c, h, w, m, k, group, stride, pad;
    const char *what;
    int no_bias, relu;
    int split; /* a layer of one image the engine always splits over 2
                  threads (SPLIT_ALWAYS: SM_PLAN_SPLIT_FLOPS and more) */
    int wino;  /* a layer for Winograd's F(2x2, 3x3) (core/ops/conv_wino.c) */
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

/* The definition for image n of x (the chain fused, or not), and its
 * Relu into r. */
static void definition(const ccase *k, const sm_tensor *x, int64_t n,
                       const sm_tensor *wt, const sm_tensor *b, int fused,
                       float *y, float *r)
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
                            float wv = wt->data[((m * cg + ci) * k->k + i) * k->k + j];
                            acc = fused ? fmaf(xv, wv, acc) : acc + xv * wv;
                        }
                const int64_t o = (m * oh + oy) * ow + ox;
                y[o] = k->no_bias ? acc : acc + b->data[m];
                r[o] = y[o] < 0 ? 0.0f : y[o];
            }
}

/* Winograd's outputs (image n of x) against the convolution in double:
 * each within 1e-6 of the sum of its terms' magnitudes (the transforms'
 * rounding; the fmaf chain's own error is about 1e-7 of it), and not all
 * of them the chain's bits, which would mean another path ran. */
static void near_definition(const ccase *k, const sm_tensor *x, int64_t n,
                            const sm_tensor *wt, const sm_tensor *b,
                            const float *got, const float *chain)
{
    const int64_t oh = out_size(k, k->h), ow = out_size(k, k->w);
    double worst = 0;
    int64_t same = 0;
    for (int64_t m = 0; m < k->m; m++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                double acc = k->no_bias ? 0 : b->data[m];
                double mag = fabs(acc);
                for (int64_t ci = 0; ci < k->c; ci++)
                    for (int64_t i = 0; i < 3; i++)
                        for (int64_t j = 0; j < 3; j++) {
                            int64_t iy = oy - k->pad + i, ix = ox - k->pad + j;
                            if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w)
                                continue;
                            double t = (double)x->data[((n * k->c + ci) * k->h + iy) * k->w + ix] *
                                       wt->data[((m * k->c + ci) * 3 + i) * 3 + j];
                            acc += t;
                            mag += fabs(t);
                        }
                const int64_t o = (m * oh + oy) * ow + ox;
                double e = fabs(got[o] - acc) / (mag + 1e-30);
                worst = e > worst ? e : worst;
                same += memcmp(&got[o], &chain[o], sizeof(float)) == 0;
            }
    cr_assert(worst < 1e-6, "%s: an output %g of its terms' magnitude off",
              k->what, worst);
    cr_assert(same < k->m * oh * ow, "%s: every output is the fmaf chain's: "
              "not Winograd", k->what);
}

/* Outputs of got that differ from want in their bits. */
static int64_t differ(const float *got, const float *want, int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
    return bad;
}

/* The model: Conv (bias unless no_bias), then a Relu of its output when
 * relu (fused into the Conv by the engine), both graph outputs. */
static unsigned char *conv_model(const ccase *k, const sm_tensor *wt,
                                 const sm_tensor *b, size_t *len)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, k->c, k->h, k->w});
    sm_onnx_writer_initializer(w, "w", wt);
    if (!k->no_bias)
        sm_onnx_writer_initializer(w, "b", b);
    sm_onnx_writer_node(w, "Conv", "conv", (const char *[]){"x", "w", "b"},
                        k->no_bias ? 2 : 3, (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){k->stride, k->stride}, 2);
    sm_onnx_writer_attr_int(w, "group", k->group);
    sm_onnx_writer_attr_ints(w, "pads",
                             (int64_t[]){k->pad, k->pad, k->pad, k->pad}, 4);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){-1, k->m, -1, -1});
    if (k->relu) {
        sm_onnx_writer_node(w, "Relu", "relu", (const char *[]){"y"}, 1,
                            (const char *[]){"r"}, 1);
        sm_onnx_writer_output(w, "r", 4, (int64_t[]){-1, k->m, -1, -1});
    }
    unsigned char *bytes = sm_onnx_writer_serialize(w, len, NULL);
    sm_onnx_writer_destroy(&w);
    cr_assert_not_null(bytes);
    return bytes;
}

/* The layer in parts (op.h run_part), 2 to 4 of them run one after the
 * other on the batch of 5, with the weights the engine packed: together
 * they must write every output once (the rest stays NaN) with the
 * definition's bits, and the Relu alike. */
static void check_parts(const ccase *k, const sm_model *m, const sm_tensor *x,
                        const sm_tensor *wt, const sm_tensor *b,
                        const float *want, const float *rwant, int64_t plane,
                        const char *isa)
{
    const sm_op_class *op = sm_op_find("Conv");
    const node *n = &m->g.nodes[0];
    cr_assert(op && op->run_part && op->split);
    const int64_t oh = out_size(k, k->h), ow = out_size(k, k->w);
    sm_tensor *y = sm_tensor_new(4, (int64_t[]){5, k->m, oh, ow});
    sm_tensor *r = sm_tensor_new(4, (int64_t[]){5, k->m, oh, ow});
    const sm_tensor *in[3] = {x, wt, b};
    const int n_in = k->no_bias ? 2 : 3;
    sm_tensor *out[1] = {y};
    /* each part's workspace 64-byte aligned, as the engine's (plan.c) */
    const size_t ws = (op->workspace(n->params, in, n_in,
                                     (const sm_tensor *const *)out, 1) + 16) /
                      16 * 16;
    float *buf = aligned_alloc(64, sizeof(float) * ws * 4);
    const float *packed = m->packed ? m->packed[0] : NULL;
    for (int parts = 2; parts <= 4; parts++) {
        for (int64_t i = 0; i < 5 * plane; i++)
            y->data[i] = r->data[i] = NAN;
        for (int part = 0; part < parts; part++)
            op->run_part(n->params, packed, in, n_in, out, 1,
                         k->relu ? r : NULL, buf + (size_t)part * ws,
                         part, parts);
        int64_t bad = differ(y->data, want, 5 * plane);
        cr_assert_eq(bad, 0, "%s, %s, %d parts: %lld of %lld outputs differ "
                     "from the definition", k->what, isa, parts,
                     (long long)bad, (long long)(5 * plane));
        if (k->relu) {
            bad = differ(r->data, rwant, 5 * plane);
            cr_assert_eq(bad, 0, "%s, %s, %d parts: %lld Relu outputs differ",
                         k->what, isa, parts, (long long)bad);
        }
    }
    /* and whole, unpacked (op.h run: each path lays the weights out in
     * its workspace, as when the relevance rules run a layer with
     * weights of their own) */
    for (int64_t i = 0; i < 5 * plane; i++)
        y->data[i] = NAN;
    op->run(n->params, in, n_in, out, 1, buf);
    int64_t bad = differ(y->data, want, 5 * plane);
    cr_assert_eq(bad, 0, "%s, %s, unpacked: %lld of %lld outputs differ "
                 "from the definition", k->what, isa, (long long)bad,
                 (long long)(5 * plane));
    free(buf);
    sm_tensor_destroy(&y);
    sm_tensor_destroy(&r);
}

static void check(const ccase *k)
{
    const int64_t oh = out_size(k, k->h), ow = out_size(k, k->w);
    const int64_t plane = k->m * oh * ow, in = k->c * k->h * k->w;
    const int depthwise = k->group == k->c && k->m == k->c;
    sm_tensor *x = filled(4, (int64_t[]){5, k->c, k->h, k->w}, 1);
    sm_tensor *wt = filled(4, (int64_t[]){k->m, k->c / k->group, k->k, k->k}, 2);
    sm_tensor *b = filled(1, &k->m, 3);
    size_t len;
    unsigned char *bytes = conv_model(k, wt, b, &len);
    float *want = malloc(sizeof(float) * (size_t)(10 * plane));
    float *rwant = want + 5 * plane;
    unsetenv("SALMAP_ISA");
    const int best = sm_isa();
    if (k->wino && best >= SM_ISA_AVX2) {
        /* the bits every run must give: AVX2's, one thread, batch 5 */
        for (int64_t n = 0; n < 5; n++)
            definition(k, x, n, wt, b, 1, want + n * plane, rwant + n * plane);
        setenv("SALMAP_ISA", "avx2", 1);
        sm_err err = {0};
        sm_model *m = sm_model_load_buffer(bytes, len, "conv", &err);
        cr_assert_not_null(m, "%s", err.msg);
        const sm_tensor *out[2] = {NULL, NULL};
        cr_assert_eq(sm_model_run(m, (const sm_tensor *const *)&x, 1, out,
                                  &err), 0, "%s", err.msg);
        for (int64_t n = 0; n < 5; n++)
            near_definition(k, x, n, wt, b, out[0]->data + n * plane,
                            want + n * plane);
        memcpy(want, out[0]->data, sizeof(float) * (size_t)(5 * plane));
        for (int64_t i = 0; i < 5 * plane; i++)
            rwant[i] = want[i] < 0 ? 0.0f : want[i];
        sm_model_destroy(&m);
    }
    /* the baseline's im2col + sm_sgemm rounds alike on every layer; only
     * the depthwise ones have a kernel of their own to check there */
    for (int isa = depthwise ? SM_ISA_BASELINE : SM_ISA_AVX2; isa <= best;
         isa++) {
        if ((isa == SM_ISA_BASELINE || isa == SM_ISA_AVX2) && !k->wino)
            for (int64_t n = 0; n < 5; n++)
                definition(k, x, n, wt, b, isa != SM_ISA_BASELINE,
                           want + n * plane, rwant + n * plane);
        setenv("SALMAP_ISA", sm_isa_name(isa), 1);
        sm_err err = {0};
        sm_model *m = sm_model_load_buffer(bytes, len, "conv", &err);
        cr_assert_not_null(m, "%s", err.msg);
        /* one thread; then two (batch 5 split by images) */
        for (int pass = 0; pass < 4; pass++) {
            sm_model_set_threads(m, pass < 2 ? 1 : 2);
            const int batch = pass % 2 ? 1 : 5;
            for (int64_t n = 0; n < 5; n += batch) {
                sm_tensor *xb = sm_tensor_new(4, (int64_t[]){batch, k->c, k->h, k->w});
                cr_assert_not_null(xb);
                memcpy(xb->data, x->data + n * in, sizeof(float) * (size_t)(batch * in));
                const sm_tensor *out[2] = {NULL, NULL};
                cr_assert_eq(sm_model_run(m, (const sm_tensor *const *)&xb, 1,
                                          out, &err), 0, "%s", err.msg);
                sm_tensor_destroy(&xb);
                const int64_t cnt = batch * plane;
                int64_t bad = differ(out[0]->data, want + n * plane, cnt);
                cr_assert_eq(bad, 0, "%s, %s, batch %d, %d threads: %lld of "
                             "%lld outputs differ from the definition", k->what,
                             sm_isa_name(isa), batch, pass < 2 ? 1 : 2,
                             (long long)bad, (long long)cnt);
                if (batch == 1 && pass >= 2)
                    cr_assert_eq(m->last_plan[0]->split[0] == SPLIT_ALWAYS,
                                 k->split, "%s: split %d", k->what,
                                 m->last_plan[0]->split[0]);
                if (!k->relu)
                    continue;
                /* the Relu ran inside the Conv, and rounds as its own */
                cr_assert_eq(m->last_plan[0]->fuse[1], -1, "%s: Relu not fused",
                             k->what);
                bad = differ(out[1]->data, rwant + n * plane, cnt);
                cr_assert_eq(bad, 0, "%s, %s, batch %d, %d threads: %lld of "
                             "%lld Relu outputs differ from the definition",
                             k->what, sm_isa_name(isa), batch, pass < 2 ? 1 : 2,
                             (long long)bad, (long long)cnt);
            }
        }
        check_parts(k, m, x, wt, b, want, rwant, plane, sm_isa_name(isa));
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
        {3, 20, 18, 16, 7, 1, 2, 3, "7x7/2 stem, channel-major", 0, 0, 0, 0},
        {16, 9, 9, 16, 3, 1, 1, 1, "3x3, direct", 0, 0, 0, 0},
        {16, 8, 8, 32, 3, 1, 2, 1, "3x3/2 to 4x4, pixel-major", 0, 0, 0, 0},
        {16, 16, 17, 32, 3, 1, 2, 1, "3x3/2 to 8x9, direct in phases", 0, 0, 0, 0},
        {5, 23, 21, 8, 5, 1, 3, 2, "5x5/3 to 8x7, direct in phases", 0, 0, 0, 0},
        {6, 12, 11, 20, 3, 1, 1, 1, "3x3, direct, 20 channels (blocks of 4)", 0, 0, 0, 0},
        {64, 2, 2, 128, 3, 1, 1, 1, "3x3 on 2x2, pixel-major", 0, 0, 0, 0},
        {40, 4, 4, 70, 3, 1, 1, 1, "3x3 on 4x4, 70 channels (panel edges)", 0, 0, 0, 0},
        {32, 4, 4, 64, 1, 1, 2, 0, "1x1/2, pixel-major", 0, 0, 0, 0},
        {48, 5, 3, 40, 1, 1, 1, 0, "1x1 pointwise, pixel-major", 0, 0, 0, 0},
        {64, 4, 4, 64, 3, 2, 1, 1, "grouped, pixel-major", 0, 0, 0, 0},
        {31, 32, 32, 32, 3, 1, 1, 1, "3x3 on 32x32, direct, one image split", 0, 1, 1, 0},
        {64, 8, 8, 128, 3, 1, 1, 1, "3x3 on 8x8, pixel-major, one image split", 0, 0, 1, 0},
        {128, 24, 24, 128, 1, 1, 1, 0, "1x1 on 24x24, channel-major, one image split", 0, 1, 1, 0},
        {24, 5, 5, 40, 3, 1, 2, 1, "3x3/2 on 5x5 to 3x3, padded both ends, pixel-major", 0, 0, 0, 0},
        {32, 8, 8, 32, 3, 1, 1, 1, "3x3 on 8x8, 32 channels, pixel-major", 0, 0, 0, 0},
        {16, 5, 9, 32, 3, 1, 1, 1, "3x3 on 5x9, 45 pixels, pixel-major", 0, 0, 0, 0},
        {16, 16, 16, 24, 1, 1, 1, 0, "1x1 pointwise on 16x16, channel-major by image", 0, 0, 0, 0},
        {16, 8, 12, 40, 1, 1, 1, 0, "1x1 pointwise on 8x12, channel-major by image", 0, 0, 0, 0},
        {12, 5, 5, 20, 1, 1, 1, 0, "1x1 pointwise on 5x5, channel-major batched", 0, 0, 0, 0},
        {8, 4, 4, 20, 1, 1, 1, 0, "1x1 pointwise on 4x4, channel-major batched", 0, 0, 0, 0},
        {16, 8, 8, 24, 1, 1, 2, 0, "1x1/2, channel-major batched", 0, 0, 0, 0},
        {64, 8, 8, 128, 1, 1, 1, 0, "1x1 pointwise on 8x8, pixel-major", 0, 0, 0, 0},
        {128, 4, 4, 128, 1, 1, 1, 0, "1x1 pointwise on 4x4, pixel-major", 0, 0, 0, 0},
        {16, 9, 9, 16, 3, 1, 1, 1, "3x3, direct, no bias, Relu", 1, 1, 0, 0},
        {64, 2, 2, 128, 3, 1, 1, 1, "3x3 on 2x2, pixel-major, Relu", 0, 1, 0, 0},
        /* Winograd (core/ops/conv_wino.c): 3x3 of stride 1 from 32
         * channels in and out and 10 x 10 output planes (the 3x3 cases
         * above have fewer channels or smaller planes) */
        {32, 11, 11, 32, 3, 1, 1, 1, "Winograd, 11x11 (tiles past the edge)", 0, 0, 0, 1},
        {32, 10, 10, 32, 3, 1, 1, 1, "Winograd, 10x10: 25 tiles, under a panel", 0, 1, 0, 1},
        {32, 14, 14, 64, 3, 1, 1, 1, "Winograd, MNIST-CNN's second layer: chunks of 3 images, Relu", 0, 1, 0, 1},
        {40, 12, 10, 70, 3, 1, 1, 1, "Winograd, 70 channels, 12x10", 0, 0, 0, 1},
        {32, 12, 13, 36, 3, 1, 1, 0, "Winograd unpadded, 12x13 to 10x11, no bias", 1, 0, 0, 1},
        {33, 10, 11, 32, 3, 1, 1, 2, "Winograd, pads of 2", 0, 0, 0, 1},
        {32, 32, 32, 32, 3, 1, 1, 1, "Winograd on 32x32, one image split", 0, 1, 1, 1},
        {64, 32, 32, 64, 3, 1, 1, 1, "Winograd, 64 channels on 32x32: a chunk an image", 0, 0, 1, 1},
        /* depthwise (core/ops/conv_dw.c): channel-blocked from 4
         * channels (16 a block with AVX-512, 8 with AVX2: counts of
         * neither a multiple run a masked last block), a plane at a time
         * below */
        {24, 11, 10, 24, 3, 24, 1, 1, "3x3 depthwise", 0, 0, 0, 0},
        {24, 11, 10, 24, 3, 24, 2, 1, "3x3/2 depthwise", 0, 0, 0, 0},
        {8, 7, 6, 8, 5, 8, 1, 2, "5x5 depthwise", 0, 0, 0, 0},
        {17, 3, 3, 17, 3, 17, 1, 1, "3x3 depthwise on 3x3", 0, 0, 0, 0},
        {16, 32, 32, 16, 3, 16, 1, 1, "3x3 on 32x32, Relu", 0, 1, 0, 0},
        {32, 32, 32, 32, 3, 32, 2, 1, "3x3/2 on 32x32, Relu", 0, 1, 0, 0},
        {5, 9, 7, 5, 3, 5, 1, 1, "5 channels, no bias", 1, 0, 0, 0},
        {12, 8, 8, 12, 3, 12, 2, 1, "12 channels, 3x3/2, Relu", 0, 1, 0, 0},
        {33, 4, 4, 33, 3, 33, 2, 1, "33 channels, 3x3/2 to 2x2, no bias, Relu", 1, 1, 0, 0},
        {20, 1, 1, 20, 1, 20, 1, 0, "1x1 on 1x1", 0, 0, 0, 0},
        {20, 1, 1, 20, 3, 20, 1, 1, "3x3 on 1x1, Relu", 0, 1, 0, 0},
        {24, 2, 2, 24, 3, 24, 1, 1, "3x3 on 2x2, no bias", 1, 0, 0, 0},
        {16, 5, 6, 16, 5, 16, 2, 2, "5x5/2, Relu", 0, 1, 0, 0},
        {9, 13, 11, 9, 5, 9, 1, 0, "5x5 unpadded", 0, 0, 0, 0},
        {40, 17, 15, 40, 1, 40, 2, 0, "1x1/2, Relu", 0, 1, 0, 0},
        {8, 6, 6, 8, 3, 8, 1, 2, "pads wider than the kernel's half", 0, 0, 0, 0},
        {16, 10, 10, 16, 3, 16, 3, 0, "3x3/3", 0, 0, 0, 0},
        {4, 7, 7, 4, 3, 4, 1, 1, "4 channels, Relu", 0, 1, 0, 0},
        {17, 40, 37, 17, 3, 17, 2, 1, "17 channels, 40x37, 3x3/2, Relu", 0, 1, 0, 0},
        {8, 64, 64, 8, 3, 8, 1, 1, "3x3 on 64x64, Relu", 0, 1, 0, 0},
        {3, 20, 20, 3, 3, 3, 1, 1, "3 channels (a plane at a time), Relu", 0, 1, 0, 0},
        {1, 12, 9, 1, 3, 1, 2, 1, "1 channel, 3x3/2, no bias, Relu", 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check(&cases[i]);
        /* and with the Relu the other way: every path writes it itself */
        ccase other = cases[i];
        other.relu = !other.relu;
        check(&other);
    }
}
