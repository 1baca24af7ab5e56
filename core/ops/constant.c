/* Constant: its value from exactly one of the attributes value (a float32
 * or int64 tensor), value_float, value_int, value_ints.
 * Integer values become an int64 constant (for Reshape's shape, Pad's pads):
 * infer() points the output's i64 at the value, which lives as long as the
 * node. Float values are copied into the output buffer by run(), which the
 * engine calls once at planning to fold the node. */
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "ops/op_util.h"

typedef struct constant_params {
    sm_tensor *value; /* owned */
} constant_params;

static const char *const constant_attrs[] = {"value", "value_float",
                                             "value_int", "value_ints", NULL};

/* value_ints holds shapes and the like: a small bound is enough. */
#define CONSTANT_MAX_INTS 64

/* A new owning 0-D (scalar) or 1-D tensor of n values, float or int64. */
static sm_tensor *make(int scalar, int64_t n, int is_float)
{
    sm_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ndim = scalar ? 0 : 1;
    t->shape[0] = n;
    t->owns = 1;
    void *v = calloc((size_t)(n ? n : 1), is_float ? sizeof(float)
                                                   : sizeof(int64_t));
    if (!v) {
        free(t);
        return NULL;
    }
    if (is_float)
        t->data = v;
    else
        t->i64 = v;
    return t;
}

static int constant_parse(void *p_, const sm_attrs *a, sm_err *err)
{
    constant_params *p = p_;
    int set = 0;
    for (int i = 0; constant_attrs[i]; i++)
        set += sm_attrs_has(a, constant_attrs[i]);
    if (set != 1)
        return sm_err_set(err, "Constant needs exactly one of the attributes "
                          "value, value_float, value_int, value_ints (has %d; "
                          "value_floats, sparse and string values are not "
                          "supported)", set);
    if (sm_attrs_has(a, "value"))
        return sm_attrs_tensor(a, "value", &p->value, err);
    if (sm_attrs_has(a, "value_float")) {
        if (!(p->value = make(1, 1, 1)))
            return sm_err_set(err, "Constant: out of memory");
        return sm_attrs_float(a, "value_float", 0, p->value->data, err);
    }
    if (sm_attrs_has(a, "value_int")) {
        if (!(p->value = make(1, 1, 0)))
            return sm_err_set(err, "Constant: out of memory");
        return sm_attrs_int(a, "value_int", 0, p->value->i64, err);
    }
    int64_t v[CONSTANT_MAX_INTS];
    int n;
    if (sm_attrs_ints(a, "value_ints", v, CONSTANT_MAX_INTS, &n, err))
        return -1;
    if (!(p->value = make(0, n, 0)))
        return sm_err_set(err, "Constant: out of memory");
    if (n)
        memcpy(p->value->i64, v, (size_t)n * sizeof *v);
    return 0;
}

static void constant_release(void *p_)
{
    constant_params *p = p_;
    sm_tensor_destroy(&p->value);
}

static int constant_infer(const void *p_, const sm_tensor *const *in, int n_in,
                          sm_tensor *const *out, int n_out, sm_err *err)
{
    const constant_params *p = p_;
    (void)in;
    (void)n_in;
    (void)n_out;
    (void)err;
    sm_op_set_shape(out[0], p->value->ndim, p->value->shape);
    if (p->value->i64)
        out[0]->i64 = p->value->i64; /* borrowed: see the header comment */
    return 0;
}

static void constant_run(const void *p_, const sm_tensor *const *in, int n_in,
                         sm_tensor *const *out, int n_out, float *ws)
{
    const constant_params *p = p_;
    const sm_tensor *v = p->value;
    size_t n = (size_t)sm_tensor_numel(v);
    (void)in;
    (void)n_in;
    (void)n_out;
    (void)ws;
    if (v->data && out[0]->data && n)
        memcpy(out[0]->data, v->data, n * sizeof(float));
    else if (v->i64 && out[0]->i64 && out[0]->i64 != v->i64 && n)
        memcpy(out[0]->i64, v->i64, n * sizeof(int64_t));
}

/* No inputs, so no gradient to pass on; defined so that the engine need not
 * special-case the operator. */
static void constant_backward(const void *p, const sm_tensor *const *in,
                              int n_in, const sm_tensor *const *out,
                              int n_out, const sm_tensor *const *gout,
                              sm_tensor *const *gin, float *ws)
{
    (void)p;
    (void)in;
    (void)n_in;
    (void)out;
    (void)n_out;
    (void)gout;
    (void)gin;
    (void)ws;
}

const sm_op_class sm_op_constant = {
    .name = "Constant",
    .params_size = sizeof(constant_params),
    .attrs = constant_attrs,
    .min_inputs = 0, .max_inputs = 0,
    .min_outputs = 1, .max_outputs = 1,
    .parse = constant_parse,
    .infer = constant_infer,
    .run = constant_run,
    .backward = constant_backward,
    .release = constant_release,
};
