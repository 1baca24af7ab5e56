/* sm_conv_geom: the sliding-window geometry shared by Conv and the pooling
 * operators (kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
 * for 1 to 3 spatial dims. Parsed once; resolved against the input's spatial
 * size whenever shapes are known (SAME padding depends on them). */
#ifndef SM_CONV_GEOM_H
#define SM_CONV_GEOM_H

#include <stdint.h>

#include "onnx/attr.h"
#include "tensor/tensor.h"
#include "util/err.h"

#define SM_GEOM_MAX 3

enum { SM_PAD_NOTSET, SM_PAD_VALID, SM_PAD_SAME_UPPER, SM_PAD_SAME_LOWER };

typedef struct sm_conv_geom {
    int n_kernel;                     /* kernel_shape values given, 0: none */
    int64_t kernel[SM_GEOM_MAX];
    int n_strides, n_dilations, n_pads;
    int64_t strides[SM_GEOM_MAX];     /* filled with 1 beyond n_strides */
    int64_t dilations[SM_GEOM_MAX];
    int64_t pads[2 * SM_GEOM_MAX];    /* as given: begins then ends */
    int auto_pad;
    int ceil_mode;
} sm_conv_geom;

/* Reads the attributes; with_dilations 0 refuses dilations (AveragePool). */
int sm_conv_geom_parse(sm_conv_geom *g, const sm_attrs *a, int with_dilations,
                       sm_err *err);

/* Resolves pads and output size for nsp spatial dims of size in[], kernel
 * k[] (the weights' when kernel_shape was not given). Writes pad_begin[] and
 * out[]. run() calls it again rather than caching: params are shared
 * between plans of different shapes. Returns 0, or -1 with a message when the window does not fit. */
int sm_conv_geom_resolve(const sm_conv_geom *g, int nsp, const int64_t *in,
                         const int64_t *k, int64_t *pad_begin, int64_t *out,
                         sm_err *err);

/* infer() helper: checks x (N, C, spatial...) and writes the spatial output
 * dims into oshape[2..]; kernel is k, or g->kernel when k is NULL. */
int sm_conv_geom_infer(const sm_conv_geom *g, const sm_tensor *x,
                       const int64_t *k, int64_t *oshape, sm_err *err);

/* Lays a row of w floats out as sw phases for a strided kernel: column j
 * of phase cph (at dst + cph * block, pitch floats) is src[j*sw + cph -
 * s0]; columns outside the row are left as they are (the caller's zero
 * padding). */
void sm_conv_phase_row(const float *src, int64_t w, int64_t sw, int64_t s0,
                       int64_t pitch, int64_t block, float *dst);

#endif
