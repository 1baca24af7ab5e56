#include "onnx/tensorproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/tensorproto_internal.h"
#include "util/file.h"

const char *sm_tensorproto_type_name(int t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
        "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
        "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    if (t >= 0 && t < (int)(sizeof names / sizeof names[0]))
        return names[t];
    return "unknown";
}

int sm_tensorproto_to_tensor(const Onnx__TensorProto *tp, sm_tensor **out,
                             sm_err *err)
{
    const char *name = tp->name ? tp->name : "";
    int dt = tp->has_data_type ? tp->data_type : 0;
    if (dt != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
        dt != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return sm_err_set(err, "tensor '%s': element type %s is not supported "
                          "(salmap computes in float32; int64 only for shapes)",
                          name, sm_tensorproto_type_name(dt));
    if (tp->n_external_data)
        return sm_err_set(err, "tensor '%s': external data files are not "
                          "supported; save the model with its weights inside",
                          name);
    if (tp->n_dims > SM_MAX_DIMS)
        return sm_err_set(err, "tensor '%s': %zu dimensions (at most %d)",
                          name, tp->n_dims, SM_MAX_DIMS);
    for (size_t i = 0; i < tp->n_dims; i++)
        if (tp->dims[i] < 0)
            return sm_err_set(err, "tensor '%s': negative dimension %lld",
                              name, (long long)tp->dims[i]);
    size_t esz = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? 4 : 8;
    size_t have;
    const void *src;
    if (tp->has_raw_data && tp->raw_data.len) {
        have = tp->raw_data.len / esz;
        src = tp->raw_data.data;
        if (tp->raw_data.len % esz)
            have = (size_t)-1;
    } else if (esz == 4) {
        have = tp->n_float_data;
        src = tp->float_data;
    } else {
        have = tp->n_int64_data;
        src = tp->int64_data;
    }
    /* The shape is checked against the data before anything is allocated
     * (dims alone can ask for terabytes), and counted without wrapping. */
    char sh[160];
    sm_shape_str((int)tp->n_dims, tp->dims, sh, sizeof sh);
    /* The non-zero dims must multiply within int64 even when a zero dim
     * empties the tensor, so that any later count of it cannot wrap. */
    int64_t n = 1, nonzero = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] == 0) {
            n = 0;
            continue;
        }
        if (nonzero > INT64_MAX / tp->dims[i])
            return sm_err_set(err, "tensor '%s': the dims of shape %s "
                              "multiply past 2^63", name, sh);
        nonzero *= tp->dims[i];
    }
    if (n)
        n = nonzero;
    if (have != (size_t)n)
        return sm_err_set(err, "tensor '%s': holds %s values where its shape "
                          "%s needs %lld (truncated or corrupt)", name,
                          have == (size_t)-1 ? "a partial number of" : "a different number of",
                          sh, (long long)n);
    sm_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return sm_err_set(err, "tensor '%s': out of memory", name);
    t->ndim = (int)tp->n_dims;
    if (tp->n_dims) /* a scalar's dims may be NULL */
        memcpy(t->shape, tp->dims, tp->n_dims * sizeof(int64_t));
    t->owns = 1;
    void *dst = calloc((size_t)(n ? n : 1), esz);
    if (!dst) {
        free(t);
        return sm_err_set(err, "tensor '%s': out of memory (%lld elements)",
                          name, (long long)n);
    }
    if (esz == 4)
        t->data = dst;
    else
        t->i64 = dst;
    if (n)
        memcpy(dst, src, (size_t)n * esz); /* ONNX raw data is little-endian, as is this host */
    *out = t;
    return 0;
}

int sm_tensorproto_read_file(const char *path, sm_tensor **out, char *name,
                             size_t cap, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_file_read(path, SM_FILE_MAX_MODEL, &len, err);
    if (!buf)
        return -1;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp)
        return sm_err_set(err, "%s: not a serialized ONNX TensorProto", path);
    int rc = sm_tensorproto_to_tensor(tp, out, err);
    if (rc == 0 && name)
        snprintf(name, cap, "%s", tp->name ? tp->name : "");
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (rc)
        sm_err_prefix(err, "%s", path);
    return rc;
}
