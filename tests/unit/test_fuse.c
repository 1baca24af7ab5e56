/* A Relu fused into the Conv before it (model/plan.c, op.h run_relu)
 * changes no bits: the same model with an Identity between the two,
 * which keeps them apart, computes the same outputs, input gradients and
 * relevance bit for bit, on the direct path (planes of 64 pixels or
 * more) and im2col (smaller ones), on every instruction set, batch and
 * thread count; when the Conv's output has a second reader, that reader
 * still sees the Conv's own output. Against the definition too: the
 * Relu of a double-precision convolution, within float rounding. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"
#include "onnx/writer.h"
#include "util/isa.h"

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

enum { C = 3, M = 5 };

/* x [N, C, s, s] -> Conv 3x3 pad 1 (M channels, bias) -> z -> Relu -> r,
 * the output; apart: z -> Identity -> Relu instead; second: a second
 * output q = z + r (z read twice). */
static sm_model *build(int64_t s, int apart, int second)
{
    sm_tensor *w = rand_tensor(4, (int64_t[]){M, C, 3, 3}, 11);
    sm_tensor *b = rand_tensor(1, (int64_t[]){M}, 12);
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, (int64_t[]){-1, C, s, s});
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
    sm_onnx_writer_output(wr, "r", 4, (int64_t[]){-1, M, s, s});
    if (second) {
        sm_onnx_writer_node(wr, "Add", "add", (const char *[]){"z", "r"}, 2,
                            (const char *[]){"q"}, 1);
        sm_onnx_writer_output(wr, "q", 4, (int64_t[]){-1, M, s, s});
    }
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(wr, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_model *m = sm_model_load_buffer(buf, len, "fuse.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    sm_onnx_writer_destroy(&wr);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&b);
    return m;
}

/* Whether the last run of m ran its Relu inside the Conv. */
static int fused(const sm_model *m)
{
    const plan *p = m->last_plan[0];
    for (int i = 0; i < m->g.n_nodes; i++)
        if (p->fuse[i] < 0)
            return 1;
    return 0;
}

/* Runs x through m (outputs into out, copied), the input gradient of
 * sum(r) into gx and the epsilon-rule relevance of r into rel. */
static void evaluate(sm_model *m, const sm_tensor *x, int n_out,
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

static void same_bits(const sm_tensor *a, const sm_tensor *b, const char *what,
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
static void check_definition(const sm_tensor *x, const sm_tensor *r, int64_t s)
{
    sm_tensor *w = rand_tensor(4, (int64_t[]){M, C, 3, 3}, 11);
    sm_tensor *b = rand_tensor(1, (int64_t[]){M}, 12);
    for (int64_t n = 0; n < x->shape[0]; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t oy = 0; oy < s; oy++)
                for (int64_t ox = 0; ox < s; ox++) {
                    double z = b->data[m], mag = fabs(z);
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t i = 0; i < 3; i++)
                            for (int64_t j = 0; j < 3; j++) {
                                int64_t iy = oy + i - 1, ix = ox + j - 1;
                                if (iy < 0 || iy >= s || ix < 0 || ix >= s)
                                    continue;
                                double t = (double)x->data[((n * C + c) * s + iy) * s + ix] *
                                           w->data[((m * C + c) * 3 + i) * 3 + j];
                                z += t;
                                mag += fabs(t);
                            }
                    float got = r->data[((n * M + m) * s + oy) * s + ox];
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

static void check(int64_t s, int second)
{
    const int n_out = second ? 2 : 1;
    for (int threads = 1; threads <= 2; threads++) {
        sm_model *f = build(s, 0, second), *a = build(s, 1, second);
        sm_model_set_threads(f, threads);
        sm_model_set_threads(a, threads);
        for (int64_t batch = 1; batch <= 5; batch += 4) {
            sm_tensor *x = rand_tensor(4, (int64_t[]){batch, C, s, s},
                                       (uint64_t)(100 + batch));
            sm_tensor *fo[2], *ao[2], *fg, *ag, *fr, *ar;
            evaluate(f, x, n_out, fo, &fg, &fr);
            cr_assert(fused(f), "the Relu runs inside the Conv");
            evaluate(a, x, n_out, ao, &ag, &ar);
            cr_assert(!fused(a), "an Identity keeps them apart");
            same_bits(fo[0], ao[0], "Relu output", s, second, threads);
            if (second)
                same_bits(fo[1], ao[1], "z + r (z's second reader)", s,
                          second, threads);
            same_bits(fg, ag, "input gradient", s, second, threads);
            same_bits(fr, ar, "relevance", s, second, threads);
            check_definition(x, fo[0], s);
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
Test(fuse, relu_into_conv_changes_no_bits)
{
    const char *isas[] = {"avx512", "avx2", "baseline"};
    for (int k = 0; k < 3; k++) {
        setenv("SALMAP_ISA", isas[k], 1);
        check(12, 0); /* 144 pixels: the direct path */
        check(12, 1);
        check(6, 0);  /* 36 pixels: im2col */
        check(6, 1);
    }
    unsetenv("SALMAP_ISA");
}

/* The Relu with no Conv before it, or after a node that cannot fuse it
 * (here Identity, above), runs as a node of its own: checked by fused()
 * on the apart model; and a Relu whose input is the graph input has no
 * producer at all. */
Test(fuse, relu_of_the_input_runs_alone)
{
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 2, (int64_t[]){-1, 4});
    sm_onnx_writer_node(wr, "Relu", "relu", (const char *[]){"x"}, 1,
                        (const char *[]){"r"}, 1);
    sm_onnx_writer_output(wr, "r", 2, (int64_t[]){-1, 4});
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(wr, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_model *m = sm_model_load_buffer(buf, len, "relu.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    sm_onnx_writer_destroy(&wr);
    const float nz = -0.0f;
    float xs[4] = {-2.0f, nz, 3.5f, NAN};
    const sm_tensor *y = sm_model_forward(m, xs, 1, &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert(!fused(m));
    cr_assert_eq(y->data[0], 0.0f);
    cr_assert(signbit(y->data[1]), "-0 passes as -0 (x < 0 ? 0 : x)");
    cr_assert_eq(y->data[2], 3.5f);
    cr_assert(isnan(y->data[3]), "NaN passes");
    sm_model_destroy(&m);
}
