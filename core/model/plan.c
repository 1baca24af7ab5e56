/* Planning (shapes, buffers, constant folding, once per input shape and
 * lane) and running, single-threaded or split over the batch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "onnx/proto.h"
#include "onnx/tensorproto.h"

static void plan_free(plan **pp)
{
    if (!*pp)
        return;
    free((*pp)->vals);
    free((*pp)->folded);
    free((*pp)->arena);
    free((*pp)->ws);
    free((*pp)->is_const);
    free((*pp)->grads);
    free((*pp)->garena);
    free((*pp)->bws);
    free((*pp)->rarena);
    free(*pp);
    *pp = NULL;
}

void sm_plan_drop_all(sm_model *m)
{
    m->last_lanes = 0;
    for (int l = 0; l < SM_MODEL_MAX_THREADS; l++) {
        for (int i = 0; i < MAX_PLANS; i++)
            plan_free(&m->lanes[l].plans[i]);
        m->lanes[l].last = NULL;
    }
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
            /* Parameters are data that changes between runs: never folded. */
            is_const[i] = !sm_model_is_param(m, i);
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
    p->is_const = is_const;
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

plan *sm_plan_get(sm_model *m, lane *ln, const sm_tensor *const *in,
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

static void forward_job(lane_job *j)
{
    run_plan(j->m, j->p, j->in);
}

static void *lane_main(void *arg)
{
    lane_job *j = arg;
    j->fn(j);
    return NULL;
}

void sm_lanes_run(lane_job *jobs, int lanes)
{
    pthread_t tid[SM_MODEL_MAX_THREADS];
    int started[SM_MODEL_MAX_THREADS] = {0};
    for (int t = 1; t < lanes; t++)
        started[t] = pthread_create(&tid[t], NULL, lane_main, &jobs[t]) == 0;
    for (int t = 0; t < lanes; t++)
        if (t == 0 || !started[t]) /* no thread to be had: run it here */
            jobs[t].fn(&jobs[t]);
    for (int t = 1; t < lanes; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
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

int sm_lanes_gather(const sm_model *m, plan *const *lp, const int64_t *n0,
                    int lanes, const int *vals, int nv, int grads,
                    sm_tensor *dst, size_t *cap, sm_err *err)
{
    int64_t total = n0[lanes];
    for (int o = 0; o < nv; o++) {
        const sm_tensor *first = grads ? &lp[0]->grads[vals[o]]
                                       : &lp[0]->vals[vals[o]];
        /* batched: the first dim is the lane's batch (its input's) */
        if (first->ndim < 1 || m->n_inputs < 1 ||
            first->shape[0] != lp[0]->vals[m->inputs[0]].shape[0])
            return 1;
        int64_t row = sm_tensor_numel(first) / (first->shape[0] ? first->shape[0] : 1);
        size_t need = (size_t)(row * total);
        sm_tensor *g = &dst[o];
        if (need > cap[o]) {
            float *nd = realloc(g->data, (need ? need : 1) * sizeof(float));
            if (!nd)
                return sm_err_set(err, "out of memory");
            g->data = nd;
            cap[o] = need;
        }
        g->ndim = first->ndim;
        memcpy(g->shape, first->shape, sizeof g->shape);
        g->shape[0] = total;
        for (int t = 0; t < lanes; t++) {
            const sm_tensor *part = grads ? &lp[t]->grads[vals[o]]
                                          : &lp[t]->vals[vals[o]];
            memcpy(g->data + n0[t] * row, part->data,
                   (size_t)((n0[t + 1] - n0[t]) * row) * sizeof(float));
        }
    }
    return 0;
}

/* Lane t's view of input i: its rows of the caller's data (borrowed). */
static void lane_view(const sm_tensor *in, int64_t r0, int64_t rows,
                      sm_tensor *view)
{
    int64_t row = sm_tensor_numel(in) / (in->shape[0] ? in->shape[0] : 1);
    *view = *in;
    view->owns = 0;
    view->shape[0] = rows;
    view->data = in->data + r0 * row;
}

/* Evaluates the batch as `lanes` slices, rows n0[t]..n0[t+1] each, in
 * parallel, joined. Returns 0, 1 when the outputs turn out not to be
 * batched (caller runs unsplit), or -1 on error. */
static int run_lanes(sm_model *m, const sm_tensor *const *inputs,
                     const sm_tensor **outputs, int lanes, const int64_t *n0,
                     sm_err *err)
{
    lane_job *jobs = calloc((size_t)lanes, sizeof *jobs);
    sm_tensor *views = calloc((size_t)lanes * 8, sizeof *views);
    plan *lp[SM_MODEL_MAX_THREADS];
    double flops = 0;
    int rc = -1;
    if (!jobs || !views) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (int t = 0; t < lanes; t++) {
        int64_t rows = n0[t + 1] - n0[t];
        for (int i = 0; i < m->n_inputs; i++) {
            lane_view(inputs[i], n0[t], rows, &views[t * 8 + i]);
            jobs[t].in[i] = &views[t * 8 + i];
        }
        jobs[t].m = m;
        jobs[t].fn = forward_job;
        if (!(jobs[t].p = lp[t] = sm_plan_get(m, &m->lanes[t], jobs[t].in, err)))
            goto out;
        flops += lp[t]->flops;
    }
    sm_lanes_run(jobs, lanes);
    if (!m->gathered) {
        m->gathered = calloc((size_t)m->n_outputs, sizeof(sm_tensor));
        m->gathered_cap = calloc((size_t)m->n_outputs, sizeof(size_t));
        if (!m->gathered || !m->gathered_cap) {
            sm_err_set(err, "out of memory");
            goto out;
        }
    }
    rc = sm_lanes_gather(m, lp, n0, lanes, m->outputs, m->n_outputs, 0,
                         m->gathered, m->gathered_cap, err);
    if (rc)
        goto out;
    for (int o = 0; o < m->n_outputs; o++)
        outputs[o] = &m->gathered[o];
    m->last_flops = flops;
    m->last_lanes = lanes;
    m->last_joined = 1;
    memcpy(m->last_plan, lp, sizeof(plan *) * (size_t)lanes);
    memcpy(m->last_n0, n0, sizeof(int64_t) * (size_t)(lanes + 1));
out:
    free(jobs);
    free(views);
    return rc;
}

/* Splits the batch over the model's threads, one plan per lane (sizes as
 * even as they go). Every operator computes each image on its own, in an
 * order that does not depend on the batch (ops/sgemm.h), so the split
 * changes no bits. */
static int run_split(sm_model *m, const sm_tensor *const *inputs,
                     const sm_tensor **outputs, sm_err *err)
{
    int64_t total = inputs[0]->shape[0];
    int64_t n0[SM_MODEL_MAX_THREADS + 1];
    int lanes = m->threads;
    for (int t = 0; t <= lanes; t++)
        n0[t] = total * t / lanes;
    return run_lanes(m, inputs, outputs, lanes, n0, err);
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
    m->last_lanes = 0; /* until this run succeeds, there is none to go back through */
    if (!m->unbatched && splittable(m, inputs)) {
        int rc = run_split(m, inputs, outputs, err);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return sm_err_prefix(err, "%s", m->origin);
        m->unbatched = 1; /* outputs not batched: never split again */
    }
    plan *p = sm_plan_get(m, &m->lanes[0], inputs, err);
    if (!p)
        return sm_err_prefix(err, "%s", m->origin);
    run_plan(m, p, inputs);
    for (int i = 0; i < m->n_outputs; i++)
        outputs[i] = &p->vals[m->outputs[i]];
    m->last_flops = p->flops;
    m->last_lanes = 1;
    m->last_joined = 0;
    m->last_plan[0] = p;
    m->last_n0[0] = 0;
    m->last_n0[1] = m->n_inputs && inputs[0]->ndim ? inputs[0]->shape[0] : 1;
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
