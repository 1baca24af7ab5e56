/* Add, Sub, Mul, Div: elementwise with numpy (multidirectional) broadcasting.
 * Opset 7+ semantics; the legacy broadcast/axis attributes of opset < 7 are
 * not accepted (the engine refuses unknown attributes). */
#include "ops/op.h"
#include "ops/op_util.h"

typedef struct binary_params {
    int unused;
} binary_params;

static int binary_infer(const char *op, const sm_tensor *const *in,
                        sm_tensor *const *out, sm_err *err)
{
    char sa[256], sb[256];
    if (sm_op_need_float(in[0], "A", op, err) ||
        sm_op_need_float(in[1], "B", op, err))
        return -1;
    int n;
    int64_t shape[SM_MAX_DIMS];
    if (sm_shape_broadcast(in[0]->ndim, in[0]->shape, in[1]->ndim,
                           in[1]->shape, &n, shape))
        return sm_err_set(
            err, "inputs 'A' %s and 'B' %s of %s do not broadcast",
            sm_shape_str(in[0]->ndim, in[0]->shape, sa, sizeof sa),
            sm_shape_str(in[1]->ndim, in[1]->shape, sb, sizeof sb), op);
    sm_op_set_shape(out[0], n, shape);
    return 0;
}

/* One kernel per operator, with the three stride cases as separate loops so
 * that each vectorises. */
#define BINARY_KERNEL(name, EXPR)                                              \
    static void name(const float *restrict a, int64_t sa,                      \
                     const float *restrict b, int64_t sb, float *restrict o,   \
                     int64_t n)                                                \
    {                                                                          \
        if (sa && sb) {                                                        \
            SM_OP_FOR(i, n, const float x = a[i]; const float y = b[i];        \
                      o[i] = EXPR);                                            \
        } else if (sa) {                                                       \
            const float y = b[0];                                              \
            SM_OP_FOR(i, n, const float x = a[i]; o[i] = EXPR);                \
        } else if (sb) {                                                       \
            const float x = a[0];                                              \
            SM_OP_FOR(i, n, const float y = b[i]; o[i] = EXPR);                \
        } else {                                                               \
            const float x = a[0], y = b[0];                                    \
            SM_OP_FOR(i, n, o[i] = EXPR);                                      \
        }                                                                      \
    }

BINARY_KERNEL(add_kernel, x + y)
BINARY_KERNEL(sub_kernel, x - y)
BINARY_KERNEL(mul_kernel, x * y)
BINARY_KERNEL(div_kernel, x / y)

/* --- backward ------------------------------------------------------------
 * The gradient to an operand is the elementwise partial derivative times
 * gout, summed over the dims along which that operand was broadcast. One
 * kernel per (operator, operand): DERIV(g, x, y) is g times the partial
 * derivative with respect to that operand at a = x, b = y. Along a row the
 * target t walks (st = 1: add elementwise) or stays put (st = 0: add the
 * row's sum), with a and b walking or not: eight loops, each vectorised. */
#define GRAD_LOOPS(DERIV, X, Y)                                                \
    do {                                                                       \
        if (st) {                                                              \
            SM_OP_FOR(i, n, t[i] += DERIV(g[i], X, Y));                        \
        } else {                                                               \
            float s_;                                                          \
            SM_OP_SUM(s_, i, n, DERIV(g[i], X, Y));                            \
            t[0] += s_;                                                        \
        }                                                                      \
    } while (0)

#define GRAD_KERNEL(name, DERIV)                                               \
    static void name(const float *restrict g, const float *restrict a,         \
                     int64_t sa, const float *restrict b, int64_t sb,          \
                     float *restrict t, int64_t st, int64_t n)                 \
    {                                                                          \
        (void)a; /* Add and Sub need neither operand */                        \
        (void)b;                                                               \
        if (sa && sb)                                                          \
            GRAD_LOOPS(DERIV, a[i], b[i]);                                     \
        else if (sa)                                                           \
            GRAD_LOOPS(DERIV, a[i], b[0]);                                     \
        else if (sb)                                                           \
            GRAD_LOOPS(DERIV, a[0], b[i]);                                     \
        else                                                                   \
            GRAD_LOOPS(DERIV, a[0], b[0]);                                     \
    }

typedef void (*grad_kernel)(const float *g, const float *a, int64_t sa,
                            const float *b, int64_t sb, float *t, int64_t st,
                            int64_t n);

#define D_ONE(g, x, y) (g)
#define D_NEG(g, x, y) (-(g))
#define D_MUL_A(g, x, y) ((g) * (y))
#define D_MUL_B(g, x, y) ((g) * (x))
#define D_DIV_A(g, x, y) ((g) / (y))
#define D_DIV_B(g, x, y) (-(g) * (x) / ((y) * (y)))

GRAD_KERNEL(grad_one, D_ONE)
GRAD_KERNEL(grad_neg, D_NEG)
GRAD_KERNEL(grad_mul_a, D_MUL_A)
GRAD_KERNEL(grad_mul_b, D_MUL_B)
GRAD_KERNEL(grad_div_a, D_DIV_A)
GRAD_KERNEL(grad_div_b, D_DIV_B)

/* Adds the gradients of the wanted operands: one walk over the broadcast
 * per operand, with that operand's strides for its gradient. */
static void binary_backward(const sm_tensor *const *in,
                            const sm_tensor *const *out,
                            const sm_tensor *const *gout,
                            sm_tensor *const *gin, grad_kernel ka,
                            grad_kernel kb)
{
    if (!gout[0])
        return;
    const sm_tensor *a = in[0], *b = in[1];
    for (int k = 0; k < 2; k++) {
        if (!gin[k])
            continue;
        sm_op_bcast w;
        for (sm_op_bcast_init(&w, a, b, out[0]); w.row < w.rows;
             sm_op_bcast_next(&w))
            (k ? kb : ka)(gout[0]->data + w.row * w.inner, a->data + w.oa,
                          w.ia, b->data + w.ob, w.ib,
                          gin[k]->data + (k ? w.ob : w.oa), k ? w.ib : w.ia,
                          w.inner);
    }
}

#define BINARY_OP(id, NAME, KA, KB)                                                    \
    static int id##_infer(const void *p, const sm_tensor *const *in,           \
                          int n_in, sm_tensor *const *out, int n_out,          \
                          sm_err *err)                                         \
    {                                                                          \
        (void)p;                                                               \
        (void)n_in;                                                            \
        (void)n_out;                                                           \
        return binary_infer(NAME, in, out, err);                               \
    }                                                                          \
    static void id##_run(const void *p, const sm_tensor *const *in, int n_in,  \
                         sm_tensor *const *out, int n_out, float *ws)          \
    {                                                                          \
        (void)p;                                                               \
        (void)n_in;                                                            \
        (void)n_out;                                                           \
        (void)ws;                                                              \
        sm_op_broadcast2(in[0], in[1], out[0], id##_kernel);                   \
    }                                                                          \
    static void id##_backward(const void *p, const sm_tensor *const *in,       \
                              int n_in, const sm_tensor *const *out,           \
                              int n_out, const sm_tensor *const *gout,         \
                              sm_tensor *const *gin, float *ws)                \
    {                                                                          \
        (void)p;                                                               \
        (void)n_in;                                                            \
        (void)n_out;                                                           \
        (void)ws;                                                              \
        binary_backward(in, out, gout, gin, KA, KB);                           \
    }                                                                          \
    const sm_op_class sm_op_##id = {                                           \
        .name = NAME,                                                          \
        .params_size = sizeof(binary_params),                                  \
        .attrs = sm_op_no_attrs,                                               \
        .min_inputs = 2, .max_inputs = 2,                                      \
        .min_outputs = 1, .max_outputs = 1,                                    \
        .parse = sm_op_parse_none,                                             \
        .infer = id##_infer,                                                   \
        .run = id##_run,                                                       \
        .backward = id##_backward,                                             \
    };

BINARY_OP(add, "Add", grad_one, grad_one)
BINARY_OP(sub, "Sub", grad_one, grad_neg)
BINARY_OP(mul, "Mul", grad_mul_a, grad_mul_b)
BINARY_OP(div, "Div", grad_div_a, grad_div_b)
