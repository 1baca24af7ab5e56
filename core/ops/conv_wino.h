/* Winograd's minimal filtering F(2x2, 3x3) for 3 x 3 convolutions of
 * stride 1 (Lavin and Gray 2016): each 2 x 2 block of output pixels (a
 * tile) from the 4 x 4 input window under it, with 16 multiplications a
 * pair of channels instead of 36. The window is transformed (V = Bᵀ d B),
 * multiplied with the transformed weights (U = G g Gᵀ, once at planning)
 * position by position, 16 products of [m x c] by [c x tiles] on
 * sm_sgemm, and the result transformed back (Y = Aᵀ M A). The transforms
 * are additions and subtractions in plain C, rounded alike on every
 * instruction set, and each product's output is sm_sgemm's chain over
 * the input channels, so an output's bits depend neither on the batch,
 * nor on the tile's place in it, nor on AVX2 against AVX-512; they differ
 * from the direct definition's by rounding (docs/ONNX.md). Internal to
 * core/ops/conv.c, which decides which layers come here. */
#ifndef SM_OP_CONV_WINO_H
#define SM_OP_CONV_WINO_H

#include <stdint.h>

/* The problem: c input planes of h x w, zero-padded by ph rows at the
 * top and pw columns at the left, into m output planes of oh x ow. */
typedef struct sm_conv_wino {
    int64_t c, h, w, m, ph, pw, oh, ow;
} sm_conv_wino;

/* Floats of the transformed weights, and of a run's workspace for n
 * images (the weights' room included, used when not transformed
 * beforehand). */
int64_t sm_conv_wino_packed_size(const sm_conv_wino *s);
int64_t sm_conv_wino_workspace(const sm_conv_wino *s, int64_t n);

/* Transforms w ([m][c][3][3]) into packed. */
void sm_conv_wino_pack(const sm_conv_wino *s, const float *w, float *packed);

/* Rows of tiles of an output plane: (oh + 1) / 2. */
int64_t sm_conv_wino_rows(const sm_conv_wino *s);

/* Tile rows [r0, r1) of n images (output rows 2 r0 .. 2 r1 - 1 of
 * every channel; [0, sm_conv_wino_rows) for all): y[i] = bias + the
 * convolution of x[i] ([c][h][w]) with the weights, and its Relu into ry
 * (y's shape) when ry is not NULL. packed: from sm_conv_wino_pack, or
 * NULL to transform w here. bias may be NULL. A row's bits do not depend
 * on the range it is run in. */
void sm_conv_wino_run(const sm_conv_wino *s, int64_t n, const float *x,
                      const float *w, const float *packed, const float *bias,
                      float *y, float *ry, int64_t r0, int64_t r1, float *ws);

#endif
