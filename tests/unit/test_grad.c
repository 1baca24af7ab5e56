/* Backward passes of the operators (ops/ backward()) through the engine's
 * sm_model_backward, against central finite differences.
 *
 * Each test builds a small model with the ONNX writer whose float inputs are
 * all graph inputs (weights included), runs it, seeds the output with
 * random values s and compares the gradient of L = sum(s * y) with respect
 * to every input element against (L(x + h) - L(x - h)) / 2h, L in double.
 * Inputs are drawn away from kinks (ReLU at 0, MaxPool ties, Clip bounds)
 * by construction, so the finite difference is the derivative. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "onnx/writer.h"

#define MAX_IN 8

/* How an input's values are drawn. */
enum {
    AWAY0,    /* +-[0.1, 1]: away from 0 (ReLU's kink, divisions) */
    WIDE,     /* +-[0.5, 1.5]: denominators */
    POS,      /* [0.5, 1.5]: variances */
    DISTINCT, /* a shuffled grid of step 0.05: no ties within a window */
};

/* A model under construction: graph inputs x0.. (their values in x), the
 * node(s) reading them, output y. */
typedef struct gmodel {
    sm_onnx_writer *w;
    int n;
    sm_tensor *x[MAX_IN];
    uint64_t rng;
} gmodel;

static const char *const xname[MAX_IN] = {"x0", "x1", "x2", "x3",
                                          "x4", "x5", "x6", "x7"};

/* splitmix64 in [-1, 1): deterministic, no global state. */
static double rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static gmodel begin(int opset, uint64_t seed)
{
    gmodel g = {.w = sm_onnx_writer_new(opset), .rng = seed};
    cr_assert_not_null(g.w);
    return g;
}

/* Adds graph input x<n> of the given shape, filled by kind; returns it. */
static sm_tensor *input(gmodel *g, int ndim, const int64_t *shape, int kind)
{
    cr_assert_lt(g->n, MAX_IN);
    sm_tensor *t = sm_tensor_new(ndim, shape);
    cr_assert_not_null(t);
    int64_t n = sm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double u = rnd(&g->rng), sign = u < 0 ? -1 : 1;
        switch (kind) {
        case AWAY0: t->data[i] = (float)(sign * (0.1 + 0.9 * fabs(u))); break;
        case WIDE: t->data[i] = (float)(sign * (0.5 + fabs(u))); break;
        case POS: t->data[i] = (float)(1.0 + 0.5 * u); break;
        default: t->data[i] = (float)(0.05 * ((double)i - (double)n / 2));
        }
    }
    if (kind == DISTINCT) /* Fisher-Yates */
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)((rnd(&g->rng) + 1) / 2 * (double)(i + 1));
            j = j > i ? i : j;
            float v = t->data[i];
            t->data[i] = t->data[j];
            t->data[j] = v;
        }
    sm_onnx_writer_input(g->w, xname[g->n], ndim, shape);
    g->x[g->n++] = t;
    return t;
}

/* A node reading inputs (names; "" for absent) writing out. */
static void node(gmodel *g, const char *op, const char *const *in, int n_in,
                 const char *out)
{
    cr_assert_eq(sm_onnx_writer_node(g->w, op, op, in, n_in,
                                     (const char *[]){out}, 1), 0);
}

/* One node reading all the graph inputs in order, writing y. */
static void node_all(gmodel *g, const char *op)
{
    node(g, op, xname, g->n, "y");
}

static void init_i64(gmodel *g, const char *name, int n, const int64_t *v)
{
    sm_tensor t = {.ndim = 1, .shape = {n}, .i64 = (int64_t *)v};
    cr_assert_eq(sm_onnx_writer_initializer(g->w, name, &t), 0);
}

/* --- gradient and finite differences ------------------------------------ */

/* What one check computed: per input, the engine's gradient and the finite
 * difference, both as doubles. */
typedef struct grads {
    int n;
    int64_t numel[MAX_IN];
    double *g[MAX_IN], *fd[MAX_IN];
} grads;

/* L = sum(seed * y) of a run on the inputs g->x, in double. */
static double loss(sm_model *m, const gmodel *g, const sm_tensor *seed)
{
    sm_err err = {0};
    const sm_tensor *out[8];
    cr_assert_eq(sm_model_run(m, (const sm_tensor *const *)g->x, g->n, out,
                              &err), 0, "run: %s", err.msg);
    double l = 0;
    for (int64_t i = 0; i < sm_tensor_numel(seed); i++)
        l += (double)seed->data[i] * out[0]->data[i];
    return l;
}

/* Builds and runs the model, back-propagates a random seed (ones: all 1),
 * and fills r with the gradients and their finite differences. Destroys the
 * writer. */
static void compute(gmodel *g, grads *r, int ones)
{
    sm_err err = {0};
    size_t len;
    /* Declared as a scalar: the shape is not known before the run, and the
     * loader checks only an output's element type (the engine infers
     * shapes from the graph). */
    cr_assert_eq(sm_onnx_writer_output(g->w, "y", 0, NULL), 0);
    unsigned char *buf = sm_onnx_writer_serialize(g->w, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_onnx_writer_destroy(&g->w);
    sm_model *m = sm_model_load_buffer(buf, len, "grad.onnx", &err);
    free(buf);
    cr_assert_not_null(m, "load: %s", err.msg);
    cr_assert_eq(sm_model_n_inputs(m), g->n);

    const sm_tensor *out[8];
    cr_assert_eq(sm_model_run(m, (const sm_tensor *const *)g->x, g->n, out,
                              &err), 0, "run: %s", err.msg);
    sm_tensor *seed = sm_tensor_new(out[0]->ndim, out[0]->shape);
    cr_assert_not_null(seed);
    for (int64_t i = 0; i < sm_tensor_numel(seed); i++)
        seed->data[i] = ones ? 1.0f : (float)rnd(&g->rng);
    const sm_tensor *gr[MAX_IN];
    cr_assert_eq(sm_model_backward(m, 0, seed, gr, &err), 0, "backward: %s",
                 err.msg);
    r->n = g->n;
    for (int i = 0; i < g->n; i++) { /* copied: the next run reuses them */
        r->numel[i] = sm_tensor_numel(g->x[i]);
        cr_assert(sm_shape_equal(gr[i]->ndim, gr[i]->shape, g->x[i]->ndim,
                                 g->x[i]->shape), "gradient %d's shape", i);
        r->g[i] = malloc((size_t)(r->numel[i] + 1) * sizeof(double));
        r->fd[i] = malloc((size_t)(r->numel[i] + 1) * sizeof(double));
        for (int64_t j = 0; j < r->numel[i]; j++)
            r->g[i][j] = gr[i]->data[j];
    }
    for (int i = 0; i < g->n; i++)
        for (int64_t j = 0; j < r->numel[i]; j++) {
            float *v = &g->x[i]->data[j], x0 = *v;
            /* The step actually taken is what float x +- h rounds to. */
            float h = 1e-3f * fmaxf(1.0f, fabsf(x0));
            float xp = x0 + h, xm = x0 - h;
            *v = xp;
            double lp = loss(m, g, seed);
            *v = xm;
            double lm = loss(m, g, seed);
            *v = x0;
            r->fd[i][j] = (lp - lm) / ((double)xp - (double)xm);
        }
    sm_tensor_destroy(&seed);
    sm_model_destroy(&m);
    for (int i = 0; i < g->n; i++)
        sm_tensor_destroy(&g->x[i]);
    g->n = 0;
}

static void grads_free(grads *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->g[i]);
        free(r->fd[i]);
    }
}

/* The comparison: |g - fd| <= 1e-3 * scale + 1e-2 * |g| element by element,
 * scale the largest |fd| of that input (at least 1). The finite difference
 * of float32 runs is good to ~1e-5 here (h = 1e-3, and outputs a step does
 * not touch cancel exactly), so this passes right gradients with a wide
 * margin and fails a 10% error on any element above a few hundredths of
 * the scale (negative_control checks that). 0, or -1 with why set. */
static int compare(const grads *r, char *why, size_t len)
{
    for (int i = 0; i < r->n; i++) {
        double scale = 1;
        for (int64_t j = 0; j < r->numel[i]; j++)
            scale = fmax(scale, fabs(r->fd[i][j]));
        for (int64_t j = 0; j < r->numel[i]; j++) {
            double g = r->g[i][j], fd = r->fd[i][j];
            if (!(fabs(g - fd) <= 1e-3 * scale + 1e-2 * fabs(g))) {
                snprintf(why, len, "input x%d element %lld: gradient %.6g, "
                         "finite difference %.6g", i, (long long)j, g, fd);
                return -1;
            }
        }
    }
    return 0;
}

/* Builds, runs and checks the model; what names the case. */
static void check(gmodel *g, const char *what)
{
    grads r;
    char why[256];
    compute(g, &r, 0);
    int rc = compare(&r, why, sizeof why);
    grads_free(&r);
    cr_assert_eq(rc, 0, "%s: %s", what, why);
}

/* --- the comparison itself ------------------------------------------------ */

/* A gradient off by 10%, of the wrong sign, missing a factor 2 or with its
 * elements permuted must fail the comparison that right ones pass. */
Test(grad, negative_control)
{
    gmodel g = begin(13, 1);
    input(&g, 3, (int64_t[]){2, 3, 4}, AWAY0);
    input(&g, 2, (int64_t[]){3, 1}, WIDE);
    node_all(&g, "Mul");
    grads r;
    char why[256];
    compute(&g, &r, 0);
    cr_assert_eq(compare(&r, why, sizeof why), 0, "%s", why);
    for (int mode = 0; mode < 5; mode++)
        for (int i = 0; i < r.n; i++) {
            int64_t n = r.numel[i];
            double *keep = malloc((size_t)n * sizeof(double));
            memcpy(keep, r.g[i], (size_t)n * sizeof(double));
            for (int64_t j = 0; j < n; j++)
                r.g[i][j] = mode == 0 ? keep[j] * 1.1
                          : mode == 1 ? -keep[j]
                          : mode == 2 ? keep[j] * 2
                          : mode == 3 ? keep[n - 1 - j] /* reversed */
                                      : keep[(j + 1) % n]; /* rotated */
            cr_assert_neq(compare(&r, why, sizeof why), 0,
                          "a wrong gradient (mode %d, input %d) passed", mode,
                          i);
            memcpy(r.g[i], keep, (size_t)n * sizeof(double));
            free(keep);
        }
    /* One wrong element among many is caught too. */
    r.g[0][5] *= 1.1;
    cr_assert_neq(compare(&r, why, sizeof why), 0);
    grads_free(&r);
}

/* --- Add, Sub, Mul, Div with broadcasting -------------------------------- */

Test(grad, binary_broadcasting)
{
    static const struct {
        int na, nb;
        int64_t a[4], b[4];
    } cases[] = {
        {4, 4, {2, 3, 4, 5}, {2, 3, 4, 5}}, /* same shape */
        {4, 0, {2, 3, 4, 5}, {0}},          /* scalar */
        {0, 3, {0}, {3, 4, 5}},             /* scalar first */
        {4, 3, {2, 3, 4, 5}, {3, 1, 1}},    /* per-channel bias */
        {3, 4, {3, 1, 1}, {2, 3, 4, 5}},    /* per-channel, first */
        {4, 1, {2, 3, 4, 5}, {5}},          /* last dim */
        {2, 2, {4, 1}, {1, 5}},             /* outer product */
        {3, 2, {2, 1, 4}, {3, 1}},          /* both sides broadcast */
        {4, 4, {1, 3, 1, 5}, {2, 1, 4, 1}}, /* alternating */
        {1, 1, {1}, {7}},
        {2, 2, {3, 4}, {1, 1}},             /* all-ones dims */
    };
    const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int op = 0; op < 4; op++) {
            char what[64];
            snprintf(what, sizeof what, "%s case %zu", ops[op], c);
            gmodel g = begin(13, 100 + c * 4 + (uint64_t)op);
            input(&g, cases[c].na, cases[c].a, AWAY0);
            input(&g, cases[c].nb, cases[c].b, WIDE);
            node_all(&g, ops[op]);
            check(&g, what);
        }
}

/* --- activations ------------------------------------------------------------ */

Test(grad, activations)
{
    const char *ops[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh"};
    for (int op = 0; op < 4; op++) {
        gmodel g = begin(13, 200 + (uint64_t)op);
        input(&g, 4, (int64_t[]){2, 3, 4, 5}, AWAY0);
        for (int64_t i = 0; i < 120; i++) /* Sigmoid, Tanh: not just [-1,1] */
            g.x[0]->data[i] *= op >= 2 ? 3.0f : 1.0f;
        node_all(&g, ops[op]);
        if (op == 1)
            sm_onnx_writer_attr_float(g.w, "alpha", 0.2f);
        check(&g, ops[op]);
    }
}

/* Values of x nudged at least 0.05 away from lo and hi. */
static void away_from(sm_tensor *x, float lo, float hi)
{
    for (int64_t i = 0; i < sm_tensor_numel(x); i++) {
        float *v = &x->data[i];
        if (fabsf(*v - lo) < 0.05f)
            *v = lo + (*v < lo ? -0.05f : 0.05f);
        if (fabsf(*v - hi) < 0.05f)
            *v = hi + (*v < hi ? -0.05f : 0.05f);
    }
}

Test(grad, clip_bounds_as_inputs)
{
    static const float bounds[][2] = {{-0.4f, 0.5f}, {0.3f, 2.0f},
                                      {0.6f, -0.2f} /* min > max */};
    for (int c = 0; c < 3; c++) {
        char what[64];
        snprintf(what, sizeof what, "Clip min %g max %g", bounds[c][0],
                 bounds[c][1]);
        gmodel g = begin(13, 300 + (uint64_t)c);
        sm_tensor *x = input(&g, 3, (int64_t[]){2, 3, 5}, AWAY0);
        sm_tensor *lo = input(&g, 0, NULL, POS), *hi = input(&g, 0, NULL, POS);
        lo->data[0] = bounds[c][0];
        hi->data[0] = bounds[c][1];
        away_from(x, lo->data[0], hi->data[0]);
        node_all(&g, "Clip");
        check(&g, what);
    }
    /* Only min, then only max (absent min). */
    for (int c = 0; c < 2; c++) {
        gmodel g = begin(13, 310 + (uint64_t)c);
        sm_tensor *x = input(&g, 2, (int64_t[]){4, 5}, AWAY0);
        sm_tensor *b = input(&g, 0, NULL, POS);
        b->data[0] = 0.25f;
        away_from(x, 0.25f, 0.25f);
        node(&g, "Clip", c ? (const char *[]){"x0", "", "x1"}
                           : (const char *[]){"x0", "x1"}, c ? 3 : 2, "y");
        check(&g, c ? "Clip max only" : "Clip min only");
    }
}

Test(grad, clip_attributes)
{
    gmodel g = begin(6, 320);
    sm_tensor *x = input(&g, 2, (int64_t[]){4, 6}, AWAY0);
    away_from(x, -0.3f, 0.6f);
    node_all(&g, "Clip");
    sm_onnx_writer_attr_float(g.w, "min", -0.3f);
    sm_onnx_writer_attr_float(g.w, "max", 0.6f);
    check(&g, "Clip opset 6");
}

/* --- Softmax, LogSoftmax ------------------------------------------------- */

Test(grad, softmax_axes_and_opsets)
{
    static const struct {
        int opset;
        int64_t axis; /* 99: default */
    } cases[] = {{13, 99}, {13, 1}, {13, 0}, {13, -2}, {11, 99}, {11, 2},
                 {11, 0}};
    const char *ops[] = {"Softmax", "LogSoftmax"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int op = 0; op < 2; op++) {
            char what[64];
            snprintf(what, sizeof what, "%s opset %d axis %lld", ops[op],
                     cases[c].opset, (long long)cases[c].axis);
            gmodel g = begin(cases[c].opset, 400 + c * 2 + (uint64_t)op);
            sm_tensor *x = input(&g, 4, (int64_t[]){2, 3, 2, 4}, AWAY0);
            for (int64_t i = 0; i < 48; i++)
                x->data[i] *= 2.0f;
            node_all(&g, ops[op]);
            if (cases[c].axis != 99)
                sm_onnx_writer_attr_int(g.w, "axis", cases[c].axis);
            check(&g, what);
        }
}

/* --- pools ----------------------------------------------------------------- */

typedef struct pool_case {
    int nsp;                    /* spatial dims */
    int64_t in[3], k[3], s[3], d[3], pads[6];
    int ceil, cip;              /* ceil_mode, count_include_pad */
    const char *auto_pad;       /* NULL: explicit pads */
} pool_case;

static void check_pool(const char *op, const pool_case *pc, uint64_t seed)
{
    char what[96];
    int n = pc->nsp;
    int64_t shape[5] = {2, 2};
    memcpy(shape + 2, pc->in, (size_t)n * sizeof(int64_t));
    gmodel g = begin(13, seed);
    input(&g, n + 2, shape, DISTINCT);
    node_all(&g, op);
    sm_onnx_writer_attr_ints(g.w, "kernel_shape", pc->k, n);
    sm_onnx_writer_attr_ints(g.w, "strides", pc->s, n);
    if (pc->auto_pad)
        sm_onnx_writer_attr_string(g.w, "auto_pad", pc->auto_pad);
    else
        sm_onnx_writer_attr_ints(g.w, "pads", pc->pads, 2 * n);
    if (pc->ceil)
        sm_onnx_writer_attr_int(g.w, "ceil_mode", 1);
    if (strcmp(op, "MaxPool") == 0)
        sm_onnx_writer_attr_ints(g.w, "dilations", pc->d, n);
    else
        sm_onnx_writer_attr_int(g.w, "count_include_pad", pc->cip);
    snprintf(what, sizeof what, "%s case seed %llu", op,
             (unsigned long long)seed);
    check(&g, what);
}

Test(grad, maxpool)
{
    static const pool_case cases[] = {
        {2, {4, 6}, {2, 2}, {2, 2}, {1, 1}, {0}, 0, 0, NULL}, /* fast path */
        {2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0, NULL},
        {2, {5, 6}, {2, 3}, {2, 1}, {1, 1}, {0, 1, 1, 0}, 1, 0, NULL},
        {2, {6, 6}, {2, 2}, {1, 2}, {2, 2}, {0, 0, 1, 1}, 0, 0, NULL},
        {2, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {0}, 0, 0, "SAME_UPPER"},
        {1, {9}, {3}, {2}, {1}, {1, 1}, 1, 0, NULL},
        {3, {3, 4, 4}, {2, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0}, 0, 0, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_pool("MaxPool", &cases[c], 500 + c);
}

Test(grad, averagepool)
{
    static const pool_case cases[] = {
        {2, {4, 6}, {2, 2}, {2, 2}, {1, 1}, {0}, 0, 0, NULL},
        {2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0, NULL},
        {2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 1, NULL},
        {2, {5, 6}, {2, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0}, 1, 0, NULL},
        {2, {5, 6}, {2, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0}, 1, 1, NULL},
        {2, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {0}, 0, 0, "SAME_UPPER"},
        {2, {5, 5}, {2, 2}, {2, 2}, {1, 1}, {0}, 0, 1, "SAME_LOWER"},
        {1, {9}, {3}, {2}, {1}, {2, 1}, 0, 1, NULL},
        {3, {3, 4, 4}, {2, 2, 3}, {1, 2, 2}, {1, 1, 1}, {1, 0, 1, 0, 1, 1},
         0, 1, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_pool("AveragePool", &cases[c], 600 + c);
}

Test(grad, globalaveragepool)
{
    static const int64_t shapes[][5] = {{2, 3, 4, 5, 0}, {2, 3, 7, 0, 0},
                                        {1, 2, 2, 3, 2}};
    static const int ranks[] = {4, 3, 5};
    for (int c = 0; c < 3; c++) {
        gmodel g = begin(13, 700 + (uint64_t)c);
        input(&g, ranks[c], shapes[c], AWAY0);
        node_all(&g, "GlobalAveragePool");
        check(&g, "GlobalAveragePool");
    }
}

/* --- shape operators ------------------------------------------------------ */

Test(grad, flatten_reshape_identity_dropout)
{
    for (int axis = -1; axis <= 3; axis++) {
        gmodel g = begin(13, 800 + (uint64_t)(axis + 1));
        input(&g, 3, (int64_t[]){2, 3, 4}, AWAY0);
        node_all(&g, "Flatten");
        sm_onnx_writer_attr_int(g.w, "axis", axis);
        check(&g, "Flatten");
    }
    gmodel g = begin(13, 810);
    input(&g, 3, (int64_t[]){2, 3, 4}, AWAY0);
    init_i64(&g, "shape", 2, (int64_t[]){4, -1});
    node(&g, "Reshape", (const char *[]){"x0", "shape"}, 2, "y");
    check(&g, "Reshape");

    g = begin(4, 811);
    input(&g, 2, (int64_t[]){6, 4}, AWAY0);
    node_all(&g, "Reshape");
    sm_onnx_writer_attr_ints(g.w, "shape", (int64_t[]){0, 2, 2}, 3);
    check(&g, "Reshape opset 4");

    g = begin(13, 812);
    input(&g, 2, (int64_t[]){3, 5}, AWAY0);
    node_all(&g, "Identity");
    check(&g, "Identity");

    /* Dropout with its ratio a graph input: a zero gradient (inference). */
    g = begin(13, 813);
    input(&g, 2, (int64_t[]){3, 5}, AWAY0);
    input(&g, 0, NULL, POS)->data[0] = 0.3f;
    node_all(&g, "Dropout");
    check(&g, "Dropout");
    g = begin(10, 814);
    input(&g, 2, (int64_t[]){3, 5}, AWAY0);
    node_all(&g, "Dropout");
    check(&g, "Dropout opset 10");
}

Test(grad, transpose)
{
    static const int64_t perms[][4] = {{0, 2, 3, 1}, {3, 2, 1, 0}, {1, 0, 2, 3},
                                       {0, 1, 3, 2}, {0, 1, 2, 3}};
    for (int c = 0; c <= 5; c++) {
        gmodel g = begin(13, 900 + (uint64_t)c);
        input(&g, 4, (int64_t[]){2, 3, 1, 4}, AWAY0);
        node_all(&g, "Transpose");
        if (c < 5) /* 5: the default, reversed */
            sm_onnx_writer_attr_ints(g.w, "perm", perms[c], 4);
        check(&g, "Transpose");
    }
}

Test(grad, concat)
{
    for (int64_t axis = -3; axis < 3; axis++) {
        int ax = (int)(axis < 0 ? axis + 3 : axis);
        gmodel g = begin(13, 1000 + (uint64_t)(axis + 3));
        for (int i = 0; i < 3; i++) {
            int64_t shape[3] = {2, 3, 2};
            shape[ax] = i + 1;
            input(&g, 3, shape, AWAY0);
        }
        node_all(&g, "Concat");
        sm_onnx_writer_attr_int(g.w, "axis", axis);
        check(&g, "Concat");
    }
    /* The same value twice: both shares add up. */
    gmodel g = begin(13, 1010);
    input(&g, 2, (int64_t[]){2, 3}, AWAY0);
    node(&g, "Concat", (const char *[]){"x0", "x0"}, 2, "y");
    sm_onnx_writer_attr_int(g.w, "axis", 1);
    check(&g, "Concat x x");
}

/* --- Pad --------------------------------------------------------------------- */

Test(grad, pad_modes)
{
    static const struct {
        const char *mode;
        int64_t pads[6];
    } cases[] = {
        {"constant", {1, 0, 2, 2, 1, 0}},
        {"constant", {0, 1, -1, 1, -1, 2}},   /* crops */
        {"constant", {-1, 0, 0, 0, -1, -1}},  /* crops only */
        {"reflect", {1, 2, 3, 0, 2, 3}},
        {"reflect", {0, 0, 1, 0, 0, 3}},
        {"edge", {1, 2, 3, 2, 3, 1}},
        {"edge", {0, 0, 4, 0, 0, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int form = 0; form < 2; form++) {
            char what[96];
            snprintf(what, sizeof what, "Pad %s case %zu %s", cases[c].mode,
                     c, form ? "opset 11, constant_value input" : "opset 2");
            gmodel g = begin(form ? 13 : 2, 1100 + c * 2 + (uint64_t)form);
            input(&g, 3, (int64_t[]){2, 3, 4}, AWAY0);
            if (form) {
                input(&g, 0, NULL, POS);
                init_i64(&g, "pads", 6, cases[c].pads);
                node(&g, "Pad", (const char *[]){"x0", "pads", "x1"}, 3, "y");
            } else {
                node_all(&g, "Pad");
                sm_onnx_writer_attr_ints(g.w, "pads", cases[c].pads, 6);
                sm_onnx_writer_attr_float(g.w, "value", 0.5f);
            }
            sm_onnx_writer_attr_string(g.w, "mode", cases[c].mode);
            check(&g, what);
        }
}

/* --- BatchNormalization: all five inputs ------------------------------------ */

Test(grad, batchnorm_all_inputs)
{
    static const int64_t shapes[][4] = {{2, 3, 2, 3}, {4, 3, 0, 0},
                                        {2, 3, 5, 0}};
    static const int ranks[] = {4, 2, 3};
    for (int c = 0; c < 3; c++) {
        gmodel g = begin(13, 1200 + (uint64_t)c);
        input(&g, ranks[c], shapes[c], AWAY0);
        input(&g, 1, (int64_t[]){3}, WIDE);  /* scale */
        input(&g, 1, (int64_t[]){3}, AWAY0); /* B */
        input(&g, 1, (int64_t[]){3}, AWAY0); /* mean */
        input(&g, 1, (int64_t[]){3}, POS);   /* var */
        node_all(&g, "BatchNormalization");
        sm_onnx_writer_attr_float(g.w, "epsilon", 1e-3f);
        check(&g, "BatchNormalization");
    }
}

/* --- conventions at kinks, where finite differences say nothing --------- */

/* The engine's gradient of sum(y) with respect to input 0 (ones seed). */
static void gradient_ones(gmodel *g, double *out, int64_t n)
{
    grads r;
    compute(g, &r, 1);
    cr_assert_eq(r.numel[0], n);
    memcpy(out, r.g[0], (size_t)n * sizeof(double));
    grads_free(&r);
}

static void assert_exact(const double *got, const double *want, int64_t n,
                         const char *what)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) < 1e-6, "%s: element %lld: %g, "
                  "want %g", what, (long long)i, got[i], want[i]);
}

/* PyTorch's conventions: ReLU'(0) = 0, LeakyReLU'(0) = alpha, clamp passes
 * the gradient at the bounds themselves, MaxPool gives a tie to the first
 * maximum of the window in row-major order. */
Test(grad, conventions_at_kinks)
{
    double got[8];
    gmodel g = begin(13, 1);
    input(&g, 1, (int64_t[]){3}, AWAY0);
    memcpy(g.x[0]->data, (float[]){-1, 0, 1}, 3 * sizeof(float));
    node_all(&g, "Relu");
    gradient_ones(&g, got, 3);
    assert_exact(got, (double[]){0, 0, 1}, 3, "Relu at 0");

    g = begin(13, 1);
    input(&g, 1, (int64_t[]){3}, AWAY0);
    memcpy(g.x[0]->data, (float[]){-1, 0, 1}, 3 * sizeof(float));
    node_all(&g, "LeakyRelu");
    sm_onnx_writer_attr_float(g.w, "alpha", 0.25f);
    gradient_ones(&g, got, 3);
    assert_exact(got, (double[]){0.25, 0.25, 1}, 3, "LeakyRelu at 0");

    g = begin(6, 1);
    input(&g, 1, (int64_t[]){5}, AWAY0);
    memcpy(g.x[0]->data, (float[]){-1, -0.5f, 0, 0.5f, 1}, 5 * sizeof(float));
    node_all(&g, "Clip");
    sm_onnx_writer_attr_float(g.w, "min", -0.5f);
    sm_onnx_writer_attr_float(g.w, "max", 0.5f);
    gradient_ones(&g, got, 5);
    assert_exact(got, (double[]){0, 1, 1, 1, 0}, 5, "Clip at its bounds");

    /* Windows [1 1; 1 1] and [2 3; 3 2]: the first of equal maxima. */
    g = begin(13, 1);
    input(&g, 4, (int64_t[]){1, 1, 2, 4}, AWAY0);
    memcpy(g.x[0]->data, (float[]){1, 1, 2, 3, 1, 1, 3, 2}, 8 * sizeof(float));
    node_all(&g, "MaxPool");
    sm_onnx_writer_attr_ints(g.w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_ints(g.w, "strides", (int64_t[]){2, 2}, 2);
    gradient_ones(&g, got, 8);
    assert_exact(got, (double[]){1, 0, 0, 1, 0, 0, 0, 0}, 8,
                 "MaxPool ties");

    /* ResNet's 3x3/2 with padding 1 (its own backward path), overlapping
     * windows: equal maxima in one row, and in rows after the first */
    g = begin(13, 1);
    input(&g, 4, (int64_t[]){1, 1, 4, 4}, AWAY0);
    memcpy(g.x[0]->data,
           (float[]){5, 5, 1, 5, 5, 2, 5, 1, 1, 5, 5, 5, 0, 0, 0, 9},
           16 * sizeof(float));
    node_all(&g, "MaxPool");
    sm_onnx_writer_attr_ints(g.w, "kernel_shape", (int64_t[]){3, 3}, 2);
    sm_onnx_writer_attr_ints(g.w, "strides", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_ints(g.w, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    double got16[16];
    gradient_ones(&g, got16, 16);
    assert_exact(got16,
                 (double[]){1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                 16, "MaxPool 3x3/2 ties");
}

/* --- small graphs: gradients meeting, constants -------------------------- */

/* x feeds three readers (one twice) whose gradients add up in the engine. */
Test(grad, fan_out_adds_up)
{
    gmodel g = begin(13, 1300);
    input(&g, 3, (int64_t[]){2, 3, 4}, AWAY0);
    input(&g, 1, (int64_t[]){4}, WIDE);
    node(&g, "Mul", (const char *[]){"x0", "x0"}, 2, "sq");
    node(&g, "Sigmoid", (const char *[]){"x0"}, 1, "s");
    node(&g, "Div", (const char *[]){"s", "x1"}, 2, "d");
    node(&g, "Sub", (const char *[]){"sq", "d"}, 2, "t");
    node(&g, "Relu", (const char *[]){"x0"}, 1, "r");
    node(&g, "Add", (const char *[]){"t", "r"}, 2, "y");
    check(&g, "fan-out");
}

/* Constant contributes a value and no gradient; the path through the
 * constant-folded side is skipped. */
Test(grad, constant_operand)
{
    gmodel g = begin(13, 1400);
    input(&g, 2, (int64_t[]){3, 4}, AWAY0);
    sm_tensor *c = sm_tensor_new(1, (int64_t[]){4});
    for (int i = 0; i < 4; i++)
        c->data[i] = 0.5f + (float)i;
    cr_assert_eq(sm_onnx_writer_node(g.w, "Constant", "c", NULL, 0,
                                     (const char *[]){"c"}, 1), 0);
    sm_onnx_writer_attr_tensor(g.w, "value", c);
    sm_tensor_destroy(&c);
    node(&g, "Mul", (const char *[]){"x0", "c"}, 2, "m");
    node(&g, "Tanh", (const char *[]){"m"}, 1, "y");
    check(&g, "Constant");
}

/* A small convolution-free classifier head: Pad, MaxPool, BN, GAP, Flatten,
 * Softmax, all weights graph inputs. */
Test(grad, small_network)
{
    gmodel g = begin(13, 1500);
    input(&g, 4, (int64_t[]){2, 2, 5, 5}, DISTINCT);
    input(&g, 1, (int64_t[]){2}, WIDE);
    input(&g, 1, (int64_t[]){2}, AWAY0);
    input(&g, 1, (int64_t[]){2}, AWAY0);
    input(&g, 1, (int64_t[]){2}, POS);
    init_i64(&g, "pads", 8, (int64_t[]){0, 0, 1, 0, 0, 0, 0, 1});
    node(&g, "Pad", (const char *[]){"x0", "pads"}, 2, "p");
    sm_onnx_writer_attr_string(g.w, "mode", "edge");
    node(&g, "MaxPool", (const char *[]){"p"}, 1, "mp");
    sm_onnx_writer_attr_ints(g.w, "kernel_shape", (int64_t[]){2, 2}, 2);
    node(&g, "BatchNormalization",
         (const char *[]){"mp", "x1", "x2", "x3", "x4"}, 5, "bn");
    node(&g, "LeakyRelu", (const char *[]){"bn"}, 1, "lr");
    node(&g, "GlobalAveragePool", (const char *[]){"lr"}, 1, "gap");
    node(&g, "Flatten", (const char *[]){"gap"}, 1, "f");
    node(&g, "LogSoftmax", (const char *[]){"f"}, 1, "y");
    check(&g, "small network");
}
