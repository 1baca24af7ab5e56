/* The input gradient of a 2-D Conv as forward Convs of dY, so that it
 * takes the forward's kernels (Winograd, the direct and depthwise ones,
 * the pixel-major GEMM) rather than im2col's GEMM and col2im: MNIST-CNN's
 * 64 -> 32 gradient layer runs as Winograd, ResNet's 4 x 4 and 2 x 2 ones
 * on the GEMM, MobileNet's depthwise ones on the depthwise kernel.
 *
 * At stride s, input pixel s*j + a (phase a) gets w[k] dY[o] for every
 * tap k = s*t + b, b = (a + pad) mod s, with o = j + c - t, c = (a + pad
 * - b) / s: a stride-1 Conv of dY with the taps of residue b in reverse
 * order and pads T - 1 - c before, where T is their count. Each of the
 * s_h x s_w phases is one such Conv (its weights' channel axes swapped,
 * groups kept), its result added onto its pixels of dX, which may hold
 * other consumers' gradients; a phase no tap reaches gets nothing. At
 * stride 1 that is one Conv with the whole kernel flipped and pads k - 1
 * - pad. Images go a chunk at a time; every path rounds alike whatever
 * the chunk, and each pixel belongs to one phase, so neither the chunk
 * nor the phases' order changes a bit. Internal to core/ops/conv.c,
 * whose backward decides which layers come here. */
#ifndef SM_OP_CONV_TRANSPOSED_H
#define SM_OP_CONV_TRANSPOSED_H

#include <stddef.h>
#include <stdint.h>

#include "ops/conv_geom.h"
#include "tensor/tensor.h"

/* A Conv node's parameters, as conv.c parses them. */
typedef struct sm_conv {
    sm_conv_geom g;
    int64_t group;
} sm_conv;

#define SM_CONV_TRANSPOSED_MAX_STRIDE 4

/* One input phase's stride-1 problem. */
typedef struct sm_conv_phase {
    sm_conv q;            /* its parameters */
    int64_t a[2], b[2];   /* the input phase, the taps' residue */
    int64_t t[2], j[2];   /* its taps and its pixels along each axis */
    sm_tensor gy, wt, gx; /* a chunk's shapes (data set at each run) */
    size_t wt_at, pack_at, pack_len; /* floats into the packing */
} sm_conv_phase;

typedef struct sm_conv_transposed {
    int64_t n, c, h, w, m, oh, ow, kh, kw, cg, mg, sh, sw;
    int n_phases;         /* phases with taps */
    sm_conv_phase ph[SM_CONV_TRANSPOSED_MAX_STRIDE *
                     SM_CONV_TRANSPOSED_MAX_STRIDE];
    int64_t chunk;        /* images a step */
} sm_conv_transposed;

/* Fills *t for the Conv p of x by w into y and returns 0 when its input
 * gradient goes as forward Convs; -1 when it does not (1-D, dilations,
 * strides past SM_CONV_TRANSPOSED_MAX_STRIDE or on a layer that is not
 * depthwise, pads past the kernel). */
int sm_conv_transposed_plan(const sm_conv *p, const sm_tensor *x,
                            const sm_tensor *w, const sm_tensor *y,
                            sm_conv_transposed *t);

/* Floats of a run's workspace (room for the swapped weights included, used
 * when they were not packed beforehand). */
size_t sm_conv_transposed_workspace(const sm_conv_transposed *t);

/* Floats of the packing: each phase's swapped weights and the forward's
 * packing of them. Neither depends on the batch. */
size_t sm_conv_transposed_packed_size(const sm_conv_transposed *t);

/* Packs the Conv's weights w (its [m, cg, kh, kw]) into packed. */
void sm_conv_transposed_pack(const sm_conv_transposed *t, const float *w,
                             float *packed);

/* dX (gx) += the phases' forward Convs of dY (gy), with the weights w
 * packed beforehand (packed) or not (NULL): the same bits either way.
 * fresh: gx holds garbage; the same bits written (op.h backward_fresh). */
void sm_conv_transposed_run(const sm_conv_transposed *t, const float *w,
                            const float *packed, const float *gy, float *gx,
                            int fresh, float *ws);

#endif
