/* MaxPool, AveragePool (1 to 3 spatial dims) and GlobalAveragePool.
 *
 * Both windowed pools run one loop nest over three spatial dims: an input
 * with fewer is treated as having leading spatial dims of size 1. A window
 * is clipped to the input; the padding never enters a maximum (a window of
 * padding only gives -FLT_MAX, as onnxruntime), and enters an average only
 * as zeros counted by count_include_pad. Along the last dim, outputs whose
 * windows lie inside the input take a fast row-wise path; the few at the
 * borders take the general one. The window geometry is Conv's
 * (ops/conv_geom.h). */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ops/conv_geom.h"
#include "ops/op.h"
#include "ops/op_util.h"

typedef struct pool_params {
    sm_conv_geom g;
    int max;               /* MaxPool, else AveragePool */
    int count_include_pad; /* AveragePool */
} pool_params;

static const char *const maxpool_attrs[] = {
    "kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations",
    "storage_order", NULL};
static const char *const avgpool_attrs[] = {
    "kernel_shape", "strides", "pads", "auto_pad", "ceil_mode",
    "count_include_pad", NULL};

static int window_parse(pool_params *p, const sm_attrs *a, sm_err *err)
{
    if (!sm_attrs_has(a, "kernel_shape"))
        return sm_err_set(err, "attribute 'kernel_shape' is required");
    return sm_conv_geom_parse(&p->g, a, p->max, err);
}

static int maxpool_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    pool_params *p = p_;
    int64_t so;
    p->max = 1;
    if (sm_attrs_int(a, "storage_order", 0, &so, err))
        return -1;
    /* storage_order only changes the Indices output, which is refused, but
     * a column-major request says the model expects something salmap does
     * not do: refuse it rather than ignore it. */
    if (so != 0)
        return sm_err_set(err, "attribute 'storage_order' is %lld: only 0 "
                          "(row major) is supported", (long long)so);
    return window_parse(p, a, err);
}

static int avgpool_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    pool_params *p = p_;
    int64_t cip;
    if (sm_attrs_int(a, "count_include_pad", 0, &cip, err))
        return -1;
    if (cip != 0 && cip != 1)
        return sm_err_set(err, "attribute 'count_include_pad' is %lld (must "
                          "be 0 or 1)", (long long)cip);
    p->count_include_pad = (int)cip;
    return window_parse(p, a, err);
}

/* The window's geometry over three spatial dims, leading ones of size 1. */
typedef struct geom3 {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} geom3;

/* Resolves the window over x's spatial dims. With ceil_mode, a last window
 * that would start in the end padding is dropped (PyTorch's rule, which
 * later ONNX versions adopted): it would see padding only. */
static int plan3(const pool_params *p, const sm_tensor *x, geom3 *g,
                 sm_err *err)
{
    const sm_conv_geom *cg = &p->g;
    int n = x->ndim - 2, lead = 3 - n;
    int64_t pb[SM_GEOM_MAX], out[SM_GEOM_MAX];
    if (sm_conv_geom_resolve(cg, n, x->shape + 2, cg->kernel, pb, out, err))
        return -1;
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        g->in[i] = j < 0 ? 1 : x->shape[2 + j];
        g->k[i] = j < 0 ? 1 : cg->kernel[j];
        g->s[i] = j < 0 ? 1 : cg->strides[j];
        g->d[i] = j < 0 ? 1 : cg->dilations[j];
        g->pb[i] = j < 0 ? 0 : pb[j];
        g->out[i] = j < 0 ? 1 : out[j];
        if (j >= 0 && cg->ceil_mode && cg->auto_pad == SM_PAD_NOTSET &&
            g->out[i] > 1 && (g->out[i] - 1) * g->s[i] >= g->in[i] + g->pb[i])
            g->out[i]--;
        /* The end padding: what the last window needs beyond the input, as
         * resolved (explicit pads, or the SAME split). */
        int64_t ke = (g->k[i] - 1) * g->d[i] + 1;
        int64_t need = (g->out[i] - 1) * g->s[i] + ke - g->in[i] - g->pb[i];
        if (j < 0)
            g->pe[i] = 0;
        else if (cg->auto_pad == SM_PAD_NOTSET)
            g->pe[i] = cg->n_pads ? cg->pads[n + j] : 0;
        else
            g->pe[i] = need > 0 ? need : 0;
    }
    return 0;
}

static int pool_infer(const void *p_, const sm_tensor *const *in, int n_in,
                      sm_tensor *const *out, int n_out, sm_err *err)
{
    const pool_params *p = p_;
    const char *op = p->max ? "MaxPool" : "AveragePool";
    const sm_tensor *x = in[0];
    int64_t shape[SM_MAX_DIMS];
    geom3 g;
    (void)n_in;
    if (n_out > 1 && out[1])
        return sm_err_set(err, "MaxPool's second output (Indices, int64) is "
                          "not supported");
    if (sm_op_need_float(x, "X", op, err))
        return -1;
    if (x->ndim != p->g.n_kernel + 2)
        return sm_op_shape_err(err, "X", x, "%s with a %d-D kernel_shape "
                               "needs rank %d", op, p->g.n_kernel,
                               p->g.n_kernel + 2);
    /* Checks strides/pads/dilations against the rank, then the sizes. */
    if (sm_conv_geom_infer(&p->g, x, NULL, shape, err) || plan3(p, x, &g, err))
        return -1;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    for (int i = 0; i < p->g.n_kernel; i++)
        shape[2 + i] = g.out[3 - p->g.n_kernel + i];
    if (sm_op_check_out_shape(x->ndim, shape, op, err))
        return -1;
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

/* Window along one dim for output position o: the kernel taps [*ka, *kb)
 * that fall inside the input, and the window's first input index. */
static int64_t taps(const geom3 *g, int i, int64_t o, int64_t *ka, int64_t *kb)
{
    int64_t start = o * g->s[i] - g->pb[i], d = g->d[i];
    int64_t last = g->in[i] - 1 - start; /* furthest offset still inside */
    if (d == 1) { /* no divisions in the common case: they dominated */
        *ka = start < 0 ? -start : 0;
        *kb = last < 0 ? 0 : last + 1;
    } else {
        *ka = start < 0 ? (-start + d - 1) / d : 0;
        *kb = last < 0 ? 0 : last / d + 1;
    }
    if (*kb > g->k[i])
        *kb = g->k[i];
    if (*kb < *ka)
        *kb = *ka;
    return start;
}

/* Taps of an average window counted when padding counts: the window up to
 * the end of the end padding (ceil_mode windows may hang past it). */
static int64_t padded_taps(const geom3 *g, int i, int64_t start)
{
    int64_t end = start + g->k[i]; /* AveragePool has no dilations */
    if (end > g->in[i] + g->pe[i])
        end = g->in[i] + g->pe[i];
    return end - start;
}

/* One output along the last dim, the window clipped to the input: the
 * general case, used at the borders. */
static float pool_one(const pool_params *p, const geom3 *g, const float *xp,
                      int64_t a0, int64_t b0, int64_t s0, int64_t a1,
                      int64_t b1, int64_t s1, int64_t o2)
{
    int64_t a2, b2, s2 = taps(g, 2, o2, &a2, &b2);
    float acc = p->max ? -FLT_MAX : 0.0f;
    for (int64_t k0 = a0; k0 < b0; k0++)
        for (int64_t k1 = a1; k1 < b1; k1++) {
            const float *r = xp + ((s0 + k0 * g->d[0]) * g->in[1] +
                                   s1 + k1 * g->d[1]) * g->in[2] + s2;
            for (int64_t k2 = a2; k2 < b2; k2++) {
                float v = r[k2 * g->d[2]];
                acc = p->max ? (v > acc ? v : acc) : acc + v;
            }
        }
    if (p->max)
        return acc;
    int64_t cnt = p->count_include_pad
                      ? padded_taps(g, 0, s0) * padded_taps(g, 1, s1) *
                            padded_taps(g, 2, s2)
                      : (b0 - a0) * (b1 - a1) * (b2 - a2);
    return cnt > 0 ? acc / (float)cnt : 0.0f;
}

/* Outputs [lo, hi) along the last dim, whose windows lie inside the input
 * along it: one window row at a time across all of them, so the loops are
 * long and branch-free (per-output loops over 2 or 3 taps were 3x
 * slower). y is the output row. */
static void pool_interior(const pool_params *p, const geom3 *g,
                          const float *xp, int64_t a0, int64_t b0, int64_t s0,
                          int64_t a1, int64_t b1, int64_t s1, int64_t lo,
                          int64_t hi, float *restrict y)
{
    const int64_t st = g->s[2];
    for (int64_t o = lo; o < hi; o++)
        y[o] = p->max ? -FLT_MAX : 0.0f;
    for (int64_t k0 = a0; k0 < b0; k0++)
        for (int64_t k1 = a1; k1 < b1; k1++) {
            const float *r = xp + ((s0 + k0 * g->d[0]) * g->in[1] + s1 +
                                   k1 * g->d[1]) * g->in[2] - g->pb[2];
            for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                const float *restrict src = r + k2 * g->d[2];
                if (p->max) {
                    for (int64_t o = lo; o < hi; o++) {
                        float v = src[o * st];
                        y[o] = v > y[o] ? v : y[o];
                    }
                } else {
                    for (int64_t o = lo; o < hi; o++)
                        y[o] += src[o * st];
                }
            }
        }
    if (p->max)
        return;
    /* Along the last dim the window is whole, so padding adds nothing. */
    int64_t cnt = p->count_include_pad
                      ? padded_taps(g, 0, s0) * padded_taps(g, 1, s1) * g->k[2]
                      : (b0 - a0) * (b1 - a1) * g->k[2];
    const float r = cnt > 0 ? 1.0f / (float)cnt : 0.0f;
    for (int64_t o = lo; o < hi; o++)
        y[o] *= r;
}

/* MaxPool 2x2, stride 2, no padding or dilation (LeNet's, VGG's): two
 * input rows per output row, no window bookkeeping. */
static int is_max2x2(const pool_params *p, const geom3 *g)
{
    return p->max && g->in[0] == 1 && g->k[1] == 2 && g->k[2] == 2 &&
           g->s[1] == 2 && g->s[2] == 2 && g->d[1] == 1 && g->d[2] == 1 &&
           g->pb[1] == 0 && g->pb[2] == 0 && 2 * g->out[1] <= g->in[1] &&
           2 * g->out[2] <= g->in[2];
}

/* a > b ? a : b lane by lane, as the scalar loop selects (NaN and -0
 * included: the second operand wins unless the first is greater). */
static inline sm_v4 max_v4(sm_v4 a, sm_v4 b)
{
    sm_v4i m = a > b;
    return (sm_v4)(((sm_v4i)a & m) | ((sm_v4i)b & ~m));
}

/* The larger of the two columns of each pair in 8 floats of a row. */
static inline sm_v4 pairs_v4(const float *r)
{
    sm_v4 lo = sm_v4_load(r), hi = sm_v4_load(r + 4);
    return max_v4(__builtin_shufflevector(lo, hi, 0, 2, 4, 6),
                  __builtin_shufflevector(lo, hi, 1, 3, 5, 7));
}

/* Four outputs a step (SSE2, which every x86-64 has; the selects are
 * exact, so it computes the scalar loop's bits), then the row's tail. */
static void max2x2(const geom3 *g, int64_t planes, const float *x, float *y)
{
    const int64_t w = g->in[2], ow = g->out[2], oh = g->out[1];
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + c * g->in[1] * w;
        for (int64_t oy = 0; oy < oh; oy++, y += ow) {
            const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 v = max_v4(pairs_v4(r0 + 2 * o), pairs_v4(r1 + 2 * o));
                memcpy(y + o, &v, sizeof v);
            }
            for (; o < ow; o++) {
                float a = r0[2 * o] > r0[2 * o + 1] ? r0[2 * o] : r0[2 * o + 1];
                float b = r1[2 * o] > r1[2 * o + 1] ? r1[2 * o] : r1[2 * o + 1];
                y[o] = a > b ? a : b;
            }
        }
    }
}

/* The padded row's length: the last window's end, and 8 floats more for
 * the stride-2 loads of both halves of a vector. */
static int64_t sep_row_len(const geom3 *g)
{
    int64_t need = (g->out[2] - 1) * g->s[2] + (g->k[2] - 1) * g->d[2] + 1;
    return (need > g->pb[2] + g->in[2] ? need : g->pb[2] + g->in[2]) + 8;
}

/* Whether MaxPool on x runs the separable passes (max_separable and its
 * backward): over 1 or 2 spatial dims; g its geometry then. */
static int separable(const pool_params *p, const sm_tensor *x, geom3 *g)
{
    return p->max && !plan3(p, x, g, NULL) && g->in[0] == 1;
}

static size_t pool_workspace(const void *p_, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out)
{
    geom3 g;
    (void)n_in, (void)out, (void)n_out;
    return separable(p_, in[0], &g)
               ? (size_t)(g.in[1] * g.out[2] + sep_row_len(&g)) : 0;
}

/* h[o] = the running maximum of row[o s + j d], j = 0 .. k - 1. */
static void max_taps(float *restrict h, const float *restrict row, int64_t n,
                     int64_t k, int64_t d, int64_t s)
{
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    int64_t o = 0;
    if (s <= 2)
        for (; o + 4 <= n; o += 4) {
            sm_v4 acc = lowest;
            for (int64_t j = 0; j < k; j++) {
                const float *src = row + o * s + j * d;
                sm_v4 v = s == 1 ? sm_v4_load(src)
                                   : __builtin_shufflevector(
                                         sm_v4_load(src), sm_v4_load(src + 4), 0, 2,
                                         4, 6);
                acc = max_v4(v, acc);
            }
            memcpy(h + o, &acc, sizeof acc);
        }
    for (; o < n; o++) {
        float acc = -FLT_MAX;
        for (int64_t j = 0; j < k; j++) {
            float v = row[o * s + j * d];
            acc = v > acc ? v : acc;
        }
        h[o] = acc;
    }
}

/* MaxPool over 1 or 2 spatial dims, any window, as two passes: each input
 * row's maximum over the window's columns (a row padded with -FLT_MAX,
 * which never wins: the running maximum starts there), then each output
 * row's maximum over its window's rows of those. A running maximum
 * `v > acc ? v : acc` keeps the first tap that reaches the window's
 * maximum in row-major order, and so does the maximum of rows' first
 * ones: the very bits of the one-pass loop (NaN never enters, of two
 * zeros the first stays). Four outputs a step for strides 1 and 2. */
static void max_separable(const geom3 *g, int64_t planes, const float *x,
                          float *y, float *ws)
{
    const int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    const int64_t len = sep_row_len(g), pl = g->pb[2];
    float *hrows = ws, *row = ws + ih * ow;
    for (int64_t e = 0; e < len; e++)
        row[e] = -FLT_MAX;
    for (int64_t c = 0; c < planes; c++, x += ih * iw) {
        for (int64_t r = 0; r < ih; r++) {
            memcpy(row + pl, x + r * iw, sizeof(float) * (size_t)iw);
            max_taps(hrows + r * ow, row, ow, g->k[2], g->d[2], g->s[2]);
        }
        for (int64_t o1 = 0; o1 < oh; o1++, y += ow) {
            int64_t a1, b1, s1 = taps(g, 1, o1, &a1, &b1);
            /* the window's rows inside the input (none: -FLT_MAX) */
            const int64_t step = g->d[1] * ow, nr = b1 - a1;
            const float *h0 = nr ? hrows + (s1 + a1 * g->d[1]) * ow : hrows;
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 acc = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
                for (int64_t r = 0; r < nr; r++)
                    acc = max_v4(sm_v4_load(h0 + r * step + o), acc);
                memcpy(y + o, &acc, sizeof acc);
            }
            for (; o < ow; o++) {
                float acc = -FLT_MAX;
                for (int64_t r = 0; r < nr; r++) {
                    float v = h0[r * step + o];
                    acc = v > acc ? v : acc;
                }
                y[o] = acc;
            }
        }
    }
}

static void pool_run(const void *p_, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, float *ws)
{
    const pool_params *p = p_;
    const sm_tensor *x = in[0];
    geom3 g;
    (void)n_in;
    (void)n_out;
    plan3(p, x, &g, NULL); /* cannot fail: infer accepted this shape */
    int64_t planes = x->shape[0] * x->shape[1];
    if (is_max2x2(p, &g)) {
        max2x2(&g, planes, x->data, out[0]->data);
        return;
    }
    if (p->max && g.in[0] == 1) {
        max_separable(&g, planes, x->data, out[0]->data, ws);
        return;
    }
    int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
    int64_t out_plane = g.out[0] * g.out[1] * g.out[2];
    /* Outputs [lo, hi) along the last dim have windows inside the input:
     * start = o * s - pb >= 0 and start + (k - 1) * d <= in - 1. */
    int64_t ext = (g.k[2] - 1) * g.d[2], s = g.s[2];
    int64_t lo = (g.pb[2] + s - 1) / s;
    int64_t hi = g.in[2] - 1 - ext + g.pb[2] < 0
                     ? 0 : (g.in[2] - 1 - ext + g.pb[2]) / s + 1;
    if (hi > g.out[2])
        hi = g.out[2];
    if (lo > hi)
        lo = hi;
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x->data + c * in_plane;
        float *y = out[0]->data + c * out_plane;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++) {
            int64_t a0, b0, s0 = taps(&g, 0, o0, &a0, &b0);
            for (int64_t o1 = 0; o1 < g.out[1]; o1++, y += g.out[2]) {
                int64_t a1, b1, s1 = taps(&g, 1, o1, &a1, &b1);
                for (int64_t o2 = 0; o2 < lo; o2++)
                    y[o2] = pool_one(p, &g, xp, a0, b0, s0, a1, b1, s1, o2);
                pool_interior(p, &g, xp, a0, b0, s0, a1, b1, s1, lo, hi, y);
                for (int64_t o2 = hi; o2 < g.out[2]; o2++)
                    y[o2] = pool_one(p, &g, xp, a0, b0, s0, a1, b1, s1, o2);
            }
        }
    }
}

/* --- backward ------------------------------------------------------------
 * Every output's window again, through the general path (the forward's
 * fast paths compute the same windows). MaxPool: the gradient goes to the
 * window's first maximum in row-major window order (strict >, as the
 * forward and PyTorch): on ties, one element gets it all; a window of
 * padding only (output -FLT_MAX) passes nothing. AveragePool: each input
 * in the window gets g / count, count as in the forward. */
/* Lanes of m from x, the others from y: bits moved, not computed. */
static inline sm_v4 sel_v4(sm_v4i m, sm_v4 x, sm_v4 y)
{
    return (sm_v4)(((sm_v4i)x & m) | ((sm_v4i)y & ~m));
}

/* Adds g to the lanes of 8 floats at p whose pair member (even lanes:
 * we, odd: wo) is set; the other floats keep their bits (-0 stays -0).
 * fresh: p holds garbage, taken as zeros. */
static inline void add_pairs_v4(float *p, sm_v4i we, sm_v4i wo, sm_v4 g,
                                int fresh)
{
    sm_v4 lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
    if (!fresh) {
        memcpy(&lo, p, sizeof lo);
        memcpy(&hi, p + 4, sizeof hi);
    }
    sm_v4 ev = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    sm_v4 od = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
    ev = sel_v4(we, ev + g, ev);
    od = sel_v4(wo, od + g, od);
    lo = __builtin_shufflevector(ev, od, 0, 4, 1, 5);
    hi = __builtin_shufflevector(ev, od, 2, 6, 3, 7);
    memcpy(p, &lo, sizeof lo);
    memcpy(p + 4, &hi, sizeof hi);
}

/* The backward of max2x2: each output's gradient to the first maximum of
 * its window in row-major order, as the general loop below decides (the
 * first tap greater than -FLT_MAX, then each later one greater than the
 * best so far; none: no gradient). Four outputs a step with the same
 * comparisons as masks, then the row's tail. fresh: gx holds garbage:
 * the vectors write their 8 floats of each row whole (zeros added to),
 * the tail zeroes its windows before adding, and the columns and rows no
 * window reaches are zeroed. */
static void max2x2_backward(const geom3 *g, int64_t planes, const float *x,
                            const float *gy, float *gx, int fresh)
{
    const int64_t w = g->in[2], ow = g->out[2], oh = g->out[1];
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + c * g->in[1] * w;
        float *gp = gx + c * g->in[1] * w;
        if (fresh && 2 * oh < g->in[1])
            memset(gp + 2 * oh * w, 0,
                   sizeof(float) * (size_t)((g->in[1] - 2 * oh) * w));
        for (int64_t oy = 0; oy < oh; oy++, gy += ow) {
            const int64_t r0 = 2 * oy * w, r1 = r0 + w;
            if (fresh) /* the columns past the last window (w odd) */
                for (int64_t j = 2 * ow; j < w; j++)
                    gp[r0 + j] = gp[r1 + j] = 0.0f;
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 lo, hi, gv;
                memcpy(&lo, xp + r0 + 2 * o, sizeof lo);
                memcpy(&hi, xp + r0 + 2 * o + 4, sizeof hi);
                sm_v4 a = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
                sm_v4 b = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
                memcpy(&lo, xp + r1 + 2 * o, sizeof lo);
                memcpy(&hi, xp + r1 + 2 * o + 4, sizeof hi);
                sm_v4 cc = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
                sm_v4 d = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
                sm_v4i m0 = a > lowest;
                sm_v4 best = sel_v4(m0, a, lowest);
                sm_v4i m1 = b > best;
                best = sel_v4(m1, b, best);
                sm_v4i m2 = cc > best;
                best = sel_v4(m2, cc, best);
                sm_v4i m3 = d > best;
                /* the last tap that beat the best so far wins */
                sm_v4i w3 = m3, w2 = m2 & ~m3, w1 = m1 & ~(m2 | m3),
                        w0 = m0 & ~(m1 | m2 | m3);
                memcpy(&gv, gy + o, sizeof gv);
                add_pairs_v4(gp + r0 + 2 * o, w0, w1, gv, fresh);
                add_pairs_v4(gp + r1 + 2 * o, w2, w3, gv, fresh);
            }
            for (; o < ow; o++) {
                const int64_t cand[4] = {r0 + 2 * o, r0 + 2 * o + 1,
                                         r1 + 2 * o, r1 + 2 * o + 1};
                float best = -FLT_MAX;
                int64_t arg = -1;
                for (int k = 0; k < 4; k++) {
                    if (fresh)
                        gp[cand[k]] = 0.0f;
                    if (xp[cand[k]] > best) {
                        best = xp[cand[k]];
                        arg = cand[k];
                    }
                }
                if (arg >= 0)
                    gp[arg] += gy[o];
            }
        }
    }
}

static size_t pool_bwd_workspace(const void *p_, const sm_tensor *const *in,
                                 int n_in, const sm_tensor *const *out,
                                 int n_out)
{
    geom3 g;
    (void)n_in, (void)out, (void)n_out;
    /* max_separable_backward's: each input row's maxima over the windows'
     * columns and their columns (an int32 a float), and the padded row */
    return separable(p_, in[0], &g)
               ? (size_t)(2 * g.in[1] * g.out[2] + sep_row_len(&g)) : 0;
}

/* The lanes of m from x, the others from y (ints). */
static inline sm_v4i sel_v4i(sm_v4i m, sm_v4i x, sm_v4i y)
{
    return (x & m) | (y & ~m);
}

/* hv[o], hc[o]: the first maximum of row[o s + j d], j < k, and its
 * index in the row less pl (-1 when none is above -FLT_MAX: the row is
 * padded with -FLT_MAX, which never wins), for o < n; four outputs a
 * step for strides 1 and 2, as max_taps. */
static void max_taps_arg(float *restrict hv, int32_t *restrict hc,
                         const float *restrict row, int64_t n, int64_t k,
                         int64_t d, int64_t s, int64_t pl)
{
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    const sm_v4i none = {-1, -1, -1, -1}, lane = {0, 1, 2, 3};
    int64_t o = 0;
    if (s <= 2)
        for (; o + 4 <= n; o += 4) {
            sm_v4 best = lowest;
            sm_v4i col = none;
            for (int64_t j = 0; j < k; j++) {
                const float *src = row + o * s + j * d;
                sm_v4 v = s == 1 ? sm_v4_load(src)
                                 : __builtin_shufflevector(sm_v4_load(src),
                                                           sm_v4_load(src + 4),
                                                           0, 2, 4, 6);
                sm_v4i m = v > best;
                best = sel_v4(m, v, best);
                col = sel_v4i(m, (int32_t)(o * s + j * d - pl) +
                                     lane * (int32_t)s, col);
            }
            memcpy(hv + o, &best, sizeof best);
            memcpy(hc + o, &col, sizeof col);
        }
    for (; o < n; o++) {
        float best = -FLT_MAX;
        int32_t col = -1;
        for (int64_t j = 0; j < k; j++) {
            const float v = row[o * s + j * d];
            col = v > best ? (int32_t)(o * s + j * d - pl) : col;
            best = v > best ? v : best;
        }
        hv[o] = best;
        hc[o] = col;
    }
}

/* The general backward loop below for MaxPool over 1 or 2 spatial dims,
 * as two passes like max_separable: each input row's first maximum over
 * each window's columns (value and column), then each output's first
 * maximum over its window's rows of those, which is the first maximum of
 * the window in row-major order (a later tap wins only when greater,
 * along a row and across rows alike; none above -FLT_MAX: no gradient).
 * Four outputs a step, with the comparisons as masks; the gradients are
 * then added output by output in the general loop's order, so the same
 * bits. Its branches and window bookkeeping had made ResNet's 3x3/2
 * MaxPool an eighth of its backward. */
static void max_separable_backward(const geom3 *g, int64_t planes,
                                   const float *x, const float *gy, float *gx,
                                   float *ws)
{
    const int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    const int64_t len = sep_row_len(g), pl = g->pb[2], d1 = g->d[1];
    float *hv = ws, *row = ws + 2 * ih * ow;
    int32_t *hc = (int32_t *)(void *)(ws + ih * ow);
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    const sm_v4i none = {-1, -1, -1, -1};
    for (int64_t e = 0; e < len; e++)
        row[e] = -FLT_MAX;
    for (int64_t c = 0; c < planes; c++, x += ih * iw, gx += ih * iw) {
        for (int64_t r = 0; r < ih; r++) {
            memcpy(row + pl, x + r * iw, sizeof(float) * (size_t)iw);
            max_taps_arg(hv + r * ow, hc + r * ow, row, ow, g->k[2], g->d[2],
                         g->s[2], pl);
        }
        for (int64_t o1 = 0; o1 < oh; o1++, gy += ow) {
            int64_t a1, b1, s1 = taps(g, 1, o1, &a1, &b1);
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 best = lowest;
                sm_v4i at = none;
                for (int64_t k = a1; k < b1; k++) {
                    const int64_t r = s1 + k * d1;
                    sm_v4 v = sm_v4_load(hv + r * ow + o);
                    sm_v4i col;
                    memcpy(&col, hc + r * ow + o, sizeof col);
                    sm_v4i m = v > best;
                    best = sel_v4(m, v, best);
                    at = sel_v4i(m, (int32_t)(r * iw) + col, at);
                }
                int32_t idx[4];
                memcpy(idx, &at, sizeof idx);
                for (int t = 0; t < 4; t++)
                    if (idx[t] >= 0)
                        gx[idx[t]] += gy[o + t];
            }
            for (; o < ow; o++) {
                float best = -FLT_MAX;
                int64_t arg = -1;
                for (int64_t k = a1; k < b1; k++) {
                    const int64_t r = s1 + k * d1;
                    const float v = hv[r * ow + o];
                    arg = v > best ? r * iw + hc[r * ow + o] : arg;
                    best = v > best ? v : best;
                }
                if (arg >= 0)
                    gx[arg] += gy[o];
            }
        }
    }
}

static void pool_backward_fresh(const void *p_, const float *packed,
                                const sm_tensor *const *in, int n_in,
                                const sm_tensor *const *out, int n_out,
                                const sm_tensor *const *gout,
                                sm_tensor *const *gin, unsigned fresh,
                                float *ws)
{
    const pool_params *p = p_;
    const sm_tensor *x = in[0];
    geom3 g;
    (void)packed;
    (void)n_in;
    (void)n_out;
    (void)out;
    if (!gout[0] || !gin[0]) /* fresh comes with gout[0] (op.h) */
        return;
    plan3(p, x, &g, NULL);
    int64_t planes = x->shape[0] * x->shape[1];
    if (is_max2x2(p, &g)) {
        max2x2_backward(&g, planes, x->data, gout[0]->data, gin[0]->data,
                        fresh & 1u);
        return;
    }
    if (fresh & 1u) /* the passes below add onto zeros */
        memset(gin[0]->data, 0, sizeof(float) * (size_t)sm_tensor_numel(x));
    if (p->max && g.in[0] == 1) {
        max_separable_backward(&g, planes, x->data, gout[0]->data,
                               gin[0]->data, ws);
        return;
    }
    int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
    const float *gy = gout[0]->data;
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x->data + c * in_plane;
        float *gxp = gin[0]->data + c * in_plane;
        for (int64_t o0 = 0; o0 < g.out[0]; o0++) {
            int64_t a0, b0, s0 = taps(&g, 0, o0, &a0, &b0);
            for (int64_t o1 = 0; o1 < g.out[1]; o1++) {
                int64_t a1, b1, s1 = taps(&g, 1, o1, &a1, &b1);
                for (int64_t o2 = 0; o2 < g.out[2]; o2++, gy++) {
                    int64_t a2, b2, s2 = taps(&g, 2, o2, &a2, &b2);
                    float best = -FLT_MAX, share = 0;
                    int64_t arg = -1;
                    if (!p->max) {
                        int64_t cnt = p->count_include_pad
                                          ? padded_taps(&g, 0, s0) *
                                                padded_taps(&g, 1, s1) *
                                                padded_taps(&g, 2, s2)
                                          : (b0 - a0) * (b1 - a1) * (b2 - a2);
                        share = cnt > 0 ? *gy / (float)cnt : 0.0f;
                    }
                    for (int64_t k0 = a0; k0 < b0; k0++)
                        for (int64_t k1 = a1; k1 < b1; k1++) {
                            int64_t r = ((s0 + k0 * g.d[0]) * g.in[1] + s1 +
                                         k1 * g.d[1]) * g.in[2] + s2;
                            for (int64_t k2 = a2; k2 < b2; k2++) {
                                int64_t i = r + k2 * g.d[2];
                                if (!p->max)
                                    gxp[i] += share;
                                else if (xp[i] > best) {
                                    best = xp[i];
                                    arg = i;
                                }
                            }
                        }
                    if (arg >= 0)
                        gxp[arg] += *gy;
                }
            }
        }
    }
}

static void pool_backward(const void *p, const sm_tensor *const *in, int n_in,
                          const sm_tensor *const *out, int n_out,
                          const sm_tensor *const *gout, sm_tensor *const *gin,
                          float *ws)
{
    pool_backward_fresh(p, NULL, in, n_in, out, n_out, gout, gin, 0, ws);
}

const sm_op_class sm_op_maxpool = {
    .name = "MaxPool",
    .params_size = sizeof(pool_params),
    .attrs = maxpool_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 2,
    .parse = maxpool_parse,
    .infer = pool_infer,
    .workspace = pool_workspace,
    .run = pool_run,
    .backward = pool_backward,
    .bwd_workspace = pool_bwd_workspace,
    .backward_fresh = pool_backward_fresh,
    .bwd_fresh_inputs = 1,
};

const sm_op_class sm_op_averagepool = {
    .name = "AveragePool",
    .params_size = sizeof(pool_params),
    .attrs = avgpool_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = avgpool_parse,
    .infer = pool_infer,
    .run = pool_run,
    .backward = pool_backward,
    .backward_fresh = pool_backward_fresh,
    .bwd_fresh_inputs = 1,
};

/* --- GlobalAveragePool --------------------------------------------------- */

static int gap_infer(const void *p, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, sm_err *err)
{
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    (void)n_out;
    if (sm_op_need_float(x, "X", "GlobalAveragePool", err))
        return -1;
    if (x->ndim < 3)
        return sm_op_shape_err(err, "X", x, "GlobalAveragePool needs rank 3 "
                               "or more (N x C x spatial dims)");
    if (x->shape[2] == 0 || sm_op_prod(x->shape, 2, x->ndim) == 0)
        return sm_op_shape_err(err, "X", x, "GlobalAveragePool needs "
                               "non-empty spatial dims");
    int64_t shape[SM_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = i < 2 ? x->shape[i] : 1;
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

static void gap_run(const void *p, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, int n_out, float *ws)
{
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    (void)n_out;
    (void)ws;
    int64_t planes = x->shape[0] * x->shape[1];
    int64_t n = sm_op_prod(x->shape, 2, x->ndim);
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x->data + c * n;
        float s = 0;
        for (int64_t i = 0; i < n; i++)
            s += xp[i];
        out[0]->data[c] = s / (float)n;
    }
}

static void gap_backward(const void *p, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out,
                         const sm_tensor *const *gout, sm_tensor *const *gin,
                         float *ws)
{
    const sm_tensor *x = in[0];
    (void)p;
    (void)n_in;
    (void)out;
    (void)n_out;
    (void)ws;
    if (!gout[0] || !gin[0])
        return;
    int64_t planes = x->shape[0] * x->shape[1];
    int64_t n = sm_op_prod(x->shape, 2, x->ndim);
    for (int64_t c = 0; c < planes; c++) {
        float *restrict gx = gin[0]->data + c * n;
        const float share = gout[0]->data[c] / (float)n;
        SM_OP_FOR(i, n, gx[i] += share);
    }
}

const sm_op_class sm_op_globalaveragepool = {
    .name = "GlobalAveragePool",
    .params_size = sizeof(int),
    .attrs = sm_op_no_attrs,
    .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 1, .max_outputs = 1,
    .parse = sm_op_parse_none,
    .infer = gap_infer,
    .run = gap_run,
    .backward = gap_backward,
};
