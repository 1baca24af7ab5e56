/* The engine's backward pass and the gradients of Conv, Gemm and MatMul,
 * against central finite differences of L = sum(seed * output). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "model/exec.h"
#include "model/model.h"
#include "onnx/writer.h"

static double rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static sm_tensor *rand_tensor(int ndim, const int64_t *shape, uint64_t seed)
{
    sm_tensor *t = sm_tensor_new(ndim, shape);
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = (float)rnd(&seed);
    return t;
}

static double loss(sm_model *m, sm_tensor **x, int n_in, int out,
                   const sm_tensor *seed)
{
    const sm_tensor *in[8], *y[8];
    for (int i = 0; i < n_in; i++)
        in[i] = x[i];
    sm_err err = {0};
    cr_assert_eq(sm_model_run(m, in, n_in, y, &err), 0, "%s", err.msg);
    double l = 0;
    for (int64_t j = 0; j < sm_tensor_numel(seed); j++)
        l += (double)seed->data[j] * y[out]->data[j];
    return l;
}

/* Compares every input's gradient, times gscale (1: as computed), or
 * `samples` random elements of it, with central differences. Returns the
 * worst |fd - g| / max(1, |g|). */
static double fd_compare(sm_model *m, sm_tensor **x, int n_in, int out,
                         double eps, int samples, uint64_t s, double gscale)
{
    const sm_tensor *in[8], *y[8], *g[8];
    for (int i = 0; i < n_in; i++)
        in[i] = x[i];
    sm_err err = {0};
    cr_assert_eq(sm_model_run(m, in, n_in, y, &err), 0, "%s", err.msg);
    sm_tensor *seed = rand_tensor(y[out]->ndim, y[out]->shape, s);
    cr_assert_eq(sm_model_backward(m, out, seed, g, &err), 0, "%s", err.msg);
    sm_tensor *gc[8];
    for (int i = 0; i < n_in; i++) {
        cr_assert(sm_shape_equal(g[i]->ndim, g[i]->shape, x[i]->ndim, x[i]->shape));
        gc[i] = sm_tensor_clone(g[i]);
    }
    double worst = 0;
    for (int i = 0; i < n_in; i++) {
        int64_t n = sm_tensor_numel(x[i]);
        int64_t count = samples && samples < n ? samples : n;
        for (int64_t c = 0; c < count; c++) {
            int64_t j = count == n ? c : (int64_t)((rnd(&s) + 1) / 2 * (double)n) % n;
            float keep = x[i]->data[j];
            x[i]->data[j] = keep + (float)eps;
            double lp = loss(m, x, n_in, out, seed);
            x[i]->data[j] = keep - (float)eps;
            double lm = loss(m, x, n_in, out, seed);
            x[i]->data[j] = keep;
            double fd = (lp - lm) / (2 * eps);
            double gj = gscale * gc[i]->data[j];
            double e = fabs(fd - gj) / fmax(1.0, fabs(gj));
            if (e > worst)
                worst = e;
        }
        sm_tensor_destroy(&gc[i]);
    }
    sm_tensor_destroy(&seed);
    return worst;
}

static double fd_worst(sm_model *m, sm_tensor **x, int n_in, int out,
                       double eps, int samples, uint64_t s)
{
    return fd_compare(m, x, n_in, out, eps, samples, s, 1.0);
}

static sm_model *load(sm_onnx_writer *w)
{
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, &err);
    sm_model *m = sm_model_load_buffer(buf, len, "grad.onnx", &err);
    free(buf);
    sm_onnx_writer_destroy(&w);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

typedef struct cc {
    int64_t n, c, h, w, m, kh, kw, g, sh, sw, dh, dw, pad;
} cc;

Test(backward, conv_input_weight_bias_gradients)
{
    const cc cases[] = {
        {2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1},
        {1, 4, 7, 7, 2, 3, 2, 2, 2, 2, 1, 1, 1},  /* groups, stride 2 */
        {2, 2, 8, 8, 2, 3, 3, 1, 1, 3, 2, 2, 2},  /* dilation, stride 3 */
        {3, 3, 5, 5, 3, 1, 1, 3, 1, 1, 1, 1, 0},  /* depthwise 1x1 */
        {40, 1, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 0}, /* a batch in chunks */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cc *k = &cases[i];
        sm_onnx_writer *w = sm_onnx_writer_new(13);
        sm_onnx_writer_input(w, "x", 4, (int64_t[]){k->n, k->c, k->h, k->w});
        sm_onnx_writer_input(w, "w", 4, (int64_t[]){k->m, k->c / k->g, k->kh, k->kw});
        sm_onnx_writer_input(w, "b", 1, (int64_t[]){k->m});
        sm_onnx_writer_node(w, "Conv", "conv", (const char *[]){"x", "w", "b"}, 3,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_attr_int(w, "group", k->g);
        sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){k->sh, k->sw}, 2);
        sm_onnx_writer_attr_ints(w, "dilations", (int64_t[]){k->dh, k->dw}, 2);
        sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){k->pad, k->pad, k->pad, k->pad}, 4);
        sm_onnx_writer_output(w, "y", 4, (int64_t[]){k->n, k->m, -1, -1});
        sm_model *m = load(w);
        sm_tensor *x[3] = {
            rand_tensor(4, (int64_t[]){k->n, k->c, k->h, k->w}, 1 + i),
            rand_tensor(4, (int64_t[]){k->m, k->c / k->g, k->kh, k->kw}, 2 + i),
            rand_tensor(1, (int64_t[]){k->m}, 3 + i)};
        double e = fd_worst(m, x, 3, 0, 1e-2, 200, 7 + i);
        cr_assert(e < 5e-3, "conv case %zu: gradient off by %g", i, e);
        for (int j = 0; j < 3; j++)
            sm_tensor_destroy(&x[j]);
        sm_model_destroy(&m);
    }
}

/* Stride-1 convolutions (most of them on the engine's direct path,
 * ops/conv_direct.c, whose blocks of 8, 4, 2 and 1 output channels each
 * appear forward or backward) against plain loops in double: the output,
 * and the input, weight and bias gradients of L = sum(seed * y).
 * Asymmetric pads, pads beyond the kernel's reach, groups, rows spanning
 * several vector tiles, and a plane too small for the direct path. */
typedef struct sc {
    int64_t n, c, h, w, m, kh, kw, g, pt, pl, pb, pr;
} sc;

Test(backward, conv_stride1_matches_direct_loops)
{
    const sc cases[] = {
        {2, 1, 28, 28, 6, 5, 5, 1, 2, 2, 2, 2},   /* LeNet conv1 */
        {2, 6, 14, 14, 16, 5, 5, 1, 0, 0, 0, 0},  /* LeNet conv2 */
        {1, 3, 17, 23, 1, 3, 4, 1, 1, 2, 0, 3},   /* one channel out */
        {1, 4, 12, 12, 12, 3, 3, 2, 1, 1, 1, 1},  /* groups */
        {1, 2, 9, 40, 17, 2, 3, 1, 3, 0, 0, 4},   /* pads past the kernel */
        {3, 5, 10, 10, 4, 3, 3, 1, 1, 1, 1, 1},   /* blocks of 4 */
        {1, 1, 6, 6, 3, 3, 3, 1, 0, 0, 0, 0},     /* 4 x 4 out: im2col */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sc *k = &cases[i];
        const int64_t cg = k->c / k->g, mg = k->m / k->g;
        const int64_t oh = k->h + k->pt + k->pb - k->kh + 1;
        const int64_t ow = k->w + k->pl + k->pr - k->kw + 1;
        int64_t xs[] = {k->n, k->c, k->h, k->w}, ws[] = {k->m, cg, k->kh, k->kw};
        int64_t ys[] = {k->n, k->m, oh, ow};
        sm_onnx_writer *wr = sm_onnx_writer_new(13);
        sm_onnx_writer_input(wr, "x", 4, xs);
        sm_onnx_writer_input(wr, "w", 4, ws);
        sm_onnx_writer_input(wr, "b", 1, (int64_t[]){k->m});
        sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "w", "b"}, 3,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_attr_int(wr, "group", k->g);
        sm_onnx_writer_attr_ints(wr, "pads", (int64_t[]){k->pt, k->pl, k->pb, k->pr}, 4);
        sm_onnx_writer_output(wr, "y", 4, ys);
        sm_model *m = load(wr);
        sm_tensor *x = rand_tensor(4, xs, 100 + i), *w = rand_tensor(4, ws, 200 + i);
        sm_tensor *b = rand_tensor(1, (int64_t[]){k->m}, 300 + i);
        sm_tensor *seed = rand_tensor(4, ys, 400 + i);
        const sm_tensor *in[3] = {x, w, b}, *y[1], *gr[3];
        sm_err err = {0};
        cr_assert_eq(sm_model_run(m, in, 3, y, &err), 0, "%s", err.msg);
        cr_assert(sm_shape_equal(4, y[0]->shape, 4, ys), "case %zu: output shape", i);
        cr_assert_eq(sm_model_backward(m, 0, seed, gr, &err), 0, "%s", err.msg);
        double *gx = calloc((size_t)sm_tensor_numel(x), sizeof(double));
        double *gw = calloc((size_t)sm_tensor_numel(w), sizeof(double));
        double worst = 0;
        for (int64_t n = 0; n < k->n; n++)
            for (int64_t mo = 0; mo < k->m; mo++) {
                const int64_t c0 = mo / mg * cg;
                for (int64_t oy = 0; oy < oh; oy++)
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const int64_t yi = ((n * k->m + mo) * oh + oy) * ow + ox;
                        double acc = b->data[mo], mag = fabs(acc), sd = seed->data[yi];
                        for (int64_t ci = 0; ci < cg; ci++)
                            for (int64_t ki = 0; ki < k->kh; ki++)
                                for (int64_t kj = 0; kj < k->kw; kj++) {
                                    int64_t iy = oy - k->pt + ki, ix = ox - k->pl + kj;
                                    if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w)
                                        continue;
                                    int64_t xi = ((n * k->c + c0 + ci) * k->h + iy) * k->w + ix;
                                    int64_t wi = ((mo * cg + ci) * k->kh + ki) * k->kw + kj;
                                    acc += (double)w->data[wi] * x->data[xi];
                                    mag += fabs((double)w->data[wi] * x->data[xi]);
                                    gx[xi] += (double)w->data[wi] * sd;
                                    gw[wi] += (double)x->data[xi] * sd;
                                }
                        double e = fabs(acc - y[0]->data[yi]) / (mag + 1e-6);
                        worst = e > worst ? e : worst;
                    }
            }
        for (int64_t mo = 0; mo < k->m; mo++) { /* dB: seed summed */
            double all = 0;
            for (int64_t n = 0; n < k->n; n++)
                for (int64_t q = 0; q < oh * ow; q++)
                    all += seed->data[(n * k->m + mo) * oh * ow + q];
            cr_assert(fabs(all - gr[2]->data[mo]) <= 1e-4 * (1 + fabs(all)),
                      "case %zu: bias gradient %lld: %g, want %g", i,
                      (long long)mo, gr[2]->data[mo], all);
        }
        cr_assert(worst < 1e-5, "case %zu: output off by %g relative", i, worst);
        for (int j = 0; j < 2; j++) {
            const double *want = j ? gw : gx;
            const sm_tensor *got = gr[j];
            for (int64_t q = 0; q < sm_tensor_numel(got); q++)
                cr_assert(fabs(want[q] - got->data[q]) <= 1e-4 * (1 + fabs(want[q])),
                          "case %zu: %s gradient [%lld]: %g, want %g", i,
                          j ? "weight" : "input", (long long)q, got->data[q], want[q]);
        }
        free(gx);
        free(gw);
        sm_tensor_destroy(&x);
        sm_tensor_destroy(&w);
        sm_tensor_destroy(&b);
        sm_tensor_destroy(&seed);
        sm_model_destroy(&m);
    }
}

/* col2im's input gradients, bit for bit: the strided layers whose input
 * gradient does not run as forward Convs (ops/conv_transposed.c: dilated
 * ones, strides past 4, pads past the kernel, a 3 x 3 / 2). With one
 * output channel every column entry of col2im is
 * one rounded product w * dy, so the input gradient is fixed to the bit:
 * each pixel adds its taps' products onto zero in tap order (row, then
 * column). col2im adds them on a phase layout of each row when the taps
 * span more than twice the stride, else in place; a misplaced phase or
 * offset, or a changed order, shows here. */
Test(backward, strided_input_gradients_add_in_tap_order)
{
    const struct {
        int64_t c, h, w, k, s, d, pad;
    } cases[] = {
        {3, 20, 21, 4, 2, 2, 3},  /* dilated: phases */
        {2, 15, 19, 3, 2, 3, 2},  /* dilated: phases */
        {1, 16, 23, 4, 2, 2, 3},  /* dilated: phases */
        {2, 11, 17, 3, 3, 2, 2},  /* dilated: in place */
        {1, 9, 10, 4, 2, 1, 5},   /* pads past the kernel: in place */
        {2, 12, 13, 3, 2, 1, 0},  /* in place */
        {2, 10, 11, 1, 5, 1, 0},  /* 1 x 1 at stride 5: in place */
        {2, 40, 43, 13, 5, 1, 6}, /* stride 5: phases */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t c = cases[i].c, h = cases[i].h, wd = cases[i].w;
        const int64_t k = cases[i].k, st = cases[i].s, dl = cases[i].d;
        const int64_t pad = cases[i].pad, n = 2, ext = dl * (k - 1) + 1;
        const int64_t oh = (h + 2 * pad - ext) / st + 1;
        const int64_t ow = (wd + 2 * pad - ext) / st + 1;
        int64_t xs[] = {n, c, h, wd}, ws[] = {1, c, k, k}, ys[] = {n, 1, oh, ow};
        sm_onnx_writer *wr = sm_onnx_writer_new(13);
        sm_onnx_writer_input(wr, "x", 4, xs);
        sm_onnx_writer_input(wr, "w", 4, ws);
        sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "w"}, 2,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_attr_ints(wr, "strides", (int64_t[]){st, st}, 2);
        sm_onnx_writer_attr_ints(wr, "dilations", (int64_t[]){dl, dl}, 2);
        sm_onnx_writer_attr_ints(wr, "pads", (int64_t[]){pad, pad, pad, pad}, 4);
        sm_onnx_writer_output(wr, "y", 4, ys);
        sm_model *m = load(wr);
        sm_tensor *x = rand_tensor(4, xs, 500 + i), *w = rand_tensor(4, ws, 600 + i);
        sm_tensor *seed = rand_tensor(4, ys, 700 + i);
        const sm_tensor *in[2] = {x, w}, *y[1], *gr[2];
        sm_err err = {0};
        cr_assert_eq(sm_model_run(m, in, 2, y, &err), 0, "%s", err.msg);
        cr_assert(sm_shape_equal(4, y[0]->shape, 4, ys), "case %zu: output shape", i);
        cr_assert_eq(sm_model_backward(m, 0, seed, gr, &err), 0, "%s", err.msg);
        float *want = calloc((size_t)sm_tensor_numel(x), sizeof(float));
        for (int64_t b = 0; b < n; b++)
            for (int64_t ci = 0; ci < c; ci++)
                for (int64_t ki = 0; ki < k; ki++)
                    for (int64_t kj = 0; kj < k; kj++)
                        for (int64_t oy = 0; oy < oh; oy++)
                            for (int64_t ox = 0; ox < ow; ox++) {
                                int64_t iy = oy * st - pad + ki * dl;
                                int64_t ix = ox * st - pad + kj * dl;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                                    continue;
                                volatile float prod = w->data[(ci * k + ki) * k + kj] *
                                                      seed->data[(b * oh + oy) * ow + ox];
                                want[((b * c + ci) * h + iy) * wd + ix] += prod;
                            }
        for (int64_t q = 0; q < sm_tensor_numel(x); q++)
            cr_assert(memcmp(&want[q], &gr[0]->data[q], sizeof(float)) == 0,
                      "case %zu: input gradient [%lld] = %.9g, want %.9g", i,
                      (long long)q, gr[0]->data[q], want[q]);
        free(want);
        sm_tensor_destroy(&x);
        sm_tensor_destroy(&w);
        sm_tensor_destroy(&seed);
        sm_model_destroy(&m);
    }
}

/* A Conv of x by w (an initializer when w_const, else a second input),
 * group g, stride st, pads pad on every side. */
static sm_model *conv_model(const int64_t *xs, const sm_tensor *w, int w_const,
                            int64_t g, int64_t st, int64_t pad, const int64_t *ys)
{
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, xs);
    if (w_const)
        sm_onnx_writer_initializer(wr, "w", w);
    else
        sm_onnx_writer_input(wr, "w", 4, w->shape);
    sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(wr, "group", g);
    sm_onnx_writer_attr_ints(wr, "strides", (int64_t[]){st, st}, 2);
    sm_onnx_writer_attr_ints(wr, "pads", (int64_t[]){pad, pad, pad, pad}, 4);
    sm_onnx_writer_output(wr, "y", 4, ys);
    return load(wr);
}

/* Input gradients against loops in double, whichever way they run:
 * as forward Convs of dY (ops/conv_transposed.c: stride 1, and at strides
 * up to 4 depthwise, 1 x 1 and wide layers such as a 7 x 7 stride-2
 * stem, a Conv a phase of the stride; here at strides 1, 2 and 3, a
 * phase no tap reaches, and odd sizes where the last row or column has
 * no output), or by im2col's GEMM and col2im (3 x 3 and 4 x 4 at
 * strides 2 and 3, groups). */
Test(backward, strided_and_grouped_input_gradients_match_double_loops)
{
    const struct {
        int64_t c, h, w, m, k, s, g, pad;
    } cases[] = {
        {3, 20, 22, 16, 7, 2, 1, 3},
        {8, 13, 12, 6, 3, 2, 1, 1},
        {4, 11, 14, 5, 3, 3, 1, 1},
        {16, 12, 12, 16, 3, 2, 16, 1},
        {16, 13, 11, 16, 3, 3, 16, 1},
        {8, 9, 10, 8, 1, 2, 8, 0},
        {8, 9, 10, 8, 3, 1, 8, 1},
        {6, 10, 9, 4, 3, 2, 2, 0},
        {5, 9, 9, 7, 1, 2, 1, 0},
        {4, 10, 11, 5, 4, 2, 1, 2},
        {3, 8, 8, 4, 5, 1, 1, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t c = cases[i].c, h = cases[i].h, wd = cases[i].w;
        const int64_t m = cases[i].m, k = cases[i].k, st = cases[i].s;
        const int64_t g = cases[i].g, pad = cases[i].pad, n = 3;
        const int64_t cg = c / g, mg = m / g;
        const int64_t oh = (h + 2 * pad - k) / st + 1, ow = (wd + 2 * pad - k) / st + 1;
        int64_t xs[] = {n, c, h, wd}, ws[] = {m, cg, k, k}, ys[] = {n, m, oh, ow};
        sm_tensor *w = rand_tensor(4, ws, 800 + i);
        sm_model *mdl = conv_model(xs, w, 1, g, st, pad, ys);
        sm_tensor *x = rand_tensor(4, xs, 900 + i), *seed = rand_tensor(4, ys, 1000 + i);
        const sm_tensor *in[1] = {x}, *y[1], *gr[1];
        sm_err err = {0};
        cr_assert_eq(sm_model_run(mdl, in, 1, y, &err), 0, "%s", err.msg);
        cr_assert(sm_shape_equal(4, y[0]->shape, 4, ys), "case %zu: output shape", i);
        cr_assert_eq(sm_model_backward(mdl, 0, seed, gr, &err), 0, "%s", err.msg);
        double *want = calloc((size_t)sm_tensor_numel(x), sizeof(double));
        double *mag = calloc((size_t)sm_tensor_numel(x), sizeof(double));
        for (int64_t b = 0; b < n; b++)
            for (int64_t mo = 0; mo < m; mo++)
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t ki = 0; ki < k; ki++)
                        for (int64_t kj = 0; kj < k; kj++)
                            for (int64_t oy = 0; oy < oh; oy++)
                                for (int64_t ox = 0; ox < ow; ox++) {
                                    int64_t iy = oy * st - pad + ki, ix = ox * st - pad + kj;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                                        continue;
                                    int64_t xi = ((b * c + mo / mg * cg + ci) * h + iy) * wd + ix;
                                    double v = (double)w->data[((mo * cg + ci) * k + ki) * k + kj] *
                                               seed->data[((b * m + mo) * oh + oy) * ow + ox];
                                    want[xi] += v;
                                    mag[xi] += fabs(v);
                                }
        for (int64_t q = 0; q < sm_tensor_numel(x); q++)
            cr_assert(fabs(want[q] - gr[0]->data[q]) <= 1e-6 * (mag[q] + 1e-6),
                      "case %zu: input gradient [%lld] = %.9g, want %.9g", i,
                      (long long)q, gr[0]->data[q], want[q]);
        free(want);
        free(mag);
        sm_tensor_destroy(&x);
        sm_tensor_destroy(&w);
        sm_tensor_destroy(&seed);
        sm_model_destroy(&mdl);
    }
}

/* The input gradient with the weights packed once for the backward pass
 * (an initializer, op.h bwd_pack) has the bits of the one that lays them
 * out at every call (weights given as an input), on each kernel the
 * transposed path reaches. */
Test(backward, packed_weights_give_the_bits_of_unpacked_ones)
{
    const struct {
        int64_t c, h, w, m, k, s, g, pad;
        const char *path;
    } cases[] = {
        {32, 12, 12, 32, 3, 1, 1, 1, "Winograd"},
        {16, 9, 9, 24, 3, 1, 1, 1, "direct"},
        {64, 4, 4, 64, 3, 1, 1, 1, "pixel-major"},
        {3, 20, 22, 16, 7, 2, 1, 3, "a stem's phases"},
        {16, 12, 12, 16, 3, 2, 16, 1, "depthwise phases"},
        {8, 9, 10, 12, 1, 2, 1, 0, "a 1 x 1 / 2 phase"},
        {16, 8, 8, 32, 3, 2, 1, 1, "a 3 x 3 / 2 GEMM (transposed product)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t c = cases[i].c, h = cases[i].h, wd = cases[i].w;
        const int64_t m = cases[i].m, k = cases[i].k, st = cases[i].s;
        const int64_t g = cases[i].g, pad = cases[i].pad, n = 3;
        const int64_t oh = (h + 2 * pad - k) / st + 1, ow = (wd + 2 * pad - k) / st + 1;
        int64_t xs[] = {n, c, h, wd}, ws[] = {m, c / g, k, k}, ys[] = {n, m, oh, ow};
        sm_tensor *w = rand_tensor(4, ws, 1100 + i), *x = rand_tensor(4, xs, 1200 + i);
        sm_tensor *seed = rand_tensor(4, ys, 1300 + i);
        sm_model *packed = conv_model(xs, w, 1, g, st, pad, ys);
        sm_model *plain = conv_model(xs, w, 0, g, st, pad, ys);
        const sm_tensor *in[2] = {x, w}, *y[1], *ga[1], *gb[2];
        sm_err err = {0};
        cr_assert_eq(sm_model_run(packed, in, 1, y, &err), 0, "%s", err.msg);
        cr_assert_eq(sm_model_backward(packed, 0, seed, ga, &err), 0, "%s", err.msg);
        cr_assert_eq(sm_model_run(plain, in, 2, y, &err), 0, "%s", err.msg);
        cr_assert_eq(sm_model_backward(plain, 0, seed, gb, &err), 0, "%s", err.msg);
        for (int64_t q = 0; q < sm_tensor_numel(x); q++)
            cr_assert(memcmp(&ga[0]->data[q], &gb[0]->data[q], sizeof(float)) == 0,
                      "%s: input gradient [%lld] = %.9g packed, %.9g not", cases[i].path,
                      (long long)q, ga[0]->data[q], gb[0]->data[q]);
        sm_tensor_destroy(&x);
        sm_tensor_destroy(&w);
        sm_tensor_destroy(&seed);
        sm_model_destroy(&packed);
        sm_model_destroy(&plain);
    }
}

Test(backward, gemm_gradients_all_transposes)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int cshape = 0; cshape < 3; cshape++) {
                const int64_t M = 3, K = 4, N = 5;
                int64_t as[2] = {ta ? K : M, ta ? M : K};
                int64_t bs[2] = {tb ? N : K, tb ? K : N};
                int64_t cs[3][2] = {{M, N}, {1, N}, {M, 1}};
                sm_onnx_writer *w = sm_onnx_writer_new(13);
                sm_onnx_writer_input(w, "a", 2, as);
                sm_onnx_writer_input(w, "b", 2, bs);
                sm_onnx_writer_input(w, "c", 2, cs[cshape]);
                sm_onnx_writer_node(w, "Gemm", "g", (const char *[]){"a", "b", "c"}, 3,
                                    (const char *[]){"y"}, 1);
                sm_onnx_writer_attr_int(w, "transA", ta);
                sm_onnx_writer_attr_int(w, "transB", tb);
                sm_onnx_writer_attr_float(w, "alpha", 0.7f);
                sm_onnx_writer_attr_float(w, "beta", 1.3f);
                sm_onnx_writer_output(w, "y", 2, (int64_t[]){M, N});
                sm_model *m = load(w);
                sm_tensor *x[3] = {rand_tensor(2, as, 11), rand_tensor(2, bs, 12),
                                   rand_tensor(2, cs[cshape], 13)};
                double e = fd_worst(m, x, 3, 0, 1e-2, 0, 17);
                cr_assert(e < 5e-3, "gemm transA %d transB %d C %d: off by %g",
                          ta, tb, cshape, e);
                for (int j = 0; j < 3; j++)
                    sm_tensor_destroy(&x[j]);
                sm_model_destroy(&m);
            }
}

Test(backward, matmul_gradients_with_broadcast)
{
    const struct { int na; int64_t a[4]; int nb; int64_t b[4]; } cases[] = {
        {2, {3, 4}, 2, {4, 5}},
        {3, {2, 3, 4}, 2, {4, 5}},          /* B shared by the batch */
        {4, {2, 1, 3, 4}, 3, {3, 4, 2}},    /* both broadcast */
        {1, {4}, 3, {2, 4, 3}},             /* 1-D A */
        {3, {2, 3, 4}, 1, {4}},             /* 1-D B */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_onnx_writer *w = sm_onnx_writer_new(13);
        sm_onnx_writer_input(w, "a", cases[i].na, cases[i].a);
        sm_onnx_writer_input(w, "b", cases[i].nb, cases[i].b);
        sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"a", "b"}, 2,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_output(w, "y", 0, NULL);
        sm_model *m = load(w);
        sm_tensor *x[2] = {rand_tensor(cases[i].na, cases[i].a, 21 + i),
                           rand_tensor(cases[i].nb, cases[i].b, 31 + i)};
        double e = fd_worst(m, x, 2, 0, 1e-2, 0, 41 + i);
        cr_assert(e < 5e-3, "matmul case %zu: off by %g", i, e);
        for (int j = 0; j < 2; j++)
            sm_tensor_destroy(&x[j]);
        sm_model_destroy(&m);
    }
}

/* A wrong gradient must fail the comparison the tests above rely on: 5%
 * too large is caught, as is a gradient with its operands swapped. */
Test(backward, finite_differences_catch_a_wrong_gradient)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "a", 2, (int64_t[]){3, 4});
    sm_onnx_writer_input(w, "b", 2, (int64_t[]){4, 2});
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"a", "b"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){3, 2});
    sm_model *m = load(w);
    sm_tensor *x[2] = {rand_tensor(2, (int64_t[]){3, 4}, 5),
                       rand_tensor(2, (int64_t[]){4, 2}, 6)};
    cr_assert(fd_compare(m, x, 2, 0, 1e-2, 0, 9, 1.0) < 5e-3);
    cr_assert(fd_compare(m, x, 2, 0, 1e-2, 0, 9, 1.05) > 5e-3);
    cr_assert(fd_compare(m, x, 2, 0, 1e-2, 0, 9, -1.0) > 5e-3);
    for (int j = 0; j < 2; j++)
        sm_tensor_destroy(&x[j]);
    sm_model_destroy(&m);
}

Test(backward, refuses_without_a_run_or_with_a_bad_seed)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "a", 2, (int64_t[]){-1, 4});
    sm_onnx_writer_input(w, "b", 2, (int64_t[]){4, 2});
    sm_onnx_writer_node(w, "MatMul", "mm", (const char *[]){"a", "b"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, 2});
    sm_model *m = load(w);
    sm_err err = {0};
    const sm_tensor *g[2];
    sm_tensor *seed = rand_tensor(2, (int64_t[]){3, 2}, 1);
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), -1);
    cr_assert(strstr(err.msg, "needs a successful run"), "%s", err.msg);
    sm_tensor *x[2] = {rand_tensor(2, (int64_t[]){5, 4}, 2),
                       rand_tensor(2, (int64_t[]){4, 2}, 3)};
    const sm_tensor *in[2] = {x[0], x[1]}, *y[1];
    cr_assert_eq(sm_model_run(m, in, 2, y, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), -1);
    cr_assert(strstr(err.msg, "seed has shape [3, 2]"), "%s", err.msg);
    cr_assert_eq(sm_model_backward(m, 3, seed, g, &err), -1);
    sm_tensor_destroy(&seed);
    for (int j = 0; j < 2; j++)
        sm_tensor_destroy(&x[j]);
    sm_model_destroy(&m);
}

/* End to end through the PyTorch-made fixtures (Conv, Relu, MaxPool,
 * Flatten, Gemm; and BatchNorm folded, residual Add, GlobalAveragePool),
 * split over threads or not: the same input gradient. Only sampled
 * elements are checked against differences: each costs two runs. */
Test(backward, fixture_networks_input_gradients)
{
    const char *models[] = {"tests/fixtures/lenet.onnx", "tests/fixtures/resnet18s.onnx"};
    const char *inputs[] = {"tests/fixtures/lenet_input.npy", "tests/fixtures/resnet18s_input.npy"};
    for (int k = 0; k < 2; k++) {
        sm_err err = {0};
        sm_model *m = sm_model_load_file(models[k], &err);
        cr_assert_not_null(m, "%s", err.msg);
        sm_tensor *x = sm_npy_read(inputs[k], &err);
        cr_assert_not_null(x, "%s", err.msg);
        /* all the gradient flows through ReLU/MaxPool kinks: a small step */
        double e = fd_compare(m, &x, 1, 0, 2e-3, 60, 77, 1.0);
        cr_assert(e < 2e-2, "%s: input gradient off by %g", models[k], e);
        /* threads: the same gradients, joined over the lanes */
        const sm_tensor *in[1] = {x}, *y[1], *g[1];
        cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
        sm_tensor *seed = rand_tensor(y[0]->ndim, y[0]->shape, 3);
        cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
        sm_tensor *g1 = sm_tensor_clone(g[0]);
        sm_model_set_threads(m, 2);
        cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
        cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
        for (int64_t i = 0; i < sm_tensor_numel(g1); i++)
            cr_assert_float_eq(g[0]->data[i], g1->data[i],
                               1e-5 * fmax(1.0, fabs(g1->data[i])));
        sm_tensor_destroy(&g1);
        sm_tensor_destroy(&seed);
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
    }
}

/* A node of one output and one or two inputs (in1 NULL: one). */
static void add_node(sm_onnx_writer *w, const char *op, const char *name,
                     const char *out, const char *in0, const char *in1)
{
    cr_assert_eq(sm_onnx_writer_node(w, op, name, (const char *[]){in0, in1},
                                     in1 ? 2 : 1, (const char *[]){out}, 1),
                 0);
}

/* Gradients written whole by the first node of the sweep to reach them
 * (op.h backward_fresh: Relu, MaxPool, Conv, Flatten), added to by the
 * others: x feeds two Relus, a MaxPool and both inputs of a Mul; r only
 * a 3x3/2 Conv (im2col's: zeroed, then added to), r2 only a stride-1
 * Conv (written by the transposed path), r3 only a 1x1/2 Conv (phases,
 * three of four without taps: zeroed first). Two sweeps one after the other with different
 * seeds, the first leaving its values in the buffers the second does not
 * zero: both match central differences, and every input gradient's bits
 * are those of the same sweep in a fresh model. */
Test(backward, gradients_written_whole_or_added_as_readers_come)
{
    sm_tensor *w1 = rand_tensor(4, (int64_t[]){2, 2, 3, 3}, 21);
    sm_tensor *w2 = rand_tensor(4, (int64_t[]){2, 2, 3, 3}, 22);
    sm_tensor *w3 = rand_tensor(4, (int64_t[]){2, 2, 1, 1}, 24);
    unsigned char *bytes[2];
    size_t len[2];
    for (int b = 0; b < 2; b++) {
        sm_onnx_writer *w = sm_onnx_writer_new(13);
        sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, 2, 8, 8});
        sm_onnx_writer_initializer(w, "w1", w1);
        sm_onnx_writer_initializer(w, "w2", w2);
        sm_onnx_writer_initializer(w, "w3", w3);
        add_node(w, "Relu", "r", "r", "x", NULL);
        add_node(w, "Conv", "c", "c", "r", "w1"); /* 3x3/2, pad 1: 4x4 */
        sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
        sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){1, 1, 1, 1}, 4);
        add_node(w, "Relu", "r2", "r2", "c", NULL);
        add_node(w, "Conv", "c2", "c2", "r2", "w2"); /* 3x3, pad 1: 4x4 */
        sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){1, 1, 1, 1}, 4);
        add_node(w, "Mul", "sq", "sq", "x", "x");
        add_node(w, "MaxPool", "p", "p", "sq", NULL); /* 2x2: 4x4 */
        sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
        sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
        add_node(w, "Add", "a", "a", "c2", "p");
        add_node(w, "MaxPool", "p2", "p2", "x", NULL);
        sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
        sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
        add_node(w, "Add", "a2", "a2", "a", "p2");
        add_node(w, "Relu", "r3", "r3", "x", NULL);
        add_node(w, "Conv", "d", "d", "r3", "w3"); /* 1x1/2: phases, 3 empty */
        sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
        add_node(w, "Add", "a3", "a3", "a2", "d");
        add_node(w, "Flatten", "f", "f", "a3", NULL);
        add_node(w, "Relu", "y", "y", "f", NULL);
        sm_onnx_writer_output(w, "y", 2, (int64_t[]){1, 32});
        sm_err err = {0};
        bytes[b] = sm_onnx_writer_serialize(w, &len[b], &err);
        cr_assert_not_null(bytes[b], "%s", err.msg);
        sm_onnx_writer_destroy(&w);
    }
    sm_err err = {0};
    sm_model *m = sm_model_load_buffer(bytes[0], len[0], "fresh.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_tensor *x = rand_tensor(4, (int64_t[]){1, 2, 8, 8}, 23);
    for (int i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] += x->data[i] < 0 ? -0.05f : 0.05f; /* off the kinks */
    for (int sweep = 0; sweep < 2; sweep++) {
        double e = fd_worst(m, &x, 1, 0, 1e-3, 0, 31 + (uint64_t)sweep);
        cr_assert(e < 5e-3, "sweep %d: gradient off by %g", sweep, e);
    }
    /* the second sweep's bits, from a model that never swept before */
    const sm_tensor *in[1] = {x}, *y[1], *g[1];
    cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
    sm_tensor *seed = rand_tensor(2, (int64_t[]){1, 32}, 32);
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
    sm_tensor *again = sm_tensor_clone(g[0]);
    sm_model *m2 = sm_model_load_buffer(bytes[1], len[1], "fresh.onnx", &err);
    cr_assert_not_null(m2, "%s", err.msg);
    cr_assert_eq(sm_model_run(m2, in, 1, y, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_model_backward(m2, 0, seed, g, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(again->data, g[0]->data,
                        sizeof(float) * (size_t)sm_tensor_numel(x)), 0);
    sm_tensor_destroy(&again);
    sm_tensor_destroy(&seed);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w1);
    sm_tensor_destroy(&w2);
    sm_tensor_destroy(&w3);
    sm_model_destroy(&m);
    sm_model_destroy(&m2);
    free(bytes[0]);
    free(bytes[1]);
}

/* MaxPool 2x2 writing the gradient of planes its windows do not cover
 * (an odd row and column left out, and a row's last outputs past its
 * vectors), as the first writer of x's gradient, a Relu adding to it
 * after: the same two sweeps against differences (what the pool did not
 * write would carry the first sweep's sums into the second). */
Test(backward, maxpool_writes_what_its_windows_miss)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){2, 3, 9, 11});
    add_node(w, "Relu", "r", "r", "x", NULL);
    add_node(w, "MaxPool", "p", "p", "x", NULL); /* 4 x 5 */
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
    add_node(w, "Flatten", "fp", "fp", "p", NULL);
    add_node(w, "Flatten", "fr", "fr", "r", NULL);
    sm_onnx_writer_node(w, "Concat", "y", (const char *[]){"fp", "fr"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(w, "axis", 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){2, 357});
    sm_model *m = load(w);
    sm_tensor *x = rand_tensor(4, (int64_t[]){2, 3, 9, 11}, 41);
    for (int i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] += x->data[i] < 0 ? -0.05f : 0.05f; /* off Relu's kink */
    for (int sweep = 0; sweep < 2; sweep++) {
        double e = fd_worst(m, &x, 1, 0, 1e-3, 0, 43 + (uint64_t)sweep);
        cr_assert(e < 5e-3, "sweep %d: gradient off by %g", sweep, e);
    }
    cr_assert(m->bwd_fresh[1] == 1 && m->bwd_fresh[0] == 0,
              "the pool writes x's gradient, the Relu adds to it");
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* An output that does not depend on the inputs (a constant folded at
 * planning) has zero gradients everywhere. */
Test(backward, constant_output_has_zero_gradients)
{
    sm_tensor *c = rand_tensor(2, (int64_t[]){2, 3}, 4);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){2, 3});
    sm_onnx_writer_node(w, "Constant", "k", NULL, 0, (const char *[]){"c"}, 1);
    sm_onnx_writer_attr_tensor(w, "value", c);
    sm_onnx_writer_node(w, "Relu", "r0", (const char *[]){"c"}, 1,
                        (const char *[]){"y0"}, 1);
    sm_onnx_writer_node(w, "Relu", "r1", (const char *[]){"x"}, 1,
                        (const char *[]){"y1"}, 1);
    sm_onnx_writer_output(w, "y0", 2, (int64_t[]){2, 3});
    sm_onnx_writer_output(w, "y1", 2, (int64_t[]){2, 3});
    sm_model *m = load(w);
    sm_tensor *x = rand_tensor(2, (int64_t[]){2, 3}, 5);
    const sm_tensor *in[1] = {x}, *y[2], *g[1];
    sm_err err = {0};
    cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_model_backward(m, 0, c, g, &err), 0, "%s", err.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(g[0]->data[i], 0.0f);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&c);
    sm_model_destroy(&m);
}

/* Trainable weights: the gradient of L with respect to sampled weights of
 * every LeNet layer matches differences, and a batch split over threads
 * sums to the same gradients. */
Test(backward, parameter_gradients_of_a_trainable_model)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_file("tests/fixtures/lenet.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_model_set_trainable(m, 1);
    cr_assert_eq(sm_model_n_params(m), 10, "conv1/2 and fc1/2/3, W and B");
    sm_tensor *x = sm_npy_read("tests/fixtures/lenet_input.npy", &err);
    const sm_tensor *in[1] = {x}, *y[1], *g[1];
    cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
    sm_tensor *seed = rand_tensor(y[0]->ndim, y[0]->shape, 8);
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
    sm_tensor *pg[10];
    for (int i = 0; i < 10; i++)
        pg[i] = sm_tensor_clone(sm_model_param_grad(m, i));
    uint64_t s = 99;
    for (int i = 0; i < 10; i++) {
        sm_tensor *w = sm_model_param(m, i);
        for (int c = 0; c < 6; c++) {
            int64_t j = (int64_t)((rnd(&s) + 1) / 2 * (double)sm_tensor_numel(w)) %
                        sm_tensor_numel(w);
            float keep = w->data[j];
            const double eps = 2e-3;
            w->data[j] = keep + (float)eps;
            double lp = loss(m, &x, 1, 0, seed);
            w->data[j] = keep - (float)eps;
            double lm = loss(m, &x, 1, 0, seed);
            w->data[j] = keep;
            double fd = (lp - lm) / (2 * eps);
            cr_assert(fabs(fd - pg[i]->data[j]) <= 2e-2 * fmax(1.0, fabs(fd)),
                      "%s[%lld]: backward %g, differences %g",
                      sm_model_param_name(m, i), (long long)j, pg[i]->data[j], fd);
        }
    }
    sm_model_set_threads(m, 2);
    cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
    for (int i = 0; i < 10; i++) {
        const sm_tensor *t = sm_model_param_grad(m, i);
        for (int64_t j = 0; j < sm_tensor_numel(t); j++)
            cr_assert_float_eq(t->data[j], pg[i]->data[j],
                               1e-5 * fmax(1.0, fabs(pg[i]->data[j])));
        sm_tensor_destroy(&pg[i]);
    }
    sm_tensor_destroy(&seed);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* Images [s0, s0 + n) of x as a batch of their own (borrowed rows). */
static sm_tensor rows_of(const sm_tensor *x, int64_t s0, int64_t n)
{
    sm_tensor v = *x;
    int64_t per = sm_tensor_numel(x) / x->shape[0];
    v.owns = 0;
    v.shape[0] = n;
    v.data = x->data + s0 * per;
    return v;
}

/* An image's outputs, input gradients and relevance are the same bits
 * whatever batch it comes in, at whatever position, on however many
 * threads: LeNet (direct convolutions, Gemm) and the ResNet-18-shaped
 * fixture (strided, 1 x 1 and small-plane convolutions on im2col with
 * several images a GEMM, folded BatchNorm, residual Add, GlobalAveragePool). */
static void check_batch_independence(const char *model, sm_tensor *x,
                                     const int64_t *sizes, int n_sizes,
                                     int64_t s0)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_file(model, &err);
    cr_assert_not_null(m, "%s", err.msg);
    const int64_t N = x->shape[0], per = sm_tensor_numel(x) / N;
    /* reference: the whole batch on one thread */
    const sm_tensor *in[1] = {x}, *y[1], *g[1];
    cr_assert_eq(sm_model_run(m, in, 1, y, &err), 0, "%s", err.msg);
    sm_tensor *y_ref = sm_tensor_clone(y[0]);
    const int64_t K = y_ref->shape[1];
    sm_tensor *seed = sm_tensor_new(2, (int64_t[]){N, K});
    for (int64_t i = 0; i < N; i++)
        seed->data[i * K + i % K] = 1.0f;
    cr_assert_eq(sm_model_backward(m, 0, seed, g, &err), 0, "%s", err.msg);
    sm_tensor *g_ref = sm_tensor_clone(g[0]);
    const sm_model_lrp_rules rules = {1e-6, 1e-6, 2, 1, SM_LRP_EPSILON,
                                      SM_LRP_EPSILON, SM_LRP_EPSILON};
    cr_assert_eq(sm_model_relevance(m, 0, seed, &rules, g, &err), 0, "%s", err.msg);
    sm_tensor *r_ref = sm_tensor_clone(g[0]);
    for (int threads = 1; threads <= 3; threads++) {
        sm_model_set_threads(m, threads);
        for (int k = 0; k < n_sizes; k++) {
            /* images s0 .. s0 + n: other positions, other neighbours */
            int64_t n = sizes[k];
            sm_tensor v = rows_of(x, s0, n), sv = rows_of(seed, s0, n);
            const sm_tensor *vin[1] = {&v};
            cr_assert_eq(sm_model_run(m, vin, 1, y, &err), 0, "%s", err.msg);
            cr_assert(memcmp(y[0]->data, y_ref->data + s0 * K,
                             sizeof(float) * (size_t)(n * K)) == 0,
                      "%s: outputs differ: batch %lld, %d threads", model,
                      (long long)n, threads);
            cr_assert_eq(sm_model_backward(m, 0, &sv, g, &err), 0, "%s", err.msg);
            cr_assert(memcmp(g[0]->data, g_ref->data + s0 * per,
                             sizeof(float) * (size_t)(n * per)) == 0,
                      "%s: gradients differ: batch %lld, %d threads", model,
                      (long long)n, threads);
            cr_assert_eq(sm_model_relevance(m, 0, &sv, &rules, g, &err), 0, "%s", err.msg);
            cr_assert(memcmp(g[0]->data, r_ref->data + s0 * per,
                             sizeof(float) * (size_t)(n * per)) == 0,
                      "%s: relevance differs: batch %lld, %d threads", model,
                      (long long)n, threads);
        }
    }
    sm_tensor_destroy(&r_ref);
    sm_tensor_destroy(&y_ref);
    sm_tensor_destroy(&g_ref);
    sm_tensor_destroy(&seed);
    sm_model_destroy(&m);
}

Test(backward, results_do_not_depend_on_the_batch)
{
    const int64_t N = 21;
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){N, 1, 28, 28});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = (float)rnd(&(uint64_t){(uint64_t)i * 7 + 1});
    check_batch_independence("tests/fixtures/lenet.onnx", x,
                             (const int64_t[]){1, 3, 8, 13}, 4, 5);
    sm_tensor_destroy(&x);
    sm_err err = {0};
    x = sm_npy_read("tests/fixtures/resnet18s_input.npy", &err);
    cr_assert_not_null(x, "%s", err.msg);
    check_batch_independence("tests/fixtures/resnet18s.onnx", x,
                             (const int64_t[]){1, 2, 3}, 3, 1);
    sm_tensor_destroy(&x);
}
