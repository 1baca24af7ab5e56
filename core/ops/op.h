/* sm_op: the interface every ONNX operator implements (one file an operator
 * family, one line of core/ops/registry.c each).
 *
 * Lifecycle, driven by the model engine (core/model/):
 *   parse     at load: read the node's attributes into params (p, zeroed,
 *             params_size bytes). Refuse unsupported values with a message.
 *   infer     at planning, once per input shape: set each output's ndim and
 *             shape from the inputs'. in[i] is NULL for an absent optional
 *             input; in[i]->data (or ->i64) is non-NULL only when that input
 *             is a constant (initializer or Constant). Refuse shapes that do
 *             not fit, with a message.
 *   workspace at planning: scratch floats run() needs (may be NULL: none).
 *   run       at every evaluation: compute outputs from inputs. Cannot fail:
 *             everything that can go wrong was refused by parse and infer.
 *   fold      optional: at planning, when every input is a constant, the
 *             engine calls run() once and keeps the result as a constant
 *             (Constant, and shape arithmetic on initializers). */
#ifndef SM_OP_H
#define SM_OP_H

#include <stddef.h>
#include <stdint.h>

#include "onnx/attr.h"
#include "tensor/tensor.h"
#include "util/err.h"

typedef struct sm_op_class {
    const char *name;          /* ONNX op_type, default domain */
    size_t params_size;
    const char *const *attrs;  /* NULL-terminated names parse() understands */
    int min_inputs, max_inputs;
    int min_outputs, max_outputs;
    int (*parse)(void *p, const sm_attrs *a, sm_err *err);
    int (*infer)(const void *p, const sm_tensor *const *in, int n_in,
                 sm_tensor *const *out, int n_out, sm_err *err);
    size_t (*workspace)(const void *p, const sm_tensor *const *in, int n_in,
                        const sm_tensor *const *out, int n_out);
    void (*run)(const void *p, const sm_tensor *const *in, int n_in,
                sm_tensor *const *out, int n_out, float *ws);
    /* Frees what parse() allocated inside p (may be NULL). */
    void (*release)(void *p);
    /* Backward, the vector-Jacobian product (NULL: the operator has none
     * yet, and gradients cannot pass through it). in/out are the forward
     * run's values (still valid); gout[k] is the gradient of the loss with
     * respect to output k, or NULL (zero). For each input i, gin[i] is NULL
     * when that gradient is not wanted (int64 inputs, untrained constants),
     * otherwise a buffer of in[i]'s shape to ADD the gradient to: the engine
     * zeroes it first, and several readers of one value each add theirs.
     * Weight gradients (Conv, Gemm, MatMul, BatchNormalization) are gin[1..]
     * like any other. ws: bwd_workspace() floats. Cannot fail. */
    void (*backward)(const void *p, const sm_tensor *const *in, int n_in,
                     const sm_tensor *const *out, int n_out,
                     const sm_tensor *const *gout, sm_tensor *const *gin,
                     float *ws);
    size_t (*bwd_workspace)(const void *p, const sm_tensor *const *in,
                            int n_in, const sm_tensor *const *out, int n_out);
    /* Optional, as pack and run_packed for the backward pass: constant
     * inputs laid out once for it (bwd_pack_size floats, 0: nothing),
     * asked when a backward first meets the node (never for a model that
     * only runs forward), then backward_packed in place of backward, with
     * its very bits. Independent of the batch, as pack. */
    size_t (*bwd_pack_size)(const void *p, const sm_tensor *const *in,
                            int n_in, const sm_tensor *const *out, int n_out);
    void (*bwd_pack)(const void *p, const sm_tensor *const *in, int n_in,
                     const sm_tensor *const *out, int n_out, float *packed);
    void (*backward_packed)(const void *p, const float *packed,
                            const sm_tensor *const *in, int n_in,
                            const sm_tensor *const *out, int n_out,
                            const sm_tensor *const *gout,
                            sm_tensor *const *gin, float *ws);
    /* Optional, in place of backward and backward_packed (packed: NULL
     * or not, as they are called): the same, told in `fresh` which input
     * gradients this node is the first of the sweep to write. For each
     * bit k of fresh (only bits of bwd_fresh_inputs, and only when
     * gout[0] is given), gin[k] was not zeroed: it must be written whole, each element as 0 + its gradient
     * (so that -0 becomes +0, the bits of adding onto zeros), before any
     * other gin is added to (one value may be two inputs). That saves
     * the engine a pass over the buffer and the operator a read of it. */
    void (*backward_fresh)(const void *p, const float *packed,
                           const sm_tensor *const *in, int n_in,
                           const sm_tensor *const *out, int n_out,
                           const sm_tensor *const *gout,
                           sm_tensor *const *gin, unsigned fresh, float *ws);
    unsigned bwd_fresh_inputs; /* bit k: backward_fresh writes gin[k] */
    /* Floating point operations of one run (multiply-add = 2); NULL for
     * operators whose cost is negligible next to Conv/Gemm/MatMul. */
    double (*flops)(const void *p, const sm_tensor *const *in, int n_in,
                    const sm_tensor *const *out, int n_out);
    /* Optional: constant inputs laid out once for the kernel (a layer's
     * weights packed for its GEMM) instead of at every run. When every
     * input but the first is a constant, the engine asks pack_size at
     * planning (floats; 0: nothing to pack), calls pack once into a buffer
     * it keeps until the constants change, and then runs the node with
     * run_packed, which must compute the very bits run does. Both may
     * read the shapes of in[0] and out but must not depend on the batch
     * (the first dim): one packing serves every batch size. */
    size_t (*pack_size)(const void *p, const sm_tensor *const *in, int n_in,
                        const sm_tensor *const *out, int n_out);
    void (*pack)(const void *p, const sm_tensor *const *in, int n_in,
                 const sm_tensor *const *out, int n_out, float *packed);
    void (*run_packed)(const void *p, const float *packed,
                       const sm_tensor *const *in, int n_in,
                       sm_tensor *const *out, int n_out, float *ws);
    /* Optional: run (packed NULL) or run_packed (the node's packing), that
     * also writes the Relu of out[0] into relu (of out[0]'s shape) in the
     * same pass, the very bits the Relu operator computes from out[0]
     * (sm_op_relu1). At planning the engine fuses a Relu that reads
     * out[0] into its producer this way and no longer runs the Relu node
     * (model/plan.c): one pass less over a large activation. out[0] is
     * written as before, for the other readers, backward and relevance. */
    void (*run_relu)(const void *p, const float *packed,
                     const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, sm_tensor *relu,
                     float *ws);
    /* Optional: part `part` of `parts` of run, run_packed (packed not
     * NULL) or run_relu (relu not NULL), so that a run whose batch is too
     * small to split by images can split a large node over the model's
     * threads instead (model/run.c). The parts run at the same time, each
     * with its own ws (workspace() floats); together they write every
     * output element once, with the very bits of run. */
    void (*run_part)(const void *p, const float *packed,
                     const sm_tensor *const *in, int n_in,
                     sm_tensor *const *out, int n_out, sm_tensor *relu,
                     float *ws, int part, int parts);
    /* With run_part: whether run_part shares this node's work out at all
     * (1), asked at planning; 0 runs it whole. */
    int (*split)(const void *p, const sm_tensor *const *in, int n_in,
                 const sm_tensor *const *out, int n_out);
} sm_op_class;

/* Every operator class is a const object named sm_op_<name> defined in its
 * own file and listed once in core/ops/registry.c. */

/* The operator class for op_type, or NULL when salmap does not support it. */
const sm_op_class *sm_op_find(const char *op_type);

/* NULL-terminated list of every supported operator (docs, tests). */
const sm_op_class *const *sm_op_all(void);

/* Helpers shared by the operators. */

/* Normalises an axis in [-rank, rank) to [0, rank); -1 if out of range. */
int sm_op_axis(int64_t axis, int rank);

/* Sets out's shape to the given shape. */
void sm_op_set_shape(sm_tensor *out, int ndim, const int64_t *shape);

#endif
