/* Depthwise convolution (one input channel a group, one output channel a
 * group: MobileNet's separable layers), 2-D, any kernel, stride and
 * padding, dilation 1, on AVX2 and AVX-512. im2col + sm_sgemm runs such a
 * layer as one tiny GEMM a channel (K = kh * kw rows, one output row);
 * here each plane is padded once and the taps run along whole vectors of
 * an output row. Each output is one fused multiply-add chain over (ki,
 * kj) in order from zero, then the bias added: the roundings of im2col +
 * sm_sgemm. Internal to core/ops/conv.c. */
#ifndef SM_OP_CONV_DW_H
#define SM_OP_CONV_DW_H

#include <stdint.h>

/* One plane's problem: h x w in, padded by pt rows above and pl columns
 * left (and whatever the output needs below and right), oh x ow out. */
typedef struct sm_conv_dw {
    int64_t h, w, kh, kw, sh, sw, pt, pl, oh, ow;
} sm_conv_dw;

/* Floats of scratch sm_conv_dw_run needs. */
int64_t sm_conv_dw_scratch_size(const sm_conv_dw *s);

/* y[c] = x[c] convolved with w[c] (kh x kw) plus bias[c] (bias may be
 * NULL) for c < planes. 0, or -1 (nothing done) when sm_isa() is the
 * baseline, which has no kernel. */
int sm_conv_dw_run(const sm_conv_dw *s, int64_t planes, const float *x,
                   const float *w, const float *bias, float *y,
                   float *scratch);

#endif
