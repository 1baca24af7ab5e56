/* sm_onnx_writer: builds an ONNX ModelProto and serializes it. The trainer
 * saves its models with it; tests build small models with it.
 *
 *   sm_onnx_writer *w = sm_onnx_writer_new(13);
 *   sm_onnx_writer_input(w, "x", 2, (int64_t[]){-1, 4});   // -1: symbolic "N"
 *   sm_onnx_writer_initializer(w, "w", wt);                 // copied
 *   sm_onnx_writer_node(w, "Gemm", "fc", (const char*[]){"x","w"}, 2,
 *                       (const char*[]){"y"}, 1);
 *   sm_onnx_writer_attr_int(w, "transB", 1);                // on the last node
 *   sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, 3});
 *   sm_onnx_writer_save(w, "m.onnx", &err);
 *   sm_onnx_writer_destroy(&w);
 *
 * Building calls return 0, or -1 on out of memory (or an attribute with no
 * node before it); the writer then refuses to save. */
#ifndef SM_ONNX_WRITER_H
#define SM_ONNX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"
#include "util/err.h"

typedef struct sm_onnx_writer sm_onnx_writer;

sm_onnx_writer *sm_onnx_writer_new(int opset);
void sm_onnx_writer_destroy(sm_onnx_writer **w);

int sm_onnx_writer_input(sm_onnx_writer *w, const char *name, int ndim,
                         const int64_t *shape);
int sm_onnx_writer_output(sm_onnx_writer *w, const char *name, int ndim,
                          const int64_t *shape);
/* Copies t (float32 data, or int64 when t->i64 is set). */
int sm_onnx_writer_initializer(sm_onnx_writer *w, const char *name,
                               const sm_tensor *t);
/* Empty input names ("") mark absent optional inputs. */
int sm_onnx_writer_node(sm_onnx_writer *w, const char *op_type,
                        const char *name, const char *const *inputs, int n_in,
                        const char *const *outputs, int n_out);
int sm_onnx_writer_attr_int(sm_onnx_writer *w, const char *name, int64_t v);
int sm_onnx_writer_attr_float(sm_onnx_writer *w, const char *name, float v);
int sm_onnx_writer_attr_ints(sm_onnx_writer *w, const char *name,
                             const int64_t *v, int n);
int sm_onnx_writer_attr_string(sm_onnx_writer *w, const char *name,
                               const char *v);
int sm_onnx_writer_attr_tensor(sm_onnx_writer *w, const char *name,
                               const sm_tensor *t);

/* The serialized model in a new buffer (caller frees); NULL on failure. */
unsigned char *sm_onnx_writer_serialize(sm_onnx_writer *w, size_t *len,
                                        sm_err *err);
/* Writes the model atomically. 0 or -1. */
int sm_onnx_writer_save(sm_onnx_writer *w, const char *path, sm_err *err);

#endif
