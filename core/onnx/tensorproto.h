/* Conversion of ONNX TensorProto messages (initializers, Constant values,
 * the node tests' input_N.pb / output_N.pb files) to sm_tensor. Only float32
 * (into data) and int64 (into i64) are accepted; anything else is refused
 * with a message naming the tensor and its element type. */
#ifndef SM_TENSORPROTO_H
#define SM_TENSORPROTO_H

#include <stddef.h>

#include "tensor/tensor.h"
#include "util/err.h"

/* Reads a serialized TensorProto file. On success *out is a new owning tensor
 * and, when name is not NULL, the tensor's name is copied there (cap bytes). */
int sm_tensorproto_read_file(const char *path, sm_tensor **out, char *name,
                             size_t cap, sm_err *err);

/* The ONNX element type's name ("FLOAT", "UINT8", ...) for messages. */
const char *sm_tensorproto_type_name(int data_type);

#endif
