/* The model object: a graph loaded (load.c) and shape-checked by planning
 * it once, its accessors, and the edits that invalidate its plans
 * (constant inputs, training on or off). */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include "model/exec.h"
#include "onnx/proto.h"
#include "util/file.h"

void sm_model_destroy(sm_model **mp)
{
    if (!mp || !*mp)
        return;
    sm_model *m = *mp;
    sm_plan_drop_all(m);
    sm_team_destroy(&m->team);
    if (m->gathered)
        for (int i = 0; i < m->g.n_outputs; i++)
            free(m->gathered[i].data);
    free(m->gathered);
    free(m->gathered_cap);
    if (m->ggathered)
        for (int i = 0; i < m->g.n_inputs; i++)
            free(m->ggathered[i].data);
    free(m->ggathered);
    free(m->ggathered_cap);
    free(m->live);
    free(m->fresh);
    free(m->bwd_fresh);
    free(m->act_joined.data);
    free(m->params);
    if (m->pgrad)
        for (int i = 0; i < m->n_params; i++)
            free(m->pgrad[i].data);
    free(m->pgrad);
    sm_graph_free(&m->g);
    free(m);
    *mp = NULL;
}

/* The declared input shapes with symbolic dims set to 1; 0 when every input
 * is float and fully determined that way, -1 otherwise (checked at run). */
static int probe_shapes(const sm_model *m, sm_tensor *probe)
{
    for (int i = 0; i < m->g.n_inputs; i++) {
        const value *v = &m->g.vals[m->g.inputs[i]];
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
    sm_model *m = calloc(1, sizeof *m);
    if (!m) {
        sm_err_set(err, "%s: out of memory", origin);
        return NULL;
    }
    m->threads = 1;
    if (sm_graph_load(&m->g, buf, len, origin, err)) {
        sm_model_destroy(&m);
        return NULL;
    }
    int rc = 0;
    if (m->g.n_inputs <= 8) {
        /* Shape-check now, for the declared input shape (batch 1). */
        sm_tensor probe[8];
        const sm_tensor *pp[8];
        if (probe_shapes(m, probe) == 0) {
            for (int i = 0; i < m->g.n_inputs; i++)
                pp[i] = &probe[i];
            rc = sm_plan_get(m, &m->lanes[0], pp, err) ? 0 : -1;
        }
    } else {
        rc = sm_err_set(err, "%d graph inputs (at most 8)", m->g.n_inputs);
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

int sm_model_n_inputs(const sm_model *m) { return m->g.n_inputs; }
int sm_model_n_outputs(const sm_model *m) { return m->g.n_outputs; }
int sm_model_n_nodes(const sm_model *m) { return m->g.n_nodes; }

const char *sm_model_input_name(const sm_model *m, int i)
{
    return i >= 0 && i < m->g.n_inputs ? m->g.vals[m->g.inputs[i]].name : NULL;
}

const char *sm_model_output_name(const sm_model *m, int i)
{
    return i >= 0 && i < m->g.n_outputs ? m->g.vals[m->g.outputs[i]].name : NULL;
}

int sm_model_input_shape(const sm_model *m, int i, int64_t *shape)
{
    const value *v = &m->g.vals[m->g.inputs[i]];
    for (int d = 0; d < v->decl_ndim; d++)
        shape[d] = v->decl[d];
    return v->decl_ndim;
}

int sm_model_output_index(const sm_model *m, const char *name)
{
    for (int i = 0; i < m->g.n_outputs; i++)
        if (strcmp(m->g.vals[m->g.outputs[i]].name, name) == 0)
            return i;
    return -1;
}

int sm_model_input_index(const sm_model *m, const char *name)
{
    for (int i = 0; i < m->g.n_inputs; i++)
        if (strcmp(m->g.vals[m->g.inputs[i]].name, name) == 0)
            return i;
    return -1;
}

int sm_model_set_constant(sm_model *m, const char *name, const sm_tensor *t,
                          sm_err *err)
{
    int i = sm_model_input_index(m, name);
    if (i < 0)
        return sm_err_set(err, "%s: no graph input named '%s'", m->g.origin, name);
    value *v = &m->g.vals[m->g.inputs[i]];
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
    memmove(&m->g.inputs[i], &m->g.inputs[i + 1],
            (size_t)(m->g.n_inputs - i - 1) * sizeof(int));
    m->g.n_inputs--;
    sm_plan_drop_all(m);
    return 0;
}

void sm_model_set_trainable(sm_model *m, int on)
{
    if (m->g.trainable == !!on)
        return;
    m->g.trainable = !!on;
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
    m->params = malloc(((size_t)m->g.n_vals + 1) * sizeof(int));
    m->pgrad = calloc((size_t)m->g.n_vals + 1, sizeof(sm_tensor));
    if (!m->params || !m->pgrad)
        return; /* n_params stays 0: nothing to train, reported by the trainer */
    for (int v = 0; v < m->g.n_vals; v++)
        if (sm_graph_is_param(&m->g, v)) {
            sm_tensor *g = &m->pgrad[m->n_params];
            const sm_tensor *w = m->g.vals[v].cst;
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
    return i >= 0 && i < m->n_params ? m->g.vals[m->params[i]].name : NULL;
}

sm_tensor *sm_model_param(sm_model *m, int i)
{
    return i >= 0 && i < m->n_params ? m->g.vals[m->params[i]].cst : NULL;
}

const sm_tensor *sm_model_param_grad(const sm_model *m, int i)
{
    return i >= 0 && i < m->n_params ? &m->pgrad[i] : NULL;
}

int sm_model_param_reader(const sm_model *m, int i, const char **node,
                          const char **op, int *slot)
{
    if (i < 0 || i >= m->n_params)
        return -1;
    for (int n = m->g.n_nodes - 1; n >= 0; n--)
        for (int k = 0; k < m->g.nodes[n].n_in; k++)
            if (m->g.nodes[n].in[k] == m->params[i]) {
                if (node)
                    *node = m->g.nodes[n].name;
                if (op)
                    *op = m->g.nodes[n].op->name;
                if (slot)
                    *slot = k;
                return n;
            }
    return -1;
}
