/* A Conv's input gradient as forward Convs of dY (conv_transposed.h). */
#include <string.h>

#include "ops/conv_transposed.h"
#include "ops/op.h"
#include "ops/op_util.h"

extern const sm_op_class sm_op_conv;

#define BUDGET ((size_t)1 << 20) /* bytes of a chunk's result */

/* Floats rounded up to whole 64-byte lines, so that each part of the
 * packing starts aligned as the forward's kernels expect. */
static size_t lines(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* One axis of phase a: taps *t, pixels *j, pads *pb and *pe of the
 * stride-1 problem. 0, or -1 when its pads would crop (pads past the
 * kernel). */
static int phase_axis(int64_t in, int64_t out, int64_t k, int64_t s,
                      int64_t pad, int64_t a, int64_t *b, int64_t *t,
                      int64_t *j, int64_t *pb, int64_t *pe)
{
    *b = (a + pad) % s;
    *t = *b < k ? (k - *b + s - 1) / s : 0;
    *j = a < in ? (in - a + s - 1) / s : 0;
    const int64_t c = (a + pad - *b) / s;
    *pb = *t - 1 - c;
    *pe = *j - out - *pb + *t - 1;
    return *t > 0 && *j > 0 && (*pb < 0 || *pe < 0) ? -1 : 0;
}

/* The phase's forward problem with its inputs and output as a run sees
 * them: dY of nb images, the swapped weights wt, the result res. */
static void phase_io(const sm_conv_phase *f, int64_t nb, const float *gy,
                     const float *wt, float *res, sm_tensor *a, sm_tensor *b,
                     sm_tensor *r)
{
    *a = f->gy;
    *b = f->wt;
    *r = f->gx;
    a->shape[0] = r->shape[0] = nb;
    a->data = (float *)gy;
    b->data = (float *)wt;
    r->data = res;
}

int sm_conv_transposed_plan(const sm_conv *p, const sm_tensor *x,
                            const sm_tensor *w, const sm_tensor *y,
                            sm_conv_transposed *t)
{
    const int64_t dil[2] = {p->g.dilations[0], p->g.dilations[1]};
    if (x->ndim != 4 || dil[0] != 1 || dil[1] != 1 ||
        p->g.strides[0] > SM_CONV_TRANSPOSED_MAX_STRIDE ||
        p->g.strides[1] > SM_CONV_TRANSPOSED_MAX_STRIDE)
        return -1;
    memset(t, 0, sizeof *t);
    t->n = x->shape[0], t->c = x->shape[1], t->h = x->shape[2];
    t->w = x->shape[3], t->m = w->shape[0], t->kh = w->shape[2];
    t->kw = w->shape[3], t->oh = y->shape[2], t->ow = y->shape[3];
    t->cg = t->c / p->group, t->mg = t->m / p->group;
    t->sh = p->g.strides[0], t->sw = p->g.strides[1];
    /* Strided, the layers whose phases measured faster than im2col's
     * GEMM and col2im at batch 1 and 64 (docs/PERFORMANCE.md): depthwise
     * ones (MobileNet's, 1.5-3x), 1 x 1 ones (ResNet's downsamples,
     * whose one phase with taps is a pointwise Conv) and those whose
     * taps span more than twice the stride (ResNet's 7 x 7 / 2 stem).
     * A 3 x 3 / 2 layer's four phases are too small to pay. */
    const int depthwise = t->cg == 1 && t->mg == 1;
    const int pointwise = t->kh == 1 && t->kw == 1;
    const int wide = t->kh > 2 * t->sh && t->kw > 2 * t->sw;
    if ((t->sh > 1 || t->sw > 1) && !depthwise && !pointwise && !wide)
        return -1;
    int64_t pb[SM_GEOM_MAX], osp[SM_GEOM_MAX];
    /* Cannot fail: infer() resolved the same shapes. */
    sm_conv_geom_resolve(&p->g, 2, x->shape + 2, w->shape + 2, pb, osp, NULL);
    for (int64_t ah = 0; ah < t->sh; ah++)
        for (int64_t aw = 0; aw < t->sw; aw++) {
            sm_conv_phase *f = &t->ph[t->n_phases];
            int64_t pads[4];
            if (phase_axis(t->h, t->oh, t->kh, t->sh, pb[0], ah, &f->b[0],
                           &f->t[0], &f->j[0], &pads[0], &pads[2]) ||
                phase_axis(t->w, t->ow, t->kw, t->sw, pb[1], aw, &f->b[1],
                           &f->t[1], &f->j[1], &pads[1], &pads[3]))
                return -1;
            if (f->t[0] == 0 || f->t[1] == 0 || f->j[0] == 0 || f->j[1] == 0)
                continue; /* no tap reaches these pixels */
            f->a[0] = ah;
            f->a[1] = aw;
            f->q.group = p->group;
            f->q.g.n_kernel = f->q.g.n_strides = f->q.g.n_dilations = 2;
            f->q.g.n_pads = 4;
            f->q.g.auto_pad = SM_PAD_NOTSET;
            for (int i = 0; i < SM_GEOM_MAX; i++)
                f->q.g.strides[i] = f->q.g.dilations[i] = 1;
            f->q.g.kernel[0] = f->t[0];
            f->q.g.kernel[1] = f->t[1];
            memcpy(f->q.g.pads, pads, sizeof pads);
            t->n_phases++;
        }
    const size_t image = (size_t)(t->c * t->h * t->w) * sizeof(float);
    t->chunk = (int64_t)(BUDGET / (image ? image : 1));
    t->chunk = t->chunk < 1 ? 1 : t->chunk > t->n ? t->n : t->chunk;
    size_t at = 0;
    for (int i = 0; i < t->n_phases; i++) {
        sm_conv_phase *f = &t->ph[i];
        f->gy.ndim = f->wt.ndim = f->gx.ndim = 4;
        memcpy(f->gy.shape, (int64_t[]){t->chunk, t->m, t->oh, t->ow},
               4 * sizeof(int64_t));
        memcpy(f->wt.shape, (int64_t[]){t->c, t->mg, f->t[0], f->t[1]},
               4 * sizeof(int64_t));
        memcpy(f->gx.shape, (int64_t[]){t->chunk, t->c, f->j[0], f->j[1]},
               4 * sizeof(int64_t));
        const sm_tensor *in[2] = {&f->gy, &f->wt}, *out[1] = {&f->gx};
        f->wt_at = at;
        f->pack_at = at + lines((size_t)sm_tensor_numel(&f->wt));
        f->pack_len = sm_op_conv.pack_size(&f->q, in, 2, out, 1);
        at = f->pack_at + lines(f->pack_len);
    }
    return 0;
}

size_t sm_conv_transposed_workspace(const sm_conv_transposed *t)
{
    size_t most = 0;
    for (int i = 0; i < t->n_phases; i++) {
        const sm_conv_phase *f = &t->ph[i];
        const sm_tensor *in[2] = {&f->gy, &f->wt}, *out[1] = {&f->gx};
        size_t need = lines((size_t)sm_tensor_numel(&f->wt)) +
                      lines((size_t)sm_tensor_numel(&f->gx)) +
                      sm_op_conv.workspace(&f->q, in, 2, out, 1);
        most = need > most ? need : most;
    }
    return most;
}

size_t sm_conv_transposed_packed_size(const sm_conv_transposed *t)
{
    if (!t->n_phases)
        return 0;
    const sm_conv_phase *f = &t->ph[t->n_phases - 1];
    return f->pack_at + lines(f->pack_len);
}

/* w'[g*cg + ci][mo][u] = w[g*mg + mo][ci][the tap u stands for]: phase
 * f's weights, channel axes swapped, its taps in reverse order. */
static void swap_weights(const sm_conv_transposed *t, const sm_conv_phase *f,
                         const float *w, float *wt)
{
    const int64_t taps = t->kh * t->kw, sub = f->t[0] * f->t[1];
    for (int64_t g = 0; g < t->c / t->cg; g++)
        for (int64_t ci = 0; ci < t->cg; ci++)
            for (int64_t mo = 0; mo < t->mg; mo++) {
                const float *src = w + ((g * t->mg + mo) * t->cg + ci) * taps;
                float *dst = wt + ((g * t->cg + ci) * t->mg + mo) * sub;
                for (int64_t uh = 0; uh < f->t[0]; uh++)
                    for (int64_t uw = 0; uw < f->t[1]; uw++) {
                        int64_t kh = t->sh * (f->t[0] - 1 - uh) + f->b[0];
                        int64_t kw = t->sw * (f->t[1] - 1 - uw) + f->b[1];
                        dst[uh * f->t[1] + uw] = src[kh * t->kw + kw];
                    }
            }
}

void sm_conv_transposed_pack(const sm_conv_transposed *t, const float *w,
                             float *packed)
{
    for (int i = 0; i < t->n_phases; i++) {
        const sm_conv_phase *f = &t->ph[i];
        float *wt = packed + f->wt_at;
        swap_weights(t, f, w, wt);
        if (!f->pack_len)
            continue;
        sm_tensor a, b, r;
        phase_io(f, t->chunk, NULL, wt, NULL, &a, &b, &r);
        const sm_tensor *in[2] = {&a, &b}, *out[1] = {&r};
        sm_op_conv.pack(&f->q, in, 2, out, 1, packed + f->pack_at);
    }
}

void sm_conv_transposed_run(const sm_conv_transposed *t, const float *w,
                            const float *packed, const float *gy, float *gx,
                            int fresh, float *ws)
{
    const int64_t in_img = t->m * t->oh * t->ow, out_img = t->c * t->h * t->w;
    const int one = t->sh == 1 && t->sw == 1;
    if (fresh && !one) /* phases add onto their pixels, some maybe none */
        memset(gx, 0, sizeof(float) * (size_t)(t->n * out_img));
    for (int i = 0; i < t->n_phases; i++) {
        const sm_conv_phase *f = &t->ph[i];
        float *res = ws + lines((size_t)sm_tensor_numel(&f->wt));
        float *fws = res + lines((size_t)sm_tensor_numel(&f->gx));
        const float *wt = packed ? packed + f->wt_at : ws;
        if (!packed)
            swap_weights(t, f, w, ws);
        for (int64_t n0 = 0; n0 < t->n; n0 += t->chunk) {
            const int64_t nb = t->n - n0 < t->chunk ? t->n - n0 : t->chunk;
            sm_tensor a, b, r;
            phase_io(f, nb, gy + n0 * in_img, wt, res, &a, &b, &r);
            const sm_tensor *in[2] = {&a, &b};
            sm_tensor *out[1] = {&r};
            if (packed && f->pack_len)
                sm_op_conv.run_packed(&f->q, packed + f->pack_at, in, 2, out,
                                      1, fws);
            else
                sm_op_conv.run(&f->q, in, 2, out, 1, fws);
            float *dx = gx + n0 * out_img;
            if (one) { /* one phase: every pixel */
                (fresh ? sm_op_write_to : sm_op_add_to)(dx, res, nb * out_img);
                continue;
            }
            for (int64_t rr = 0; rr < nb * t->c; rr++) /* image and channel */
                for (int64_t jh = 0; jh < f->j[0]; jh++) {
                    float *row = dx + (rr * t->h + t->sh * jh + f->a[0]) * t->w +
                                 f->a[1];
                    const float *src = res + (rr * f->j[0] + jh) * f->j[1];
                    for (int64_t jw = 0; jw < f->j[1]; jw++)
                        row[t->sw * jw] += src[jw];
                }
        }
    }
}
