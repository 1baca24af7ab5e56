/* Internal to core/onnx and core/model: the protobuf-c types generated at
 * build time from Debian's onnx.proto, and the attribute view's layout. */
#ifndef SM_ONNX_PROTO_H
#define SM_ONNX_PROTO_H

#include "onnx.pb-c.h"
#include "onnx/attr.h"

struct sm_attrs {
    const Onnx__NodeProto *node; /* borrowed */
    int opset;
};

#endif
