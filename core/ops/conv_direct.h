/* Direct convolution of stride 1 on AVX2 and AVX-512, where im2col + sgemm
 * spends more time copying, packing and zeroing than multiplying on small
 * layers (measured in docs/PERFORMANCE.md). It rounds exactly as im2col +
 * sm_sgemm does. Internal to core/ops/conv.c, which decides which layers
 * come here. */
#ifndef SM_OP_CONV_DIRECT_H
#define SM_OP_CONV_DIRECT_H

#include <stdint.h>

/* One image's problem: cin planes, zero-padded (sm_conv_direct_pad),
 * convolved with strides sh, sw (at least 1) into cout planes of oh x ow.
 * A strided plane is laid out as sh x sw phases (padded rows i*sh + rph,
 * columns j*sw + cph), so that every tap still reads consecutive floats. */
typedef struct sm_conv_direct {
    int64_t cin, cout, kh, kw, oh, ow, sh, sw;
} sm_conv_direct;

/* Floats of the padded input (with the slack the vector loads read past
 * its end), of the packed weights and of the run's scratch. */
int64_t sm_conv_direct_input_size(const sm_conv_direct *s);
int64_t sm_conv_direct_packed_size(const sm_conv_direct *s);
int64_t sm_conv_direct_scratch_size(const sm_conv_direct *s);

/* Packs the weights of s: w is [s->cout][s->cin][kh][kw] (flip = 0), or,
 * with flip = 1, the weights of the forward Conv whose input gradient s is
 * ([s->cin][s->cout][kh][kw], taps reversed): that gradient is the output
 * gradient, padded by the kernel's reach less the forward padding,
 * convolved with them. */
void sm_conv_direct_pack(const sm_conv_direct *s, const float *w, int flip,
                         float *packed);

/* Lays planes [s->cin][h][w] out as s's zero-padded input, pixel (i, j) at
 * (i + r0, j + s0); what falls outside is dropped (it would only ever meet
 * padding). */
void sm_conv_direct_pad(const sm_conv_direct *s, const float *x, int64_t h,
                        int64_t w, int64_t r0, int64_t s0, float *xp);

/* y[co][oy][ox] (+)= bias[co] + sum over ci, ki, kj of
 * w[co][ci][ki][kj] * padded x[ci][oy*sh + ki][ox*sw + kj]. accumulate: add onto y
 * instead of overwriting it. bias may be NULL. ry, when not NULL, gets
 * the Relu of y as well (y's shape; sm_op_relu1's bits), in the same pass.
 * 0, or -1 (nothing done) when sm_isa() is the baseline, which has no
 * kernel. */
int sm_conv_direct_run(const sm_conv_direct *s, const float *xp,
                       const float *packed, const float *bias, float *y,
                       float *ry, int accumulate, float *scratch);


#endif
