/* Direct convolution of stride 1 on AVX2 and AVX-512, where im2col + sgemm
 * spends more time copying, packing and zeroing than multiplying on small
 * layers, and OpenBLAS may not use the CPU's widest vectors (measured in
 * docs/PERFORMANCE.md). Internal to core/ops/conv.c, which decides which
 * layers come here. */
#ifndef SM_OP_CONV_DIRECT_H
#define SM_OP_CONV_DIRECT_H

#include <stdint.h>

/* Instruction sets of the kernel: AUTO takes the best the CPU has; NONE:
 * the CPU has neither AVX2 nor AVX-512, and there is no kernel. */
enum { SM_CONV_DIRECT_AUTO, SM_CONV_DIRECT_NONE, SM_CONV_DIRECT_AVX2,
       SM_CONV_DIRECT_AVX512 };

/* One image's problem: cin planes padded to (oh + kh - 1) x (ow + kw - 1)
 * (sm_conv_direct_pad) convolved into cout planes of oh x ow. */
typedef struct sm_conv_direct {
    int64_t cin, cout, kh, kw, oh, ow;
    int isa; /* SM_CONV_DIRECT_AUTO but in tests */
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

/* The instruction set SM_CONV_DIRECT_AUTO runs on this CPU (NONE: no
 * kernel; Conv must not come here). */
int sm_conv_direct_isa(void);

/* y[co][oy][ox] (+)= bias[co] + sum over ci, ki, kj of
 * w[co][ci][ki][kj] * xp[ci][oy + ki][ox + kj]. accumulate: add onto y
 * instead of overwriting it. bias may be NULL. 0, or -1 (nothing done)
 * when s->isa (or, for AUTO, the CPU) has no kernel. */
int sm_conv_direct_run(const sm_conv_direct *s, const float *xp,
                        const float *packed, const float *bias, float *y,
                        int accumulate, float *scratch);

#endif
