#include "ops/conv_geom.h"

#include "ops/op_util.h"

#include <string.h>

int sm_conv_geom_parse(sm_conv_geom *g, const sm_attrs *a, int with_dilations,
                       sm_err *err)
{
    memset(g, 0, sizeof *g);
    char ap[32];
    int64_t ceil_mode;
    if (sm_attrs_ints(a, "kernel_shape", g->kernel, SM_GEOM_MAX, &g->n_kernel,
                      err) ||
        sm_attrs_ints(a, "strides", g->strides, SM_GEOM_MAX, &g->n_strides,
                      err) ||
        sm_attrs_ints(a, "dilations", g->dilations, SM_GEOM_MAX,
                      &g->n_dilations, err) ||
        sm_attrs_ints(a, "pads", g->pads, 2 * SM_GEOM_MAX, &g->n_pads, err) ||
        sm_attrs_string(a, "auto_pad", "NOTSET", ap, sizeof ap, err) ||
        sm_attrs_int(a, "ceil_mode", 0, &ceil_mode, err))
        return -1;
    if (!with_dilations && g->n_dilations)
        return sm_err_set(err, "attribute 'dilations' is not supported here");
    if (strcmp(ap, "NOTSET") == 0)
        g->auto_pad = SM_PAD_NOTSET;
    else if (strcmp(ap, "VALID") == 0)
        g->auto_pad = SM_PAD_VALID;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        g->auto_pad = SM_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        g->auto_pad = SM_PAD_SAME_LOWER;
    else
        return sm_err_set(err, "attribute 'auto_pad' is '%s'; expected NOTSET, "
                          "VALID, SAME_UPPER or SAME_LOWER", ap);
    if (ceil_mode != 0 && ceil_mode != 1)
        return sm_err_set(err, "attribute 'ceil_mode' must be 0 or 1");
    g->ceil_mode = (int)ceil_mode;
    for (int i = 0; i < g->n_kernel; i++)
        if (g->kernel[i] < 1)
            return sm_err_set(err, "attribute 'kernel_shape' has %lld",
                              (long long)g->kernel[i]);
    for (int i = 0; i < SM_GEOM_MAX; i++) {
        if (i >= g->n_strides)
            g->strides[i] = 1;
        if (i >= g->n_dilations)
            g->dilations[i] = 1;
        if (g->strides[i] < 1 || g->dilations[i] < 1)
            return sm_err_set(err, "strides and dilations must be positive");
    }
    for (int i = 0; i < g->n_pads; i++)
        if (g->pads[i] < 0)
            return sm_err_set(err, "attribute 'pads' has a negative value");
    return 0;
}

int sm_conv_geom_resolve(const sm_conv_geom *g, int nsp, const int64_t *in,
                         const int64_t *k, int64_t *pad_begin, int64_t *out,
                         sm_err *err)
{
    for (int i = 0; i < nsp; i++) {
        int64_t ke = (k[i] - 1) * g->dilations[i] + 1; /* effective extent */
        int64_t s = g->strides[i], pb = 0, pe = 0;
        switch (g->auto_pad) {
        case SM_PAD_NOTSET:
            pb = g->n_pads ? g->pads[i] : 0;
            pe = g->n_pads ? g->pads[i + nsp] : 0;
            break;
        case SM_PAD_VALID:
            break;
        default: {
            int64_t o = (in[i] + s - 1) / s;
            int64_t total = (o - 1) * s + ke - in[i];
            if (total < 0)
                total = 0;
            pb = g->auto_pad == SM_PAD_SAME_UPPER ? total / 2
                                                  : total - total / 2;
            pe = total - pb;
        }
        }
        int64_t span = in[i] + pb + pe - ke;
        if (span < 0)
            return sm_err_set(err, "spatial dim %d: the window (%lld with "
                              "dilation) is larger than the padded input "
                              "(%lld)", i, (long long)ke,
                              (long long)(in[i] + pb + pe));
        out[i] = (g->ceil_mode ? (span + s - 1) / s : span / s) + 1;
        pad_begin[i] = pb;
    }
    return 0;
}

int sm_conv_geom_infer(const sm_conv_geom *g, const sm_tensor *x,
                       const int64_t *k, int64_t *oshape, sm_err *err)
{
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > SM_GEOM_MAX)
        return sm_err_set(err, "input has rank %d; expected 3 to %d", x->ndim,
                          SM_GEOM_MAX + 2);
    if (!k) {
        if (g->n_kernel != nsp)
            return sm_err_set(err, "attribute 'kernel_shape' has %d values "
                              "for %d spatial dims", g->n_kernel, nsp);
        k = g->kernel;
    } else if (g->n_kernel && g->n_kernel != nsp) {
        return sm_err_set(err, "attribute 'kernel_shape' has %d values for "
                          "%d spatial dims", g->n_kernel, nsp);
    } else if (g->n_kernel && memcmp(g->kernel, k, sizeof(int64_t) * (size_t)nsp)) {
        return sm_err_set(err, "attribute 'kernel_shape' disagrees with the "
                          "weights' shape");
    }
    if ((g->n_strides && g->n_strides != nsp) ||
        (g->n_dilations && g->n_dilations != nsp) ||
        (g->n_pads && g->n_pads != 2 * nsp))
        return sm_err_set(err, "strides/dilations/pads do not match %d "
                          "spatial dims", nsp);
    int64_t pb[SM_GEOM_MAX];
    return sm_conv_geom_resolve(g, nsp, x->shape + 2, k, pb, oshape + 2, err);
}

void sm_conv_phase_row(const float *src, int64_t w, int64_t sw, int64_t s0,
                       int64_t pitch, int64_t block, float *dst)
{
    if (sw == 1) { /* no divisions: a call a row, they cost more than
                    * the copy of a small plane's row */
        int64_t j0 = s0 > 0 ? s0 : 0, j1 = w + s0 < pitch ? w + s0 : pitch;
        if (j1 > j0)
            sm_op_copy_floats(dst + j0, src + j0 - s0, j1 - j0);
        return;
    }
    for (int64_t cph = 0; cph < sw; cph++, dst += block) {
        const int64_t off = cph - s0; /* input column at j = 0 */
        int64_t j0 = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int64_t j1 = w - off <= 0 ? 0 : (w - off + sw - 1) / sw;
        if (j1 > pitch)
            j1 = pitch;
        int64_t j = j0;
        if (sw == 2) /* four at a time while 8 floats lie inside the row
                      * (scalar, this copy was a third of a stride-2 stem) */
            for (; j + 4 <= j1 && 2 * j + off + 8 <= w; j += 4) {
                const sm_v4 lo = sm_v4_load(src + 2 * j + off);
                const sm_v4 hi = sm_v4_load(src + 2 * j + off + 4);
                sm_v4_store(dst + j, __builtin_shufflevector(lo, hi, 0, 2, 4, 6));
            }
        for (; j < j1; j++)
            dst[j] = src[j * sw + off];
    }
}
