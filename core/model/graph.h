/* Internal to core/model: the loaded graph (values, nodes, graph inputs and
 * outputs), what builds it from ONNX bytes (load.c, fold.c) and what edits
 * it (graph.c). It knows nothing of plans or runs (exec.h), which read it. */
#ifndef SM_MODEL_GRAPH_H
#define SM_MODEL_GRAPH_H

#include <stddef.h>

#include "ops/op.h"
#include "tensor/tensor.h"
#include "util/err.h"

enum { V_ACT, V_INPUT, V_CONST };

typedef struct value {
    char *name;
    int kind;
    sm_tensor *cst;          /* V_CONST: owned */
    int decl_ndim;           /* V_INPUT: declared shape, -1 = symbolic */
    int64_t decl[SM_MAX_DIMS];
    int elem_type;           /* V_INPUT: ONNX element type */
} value;

typedef struct node {
    const sm_op_class *op;
    char *name;
    int n_in, n_out;
    int *in, *out;           /* value indices; -1 = absent optional */
    void *params;            /* op->params_size bytes, owned */
} node;

/* Most inputs and outputs a node may have. */
#define MAX_IO 16

typedef struct sm_graph {
    char *origin;            /* where it was loaded from, for messages */
    int opset;
    value *vals;
    int n_vals;
    node *nodes;             /* topologically sorted */
    int n_nodes;
    int *inputs, n_inputs;
    int *outputs, n_outputs;
    int trainable;           /* 1: float initializers are parameters */
} sm_graph;

/* Parses ONNX bytes into g (zeroed by the caller): values, nodes (their
 * attributes parsed by each operator), checks, topological sort, and
 * BatchNormalization folded. 0, or -1 with a message naming origin; g may
 * then hold part of a graph, for sm_graph_free. */
int sm_graph_load(sm_graph *g, const void *buf, size_t len, const char *origin,
                  sm_err *err);

/* Frees what g owns (not g itself). */
void sm_graph_free(sm_graph *g);

/* Adds a value named name of the given kind to g->vals (capacity *cap);
 * returns its index, or -1 when out of memory. */
int sm_graph_add_value(sm_graph *g, const char *name, int kind, int *cap);

/* Frees what a node owns (not the node itself, which lives in g->nodes). */
void sm_graph_node_free(node *n);

/* 1 when value v is a parameter: a float initializer of a trainable graph. */
int sm_graph_is_param(const sm_graph *g, int v);

/* Folds every BatchNormalization that follows a Conv with constant weights
 * (and is that output's only reader) into the Conv's weights and bias, and
 * removes it: the model computes the same function with one pass less, and
 * relevance methods need the folded form. 0, or -1 when out of memory. */
int sm_graph_fold_batchnorm(sm_graph *g, int *vcap, sm_err *err);

#endif
