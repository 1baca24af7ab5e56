/* Backward through the last run: a reverse sweep of vector-Jacobian
 * products over the same plans (and threads) as the forward pass. */
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"

/* Gradient buffers for every value of a plan (constants' stay unused), and
 * the largest backward workspace; allocated once per plan. */
int sm_plan_ensure_grads(sm_model *m, plan *p, sm_err *err)
{
    if (p->grads)
        return 0;
    size_t total = 0, ws = 0;
    for (int v = 0; v < m->g.n_vals; v++)
        if (!p->is_const[v])
            total += (size_t)sm_tensor_numel(&p->vals[v]);
    for (int i = 0; i < m->g.n_nodes; i++) {
        const node *n = &m->g.nodes[i];
        if (p->folded[i] || !n->op->bwd_workspace)
            continue;
        const sm_tensor *nin[MAX_IO], *nout[MAX_IO];
        for (int k = 0; k < n->n_in; k++)
            nin[k] = n->in[k] >= 0 ? &p->vals[n->in[k]] : NULL;
        for (int k = 0; k < n->n_out; k++)
            nout[k] = n->out[k] >= 0 ? &p->vals[n->out[k]] : NULL;
        size_t w = n->op->bwd_workspace(n->params, nin, n->n_in, nout, n->n_out);
        ws = w > ws ? w : ws;
        if (sm_plan_pack_node(m, i, 1, p->is_const, nin, nout, err))
            return -1;
    }
    p->grads = calloc((size_t)m->g.n_vals, sizeof(sm_tensor));
    p->garena = malloc((total ? total : 1) * sizeof(float));
    p->bws = malloc((ws ? ws : 1) * sizeof(float));
    if (!p->grads || !p->garena || !p->bws) {
        free(p->grads);
        free(p->garena);
        free(p->bws);
        p->grads = NULL;
        p->garena = p->bws = NULL;
        return sm_err_set(err, "out of memory for %zu floats of gradients",
                          total);
    }
    size_t off = 0;
    for (int v = 0; v < m->g.n_vals; v++) {
        p->grads[v].ndim = p->vals[v].ndim;
        memcpy(p->grads[v].shape, p->vals[v].shape, sizeof p->vals[v].shape);
        if (p->is_const[v])
            continue;
        p->grads[v].data = p->garena + off;
        off += (size_t)sm_tensor_numel(&p->vals[v]);
    }
    return 0;
}

/* Whether node i takes part in a reverse sweep over p: a live output, and
 * not folded. */
static int sweeps(const sm_model *m, const plan *p, int i)
{
    const node *n = &m->g.nodes[i];
    int any = 0;
    for (int k = 0; k < n->n_out; k++)
        any |= n->out[k] >= 0 && m->live[n->out[k]];
    return any && !p->folded[i];
}

/* After mark_live: which nodes write an input's gradient whole (the
 * first of the sweep to write it, by an operator that can: op.h
 * backward_fresh; only a node whose first output has a gradient, so that
 * there is one to write), in m->bwd_fresh, and the values so written,
 * which the sweep need not zero, in m->fresh. The seeded output is
 * written by the seed. */
static int mark_fresh(sm_model *m, const plan *p, int ov, sm_err *err)
{
    if ((!m->fresh && !(m->fresh = malloc((size_t)m->g.n_vals))) ||
        (!m->bwd_fresh &&
         !(m->bwd_fresh = malloc(sizeof *m->bwd_fresh *
                                 ((size_t)m->g.n_nodes + 1)))))
        return sm_err_set(err, "out of memory");
    unsigned char *written = calloc((size_t)m->g.n_vals, 1);
    if (!written)
        return sm_err_set(err, "out of memory");
    memset(m->fresh, 0, (size_t)m->g.n_vals);
    written[ov] = 1;
    for (int i = m->g.n_nodes - 1; i >= 0; i--) {
        const node *n = &m->g.nodes[i];
        m->bwd_fresh[i] = 0;
        if (!sweeps(m, p, i))
            continue;
        const int can = n->op->backward_fresh && n->out[0] >= 0 &&
                        m->live[n->out[0]];
        for (int k = 0; k < n->n_in; k++) {
            const int v = n->in[k];
            if (v < 0 || !m->live[v])
                continue;
            if (!written[v] && can && (n->op->bwd_fresh_inputs >> k & 1u)) {
                m->bwd_fresh[i] |= 1u << k;
                m->fresh[v] = 1;
            }
            written[v] = 1;
        }
    }
    free(written);
    return 0;
}

/* Marks in m->live the values the gradient of output value `ov` flows
 * through (non-constant, on a path to it), using lane 0's plan; refuses an
 * operator without a backward on that path. */
static int mark_live(sm_model *m, const plan *p, int ov, sm_err *err)
{
    if (!m->live && !(m->live = malloc((size_t)m->g.n_vals)))
        return sm_err_set(err, "out of memory");
    memset(m->live, 0, (size_t)m->g.n_vals);
    m->live[ov] = !p->is_const[ov];
    for (int i = m->g.n_nodes - 1; i >= 0; i--) {
        const node *n = &m->g.nodes[i];
        if (!sweeps(m, p, i))
            continue;
        if (!n->op->backward)
            return sm_err_set(err, "node '%s': operator %s has no backward "
                              "pass yet, so gradients cannot go through it",
                              n->name, n->op->name);
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && !p->is_const[n->in[k]])
                m->live[n->in[k]] = 1;
    }
    return mark_fresh(m, p, ov, err);
}

int sm_plan_seed(const lane_job *j, const unsigned char *skip)
{
    const sm_model *m = j->m;
    plan *p = j->p;
    for (int v = 0; v < m->g.n_vals; v++)
        if (m->live[v] && !(skip && skip[v]))
            memset(p->grads[v].data, 0,
                   (size_t)sm_tensor_numel(&p->grads[v]) * sizeof(float));
    int ov = m->g.outputs[j->out];
    if (!m->live[ov])
        return 1; /* a constant output: everything stays zero */
    memcpy(p->grads[ov].data, j->seed.data,
           (size_t)sm_tensor_numel(&j->seed) * sizeof(float));
    return 0;
}

void sm_plan_backward_node(const sm_model *m, plan *p, int i)
{
    const node *n = &m->g.nodes[i];
    const sm_tensor *gout[MAX_IO], *nin[MAX_IO], *nout[MAX_IO];
    sm_tensor *gin[MAX_IO];
    int any = 0;
    for (int k = 0; k < n->n_out; k++) {
        int v = n->out[k];
        gout[k] = v >= 0 && m->live[v] ? &p->grads[v] : NULL;
        nout[k] = v >= 0 ? &p->vals[v] : NULL;
        any |= gout[k] != NULL;
    }
    if (!any || p->folded[i])
        return;
    for (int k = 0; k < n->n_in; k++) {
        int v = n->in[k];
        nin[k] = v >= 0 ? &p->vals[v] : NULL;
        gin[k] = v >= 0 && m->live[v] ? &p->grads[v] : NULL;
    }
    const float *packed = m->bwd_packed ? m->bwd_packed[i] : NULL;
    if (n->op->backward_fresh)
        n->op->backward_fresh(n->params, packed, nin, n->n_in, nout, n->n_out,
                              gout, gin, m->bwd_fresh[i], p->bws);
    else if (packed)
        n->op->backward_packed(n->params, packed, nin, n->n_in, nout,
                               n->n_out, gout, gin, p->bws);
    else
        n->op->backward(n->params, nin, n->n_in, nout, n->n_out, gout, gin,
                        p->bws);
}

static void backward_job(lane_job *j)
{
    if (sm_plan_seed(j, j->m->fresh))
        return;
    for (int i = j->m->g.n_nodes - 1; i >= 0; i--)
        sm_plan_backward_node(j->m, j->p, i);
}

int sm_model_check_seed(const sm_model *m, int out, const sm_tensor *seed,
                        const char *pass, sm_err *err)
{
    if (m->last_lanes < 1)
        return sm_err_set(err, "%s: %s needs a successful run first%s",
                          m->g.origin, pass, m->last_infer
                          ? " (the last was sm_model_infer, which keeps "
                            "nothing to go back through)" : "");
    if (out < 0 || out >= m->g.n_outputs)
        return sm_err_set(err, "%s: no output %d", m->g.origin, out);
    int lanes = m->last_lanes, ov = m->g.outputs[out];
    /* The seed has the shape of the output the caller saw (joined over the
     * lanes when the run was split). */
    sm_tensor whole = m->last_plan[0]->vals[ov];
    if (m->last_joined)
        whole.shape[0] = m->last_n0[lanes];
    char a[128], b[128];
    if (!seed || !seed->data ||
        !sm_shape_equal(seed->ndim, seed->shape, whole.ndim, whole.shape))
        return sm_err_set(err, "%s: the seed has shape %s, output '%s' %s",
                          m->g.origin,
                          seed ? sm_shape_str(seed->ndim, seed->shape, a, sizeof a) : "none",
                          m->g.vals[ov].name,
                          sm_shape_str(whole.ndim, whole.shape, b, sizeof b));
    return 0;
}

void sm_lanes_seed_jobs(sm_model *m, int out, const sm_tensor *seed,
                        lane_job *jobs, void (*fn)(lane_job *),
                        const void *ctx)
{
    int lanes = m->last_lanes, ov = m->g.outputs[out];
    const int64_t *n0 = m->last_n0;
    int64_t row = sm_tensor_numel(seed) / (n0[lanes] ? n0[lanes] : 1);
    for (int t = 0; t < lanes; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].m = m;
        jobs[t].p = m->last_plan[t];
        jobs[t].out = out;
        jobs[t].fn = fn;
        jobs[t].ctx = ctx;
        jobs[t].seed = m->last_plan[t]->vals[ov];
        jobs[t].seed.data = seed->data + (m->last_joined ? n0[t] * row : 0);
    }
}

int sm_model_backward(sm_model *m, int out, const sm_tensor *seed,
                      const sm_tensor **grads, sm_err *err)
{
    if (sm_model_check_seed(m, out, seed, "backward", err))
        return -1;
    int lanes = m->last_lanes, ov = m->g.outputs[out];
    if (mark_live(m, m->last_plan[0], ov, err))
        return sm_err_prefix(err, "%s", m->g.origin);
    lane_job *jobs = calloc((size_t)lanes, sizeof *jobs);
    if (!jobs)
        return sm_err_set(err, "%s: out of memory", m->g.origin);
    for (int t = 0; t < lanes; t++)
        if (sm_plan_ensure_grads(m, m->last_plan[t], err)) {
            free(jobs);
            return sm_err_prefix(err, "%s", m->g.origin);
        }
    sm_lanes_seed_jobs(m, out, seed, jobs, backward_job, NULL);
    sm_lanes_run(m, jobs, lanes);
    free(jobs);
    /* Parameter gradients: summed over the lanes' shares of the batch. */
    for (int i = 0; i < m->n_params; i++) {
        int v = m->params[i];
        float *dst = m->pgrad[i].data;
        size_t n = (size_t)sm_tensor_numel(&m->pgrad[i]);
        if (!m->live[v]) {
            memset(dst, 0, n * sizeof(float));
            continue;
        }
        memcpy(dst, m->last_plan[0]->grads[v].data, n * sizeof(float));
        for (int t = 1; t < lanes; t++) {
            const float *src = m->last_plan[t]->grads[v].data;
            for (size_t k = 0; k < n; k++)
                dst[k] += src[k];
        }
    }
    return sm_model_input_grads(m, grads, err);
}

int sm_model_input_grads(sm_model *m, const sm_tensor **grads, sm_err *err)
{
    int lanes = m->last_lanes;
    /* Inputs the sweep never reached get zeros. */
    for (int t = 0; t < lanes; t++)
        for (int i = 0; i < m->g.n_inputs; i++) {
            int v = m->g.inputs[i];
            if (!m->live[v])
                memset(m->last_plan[t]->grads[v].data, 0,
                       (size_t)sm_tensor_numel(&m->last_plan[t]->grads[v]) *
                           sizeof(float));
        }
    if (!m->last_joined) {
        for (int i = 0; i < m->g.n_inputs; i++)
            grads[i] = &m->last_plan[0]->grads[m->g.inputs[i]];
        return 0;
    }
    if (!m->ggathered) {
        m->ggathered = calloc((size_t)m->g.n_inputs, sizeof(sm_tensor));
        m->ggathered_cap = calloc((size_t)m->g.n_inputs, sizeof(size_t));
        if (!m->ggathered || !m->ggathered_cap)
            return sm_err_set(err, "%s: out of memory", m->g.origin);
    }
    if (sm_lanes_gather(m, m->last_plan, m->last_n0, lanes, m->g.inputs,
                        m->g.n_inputs, 1, m->ggathered, m->ggathered_cap, err))
        return sm_err_prefix(err, "%s", m->g.origin);
    for (int i = 0; i < m->g.n_inputs; i++)
        grads[i] = &m->ggathered[i];
    return 0;
}

/* An intermediate value or its gradient, from the last run's lanes. */
static const sm_tensor *activation(sm_model *m, const char *name, int grads,
                                   sm_err *err)
{
    int v = -1;
    for (int i = 0; i < m->g.n_vals; i++)
        if (strcmp(m->g.vals[i].name, name) == 0)
            v = i;
    if (v < 0) {
        sm_err_set(err, "%s: no value named '%s'", m->g.origin, name);
        return NULL;
    }
    if (m->last_lanes < 1 || (grads && (!m->live || !m->last_plan[0]->grads))) {
        sm_err_set(err, "%s: no %s before asking for '%s'%s", m->g.origin,
                   grads ? "backward" : "run", name, m->last_infer
                   ? " (sm_model_infer keeps no activations)" : "");
        return NULL;
    }
    if (grads && !m->live[v]) {
        sm_err_set(err, "%s: the last backward did not reach '%s'", m->g.origin,
                   name);
        return NULL;
    }
    if (!m->last_joined)
        return grads ? &m->last_plan[0]->grads[v] : &m->last_plan[0]->vals[v];
    int rc = sm_lanes_gather(m, m->last_plan, m->last_n0, m->last_lanes, &v, 1,
                             grads, &m->act_joined, &m->act_cap, err);
    if (rc) {
        if (rc > 0)
            sm_err_set(err, "%s: '%s' does not carry the batch in its first "
                       "dim", m->g.origin, name);
        return NULL;
    }
    return &m->act_joined;
}

const sm_tensor *sm_model_activation(sm_model *m, const char *name,
                                     sm_err *err)
{
    return activation(m, name, 0, err);
}

const sm_tensor *sm_model_activation_grad(sm_model *m, const char *name,
                                          sm_err *err)
{
    return activation(m, name, 1, err);
}

const char *sm_model_last_spatial(const sm_model *m)
{
    if (m->last_lanes < 1)
        return NULL;
    const plan *p = m->last_plan[0];
    const char *name = NULL;
    for (int i = 0; i < m->g.n_nodes; i++)
        for (int k = 0; k < m->g.nodes[i].n_out; k++) {
            int v = m->g.nodes[i].out[k];
            if (v >= 0 && !p->folded[i] && p->vals[v].ndim == 4)
                name = m->g.vals[v].name;
        }
    return name;
}
