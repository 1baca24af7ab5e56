/* The ONNX reader's tensors and attributes (core/onnx/) against what a
 * hostile file can declare: cases fuzz_onnx found. */
#include <criterion/criterion.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnx/tensorproto_internal.h"

/* A float tensor named "w" with the given dims and no data. */
static int from_dims(int64_t *dims, size_t n_dims, sm_tensor **t, sm_err *err)
{
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.name = "w";
    tp.has_data_type = 1;
    tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tp.n_dims = n_dims;
    tp.dims = dims;
    return sm_tensorproto_to_tensor(&tp, t, err);
}

Test(tensorproto, dims_without_data_are_refused_before_allocating)
{
    sm_tensor *t = NULL;
    sm_err err = {0};
    /* 2^40 floats (4 TiB) declared, none given: refused by the count, not
     * by a failed (or, with overcommit, successful) calloc. */
    int64_t big[1] = {(int64_t)1 << 40};
    cr_assert_eq(from_dims(big, 1, &t, &err), -1);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, "tensor 'w': holds a different number of "
                              "values where its shape [1099511627776] "
                              "needs 1099511627776"), "%s", err.msg);
    /* 2^96 elements wrapped to 0 and matched the empty data. */
    int64_t wrap[3] = {(int64_t)1 << 32, (int64_t)1 << 32, (int64_t)1 << 32};
    cr_assert_eq(from_dims(wrap, 3, &t, &err), -1);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, "the dims of shape [4294967296, 4294967296, "
                              "4294967296] multiply past 2^63"), "%s",
              err.msg);
    /* A zero dim empties the tensor, but the other dims must still
     * multiply within int64: counting it later must not wrap. */
    int64_t wrap0[3] = {(int64_t)1 << 40, (int64_t)1 << 40, 0};
    cr_assert_eq(from_dims(wrap0, 3, &t, &err), -1);
    cr_assert(strstr(err.msg, "multiply past 2^63"), "%s", err.msg);
    int64_t empty[3] = {(int64_t)1 << 20, (int64_t)1 << 20, 0};
    cr_assert_eq(from_dims(empty, 3, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_tensor_numel(t), 0);
    sm_tensor_destroy(&t);
}

Test(tensorproto, empty_attributes)
{
    /* An INTS attribute with no values and an empty STRING have NULL
     * arrays (found by fuzz_onnx as memcpy from NULL under UBSan). */
    Onnx__AttributeProto ints = ONNX__ATTRIBUTE_PROTO__INIT;
    ints.name = "pads";
    ints.has_type = 1;
    ints.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    Onnx__AttributeProto str = ONNX__ATTRIBUTE_PROTO__INIT;
    str.name = "mode";
    str.has_type = 1;
    str.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    str.has_s = 1;
    Onnx__AttributeProto *ats[2] = {&ints, &str};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.n_attribute = 2;
    node.attribute = ats;
    sm_attrs a = {.node = &node, .opset = 13};
    int64_t out[4] = {7, 7, 7, 7};
    int n = -1;
    sm_err err = {0};
    cr_assert_eq(sm_attrs_ints(&a, "pads", out, 4, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 0);
    cr_assert_eq(out[0], 7);
    char mode[16] = "x";
    cr_assert_eq(sm_attrs_string(&a, "mode", "constant", mode, sizeof mode,
                                 &err), 0, "%s", err.msg);
    cr_assert_str_eq(mode, "");
}
