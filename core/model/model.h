/* sm_model: an ONNX image classifier (or any graph of supported operators),
 * loaded once and evaluated in batches.
 *
 * Loading parses the protobuf, checks every node against the supported
 * operator set (naming the op and node otherwise), loads the initializers
 * once, sorts the graph and shape-checks it for the declared input shape.
 * Running plans buffers once per set of input shapes (batch size) and reuses
 * them on every later run of that shape.
 *
 * Ownership: the model owns its weights and planned buffers. Outputs returned
 * by sm_model_run / sm_model_forward are borrowed and stay valid until the
 * next run of the same model or its destruction. A model is not thread-safe:
 * one model per thread. */
#ifndef SM_MODEL_H
#define SM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"
#include "util/err.h"

typedef struct sm_model sm_model;

/* Loads an ONNX file. NULL with a message naming the file on failure. */
sm_model *sm_model_load_file(const char *path, sm_err *err);

/* Loads a serialized ModelProto; origin names it in messages. */
sm_model *sm_model_load_buffer(const void *buf, size_t len, const char *origin,
                               sm_err *err);

void sm_model_destroy(sm_model **m);

/* Graph inputs that are not initializers, in declaration order. */
int sm_model_n_inputs(const sm_model *m);
const char *sm_model_input_name(const sm_model *m, int i);
/* Declared shape of input i into shape (SM_MAX_DIMS); symbolic or unknown
 * dims are -1. Returns the rank. */
int sm_model_input_shape(const sm_model *m, int i, int64_t *shape);

int sm_model_n_outputs(const sm_model *m);
/* Nodes left to evaluate after load-time folding (BatchNormalization into
 * Conv). */
int sm_model_n_nodes(const sm_model *m);
const char *sm_model_output_name(const sm_model *m, int i);
/* Index of the output or input named name, or -1. */
int sm_model_output_index(const sm_model *m, const char *name);
int sm_model_input_index(const sm_model *m, const char *name);

/* Fixes graph input `name` to a constant value (an int64 shape, say) before
 * any run; it is then no longer counted among the inputs. 0 or -1. */
int sm_model_set_constant(sm_model *m, const char *name, const sm_tensor *value,
                          sm_err *err);

/* Evaluates the graph. inputs: one tensor per input, in order (n_inputs must
 * equal sm_model_n_inputs). outputs: an array of sm_model_n_outputs borrowed
 * pointers, filled in. 0, or -1 with a message when the shapes do not fit. */
int sm_model_run(sm_model *m, const sm_tensor *const *inputs, int n_inputs,
                 const sm_tensor **outputs, sm_err *err);

/* sm_model_run for callers that want only the outputs (scores, labels,
 * predictions): the same bits, but nothing is kept to go back through, so
 * sm_model_backward, sm_model_relevance and sm_model_activation fail
 * after it until the next sm_model_run. A batch whose activations would
 * not stay in the cache runs as chunks of images, each through the whole
 * graph, split over the model's threads as sm_model_run splits batches
 * (run.c, SM_INFER_CHUNK_BYTES). 0, or -1 with a message. */
int sm_model_infer(sm_model *m, const sm_tensor *const *inputs, int n_inputs,
                   const sm_tensor **outputs, sm_err *err);

/* The activations, in bytes, one lane's chunk of sm_model_infer may hold
 * (a chunk is at least one image); 0 restores the default. Measured in
 * docs/PERFORMANCE.md ("Forward-only runs in chunks"). */
#define SM_INFER_CHUNK_BYTES ((size_t)2 << 20)
void sm_model_set_infer_bytes(sm_model *m, size_t bytes);

/* Rows a run that is to go back (sm_model_run, then sm_model_backward)
 * should hold: the gradient methods run larger batches in runs of this
 * many (explain/gradient.c), which changes no bit (every operator
 * computes each image on its own). A model whose forward does fewer than
 * SM_BACKWARD_CHUNK_INTENSITY FLOPs a byte of its activations and their
 * gradients is bound by memory once a batch leaves the cache: its runs
 * keep each lane's share within SM_BACKWARD_CHUNK_BYTES, at least 2 rows
 * a lane (a run splits over the threads from there). Other models run
 * whole batches (in chunks they measured no faster on one thread, and
 * slower on two). inputs as sm_model_run's; the whole batch when they
 * are not batches of images. It plans a one-image run, which may drop
 * an older plan: ask before a run, never between a run and its
 * backward. >= 1, or -1 with a message. Measured in docs/PERFORMANCE.md. */
#define SM_BACKWARD_CHUNK_BYTES ((size_t)2 << 20)
#define SM_BACKWARD_CHUNK_INTENSITY 5.0
int64_t sm_model_backward_rows(sm_model *m, const sm_tensor *const *inputs,
                               int n_inputs, sm_err *err);

/* Backward through the last sm_model_run (or sm_model_forward) of this
 * model: the gradients of L = sum(seed * output[out]) with respect to every
 * graph input, i.e. the vector-Jacobian product with seed (shaped like that
 * output; for a saliency gradient, one-hot rows at the target class).
 * grads: an array of sm_model_n_inputs borrowed pointers, filled in, valid
 * until the next run or backward. Weights given as graph inputs rather than
 * initializers get their gradients this way too. Uses the same threads and
 * planned buffers as the run. 0, or -1 with a message (no run before, seed
 * of the wrong shape, an operator without a backward on the path). */
int sm_model_backward(sm_model *m, int out, const sm_tensor *seed,
                      const sm_tensor **grads, sm_err *err);

/* Intermediate values (Grad-CAM's feature maps). The activation of the
 * value named name in the last run, and its gradient in the last backward;
 * joined over the threads when the batch was split. Borrowed until the next
 * run, backward or activation call. NULL with a message when there is no
 * such value, no run (backward) before, or the gradient did not reach it. */
const sm_tensor *sm_model_activation(sm_model *m, const char *name,
                                     sm_err *err);
const sm_tensor *sm_model_activation_grad(sm_model *m, const char *name,
                                          sm_err *err);
/* The last value of rank 4 (N x C x H x W) that a node computes in the last
 * run: a CNN's last convolutional block output. NULL when there is none or
 * no run before. */
const char *sm_model_last_spatial(const sm_model *m);

/* Training. With trainable on, every float initializer (the weights) is a
 * parameter: sm_model_backward then also leaves the gradient of its loss
 * with respect to each parameter, summed over the batch, in
 * sm_model_param_grad; the optimizer changes the weights in place through
 * sm_model_param between runs. BatchNormalization folded into a Conv at
 * load is trained in its folded form. Turning it on or off drops the
 * planned buffers. */
void sm_model_set_trainable(sm_model *m, int on);
int sm_model_n_params(const sm_model *m);
const char *sm_model_param_name(const sm_model *m, int i);
sm_tensor *sm_model_param(sm_model *m, int i);
const sm_tensor *sm_model_param_grad(const sm_model *m, int i);
/* The node that reads parameter i, the last in evaluation order when
 * several do (layer-wise edits: the sanity check): its position in that
 * order (0..sm_model_n_nodes - 1); its name, op type (borrowed) and the
 * input the parameter fills into *node, *op and *slot (each may be NULL).
 * -1 when i is not a parameter or no node reads it. */
int sm_model_param_reader(const sm_model *m, int i, const char **node,
                          const char **op, int *slot);

/* Classifier convenience: runs the single input on a batch of n images laid
 * out as the declared input shape with its first dim replaced by n, and
 * returns output 0 (borrowed; N x K). NULL with a message on failure. */
const sm_tensor *sm_model_forward(sm_model *m, const float *x, int64_t n,
                                  sm_err *err);
/* The same by sm_model_infer: output 0 only, nothing kept for backward. */
const sm_tensor *sm_model_forward_infer(sm_model *m, const float *x, int64_t n,
                                        sm_err *err);

/* Threads a run may use (1 by default, at most SM_MODEL_MAX_THREADS). With
 * more than one, a batch is split into that many slices evaluated in
 * parallel, each with its own planned buffers, and the outputs joined; this
 * applies to models whose inputs declare a symbolic first (batch) dim, which
 * are taken to treat their images independently. An image's results are
 * the same bits however its batch is split or made up: every operator
 * computes each image on its own, in a fixed order (ops/sgemm.h,
 * docs/EXPLAIN.md). Pair it with a single-threaded BLAS
 * (openblas_set_num_threads(1); training's weight gradients use it):
 * docs/PERFORMANCE.md. */
#define SM_MODEL_MAX_THREADS 16
void sm_model_set_threads(sm_model *m, int threads);

/* The threads a run may use: sm_model_set_threads's, after its clamping.
 * Methods with per-image work of their own share a batch as widely. */
int sm_model_threads(const sm_model *m);

/* Number of floating point operations (multiply-adds count 2) one run of the
 * last planned input shape costs: the benchmark's floor. 0 before a run. */
double sm_model_flops(const sm_model *m);

/* --- Layer-wise relevance propagation (core/model/relevance.c) ---------- */

/* The rule a weighted layer (Conv, Gemm, MatMul) propagates relevance with.
 * z_ij = x_i w_ij, z_j = sum_i z_ij + b_j; stab(z) = z + e sign(z) with
 * sign(0) = +1; x+ / x- and w+ / w- the positive / negative parts. */
typedef enum sm_lrp_rule {
    SM_LRP_EPSILON,    /* R_i = x_i sum_j w_ij R_j / stab_eps(z_j) */
    SM_LRP_ZPLUS,      /* z+ without bias (Zennit ZPlus, bias zeroed):
                          z_j = sum_i x+_i w+_ij + x-_i w-_ij */
    SM_LRP_ALPHA_BETA, /* alpha z+_ij / z+_j - beta z-_ij / z-_j, with the
                          bias parts b+ in z+_j, b- in z-_j (Bach 2015) */
    SM_LRP_FLAT,       /* x and w all ones, no bias: R_i = sum_j R_j / |j's
                          receptive field| */
} sm_lrp_rule;

typedef struct sm_model_lrp_rules {
    double epsilon;    /* of the epsilon rule: every linear node (pooling,
                          BatchNormalization, Add, Sub, Mul/Div by a
                          constant) and the weighted layers given that rule */
    double stabilizer; /* e of the z+, alpha-beta and flat denominators */
    double alpha, beta;
    sm_lrp_rule first; /* the first weighted layer (in graph order) */
    sm_lrp_rule conv;  /* every other Conv */
    sm_lrp_rule dense; /* every other Gemm and MatMul */
} sm_model_lrp_rules;

/* Relevance of every graph input for the last run (sm_model_run or
 * sm_model_forward), propagated back from output `out` seeded with seed
 * (shaped like that output; for LRP, the target logit at its class and 0
 * elsewhere, per image). Layer by layer: the weighted layers and linear
 * nodes by their rules; Relu, LeakyRelu, Sigmoid, Tanh, Clip, Identity and
 * Dropout pass relevance unchanged; MaxPool gives it to the window's winner;
 * Flatten, Reshape, Transpose, Concat and Pad move it with the values.
 * Refused, naming the node: Softmax or LogSoftmax on the path (start from
 * the logits), a product of two activations. rel_in: sm_model_n_inputs
 * borrowed pointers, valid until the next run, backward or relevance (the
 * relevance lives where gradients do: sm_model_activation_grad returns an
 * intermediate value's relevance). Uses the run's threads and buffers.
 * 0, or -1 with a message. */
int sm_model_relevance(sm_model *m, int out, const sm_tensor *seed,
                       const sm_model_lrp_rules *rules,
                       const sm_tensor **rel_in, sm_err *err);

#endif
