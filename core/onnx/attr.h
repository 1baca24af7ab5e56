/* sm_attrs: typed access to an ONNX node's attributes, for operators' parse().
 * Each getter returns 0 (value or default stored), or -1 with a message that
 * names the attribute when it has the wrong type or too many values. */
#ifndef SM_ATTR_H
#define SM_ATTR_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"
#include "util/err.h"

typedef struct sm_attrs sm_attrs; /* borrowed view of a NodeProto */

/* The opset version of the default domain the model imports. */
int sm_attrs_opset(const sm_attrs *a);

/* 1 when the node carries the attribute. */
int sm_attrs_has(const sm_attrs *a, const char *name);

int sm_attrs_int(const sm_attrs *a, const char *name, int64_t def,
                 int64_t *out, sm_err *err);
int sm_attrs_float(const sm_attrs *a, const char *name, float def,
                   float *out, sm_err *err);
/* Copies at most cap-1 bytes and a NUL; def when absent. */
int sm_attrs_string(const sm_attrs *a, const char *name, const char *def,
                    char *out, size_t cap, sm_err *err);
/* *n = number of values (0 when absent); error when more than cap. */
int sm_attrs_ints(const sm_attrs *a, const char *name, int64_t *out,
                  int cap, int *n, sm_err *err);
/* A TENSOR attribute (Constant's value) as a new owning tensor (float32 into
 * data, int64 into i64). Error when absent or of another element type. */
int sm_attrs_tensor(const sm_attrs *a, const char *name, sm_tensor **out,
                    sm_err *err);

#endif
