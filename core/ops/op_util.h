/* Internal helpers shared by the operators of core/ops/ (not part of the
 * engine's interface, which is op.h): shape messages, elementwise
 * broadcasting. (The sliding-window geometry of Conv and the pools is
 * ops/conv_geom.h.) */
#ifndef SM_OP_UTIL_H
#define SM_OP_UTIL_H

#include <stdint.h>
#include <string.h>

#include "ops/op.h"

/* --- parse helpers ------------------------------------------------------ */

/* The attrs list of an operator without attributes: { NULL }. */
extern const char *const sm_op_no_attrs[];

/* parse() of an operator without attributes. */
int sm_op_parse_none(void *p, const sm_attrs *a, sm_err *err);

/* run() of the shape-only operators (Flatten, Reshape, Identity, Dropout):
 * copies input 0's data into output 0 (nothing for an int64 input, which
 * only Identity accepts). */
void sm_op_copy_run(const void *p, const sm_tensor *const *in, int n_in,
                    sm_tensor *const *out, int n_out, float *ws);

/* Four floats as one SSE vector (GCC and clang vector extensions, which
 * every x86-64 has), and unaligned loads and stores of them. */
typedef float sm_v4 __attribute__((vector_size(4 * sizeof(float))));
typedef int32_t sm_v4i __attribute__((vector_size(4 * sizeof(int32_t))));

static inline sm_v4 sm_v4_load(const float *p)
{
    sm_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void sm_v4_store(float *p, sm_v4 v)
{
    memcpy(p, &v, sizeof v);
}

/* Copies a run of n floats. Most runs in the convolutions are a short row
 * of a small feature map, where a call to memcpy costs more than the
 * copy. */
static inline void sm_op_copy_floats(float *restrict dst,
                                     const float *restrict src, int64_t n)
{
    if (n > 16) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i];
}

/* backward() of the same operators: adds gout[0] to gin[0] (nothing when
 * either is NULL: a zero gradient, or one not wanted). Their other inputs
 * (Reshape's shape, Dropout's ratio) get no gradient. */
void sm_op_copy_backward(const void *p, const sm_tensor *const *in, int n_in,
                         const sm_tensor *const *out, int n_out,
                         const sm_tensor *const *gout, sm_tensor *const *gin,
                         float *ws);

/* Their backward_fresh (op.h): gout[0] written onto gin[0] when fresh
 * says so, else added. */
void sm_op_copy_backward_fresh(const void *p, const float *packed,
                               const sm_tensor *const *in, int n_in,
                               const sm_tensor *const *out, int n_out,
                               const sm_tensor *const *gout,
                               sm_tensor *const *gin, unsigned fresh,
                               float *ws);

/* --- messages ------------------------------------------------------------ */

/* Sets "input '<input>' has shape [..] but <fmt...>" and returns -1. Inputs
 * are named as in the ONNX spec ('X', 'data', 'shape'); the engine adds the
 * node's name. */
int sm_op_shape_err(sm_err *err, const char *input, const sm_tensor *t,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Refuses an int64 constant (a tensor with i64 set, whether or not it also
 * has a data buffer) where the operator computes on float32: only
 * shape-like inputs such as Reshape's shape are int64. 0 or -1. */
int sm_op_need_float(const sm_tensor *t, const char *input, const char *op,
                     sm_err *err);

/* Refuses an input that is not a constant int64 tensor of rank <= 1 (a shape,
 * pads): its values are needed when the model is planned. 0 or -1. */
int sm_op_need_i64_const(const sm_tensor *t, const char *input, const char *op,
                         sm_err *err);

/* Refuses an optional scalar input (Clip's min, Pad's constant_value) that
 * does not hold exactly one float. t may be NULL (absent). 0 or -1. */
int sm_op_need_scalar(const sm_tensor *t, const char *input, const char *op,
                      sm_err *err);

/* Refuses a negative or zero dim in a computed output shape. 0 or -1. */
int sm_op_check_out_shape(int ndim, const int64_t *shape, const char *op,
                          sm_err *err);

/* Product of shape[from..to). */
int64_t sm_op_prod(const int64_t *shape, int from, int to);

/* --- elementwise loops -------------------------------------------------- */

/* Relu of one value, as the Relu operator computes it and the epilogues
 * that fuse it (Conv, model/plan.c) must: -0 and NaN pass unchanged. */
static inline float sm_op_relu1(float x)
{
    return x < 0 ? 0.0f : x;
}

/* for (i = 0; i < n; i++) BODY, in blocks of 8 with a constant inner trip
 * count: GCC's -O2 vectorises that form (SLP) but not the plain loop, which
 * made Relu 2.5x slower than memory bandwidth allows. The pointers BODY
 * touches should be restrict-qualified (the engine never runs an operator
 * in place), and BODY should be branch-free (ternaries that select, not
 * ones that compute). */
#define SM_OP_FOR(i, n, ...)                                                   \
    do {                                                                       \
        int64_t i##_blk = 0;                                                   \
        const int64_t i##_n = (n);                                             \
        for (; i##_blk + 8 <= i##_n; i##_blk += 8)                             \
            for (int i##_j = 0; i##_j < 8; i##_j++) {                          \
                const int64_t i = i##_blk + i##_j;                             \
                __VA_ARGS__;                                                   \
            }                                                                  \
        for (int64_t i = i##_blk; i < i##_n; i++) {                            \
            __VA_ARGS__;                                                       \
        }                                                                      \
    } while (0)

/* y[i] += x[i] for i in [0, n): how most backward passes accumulate. */
void sm_op_add_to(float *restrict y, const float *restrict x, int64_t n);

/* y[i] = 0 + x[i]: sm_op_add_to onto zeros, bit for bit (-0 becomes +0),
 * without them (op.h backward_fresh). */
void sm_op_write_to(float *restrict y, const float *restrict x, int64_t n);

/* s = sum of EXPR over i in [0, n) (EXPR may use i), in 8 partial float
 * sums: the same blocking as SM_OP_FOR, so that the loop vectorises without
 * -ffast-math, and the rounding error grows with n / 8 rather than n. The
 * backward passes' reductions (bias-like gradients) use it. */
#define SM_OP_SUM(s, i, n, ...)                                                \
    do {                                                                       \
        float i##_p[8] = {0};                                                  \
        int64_t i##_blk = 0;                                                   \
        const int64_t i##_n = (n);                                             \
        for (; i##_blk + 8 <= i##_n; i##_blk += 8)                             \
            for (int i##_j = 0; i##_j < 8; i##_j++) {                          \
                const int64_t i = i##_blk + i##_j;                             \
                i##_p[i##_j] += (__VA_ARGS__);                                 \
            }                                                                  \
        for (int64_t i = i##_blk; i < i##_n; i++)                              \
            i##_p[i - i##_blk] += (__VA_ARGS__);                               \
        (s) = ((i##_p[0] + i##_p[1]) + (i##_p[2] + i##_p[3])) +                \
              ((i##_p[4] + i##_p[5]) + (i##_p[6] + i##_p[7]));                 \
    } while (0)

/* --- broadcasting -------------------------------------------------------- */

/* A walk over the broadcast of a and b to out, one row (a run of `inner`
 * consecutive outputs) at a time: adjacent dims are merged first so that
 * same-shape, scalar and per-channel operands are one or a few long rows.
 * Along a row, a walks with element stride ia (1, or 0: broadcast) from
 * offset oa, b likewise; the row's outputs start at row * inner. Both the
 * forward kernels and the backward's reductions over broadcast dims use it:
 *
 *   sm_op_bcast w;
 *   for (sm_op_bcast_init(&w, a, b, out); w.row < w.rows; sm_op_bcast_next(&w))
 *       ...a->data + w.oa, w.ia, b->data + w.ob, w.ib, w.row * w.inner...  */
typedef struct sm_op_bcast {
    int m;                              /* merged dims, outer to inner */
    int64_t d[SM_MAX_DIMS], sa[SM_MAX_DIMS], sb[SM_MAX_DIMS];
    int64_t idx[SM_MAX_DIMS];           /* odometer over dims [0, m - 1) */
    int64_t rows, inner, ia, ib;
    int64_t row, oa, ob;                /* the current row */
} sm_op_bcast;

void sm_op_bcast_init(sm_op_bcast *w, const sm_tensor *a, const sm_tensor *b,
                      const sm_tensor *out);
void sm_op_bcast_next(sm_op_bcast *w);

/* Elementwise kernel over n elements. sa/sb are 1 (walk the array) or 0 (the
 * operand is the same value throughout: a[0]). */
typedef void (*sm_op_kernel2)(const float *a, int64_t sa, const float *b,
                              int64_t sb, float *out, int64_t n);

/* out = k(a, b) with numpy broadcasting; out's shape must already be the
 * broadcast shape. Adjacent dims are merged first so that same-shape,
 * scalar and per-channel operands cost one or a few long kernel calls. */
void sm_op_broadcast2(const sm_tensor *a, const sm_tensor *b, sm_tensor *out,
                      sm_op_kernel2 k);

#endif
