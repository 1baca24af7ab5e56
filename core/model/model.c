/* Loading: protobuf to graph (values, nodes, attributes parsed by each
 * operator), checks, topological sort, and the model's accessors. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnx/tensorproto.h"
#include "model/model_internal.h"
#include "onnx/tensorproto_internal.h"
#include "util/file.h"

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int find_value(const sm_model *m, const char *name)
{
    for (int i = 0; i < m->n_vals; i++)
        if (strcmp(m->vals[i].name, name) == 0)
            return i;
    return -1;
}

int sm_model_add_value(sm_model *m, const char *name, int kind, int *cap)
{
    if (m->n_vals == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        value *nv = realloc(m->vals, (size_t)nc * sizeof *nv);
        if (!nv)
            return -1;
        m->vals = nv;
        *cap = nc;
    }
    value *v = &m->vals[m->n_vals];
    memset(v, 0, sizeof *v);
    v->name = dupstr(name);
    if (!v->name)
        return -1;
    v->kind = kind;
    return m->n_vals++;
}

void sm_model_node_free(node *n)
{
    if (n->params && n->op->release)
        n->op->release(n->params);
    free(n->params);
    free(n->name);
    free(n->in);
    free(n->out);
}

void sm_model_destroy(sm_model **mp)
{
    if (!mp || !*mp)
        return;
    sm_model *m = *mp;
    sm_plan_drop_all(m);
    for (int i = 0; i < m->n_vals; i++) {
        free(m->vals[i].name);
        sm_tensor_destroy(&m->vals[i].cst);
    }
    for (int i = 0; i < m->n_nodes; i++)
        sm_model_node_free(&m->nodes[i]);
    if (m->gathered)
        for (int i = 0; i < m->n_outputs; i++)
            free(m->gathered[i].data);
    free(m->gathered);
    free(m->gathered_cap);
    if (m->ggathered)
        for (int i = 0; i < m->n_inputs; i++)
            free(m->ggathered[i].data);
    free(m->ggathered);
    free(m->ggathered_cap);
    free(m->live);
    free(m->act_joined.data);
    free(m->params);
    if (m->pgrad)
        for (int i = 0; i < m->n_params; i++)
            free(m->pgrad[i].data);
    free(m->pgrad);
    free(m->vals);
    free(m->nodes);
    free(m->inputs);
    free(m->outputs);
    free(m->origin);
    free(m);
    *mp = NULL;
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
static int build_node(sm_model *m, node *n, const Onnx__NodeProto *np,
                      int *vcap, sm_err *err)
{
    const char *nm = np->name && *np->name ? np->name
                     : np->n_output          ? np->output[0]
                                             : "?";
    const char *ot = np->op_type ? np->op_type : "";
    n->name = dupstr(nm);
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
    struct sm_attrs at = {np, m->opset};
    if (op->parse && op->parse(n->params, &at, err))
        return sm_err_prefix(err, "node '%s' (%s)", nm, ot);
    for (int i = 0; i < n->n_in; i++) {
        const char *in = np->input[i];
        if (!in || !*in) {
            n->in[i] = -1;
            continue;
        }
        n->in[i] = find_value(m, in);
        if (n->in[i] < 0 && (n->in[i] = sm_model_add_value(m, in, V_ACT, vcap)) < 0)
            return sm_err_set(err, "out of memory");
    }
    for (int i = 0; i < n->n_out; i++) {
        const char *o = np->output[i];
        if (!o || !*o) {
            n->out[i] = -1;
            continue;
        }
        int v = find_value(m, o);
        if (v < 0 && (v = sm_model_add_value(m, o, V_ACT, vcap)) < 0)
            return sm_err_set(err, "out of memory");
        n->out[i] = v;
    }
    return 0;
}

/* Kahn's algorithm over value producers; refuses cycles and values that
 * nothing produces. Reorders m->nodes in place. */
static int sort_nodes(sm_model *m, sm_err *err)
{
    int *producer = malloc((size_t)m->n_vals * sizeof(int));
    unsigned char *ready = calloc((size_t)m->n_vals, 1);
    unsigned char *done = calloc((size_t)m->n_nodes + 1, 1);
    node *sorted = malloc(((size_t)m->n_nodes + 1) * sizeof(node));
    int rc = -1;
    if (!producer || !ready || !done || !sorted) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->n_vals; i++) {
        producer[i] = -1;
        ready[i] = m->vals[i].kind != V_ACT;
    }
    for (int i = 0; i < m->n_nodes; i++)
        for (int o = 0; o < m->nodes[i].n_out; o++) {
            int v = m->nodes[i].out[o];
            if (v < 0)
                continue;
            if (producer[v] >= 0 || m->vals[v].kind != V_ACT) {
                sm_err_set(err, "node '%s': output '%s' is already defined "
                           "elsewhere in the graph", m->nodes[i].name,
                           m->vals[v].name);
                goto out;
            }
            producer[v] = i;
        }
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int v = m->nodes[i].in[k];
            if (v >= 0 && m->vals[v].kind == V_ACT && producer[v] < 0) {
                sm_err_set(err, "node '%s': input '%s' is not a graph input, "
                           "an initializer or any node's output",
                           m->nodes[i].name, m->vals[v].name);
                goto out;
            }
        }
    int n_sorted = 0;
    while (n_sorted < m->n_nodes) {
        int progressed = 0;
        for (int i = 0; i < m->n_nodes; i++) {
            if (done[i])
                continue;
            int ok = 1;
            for (int k = 0; k < m->nodes[i].n_in && ok; k++)
                ok = m->nodes[i].in[k] < 0 || ready[m->nodes[i].in[k]];
            if (!ok)
                continue;
            done[i] = 1;
            sorted[n_sorted++] = m->nodes[i];
            for (int o = 0; o < m->nodes[i].n_out; o++)
                if (m->nodes[i].out[o] >= 0)
                    ready[m->nodes[i].out[o]] = 1;
            progressed = 1;
        }
        if (!progressed) {
            sm_err_set(err, "the graph has a cycle (through node '%s')",
                       m->nodes[0].name);
            for (int i = 0; i < m->n_nodes; i++)
                if (!done[i]) {
                    sm_err_set(err, "the graph has a cycle (through node '%s')",
                               m->nodes[i].name);
                    break;
                }
            goto out;
        }
    }
    memcpy(m->nodes, sorted, (size_t)m->n_nodes * sizeof(node));
    rc = 0;
out:
    free(producer);
    free(ready);
    free(done);
    free(sorted);
    return rc;
}

static int build_graph(sm_model *m, const Onnx__ModelProto *mp, sm_err *err)
{
    const Onnx__GraphProto *g = mp->graph;
    if (!g)
        return sm_err_set(err, "the model has no graph");
    m->opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = mp->opset_import[i]->domain;
        if (!d || !*d || strcmp(d, "ai.onnx") == 0)
            m->opset = (int)mp->opset_import[i]->version;
    }
    if (m->opset <= 0)
        return sm_err_set(err, "the model imports no opset of the default "
                          "ONNX domain");
    int vcap = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        const char *nm = tp->name ? tp->name : "";
        if (find_value(m, nm) >= 0)
            return sm_err_set(err, "initializer '%s' is defined twice", nm);
        int v = sm_model_add_value(m, nm, V_CONST, &vcap);
        if (v < 0)
            return sm_err_set(err, "out of memory");
        if (sm_tensorproto_to_tensor(tp, &m->vals[v].cst, err) ||
            check_finite(m->vals[v].cst, nm, err))
            return -1;
    }
    if (g->n_sparse_initializer)
        return sm_err_set(err, "sparse initializers are not supported");
    int n_in = 0;
    m->inputs = malloc((g->n_input + 1) * sizeof(int));
    if (!m->inputs)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < g->n_input; i++) {
        const char *nm = g->input[i]->name ? g->input[i]->name : "";
        if (find_value(m, nm) >= 0)
            continue; /* an initializer listed as input (IR < 4): constant */
        int v = sm_model_add_value(m, nm, V_INPUT, &vcap);
        if (v < 0)
            return sm_err_set(err, "out of memory");
        if (read_input_decl(&m->vals[v], g->input[i], err))
            return -1;
        m->inputs[n_in++] = v;
    }
    m->n_inputs = n_in; /* 0 is fine: a graph of constants */

    m->nodes = calloc(g->n_node + 1, sizeof(node));
    if (!m->nodes)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < g->n_node; i++) {
        m->n_nodes++;
        if (build_node(m, &m->nodes[i], g->node[i], &vcap, err))
            return -1;
    }
    if (g->n_output == 0)
        return sm_err_set(err, "the graph has no output");
    m->outputs = malloc(g->n_output * sizeof(int));
    if (!m->outputs)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < g->n_output; i++) {
        const char *nm = g->output[i]->name ? g->output[i]->name : "";
        int v = find_value(m, nm);
        if (v < 0)
            return sm_err_set(err, "graph output '%s' is not produced by any "
                              "node", nm);
        const Onnx__TypeProto *tp = g->output[i]->type;
        if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
            tp->tensor_type && tp->tensor_type->has_elem_type &&
            tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return sm_err_set(err, "graph output '%s' has element type %s; "
                              "salmap runs float32 models", nm,
                              sm_tensorproto_type_name(
                                  tp->tensor_type->elem_type));
        m->outputs[m->n_outputs++] = v;
    }
    if (sort_nodes(m, err))
        return -1;
    return sm_model_fold_batchnorm(m, &vcap, err);
}

/* The declared input shapes with symbolic dims set to 1; 0 when every input
 * is float and fully determined that way, -1 otherwise (checked at run). */
static int probe_shapes(const sm_model *m, sm_tensor *probe)
{
    for (int i = 0; i < m->n_inputs; i++) {
        const value *v = &m->vals[m->inputs[i]];
        if (v->kind != V_INPUT || v->decl_ndim < 0 ||
            v->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return -1;
        memset(&probe[i], 0, sizeof probe[i]);
        probe[i].ndim = v->decl_ndim;
        for (int d = 0; d < v->decl_ndim; d++)
            probe[i].shape[d] = v->decl[d] < 0 ? 1 : v->decl[d];
    }
    return 0;
}

sm_model *sm_model_load_buffer(const void *buf, size_t len, const char *origin,
                               sm_err *err)
{
    if (!origin)
        origin = "model";
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) {
        sm_err_set(err, "%s: not an ONNX model (the protobuf does not parse: "
                   "truncated or not a model file)", origin);
        return NULL;
    }
    sm_model *m = calloc(1, sizeof *m);
    if (m)
        m->threads = 1;
    if (!m || !(m->origin = dupstr(origin))) {
        free(m);
        onnx__model_proto__free_unpacked(mp, NULL);
        sm_err_set(err, "%s: out of memory", origin);
        return NULL;
    }
    int rc = build_graph(m, mp, err);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (rc == 0 && m->n_inputs <= 8) {
        /* Shape-check now, for the declared input shape (batch 1). */
        sm_tensor probe[8];
        const sm_tensor *pp[8];
        if (probe_shapes(m, probe) == 0) {
            for (int i = 0; i < m->n_inputs; i++)
                pp[i] = &probe[i];
            rc = sm_plan_get(m, &m->lanes[0], pp, err) ? 0 : -1;
        }
    } else if (rc == 0) {
        rc = sm_err_set(err, "%d graph inputs (at most 8)", m->n_inputs);
    }
    if (rc) {
        sm_err_prefix(err, "%s", origin);
        sm_model_destroy(&m);
    }
    return m;
}

sm_model *sm_model_load_file(const char *path, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_file_read(path, SM_FILE_MAX_MODEL, &len, err);
    if (!buf)
        return NULL;
    sm_model *m = sm_model_load_buffer(buf, len, path, err);
    free(buf);
    return m;
}

int sm_model_n_inputs(const sm_model *m) { return m->n_inputs; }
int sm_model_n_outputs(const sm_model *m) { return m->n_outputs; }
int sm_model_n_nodes(const sm_model *m) { return m->n_nodes; }

const char *sm_model_input_name(const sm_model *m, int i)
{
    return i >= 0 && i < m->n_inputs ? m->vals[m->inputs[i]].name : NULL;
}

const char *sm_model_output_name(const sm_model *m, int i)
{
    return i >= 0 && i < m->n_outputs ? m->vals[m->outputs[i]].name : NULL;
}

int sm_model_input_shape(const sm_model *m, int i, int64_t *shape)
{
    const value *v = &m->vals[m->inputs[i]];
    for (int d = 0; d < v->decl_ndim; d++)
        shape[d] = v->decl[d];
    return v->decl_ndim;
}

int sm_model_output_index(const sm_model *m, const char *name)
{
    for (int i = 0; i < m->n_outputs; i++)
        if (strcmp(m->vals[m->outputs[i]].name, name) == 0)
            return i;
    return -1;
}

int sm_model_input_index(const sm_model *m, const char *name)
{
    for (int i = 0; i < m->n_inputs; i++)
        if (strcmp(m->vals[m->inputs[i]].name, name) == 0)
            return i;
    return -1;
}

int sm_model_set_constant(sm_model *m, const char *name, const sm_tensor *t,
                          sm_err *err)
{
    int i = sm_model_input_index(m, name);
    if (i < 0)
        return sm_err_set(err, "%s: no graph input named '%s'", m->origin, name);
    value *v = &m->vals[m->inputs[i]];
    sm_tensor *c = calloc(1, sizeof *c);
    if (!c)
        return sm_err_set(err, "out of memory");
    *c = *t;
    c->owns = 1;
    size_t n = (size_t)sm_tensor_numel(t);
    c->data = NULL;
    c->i64 = NULL;
    if (t->i64) {
        c->i64 = malloc((n ? n : 1) * sizeof(int64_t));
        if (c->i64)
            memcpy(c->i64, t->i64, n * sizeof(int64_t));
    } else if (t->data) {
        c->data = malloc((n ? n : 1) * sizeof(float));
        if (c->data)
            memcpy(c->data, t->data, n * sizeof(float));
    }
    if (!c->i64 && !c->data) {
        sm_tensor_destroy(&c);
        return sm_err_set(err, "'%s': no data or out of memory", name);
    }
    v->kind = V_CONST;
    v->cst = c;
    memmove(&m->inputs[i], &m->inputs[i + 1],
            (size_t)(m->n_inputs - i - 1) * sizeof(int));
    m->n_inputs--;
    sm_plan_drop_all(m);
    return 0;
}


int sm_model_is_param(const sm_model *m, int v)
{
    return m->trainable && m->vals[v].kind == V_CONST &&
           m->vals[v].cst->data && !m->vals[v].cst->i64;
}

void sm_model_set_trainable(sm_model *m, int on)
{
    if (m->trainable == !!on)
        return;
    m->trainable = !!on;
    sm_plan_drop_all(m);
    free(m->params);
    if (m->pgrad)
        for (int i = 0; i < m->n_params; i++)
            free(m->pgrad[i].data);
    free(m->pgrad);
    m->params = NULL;
    m->pgrad = NULL;
    m->n_params = 0;
    if (!on)
        return;
    m->params = malloc(((size_t)m->n_vals + 1) * sizeof(int));
    m->pgrad = calloc((size_t)m->n_vals + 1, sizeof(sm_tensor));
    if (!m->params || !m->pgrad)
        return; /* n_params stays 0: nothing to train, reported by the trainer */
    for (int v = 0; v < m->n_vals; v++)
        if (sm_model_is_param(m, v)) {
            sm_tensor *g = &m->pgrad[m->n_params];
            const sm_tensor *w = m->vals[v].cst;
            g->ndim = w->ndim;
            memcpy(g->shape, w->shape, sizeof g->shape);
            g->data = calloc((size_t)(sm_tensor_numel(w) ? sm_tensor_numel(w) : 1), sizeof(float));
            if (!g->data)
                break;
            m->params[m->n_params++] = v;
        }
}

int sm_model_n_params(const sm_model *m) { return m->n_params; }

const char *sm_model_param_name(const sm_model *m, int i)
{
    return i >= 0 && i < m->n_params ? m->vals[m->params[i]].name : NULL;
}

sm_tensor *sm_model_param(sm_model *m, int i)
{
    return i >= 0 && i < m->n_params ? m->vals[m->params[i]].cst : NULL;
}

const sm_tensor *sm_model_param_grad(const sm_model *m, int i)
{
    return i >= 0 && i < m->n_params ? &m->pgrad[i] : NULL;
}
