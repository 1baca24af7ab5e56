/* Loading: ONNX bytes to a graph (values, nodes with the attributes each
 * operator parses, checks, topological sort, folding). No planning here:
 * the shape check at load is the model's (model.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "onnx/proto.h"
#include "onnx/tensorproto.h"
#include "onnx/tensorproto_internal.h"

static int find_value(const sm_graph *g, const char *name)
{
    for (int i = 0; i < g->n_vals; i++)
        if (strcmp(g->vals[i].name, name) == 0)
            return i;
    return -1;
}

static int check_finite(const sm_tensor *t, const char *name, sm_err *err)
{
    if (!t->data)
        return 0;
    int64_t n = sm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i]))
            return sm_err_set(err, "initializer '%s' holds %s at element %lld; "
                              "refusing a model with non-finite weights", name,
                              isnan(t->data[i]) ? "NaN" : "Inf", (long long)i);
    return 0;
}

/* Reads a graph input's declared type and shape. */
static int read_input_decl(value *v, const Onnx__ValueInfoProto *vi,
                           sm_err *err)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type)
        return sm_err_set(err, "graph input '%s' is not a tensor", vi->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    v->elem_type = tt->has_elem_type ? tt->elem_type : 0;
    if (v->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
        v->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return sm_err_set(err, "graph input '%s' has element type %s; salmap "
                          "runs float32 models", vi->name,
                          sm_tensorproto_type_name(v->elem_type));
    v->decl_ndim = -1;
    if (tt->shape) {
        if (tt->shape->n_dim > SM_MAX_DIMS)
            return sm_err_set(err, "graph input '%s' has rank %zu (at most %d)",
                              vi->name, tt->shape->n_dim, SM_MAX_DIMS);
        v->decl_ndim = (int)tt->shape->n_dim;
        for (size_t d = 0; d < tt->shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            v->decl[d] = dim->value_case ==
                                 ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                             ? dim->dim_value
                             : -1;
        }
    }
    return 0;
}

/* Builds one node (unsorted); the op's attributes are parsed here. */
static int build_node(sm_graph *g, node *n, const Onnx__NodeProto *np,
                      int *vcap, sm_err *err)
{
    const char *nm = np->name && *np->name ? np->name
                     : np->n_output          ? np->output[0]
                                             : "?";
    const char *ot = np->op_type ? np->op_type : "";
    n->name = strdup(nm);
    if (!n->name)
        return sm_err_set(err, "out of memory");
    if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0)
        return sm_err_set(err, "node '%s': operator '%s' of domain '%s' is not "
                          "supported", nm, ot, np->domain);
    n->op = sm_op_find(ot);
    if (!n->op)
        return sm_err_set(err, "node '%s': operator '%s' is not supported "
                          "(see docs/ONNX.md for the supported set)", nm, ot);
    const sm_op_class *op = n->op;
    if ((int)np->n_input < op->min_inputs || (int)np->n_input > op->max_inputs)
        return sm_err_set(err, "node '%s' (%s): %zu inputs, expected %d to %d",
                          nm, ot, np->n_input, op->min_inputs, op->max_inputs);
    if ((int)np->n_output < op->min_outputs ||
        (int)np->n_output > op->max_outputs)
        return sm_err_set(err, "node '%s' (%s): %zu outputs, expected %d to %d",
                          nm, ot, np->n_output, op->min_outputs,
                          op->max_outputs);
    for (size_t a = 0; a < np->n_attribute; a++) {
        const char *an = np->attribute[a]->name ? np->attribute[a]->name : "";
        int known = 0;
        for (const char *const *k = op->attrs; k && *k; k++)
            if (strcmp(*k, an) == 0)
                known = 1;
        if (!known)
            return sm_err_set(err, "node '%s' (%s): attribute '%s' is not "
                              "supported", nm, ot, an);
    }
    n->params = calloc(1, op->params_size ? op->params_size : 1);
    n->n_in = (int)np->n_input;
    n->n_out = (int)np->n_output;
    n->in = malloc(((size_t)n->n_in + 1) * sizeof(int));
    n->out = malloc(((size_t)n->n_out + 1) * sizeof(int));
    if (!n->params || !n->in || !n->out)
        return sm_err_set(err, "out of memory");
    struct sm_attrs at = {np, g->opset};
    if (op->parse && op->parse(n->params, &at, err))
        return sm_err_prefix(err, "node '%s' (%s)", nm, ot);
    for (int i = 0; i < n->n_in; i++) {
        const char *in = np->input[i];
        if ((!in || !*in) && i < op->min_inputs)
            return sm_err_set(err, "node '%s' (%s): input %d is required but "
                              "has no name", nm, ot, i);
        if (!in || !*in) {
            n->in[i] = -1;
            continue;
        }
        n->in[i] = find_value(g, in);
        if (n->in[i] < 0 && (n->in[i] = sm_graph_add_value(g, in, V_ACT, vcap)) < 0)
            return sm_err_set(err, "out of memory");
    }
    for (int i = 0; i < n->n_out; i++) {
        const char *o = np->output[i];
        if ((!o || !*o) && i < op->min_outputs)
            return sm_err_set(err, "node '%s' (%s): output %d is required but "
                              "has no name", nm, ot, i);
        if (!o || !*o) {
            n->out[i] = -1;
            continue;
        }
        int v = find_value(g, o);
        if (v < 0 && (v = sm_graph_add_value(g, o, V_ACT, vcap)) < 0)
            return sm_err_set(err, "out of memory");
        n->out[i] = v;
    }
    return 0;
}

/* Kahn's algorithm over value producers; refuses cycles and values that
 * nothing produces. Reorders g->nodes in place. */
static int sort_nodes(sm_graph *g, sm_err *err)
{
    int *producer = malloc((size_t)g->n_vals * sizeof(int));
    unsigned char *ready = calloc((size_t)g->n_vals, 1);
    unsigned char *done = calloc((size_t)g->n_nodes + 1, 1);
    node *sorted = malloc(((size_t)g->n_nodes + 1) * sizeof(node));
    int rc = -1;
    if (!producer || !ready || !done || !sorted) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < g->n_vals; i++) {
        producer[i] = -1;
        ready[i] = g->vals[i].kind != V_ACT;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int o = 0; o < g->nodes[i].n_out; o++) {
            int v = g->nodes[i].out[o];
            if (v < 0)
                continue;
            if (producer[v] >= 0 || g->vals[v].kind != V_ACT) {
                sm_err_set(err, "node '%s': output '%s' is already defined "
                           "elsewhere in the graph", g->nodes[i].name,
                           g->vals[v].name);
                goto out;
            }
            producer[v] = i;
        }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && g->vals[v].kind == V_ACT && producer[v] < 0) {
                sm_err_set(err, "node '%s': input '%s' is not a graph input, "
                           "an initializer or any node's output",
                           g->nodes[i].name, g->vals[v].name);
                goto out;
            }
        }
    int n_sorted = 0;
    while (n_sorted < g->n_nodes) {
        int progressed = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            if (done[i])
                continue;
            int ok = 1;
            for (int k = 0; k < g->nodes[i].n_in && ok; k++)
                ok = g->nodes[i].in[k] < 0 || ready[g->nodes[i].in[k]];
            if (!ok)
                continue;
            done[i] = 1;
            sorted[n_sorted++] = g->nodes[i];
            for (int o = 0; o < g->nodes[i].n_out; o++)
                if (g->nodes[i].out[o] >= 0)
                    ready[g->nodes[i].out[o]] = 1;
            progressed = 1;
        }
        if (!progressed) {
            sm_err_set(err, "the graph has a cycle (through node '%s')",
                       g->nodes[0].name);
            for (int i = 0; i < g->n_nodes; i++)
                if (!done[i]) {
                    sm_err_set(err, "the graph has a cycle (through node '%s')",
                               g->nodes[i].name);
                    break;
                }
            goto out;
        }
    }
    memcpy(g->nodes, sorted, (size_t)g->n_nodes * sizeof(node));
    rc = 0;
out:
    free(producer);
    free(ready);
    free(done);
    free(sorted);
    return rc;
}

static int build_graph(sm_graph *g, const Onnx__ModelProto *mp, sm_err *err)
{
    const Onnx__GraphProto *gp = mp->graph;
    if (!gp)
        return sm_err_set(err, "the model has no graph");
    g->opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = mp->opset_import[i]->domain;
        if (!d || !*d || strcmp(d, "ai.onnx") == 0)
            g->opset = (int)mp->opset_import[i]->version;
    }
    if (g->opset <= 0)
        return sm_err_set(err, "the model imports no opset of the default "
                          "ONNX domain");
    int vcap = 0;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        const char *nm = tp->name ? tp->name : "";
        if (find_value(g, nm) >= 0)
            return sm_err_set(err, "initializer '%s' is defined twice", nm);
        int v = sm_graph_add_value(g, nm, V_CONST, &vcap);
        if (v < 0)
            return sm_err_set(err, "out of memory");
        if (sm_tensorproto_to_tensor(tp, &g->vals[v].cst, err) ||
            check_finite(g->vals[v].cst, nm, err))
            return -1;
    }
    if (gp->n_sparse_initializer)
        return sm_err_set(err, "sparse initializers are not supported");
    int n_in = 0;
    g->inputs = malloc((gp->n_input + 1) * sizeof(int));
    if (!g->inputs)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
        if (find_value(g, nm) >= 0)
            continue; /* an initializer listed as input (IR < 4): constant */
        int v = sm_graph_add_value(g, nm, V_INPUT, &vcap);
        if (v < 0)
            return sm_err_set(err, "out of memory");
        if (read_input_decl(&g->vals[v], gp->input[i], err))
            return -1;
        g->inputs[n_in++] = v;
    }
    g->n_inputs = n_in; /* 0 is fine: a graph of constants */

    g->nodes = calloc(gp->n_node + 1, sizeof(node));
    if (!g->nodes)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < gp->n_node; i++) {
        g->n_nodes++;
        if (build_node(g, &g->nodes[i], gp->node[i], &vcap, err))
            return -1;
    }
    if (gp->n_output == 0)
        return sm_err_set(err, "the graph has no output");
    g->outputs = malloc(gp->n_output * sizeof(int));
    if (!g->outputs)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *nm = gp->output[i]->name ? gp->output[i]->name : "";
        int v = find_value(g, nm);
        if (v < 0)
            return sm_err_set(err, "graph output '%s' is not produced by any "
                              "node", nm);
        const Onnx__TypeProto *tp = gp->output[i]->type;
        if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
            tp->tensor_type && tp->tensor_type->has_elem_type &&
            tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return sm_err_set(err, "graph output '%s' has element type %s; "
                              "salmap runs float32 models", nm,
                              sm_tensorproto_type_name(
                                  tp->tensor_type->elem_type));
        g->outputs[g->n_outputs++] = v;
    }
    if (sort_nodes(g, err))
        return -1;
    return sm_graph_fold_batchnorm(g, &vcap, err);
}

int sm_graph_load(sm_graph *g, const void *buf, size_t len, const char *origin,
                  sm_err *err)
{
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return sm_err_set(err, "%s: not an ONNX model (the protobuf does not "
                          "parse: truncated or not a model file)", origin);
    if (!(g->origin = strdup(origin))) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return sm_err_set(err, "%s: out of memory", origin);
    }
    int rc = build_graph(g, mp, err);
    onnx__model_proto__free_unpacked(mp, NULL);
    return rc ? sm_err_prefix(err, "%s", origin) : 0;
}
