/* Internal: TensorProto -> sm_tensor for the loader and attribute parser. */
#ifndef SM_TENSORPROTO_INTERNAL_H
#define SM_TENSORPROTO_INTERNAL_H

#include "onnx/proto.h"
#include "tensor/tensor.h"
#include "util/err.h"

/* A new owning tensor from tp; -1 with a message on an unsupported element
 * type, external data, or a payload whose size does not match the dims. */
int sm_tensorproto_to_tensor(const Onnx__TensorProto *tp, sm_tensor **out,
                             sm_err *err);

#endif
