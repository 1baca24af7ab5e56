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

#define BINARY_OP(id, NAME)                                                    \
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
    const sm_op_class sm_op_##id = {                                           \
        .name = NAME,                                                          \
        .params_size = sizeof(binary_params),                                  \
        .attrs = sm_op_no_attrs,                                               \
        .min_inputs = 2, .max_inputs = 2,                                      \
        .min_outputs = 1, .max_outputs = 1,                                    \
        .parse = sm_op_parse_none,                                             \
        .infer = id##_infer,                                                   \
        .run = id##_run,                                                       \
    };

BINARY_OP(add, "Add")
BINARY_OP(sub, "Sub")
BINARY_OP(mul, "Mul")
BINARY_OP(div, "Div")
