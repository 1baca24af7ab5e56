/* The operators of core/ops/ beyond what the ONNX node tests reach (old
 * opset forms, reflect/edge padding, broadcasting shapes, ceil_mode edge
 * windows, Constant), and their refusals: every one must name the node and
 * the attribute or input at fault. Models are built with the ONNX writer and
 * run through the engine, as a user's model would be. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "onnx/writer.h"
#include "ops/op.h"

/* --- helpers ----------------------------------------------------------------- */

static sm_model *load(sm_onnx_writer *w, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, err);
    cr_assert_not_null(buf, "%s", err->msg);
    sm_model *m = sm_model_load_buffer(buf, len, "ops.onnx", err);
    free(buf);
    return m;
}

/* Loads and runs the model built by w on the given inputs; returns output 0
 * (valid until *mp is destroyed). */
static const sm_tensor *run(sm_onnx_writer *w, const sm_tensor *const *in,
                            int n_in, sm_model **mp)
{
    sm_err err = {0};
    sm_model *m = load(w, &err);
    sm_onnx_writer_destroy(&w);
    cr_assert_not_null(m, "load: %s", err.msg);
    const sm_tensor *out[8];
    cr_assert_eq(sm_model_run(m, in, n_in, out, &err), 0, "run: %s", err.msg);
    *mp = m;
    return out[0];
}

/* The model must be refused, at load or at its first run, with a message
 * containing every non-NULL needle. */
static void expect_refusal(sm_onnx_writer *w, const sm_tensor *const *in,
                           int n_in, const char *n1, const char *n2,
                           const char *n3)
{
    sm_err err = {0};
    sm_model *m = load(w, &err);
    sm_onnx_writer_destroy(&w);
    if (m) {
        const sm_tensor *out[8];
        int rc = sm_model_run(m, in, n_in, out, &err);
        sm_model_destroy(&m);
        cr_assert_neq(rc, 0, "a model that should be refused (%s) ran", n1);
    }
    const char *needles[] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        cr_assert(!needles[i] || strstr(err.msg, needles[i]),
                  "message '%s' lacks '%s'", err.msg, needles[i]);
}

static sm_tensor *tensor(int ndim, const int64_t *shape, const float *v)
{
    sm_tensor *t = sm_tensor_new(ndim, shape);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = v ? v[i] : (float)((i * 7919) % 23) / 4.0f - 2.5f;
    return t;
}

static void assert_data(const sm_tensor *got, int ndim, const int64_t *shape,
                        const float *want, const char *what)
{
    char a[128], b[128];
    cr_assert(sm_shape_equal(got->ndim, got->shape, ndim, shape),
              "%s: shape %s, want %s", what,
              sm_shape_str(got->ndim, got->shape, a, sizeof a),
              sm_shape_str(ndim, shape, b, sizeof b));
    for (int64_t i = 0; i < sm_shape_numel(ndim, shape); i++)
        cr_assert(isnan(want[i]) ? isnan(got->data[i])
                  : fabsf(got->data[i] - want[i]) <= 1e-5f * fmaxf(1, fabsf(want[i])),
                  "%s: element %lld: got %g, want %g", what, (long long)i,
                  got->data[i], want[i]);
}

/* A one-node model: inputs x0.. (declared shapes), one output y. */
static sm_onnx_writer *one_node(int opset, const char *op, int n_in,
                                const sm_tensor *const *in)
{
    sm_onnx_writer *w = sm_onnx_writer_new(opset);
    const char *names[] = {"x0", "x1", "x2", "x3"};
    for (int i = 0; i < n_in; i++)
        sm_onnx_writer_input(w, names[i], in[i]->ndim, in[i]->shape);
    sm_onnx_writer_node(w, op, "n", names, n_in, (const char *[]){"y"}, 1);
    return w;
}

/* --- Add/Sub/Mul/Div broadcasting against a direct index computation ------- */

static float ref_binary(int op, float x, float y)
{
    return op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
}

Test(ops, binary_broadcasting_matches_reference)
{
    static const struct {
        int na, nb;
        int64_t a[4], b[4];
    } cases[] = {
        {4, 4, {2, 3, 4, 5}, {2, 3, 4, 5}}, /* same shape */
        {4, 0, {2, 3, 4, 5}, {0}},          /* scalar */
        {0, 3, {0}, {3, 4, 5}},             /* scalar first */
        {4, 3, {2, 3, 4, 5}, {3, 1, 1}},    /* per-channel bias */
        {4, 1, {2, 3, 4, 5}, {5}},          /* last dim */
        {2, 2, {4, 1}, {1, 5}},             /* outer product */
        {3, 2, {2, 1, 4}, {3, 1}},          /* both sides broadcast */
        {4, 4, {1, 3, 1, 5}, {2, 1, 4, 1}}, /* alternating */
        {1, 1, {1}, {7}},
    };
    const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int op = 0; op < 4; op++) {
            sm_tensor *a = tensor(cases[c].na, cases[c].a, NULL);
            sm_tensor *b = tensor(cases[c].nb, cases[c].b, NULL);
            for (int64_t i = 0; i < sm_tensor_numel(b); i++)
                b->data[i] += b->data[i] >= 0 ? 0.5f : -0.5f; /* no x/0 */
            int n;
            int64_t shape[SM_MAX_DIMS];
            cr_assert_eq(sm_shape_broadcast(a->ndim, a->shape, b->ndim,
                                            b->shape, &n, shape), 0);
            sm_onnx_writer *w = one_node(13, ops[op], 2,
                                         (const sm_tensor *[]){a, b});
            sm_onnx_writer_output(w, "y", n, shape);
            sm_model *m;
            const sm_tensor *y = run(w, (const sm_tensor *[]){a, b}, 2, &m);
            float *want = malloc((size_t)sm_shape_numel(n, shape) * sizeof(float));
            for (int64_t i = 0; i < sm_shape_numel(n, shape); i++) {
                /* Unravel i, then index each operand with its dims of 1
                 * pinned at 0. */
                int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
                for (int d = n - 1; d >= 0; d--) {
                    int64_t k = rem % shape[d];
                    rem /= shape[d];
                    int da = d - (n - a->ndim), db = d - (n - b->ndim);
                    if (da >= 0) {
                        ia += (a->shape[da] == 1 ? 0 : k) * sa;
                        sa *= a->shape[da];
                    }
                    if (db >= 0) {
                        ib += (b->shape[db] == 1 ? 0 : k) * sb;
                        sb *= b->shape[db];
                    }
                }
                want[i] = ref_binary(op, a->data[ia], b->data[ib]);
            }
            char what[64];
            snprintf(what, sizeof what, "%s case %zu", ops[op], c);
            assert_data(y, n, shape, want, what);
            free(want);
            sm_model_destroy(&m);
            sm_tensor_destroy(&a);
            sm_tensor_destroy(&b);
        }
}

/* --- Softmax: the opset < 13 form normalises over all dims from axis ------- */

static void softmax_ref(const float *x, float *y, int64_t rows, int64_t n,
                        int64_t inner, int use_log)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xr = x + r * n * inner + j;
            float *yr = y + r * n * inner + j;
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < n; k++)
                m = fmax(m, xr[k * inner]);
            for (int64_t k = 0; k < n; k++)
                s += exp(xr[k * inner] - m);
            for (int64_t k = 0; k < n; k++)
                yr[k * inner] = (float)(use_log ? xr[k * inner] - m - log(s)
                                            : exp(xr[k * inner] - m) / s);
        }
}

Test(ops, softmax_old_opset_coerces_to_2d)
{
    int64_t shape[] = {2, 3, 4};
    float want[24];
    for (int log = 0; log < 2; log++)
        for (int opset = 11; opset <= 13; opset += 2) {
            sm_tensor *x = tensor(3, shape, NULL);
            sm_onnx_writer *w = one_node(opset, log ? "LogSoftmax" : "Softmax",
                                         1, (const sm_tensor *[]){x});
            sm_onnx_writer_attr_int(w, "axis", 1);
            sm_onnx_writer_output(w, "y", 3, shape);
            sm_model *m;
            const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
            if (opset == 11) /* [2, 12]: over dims 1 and 2 together */
                softmax_ref(x->data, want, 2, 12, 1, log);
            else /* along dim 1 only */
                softmax_ref(x->data, want, 2, 3, 4, log);
            assert_data(y, 3, shape, want, log ? "LogSoftmax" : "Softmax");
            sm_model_destroy(&m);
            sm_tensor_destroy(&x);
        }
}

Test(ops, softmax_default_axis_depends_on_opset)
{
    int64_t shape[] = {2, 3, 4};
    float want[24];
    sm_tensor *x = tensor(3, shape, NULL);
    sm_onnx_writer *w = one_node(13, "Softmax", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_output(w, "y", 3, shape);
    sm_model *m;
    const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
    softmax_ref(x->data, want, 6, 4, 1, 0); /* -1: the last dim */
    assert_data(y, 3, shape, want, "opset 13 default");
    sm_model_destroy(&m);
    w = one_node(9, "Softmax", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_output(w, "y", 3, shape);
    y = run(w, (const sm_tensor *[]){x}, 1, &m);
    softmax_ref(x->data, want, 2, 12, 1, 0); /* 1, coerced: [2, 12] */
    assert_data(y, 3, shape, want, "opset 9 default");
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
}

/* --- Clip ------------------------------------------------------------------ */

Test(ops, clip_attribute_and_input_forms)
{
    int64_t shape[] = {6};
    float xv[] = {-3, -1, 0, 0.5f, 2, NAN};
    sm_tensor *x = tensor(1, shape, xv);
    sm_onnx_writer *w = one_node(6, "Clip", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_attr_float(w, "min", -1.5f);
    sm_onnx_writer_attr_float(w, "max", 1);
    sm_onnx_writer_output(w, "y", 1, shape);
    sm_model *m;
    const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
    assert_data(y, 1, shape, (float[]){-1.5f, -1, 0, 0.5f, 1, NAN},
                "Clip opset 6 (NaN stays NaN)");
    sm_model_destroy(&m);

    /* Opset 13: only max given (min absent as an empty name), and a min
     * above max, which gives max everywhere. */
    sm_tensor *lo = tensor(0, NULL, (float[]){2}), *hi = tensor(0, NULL, (float[]){1});
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 1, shape);
    sm_onnx_writer_initializer(w, "hi", hi);
    sm_onnx_writer_initializer(w, "lo", lo);
    sm_onnx_writer_node(w, "Clip", "c1", (const char *[]){"x", "", "hi"}, 3,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_node(w, "Clip", "c2", (const char *[]){"x", "lo", "hi"}, 3,
                        (const char *[]){"z"}, 1);
    sm_onnx_writer_output(w, "y", 1, shape);
    sm_onnx_writer_output(w, "z", 1, shape);
    sm_err err = {0};
    m = load(w, &err);
    sm_onnx_writer_destroy(&w);
    cr_assert_not_null(m, "%s", err.msg);
    const sm_tensor *out[2];
    cr_assert_eq(sm_model_run(m, (const sm_tensor *[]){x}, 1, out, &err), 0,
                 "%s", err.msg);
    assert_data(out[0], 1, shape, (float[]){-3, -1, 0, 0.5f, 1, NAN},
                "max only");
    assert_data(out[1], 1, shape, (float[]){1, 1, 1, 1, 1, NAN}, "min > max");
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&lo);
    sm_tensor_destroy(&hi);
}

/* --- Pad -------------------------------------------------------------------- */

static const sm_tensor *pad_run(int opset, const char *mode,
                                const int64_t *pads, const float *value,
                                const sm_tensor *x, int64_t *oshape,
                                sm_model **m)
{
    sm_tensor p = {.ndim = 1, .shape = {4}, .i64 = (int64_t *)pads};
    sm_tensor *v = value ? tensor(0, NULL, value) : NULL;
    sm_onnx_writer *w = sm_onnx_writer_new(opset);
    sm_onnx_writer_input(w, "x", 2, x->shape);
    if (opset >= 11) {
        sm_onnx_writer_initializer(w, "pads", &p);
        if (v)
            sm_onnx_writer_initializer(w, "v", v);
        sm_onnx_writer_node(w, "Pad", "pad", (const char *[]){"x", "pads", "v"},
                            v ? 3 : 2, (const char *[]){"y"}, 1);
    } else {
        sm_onnx_writer_node(w, "Pad", "pad", (const char *[]){"x"}, 1,
                            (const char *[]){"y"}, 1);
        sm_onnx_writer_attr_ints(w, "pads", pads, 4);
        if (value)
            sm_onnx_writer_attr_float(w, "value", *value);
    }
    sm_onnx_writer_attr_string(w, "mode", mode);
    sm_onnx_writer_output(w, "y", 2, oshape);
    const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, m);
    sm_tensor_destroy(&v);
    return y;
}

Test(ops, pad_modes_match_numpy)
{
    int64_t xs[] = {2, 3};
    sm_tensor *x = tensor(2, xs, (float[]){1, 2, 3, 4, 5, 6});
    sm_model *m;
    /* numpy.pad(x, ((1, 1), (2, 2)), 'reflect') */
    int64_t s1[] = {4, 7};
    const sm_tensor *y = pad_run(13, "reflect", (int64_t[]){1, 2, 1, 2}, NULL,
                                 x, s1, &m);
    assert_data(y, 2, s1, (float[]){6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1,
                                    6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1},
                "reflect");
    sm_model_destroy(&m);
    /* numpy.pad(x, ((1, 0), (2, 1)), 'edge') */
    int64_t s2[] = {3, 6};
    y = pad_run(13, "edge", (int64_t[]){1, 2, 0, 1}, NULL, x, s2, &m);
    assert_data(y, 2, s2, (float[]){1, 1, 1, 2, 3, 3, 1, 1, 1, 2, 3, 3,
                                    4, 4, 4, 5, 6, 6}, "edge");
    sm_model_destroy(&m);
    /* constant with a value, opset 2 attributes */
    int64_t s3[] = {3, 4};
    y = pad_run(2, "constant", (int64_t[]){0, 1, 1, 0}, (float[]){9}, x, s3, &m);
    assert_data(y, 2, s3, (float[]){9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9},
                "constant opset 2");
    sm_model_destroy(&m);
    /* negative pads crop: x[1:, :][:, :2] padded right by 2 with 7 */
    int64_t s4[] = {1, 4};
    y = pad_run(13, "constant", (int64_t[]){-1, 0, 0, 1}, (float[]){7}, x, s4, &m);
    assert_data(y, 2, s4, (float[]){4, 5, 6, 7}, "crop");
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
}

/* --- pooling edge windows -------------------------------------------------- */

Test(ops, pool_ceil_mode_windows)
{
    /* 1-D input of 5, kernel 2, stride 2, ceil: windows at 0, 2, 4; the last
     * holds one element. AveragePool counts it as 1 even with
     * count_include_pad (it hangs past the input, not into padding). */
    int64_t xs[] = {1, 1, 5}, ys[] = {1, 1, 3};
    sm_tensor *x = tensor(3, xs, (float[]){1, 2, 3, 4, 5});
    for (int cip = 0; cip < 2; cip++) {
        sm_onnx_writer *w = one_node(13, "AveragePool", 1,
                                     (const sm_tensor *[]){x});
        sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2}, 1);
        sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2}, 1);
        sm_onnx_writer_attr_int(w, "ceil_mode", 1);
        sm_onnx_writer_attr_int(w, "count_include_pad", cip);
        sm_onnx_writer_output(w, "y", 3, ys);
        sm_model *m;
        const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
        assert_data(y, 3, ys, (float[]){1.5f, 3.5f, 5}, "AveragePool ceil");
        sm_model_destroy(&m);
    }
    /* Input 4, end pad 1, kernel 2, stride 2, ceil: a third window would
     * start at 4, in the end padding, and is dropped. */
    int64_t x4[] = {1, 1, 4}, y2[] = {1, 1, 2};
    sm_tensor *x2 = tensor(3, x4, (float[]){1, 5, 2, 3});
    sm_onnx_writer *w = one_node(13, "MaxPool", 1, (const sm_tensor *[]){x2});
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2}, 1);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2}, 1);
    sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){0, 1}, 2);
    sm_onnx_writer_attr_int(w, "ceil_mode", 1);
    sm_onnx_writer_output(w, "y", 3, y2);
    sm_model *m;
    const sm_tensor *y = run(w, (const sm_tensor *[]){x2}, 1, &m);
    assert_data(y, 3, y2, (float[]){5, 3}, "MaxPool ceil, last window dropped");
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&x2);
}

/* Pools on 2-D inputs against a direct reading of the spec, over strides,
 * pads, dilations, ceil_mode and count_include_pad: the border and interior
 * paths of pool.c must agree with it everywhere. */
typedef struct pool_case {
    int64_t h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int ceil, cip;
} pool_case;

static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t d,
                        int64_t pb, int64_t pe, int ceil)
{
    int64_t span = in + pb + pe - ((k - 1) * d + 1);
    int64_t o = (ceil ? (span + s - 1) / s : span / s) + 1;
    if (ceil && (o - 1) * s >= in + pb)
        o--;
    return o;
}

static void pool_direct(const pool_case *c, int max, const float *x,
                        int64_t oh, int64_t ow, float *y)
{
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            double acc = max ? -INFINITY : 0;
            int64_t n = 0, npad = 0;
            for (int64_t i = 0; i < c->kh; i++)
                for (int64_t j = 0; j < c->kw; j++) {
                    int64_t iy = oy * c->sh - c->pt + i * c->dh;
                    int64_t ix = ox * c->sw - c->pl + j * c->dw;
                    if (iy < c->h + c->pb && ix < c->w + c->pr)
                        npad++; /* inside the padded input */
                    if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                        continue;
                    float v = x[iy * c->w + ix];
                    acc = max ? fmax(acc, v) : acc + v;
                    n++;
                }
            *y++ = (float)(max ? acc : acc / (double)(c->cip ? npad : n));
        }
}

Test(ops, pools_match_direct_loops)
{
    static const pool_case cases[] = {
        {7, 9, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0},
        {7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
        {7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1},
        {8, 8, 3, 2, 3, 2, 1, 1, 0, 1, 2, 0, 1, 0},
        {8, 8, 3, 2, 3, 2, 1, 1, 0, 1, 2, 0, 1, 1},
        {9, 11, 2, 3, 1, 2, 2, 2, 1, 0, 0, 2, 0, 0},
        {9, 11, 3, 3, 2, 3, 2, 1, 2, 1, 1, 2, 1, 0},
        {5, 5, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
        {4, 13, 1, 4, 1, 4, 1, 1, 0, 3, 0, 3, 1, 1},
        {6, 21, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0}, /* 2x2: vectors + tail */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int max = 0; max < 2; max++) {
            const pool_case *c = &cases[ci];
            if (!max && (c->dh > 1 || c->dw > 1))
                continue; /* AveragePool has no dilations */
            int64_t oh = pool_out(c->h, c->kh, c->sh, c->dh, c->pt, c->pb, c->ceil);
            int64_t ow = pool_out(c->w, c->kw, c->sw, c->dw, c->pl, c->pr, c->ceil);
            int64_t xs[] = {2, 3, c->h, c->w}, ys[] = {2, 3, oh, ow};
            sm_tensor *x = tensor(4, xs, NULL);
            for (int64_t i = 0; i < sm_tensor_numel(x); i++)
                x->data[i] = (float)((i * 7919 + 13) % 101) / 10.0f - 5.0f;
            sm_onnx_writer *w = one_node(13, max ? "MaxPool" : "AveragePool",
                                         1, (const sm_tensor *[]){x});
            sm_onnx_writer_attr_ints(w, "kernel_shape",
                                     (int64_t[]){c->kh, c->kw}, 2);
            sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){c->sh, c->sw}, 2);
            sm_onnx_writer_attr_ints(w, "pads",
                                     (int64_t[]){c->pt, c->pl, c->pb, c->pr}, 4);
            if (max)
                sm_onnx_writer_attr_ints(w, "dilations",
                                         (int64_t[]){c->dh, c->dw}, 2);
            else
                sm_onnx_writer_attr_int(w, "count_include_pad", c->cip);
            sm_onnx_writer_attr_int(w, "ceil_mode", c->ceil);
            sm_onnx_writer_output(w, "y", 4, ys);
            sm_model *m;
            const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
            float *want = malloc((size_t)sm_shape_numel(4, ys) * sizeof(float));
            for (int64_t pl = 0; pl < 6; pl++)
                pool_direct(c, max, x->data + pl * c->h * c->w, oh, ow,
                            want + pl * oh * ow);
            char what[64];
            snprintf(what, sizeof what, "%s case %zu",
                     max ? "MaxPool" : "AveragePool", ci);
            assert_data(y, 4, ys, want, what);
            free(want);
            sm_model_destroy(&m);
            sm_tensor_destroy(&x);
        }
}

/* MaxPool 2x2 / 2 (pool.c's max2x2, four outputs at a time and a scalar
 * tail) selects as the operator's comparison a > b ? a : b does, bit for
 * bit where a plain max could choose otherwise: between -0 and +0 (the
 * second in row order wins unless the first is greater) and around NaN
 * (a NaN second beats any first; a NaN first loses to the second). */
static float sel_max(float a, float b)
{
    return a > b ? a : b;
}

Test(ops, maxpool_2x2_selects_like_its_comparison)
{
    const int64_t h = 4, w = 18, oh = 2, ow = 9;
    const float specials[] = {-0.0f, 0.0f, NAN, -NAN, 1.5f, -2.0f, INFINITY,
                              -INFINITY, -FLT_MAX};
    sm_tensor *x = tensor(4, (int64_t[]){1, 2, h, w}, NULL);
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = specials[(i * 5 + i / 7) % 9];
    /* windows of -inf and -FLT_MAX only, which pass no gradient */
    x->data[0] = x->data[1] = x->data[w] = -INFINITY;
    x->data[w + 1] = -FLT_MAX;
    sm_onnx_writer *wr = one_node(13, "MaxPool", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_attr_ints(wr, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_ints(wr, "strides", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_output(wr, "y", 4, (int64_t[]){1, 2, oh, ow});
    sm_model *m;
    const sm_tensor *y = run(wr, (const sm_tensor *[]){x}, 1, &m);
    for (int64_t c = 0; c < 2; c++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                const float *r0 = x->data + (c * h + 2 * oy) * w + 2 * ox;
                const float *r1 = r0 + w;
                float want = sel_max(sel_max(r0[0], r0[1]), sel_max(r1[0], r1[1]));
                float got = y->data[(c * oh + oy) * ow + ox];
                cr_assert_eq(memcmp(&got, &want, sizeof got), 0,
                             "plane %lld output %lld,%lld: %g, want %g",
                             (long long)c, (long long)oy, (long long)ox, got,
                             want);
            }
    /* the backward (four outputs a step and the tail): each output's
     * gradient to its window's first tap greater than the best so far,
     * starting from -FLT_MAX (none: nothing) */
    sm_tensor *seed = tensor(4, (int64_t[]){1, 2, oh, ow}, NULL);
    for (int64_t i = 0; i < sm_tensor_numel(seed); i++)
        seed->data[i] = 0.25f * (float)(i % 7) - 0.5f;
    const sm_tensor *gx[1];
    sm_err err = {0};
    cr_assert_eq(sm_model_backward(m, 0, seed, gx, &err), 0, "%s", err.msg);
    float *want = calloc((size_t)sm_tensor_numel(x), sizeof(float));
    for (int64_t c = 0; c < 2; c++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t r = (c * h + 2 * oy) * w + 2 * ox;
                const int64_t tap[4] = {r, r + 1, r + w, r + w + 1};
                float best = -FLT_MAX;
                int64_t arg = -1;
                for (int k = 0; k < 4; k++)
                    if (x->data[tap[k]] > best)
                        best = x->data[tap[k]], arg = tap[k];
                if (arg >= 0)
                    want[arg] += seed->data[(c * oh + oy) * ow + ox];
            }
    cr_assert_eq(memcmp(gx[0]->data, want, sizeof(float) * (size_t)sm_tensor_numel(x)),
                 0, "the input gradient differs from the window rule");
    cr_assert_eq(want[0] + want[1] + want[w] + want[w + 1], 0.0f);
    free(want);
    sm_tensor_destroy(&seed);
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
}

/* MaxPool's other windows (pool.c's two-pass max_separable: rows, then
 * columns) keep the bits of the operator's one-pass rule: a running
 * maximum v > acc ? v : acc from -FLT_MAX over the window's taps inside
 * the input, in row-major order. So NaN never enters, of -0 and +0 the
 * first stays, and a window of -inf only gives -FLT_MAX. ResNet's 3x3 / 2
 * pad 1, a stride 1, a stride 3 with dilation, and a 1-D pool. */
Test(ops, maxpool_windows_keep_the_one_pass_bits)
{
    static const pool_case cases[] = {
        {9, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
        {6, 11, 3, 2, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0},
        {10, 13, 2, 3, 2, 3, 2, 2, 1, 2, 0, 1, 1, 0},
        {1, 23, 1, 4, 1, 3, 1, 1, 0, 2, 0, 2, 1, 0},
    };
    const float specials[] = {-0.0f, 0.0f, NAN, -NAN, 1.5f, -2.0f, INFINITY,
                              -INFINITY, -FLT_MAX, 0.25f, -0.0f};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const pool_case *c = &cases[ci];
        int one_d = c->h == 1;
        int64_t oh = pool_out(c->h, c->kh, c->sh, c->dh, c->pt, c->pb, c->ceil);
        int64_t ow = pool_out(c->w, c->kw, c->sw, c->dw, c->pl, c->pr, c->ceil);
        int64_t xs[] = {2, 3, c->h, c->w}, ys[] = {2, 3, oh, ow};
        int64_t xs1[] = {2, 3, c->w}, ys1[] = {2, 3, ow};
        sm_tensor *x = one_d ? tensor(3, xs1, NULL) : tensor(4, xs, NULL);
        for (int64_t i = 0; i < sm_tensor_numel(x); i++)
            x->data[i] = specials[(i * 7 + i / 5) % 11];
        x->data[0] = x->data[1] = -INFINITY; /* a corner window of -inf */
        x->data[c->w] = x->data[c->w + 1] = -INFINITY;
        sm_onnx_writer *w = one_node(13, "MaxPool", 1, (const sm_tensor *[]){x});
        if (one_d) {
            sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){c->kw}, 1);
            sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){c->sw}, 1);
            sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){c->pl, c->pr}, 2);
            sm_onnx_writer_attr_ints(w, "dilations", (int64_t[]){c->dw}, 1);
        } else {
            sm_onnx_writer_attr_ints(w, "kernel_shape",
                                     (int64_t[]){c->kh, c->kw}, 2);
            sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){c->sh, c->sw}, 2);
            sm_onnx_writer_attr_ints(w, "pads",
                                     (int64_t[]){c->pt, c->pl, c->pb, c->pr}, 4);
            sm_onnx_writer_attr_ints(w, "dilations",
                                     (int64_t[]){c->dh, c->dw}, 2);
        }
        sm_onnx_writer_attr_int(w, "ceil_mode", c->ceil);
        sm_onnx_writer_output(w, "y", one_d ? 3 : 4, one_d ? ys1 : ys);
        sm_model *m;
        const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
        cr_assert_eq(sm_tensor_numel(y), 6 * oh * ow);
        for (int64_t pl = 0; pl < 6; pl++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    float want = -FLT_MAX;
                    for (int64_t i = 0; i < c->kh; i++)
                        for (int64_t j = 0; j < c->kw; j++) {
                            int64_t iy = oy * c->sh - c->pt + i * c->dh;
                            int64_t ix = ox * c->sw - c->pl + j * c->dw;
                            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                continue;
                            float v = x->data[(pl * c->h + iy) * c->w + ix];
                            want = v > want ? v : want;
                        }
                    float got = y->data[(pl * oh + oy) * ow + ox];
                    cr_assert_eq(memcmp(&got, &want, sizeof got), 0,
                                 "case %zu plane %lld output %lld,%lld: %g, "
                                 "want %g", ci, (long long)pl, (long long)oy,
                                 (long long)ox, got, want);
                }
        if (ci == 0) /* its first window holds the four -inf only */
            cr_assert_eq(y->data[0], -FLT_MAX, "the -inf corner");
        sm_model_destroy(&m);
        sm_tensor_destroy(&x);
    }
}

/* --- shape operators and Constant ----------------------------------------- */

Test(ops, constant_feeds_identity_reshape_and_add)
{
    /* y = Reshape(x, Identity(Constant(value_ints))) + Constant(value) */
    int64_t xs[] = {2, 3}, ys[] = {3, 2};
    sm_tensor *x = tensor(2, xs, (float[]){1, 2, 3, 4, 5, 6});
    sm_tensor *c = tensor(1, (int64_t[]){2}, (float[]){10, 20});
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_node(w, "Constant", "shape", NULL, 0,
                        (const char *[]){"s"}, 1);
    sm_onnx_writer_attr_ints(w, "value_ints", (int64_t[]){-1, 2}, 2);
    sm_onnx_writer_node(w, "Identity", "id", (const char *[]){"s"}, 1,
                        (const char *[]){"s2"}, 1);
    sm_onnx_writer_node(w, "Reshape", "r", (const char *[]){"x", "s2"}, 2,
                        (const char *[]){"r"}, 1);
    sm_onnx_writer_node(w, "Constant", "bias", NULL, 0,
                        (const char *[]){"b"}, 1);
    sm_onnx_writer_attr_tensor(w, "value", c);
    sm_onnx_writer_node(w, "Add", "add", (const char *[]){"r", "b"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, ys);
    sm_model *m;
    const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
    assert_data(y, 2, ys, (float[]){11, 22, 13, 24, 15, 26}, "Constant");
    sm_model_destroy(&m);

    /* Identity of an int64 initializer (no float buffer behind it) */
    sm_tensor s = {.ndim = 1, .shape = {2}, .i64 = (int64_t[]){3, -1}};
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_initializer(w, "s", &s);
    sm_onnx_writer_node(w, "Identity", "id", (const char *[]){"s"}, 1,
                        (const char *[]){"s2"}, 1);
    sm_onnx_writer_node(w, "Reshape", "r", (const char *[]){"x", "s2"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, ys);
    y = run(w, (const sm_tensor *[]){x}, 1, &m);
    assert_data(y, 2, ys, x->data, "Identity of an int64 initializer");
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&c);
}

Test(ops, reshape_old_opset_concat_three_flatten_dropout)
{
    int64_t xs[] = {2, 3, 2};
    float xv[12];
    for (int i = 0; i < 12; i++)
        xv[i] = (float)i;
    sm_tensor *x = tensor(3, xs, xv);
    /* Reshape opset 4 with the shape attribute; 0 copies dim 0. */
    sm_onnx_writer *w = one_node(4, "Reshape", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_attr_ints(w, "shape", (int64_t[]){0, -1}, 2);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){2, 6});
    sm_model *m;
    const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
    assert_data(y, 2, (int64_t[]){2, 6}, xv, "Reshape opset 4");
    sm_model_destroy(&m);
    /* Concat of three along -1 */
    w = one_node(13, "Concat", 3, (const sm_tensor *[]){x, x, x});
    sm_onnx_writer_attr_int(w, "axis", -1);
    sm_onnx_writer_output(w, "y", 3, (int64_t[]){2, 3, 6});
    y = run(w, (const sm_tensor *[]){x, x, x}, 3, &m);
    for (int64_t i = 0; i < 36; i++)
        cr_assert_eq(y->data[i], xv[(i / 6) * 2 + i % 2], "Concat at %lld",
                     (long long)i);
    sm_model_destroy(&m);
    /* Flatten at 0: [1, 12] */
    w = one_node(13, "Flatten", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_attr_int(w, "axis", 0);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){1, 12});
    y = run(w, (const sm_tensor *[]){x}, 1, &m);
    assert_data(y, 2, (int64_t[]){1, 12}, xv, "Flatten axis 0");
    cr_assert_neq(y->data, x->data, "Flatten must copy into its own buffer");
    sm_model_destroy(&m);
    /* Dropout opset 10 with a ratio attribute: identity in inference */
    w = one_node(10, "Dropout", 1, (const sm_tensor *[]){x});
    sm_onnx_writer_attr_float(w, "ratio", 0.5f);
    sm_onnx_writer_output(w, "y", 3, xs);
    y = run(w, (const sm_tensor *[]){x}, 1, &m);
    assert_data(y, 3, xs, xv, "Dropout");
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
}

Test(ops, batchnorm_on_rank_2)
{
    int64_t xs[] = {2, 2};
    sm_tensor *x = tensor(2, xs, (float[]){1, 2, 3, 4});
    sm_tensor *s = tensor(1, (int64_t[]){2}, (float[]){2, 1});
    sm_tensor *b = tensor(1, (int64_t[]){2}, (float[]){0, 1});
    sm_tensor *mu = tensor(1, (int64_t[]){2}, (float[]){1, 2});
    sm_tensor *var = tensor(1, (int64_t[]){2}, (float[]){4, 1});
    sm_onnx_writer *w = sm_onnx_writer_new(15);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_initializer(w, "s", s);
    sm_onnx_writer_initializer(w, "b", b);
    sm_onnx_writer_initializer(w, "m", mu);
    sm_onnx_writer_initializer(w, "v", var);
    sm_onnx_writer_node(w, "BatchNormalization", "bn",
                        (const char *[]){"x", "s", "b", "m", "v"}, 5,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_float(w, "epsilon", 0);
    sm_onnx_writer_output(w, "y", 2, xs);
    sm_model *m;
    const sm_tensor *y = run(w, (const sm_tensor *[]){x}, 1, &m);
    /* (x - mean) / sqrt(var) * scale + B */
    assert_data(y, 2, xs, (float[]){0, 1, 2, 3}, "BatchNormalization");
    sm_model_destroy(&m);
    sm_tensor *ts[] = {x, s, b, mu, var};
    for (int i = 0; i < 5; i++)
        sm_tensor_destroy(&ts[i]);
}

Test(ops, registry_lists_every_operator_once)
{
    const sm_op_class *const *all = sm_op_all();
    int n = 0;
    for (; all[n]; n++) {
        cr_assert_eq(sm_op_find(all[n]->name), all[n], "%s", all[n]->name);
        cr_assert_not_null(all[n]->infer, "%s", all[n]->name);
        cr_assert_not_null(all[n]->run, "%s", all[n]->name);
    }
    cr_assert_geq(n, 26);
    cr_assert_null(sm_op_find("Erf"));
    cr_assert_not_null(sm_op_find("Conv"));
}

/* --- refusals ---------------------------------------------------------------- */

Test(ops, refuses_unsupported_operator_naming_node)
{
    int64_t xs[] = {1, 4};
    sm_tensor *x = tensor(2, xs, NULL);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_node(w, "Relu", "ok", (const char *[]){"x"}, 1,
                        (const char *[]){"r"}, 1);
    sm_onnx_writer_node(w, "HardSwish", "hs1", (const char *[]){"r"}, 1,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, xs);
    expect_refusal(w, (const sm_tensor *[]){x}, 1, "HardSwish", "'hs1'",
                   "not supported");
    sm_tensor_destroy(&x);
}

/* A one-input node over x [1, 2, 4, 4] with one string attribute. */
static void refuse_string_attr(const char *op, const char *attr,
                               const char *value, const char *needle)
{
    int64_t xs[] = {1, 2, 4, 4};
    sm_tensor *x = tensor(4, xs, NULL);
    sm_tensor p = {.ndim = 1, .shape = {8}, .i64 = (int64_t[8]){0}};
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, xs);
    sm_onnx_writer_initializer(w, "pads", &p);
    sm_onnx_writer_node(w, op, "bad_node", (const char *[]){"x", "pads"},
                        strcmp(op, "Pad") == 0 ? 2 : 1,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_string(w, attr, value);
    if (strcmp(op, "Pad") != 0)
        sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_output(w, "y", 4, xs);
    expect_refusal(w, (const sm_tensor *[]){x}, 1, "'bad_node'", attr, needle);
    sm_tensor_destroy(&x);
}

Test(ops, refuses_bad_attribute_values)
{
    refuse_string_attr("Pad", "mode", "wrap", "'wrap'");
    refuse_string_attr("MaxPool", "auto_pad", "FOO", "'FOO'");
    refuse_string_attr("AveragePool", "auto_pad", "same", "'same'");
}

/* Add over an empty tensor whose innermost dim is 0 (found by fuzz_onnx:
 * the broadcast walk divided by that dim): an empty result. */
Test(ops, add_of_an_empty_tensor)
{
    int64_t xs[] = {2, 0};
    sm_tensor *x = sm_tensor_new(2, xs);
    cr_assert_not_null(x);
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_node(w, "Add", "a", (const char *[]){"x", "x"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, xs);
    sm_err err = {0};
    sm_model *m = load(w, &err);
    sm_onnx_writer_destroy(&w);
    cr_assert_not_null(m, "%s", err.msg);
    const sm_tensor *out[1];
    cr_assert_eq(sm_model_run(m, (const sm_tensor *[]){x}, 1, out, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(sm_tensor_numel(out[0]), 0);
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
}

Test(ops, refuses_reshape_that_does_not_fit)
{
    int64_t xs[] = {2, 3};
    sm_tensor *x = tensor(2, xs, NULL);
    sm_tensor s = {.ndim = 1, .shape = {2}, .i64 = (int64_t[]){4, -1}};
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_initializer(w, "s", &s);
    sm_onnx_writer_node(w, "Reshape", "resh", (const char *[]){"x", "s"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){4, -1});
    expect_refusal(w, (const sm_tensor *[]){x}, 1, "'resh'", "[2, 3]",
                   "[4, -1]");

    /* A target whose product wraps int64 (found by fuzz_onnx): 2^62 x 2
     * x 3 wrapped to -2^63 + ..., now refused by count. */
    sm_tensor big = {.ndim = 1, .shape = {3},
                     .i64 = (int64_t[]){(int64_t)1 << 62, 2, 3}};
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_initializer(w, "s", &big);
    sm_onnx_writer_node(w, "Reshape", "resh", (const char *[]){"x", "s"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 3, (int64_t[]){-1, 2, 3});
    expect_refusal(w, (const sm_tensor *[]){x}, 1, "'resh'",
                   "more than 2^63 elements", NULL);

    /* A shape computed at run time cannot plan the output. */
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, xs);
    sm_onnx_writer_input(w, "t", 1, (int64_t[]){2});
    sm_onnx_writer_node(w, "Relu", "r", (const char *[]){"t"}, 1,
                        (const char *[]){"s"}, 1);
    sm_onnx_writer_node(w, "Reshape", "resh2", (const char *[]){"x", "s"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){3, 2});
    sm_tensor *t = tensor(1, (int64_t[]){2}, (float[]){3, 2});
    expect_refusal(w, (const sm_tensor *[]){x, t}, 2, "'resh2'", "'shape'",
                   "constant");
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&t);
}

/* One node over x [1, 2, 4, 4], for shape and output refusals. */
static sm_onnx_writer *node4(int opset, const char *op, int n_out)
{
    sm_onnx_writer *w = sm_onnx_writer_new(opset);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){1, 2, 4, 4});
    sm_onnx_writer_node(w, op, "nd", (const char *[]){"x"}, 1,
                        (const char *[]){"y", "y2"}, n_out);
    sm_onnx_writer_output(w, "y", 4, (int64_t[]){1, 2, 4, 4});
    return w;
}

Test(ops, refuses_shapes_and_outputs_it_cannot_do)
{
    sm_tensor *x = tensor(4, (int64_t[]){1, 2, 4, 4}, NULL);
    const sm_tensor *in[] = {x};
    sm_onnx_writer *w = node4(13, "MaxPool", 1);
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){5, 5}, 2);
    expect_refusal(w, in, 1, "'nd'", "larger than the padded input", NULL);

    w = node4(13, "MaxPool", 1);
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2}, 1);
    expect_refusal(w, in, 1, "'nd'", "[1, 2, 4, 4]", "rank 3");

    w = node4(13, "MaxPool", 2);
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    expect_refusal(w, in, 1, "'nd'", "Indices", NULL);

    w = node4(13, "MaxPool", 1);
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_int(w, "storage_order", 1);
    expect_refusal(w, in, 1, "'nd'", "storage_order", NULL);

    w = node4(13, "Dropout", 2);
    expect_refusal(w, in, 1, "'nd'", "mask", NULL);

    w = node4(13, "Transpose", 1);
    sm_onnx_writer_attr_ints(w, "perm", (int64_t[]){0, 1, 1, 2}, 4);
    expect_refusal(w, in, 1, "'nd'", "perm", "permutation");

    w = node4(13, "Transpose", 1);
    sm_onnx_writer_attr_ints(w, "perm", (int64_t[]){1, 0}, 2);
    expect_refusal(w, in, 1, "'nd'", "perm", "[1, 2, 4, 4]");

    w = node4(13, "Softmax", 1);
    sm_onnx_writer_attr_int(w, "axis", 4);
    expect_refusal(w, in, 1, "'nd'", "axis", "[1, 2, 4, 4]");

    w = node4(13, "Flatten", 1);
    sm_onnx_writer_attr_int(w, "axis", -5);
    expect_refusal(w, in, 1, "'nd'", "axis", "-5");

    w = node4(13, "Clip", 1);
    sm_onnx_writer_attr_float(w, "min", 0);
    expect_refusal(w, in, 1, "'nd'", "'min'", "opset 11");

    w = node4(13, "Concat", 1);
    sm_onnx_writer_attr_int(w, "axis", -7);
    expect_refusal(w, in, 1, "'nd'", "axis", "-7");

    w = node4(13, "LeakyRelu", 1);
    sm_onnx_writer_attr_int(w, "alpha", 1); /* an int where a float belongs */
    expect_refusal(w, in, 1, "'nd'", "'alpha'", NULL);
    sm_tensor_destroy(&x);
}

Test(ops, refuses_mismatched_operands)
{
    sm_tensor *a = tensor(2, (int64_t[]){2, 3}, NULL);
    sm_tensor *b = tensor(2, (int64_t[]){2, 4}, NULL);
    const sm_tensor *in[] = {a, b};
    sm_onnx_writer *w = one_node(13, "Mul", 2, in);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){2, 3});
    expect_refusal(w, in, 2, "'n'", "[2, 3]", "broadcast");

    w = one_node(13, "Concat", 2, in);
    sm_onnx_writer_attr_int(w, "axis", 0);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){4, 3});
    expect_refusal(w, in, 2, "'n'", "inputs[1]", "[2, 4]");

    /* BatchNormalization: training mode, and a scale of the wrong size */
    sm_tensor *c3 = tensor(1, (int64_t[]){3}, (float[]){1, 1, 1});
    sm_onnx_writer *bn = sm_onnx_writer_new(15);
    sm_onnx_writer_input(bn, "x", 2, (int64_t[]){2, 3});
    sm_onnx_writer_initializer(bn, "c", c3);
    sm_onnx_writer_node(bn, "BatchNormalization", "bn",
                        (const char *[]){"x", "c", "c", "c", "c"}, 5,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(bn, "training_mode", 1);
    sm_onnx_writer_output(bn, "y", 2, (int64_t[]){2, 3});
    expect_refusal(bn, (const sm_tensor *[]){a}, 1, "'bn'", "training_mode",
                   "inference");
    bn = sm_onnx_writer_new(15);
    sm_onnx_writer_input(bn, "x", 2, (int64_t[]){2, 4});
    sm_onnx_writer_initializer(bn, "c", c3);
    sm_onnx_writer_node(bn, "BatchNormalization", "bn",
                        (const char *[]){"x", "c", "c", "c", "c"}, 5,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(bn, "y", 2, (int64_t[]){2, 4});
    expect_refusal(bn, (const sm_tensor *[]){b}, 1, "'bn'", "'scale'", "[4]");

    /* int64 data where float32 is computed */
    sm_tensor i = {.ndim = 1, .shape = {3}, .i64 = (int64_t[]){1, 2, 3}};
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){2, 3});
    sm_onnx_writer_initializer(w, "i", &i);
    sm_onnx_writer_node(w, "Add", "addi", (const char *[]){"x", "i"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){2, 3});
    expect_refusal(w, (const sm_tensor *[]){a}, 1, "'addi'", "int64", "float32");

    /* Pad: reflect wider than the input */
    sm_tensor p = {.ndim = 1, .shape = {4}, .i64 = (int64_t[]){0, 3, 0, 0}};
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 2, (int64_t[]){2, 3});
    sm_onnx_writer_initializer(w, "p", &p);
    sm_onnx_writer_node(w, "Pad", "padr", (const char *[]){"x", "p"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_string(w, "mode", "reflect");
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){2, 6});
    expect_refusal(w, (const sm_tensor *[]){a}, 1, "'padr'", "reflect",
                   "smaller");
    sm_tensor_destroy(&a);
    sm_tensor_destroy(&b);
    sm_tensor_destroy(&c3);
}
