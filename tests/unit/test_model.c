/* The model engine: ONNX writer -> loader round trips, Conv/Gemm/MatMul
 * against direct loops, buffer planning, weights packed at planning and a
 * Relu fused into its Conv (the same bits as without), and the refusals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/exec.h"
#include "model/model.h"
#include "onnx/writer.h"
#include "util/file.h"
#include "util/isa.h"

/* splitmix64: deterministic test data without global state. */
static float rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static sm_tensor *rand_tensor(int ndim, const int64_t *shape, uint64_t seed)
{
    sm_tensor *t = sm_tensor_new(ndim, shape);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = rnd(&seed);
    return t;
}

static sm_model *load_writer(sm_onnx_writer *w)
{
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_model *m = sm_model_load_buffer(buf, len, "test.onnx", &err);
    free(buf);
    cr_assert_not_null(m, "load failed: %s", err.msg);
    return m;
}

static void assert_close(const float *got, const float *want, int64_t n,
                         float tol, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabsf(got[i] - want[i]) <= tol * fmaxf(1.0f, fabsf(want[i])),
                  "%s: element %lld: got %g, want %g", what, (long long)i,
                  got[i], want[i]);
}

/* --- Conv against the definition ------------------------------------------ */

typedef struct conv_case {
    int64_t n, c, h, w, m, kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr;
    const char *auto_pad; /* NULL: explicit pads */
} conv_case;

static void conv_direct(const conv_case *k, const sm_tensor *x,
                        const sm_tensor *wt, const float *b, int64_t oh,
                        int64_t ow, const int64_t *padb, float *y)
{
    int64_t cg = k->c / k->group, mg = k->m / k->group;
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t m = 0; m < k->m; m++) {
            int64_t g = m / mg;
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double s = b ? b[m] : 0.0;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t i = 0; i < k->kh; i++)
                            for (int64_t j = 0; j < k->kw; j++) {
                                int64_t iy = oy * k->sh - padb[0] + i * k->dh;
                                int64_t ix = ox * k->sw - padb[1] + j * k->dw;
                                if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w)
                                    continue;
                                s += (double)x->data[((n * k->c + g * cg + ci) * k->h + iy) * k->w + ix] *
                                     wt->data[((m * cg + ci) * k->kh + i) * k->kw + j];
                            }
                    y[((n * k->m + m) * oh + oy) * ow + ox] = (float)s;
                }
        }
}

static void check_conv(const conv_case *k, int with_bias)
{
    int64_t xs[4] = {k->n, k->c, k->h, k->w};
    int64_t ws[4] = {k->m, k->c / k->group, k->kh, k->kw};
    sm_tensor *x = rand_tensor(4, xs, 1), *wt = rand_tensor(4, ws, 2);
    sm_tensor *b = rand_tensor(1, &k->m, 3);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, k->c, k->h, k->w});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_initializer(w, "b", b);
    sm_onnx_writer_node(w, "Conv", "conv", (const char *[]){"x", "w", "b"},
                        with_bias ? 3 : 2, (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){k->sh, k->sw}, 2);
    sm_onnx_writer_attr_ints(w, "dilations", (int64_t[]){k->dh, k->dw}, 2);
    sm_onnx_writer_attr_int(w, "group", k->group);
    if (k->auto_pad)
        sm_onnx_writer_attr_string(w, "auto_pad", k->auto_pad);
    else
        sm_onnx_writer_attr_ints(w, "pads",
                                 (int64_t[]){k->pt, k->pl, k->pb, k->pr}, 4);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){-1, k->m, -1, -1});
    sm_model *m = load_writer(w);
    sm_onnx_writer_destroy(&w);

    int64_t ekh = (k->kh - 1) * k->dh + 1, ekw = (k->kw - 1) * k->dw + 1;
    int64_t oh, ow, padb[2];
    if (k->auto_pad) { /* SAME_UPPER */
        oh = (k->h + k->sh - 1) / k->sh;
        ow = (k->w + k->sw - 1) / k->sw;
        int64_t th = (oh - 1) * k->sh + ekh - k->h, tw = (ow - 1) * k->sw + ekw - k->w;
        padb[0] = th > 0 ? th / 2 : 0;
        padb[1] = tw > 0 ? tw / 2 : 0;
    } else {
        oh = (k->h + k->pt + k->pb - ekh) / k->sh + 1;
        ow = (k->w + k->pl + k->pr - ekw) / k->sw + 1;
        padb[0] = k->pt;
        padb[1] = k->pl;
    }
    float *want = calloc((size_t)(k->n * k->m * oh * ow), sizeof(float));
    conv_direct(k, x, wt, with_bias ? b->data : NULL, oh, ow, padb, want);
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, x->data, k->n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert_eq(y->ndim, 4);
    cr_assert(y->shape[0] == k->n && y->shape[1] == k->m && y->shape[2] == oh &&
              y->shape[3] == ow, "output shape");
    assert_close(y->data, want, k->n * k->m * oh * ow, 1e-4f, "conv");
    double flops = 2.0 * k->n * k->m * (k->c / k->group) * k->kh * k->kw * oh * ow;
    cr_assert_float_eq(sm_model_flops(m), flops, 1e-6 * flops);
    free(want);
    sm_model_destroy(&m);
    cr_assert_null(m);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_tensor_destroy(&b);
}

Test(model, conv_matches_direct_loops)
{
    const conv_case cases[] = {
        /* n  c  h  w  m kh kw g sh sw dh dw pt pl pb pr */
        {1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL},
        {3, 3, 9, 7, 4, 3, 2, 1, 2, 1, 1, 1, 0, 1, 1, 0, NULL},
        {2, 4, 8, 8, 6, 3, 3, 2, 1, 2, 2, 1, 2, 0, 1, 2, NULL},
        {2, 6, 6, 6, 6, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1, NULL}, /* depthwise */
        {5, 8, 4, 4, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL}, /* pointwise */
        {1, 8, 4, 4, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL}, /* no im2col */
        {2, 3, 7, 10, 4, 3, 3, 1, 2, 3, 1, 1, 0, 0, 0, 0, "SAME_UPPER"},
        /* enough images that the batch is split into chunks */
        {700, 3, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_conv(&cases[i], 1);
        check_conv(&cases[i], 0);
    }
}

Test(model, conv_1d)
{
    /* x [1, 2, 6], w [1, 2, 3]: hand-computed with pads 1 and stride 2. */
    sm_tensor *x = sm_tensor_new(3, (int64_t[]){1, 2, 6});
    sm_tensor *wt = sm_tensor_new(3, (int64_t[]){1, 2, 3});
    for (int i = 0; i < 12; i++)
        x->data[i] = (float)(i + 1);
    const float wv[6] = {1, 0, -1, 2, 1, 0};
    memcpy(wt->data, wv, sizeof wv);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 3, (int64_t[]){1, 2, 6});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "Conv", "c", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){1, 1}, 2);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2}, 1);
    sm_onnx_writer_output(w, "y", 3, (int64_t[]){1, 1, 3});
    sm_model *m = load_writer(w);
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, x->data, 1, &err);
    cr_assert_not_null(y, "%s", err.msg);
    /* padded ch0 = 0 1 2 3 4 5 6 0, ch1 = 0 7 8 9 10 11 12 0; out at 0,2,4:
     * o0 = (0 - 2) + (0*2 + 7) = 5; o1 = (2 - 4) + (8*2 + 9) = 23;
     * o2 = (4 - 6) + (10*2 + 11) = 29 */
    cr_assert_eq(y->shape[2], 3);
    cr_assert_float_eq(y->data[0], 5.0f, 1e-6);
    cr_assert_float_eq(y->data[1], 23.0f, 1e-6);
    cr_assert_float_eq(y->data[2], 29.0f, 1e-6);
    sm_model_destroy(&m);
    sm_onnx_writer_destroy(&w);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
}

/* --- Gemm and MatMul -------------------------------------------------------- */

Test(model, gemm_transposes_and_bias)
{
    const int64_t n = 5, k = 4, o = 3;
    sm_tensor *wt = rand_tensor(2, (int64_t[]){o, k}, 7);
    sm_tensor *b = rand_tensor(1, (int64_t[]){o}, 8);
    sm_tensor *x = rand_tensor(2, (int64_t[]){n, k}, 9);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){-1, k});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_initializer(w, "b", b);
    sm_onnx_writer_node(w, "Gemm", "fc", (const char *[]){"x", "w", "b"}, 3,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(w, "transB", 1);
    sm_onnx_writer_attr_float(w, "alpha", 0.5f);
    sm_onnx_writer_attr_float(w, "beta", 2.0f);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, o});
    sm_model *m = load_writer(w);
    sm_onnx_writer_destroy(&w);
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, x->data, n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < o; j++) {
            double s = 0;
            for (int64_t q = 0; q < k; q++)
                s += (double)x->data[i * k + q] * wt->data[j * k + q];
            cr_assert_float_eq(y->data[i * o + j], 0.5 * s + 2.0 * b->data[j],
                               1e-5);
        }
    sm_model_destroy(&m);
    sm_tensor_destroy(&wt);
    sm_tensor_destroy(&b);
    sm_tensor_destroy(&x);
}

/* Gemm's weights packed at planning (an initializer) give the bits of the
 * same weights packed at every run (fed as a graph input, which can
 * change between runs): transB 0 and 1, outputs past one 32-column panel,
 * every instruction set, batches of 1 and 7. */
static sm_model *gemm_model(const sm_tensor *wt, int trans_b, int as_input)
{
    const int64_t k = trans_b ? wt->shape[1] : wt->shape[0];
    const int64_t o = trans_b ? wt->shape[0] : wt->shape[1];
    sm_tensor *b = rand_tensor(1, (int64_t[]){o}, 12);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){-1, k});
    if (as_input)
        sm_onnx_writer_input(w, "w", 2, wt->shape);
    else
        sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_initializer(w, "b", b);
    sm_onnx_writer_node(w, "Gemm", "fc", (const char *[]){"x", "w", "b"}, 3,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(w, "transB", trans_b);
    sm_onnx_writer_attr_float(w, "alpha", 0.75f);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, o});
    sm_model *m = load_writer(w);
    sm_onnx_writer_destroy(&w);
    sm_tensor_destroy(&b);
    return m;
}

Test(model, gemm_packed_weights_give_the_same_bits)
{
    const int64_t k = 50, o = 40;
    const char *isas[] = {"avx512", "avx2", "baseline"};
    for (int is = 0; is < 3; is++)
        for (int tb = 0; tb < 2; tb++) {
            setenv("SALMAP_ISA", isas[is], 1);
            sm_tensor *wt = rand_tensor(2, tb ? (int64_t[]){o, k}
                                              : (int64_t[]){k, o}, 10);
            sm_model *packed = gemm_model(wt, tb, 0);
            sm_model *fed = gemm_model(wt, tb, 1);
            for (int64_t n = 1; n <= 7; n += 6) {
                sm_tensor *x = rand_tensor(2, (int64_t[]){n, k}, 11);
                sm_err err = {0};
                const sm_tensor *out[1];
                const sm_tensor *in2[2] = {x, wt};
                cr_assert_eq(sm_model_run(fed, in2, 2, out, &err), 0, "%s",
                             err.msg);
                sm_tensor *want = sm_tensor_clone(out[0]);
                cr_assert_eq(sm_model_run(packed, in2, 1, out, &err), 0, "%s",
                             err.msg);
                cr_assert_eq(memcmp(out[0]->data, want->data,
                                    sizeof(float) * (size_t)(n * o)), 0,
                             "%s, transB %d, batch %lld: packed weights "
                             "change the bits", isas[is], tb, (long long)n);
                sm_tensor *b = rand_tensor(1, (int64_t[]){o}, 12);
                for (int64_t i = 0; i < n * o; i++) {
                    double s = 0, mag = 0; /* and both are the product */
                    for (int64_t q = 0; q < k; q++) {
                        double t = (double)x->data[i / o * k + q] *
                                   wt->data[tb ? i % o * k + q : q * o + i % o];
                        s += t;
                        mag += fabs(t);
                    }
                    double y = 0.75 * s + b->data[i % o];
                    cr_assert(fabs(want->data[i] - y) <= 1e-5 * (mag + 1),
                              "output %lld: %g, want %g", (long long)i,
                              want->data[i], y);
                }
                sm_tensor_destroy(&b);
                sm_tensor_destroy(&want);
                sm_tensor_destroy(&x);
            }
            sm_model_destroy(&packed);
            sm_model_destroy(&fed);
            sm_tensor_destroy(&wt);
        }
    unsetenv("SALMAP_ISA");
}

Test(model, matmul_broadcasts_batches)
{
    /* A [2, 1, 3, 4] x B [3, 4, 2] -> [2, 3, 3, 2] */
    sm_tensor *a = rand_tensor(4, (int64_t[]){2, 1, 3, 4}, 11);
    sm_tensor *bm = rand_tensor(3, (int64_t[]){3, 4, 2}, 12);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "a", 4, a->shape);
    sm_onnx_writer_initializer(w, "b", bm);
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"a", "b"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){2, 3, 3, 2});
    sm_model *m = load_writer(w);
    sm_onnx_writer_destroy(&w);
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, a->data, 2, &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert_eq(y->ndim, 4);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 2; c++) {
                    double s = 0;
                    for (int q = 0; q < 4; q++)
                        s += (double)a->data[(i * 3 + r) * 4 + q] *
                             bm->data[(j * 4 + q) * 2 + c];
                    cr_assert_float_eq(y->data[((i * 3 + j) * 3 + r) * 2 + c], s,
                                       1e-5);
                }
    sm_model_destroy(&m);
    sm_tensor_destroy(&a);
    sm_tensor_destroy(&bm);
}

/* --- planning --------------------------------------------------------------- */

static sm_model *tiny_gemm(void)
{
    sm_tensor *wt = rand_tensor(2, (int64_t[]){2, 3}, 21);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){-1, 2});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "Gemm", "fc", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, 3});
    sm_model *m = load_writer(w);
    sm_onnx_writer_destroy(&w);
    sm_tensor_destroy(&wt);
    return m;
}

Test(model, plans_are_reused_per_batch_size)
{
    sm_model *m = tiny_gemm();
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    sm_err err = {0};
    const sm_tensor *y3 = sm_model_forward(m, x, 3, &err);
    cr_assert_not_null(y3, "%s", err.msg);
    float first[9];
    memcpy(first, y3->data, sizeof first);
    const float *buf3 = y3->data;
    const sm_tensor *y5 = sm_model_forward(m, x, 5, &err);
    cr_assert_not_null(y5);
    cr_assert_eq(y5->shape[0], 5);
    /* the first three rows do not depend on the batch */
    assert_close(y5->data, first, 9, 0.0f, "batch 5 vs 3");
    const sm_tensor *again = sm_model_forward(m, x, 3, &err);
    cr_assert_eq(again->data, buf3, "batch 3 re-planned instead of reused");
    assert_close(again->data, first, 9, 0.0f, "batch 3 again");
    sm_model_destroy(&m);
}

/* --- refusals ---------------------------------------------------------------- */

static void expect_load_error(const void *buf, size_t len, const char *needle)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_buffer(buf, len, "bad.onnx", &err);
    cr_assert_null(m, "loaded a model that should be refused (%s)", needle);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg,
              needle);
    cr_assert(strstr(err.msg, "bad.onnx"), "message '%s' lacks the file",
              err.msg);
}

static void expect_writer_error(sm_onnx_writer *w, const char *needle)
{
    size_t len;
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, NULL);
    cr_assert_not_null(buf);
    expect_load_error(buf, len, needle);
    free(buf);
    sm_onnx_writer_destroy(&w);
}

Test(model, refuses_garbage_and_truncated_files)
{
    const char text[] = "this is not an ONNX model, just some text\n";
    expect_load_error(text, sizeof text - 1, "not an ONNX model");
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_tensor *wt = rand_tensor(2, (int64_t[]){64, 64}, 3);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){-1, 64});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, 64});
    size_t len;
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, NULL);
    for (size_t cut = 1; cut < len; cut += len / 7) {
        sm_err err = {0};
        sm_model *m = sm_model_load_buffer(buf, cut, "cut.onnx", &err);
        cr_assert_null(m, "a model cut at %zu of %zu bytes loaded", cut, len);
        cr_assert(strstr(err.msg, "cut.onnx"), "%s", err.msg);
    }
    free(buf);
    sm_onnx_writer_destroy(&w);
    sm_tensor_destroy(&wt);
    sm_err err = {0};
    cr_assert_null(sm_model_load_file("/nonexistent/model.onnx", &err));
    cr_assert(strstr(err.msg, "/nonexistent/model.onnx"), "%s", err.msg);
}

Test(model, refuses_unsupported_operator_by_name)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){1, 4});
    sm_onnx_writer_node(w, "Erf", "my_erf", (const char *[]){"x"}, 1,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){1, 4});
    expect_writer_error(w, "node 'my_erf': operator 'Erf' is not supported");
}

Test(model, refuses_nan_weights)
{
    sm_tensor *wt = rand_tensor(2, (int64_t[]){4, 4}, 3);
    wt->data[6] = NAN;
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){1, 4});
    sm_onnx_writer_initializer(w, "w_nan", wt);
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"x", "w_nan"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){1, 4});
    sm_tensor_destroy(&wt);
    expect_writer_error(w, "initializer 'w_nan' holds NaN at element 6");
}

Test(model, refuses_bad_conv_attributes_and_shapes)
{
    sm_tensor *wt = rand_tensor(4, (int64_t[]){2, 1, 3, 3}, 3);
    const char *ap[] = {"FOO", NULL};
    for (int i = 0; i < 2; i++) {
        sm_onnx_writer *w = sm_onnx_writer_new(13);
        sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, i ? 2 : 1, 5, 5});
        sm_onnx_writer_initializer(w, "w", wt);
        sm_onnx_writer_node(w, "Conv", "conv1", (const char *[]){"x", "w"}, 2,
                            (const char *[]){"y"}, 1);
        if (ap[i])
            sm_onnx_writer_attr_string(w, "auto_pad", ap[i]);
        sm_onnx_writer_output(w, "y", 4, (int64_t[]){1, 2, 3, 3});
        expect_writer_error(w, i ? "channels" : "auto_pad");
    }
    /* an attribute Conv does not have */
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, 1, 5, 5});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "Conv", "conv1", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(w, "bogus", 1);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){1, 2, 3, 3});
    expect_writer_error(w, "attribute 'bogus' is not supported");
    /* a kernel larger than the input */
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, 1, 2, 2});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "Conv", "conv1", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){1, 2, 1, 1});
    expect_writer_error(w, "node 'conv1' (Conv)");
    sm_tensor_destroy(&wt);
}

Test(model, refuses_dangling_inputs_and_wrong_run_shapes)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){1, 4});
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"x", "ghost"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){1, 4});
    expect_writer_error(w, "input 'ghost' is not a graph input");

    sm_model *m = tiny_gemm();
    sm_tensor *x = sm_tensor_new(2, (int64_t[]){4, 3});
    const sm_tensor *in[1] = {x};
    const sm_tensor *out[1];
    sm_err err = {0};
    cr_assert_eq(sm_model_run(m, in, 1, out, &err), -1);
    cr_assert(strstr(err.msg, "input 'x' has shape [4, 3]"), "%s", err.msg);
    cr_assert_eq(sm_model_run(m, in, 0, out, &err), -1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* A required input or output left without a name, the ONNX mark of an
 * absent optional one (found by fuzz_onnx: MaxPool read a NULL X). */
Test(model, refuses_required_io_without_a_name)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, 1, 4, 4});
    sm_onnx_writer_node(w, "MaxPool", "mp", (const char *[]){""}, 1,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){1, 1, 2, 2});
    expect_writer_error(w, "node 'mp' (MaxPool): input 0 is required but has "
                           "no name");
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){1, 4});
    sm_onnx_writer_node(w, "Relu", "r", (const char *[]){"x"}, 1,
                        (const char *[]){""}, 1);
    sm_onnx_writer_output(w, "x", 2, (int64_t[]){1, 4});
    expect_writer_error(w, "node 'r' (Relu): output 0 is required but has "
                           "no name");
}

/* Shapes a few bytes can declare (found by fuzz_onnx: the element count
 * wrapped int64): refused at load, before anything is allocated. */
Test(model, refuses_activations_past_the_limit)
{
    /* 2^20 x 2^20 x 2^20 x 2^20 wraps int64; 2^10 x 2^10 x 2^9 fits in it
     * but is 2^29 floats, twice the limit of 2^28 an image. */
    static const int64_t shapes[2][4] = {{1 << 20, 1 << 20, 1 << 20, 1 << 20},
                                         {1, 1 << 10, 1 << 10, 1 << 9}};
    for (int k = 0; k < 2; k++) {
        sm_onnx_writer *w = sm_onnx_writer_new(13);
        sm_onnx_writer_input(w, "x", 4, shapes[k]);
        sm_onnx_writer_node(w, "Relu", "r", (const char *[]){"x"}, 1,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_output(w, "y", 4, shapes[k]);
        expect_writer_error(w, "node 'r' (Relu): output shape [");
        w = sm_onnx_writer_new(13);
        sm_onnx_writer_input(w, "x", 4, shapes[k]);
        sm_onnx_writer_node(w, "Relu", "r", (const char *[]){"x"}, 1,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_output(w, "y", 4, shapes[k]);
        expect_writer_error(w, "past the limit of 268435456 floats an image");
    }
    /* 2^28 floats exactly: planned (not run). */
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, 1 << 10, 1 << 9, 1 << 9});
    sm_onnx_writer_node(w, "Relu", "r", (const char *[]){"x"}, 1,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){1, 1 << 10, 1 << 9, 1 << 9});
    sm_model *m = load_writer(w);
    sm_model_destroy(&m);
    sm_onnx_writer_destroy(&w);
}

Test(model, save_and_load_file)
{
    char path[] = "/tmp/sm_model_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    sm_tensor *wt = rand_tensor(2, (int64_t[]){2, 3}, 5);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){-1, 2});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, 3});
    sm_err err = {0};
    cr_assert_eq(sm_onnx_writer_save(w, path, &err), 0, "%s", err.msg);
    sm_onnx_writer_destroy(&w);
    sm_model *m = sm_model_load_file(path, &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_str_eq(sm_model_input_name(m, 0), "x");
    cr_assert_str_eq(sm_model_output_name(m, 0), "y");
    int64_t shape[SM_MAX_DIMS];
    cr_assert_eq(sm_model_input_shape(m, 0, shape), 2);
    cr_assert_eq(shape[0], -1);
    cr_assert_eq(shape[1], 2);
    float x[2] = {1, 2};
    const sm_tensor *y = sm_model_forward(m, x, 1, &err);
    cr_assert_not_null(y);
    for (int j = 0; j < 3; j++)
        cr_assert_float_eq(y->data[j], wt->data[j] + 2 * wt->data[3 + j], 1e-6);
    sm_model_destroy(&m);
    sm_tensor_destroy(&wt);
    unlink(path);
}

/* Conv followed by BatchNormalization: folded at load, the same function as
 * the two applied in turn (computed here directly). */
static void check_conv_bn(int conv_bias, int share_conv_output)
{
    const int64_t c = 2, m = 3, h = 5, w = 5;
    sm_tensor *wt = rand_tensor(4, (int64_t[]){m, c, 3, 3}, 31);
    sm_tensor *b = rand_tensor(1, (int64_t[]){m}, 32);
    sm_tensor *sc = rand_tensor(1, (int64_t[]){m}, 33);
    sm_tensor *bb = rand_tensor(1, (int64_t[]){m}, 34);
    sm_tensor *mean = rand_tensor(1, (int64_t[]){m}, 35);
    sm_tensor *var = rand_tensor(1, (int64_t[]){m}, 36);
    for (int i = 0; i < m; i++)
        var->data[i] = 0.5f + fabsf(var->data[i]);
    sm_tensor *x = rand_tensor(4, (int64_t[]){2, c, h, w}, 37);
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, (int64_t[]){-1, c, h, w});
    sm_onnx_writer_initializer(wr, "w", wt);
    sm_onnx_writer_initializer(wr, "b", b);
    sm_onnx_writer_initializer(wr, "s", sc);
    sm_onnx_writer_initializer(wr, "bb", bb);
    sm_onnx_writer_initializer(wr, "mean", mean);
    sm_onnx_writer_initializer(wr, "var", var);
    sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "w", "b"},
                        conv_bias ? 3 : 2, (const char *[]){"z"}, 1);
    sm_onnx_writer_attr_ints(wr, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    sm_onnx_writer_node(wr, "BatchNormalization", "bn",
                        (const char *[]){"z", "s", "bb", "mean", "var"}, 5,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_float(wr, "epsilon", 1e-3f);
    sm_onnx_writer_output(wr, "y", 4, (int64_t[]){-1, m, h, w});
    if (share_conv_output)
        sm_onnx_writer_output(wr, "z", 4, (int64_t[]){-1, m, h, w});
    sm_model *model = load_writer(wr);
    sm_onnx_writer_destroy(&wr);
    cr_assert_eq(sm_model_n_nodes(model), share_conv_output ? 2 : 1);
    sm_err err = {0};
    const sm_tensor *in[1] = {x};
    const sm_tensor *out[2];
    cr_assert_eq(sm_model_run(model, in, 1, out, &err), 0, "%s", err.msg);
    const conv_case k = {2, c, h, w, m, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL};
    float z[2 * 3 * 5 * 5];
    conv_direct(&k, x, wt, conv_bias ? b->data : NULL, h, w, (int64_t[]){1, 1}, z);
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < m; j++)
            for (int q = 0; q < h * w; q++) {
                int i = (n * m + j) * h * w + q;
                float want = (z[i] - mean->data[j]) /
                                 sqrtf(var->data[j] + 1e-3f) * sc->data[j] +
                             bb->data[j];
                cr_assert_float_eq(out[0]->data[i], want, 1e-5f,
                                   "bias %d shared %d element %d", conv_bias,
                                   share_conv_output, i);
                if (share_conv_output)
                    cr_assert_float_eq(out[1]->data[i], z[i], 1e-5f);
            }
    sm_model_destroy(&model);
    sm_tensor *ts[] = {wt, b, sc, bb, mean, var, x};
    for (int i = 0; i < 7; i++)
        sm_tensor_destroy(&ts[i]);
}

Test(model, batchnorm_after_conv_folds_exactly)
{
    check_conv_bn(1, 0);
    check_conv_bn(0, 0);
    check_conv_bn(1, 1); /* the Conv's output is read elsewhere: not folded */
}

/* --- Relu fused into a Conv ------------------------------------------------ */

/* A Relu fused into the Conv before it (model/plan.c, op.h run_relu)
 * changes no bits: the same model with an Identity between the two,
 * which keeps them apart, computes the same outputs, input gradients and
 * relevance bit for bit, on the direct path (planes of 64 pixels or
 * more) and im2col (smaller ones), on every instruction set, batch and
 * thread count; when the Conv's output has a second reader, that reader
 * still sees the Conv's own output. Against the definition too: the
 * Relu of a double-precision convolution, within float rounding. */

enum { FC = 3, FM = 5 }; /* the fused Conv's channels, in and out */

/* x [N, FC, s, s] -> Conv 3x3 pad 1 (FM channels, bias) -> z -> Relu -> r,
 * the output; apart: z -> Identity -> Relu instead; second: a second
 * output q = z + r (z read twice). */
static sm_model *fuse_model(int64_t s, int apart, int second)
{
    sm_tensor *w = rand_tensor(4, (int64_t[]){FM, FC, 3, 3}, 11);
    sm_tensor *b = rand_tensor(1, (int64_t[]){FM}, 12);
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, (int64_t[]){-1, FC, s, s});
    sm_onnx_writer_initializer(wr, "w", w);
    sm_onnx_writer_initializer(wr, "b", b);
    sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "w", "b"},
                        3, (const char *[]){"z"}, 1);
    sm_onnx_writer_attr_ints(wr, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    if (apart)
        sm_onnx_writer_node(wr, "Identity", "id", (const char *[]){"z"}, 1,
                            (const char *[]){"zi"}, 1);
    sm_onnx_writer_node(wr, "Relu", "relu",
                        (const char *[]){apart ? "zi" : "z"}, 1,
                        (const char *[]){"r"}, 1);
    sm_onnx_writer_output(wr, "r", 4, (int64_t[]){-1, FM, s, s});
    if (second) {
        sm_onnx_writer_node(wr, "Add", "add", (const char *[]){"z", "r"}, 2,
                            (const char *[]){"q"}, 1);
        sm_onnx_writer_output(wr, "q", 4, (int64_t[]){-1, FM, s, s});
    }
    sm_model *m = load_writer(wr);
    sm_onnx_writer_destroy(&wr);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&b);
    return m;
}

/* Whether the last run of m ran its Relu inside the Conv. */
static int relu_fused(const sm_model *m)
{
    const plan *p = m->last_plan[0];
    for (int i = 0; i < m->g.n_nodes; i++)
        if (p->fuse[i] < 0)
            return 1;
    return 0;
}

/* Runs x through m (outputs into out, copied), the input gradient of
 * sum(r) into gx and the epsilon-rule relevance of r into rel. */
static void fuse_evaluate(sm_model *m, const sm_tensor *x, int n_out,
                     sm_tensor **out, sm_tensor **gx, sm_tensor **rel)
{
    sm_err err = {0};
    const sm_tensor *in[1] = {x}, *o[2], *g[1];
    cr_assert_eq(sm_model_run(m, in, 1, o, &err), 0, "%s", err.msg);
    for (int k = 0; k < n_out; k++)
        out[k] = sm_tensor_clone(o[k]);
    sm_tensor *seed = sm_tensor_new(o[0]->ndim, o[0]->shape);
    for (int64_t i = 0; i < sm_tensor_numel(seed); i++)
        seed->data[i] = 1.0f;
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
    *gx = sm_tensor_clone(g[0]);
    const sm_model_lrp_rules rules = {1e-6, 1e-6, 2, 1, SM_LRP_EPSILON,
                                      SM_LRP_EPSILON, SM_LRP_EPSILON};
    cr_assert_eq(sm_model_relevance(m, 0, seed, &rules, g, &err), 0, "%s",
                 err.msg);
    *rel = sm_tensor_clone(g[0]);
    sm_tensor_destroy(&seed);
}

static void fuse_same_bits(const sm_tensor *a, const sm_tensor *b, const char *what,
                      int64_t s, int second, int threads)
{
    cr_assert_eq(sm_tensor_numel(a), sm_tensor_numel(b));
    for (int64_t i = 0; i < sm_tensor_numel(a); i++)
        cr_assert_eq(memcmp(&a->data[i], &b->data[i], sizeof(float)), 0,
                     "%s, %lldx%lld plane, second reader %d, %d threads, "
                     "isa %s: element %lld is %.9g fused, %.9g apart", what,
                     (long long)s, (long long)s, second, threads,
                     sm_isa_name(sm_isa()), (long long)i, a->data[i],
                     b->data[i]);
}

/* The Relu of the convolution in double precision (the definition). */
static void fuse_check_definition(const sm_tensor *x, const sm_tensor *r, int64_t s)
{
    sm_tensor *w = rand_tensor(4, (int64_t[]){FM, FC, 3, 3}, 11);
    sm_tensor *b = rand_tensor(1, (int64_t[]){FM}, 12);
    for (int64_t n = 0; n < x->shape[0]; n++)
        for (int64_t m = 0; m < FM; m++)
            for (int64_t oy = 0; oy < s; oy++)
                for (int64_t ox = 0; ox < s; ox++) {
                    double z = b->data[m], mag = fabs(z);
                    for (int64_t c = 0; c < FC; c++)
                        for (int64_t i = 0; i < 3; i++)
                            for (int64_t j = 0; j < 3; j++) {
                                int64_t iy = oy + i - 1, ix = ox + j - 1;
                                if (iy < 0 || iy >= s || ix < 0 || ix >= s)
                                    continue;
                                double t = (double)x->data[((n * FC + c) * s + iy) * s + ix] *
                                           w->data[((m * FC + c) * 3 + i) * 3 + j];
                                z += t;
                                mag += fabs(t);
                            }
                    float got = r->data[((n * FM + m) * s + oy) * s + ox];
                    double want = z < 0 ? 0 : z;
                    cr_assert(fabs(got - want) <= 1e-5 * (mag + 1e-3),
                              "relu(conv) at %lld,%lld,%lld,%lld: %g, want %g",
                              (long long)n, (long long)m, (long long)oy,
                              (long long)ox, got, want);
                    cr_assert(got >= 0 || z >= 0, "negative after Relu");
                }
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&b);
}

static void check_fused(int64_t s, int second)
{
    const int n_out = second ? 2 : 1;
    for (int threads = 1; threads <= 2; threads++) {
        sm_model *f = fuse_model(s, 0, second), *a = fuse_model(s, 1, second);
        sm_model_set_threads(f, threads);
        sm_model_set_threads(a, threads);
        for (int64_t batch = 1; batch <= 5; batch += 4) {
            sm_tensor *x = rand_tensor(4, (int64_t[]){batch, FC, s, s},
                                       (uint64_t)(100 + batch));
            sm_tensor *fo[2], *ao[2], *fg, *ag, *fr, *ar;
            fuse_evaluate(f, x, n_out, fo, &fg, &fr);
            cr_assert(relu_fused(f), "the Relu runs inside the Conv");
            fuse_evaluate(a, x, n_out, ao, &ag, &ar);
            cr_assert(!relu_fused(a), "an Identity keeps them apart");
            fuse_same_bits(fo[0], ao[0], "Relu output", s, second, threads);
            if (second)
                fuse_same_bits(fo[1], ao[1], "z + r (z's second reader)", s,
                          second, threads);
            fuse_same_bits(fg, ag, "input gradient", s, second, threads);
            fuse_same_bits(fr, ar, "relevance", s, second, threads);
            fuse_check_definition(x, fo[0], s);
            for (int k = 0; k < n_out; k++) {
                sm_tensor_destroy(&fo[k]);
                sm_tensor_destroy(&ao[k]);
            }
            sm_tensor *ts[] = {fg, ag, fr, ar, x};
            for (int k = 0; k < 5; k++)
                sm_tensor_destroy(&ts[k]);
        }
        sm_model_destroy(&f);
        sm_model_destroy(&a);
    }
}

/* Every set this CPU has: AVX-512 and AVX2 fuse in the direct kernel's
 * copy-out, the baseline set after im2col. */
Test(model, relu_into_conv_changes_no_bits)
{
    const char *isas[] = {"avx512", "avx2", "baseline"};
    for (int k = 0; k < 3; k++) {
        setenv("SALMAP_ISA", isas[k], 1);
        check_fused(12, 0); /* 144 pixels: the direct path */
        check_fused(12, 1);
        check_fused(6, 0);  /* 36 pixels: im2col */
        check_fused(6, 1);
    }
    unsetenv("SALMAP_ISA");
}

/* The Relu with no Conv before it, or after a node that cannot fuse it
 * (here Identity, above), runs as a node of its own: checked by relu_fused()
 * on the apart model; and a Relu whose input is the graph input has no
 * producer at all. */
Test(model, relu_of_the_input_runs_alone)
{
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 2, (int64_t[]){-1, 4});
    sm_onnx_writer_node(wr, "Relu", "relu", (const char *[]){"x"}, 1,
                        (const char *[]){"r"}, 1);
    sm_onnx_writer_output(wr, "r", 2, (int64_t[]){-1, 4});
    sm_model *m = load_writer(wr);
    sm_onnx_writer_destroy(&wr);
    sm_err err = {0};
    const float nz = -0.0f;
    float xs[4] = {-2.0f, nz, 3.5f, NAN};
    const sm_tensor *y = sm_model_forward(m, xs, 1, &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert(!relu_fused(m));
    cr_assert_eq(y->data[0], 0.0f);
    cr_assert(signbit(y->data[1]), "-0 passes as -0 (x < 0 ? 0 : x)");
    cr_assert_eq(y->data[2], 3.5f);
    cr_assert(isnan(y->data[3]), "NaN passes");
    sm_model_destroy(&m);
}
