/* Pad, modes constant, reflect and edge.
 *
 * Opset >= 11: inputs data, pads (a constant int64 [2 * rank]: begins then
 * ends) and an optional constant_value scalar (read at run time, so it may
 * be a graph input). Opset 2..10: attributes pads and value. Negative pads
 * crop (constant mode only). Each output row along the last dim is a source
 * row (or padding) copied with its left and right borders. */
#include <string.h>

#include "ops/op.h"
#include "ops/op_util.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

typedef struct pad_params {
    int opset;
    int mode;
    int n_pads; /* opset < 11: the attribute */
    int64_t pads[2 * SM_MAX_DIMS];
    float value;
} pad_params;

static const char *const pad_attrs[] = {"mode", "pads", "value", NULL};

static int pad_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    pad_params *p = p_;
    char mode[32];
    p->opset = sm_attrs_opset(a);
    if (sm_attrs_string(a, "mode", "constant", mode, sizeof mode, err))
        return -1;
    if (strcmp(mode, "constant") == 0)
        p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PAD_EDGE;
    else
        return sm_err_set(err, "attribute 'mode' is '%s' (expected constant, "
                          "reflect or edge)", mode);
    if (p->opset >= 11) {
        if (sm_attrs_has(a, "pads") || sm_attrs_has(a, "value"))
            return sm_err_set(err, "Pad attributes 'pads'/'value' exist only "
                              "before opset 11 (the model imports opset %d, "
                              "where they are inputs)", p->opset);
        return 0;
    }
    if (!sm_attrs_has(a, "pads"))
        return sm_err_set(err, "attribute 'pads' is required by Pad before "
                          "opset 11");
    if (sm_attrs_ints(a, "pads", p->pads, 2 * SM_MAX_DIMS, &p->n_pads, err))
        return -1;
    return sm_attrs_float(a, "value", 0.0f, &p->value, err);
}

/* The pads for this node: the input (opset >= 11) or the attribute. */
static const int64_t *get_pads(const pad_params *p, const sm_tensor *const *in,
                               int n_in, int *n)
{
    if (p->opset >= 11) {
        *n = (int)sm_tensor_numel(in[1]);
        return in[1]->i64;
    }
    (void)n_in;
    *n = p->n_pads;
    return p->pads;
}

static int pad_infer(const void *p_, const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, sm_err *err)
{
    const pad_params *p = p_;
    const sm_tensor *x = in[0];
    static const char *const modes[] = {"constant", "reflect", "edge"};
    (void)n_out;
    if (sm_op_need_float(x, "data", "Pad", err))
        return -1;
    if (p->opset >= 11) {
        if (n_in < 2 || !in[1])
            return sm_err_set(err, "Pad needs input 'pads' (opset %d)",
                              p->opset);
        if (sm_op_need_i64_const(in[1], "pads", "Pad", err) ||
            sm_op_need_scalar(n_in > 2 ? in[2] : NULL, "constant_value",
                              "Pad", err))
            return -1;
    } else if (n_in > 1) {
        return sm_err_set(err, "Pad takes pads and value as inputs only since "
                          "opset 11 (the model imports opset %d)", p->opset);
    }
    int n;
    const int64_t *pads = get_pads(p, in, n_in, &n);
    if (n != 2 * x->ndim)
        return sm_op_shape_err(err, "data", x, "Pad has %d pads (needs 2 per "
                               "dim: %d)", n, 2 * x->ndim);
    int64_t shape[SM_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = pads[i], e = pads[x->ndim + i];
        if (p->mode != PAD_CONSTANT && (b < 0 || e < 0))
            return sm_err_set(err, "Pad: negative pads (cropping) are "
                              "supported in constant mode only, not %s",
                              modes[p->mode]);
        if (p->mode == PAD_REFLECT && (b >= x->shape[i] || e >= x->shape[i]))
            return sm_op_shape_err(err, "data", x, "reflect pads %lld, %lld "
                                   "along dim %d must be smaller than the dim",
                                   (long long)b, (long long)e, i);
        if (p->mode == PAD_EDGE && x->shape[i] == 0 && b + e > 0)
            return sm_op_shape_err(err, "data", x, "edge padding needs "
                                   "non-empty dims");
        shape[i] = x->shape[i] + b + e;
    }
    if (sm_op_check_out_shape(x->ndim, shape, "Pad", err))
        return -1;
    sm_op_set_shape(out[0], x->ndim, shape);
    return 0;
}

/* Source index along a dim of size n for output index o with begin pad b;
 * -1 for the constant. */
static int64_t source(int mode, int64_t o, int64_t b, int64_t n)
{
    int64_t i = o - b;
    if (i >= 0 && i < n)
        return i;
    if (mode == PAD_CONSTANT)
        return -1;
    if (mode == PAD_EDGE)
        return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i; /* reflect: pads < n */
}

/* Walks the output row by row along the last dim. Forward: y = pad(x),
 * each row a source row (or padding) copied with its left and right
 * borders. Backward, the adjoint: every output element's gradient is added
 * to the x element it was copied from (reflect and edge copy some several
 * times; cropped elements get nothing), and the padding's to *gvalue (the
 * constant_value's gradient, when wanted). */
typedef struct pad_io {
    const float *x;  /* forward */
    float *y;
    float value;
    const float *gy; /* backward */
    float *gx;       /* NULL: not wanted */
    float *gvalue;   /* NULL: not wanted */
} pad_io;

static void pad_walk(const pad_params *p, const sm_tensor *const *in, int n_in,
                     const sm_tensor *y, const pad_io *io, int backward)
{
    const sm_tensor *x = in[0];
    int npads, nd = x->ndim;
    const int64_t *pads = get_pads(p, in, n_in, &npads);
    float gpad = 0; /* backward: the padding's gradient, summed */
    if (nd == 0) {
        if (backward && io->gx)
            io->gx[0] += io->gy[0];
        else if (!backward)
            io->y[0] = io->x[0];
        return;
    }
    int64_t xs[SM_MAX_DIMS], r = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = r;
        r *= x->shape[i];
    }
    int64_t w = y->shape[nd - 1], xw = x->shape[nd - 1];
    int64_t b = pads[nd - 1];
    /* Output columns [lo, hi) copy source columns [lo - b, hi - b). */
    int64_t lo = b > 0 ? b : 0, hi = b + xw < w ? b + xw : w;
    int64_t mid = hi > lo ? hi : lo;
    int64_t rows = sm_tensor_numel(y) / (w ? w : 1);
    int64_t idx[SM_MAX_DIMS] = {0};
    for (int64_t row = 0; row < rows; row++) {
        /* The source row, or none when a leading dim falls in the padding. */
        int64_t off = 0;
        for (int i = 0; i < nd - 1 && off >= 0; i++) {
            int64_t s = source(p->mode, idx[i], pads[i], x->shape[i]);
            off = s < 0 ? -1 : off + s * xs[i];
        }
        if (backward) {
            const float *g = io->gy + row * w;
            float *gx = io->gx && off >= 0 ? io->gx + off : NULL;
            for (int64_t k = 0; k < w; k++) {
                int64_t s = off < 0 ? -1 : source(p->mode, k, b, xw);
                if (s < 0)
                    gpad += g[k];
                else if (gx)
                    gx[s] += g[k];
            }
        } else {
            float *o = io->y + row * w;
            if (off < 0) {
                for (int64_t k = 0; k < w; k++)
                    o[k] = io->value;
            } else {
                const float *src = io->x + off;
                for (int64_t k = 0; k < lo && k < w; k++) {
                    int64_t s = source(p->mode, k, b, xw);
                    o[k] = s < 0 ? io->value : src[s];
                }
                if (hi > lo)
                    memcpy(o + lo, src + (lo - b),
                           (size_t)(hi - lo) * sizeof(float));
                for (int64_t k = mid; k < w; k++) {
                    int64_t s = source(p->mode, k, b, xw);
                    o[k] = s < 0 ? io->value : src[s];
                }
            }
        }
        for (int i = nd - 2; i >= 0; i--) {
            if (++idx[i] < y->shape[i])
                break;
            idx[i] = 0;
        }
    }
    if (backward && io->gvalue)
        *io->gvalue += gpad;
}

static void pad_run(const void *p_, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, int n_out, float *ws)
{
    const pad_params *p = p_;
    (void)n_out;
    (void)ws;
    pad_io io = {
        .x = in[0]->data,
        .y = out[0]->data,
        .value = p->opset >= 11 ? (n_in > 2 && in[2] ? in[2]->data[0] : 0.0f)
                                : p->value,
    };
    pad_walk(p, in, n_in, out[0], &io, 0);
}

static void pad_backward(const void *p_, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out,
                         const sm_tensor *const *gout, sm_tensor *const *gin,
                         float *ws)
{
    const pad_params *p = p_;
    (void)n_out;
    (void)ws;
    if (!gout[0])
        return;
    /* constant_value (opset >= 11, when present) is a float input like x. */
    pad_io io = {
        .gy = gout[0]->data,
        .gx = gin[0] ? gin[0]->data : NULL,
        .gvalue = p->opset >= 11 && n_in > 2 && in[2] && gin[2]
                      ? gin[2]->data : NULL,
    };
    if (io.gx || io.gvalue)
        pad_walk(p, in, n_in, out[0], &io, 1);
}

const sm_op_class sm_op_pad = {
    .name = "Pad",
    .params_size = sizeof(pad_params),
    .attrs = pad_attrs,
    .min_inputs = 1, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1,
    .parse = pad_parse,
    .infer = pad_infer,
    .run = pad_run,
    .backward = pad_backward,
};
