/* Conv (1-D and 2-D): im2col + sm_sgemm (ops/sgemm.h), batched; the weight
 * gradient, a sum over the batch that only training asks for, on OpenBLAS.
 *
 * Images are processed in chunks: the chunk's columns are laid side by side
 * into one [K, nb*P] matrix so that one GEMM covers many images (small convs
 * on a big batch would otherwise be thousands of tiny GEMMs), and the GEMM
 * stores its [Mg, nb*P] result straight into NCHW, bias and Relu included
 * (sm_sgemm_run's maps). A 1x1 stride-1 unpadded conv of one image skips
 * im2col altogether, and the pixel-major path (small planes) never builds
 * it: its GEMM reads the (padded) image through offsets. Larger 3x3
 * stride-1 layers run Winograd's F(2x2, 3x3) (conv_wino.c, WINO_MIN_*),
 * the only forward path that rounds otherwise than one fused
 * multiply-add chain an output. The input gradient mostly runs as
 * forward Convs of dY (conv_transposed.c). */
#include <assert.h>
#include <cblas.h>
#include <string.h>

#include "ops/conv_direct.h"
#include "ops/conv_dw.h"
#include "ops/conv_geom.h"
#include "ops/conv_transposed.h"
#include "ops/conv_wino.h"
#include "ops/op.h"
#include "ops/op_util.h"
#include "ops/sgemm.h"
#include "util/isa.h"

/* Floats of columns plus GEMM result per chunk: about 1 MiB, so a chunk
 * stays in cache between im2col and the GEMM (measured on LeNet and
 * ResNet-18 shapes: 32 MiB chunks were 1.3-1.9x slower, docs/PERFORMANCE.md). */
#define COL_BUDGET ((size_t)256 << 10)

/* Convolutions with a kernel wider than 1 x 1 and output planes of at
 * least this many pixels run direct (conv_direct.c) where the CPU has AVX2
 * or AVX-512: faster than im2col on such layers of the LeNet, MNIST and
 * ResNet-18-shaped models (strided ones too, such as ResNet's 7 x 7 / 2
 * stem); on smaller planes its vectors are mostly padding
 * (docs/PERFORMANCE.md). Its forward pass yields to the pixel-major GEMM
 * where that applies (pixel_major), and to Winograd. The forward pass
 * rounds alike on every path but Winograd's. The input gradient runs as
 * forward Convs where it can (conv_transposed.h), else direct at stride
 * 1, else by im2col's GEMM and col2im; the choice depends on the layer
 * alone, never on which of the two sets the CPU has, so that both
 * compute the same bits (the paths round differently). */
#define DIRECT_MIN_PLANE 64

/* Output planes of at most this many pixels run pixel-major (see
 * pixel_major); on larger ones a single image fills the panels
 * channel-major, with whole-vector stores (planes of 196 and 256 pixels
 * measured no faster pixel-major). */
#define PIXEL_MAX_PLANE 64

/* 3 x 3 convolutions of stride 1 with at least this many input and
 * output channels and output planes at least this wide and high run
 * Winograd's F(2x2, 3x3) (conv_wino.c): 2.25 times fewer
 * multiplications, worth their transforms from these sizes; with fewer
 * channels, or on the small planes of a network's later stages, the
 * direct and pixel-major kernels stay faster (docs/PERFORMANCE.md). The
 * choice depends on the layer alone, never on the CPU or the batch. */
#define WINO_MIN_CHANNELS 32
#define WINO_MIN_SIDE 10

typedef sm_conv conv; /* conv_transposed.h */

static const char *const conv_attrs[] = {
    "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};

static int conv_parse(void *pv, const sm_attrs *a, sm_err *err)
{
    conv *p = pv;
    if (sm_conv_geom_parse(&p->g, a, 1, err) ||
        sm_attrs_int(a, "group", 1, &p->group, err))
        return -1;
    if (p->group < 1)
        return sm_err_set(err, "attribute 'group' must be at least 1, not %lld",
                          (long long)p->group);
    return 0;
}

/* Problem sizes derived from the planned shapes. */
typedef struct dims {
    int64_t n, c, h, w, m, kh, kw, oh, ow, cg, mg, k, p, nb;
    int64_t sh, sw, dh, dw, ph, pw;
    int depthwise_shape; /* a layer for conv_dw.c */
    int depthwise;    /* ... and this CPU has its kernel */
    int direct_shape; /* a layer for conv_direct.c (DIRECT_MIN_PLANE) */
    int direct;       /* ... and the CPU has its kernel: run there */
    int wino;         /* a layer for conv_wino.c (its forward pass) */
} dims;

static void get_dims(const conv *p, const sm_tensor *x, const sm_tensor *wt,
                     const sm_tensor *y, dims *d)
{
    int two = x->ndim == 4;
    d->n = x->shape[0];
    d->c = x->shape[1];
    d->h = two ? x->shape[2] : 1;
    d->w = x->shape[x->ndim - 1];
    d->m = wt->shape[0];
    d->kh = two ? wt->shape[2] : 1;
    d->kw = wt->shape[wt->ndim - 1];
    d->oh = two ? y->shape[2] : 1;
    d->ow = y->shape[y->ndim - 1];
    d->cg = d->c / p->group;
    d->mg = d->m / p->group;
    d->k = d->cg * d->kh * d->kw;
    d->p = d->oh * d->ow;
    int sp = two ? 0 : -1; /* 1-D: only the last spatial axis exists */
    int64_t pb[SM_GEOM_MAX], osp[SM_GEOM_MAX];
    /* Cannot fail: infer() resolved the same shapes. */
    sm_conv_geom_resolve(&p->g, x->ndim - 2, x->shape + 2, wt->shape + 2, pb,
                         osp, NULL);
    d->sh = two ? p->g.strides[0] : 1;
    d->dh = two ? p->g.dilations[0] : 1;
    d->ph = two ? pb[0] : 0;
    d->sw = p->g.strides[1 + sp];
    d->dw = p->g.dilations[1 + sp];
    d->pw = pb[1 + sp];
    size_t per = (size_t)(d->k + d->mg) * (size_t)d->p;
    d->nb = per ? (int64_t)(COL_BUDGET / per) : d->n;
    if (d->nb < 1)
        d->nb = 1;
    if (d->nb > d->n)
        d->nb = d->n;
    d->direct_shape = two && d->dh == 1 && d->dw == 1 && d->kh * d->kw > 1 &&
                      d->p >= DIRECT_MIN_PLANE;
    d->direct = d->direct_shape && sm_isa() != SM_ISA_BASELINE;
    /* one channel a group both sides: the depthwise kernel, whatever
     * the plane (it wastes no lanes on channels, conv_dw.c) */
    d->depthwise_shape = two && d->cg == 1 && d->mg == 1 && d->dh == 1 &&
                         d->dw == 1;
    d->depthwise = d->depthwise_shape && sm_isa() != SM_ISA_BASELINE;
    if (d->depthwise_shape)
        d->direct = d->direct_shape = 0;
    d->wino = two && p->group == 1 && d->kh == 3 && d->kw == 3 &&
              d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 &&
              d->cg >= WINO_MIN_CHANNELS && d->mg >= WINO_MIN_CHANNELS &&
              d->oh >= WINO_MIN_SIDE && d->ow >= WINO_MIN_SIDE;
}

static sm_conv_wino wino_problem(const dims *d)
{
    return (sm_conv_wino){d->c, d->h, d->w, d->m, d->ph, d->pw, d->oh, d->ow};
}

static sm_conv_dw dw_problem(const dims *d)
{
    return (sm_conv_dw){d->h, d->w, d->kh, d->kw, d->sh, d->sw,
                        d->ph, d->pw, d->oh, d->ow};
}

/* The direct path's problems: the forward Conv of one image and group,
 * and its input gradient. */
static sm_conv_direct direct_fwd(const dims *d)
{
    return (sm_conv_direct){d->cg, d->mg, d->kh, d->kw, d->oh, d->ow, d->sh,
                            d->sw};
}

static sm_conv_direct direct_bwd(const dims *d)
{
    return (sm_conv_direct){d->mg, d->cg, d->kh, d->kw, d->h, d->w, 1, 1};
}

static size_t direct_size(const sm_conv_direct *s)
{
    return (size_t)(sm_conv_direct_input_size(s) + sm_conv_direct_packed_size(s) +
                    sm_conv_direct_scratch_size(s));
}

/* Direct-path workspace: the larger of the two problems' buffers (for
 * any layer of its shape, whatever sm_isa() says at planning). */
static size_t direct_workspace(const dims *d)
{
    if (!d->direct_shape)
        return 0;
    sm_conv_direct f = direct_fwd(d), b = direct_bwd(d);
    size_t fs = direct_size(&f), bs = direct_size(&b);
    return fs > bs ? fs : bs;
}

static int conv_infer(const void *pv, const sm_tensor *const *in, int n_in,
                      sm_tensor *const *out, int n_out, sm_err *err)
{
    (void)n_in;
    (void)n_out;
    const conv *p = pv;
    const sm_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    char s1[96], s2[96];
    if (x->ndim != 3 && x->ndim != 4)
        return sm_err_set(err, "input X has shape %s; Conv supports 1-D and "
                          "2-D convolutions (rank 3 or 4)",
                          sm_shape_str(x->ndim, x->shape, s1, sizeof s1));
    if (w->ndim != x->ndim)
        return sm_err_set(err, "weight W has shape %s, X %s: ranks differ",
                          sm_shape_str(w->ndim, w->shape, s1, sizeof s1),
                          sm_shape_str(x->ndim, x->shape, s2, sizeof s2));
    if (x->shape[1] % p->group || w->shape[0] % p->group ||
        w->shape[1] * p->group != x->shape[1])
        return sm_err_set(err, "X has %lld channels, W %s with group %lld: "
                          "they do not fit", (long long)x->shape[1],
                          sm_shape_str(w->ndim, w->shape, s1, sizeof s1),
                          (long long)p->group);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return sm_err_set(err, "bias B has shape %s; Conv needs [%lld]",
                          sm_shape_str(b->ndim, b->shape, s1, sizeof s1),
                          (long long)w->shape[0]);
    int64_t oshape[SM_MAX_DIMS];
    if (sm_conv_geom_infer(&p->g, x, w->shape + 2, oshape, err))
        return -1;
    oshape[0] = x->shape[0];
    oshape[1] = w->shape[0];
    sm_op_set_shape(out[0], x->ndim, oshape);
    return 0;
}

/* The pixel-major path's view of the input: the rows and columns of the
 * input window a kernel reads, from the first padded pixel, and whether
 * the image itself serves (no padding is read) or a zero-padded copy of
 * each image of a chunk does. */
typedef struct window {
    int64_t rows, cols;
    int in_place;
} window;

static window window_of(const dims *d)
{
    window v = {(d->oh - 1) * d->sh + (d->kh - 1) * d->dh + 1,
                (d->ow - 1) * d->sw + (d->kw - 1) * d->dw + 1, 0};
    v.in_place = d->ph == 0 && d->pw == 0 && v.rows <= d->h && v.cols <= d->w;
    return v;
}

/* Floats of the pixel-major path's workspace: the indirect A's row and
 * column offsets (int64, two floats each), the padded chunk, the packed
 * weights (when not packed beforehand). */
static size_t pixel_workspace(const dims *d)
{
    const window v = window_of(d);
    size_t pad = v.in_place ? 0 : (size_t)(d->nb * d->cg * v.rows * v.cols);
    return 2 * (size_t)(d->nb * d->p + d->k) + pad +
           sm_sgemm_packed_size(d->k, d->mg);
}

/* Floats of im2col's de-interleaved rows (horizontal stride > 1). */
static size_t phase_size(const dims *d)
{
    return d->sw > 1 ? (size_t)(d->cg * d->h * d->sw * ((d->w + d->sw - 1) / d->sw)) : 0;
}

/* The im2col path's workspace: columns, the GEMM's result, im2col's
 * phases, sm_sgemm's panel, in that order. */
static size_t conv_workspace(const void *pv, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out)
{
    (void)n_in;
    (void)n_out;
    dims d;
    get_dims(pv, in[0], in[1], out[0], &d);
    size_t pack = sm_sgemm_workspace(d.k > d.mg ? d.k : d.mg);
    if (sm_sgemm_packed_size(d.k, d.mg) > pack)
        pack = sm_sgemm_packed_size(d.k, d.mg);
    size_t gemm = (size_t)(d.k + d.mg) * (size_t)(d.nb * d.p) + phase_size(&d) +
                  pack;
    if (pixel_workspace(&d) > gemm)
        gemm = pixel_workspace(&d);
    /* the direct path and im2col (a training backward's weight gradient)
     * take the workspace in turn, never at once */
    size_t direct = direct_workspace(&d);
    if (d.depthwise_shape) {
        sm_conv_dw s = dw_problem(&d);
        size_t dw = (size_t)sm_conv_dw_scratch_size(&s, d.c);
        direct = dw > direct ? dw : direct;
    }
    if (d.wino) {
        sm_conv_wino s = wino_problem(&d);
        size_t wn = (size_t)sm_conv_wino_workspace(&s, d.n);
        direct = wn > direct ? wn : direct;
    }
    return gemm > direct ? gemm : direct;
}

/* One direct-path problem per image and group: packed weights once per
 * group, then each image padded and convolved onto its output (and its
 * Relu onto ry, when not NULL). flip: the input gradient (x is then the
 * output gradient, y the input's). */
static void direct_each(const conv *p, const dims *d, const sm_conv_direct *s,
                        int flip, const float *x, const float *w,
                        const float *prepacked, const float *b, float *y,
                        float *ry, int64_t c0, int64_t c1, float *ws)
{
    /* output channels [c0, c1) of each group (a forward slice for
     * run_part: c0 a multiple of the packing's block, so the slice's
     * packed weights are the layer's from c0 on) */
    assert(!flip || (c0 == 0 && c1 == s->cout));
    sm_conv_direct sl = *s;
    sl.cout = c1 - c0;
    const int64_t kt = s->cin * s->kh * s->kw;
    float *packed = ws, *xp = packed + sm_conv_direct_packed_size(&sl);
    float *scratch = xp + sm_conv_direct_input_size(&sl);
    const int64_t in_plane = flip ? d->p : d->h * d->w;
    const int64_t out_plane = flip ? d->h * d->w : d->p;
    const int64_t in_c = flip ? d->m : d->c, out_c = flip ? d->c : d->m;
    for (int64_t g = 0; g < p->group; g++) {
        const float *wp = packed;
        if (prepacked)
            wp = prepacked + g * sm_conv_direct_packed_size(s) + c0 * kt;
        else
            sm_conv_direct_pack(&sl, w + g * d->mg * d->k + c0 * kt, flip,
                                packed);
        for (int64_t i = 0; i < d->n; i++) {
            const float *xi = x + (i * in_c + g * s->cin) * in_plane;
            if (flip)
                sm_conv_direct_pad(&sl, xi, d->oh, d->ow, d->kh - 1 - d->ph,
                                   d->kw - 1 - d->pw, xp);
            else
                sm_conv_direct_pad(&sl, xi, d->h, d->w, d->ph, d->pw, xp);
            /* d->direct: this CPU has a kernel (get_dims) */
            const int64_t yo = (i * out_c + g * s->cout + c0) * out_plane;
            (void)sm_conv_direct_run(&sl, xp, wp, b ? b + g * d->mg + c0 : NULL,
                                     y + yo, ry ? ry + yo : NULL, flip,
                                     scratch);
        }
    }
}

/* The output positions o in [0, n) whose input index o*s - p + k*dl falls
 * inside [0, len): [*lo, *hi). */
static void valid_span(int64_t n, int64_t s, int64_t p, int64_t k, int64_t dl,
                       int64_t len, int64_t *lo, int64_t *hi)
{
    int64_t off = k * dl - p; /* input index at o = 0 */
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = off > len - 1 ? 0 : (len - 1 - off) / s + 1;
    *lo = l < n ? l : n;
    *hi = h < n ? h : n;
    if (*hi < *lo)
        *hi = *lo;
}

/* Lays one image's channels (of one group) out as columns: row r = (ci, ki,
 * kj), column q = output pixel, starting at column col0 of a matrix with ld
 * columns. The valid spans are computed once per kernel tap (for every
 * channel) so the copy loops carry no bounds checks: rows of small feature
 * maps are short and per-element branches cost more than the copy. */
/* One image's group of input planes (cg x h rows of w) and its phase
 * layout at column stride sw > 1 (phase_size): row r's column c at
 * phase[(r * sw + c % sw) * pl + c / sw], pl = ceil(w / sw). */
static void phases_split(const dims *d, const float *x, float *phase)
{
    const int64_t pl = (d->w + d->sw - 1) / d->sw;
    for (int64_t r = 0; r < d->cg * d->h; r++) {
        const float *src = x + r * d->w;
        float *dst = phase + r * d->sw * pl;
        for (int64_t ph = 0; ph < d->sw; ph++)
            for (int64_t j = 0; ph + j * d->sw < d->w; j++)
                dst[ph * pl + j] = src[ph + j * d->sw];
    }
}

static void phases_merge(const dims *d, const float *phase, float *x)
{
    const int64_t pl = (d->w + d->sw - 1) / d->sw;
    for (int64_t r = 0; r < d->cg * d->h; r++) {
        const float *src = phase + r * d->sw * pl;
        float *dst = x + r * d->w;
        for (int64_t ph = 0; ph < d->sw; ph++)
            for (int64_t j = 0; ph + j * d->sw < d->w; j++)
                dst[ph + j * d->sw] = src[ph * pl + j];
    }
}

/* GCC would turn the short copy and zeroing loops back into library calls;
 * keep them loops. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void im2col(const float *x, const dims *d, float *col, int64_t ld,
                   int64_t col0, float *phase)
{
    const int64_t plane = d->h * d->w, taps = d->kh * d->kw;
    /* Horizontal stride s > 1: de-interleave each input row into s phases
     * (x[r], x[r+s], ... for r < s) once, so that every tap reads a
     * contiguous run instead of gathering every s-th float. */
    const int64_t pl = (d->w + d->sw - 1) / d->sw; /* phase length */
    if (d->sw > 1)
        phases_split(d, x, phase);
    /* Strides 1 and equal widths: input and output rows line up, so a
     * tap's valid pixels are one contiguous run (row ends wrapped) and each
     * row's out-of-image columns are zeroed afterwards. */
    const int lined_up = d->sw == 1 && d->sh == 1 && d->ow == d->w;
    for (int64_t ki = 0; ki < d->kh; ki++) {
        int64_t ylo, yhi;
        valid_span(d->oh, d->sh, d->ph, ki, d->dh, d->h, &ylo, &yhi);
        for (int64_t kj = 0; kj < d->kw; kj++) {
            int64_t xlo, xhi;
            valid_span(d->ow, d->sw, d->pw, kj, d->dw, d->w, &xlo, &xhi);
            const int64_t ix0 = kj * d->dw - d->pw;
            const int64_t iy0 = ki * d->dh - d->ph; /* input row at oy = 0 */
            const int64_t q0 = ylo * d->ow + xlo, q1 = (yhi - 1) * d->ow + xhi;
            for (int64_t ci = 0; ci < d->cg; ci++) {
                float *row = col + (ci * taps + ki * d->kw + kj) * ld + col0;
                const float *xc = x + ci * plane;
                /* rows above and below the image: zeros, contiguous */
                memset(row, 0, (size_t)(ylo * d->ow) * sizeof(float));
                memset(row + yhi * d->ow, 0,
                       (size_t)((d->oh - yhi) * d->ow) * sizeof(float));
                if (yhi <= ylo)
                    continue;
                if (lined_up && xhi > xlo) {
                    memcpy(row + q0, xc + iy0 * d->w + ix0 + q0,
                           (size_t)(q1 - q0) * sizeof(float));
                    for (int64_t oy = ylo; oy < yhi; oy++) {
                        float *dst = row + oy * d->ow;
                        for (int64_t ox = 0; ox < xlo; ox++)
                            dst[ox] = 0.0f;
                        for (int64_t ox = xhi; ox < d->ow; ox++)
                            dst[ox] = 0.0f;
                    }
                    continue;
                }
                /* the first valid pixel's column, in its phase's run */
                const int64_t ix = ix0 + xlo * d->sw;
                const int64_t off = d->sw == 1 ? ix
                                               : (ix % d->sw) * pl + ix / d->sw;
                const float *base = d->sw == 1 ? xc : phase + ci * d->h * d->sw * pl;
                const int64_t pitch = d->sw == 1 ? d->w : d->sw * pl;
                for (int64_t oy = ylo; oy < yhi; oy++) {
                    const float *src = base + (oy * d->sh + iy0) * pitch + off;
                    float *dst = row + oy * d->ow;
                    for (int64_t ox = 0; ox < xlo; ox++)
                        dst[ox] = 0.0f;
                    sm_op_copy_floats(dst + xlo, src, xhi - xlo);
                    for (int64_t ox = xhi; ox < d->ow; ox++)
                        dst[ox] = 0.0f;
                }
            }
        }
    }
}

/* A 1 x 1 stride-1 unpadded convolution: its input is its columns. */
static int is_pointwise(const dims *d)
{
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 &&
           d->ph == 0 && d->pw == 0 && d->oh == d->h && d->ow == d->w;
}

/* Whether the GEMM path computes pixels x output channels (the
 * columns' transpose times the packed weights' transpose) rather than
 * output channels x pixels: the panels of the GEMM (sgemm.c, up to 32
 * columns) then span output channels, which stay many on the small
 * planes of a network's later stages, where a single image's pixels
 * fill a fraction of a panel (4 of 32 on a 2 x 2 plane), and the
 * weights, packed once when the model is planned (conv_pack), stay in
 * cache while every pixel passes them. It comes before the direct
 * kernel (on 8 x 8 planes it ran 1.6-2.2x faster, docs/PERFORMANCE.md);
 * a pointwise layer whose plane fills whole panels stays channel-major
 * (reading its input in place). Either way each output is the same
 * fused multiply-add chain over k, so the choice changes no bits. */
static int pixel_major(const dims *d)
{
    return d->mg >= 32 && d->p <= PIXEL_MAX_PLANE &&
           !(is_pointwise(d) && d->p % 32 == 0);
}

/* Im2col of images [n0, n0 + nb) of group g side by side: columns [K,
 * nb*P] in col (row stride nb*P). Returns the matrix (x itself for one
 * image of a pointwise conv). */
static const float *gather(const dims *d, const float *x, int64_t n0,
                           int64_t nb, int64_t g, int pointwise, float *col,
                           float *phase)
{
    const int64_t ld = nb * d->p;
    if (pointwise && nb == 1)
        return x + (n0 * d->c + g * d->cg) * d->h * d->w;
    for (int64_t i = 0; i < nb; i++) {
        const float *xi = x + ((n0 + i) * d->c + g * d->cg) * d->h * d->w;
        if (pointwise)
            for (int64_t ci = 0; ci < d->cg; ci++)
                memcpy(col + ci * ld + i * d->p, xi + ci * d->p,
                       (size_t)d->p * sizeof(float));
        else
            im2col(xi, d, col, ld, i * d->p, phase);
    }
    return col;
}

/* The pixel-major path (pixel_major): per chunk and group, y = (colsᵀ
 * Wᵀ)ᵀ + bias, stored NCHW by the GEMM itself (and its Relu into ry when
 * not NULL), with no im2col: the product's A is indirect, row i a
 * pixel's first input (of a zero-padded copy of the chunk unless the
 * kernel reads no padding), column p = (ci, ki, kj) a kernel tap's offset
 * from it, in im2col's order, so each output is the same chain. */
static void run_pixel_major(const conv *p, const dims *d, const float *x,
                            const float *w, const float *prepacked,
                            const float *b, float *y, float *ry, float *ws,
                            int64_t c0, int64_t c1)
{
    const window v = window_of(d);
    const int64_t pitch = v.in_place ? d->w : v.cols;
    const int64_t plane = v.in_place ? d->h * d->w : v.rows * v.cols;
    /* an image's stride in A */
    const int64_t istride = v.in_place ? d->c * plane : d->cg * plane;
    int64_t *rows = (int64_t *)ws, *cols = rows + d->nb * d->p;
    float *xp = (float *)(cols + d->k);
    float *packed_ws = xp + (v.in_place ? 0 : d->nb * d->cg * plane);
    for (int64_t i = 0; i < d->nb; i++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++)
                rows[(i * d->oh + oy) * d->ow + ox] =
                    i * istride + oy * d->sh * pitch + ox * d->sw;
    for (int64_t ci = 0; ci < d->cg; ci++)
        for (int64_t ki = 0; ki < d->kh; ki++)
            for (int64_t kj = 0; kj < d->kw; kj++)
                cols[(ci * d->kh + ki) * d->kw + kj] =
                    ci * plane + ki * d->dh * pitch + kj * d->dw;
    /* the input columns a padded row takes: those left of the window's end */
    const int64_t wcopy = v.cols - d->pw < d->w ? v.cols - d->pw : d->w;
    for (int64_t g = 0; g < p->group; g++) {
        /* channels [c0, c1) of the group: c0 begins a panel of the
         * packing (run_part) */
        const float *packed = packed_ws;
        if (prepacked)
            packed = prepacked + g * sm_sgemm_packed_size(d->k, d->mg) +
                     c0 * d->k;
        else
            sm_sgemm_pack(1, w + (g * d->mg + c0) * d->k, d->k, d->k,
                          c1 - c0, packed_ws);
        for (int64_t n0 = 0; n0 < d->n; n0 += d->nb) {
            const int64_t nb = d->n - n0 < d->nb ? d->n - n0 : d->nb;
            const float *a = x + (n0 * d->c + g * d->cg) * d->h * d->w;
            if (!v.in_place) {
                memset(xp, 0, sizeof(float) * (size_t)(nb * d->cg * plane));
                for (int64_t i = 0; i < nb; i++)
                    for (int64_t ci = 0; ci < d->cg; ci++) {
                        const float *src =
                            x + ((n0 + i) * d->c + g * d->cg + ci) * d->h * d->w;
                        float *dst = xp + (i * d->cg + ci) * plane + d->pw;
                        for (int64_t iy = 0; iy < d->h && iy + d->ph < v.rows;
                             iy++)
                            sm_op_copy_floats(dst + (iy + d->ph) * pitch, src + iy * d->w,
                                     wcopy);
                    }
                a = xp;
            }
            const int64_t yo = (n0 * d->m + g * d->mg + c0) * d->p;
            sm_sgemm_run(&(sm_sgemm_args){
                .m = nb * d->p, .n = c1 - c0, .k = d->k, .alpha = 1.0f,
                .a = a, .a_rows = rows, .a_cols = cols, .bp = packed,
                .c = y + yo, .rows = {1, nb > 1 ? d->p : 0, d->m * d->p},
                .cols = {d->p, 0, 0},
                .bias = b ? b + g * d->mg + c0 : NULL, .bias_per_col = 1,
                .relu = ry ? ry + yo : NULL});
        }
    }
}

/* The channel-major path: [Mg, nb*P] = W cols per chunk and group,
 * stored NCHW (with bias and Relu) by the GEMM; output channels [c0, c1)
 * of each group (rows of W: run_part takes a slice). A pointwise layer
 * whose planes fill whole panels runs image by image on the input
 * itself: copying it side by side would buy nothing. */
static void channel_major(const conv *p, const dims *d, const float *x,
                          const float *w, const float *bias, float *y,
                          float *ry, float *ws, int64_t c0, int64_t c1)
{
    const int pointwise = is_pointwise(d);
    const int64_t chunk = pointwise && (d->p % 32 == 0 || d->p >= 256) ? 1 : d->nb;
    float *col = ws, *tmp = ws + d->k * d->nb * d->p;
    float *phase = tmp + d->mg * d->nb * d->p;
    float *pack = phase + phase_size(d);
    for (int64_t n0 = 0; n0 < d->n; n0 += chunk) {
        const int64_t nb = d->n - n0 < chunk ? d->n - n0 : chunk;
        for (int64_t g = 0; g < p->group; g++) {
            const float *bm = gather(d, x, n0, nb, g, pointwise, col, phase);
            const int64_t yo = (n0 * d->m + g * d->mg + c0) * d->p;
            sm_sgemm_run(&(sm_sgemm_args){
                .m = c1 - c0, .n = nb * d->p, .k = d->k, .alpha = 1.0f,
                .a = w + (g * d->mg + c0) * d->k, .a_rs = d->k, .a_cs = 1,
                .b = bm, .ldb = nb * d->p, .ws = pack, .c = y + yo,
                .rows = {d->p, 0, 0},
                .cols = {1, nb > 1 ? d->p : 0, d->m * d->p},
                .bias = bias ? bias + g * d->mg + c0 : NULL,
                .relu = ry ? ry + yo : NULL});
        }
    }
}

/* What conv_pack lays out for the layer of d: the depthwise or direct
 * kernel's weights (its shape, whether or not this CPU runs it now), the
 * pixel-major GEMM's, or nothing (0). */
enum { PACK_NONE, PACK_DIRECT, PACK_PIXEL, PACK_DW, PACK_WINO };

static int pack_kind(const dims *d)
{
    return d->depthwise_shape ? PACK_DW
           : d->wino          ? PACK_WINO
           : pixel_major(d)   ? PACK_PIXEL
           : d->direct_shape  ? PACK_DIRECT
                              : PACK_NONE;
}

/* The forward pass, with the weights packed beforehand (conv_pack) or
 * not (prepacked NULL); and its Relu into ry when not NULL, which every
 * path computes in the same pass. Returns 1 when ry was written. */
static int forward_y(const conv *p, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, const float *prepacked, float *ry,
                     int64_t c0, int64_t c1, float *ws)
{
    const sm_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    float *y = out[0]->data;
    const float *bias = b ? b->data : NULL;
    dims d;
    get_dims(p, x, w, out[0], &d);
    if (d.depthwise) {
        sm_conv_dw s = dw_problem(&d);
        /* d.depthwise: this CPU has the kernel (get_dims) */
        if (c0 == 0 && c1 == d.c) {
            (void)sm_conv_dw_run(&s, d.n, d.c, x->data, w->data, prepacked,
                                 bias, y, ry, ws);
            return ry != NULL;
        }
        const int64_t taps = d.kh * d.kw, hw = d.h * d.w;
        for (int64_t i = 0; i < d.n; i++) {
            const int64_t yo = (i * d.m + c0) * d.p;
            (void)sm_conv_dw_run(&s, 1, c1 - c0, x->data + (i * d.c + c0) * hw,
                                 w->data + c0 * taps,
                                 prepacked ? prepacked + c0 * taps : NULL,
                                 bias ? bias + c0 : NULL, y + yo,
                                 ry ? ry + yo : NULL, ws);
        }
        return ry != NULL;
    }
    if (d.wino) { /* whole (run_part splits it by rows of tiles) */
        sm_conv_wino s = wino_problem(&d);
        sm_conv_wino_run(&s, d.n, x->data, w->data, prepacked, bias, y, ry,
                         0, sm_conv_wino_rows(&s), ws);
        return ry != NULL;
    }
    /* the other paths take a range of each group's channels: a slice
     * only of a one-group layer (run_part) */
    if (p->group > 1)
        c0 = 0, c1 = d.mg;
    if (d.direct && !pixel_major(&d)) {
        sm_conv_direct s = direct_fwd(&d);
        direct_each(p, &d, &s, 0, x->data, w->data, prepacked, bias, y, ry,
                    c0, c1, ws);
    } else if (pixel_major(&d)) {
        run_pixel_major(p, &d, x->data, w->data, prepacked, bias, y, ry, ws,
                        c0, c1);
    } else {
        channel_major(p, &d, x->data, w->data, bias, y, ry, ws, c0, c1);
    }
    return ry != NULL;
}

/* forward_y, then the Relu into ry (when not NULL) where it took no part. */
static void forward(const conv *p, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, const float *prepacked, float *ry,
                    float *ws)
{
    if (forward_y(p, in, n_in, out, prepacked, ry, 0, out[0]->shape[1], ws) ||
        !ry)
        return;
    const float *restrict y = out[0]->data;
    float *restrict r = ry;
    SM_OP_FOR(i, sm_tensor_numel(out[0]), r[i] = sm_op_relu1(y[i]));
}

static void conv_run(const void *pv, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, float *ws)
{
    (void)n_out;
    forward(pv, in, n_in, out, NULL, NULL, ws);
}

static size_t conv_pack_size(const void *pv, const sm_tensor *const *in,
                             int n_in, const sm_tensor *const *out, int n_out)
{
    (void)n_in;
    (void)n_out;
    const conv *p = pv;
    dims d;
    get_dims(p, in[0], in[1], out[0], &d);
    sm_conv_direct s = direct_fwd(&d);
    sm_conv_dw sd = dw_problem(&d);
    switch (pack_kind(&d)) {
    case PACK_DW:
        return (size_t)sm_conv_dw_packed_size(&sd, d.c);
    case PACK_DIRECT:
        return (size_t)(p->group * sm_conv_direct_packed_size(&s));
    case PACK_PIXEL:
        return (size_t)p->group * sm_sgemm_packed_size(d.k, d.mg);
    case PACK_WINO: {
        sm_conv_wino sw = wino_problem(&d);
        return (size_t)sm_conv_wino_packed_size(&sw);
    }
    default:
        return 0;
    }
}

static void conv_pack(const void *pv, const sm_tensor *const *in, int n_in,
                      const sm_tensor *const *out, int n_out, float *packed)
{
    (void)n_in;
    (void)n_out;
    const conv *p = pv;
    const float *w = in[1]->data;
    dims d;
    get_dims(p, in[0], in[1], out[0], &d);
    sm_conv_direct s = direct_fwd(&d);
    const int kind = pack_kind(&d);
    if (kind == PACK_DW) {
        sm_conv_dw sd = dw_problem(&d);
        sm_conv_dw_pack(&sd, d.c, w, packed);
        return;
    }
    if (kind == PACK_WINO) {
        sm_conv_wino sw = wino_problem(&d);
        sm_conv_wino_pack(&sw, w, packed);
        return;
    }
    for (int64_t g = 0; g < p->group; g++) {
        const float *wg = w + g * d.mg * d.k;
        if (kind == PACK_DIRECT)
            sm_conv_direct_pack(&s, wg, 0,
                                packed + g * sm_conv_direct_packed_size(&s));
        else
            sm_sgemm_pack(1, wg, d.k, d.k, d.mg,
                          packed + g * sm_sgemm_packed_size(d.k, d.mg));
    }
}

/* Packed weights serve the path they were packed for; a direct layer on
 * a CPU (or SALMAP_ISA) without the direct kernel runs unpacked. */
static const float *usable_packing(const conv *p, const float *packed,
                                   const sm_tensor *const *in,
                                   const sm_tensor *const *out)
{
    dims d;
    get_dims(p, in[0], in[1], out[0], &d);
    const int kind = pack_kind(&d);
    return (kind == PACK_DIRECT && d.direct) ||
                   (kind == PACK_DW && d.depthwise) || kind == PACK_PIXEL ||
                   kind == PACK_WINO
               ? packed
               : NULL;
}

static void conv_run_packed(const void *pv, const float *packed,
                            const sm_tensor *const *in, int n_in,
                            sm_tensor *const *out, int n_out, float *ws)
{
    (void)n_out;
    forward(pv, in, n_in, out, usable_packing(pv, packed, in,
                                              (const sm_tensor *const *)out),
            NULL, ws);
}

static void conv_run_relu(const void *pv, const float *packed,
                          const sm_tensor *const *in, int n_in,
                          sm_tensor *const *out, int n_out, sm_tensor *relu,
                          float *ws)
{
    (void)n_out;
    forward(pv, in, n_in, out,
            packed ? usable_packing(pv, packed, in,
                                    (const sm_tensor *const *)out)
                   : NULL,
            relu->data, ws);
}

/* --- a layer split over threads (op.h run_part) --------------------------- */

/* The output channels a part takes whole (a multiple of this); 0 where
 * the layer is not split (groups other than depthwise ones). */
static int64_t slice_unit(const conv *p, const dims *d)
{
    if (d->depthwise)
        return 16;
    if (p->group != 1)
        return 0;
    /* the pixel-major packing's panels; the direct packing's blocks, 8
     * channels only when the layer's count is a multiple of 8 (else its
     * blocks are narrower, and a slice's would not match them); the
     * channel-major GEMM's row tiles */
    if (pixel_major(d))
        return 32;
    if (d->direct)
        return d->m % 8 == 0 ? 8 : 0;
    return 8;
}

static int conv_split(const void *pv, const sm_tensor *const *in, int n_in,
                      const sm_tensor *const *out, int n_out)
{
    (void)n_in;
    (void)n_out;
    const conv *p = pv;
    dims d;
    get_dims(p, in[0], in[1], out[0], &d);
    if (d.wino) { /* by rows of tiles */
        sm_conv_wino s = wino_problem(&d);
        return sm_conv_wino_rows(&s) >= 2;
    }
    const int64_t unit = slice_unit(p, &d);
    return unit && d.m >= 2 * unit;
}

/* Part `part` of `parts` of the forward pass: a slice of whole blocks of
 * output channels (Winograd: of rows of tiles), each with the very bits
 * of the whole layer's. */
static void conv_run_part(const void *pv, const float *packed,
                          const sm_tensor *const *in, int n_in,
                          sm_tensor *const *out, int n_out, sm_tensor *relu,
                          float *ws, int part, int parts)
{
    (void)n_out;
    const conv *p = pv;
    dims d;
    get_dims(p, in[0], in[1], out[0], &d);
    const float *pk =
        packed ? usable_packing(p, packed, in, (const sm_tensor *const *)out)
               : NULL;
    float *ry = relu ? relu->data : NULL;
    if (d.wino) { /* rows of tiles: each part transforms only its input */
        sm_conv_wino s = wino_problem(&d);
        const int64_t rows = sm_conv_wino_rows(&s);
        const int64_t r0 = rows * part / parts, r1 = rows * (part + 1) / parts;
        if (r0 < r1)
            sm_conv_wino_run(&s, d.n, in[0]->data, in[1]->data, pk,
                             n_in > 2 && in[2] ? in[2]->data : NULL,
                             out[0]->data, ry,
                             r0, r1, ws);
        return;
    }
    const int64_t unit = slice_unit(p, &d);
    if (!unit) { /* not split (conv_split): the whole layer on part 0 */
        if (part == 0)
            forward(p, in, n_in, out, pk, ry, ws);
        return;
    }
    const int64_t blocks = (d.m + unit - 1) / unit;
    const int64_t c0 = blocks * part / parts * unit;
    int64_t c1 = blocks * (part + 1) / parts * unit;
    c1 = c1 < d.m ? c1 : d.m;
    if (c0 >= c1)
        return;
    (void)forward_y(p, in, n_in, out, pk, ry, c0, c1, ws);
}

static double conv_flops(const void *pv, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out)
{
    (void)n_in;
    (void)n_out;
    dims d;
    get_dims(pv, in[0], in[1], out[0], &d);
    return 2.0 * (double)d.n * (double)d.m * (double)d.k * (double)d.p;
}

/* --- backward ------------------------------------------------------------ */

/* dst[i] += src[i] for i < n, in blocks of 8 so that -O2 vectorizes it. */
static void add_run(float *restrict dst, const float *restrict src, int64_t n)
{
    SM_OP_FOR(i, n, dst[i] += src[i]);
}

/* The adjoint of im2col: adds each column entry back onto the input pixel
 * it was copied from (several taps share a pixel). At a column stride
 * sw > 1 it adds onto dx's phase layout (phases_split, in `phase`), where
 * a tap's run of outputs lands on consecutive floats, and merges it back:
 * every pixel still gets its additions in the same order (its taps, row
 * by row), so the bits are those of adding at stride sw, four to six
 * times faster on a 7 x 7 stride-2 stem. */
static void col2im(const float *col, const dims *d, int64_t ld, int64_t col0,
                   float *dx, float *phase)
{
    const int64_t taps = d->kh * d->kw, pl = (d->w + d->sw - 1) / d->sw;
    /* phases pay for their two passes over dx when the taps' span covers
     * each column several times (not for a 1 x 1 or 3 x 3 at stride 2) */
    const int64_t sw = d->dw * (d->kw - 1) + 1 > 2 * d->sw ? d->sw : 1;
    if (sw > 1)
        phases_split(d, dx, phase);
    for (int64_t ki = 0; ki < d->kh; ki++) {
        int64_t ylo, yhi;
        valid_span(d->oh, d->sh, d->ph, ki, d->dh, d->h, &ylo, &yhi);
        for (int64_t kj = 0; kj < d->kw; kj++) {
            int64_t xlo, xhi;
            valid_span(d->ow, d->sw, d->pw, kj, d->dw, d->w, &xlo, &xhi);
            const int64_t ix0 = kj * d->dw - d->pw, iy0 = ki * d->dh - d->ph;
            /* column ox * sw + ix0: phase a, place ox + b */
            const int64_t a = (ix0 % sw + sw) % sw, b = (ix0 - a) / sw;
            for (int64_t ci = 0; ci < d->cg; ci++) {
                const float *row = col + (ci * taps + ki * d->kw + kj) * ld + col0;
                for (int64_t oy = ylo; oy < yhi; oy++) {
                    const int64_t iy = ci * d->h + oy * d->sh + iy0;
                    const float *src = row + oy * d->ow;
                    if (sw > 1)
                        add_run(phase + (iy * sw + a) * pl + b + xlo, src + xlo,
                                xhi - xlo);
                    else if (d->sw == 1)
                        add_run(dx + iy * d->w + ix0 + xlo, src + xlo, xhi - xlo);
                    else
                        for (int64_t ox = xlo; ox < xhi; ox++)
                            dx[iy * d->w + ox * d->sw + ix0] += src[ox];
                }
            }
        }
    }
    if (sw > 1)
        phases_merge(d, phase, dx);
}

static size_t conv_bwd_workspace(const void *pv, const sm_tensor *const *in,
                                 int n_in, const sm_tensor *const *out,
                                 int n_out)
{
    size_t ws = conv_workspace(pv, in, n_in, out, n_out);
    sm_conv_transposed t;
    if (sm_conv_transposed_plan(pv, in[0], in[1], out[0], &t) == 0) {
        size_t tw = sm_conv_transposed_workspace(&t);
        ws = tw > ws ? tw : ws;
    }
    return ws;
}

/* The input gradient's GEMM with fewer columns (pixels of a chunk) than
 * this runs transposed: W^T dY's rows of pixels fill only part of the
 * kernel's vectors, and its panels of dY pack at every call (on
 * ResNet's 3 x 3 / 2 layers at batch 1: 20-50 us against 11-12; from
 * 64 pixels on, the transposed stores cost more than that saves). */
#define SWAP_BELOW 64

/* Floats of a group's weights packed for the input gradient's GEMM. */
static size_t gemm_packed_size(const dims *d)
{
    return sm_sgemm_packed_size(d->mg, d->k);
}

/* How the input gradient goes: as forward Convs (conv_transposed.h), on
 * the direct kernel, or by im2col's GEMM and col2im. */
enum { BWD_TRANSPOSED, BWD_DIRECT, BWD_GEMM };

static int bwd_path(const conv *p, const sm_tensor *const *in,
                    const sm_tensor *const *out, dims *d,
                    sm_conv_transposed *t)
{
    get_dims(p, in[0], in[1], out[0], d);
    if (sm_conv_transposed_plan(p, in[0], in[1], out[0], t) == 0)
        return BWD_TRANSPOSED;
    return d->direct && d->sh == 1 && d->sw == 1 ? BWD_DIRECT : BWD_GEMM;
}

/* The backward's packing: the transposed path's weights, or each
 * group's for the GEMM (the direct kernel packs its own). */
static size_t conv_bwd_pack_size(const void *pv, const sm_tensor *const *in,
                                 int n_in, const sm_tensor *const *out,
                                 int n_out)
{
    (void)n_in;
    (void)n_out;
    const conv *p = pv;
    dims d;
    sm_conv_transposed t;
    switch (bwd_path(p, in, out, &d, &t)) {
    case BWD_TRANSPOSED:
        return sm_conv_transposed_packed_size(&t);
    case BWD_GEMM:
        return (size_t)p->group * gemm_packed_size(&d);
    default:
        return 0;
    }
}

static void conv_bwd_pack(const void *pv, const sm_tensor *const *in,
                          int n_in, const sm_tensor *const *out, int n_out,
                          float *packed)
{
    (void)n_in;
    (void)n_out;
    const conv *p = pv;
    const float *w = in[1]->data;
    dims d;
    sm_conv_transposed t;
    switch (bwd_path(p, in, out, &d, &t)) {
    case BWD_TRANSPOSED:
        sm_conv_transposed_pack(&t, w, packed);
        break;
    case BWD_GEMM:
        for (int64_t g = 0; g < p->group; g++)
            sm_sgemm_pack(0, w + g * d.mg * d.k, d.k, d.mg, d.k,
                          packed + g * gemm_packed_size(&d));
        break;
    default:
        break;
    }
}

/* Per chunk of images and group: dY gathered to [Mg, nb*P]; dX via
 * col2im(W^T dY); dW += dY col^T with the chunk's columns rebuilt;
 * dB += row sums of dY. dX goes as forward Convs where it can
 * (conv_transposed.h), with the weights packed beforehand (packed, by
 * conv_bwd_pack) or not (NULL). */
static void backward(const conv *p, const float *packed,
                     const sm_tensor *const *in, int n_in,
                     const sm_tensor *const *out, const sm_tensor *const *gout,
                     sm_tensor *const *gin, unsigned fresh, float *ws)
{
    const sm_tensor *x = in[0], *w = in[1], *gy = gout[0];
    sm_tensor *gx = gin[0], *gw = gin[1], *gb = n_in > 2 ? gin[2] : NULL;
    dims d;
    sm_conv_transposed t;
    const int path = bwd_path(p, in, out, &d, &t);
    /* fresh (op.h backward_fresh): the transposed path writes dX; the
     * others add onto it, zeroed first */
    if (!gy) /* fresh comes with a gradient (op.h) */
        return;
    if (gx && (fresh & 1u) && path != BWD_TRANSPOSED)
        memset(gx->data, 0, sizeof(float) * (size_t)sm_tensor_numel(x));
    if (gx && path == BWD_TRANSPOSED) {
        sm_conv_transposed_run(&t, w->data, packed, gy->data, gx->data,
                               fresh & 1u, ws);
        gx = NULL;
        if (!gw && !gb)
            return;
    }
    if (gx && path == BWD_DIRECT) {
        sm_conv_direct s = direct_bwd(&d);
        direct_each(p, &d, &s, 1, gy->data, w->data, NULL, NULL, gx->data,
                    NULL, 0, s.cout, ws);
        gx = NULL;
        if (!gw && !gb)
            return;
    }
    float *col = ws, *dyc = ws + d.k * d.nb * d.p;
    float *phase = dyc + d.mg * d.nb * d.p; /* im2col's scratch (stride > 1) */
    float *pack = phase + phase_size(&d);
    for (int64_t n0 = 0; n0 < d.n; n0 += d.nb) {
        int64_t nb = d.n - n0 < d.nb ? d.n - n0 : d.nb, ld = nb * d.p;
        for (int64_t g = 0; g < p->group; g++) {
            for (int64_t i = 0; i < nb; i++)
                for (int64_t mi = 0; mi < d.mg; mi++)
                    memcpy(dyc + mi * ld + i * d.p,
                           gy->data + ((n0 + i) * d.m + g * d.mg + mi) * d.p,
                           (size_t)d.p * sizeof(float));
            if (gb)
                for (int64_t mi = 0; mi < d.mg; mi++) {
                    double s = 0;
                    for (int64_t q = 0; q < ld; q++)
                        s += dyc[mi * ld + q];
                    gb->data[g * d.mg + mi] += (float)s;
                }
            if (gw) {
                for (int64_t i = 0; i < nb; i++)
                    im2col(x->data + ((n0 + i) * d.c + g * d.cg) * d.h * d.w,
                           &d, col, ld, i * d.p, phase);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d.mg,
                            (int)d.k, (int)ld, 1.0f, dyc, (int)ld, col, (int)ld,
                            1.0f, gw->data + g * d.mg * d.k, (int)d.k);
            }
            if (gx) {
                const float *wg = w->data + g * d.mg * d.k;
                const float *wp = packed ? packed + g * gemm_packed_size(&d)
                                         : NULL;
                /* col = W^T dY; with few pixels as (dY^T W)^T: they take
                 * the rows and K the vectors, W packed once
                 * (conv_bwd_pack). Each output is the chain over mg of
                 * the same products either way, so the same bits. */
                if (ld < SWAP_BELOW)
                    sm_sgemm_run(&(sm_sgemm_args){
                        .m = ld, .n = d.k, .k = d.mg, .alpha = 1.0f,
                        .a = dyc, .a_rs = 1, .a_cs = ld, .b = wp ? NULL : wg,
                        .ldb = d.k, .ws = pack, .bp = wp, .c = col,
                        .rows = {1, 0, 0}, .cols = {ld, 0, 0}});
                else
                    sm_sgemm(1, 0, d.k, ld, d.mg, 1.0f, wg, d.k, dyc, ld, 0,
                             col, ld, pack);
                for (int64_t i = 0; i < nb; i++)
                    col2im(col, &d, ld, i * d.p,
                           gx->data + ((n0 + i) * d.c + g * d.cg) * d.h * d.w,
                           phase);
            }
        }
    }
}

static void conv_backward(const void *pv, const sm_tensor *const *in,
                          int n_in, const sm_tensor *const *out, int n_out,
                          const sm_tensor *const *gout, sm_tensor *const *gin,
                          float *ws)
{
    (void)n_out;
    backward(pv, NULL, in, n_in, out, gout, gin, 0, ws);
}

static void conv_backward_packed(const void *pv, const float *packed,
                                 const sm_tensor *const *in, int n_in,
                                 const sm_tensor *const *out, int n_out,
                                 const sm_tensor *const *gout,
                                 sm_tensor *const *gin, float *ws)
{
    (void)n_out;
    backward(pv, packed, in, n_in, out, gout, gin, 0, ws);
}

static void conv_backward_fresh(const void *pv, const float *packed,
                                const sm_tensor *const *in, int n_in,
                                const sm_tensor *const *out, int n_out,
                                const sm_tensor *const *gout,
                                sm_tensor *const *gin, unsigned fresh,
                                float *ws)
{
    (void)n_out;
    backward(pv, packed, in, n_in, out, gout, gin, fresh, ws);
}

const sm_op_class sm_op_conv = {
    .name = "Conv",
    .params_size = sizeof(conv),
    .attrs = conv_attrs,
    .min_inputs = 2, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1,
    .parse = conv_parse,
    .infer = conv_infer,
    .workspace = conv_workspace,
    .run = conv_run,
    .flops = conv_flops,
    .pack_size = conv_pack_size,
    .pack = conv_pack,
    .run_packed = conv_run_packed,
    .run_relu = conv_run_relu,
    .run_part = conv_run_part,
    .split = conv_split,
    .backward = conv_backward,
    .bwd_workspace = conv_bwd_workspace,
    .bwd_pack_size = conv_bwd_pack_size,
    .bwd_pack = conv_bwd_pack,
    .backward_packed = conv_backward_packed,
    .backward_fresh = conv_backward_fresh,
    .bwd_fresh_inputs = 1,
};
