#include "model/model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnx/tensorproto.h"
#include "onnx/tensorproto_internal.h"
#include "ops/op.h"
#include "util/file.h"

/* Plans kept per model: one per distinct set of input shapes (batch size).
 * A worker typically alternates between a full batch and a last partial one. */
#define MAX_PLANS 4

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

typedef struct plan {
    int64_t key[8][SM_MAX_DIMS + 1]; /* per input: ndim then dims */
    sm_tensor *vals;         /* per value: shape and data (borrowed) */
    unsigned char *folded;   /* per node: computed at planning */
    float *arena;            /* every activation's buffer, one allocation */
    float *ws;
    double flops;
    unsigned long last_use;
} plan;

/* A plan cache. Each thread of a data-parallel run has its own. */
typedef struct lane {
    plan *plans[MAX_PLANS];
    plan *last;
    unsigned long clock;
} lane;

struct sm_model {
    char *origin;
    int opset;
    value *vals;
    int n_vals;
    node *nodes;             /* topologically sorted */
    int n_nodes;
    int *inputs, n_inputs;
    int *outputs, n_outputs;
    lane lanes[SM_MODEL_MAX_THREADS];
    int threads;
    sm_tensor *gathered;     /* n_outputs: a split run's joined outputs */
    size_t *gathered_cap;    /* floats allocated in each gathered[i] */
    int unbatched;           /* 1: its outputs do not follow the batch */
    double last_flops;
};

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

/* Adds a value; returns its index or -1 (out of memory). */
static int add_value(sm_model *m, const char *name, int kind, int *cap)
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

static void plan_free(plan **pp)
{
    if (!*pp)
        return;
    free((*pp)->vals);
    free((*pp)->folded);
    free((*pp)->arena);
    free((*pp)->ws);
    free(*pp);
    *pp = NULL;
}

static void drop_plans(sm_model *m)
{
    for (int l = 0; l < SM_MODEL_MAX_THREADS; l++) {
        for (int i = 0; i < MAX_PLANS; i++)
            plan_free(&m->lanes[l].plans[i]);
        m->lanes[l].last = NULL;
    }
}

void sm_model_destroy(sm_model **mp)
{
    if (!mp || !*mp)
        return;
    sm_model *m = *mp;
    drop_plans(m);
    for (int i = 0; i < m->n_vals; i++) {
        free(m->vals[i].name);
        sm_tensor_destroy(&m->vals[i].cst);
    }
    for (int i = 0; i < m->n_nodes; i++) {
        node *n = &m->nodes[i];
        if (n->params && n->op->release)
            n->op->release(n->params);
        free(n->params);
        free(n->name);
        free(n->in);
        free(n->out);
    }
    if (m->gathered)
        for (int i = 0; i < m->n_outputs; i++)
            free(m->gathered[i].data);
    free(m->gathered);
    free(m->gathered_cap);
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
        if (n->in[i] < 0 && (n->in[i] = add_value(m, in, V_ACT, vcap)) < 0)
            return sm_err_set(err, "out of memory");
    }
    for (int i = 0; i < n->n_out; i++) {
        const char *o = np->output[i];
        if (!o || !*o) {
            n->out[i] = -1;
            continue;
        }
        int v = find_value(m, o);
        if (v < 0 && (v = add_value(m, o, V_ACT, vcap)) < 0)
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
        int v = add_value(m, nm, V_CONST, &vcap);
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
        int v = add_value(m, nm, V_INPUT, &vcap);
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
    return sort_nodes(m, err);
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

static plan *get_plan(sm_model *m, lane *ln, const sm_tensor *const *in,
                      sm_err *err);

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
            rc = get_plan(m, &m->lanes[0], pp, err) ? 0 : -1;
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
    drop_plans(m);
    return 0;
}

/* --- planning ------------------------------------------------------------ */

static int check_input_shape(const sm_model *m, int i, const sm_tensor *t,
                             sm_err *err)
{
    const value *v = &m->vals[m->inputs[i]];
    if (v->decl_ndim < 0)
        return 0;
    int ok = t->ndim == v->decl_ndim;
    for (int d = 0; ok && d < t->ndim; d++)
        ok = v->decl[d] < 0 || v->decl[d] == t->shape[d];
    if (!ok) {
        char a[128], b[128];
        return sm_err_set(err, "input '%s' has shape %s; the model declares %s "
                          "(-1: any size)", v->name,
                          sm_shape_str(t->ndim, t->shape, a, sizeof a),
                          sm_shape_str(v->decl_ndim, v->decl, b, sizeof b));
    }
    return 0;
}

static void make_key(const sm_model *m, const sm_tensor *const *in,
                     int64_t key[8][SM_MAX_DIMS + 1])
{
    memset(key, 0, sizeof(int64_t) * 8 * (SM_MAX_DIMS + 1));
    for (int i = 0; i < m->n_inputs; i++) {
        key[i][0] = in[i]->ndim;
        memcpy(&key[i][1], in[i]->shape, (size_t)in[i]->ndim * sizeof(int64_t));
    }
}

/* Gathers a node's input and output views from a plan. */
static void node_io(const node *n, sm_tensor *vals, const sm_tensor **in,
                    sm_tensor **out)
{
    for (int k = 0; k < n->n_in; k++)
        in[k] = n->in[k] >= 0 ? &vals[n->in[k]] : NULL;
    for (int k = 0; k < n->n_out; k++)
        out[k] = n->out[k] >= 0 ? &vals[n->out[k]] : NULL;
}

#define MAX_IO 16

static size_t round_up(size_t n)
{
    return (n + 15) & ~(size_t)15; /* 64-byte alignment for every buffer */
}

static plan *build_plan(sm_model *m, const sm_tensor *const *in, sm_err *err)
{
    plan *p = calloc(1, sizeof *p);
    if (!p) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    make_key(m, in, p->key);
    p->vals = calloc((size_t)m->n_vals, sizeof(sm_tensor));
    p->folded = calloc((size_t)m->n_nodes + 1, 1);
    unsigned char *is_const = calloc((size_t)m->n_vals, 1);
    size_t *offset = calloc((size_t)m->n_vals, sizeof(size_t));
    if (!p->vals || !p->folded || !is_const || !offset) {
        sm_err_set(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->n_vals; i++)
        if (m->vals[i].kind == V_CONST) {
            p->vals[i] = *m->vals[i].cst;
            p->vals[i].owns = 0;
            is_const[i] = 1;
        }
    for (int i = 0; i < m->n_inputs; i++) {
        sm_tensor *t = &p->vals[m->inputs[i]];
        t->ndim = in[i]->ndim;
        memcpy(t->shape, in[i]->shape, sizeof t->shape);
    }
    /* Shapes, node by node; the sizes of every activation and workspace. */
    size_t total = 0, ws = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        node *n = &m->nodes[i];
        const sm_tensor *nin[MAX_IO];
        sm_tensor *nout[MAX_IO];
        if (n->n_in > MAX_IO || n->n_out > MAX_IO) {
            sm_err_set(err, "node '%s': too many inputs or outputs", n->name);
            goto fail;
        }
        node_io(n, p->vals, nin, nout);
        int all_const = 1;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && !is_const[n->in[k]])
                all_const = 0;
        if (n->op->infer(n->params, nin, n->n_in, nout, n->n_out, err)) {
            sm_err_prefix(err, "node '%s' (%s)", n->name, n->op->name);
            goto fail;
        }
        for (int k = 0; k < n->n_out; k++) {
            if (!nout[k])
                continue;
            int64_t cnt = sm_tensor_numel(nout[k]);
            if (cnt < 0 || nout[k]->ndim < 0 || nout[k]->ndim > SM_MAX_DIMS) {
                sm_err_set(err, "node '%s' (%s): invalid output shape",
                           n->name, n->op->name);
                goto fail;
            }
            offset[n->out[k]] = total;
            total += round_up((size_t)(cnt ? cnt : 1));
        }
        if (n->op->workspace) {
            size_t w = n->op->workspace(n->params, nin, n->n_in,
                                        (const sm_tensor *const *)nout,
                                        n->n_out);
            ws = w > ws ? w : ws;
        }
        if (n->op->flops && !all_const)
            p->flops += n->op->flops(n->params, nin, n->n_in,
                                     (const sm_tensor *const *)nout, n->n_out);
        p->folded[i] = (unsigned char)all_const;
        /* Folded outputs count as constants for the nodes below: their data
         * pointers are set once the arena exists (shapes suffice here, but
         * Reshape and Pad read constant contents in infer, so fold now). */
        if (all_const) {
            for (int k = 0; k < n->n_out; k++)
                if (nout[k]) {
                    nout[k]->data = malloc(sizeof(float) *
                                           (size_t)(sm_tensor_numel(nout[k]) ? sm_tensor_numel(nout[k]) : 1));
                    if (!nout[k]->data) {
                        sm_err_set(err, "out of memory");
                        goto fail;
                    }
                    is_const[n->out[k]] = 1;
                }
            float *w = NULL;
            if (n->op->workspace) {
                size_t wl = n->op->workspace(n->params, nin, n->n_in,
                                             (const sm_tensor *const *)nout,
                                             n->n_out);
                w = malloc((wl ? wl : 1) * sizeof(float));
                if (!w) {
                    sm_err_set(err, "out of memory");
                    goto fail;
                }
            }
            n->op->run(n->params, nin, n->n_in, nout, n->n_out, w);
            free(w);
        }
    }
    p->arena = aligned_alloc(64, (total ? total : 16) * sizeof(float));
    p->ws = aligned_alloc(64, round_up(ws ? ws : 16) * sizeof(float));
    if (!p->arena || !p->ws) {
        sm_err_set(err, "out of memory planning %zu floats of activations",
                   total);
        goto fail;
    }
    /* Move folded results into the arena and point every activation at its
     * buffer. */
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_out; k++) {
            int v = m->nodes[i].out[k];
            if (v < 0)
                continue;
            float *dst = p->arena + offset[v];
            if (p->folded[i]) {
                memcpy(dst, p->vals[v].data,
                       (size_t)sm_tensor_numel(&p->vals[v]) * sizeof(float));
                free(p->vals[v].data);
            }
            p->vals[v].data = dst;
        }
    free(is_const);
    free(offset);
    return p;
fail:
    if (p->vals && p->folded && is_const)
        for (int i = 0; i < m->n_nodes; i++)
            if (p->folded[i])
                for (int k = 0; k < m->nodes[i].n_out; k++)
                    if (m->nodes[i].out[k] >= 0) {
                        free(p->vals[m->nodes[i].out[k]].data);
                        p->vals[m->nodes[i].out[k]].data = NULL;
                    }
    free(is_const);
    free(offset);
    plan_free(&p);
    return NULL;
}

static plan *get_plan(sm_model *m, lane *ln, const sm_tensor *const *in,
                      sm_err *err)
{
    int64_t key[8][SM_MAX_DIMS + 1];
    make_key(m, in, key);
    ln->clock++;
    if (ln->last && memcmp(ln->last->key, key, sizeof key) == 0) {
        ln->last->last_use = ln->clock;
        return ln->last;
    }
    int slot = 0;
    for (int i = 0; i < MAX_PLANS; i++) {
        plan *p = ln->plans[i];
        if (p && memcmp(p->key, key, sizeof key) == 0) {
            p->last_use = ln->clock;
            return ln->last = p;
        }
        if (!p || (ln->plans[slot] && p->last_use < ln->plans[slot]->last_use))
            slot = i;
        if (!p)
            break;
    }
    for (int i = 0; i < m->n_inputs; i++)
        if (check_input_shape(m, i, in[i], err))
            return NULL;
    plan *p = build_plan(m, in, err);
    if (!p)
        return NULL;
    if (ln->last == ln->plans[slot])
        ln->last = NULL;
    plan_free(&ln->plans[slot]);
    ln->plans[slot] = p;
    p->last_use = ln->clock;
    return ln->last = p;
}

/* --- running ------------------------------------------------------------- */

/* Evaluates every node of a planned graph; inputs are borrowed (operators
 * never write to their inputs). */
static void run_plan(const sm_model *m, plan *p, const sm_tensor *const *in)
{
    for (int i = 0; i < m->n_inputs; i++)
        p->vals[m->inputs[i]].data = in[i]->data;
    for (int i = 0; i < m->n_nodes; i++) {
        if (p->folded[i])
            continue;
        const node *n = &m->nodes[i];
        const sm_tensor *nin[MAX_IO];
        sm_tensor *nout[MAX_IO];
        node_io(n, p->vals, nin, nout);
        n->op->run(n->params, nin, n->n_in, nout, n->n_out, p->ws);
    }
}

typedef struct lane_job {
    const sm_model *m;
    plan *p;
    const sm_tensor *in[8];
} lane_job;

static void *lane_main(void *arg)
{
    lane_job *j = arg;
    run_plan(j->m, j->p, j->in);
    return NULL;
}

/* A model whose inputs all declare a symbolic first dim is taken to treat
 * it as a batch of independent images, so a batch can be split. */
static int splittable(const sm_model *m, const sm_tensor *const *in)
{
    if (m->threads < 2 || m->n_inputs < 1)
        return 0;
    for (int i = 0; i < m->n_inputs; i++) {
        const value *v = &m->vals[m->inputs[i]];
        if (v->decl_ndim < 1 || v->decl[0] >= 0 || in[i]->ndim < 1 ||
            in[i]->shape[0] != in[0]->shape[0])
            return 0;
    }
    return in[0]->shape[0] >= 2 * m->threads;
}

/* Joins the lanes' outputs (each [n_t, ...]) into the model's gathered
 * tensors. 0; 1 when an output does not carry the batch in its first dim;
 * -1 on error. */
static int gather(sm_model *m, plan *const *lp, const int64_t *n0, int lanes,
                  int64_t total, sm_err *err)
{
    if (!m->gathered) {
        m->gathered = calloc((size_t)m->n_outputs, sizeof(sm_tensor));
        m->gathered_cap = calloc((size_t)m->n_outputs, sizeof(size_t));
        if (!m->gathered || !m->gathered_cap)
            return sm_err_set(err, "out of memory");
    }
    for (int o = 0; o < m->n_outputs; o++) {
        const sm_tensor *first = &lp[0]->vals[m->outputs[o]];
        if (first->ndim < 1 || first->shape[0] != n0[1] - n0[0])
            return 1;
        int64_t row = sm_tensor_numel(first) / (first->shape[0] ? first->shape[0] : 1);
        size_t need = (size_t)(row * total);
        sm_tensor *g = &m->gathered[o];
        if (need > m->gathered_cap[o]) {
            float *nd = realloc(g->data, (need ? need : 1) * sizeof(float));
            if (!nd)
                return sm_err_set(err, "out of memory");
            g->data = nd;
            m->gathered_cap[o] = need;
        }
        g->ndim = first->ndim;
        memcpy(g->shape, first->shape, sizeof g->shape);
        g->shape[0] = total;
        for (int t = 0; t < lanes; t++) {
            const sm_tensor *part = &lp[t]->vals[m->outputs[o]];
            memcpy(g->data + n0[t] * row, part->data,
                   (size_t)(sm_tensor_numel(part)) * sizeof(float));
        }
    }
    return 0;
}

/* Splits the batch over the model's threads, one plan per lane. Returns 0,
 * 1 when the outputs turn out not to be batched (caller runs unsplit), or
 * -1 on error. */
static int run_split(sm_model *m, const sm_tensor *const *inputs,
                     const sm_tensor **outputs, sm_err *err)
{
    int lanes = m->threads;
    int64_t total = inputs[0]->shape[0];
    int64_t n0[SM_MODEL_MAX_THREADS + 1];
    lane_job jobs[SM_MODEL_MAX_THREADS];
    sm_tensor views[SM_MODEL_MAX_THREADS][8];
    plan *lp[SM_MODEL_MAX_THREADS];
    double flops = 0;
    for (int t = 0; t <= lanes; t++)
        n0[t] = total * t / lanes;
    for (int t = 0; t < lanes; t++) {
        for (int i = 0; i < m->n_inputs; i++) {
            views[t][i] = *inputs[i];
            int64_t row = sm_tensor_numel(inputs[i]) / total;
            views[t][i].shape[0] = n0[t + 1] - n0[t];
            views[t][i].data = inputs[i]->data + n0[t] * row;
            jobs[t].in[i] = &views[t][i];
        }
        jobs[t].m = m;
        if (!(jobs[t].p = lp[t] = get_plan(m, &m->lanes[t], jobs[t].in, err)))
            return -1;
        flops += lp[t]->flops;
    }
    pthread_t tid[SM_MODEL_MAX_THREADS];
    int started[SM_MODEL_MAX_THREADS] = {0};
    for (int t = 1; t < lanes; t++)
        started[t] = pthread_create(&tid[t], NULL, lane_main, &jobs[t]) == 0;
    for (int t = 0; t < lanes; t++)
        if (t == 0 || !started[t]) /* no thread to be had: run it here */
            lane_main(&jobs[t]);
    for (int t = 1; t < lanes; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
    int rc = gather(m, lp, n0, lanes, total, err);
    if (rc)
        return rc;
    for (int o = 0; o < m->n_outputs; o++)
        outputs[o] = &m->gathered[o];
    m->last_flops = flops;
    return 0;
}

int sm_model_run(sm_model *m, const sm_tensor *const *inputs, int n_inputs,
                 const sm_tensor **outputs, sm_err *err)
{
    if (n_inputs != m->n_inputs)
        return sm_err_set(err, "%s: %d inputs given, the model takes %d",
                          m->origin, n_inputs, m->n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        const value *v = &m->vals[m->inputs[i]];
        if (v->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return sm_err_set(err, "%s: input '%s' is %s; fix it with "
                              "sm_model_set_constant before running",
                              m->origin, v->name,
                              sm_tensorproto_type_name(v->elem_type));
        if (!inputs[i] || !inputs[i]->data)
            return sm_err_set(err, "%s: input '%s' has no data", m->origin,
                              v->name);
    }
    if (!m->unbatched && splittable(m, inputs)) {
        int rc = run_split(m, inputs, outputs, err);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return sm_err_prefix(err, "%s", m->origin);
        m->unbatched = 1; /* outputs not batched: never split again */
    }
    plan *p = get_plan(m, &m->lanes[0], inputs, err);
    if (!p)
        return sm_err_prefix(err, "%s", m->origin);
    run_plan(m, p, inputs);
    for (int i = 0; i < m->n_outputs; i++)
        outputs[i] = &p->vals[m->outputs[i]];
    m->last_flops = p->flops;
    return 0;
}

void sm_model_set_threads(sm_model *m, int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > SM_MODEL_MAX_THREADS)
        threads = SM_MODEL_MAX_THREADS;
    m->threads = threads;
}

const sm_tensor *sm_model_forward(sm_model *m, const float *x, int64_t n,
                                  sm_err *err)
{
    if (m->n_inputs != 1) {
        sm_err_set(err, "%s: the model has %d inputs; a classifier has one",
                   m->origin, m->n_inputs);
        return NULL;
    }
    const value *v = &m->vals[m->inputs[0]];
    if (v->decl_ndim < 1) {
        sm_err_set(err, "%s: input '%s' declares no shape", m->origin, v->name);
        return NULL;
    }
    sm_tensor t = {0};
    t.ndim = v->decl_ndim;
    memcpy(t.shape, v->decl, sizeof t.shape);
    t.shape[0] = n;
    for (int d = 1; d < t.ndim; d++)
        if (t.shape[d] < 0) {
            sm_err_set(err, "%s: input '%s' has a symbolic dim %d besides the "
                       "batch; use sm_model_run", m->origin, v->name, d);
            return NULL;
        }
    t.data = (float *)x;
    const sm_tensor *in[1] = {&t};
    const sm_tensor *out[64];
    if (m->n_outputs > 64) {
        sm_err_set(err, "%s: too many outputs", m->origin);
        return NULL;
    }
    if (sm_model_run(m, in, 1, out, err))
        return NULL;
    return out[0];
}

double sm_model_flops(const sm_model *m)
{
    return m->last_flops;
}
