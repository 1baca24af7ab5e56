/* Extremal perturbation (Fong, Patrick & Vedaldi 2019), after TorchRay's
 * extremal_perturbation with its MaskGenerator. A mask m in [0,1]^{HxW}
 * is a smooth max of parameters p on a grid of ceil(H/step) x ceil(W/step)
 * points; the perturbed image is x_m = m x + (1 - m) blur(x) ('preserve';
 * 'delete' swaps m and 1 - m). SGD with momentum on p minimises
 *   L = -f_c(x_m) (preserve) or +f_c(x_m) (delete)
 *       + lambda mean((sort(m) - ref_a)^2),
 * ref_a the sorted mask with a fraction a of ones, lambda growing each
 * iteration. df/dx_m comes from the engine's backward; the chain rule to m
 * and through the smooth max to p is here. All images of a batch are
 * optimised together: one forward + backward a iteration. See
 * docs/METHODS.md ("extremal") for where this departs from TorchRay. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/extremal.h"
#include "explain/gradient.h"
#include "explain/resample.h"
#include "model/model.h"
#include "util/pool.h"

typedef struct extremal_params {
    double area;
    int iterations;
    char variant[SM_PARAM_STR];
    int step;
    double sigma;
    double blur_sigma;
} extremal_params;

/* TorchRay's constants. */
#define LR 0.01
#define MOMENTUM 0.9
#define LAMBDA0 300.0
#define LAMBDA_GROWTH 1.0035
#define COLDNESS 20.0 /* softmax temperature of the smooth max */

/* The smooth-max geometry: pixel q sees taps 0 .. taps - 1, each a grid
 * point and its kernel weight, or TorchRay's zero padding: a parameter
 * fixed at 0 that still takes part in the softmax. Only the grid taps are
 * kept, in tap order, first[q] .. first[q + 1] - 1, with the padding taps
 * just before each (gap) and after the last (tail): the softmax's sum
 * still adds every tap in TorchRay's order. */
typedef struct mask_gen {
    int h, w, gh, gw, taps, most; /* most: grid taps of a pixel, at most */
    size_t *first; /* hw + 1 */
    int *cell;     /* grid index gy * gw + gx */
    double *wt;
    int *gap;
    int *tail; /* hw */
} mask_gen;

static void mask_gen_free(mask_gen *g)
{
    free(g->first);
    free(g->cell);
    free(g->wt);
    free(g->gap);
    free(g->tail);
}

/* TorchRay's kernel exp(-2 max(d/sigma - 1/2, 0)^2): flat within sigma/2. */
static double kernel(double d)
{
    double z = d - 0.5;
    return z > 0 ? exp(-2 * z * z) : 1.0;
}

/* TorchRay's MaskGenerator (margin = sigma, padding 1 + ceil(2 sigma /
 * step), radius 1 + ceil(sigma / step)) cropped to the image: pixel (y, x)
 * sees grid rows floor((y + M) / step) - padding + k, k < 2 radius + 1,
 * M = round(sigma); grid point (gy, gx) sits at pixel (step gy, step gx). */
static int mask_gen_init(mask_gen *g, int h, int w, int step, double sigma,
                         sm_err *err)
{
    int pad = 1 + (int)ceil(2 * sigma / step);
    int rad = 1 + (int)ceil(sigma / step), side = 2 * rad + 1;
    int m = (int)lround(sigma);
    size_t hw = (size_t)h * (size_t)w;
    *g = (mask_gen){.h = h, .w = w, .gh = (h + step - 1) / step,
                    .gw = (w + step - 1) / step, .taps = side * side};
    size_t n = hw * (size_t)g->taps; /* the most grid taps there can be */
    g->first = malloc(sizeof(size_t) * (hw + 1));
    g->cell = malloc(sizeof(int) * n);
    g->wt = malloc(sizeof(double) * n);
    g->gap = malloc(sizeof(int) * n);
    g->tail = malloc(sizeof(int) * hw);
    if (!g->first || !g->cell || !g->wt || !g->gap || !g->tail) {
        mask_gen_free(g);
        return sm_err_set(err, "out of memory");
    }
    size_t at = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t q = (size_t)y * (size_t)w + (size_t)x;
            int run = 0;
            g->first[q] = at;
            for (int ky = 0; ky < side; ky++)
                for (int kx = 0; kx < side; kx++) {
                    int gy = (y + m) / step - pad + ky;
                    int gx = (x + m) / step - pad + kx;
                    if (gy < 0 || gy >= g->gh || gx < 0 || gx >= g->gw) {
                        run++;
                        continue;
                    }
                    double dy = (y + m) - (sigma + (double)step * gy);
                    double dx = (x + m) - (sigma + (double)step * gx);
                    g->wt[at] = kernel(sqrt(dy * dy + dx * dx) / sigma);
                    g->cell[at] = gy * g->gw + gx;
                    g->gap[at++] = run;
                    run = 0;
                }
            g->tail[q] = run;
            if ((int)(at - g->first[q]) > g->most)
                g->most = (int)(at - g->first[q]);
        }
    g->first[hw] = at;
    return 0;
}

/* Pixel q's grid tap values z_j = w_j p_j into z and their softmax
 * weights s = softmax(COLDNESS z) (over every tap, padding too) into s;
 * returns the smooth max sum z_k s_k. Always in [0, 1] when p is (a convex
 * combination of values in [0, 1]), so TorchRay's clamp of the mask
 * changes nothing and is left out.
 * Bit for bit the plain loops over all taps: a padding tap's or a zero
 * parameter's exp(COLDNESS (0 - max)) is one value, computed once; the
 * largest tap's is exp(0) = 1; zero taps add +0 to the max. */
static double smooth_max(const mask_gen *g, size_t q, const double *p,
                         double *z, double *s)
{
    size_t a = g->first[q];
    int nv = (int)(g->first[q + 1] - a);
    const int *cell = g->cell + a, *gap = g->gap + a;
    const double *wt = g->wt + a;
    double mx = 0, sum = 0, m = 0;
    for (int j = 0; j < nv; j++) {
        z[j] = wt[j] * p[cell[j]];
        mx = z[j] > mx ? z[j] : mx;
    }
    double e0 = exp(COLDNESS * (0.0 - mx));
    for (int j = 0; j < nv; j++)
        s[j] = z[j] == 0 ? e0 : z[j] == mx ? 1.0 : exp(COLDNESS * (z[j] - mx));
    for (int j = 0; j < nv; j++) {
        for (int r = 0; r < gap[j]; r++)
            sum += e0;
        sum += s[j];
    }
    for (int r = 0; r < g->tail[q]; r++)
        sum += e0;
    for (int j = 0; j < nv; j++) {
        s[j] /= sum;
        m += z[j] * s[j];
    }
    return m;
}

typedef struct ranked {
    double v;
    size_t q;
} ranked;

/* 1 when a ranks before b: ascending value, ties by pixel index. A
 * strict total order, so every correct sort gives the same ranking. */
static int before(const ranked *a, const ranked *b)
{
    return a->v != b->v ? a->v < b->v : a->q < b->q;
}

/* Sorts r[n] by before() with tmp[n] as scratch: a bottom-up merge sort,
 * inlined, where qsort's comparison callback cost a third of the time. */
static void rank_sort(ranked *r, ranked *tmp, size_t n)
{
    ranked *src = r, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                dst[k++] = before(&src[b], &src[a]) ? src[b++] : src[a++];
            while (a < mid)
                dst[k++] = src[a++];
            while (b < hi)
                dst[k++] = src[b++];
        }
        ranked *t = src;
        src = dst;
        dst = t;
    }
    if (src != r)
        memcpy(r, src, sizeof(ranked) * n);
}

/* The softmax weights of the first images of a batch are kept from the
 * mask to the chain rule (their exps were most of the method's own time);
 * beyond this many bytes (large images), the rest are computed again. */
#define KEEP_BYTES ((size_t)64 << 20)

/* A lane's scratch: the images of a batch are shared among the model's
 * threads (each image's arithmetic is the same whoever does it). */
typedef struct ex_lane {
    struct ex_state *st;
    int64_t i0, i1;     /* its images */
    const double *p;    /* the parameters evaluated, n x np */
    double lambda;
    double *loss, *dp;  /* the objective's outputs */
    double *z, *s;      /* a pixel's grid taps */
    double *sq;         /* nvt: an image's softmax weights, pixel order */
    ranked *rank, *tmp; /* hw */
} ex_lane;

/* What one evaluation of the objective needs, for a batch. */
typedef struct ex_state {
    const sm_explain_ctx *ctx;
    const sm_tensor *x;
    const int *target;
    int delete_variant;
    double area;
    mask_gen g;
    int64_t n, c, hw, np; /* np = grid parameters an image */
    size_t nvt;           /* grid taps of an image, g.first[hw] */
    float *base;          /* blur(x), like x */
    sm_tensor *xm;        /* the perturbed batch */
    float *grad;          /* df/dx_m, like x */
    double *m;            /* n x hw: the masks last evaluated */
    double *f;            /* n: f_c(x_m) last evaluated */
    size_t *order;        /* n x hw: each mask's pixels, ascending */
    int64_t kept;         /* images whose softmax weights sw keeps */
    double *sw;           /* kept x nvt, in each mask's ascending order:
                             the chain rule reads them in that order */
    int lanes;
    ex_lane lane[SM_MODEL_MAX_THREADS];
} ex_state;

static void ex_free(ex_state *st)
{
    mask_gen_free(&st->g);
    free(st->base);
    sm_tensor_destroy(&st->xm);
    free(st->grad);
    free(st->m);
    free(st->f);
    free(st->order);
    free(st->sw);
    for (int l = 0; l < st->lanes; l++) {
        ex_lane *ln = &st->lane[l];
        free(ln->z);
        free(ln->s);
        free(ln->sq);
        free(ln->rank);
        free(ln->tmp);
    }
}

static int ex_init(ex_state *st, const sm_explain_ctx *ctx, const sm_tensor *x,
                   const int *target, int delete_variant, double area,
                   int step, double sigma, double blur_sigma, sm_err *err)
{
    *st = (ex_state){.ctx = ctx, .x = x, .target = target,
                     .delete_variant = delete_variant, .area = area,
                     .n = x->shape[0], .c = x->shape[1],
                     .hw = x->shape[2] * x->shape[3]};
    int h = (int)x->shape[2], w = (int)x->shape[3];
    if (mask_gen_init(&st->g, h, w, step, sigma, err))
        return -1;
    st->np = (int64_t)st->g.gh * st->g.gw;
    st->nvt = st->g.first[st->hw];
    size_t numel = (size_t)sm_tensor_numel(x), nhw = (size_t)(st->n * st->hw);
    size_t per = sizeof(double) * st->nvt; /* > 0: a pixel sees the grid */
    st->kept = (int64_t)(KEEP_BYTES / per) < st->n
                   ? (int64_t)(KEEP_BYTES / per) : st->n;
    st->base = malloc(sizeof(float) * numel);
    st->xm = sm_tensor_new(x->ndim, x->shape);
    st->grad = malloc(sizeof(float) * numel);
    st->m = malloc(sizeof(double) * nhw);
    st->f = malloc(sizeof(double) * (size_t)st->n);
    st->order = malloc(sizeof(size_t) * nhw);
    st->sw = malloc(per * (size_t)(st->kept > 0 ? st->kept : 1));
    int bad = !st->base || !st->xm || !st->grad || !st->m || !st->f ||
              !st->order || !st->sw;
    int64_t lanes = sm_model_threads(ctx->model);
    st->lanes = (int)(lanes < st->n ? lanes : st->n > 0 ? st->n : 1);
    for (int l = 0; l < st->lanes; l++) {
        ex_lane *ln = &st->lane[l];
        *ln = (ex_lane){.st = st, .i0 = st->n * l / st->lanes,
                        .i1 = st->n * (l + 1) / st->lanes};
        ln->z = malloc(sizeof(double) * (size_t)st->g.most);
        ln->s = malloc(sizeof(double) * (size_t)st->g.most);
        ln->sq = malloc(per);
        ln->rank = malloc(sizeof(ranked) * (size_t)st->hw);
        ln->tmp = malloc(sizeof(ranked) * (size_t)st->hw);
        bad |= !ln->z || !ln->s || !ln->sq || !ln->rank || !ln->tmp;
    }
    if (bad) {
        ex_free(st);
        return sm_err_set(err, "out of memory");
    }
    if (sm_explain_blur(x->data, (int)(st->n * st->c), h, w, blur_sigma,
                        st->base, err)) {
        ex_free(st);
        return sm_err_prefix(err, "blurred baseline");
    }
    return 0;
}

/* Image i's mask at its parameters pi into m, its blend into xm, its
 * pixels in ascending mask order into order and, when kept, its softmax
 * weights in that order into sw. */
static void ex_mask(ex_lane *ln, int64_t i, const double *pi)
{
    ex_state *st = ln->st;
    int64_t c = st->c, hw = st->hw;
    const mask_gen *g = &st->g;
    double *m = st->m + i * hw;
    const float *xi = st->x->data + i * c * hw, *bi = st->base + i * c * hw;
    float *xm = st->xm->data + i * c * hw;
    int keep = i < st->kept;
    for (int64_t q = 0; q < hw; q++)
        m[q] = smooth_max(g, (size_t)q, pi, ln->z,
                          keep ? ln->sq + g->first[q] : ln->s);
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t q = 0; q < hw; q++) {
            /* weight of x: m (preserve) or 1 - m (delete) */
            double a = st->delete_variant ? 1 - m[q] : m[q];
            int64_t e = ch * hw + q;
            xm[e] = (float)(a * xi[e] + (1 - a) * bi[e]);
        }
    for (int64_t q = 0; q < hw; q++)
        ln->rank[q] = (ranked){m[q], (size_t)q};
    rank_sort(ln->rank, ln->tmp, (size_t)hw);
    size_t *order = st->order + i * hw;
    double *sw = st->sw + (size_t)i * st->nvt;
    for (int64_t r = 0; r < hw; r++) {
        size_t q = order[r] = ln->rank[r].q;
        size_t a = g->first[q], nv = g->first[q + 1] - a;
        if (keep) {
            memcpy(sw, ln->sq + a, sizeof(double) * nv);
            sw += nv;
        }
    }
}

/* Image i's loss and dloss/dp from its mask and df/dx_m: the area
 * penalty, then the chain rule through the blend and the smooth max. */
static void ex_chain(ex_lane *ln, int64_t i)
{
    ex_state *st = ln->st;
    int64_t c = st->c, hw = st->hw, np = st->np;
    const mask_gen *g = &st->g;
    /* ref_a: the first floor(hw (1 - a)) sorted entries 0, the rest 1 */
    int64_t zeros = (int64_t)((double)hw * (1 - st->area));
    const double *m = st->m + i * hw, *pi = ln->p + i * np;
    const float *xi = st->x->data + i * c * hw, *bi = st->base + i * c * hw;
    const float *gi = st->grad + i * c * hw;
    const size_t *order = st->order + i * hw;
    const double *sw = st->sw + (size_t)i * st->nvt;
    double *dpi = ln->dp + i * np, pen = 0;
    for (int64_t k = 0; k < np; k++)
        dpi[k] = 0;
    for (int64_t r = 0; r < hw; r++) {
        size_t q = order[r];
        double d = m[q] - (r < zeros ? 0.0 : 1.0);
        pen += d * d;
        /* dL/dm: both variants give -sum_c g (x - blur x): delete flips
         * the sign of the reward and of dx_m/dm */
        double dm = 2 * ln->lambda * d / (double)hw;
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t e = ch * hw + (int64_t)q;
            dm -= (double)gi[e] * ((double)xi[e] - bi[e]);
        }
        /* through the smooth max: dm/dz_k = s_k (1 + COLDNESS (z_k - m)),
         * dz_k/dp = w_k; padding taps have no parameter */
        size_t a = g->first[q];
        int nv = (int)(g->first[q + 1] - a);
        const int *cell = g->cell + a;
        const double *wt = g->wt + a, *s = sw;
        if (i < st->kept) {
            sw += nv;
        } else {
            smooth_max(g, q, pi, ln->z, ln->s);
            s = ln->s;
        }
        for (int j = 0; j < nv; j++) {
            double z = wt[j] * pi[cell[j]];
            dpi[cell[j]] += dm * wt[j] * s[j] * (1 + COLDNESS * (z - m[q]));
        }
    }
    double reward = st->delete_variant ? -st->f[i] : st->f[i];
    ln->loss[i] = -reward + ln->lambda * pen / (double)hw;
}

static void ex_masks(void *arg)
{
    ex_lane *ln = arg;
    for (int64_t i = ln->i0; i < ln->i1; i++)
        ex_mask(ln, i, ln->p + i * ln->st->np);
}

static void ex_chains(void *arg)
{
    ex_lane *ln = arg;
    for (int64_t i = ln->i0; i < ln->i1; i++)
        ex_chain(ln, i);
}

/* The objective of every image at parameters p (n x np): loss[n] and
 * dloss/dp into dp (n x np). One forward + backward. lambda is the area
 * penalty's weight. */
static int ex_objective(ex_state *st, const double *p, double lambda,
                        double *loss, double *dp, sm_err *err)
{
    for (int l = 0; l < st->lanes; l++) {
        ex_lane *ln = &st->lane[l];
        ln->p = p, ln->lambda = lambda, ln->loss = loss, ln->dp = dp;
    }
    sm_pool_run(ex_masks, st->lane, sizeof st->lane[0], st->lanes);
    if (sm_explain_gradient(st->ctx, st->xm, st->target, st->grad, st->f, err))
        return -1;
    sm_pool_run(ex_chains, st->lane, sizeof st->lane[0], st->lanes);
    return 0;
}

/* See explain/extremal.h (the finite-difference test's entry point). */
int sm_extremal_objective(const sm_explain_ctx *ctx, const sm_explain_batch *b,
                          int delete_variant, double area, int step,
                          double sigma, double blur_sigma, double lambda,
                          const double *p, double *loss, double *dp,
                          sm_err *err)
{
    ex_state st;
    if (ex_init(&st, ctx, b->x, b->target, delete_variant, area, step, sigma,
                blur_sigma, err))
        return -1;
    int rc = ex_objective(&st, p, lambda, loss, dp, err);
    ex_free(&st);
    return rc;
}

static int extremal_run(const void *params, const sm_explain_ctx *ctx,
                        const sm_explain_batch *b, sm_explain_out *out,
                        sm_err *err)
{
    const extremal_params *pr = params;
    int del = strcmp(pr->variant, "delete") == 0;
    ex_state st;
    if (ex_init(&st, ctx, b->x, b->target, del, pr->area, pr->step, pr->sigma,
                pr->blur_sigma, err))
        return -1;
    int64_t n = st.n, np = st.np, hw = st.hw;
    double *p = malloc(sizeof(double) * (size_t)(n * np));
    double *dp = malloc(sizeof(double) * (size_t)(n * np));
    double *buf = malloc(sizeof(double) * (size_t)(n * np));
    double *loss = malloc(sizeof(double) * (size_t)n);
    double *f0 = malloc(sizeof(double) * (size_t)n);
    int rc = -1;
    if (!p || !dp || !buf || !loss || !f0) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if (sm_explain_scores(ctx, b->x, b->target, f0, err))
        goto done;
    for (int64_t k = 0; k < n * np; k++)
        p[k] = 1.0; /* TorchRay starts from the all-ones mask */
    double lambda = LAMBDA0;
    for (int t = 0; t < pr->iterations; t++) {
        if (ex_objective(&st, p, lambda, loss, dp, err))
            goto done;
        /* torch.optim.SGD(momentum = dampening = 0.9), as TorchRay: the
         * first step takes the gradient itself, later ones damp it */
        for (int64_t k = 0; k < n * np; k++) {
            buf[k] = t == 0 ? dp[k] : MOMENTUM * buf[k] + (1 - MOMENTUM) * dp[k];
            double v = p[k] - LR * buf[k];
            p[k] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        lambda *= LAMBDA_GROWTH;
    }
    /* The map is the mask of the last evaluation (TorchRay returns it),
     * so it goes with the recorded mask score. */
    for (int64_t i = 0; i < n; i++) {
        const double *m = st.m + i * hw;
        double area = 0;
        for (int64_t q = 0; q < hw; q++) {
            out[i].map[q] = (float)m[q];
            area += m[q];
        }
        out[i].score = f0[i];
        out[i].evals = pr->iterations + 1;
        sm_record *rec = &out[i].record; /* explainer.c checks it */
        sm_record_addf(rec, "area", "%.9g", area / (double)hw);
        sm_record_addf(rec, "mask_score", "%.9g", st.f[i]);
        sm_record_addf(rec, "iterations", "%d", pr->iterations);
        sm_record_str(rec, "variant", pr->variant);
        sm_record_addf(rec, "grid", "[%d, %d]", st.g.gh, st.g.gw);
    }
    rc = 0;
done:
    ex_free(&st);
    free(p);
    free(dp);
    free(buf);
    free(loss);
    free(f0);
    return rc;
}

static int extremal_check(const void *params, sm_err *err)
{
    const extremal_params *p = params;
    if (!(p->area > 0 && p->area < 1))
        return sm_err_set(err, "extremal.area: '%g' is not in (0, 1)", p->area);
    return 0;
}

static const char *const extremal_variants[] = {"preserve", "delete", NULL};

#define P(f) offsetof(extremal_params, f)
static const sm_param_def extremal_params_def[] = {
    {"area", SM_PARAM_FLOAT, P(area), "0.1", 0, 1, NULL,
     "the mask's target area a, a fraction of the image in (0, 1)"},
    {"iterations", SM_PARAM_INT, P(iterations), "800", 1, 1000000, NULL,
     "SGD steps (300 suffice for 28x28 images)"},
    {"variant", SM_PARAM_STRING, P(variant), "preserve", 0, 0,
     extremal_variants,
     "preserve: keep the mask, blur the rest; delete: blur the mask"},
    {"step", SM_PARAM_INT, P(step), "7", 1, 10000, NULL,
     "pixels between mask grid points (TorchRay's step)"},
    {"sigma", SM_PARAM_FLOAT, P(sigma), "21", 0.01, 10000, NULL,
     "the mask's smoothing kernel width, in pixels (TorchRay's sigma)"},
    {"blur_sigma", SM_PARAM_FLOAT, P(blur_sigma), "20", 0.01, 1000, NULL,
     "the blurred image's standard deviation, in pixels (TorchRay's max_blur)"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_extremal = {
    .name = "extremal",
    .summary = "extremal perturbation: smooth blur mask of area 0.1, 800 SGD steps",
    .backward = 1,
    .params = extremal_params_def,
    .params_size = sizeof(extremal_params),
    .check = extremal_check,
    .run = extremal_run,
};
