/* sm_pool: MaxPool's kernels (pool_max.c) for ops/pool.c, and the window
 * geometry both use. Every kernel computes the bits of pool.c's general
 * loops: a window's first maximum in row-major order (a later tap wins
 * only when greater; -FLT_MAX, the padding, never does), the backward's
 * gradients added output by output in row-major order. */
#ifndef SM_OPS_POOL_MAX_H
#define SM_OPS_POOL_MAX_H

#include <stddef.h>
#include <stdint.h>

/* The window's geometry over three spatial dims, leading ones of size 1. */
typedef struct sm_pool_geom {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} sm_pool_geom;

/* Window along dim i for output position o: the kernel taps [*ka, *kb)
 * that fall inside the input; returns the window's first input index. */
int64_t sm_pool_taps(const sm_pool_geom *g, int i, int64_t o, int64_t *ka,
                     int64_t *kb);

/* 1 when g is a 2x2 window of stride 2 over 2 dims, no padding or
 * dilation (LeNet's, VGG's): sm_pool_max2x2 and its backward. */
int sm_pool_is_2x2(const sm_pool_geom *g);

/* planes of x (in[1] x in[2] each) into y (out[1] x out[2] each). */
void sm_pool_max2x2(const sm_pool_geom *g, int64_t planes, const float *x,
                    float *y);

/* Adds (fresh: writes whole, op.h backward_fresh) each output's gradient
 * gy to its window's first maximum in gx. */
void sm_pool_max2x2_backward(const sm_pool_geom *g, int64_t planes,
                             const float *x, const float *gy, float *gx,
                             int fresh);

/* Floats of workspace the separable passes need (g->in[0] == 1). */
size_t sm_pool_max_workspace(const sm_pool_geom *g);
size_t sm_pool_max_bwd_workspace(const sm_pool_geom *g);

/* Any window over 1 or 2 dims (g->in[0] == 1), forward; and backward,
 * adding onto gx. */
void sm_pool_max_separable(const sm_pool_geom *g, int64_t planes,
                           const float *x, float *y, float *ws);
void sm_pool_max_separable_backward(const sm_pool_geom *g, int64_t planes,
                                    const float *x, const float *gy,
                                    float *gx, float *ws);

#endif
