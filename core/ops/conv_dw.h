/* Depthwise convolution (one input channel a group, one output channel a
 * group: MobileNet's separable layers), 2-D, any kernel, stride and
 * padding, dilation 1, on AVX2 and AVX-512. im2col + sm_sgemm runs such a
 * layer as one tiny GEMM a channel (K = kh * kw rows, one output row);
 * here layers of a few channels and more run channel-blocked (a vector
 * holds one pixel of 16 or 8 channels, so that the setup of a plane is
 * paid once a block), the others a plane at a time, padded once, the taps
 * along whole vectors of an output row. Either way each output is one
 * fused multiply-add chain over (ki, kj) in order from zero, then the
 * bias added, then the Relu when asked: the roundings of im2col +
 * sm_sgemm. Internal to core/ops/conv.c. */
#ifndef SM_OP_CONV_DW_H
#define SM_OP_CONV_DW_H

#include <stdint.h>

/* One plane's problem: h x w in, padded by pt rows above and pl columns
 * left (and whatever the output needs below and right), oh x ow out. */
typedef struct sm_conv_dw {
    int64_t h, w, kh, kw, sh, sw, pt, pl, oh, ow;
} sm_conv_dw;

/* Floats of scratch sm_conv_dw_run needs for channels planes. */
int64_t sm_conv_dw_scratch_size(const sm_conv_dw *s, int64_t channels);

/* Floats of the packed weights of channels planes (whatever the plane
 * size and instruction set), and the packing of w ([channels, kh, kw]). */
int64_t sm_conv_dw_packed_size(const sm_conv_dw *s, int64_t channels);
void sm_conv_dw_pack(const sm_conv_dw *s, int64_t channels, const float *w,
                     float *packed);

/* For each of n images of channels planes: y[c] = x[c] convolved with
 * w[c] (kh x kw) plus bias[c] (bias may be NULL), and ry its Relu when
 * not NULL (sm_op_relu1's bits). packed: sm_conv_dw_pack of w, or NULL.
 * 0, or -1 (nothing done) when sm_isa() is the baseline, which has no
 * kernel. */
int sm_conv_dw_run(const sm_conv_dw *s, int64_t n, int64_t channels,
                   const float *x, const float *w, const float *packed,
                   const float *bias, float *y, float *ry, float *scratch);

#endif
