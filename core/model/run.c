/* Running a planned graph: single-threaded, or the batch split over lanes
 * that run in parallel and joined. */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"
#include "onnx/proto.h"
#include "onnx/tensorproto.h"
#include "util/pool.h"

/* --- running ------------------------------------------------------------- */

/* --- one image on two threads -------------------------------------------
 * A run too small to split by images (fewer than two a thread) still
 * takes a second thread: each node whose operator has run_part and enough
 * work is shared out by output channels (op.h), the caller's thread
 * walking the graph and posting such nodes, a helper thread taking parts
 * as they come. Either thread claims the next part of the posted node, so
 * the run completes on the caller alone when no helper could be started
 * (util/pool.h then runs it afterwards). The parts write disjoint outputs
 * with run's bits: the split changes nothing. */
#define TEAM_PARTS 2
/* Floating point operations below which a node runs whole: a hand-over
 * costs about a microsecond. */
#define TEAM_MIN_FLOPS 1e5

typedef struct team {
    const sm_model *m;
    plan *p;
    float *ws[TEAM_PARTS];   /* each thread's workspace */
    _Atomic uint64_t posted; /* node sequence number << 8 | next part */
    atomic_int finished;     /* parts of the posted node done */
    atomic_int quit;
    int node;                /* the posted node, written before posted */
} team;

typedef struct team_task {
    team *t;
    const sm_tensor *const *in;
    int id;
} team_task;

/* Floating point operations of the run below which it runs alone: the
 * helper thread is started for each run (util/pool.h), some tens of
 * microseconds, more than a LeNet-size network takes. */
#define TEAM_MIN_RUN_FLOPS 4e6

/* Node i's floating point operations if it is to be shared, else 0. */
static double shared_node(const sm_model *m, plan *p, int i)
{
    const node *n = &m->g.nodes[i];
    if (p->folded[i] || !n->op->run_part || !n->op->flops)
        return 0;
    const sm_tensor *nin[MAX_IO];
    sm_tensor *nout[MAX_IO];
    sm_plan_node_io(n, p->vals, nin, nout);
    double f = n->op->flops(n->params, nin, n->n_in,
                            (const sm_tensor *const *)nout, n->n_out);
    return f >= TEAM_MIN_FLOPS ? f : 0;
}

/* While parts of node number seq are left: claims one and runs it. */
static void team_claim(team *t, uint64_t seq, float *ws)
{
    for (;;) {
        uint64_t w = atomic_load_explicit(&t->posted, memory_order_acquire);
        if (w >> 8 != seq || (w & 0xff) >= TEAM_PARTS)
            return;
        if (!atomic_compare_exchange_weak_explicit(&t->posted, &w, w + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        const node *n = &t->m->g.nodes[t->node];
        const sm_tensor *nin[MAX_IO];
        sm_tensor *nout[MAX_IO];
        sm_plan_node_io(n, t->p->vals, nin, nout);
        n->op->run_part(n->params, t->m->packed ? t->m->packed[t->node] : NULL,
                        nin, n->n_in, nout, n->n_out, ws, (int)(w & 0xff),
                        TEAM_PARTS);
        atomic_fetch_add_explicit(&t->finished, 1, memory_order_release);
    }
}

/* Waiting: spins a while (a node takes microseconds), then yields the
 * core (the machine may be shared). */
static void team_pause(unsigned *spins)
{
    if (++*spins > 4000)
        sched_yield();
}

/* Evaluates every node of a planned graph; inputs are borrowed (operators
 * never write to their inputs). t: a team to share nodes with, or NULL. */
static void run_plan(const sm_model *m, plan *p, const sm_tensor *const *in,
                     team *t)
{
    uint64_t seq = 0;
    for (int i = 0; i < m->g.n_inputs; i++)
        p->vals[m->g.inputs[i]].data = in[i]->data;
    for (int i = 0; i < m->g.n_nodes; i++) {
        if (p->folded[i])
            continue;
        if (t && shared_node(m, p, i)) {
            t->node = i;
            atomic_store_explicit(&t->finished, 0, memory_order_relaxed);
            atomic_store_explicit(&t->posted, ++seq << 8, memory_order_release);
            team_claim(t, seq, t->ws[0]);
            unsigned spins = 0;
            while (atomic_load_explicit(&t->finished, memory_order_acquire) <
                   TEAM_PARTS)
                team_pause(&spins);
            continue;
        }
        const node *n = &m->g.nodes[i];
        const sm_tensor *nin[MAX_IO];
        sm_tensor *nout[MAX_IO];
        sm_plan_node_io(n, p->vals, nin, nout);
        if (m->packed && m->packed[i])
            n->op->run_packed(n->params, m->packed[i], nin, n->n_in, nout,
                              n->n_out, p->ws);
        else
            n->op->run(n->params, nin, n->n_in, nout, n->n_out, p->ws);
    }
}

static void team_main(void *arg)
{
    team_task *k = arg;
    team *t = k->t;
    if (k->id == 0) {
        run_plan(t->m, t->p, k->in, t);
        atomic_store_explicit(&t->quit, 1, memory_order_release);
        return;
    }
    uint64_t seen = 0;
    unsigned spins = 0;
    for (;;) {
        uint64_t seq = atomic_load_explicit(&t->posted, memory_order_acquire) >> 8;
        if (seq != seen) {
            seen = seq;
            team_claim(t, seq, t->ws[1]);
            spins = 0;
        } else if (atomic_load_explicit(&t->quit, memory_order_acquire)) {
            return;
        } else {
            team_pause(&spins);
        }
    }
}

/* run_plan on the caller's thread and a helper (lane 1's workspace), when
 * the nodes worth sharing are work enough; alone otherwise. 0 or -1 with
 * a message. */
static int run_team(sm_model *m, plan *p, const sm_tensor *const *in,
                    sm_err *err)
{
    double shared = 0;
    for (int i = 0; i < m->g.n_nodes && m->threads >= 2; i++)
        shared += shared_node(m, p, i);
    if (shared < TEAM_MIN_RUN_FLOPS) {
        run_plan(m, p, in, NULL);
        return 0;
    }
    float *ws1 = sm_lane_workspace(&m->lanes[1], p->ws_len, err);
    if (!ws1)
        return -1;
    team t = {.m = m, .p = p, .ws = {p->ws, ws1}};
    atomic_init(&t.posted, 0);
    atomic_init(&t.finished, 0);
    atomic_init(&t.quit, 0);
    team_task tasks[TEAM_PARTS] = {{&t, in, 0}, {&t, in, 1}};
    sm_pool_run(team_main, tasks, sizeof tasks[0], TEAM_PARTS);
    return 0;
}

static void forward_job(lane_job *j)
{
    run_plan(j->m, j->p, j->in, NULL);
}

_Static_assert(SM_MODEL_MAX_THREADS <= SM_POOL_MAX, "a lane a pool task");

static void lane_main(void *arg)
{
    lane_job *j = arg;
    j->fn(j);
}

void sm_lanes_run(lane_job *jobs, int lanes)
{
    sm_pool_run(lane_main, jobs, sizeof *jobs, lanes);
}

/* A model whose inputs all declare a symbolic first dim is taken to treat
 * it as a batch of independent images, so a batch can be split. */
static int splittable(const sm_model *m, const sm_tensor *const *in)
{
    if (m->threads < 2 || m->g.n_inputs < 1)
        return 0;
    for (int i = 0; i < m->g.n_inputs; i++) {
        const value *v = &m->g.vals[m->g.inputs[i]];
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
        if (first->ndim < 1 || m->g.n_inputs < 1 ||
            first->shape[0] != lp[0]->vals[m->g.inputs[0]].shape[0])
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
        for (int i = 0; i < m->g.n_inputs; i++) {
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
        m->gathered = calloc((size_t)m->g.n_outputs, sizeof(sm_tensor));
        m->gathered_cap = calloc((size_t)m->g.n_outputs, sizeof(size_t));
        if (!m->gathered || !m->gathered_cap) {
            sm_err_set(err, "out of memory");
            goto out;
        }
    }
    rc = sm_lanes_gather(m, lp, n0, lanes, m->g.outputs, m->g.n_outputs, 0,
                         m->gathered, m->gathered_cap, err);
    if (rc)
        goto out;
    for (int o = 0; o < m->g.n_outputs; o++)
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
    if (n_inputs != m->g.n_inputs)
        return sm_err_set(err, "%s: %d inputs given, the model takes %d",
                          m->g.origin, n_inputs, m->g.n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        const value *v = &m->g.vals[m->g.inputs[i]];
        if (v->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return sm_err_set(err, "%s: input '%s' is %s; fix it with "
                              "sm_model_set_constant before running",
                              m->g.origin, v->name,
                              sm_tensorproto_type_name(v->elem_type));
        if (!inputs[i] || !inputs[i]->data)
            return sm_err_set(err, "%s: input '%s' has no data", m->g.origin,
                              v->name);
    }
    m->last_lanes = 0; /* until this run succeeds, there is none to go back through */
    if (!m->unbatched && splittable(m, inputs)) {
        int rc = run_split(m, inputs, outputs, err);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return sm_err_prefix(err, "%s", m->g.origin);
        m->unbatched = 1; /* outputs not batched: never split again */
    }
    plan *p = sm_plan_get(m, &m->lanes[0], inputs, err);
    if (!p || run_team(m, p, inputs, err))
        return sm_err_prefix(err, "%s", m->g.origin);
    for (int i = 0; i < m->g.n_outputs; i++)
        outputs[i] = &p->vals[m->g.outputs[i]];
    m->last_flops = p->flops;
    m->last_lanes = 1;
    m->last_joined = 0;
    m->last_plan[0] = p;
    m->last_n0[0] = 0;
    m->last_n0[1] = m->g.n_inputs && inputs[0]->ndim ? inputs[0]->shape[0] : 1;
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
    if (m->g.n_inputs != 1) {
        sm_err_set(err, "%s: the model has %d inputs; a classifier has one",
                   m->g.origin, m->g.n_inputs);
        return NULL;
    }
    const value *v = &m->g.vals[m->g.inputs[0]];
    if (v->decl_ndim < 1) {
        sm_err_set(err, "%s: input '%s' declares no shape", m->g.origin, v->name);
        return NULL;
    }
    sm_tensor t = {0};
    t.ndim = v->decl_ndim;
    memcpy(t.shape, v->decl, sizeof t.shape);
    t.shape[0] = n;
    for (int d = 1; d < t.ndim; d++)
        if (t.shape[d] < 0) {
            sm_err_set(err, "%s: input '%s' has a symbolic dim %d besides the "
                       "batch; use sm_model_run", m->g.origin, v->name, d);
            return NULL;
        }
    t.data = (float *)x;
    const sm_tensor *in[1] = {&t};
    const sm_tensor *out[64];
    if (m->g.n_outputs > 64) {
        sm_err_set(err, "%s: too many outputs", m->g.origin);
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
