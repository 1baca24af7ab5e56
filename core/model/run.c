/* Running a planned graph: single-threaded, or the batch split over lanes
 * that run in parallel and joined. */
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"
#include "onnx/proto.h"
#include "onnx/tensorproto.h"
#include "util/clock.h"

/* --- running ------------------------------------------------------------- */

void sm_plan_run_node(const sm_model *m, plan *p, int i)
{
    if (p->folded[i] || p->fuse[i] < 0)
        return;
    const node *n = &m->g.nodes[i];
    const sm_tensor *nin[MAX_IO];
    sm_tensor *nout[MAX_IO];
    sm_plan_node_io(n, p->vals, nin, nout);
    const float *packed = m->packed ? m->packed[i] : NULL;
    if (p->fuse[i] > 0)
        n->op->run_relu(n->params, packed, nin, n->n_in, nout, n->n_out,
                        &p->vals[m->g.nodes[p->fuse[i] - 1].out[0]], p->ws);
    else if (packed)
        n->op->run_packed(n->params, packed, nin, n->n_in, nout, n->n_out,
                          p->ws);
    else
        n->op->run(n->params, nin, n->n_in, nout, n->n_out, p->ws);
}

/* The model's team of m->threads threads, made at the first call; NULL
 * with one thread, or when no thread could be had (runs stay on the
 * caller's). */
static sm_team *model_team(sm_model *m)
{
    if (m->threads < 2)
        return NULL;
    if (m->team && sm_team_size(m->team) != m->threads)
        sm_team_destroy(&m->team);
    if (!m->team)
        m->team = sm_team_new(m->threads);
    return m->team;
}

/* One node split over the team: its inputs and outputs, read by every
 * part. */
typedef struct node_parts {
    const plan *p;
    const node *n;
    const sm_tensor *nin[MAX_IO];
    sm_tensor *nout[MAX_IO];
    sm_tensor *relu;
    const float *packed;
} node_parts;

static void node_part(void *arg, int part, int parts)
{
    const node_parts *np = arg;
    np->n->op->run_part(np->n->params, np->packed, np->nin, np->n->n_in,
                        np->nout, np->n->n_out, np->relu,
                        np->p->ws + (size_t)part * np->p->ws_len, part, parts);
}

/* The least p->split[i] of a node split in this run of p over a team;
 * *timed: whether the run's time counts (split_record). The first
 * SM_PLAN_SPLIT_TRIALS runs of a period are the trials, half without the
 * tried splits, then half with (a block each way, so that the team's
 * threads, still spinning after a split run, do not weigh on runs
 * without); the faster way holds until the next period. */
static int split_level(plan *p, int *timed)
{
    split_trials *t = &p->trials;
    *timed = p->tried;
    if (!p->tried)
        return SPLIT_ALWAYS;
    const unsigned long r = t->runs++ % SM_PLAN_SPLIT_PERIOD;
    if (r == 0)
        t->best[0] = t->best[1] = 0;
    const int with = r < SM_PLAN_SPLIT_TRIALS ? r >= SM_PLAN_SPLIT_TRIALS / 2
                                              : t->split;
    return with ? SPLIT_TRIED : SPLIT_ALWAYS;
}

/* Records a run of p at `level` that took `secs`: a trial's, and after
 * the last, the choice; or a chosen run's, and after SM_PLAN_SPLIT_SLOW
 * in a row slower than the trials' best by SM_PLAN_SPLIT_SLOWER (the
 * machine changed: its threads now share a core, or no longer do), new
 * trials. */
static void split_record(plan *p, int level, double secs)
{
    split_trials *t = &p->trials;
    const unsigned long r = (t->runs - 1) % SM_PLAN_SPLIT_PERIOD;
    const int with = level == SPLIT_TRIED;
    if (r < SM_PLAN_SPLIT_TRIALS) {
        double *b = &t->best[with];
        if (*b == 0 || secs < *b)
            *b = secs;
        if (r == SM_PLAN_SPLIT_TRIALS - 1) {
            t->split = t->best[1] < t->best[0];
            t->slow = 0;
        }
        return;
    }
    t->slow = secs > SM_PLAN_SPLIT_SLOWER * t->best[with] ? t->slow + 1 : 0;
    if (t->slow >= SM_PLAN_SPLIT_SLOW)
        t->runs = 0;
}

/* Evaluates every node of a planned graph; inputs are borrowed (operators
 * never write to their inputs). With a team (lane 0's plan, run unsplit),
 * the nodes worth it are split over its threads. */
static void run_plan(const sm_model *m, sm_team *team, plan *p,
                     const sm_tensor *const *in)
{
    int timed = 0;
    const int level = team ? split_level(p, &timed) : SPLIT_ALWAYS + 1;
    const double t0 = timed ? sm_clock_now() : 0;
    for (int i = 0; i < m->g.n_inputs; i++)
        p->vals[m->g.inputs[i]].data = in[i]->data;
    for (int i = 0; i < m->g.n_nodes; i++) {
        /* split: neither folded nor fused away */
        if (p->split[i] < level) {
            sm_plan_run_node(m, p, i);
            continue;
        }
        node_parts np = {p, &m->g.nodes[i], {0}, {0}, NULL,
                         m->packed ? m->packed[i] : NULL};
        sm_plan_node_io(np.n, p->vals, np.nin, np.nout);
        if (p->fuse[i] > 0)
            np.relu = &p->vals[m->g.nodes[p->fuse[i] - 1].out[0]];
        sm_team_run(team, node_part, &np, sm_team_size(team));
    }
    if (timed)
        split_record(p, level, sm_clock_now() - t0);
}

static void forward_job(lane_job *j)
{
    run_plan(j->m, NULL, j->p, j->in);
}

_Static_assert(SM_MODEL_MAX_THREADS <= SM_TEAM_MAX, "a lane a team thread");

static void lane_part(void *arg, int part, int parts)
{
    (void)parts;
    lane_job *j = (lane_job *)arg + part;
    j->fn(j);
}

void sm_lanes_run(sm_model *m, lane_job *jobs, int lanes)
{
    sm_team *t = model_team(m);
    /* more lanes than threads (threads changed since the run): in turn */
    sm_team_run(lanes <= sm_team_size(t) ? t : NULL, lane_part, jobs, lanes);
}

/* A model whose inputs all declare a symbolic first dim is taken to treat
 * it as a batch of independent images: 1 when in is such a batch. */
static int batched_inputs(const sm_model *m, const sm_tensor *const *in)
{
    if (m->g.n_inputs < 1)
        return 0;
    for (int i = 0; i < m->g.n_inputs; i++) {
        const value *v = &m->g.vals[m->g.inputs[i]];
        if (v->decl_ndim < 1 || v->decl[0] >= 0 || in[i]->ndim < 1 ||
            in[i]->shape[0] != in[0]->shape[0])
            return 0;
    }
    return 1;
}

/* Whether a batch is split over the model's threads by images. */
static int splittable(const sm_model *m, const sm_tensor *const *in)
{
    return m->threads >= 2 && batched_inputs(m, in) &&
           in[0]->shape[0] >= 2 * m->threads;
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
            views[t * 8 + i] = sm_tensor_rows(inputs[i], n0[t], rows);
            jobs[t].in[i] = &views[t * 8 + i];
        }
        jobs[t].m = m;
        jobs[t].fn = forward_job;
        if (!(jobs[t].p = lp[t] = sm_plan_get(m, &m->lanes[t], jobs[t].in, err)))
            goto out;
        flops += lp[t]->flops;
    }
    sm_lanes_run(m, jobs, lanes);
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

/* The caller's inputs against the graph's: count, type, data. */
static int check_inputs(const sm_model *m, const sm_tensor *const *inputs,
                        int n_inputs, sm_err *err)
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
    return 0;
}

int sm_model_run(sm_model *m, const sm_tensor *const *inputs, int n_inputs,
                 const sm_tensor **outputs, sm_err *err)
{
    if (check_inputs(m, inputs, n_inputs, err))
        return -1;
    m->last_lanes = 0; /* until this run succeeds, there is none to go back through */
    m->last_infer = 0;
    if (!m->unbatched && splittable(m, inputs)) {
        int rc = run_split(m, inputs, outputs, err);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return sm_err_prefix(err, "%s", m->g.origin);
        m->unbatched = 1; /* outputs not batched: never split again */
    }
    plan *p = sm_plan_get(m, &m->lanes[0], inputs, err);
    if (!p)
        return sm_err_prefix(err, "%s", m->g.origin);
    run_plan(m, model_team(m), p, inputs);
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

/* --- forward only, in chunks of images ------------------------------------
 * sm_model_infer: a lane runs its rows as chunks of at most `cap` images,
 * each through the whole graph, so that a chunk's activations stay in the
 * cache from the layer that writes them to the one that reads them (a
 * whole batch's do not: MobileNet-style layers at batch 64 ran 1.5-2x
 * slower an image than at batch 2 to 16, bench/layers). The chunks of a
 * lane have one or two sizes (its rows shared out evenly), so one or two
 * plans; a chunk's outputs are copied into the joined outputs. */

typedef struct chunk_lane {
    const sm_model *m;
    const sm_tensor *const *in; /* the caller's whole inputs */
    plan *big, *small;          /* chunks of q + 1 rows (the first
                                   `extra`), and of q rows */
    int64_t r0, q, chunks, extra;
    const sm_tensor *out;       /* m->gathered */
    sm_team *team;              /* one lane: its nodes split over this */
} chunk_lane;

static void chunk_lane_run(void *arg, int part, int parts)
{
    (void)parts;
    const chunk_lane *c = (const chunk_lane *)arg + part;
    const sm_model *m = c->m;
    sm_tensor views[8];
    const sm_tensor *vin[8];
    int64_t r = c->r0;
    for (int64_t k = 0; k < c->chunks; k++) {
        int64_t rows = c->q + (k < c->extra);
        plan *p = k < c->extra ? c->big : c->small;
        for (int i = 0; i < m->g.n_inputs; i++) {
            views[i] = sm_tensor_rows(c->in[i], r, rows);
            vin[i] = &views[i];
        }
        run_plan(m, c->team, p, vin);
        for (int o = 0; o < m->g.n_outputs; o++) {
            const sm_tensor *y = &p->vals[m->g.outputs[o]];
            int64_t row = sm_tensor_numel(y) / rows;
            memcpy(c->out[o].data + r * row, y->data,
                   sizeof(float) * (size_t)(rows * row));
        }
        r += rows;
    }
}

/* m->gathered sized for `total` rows of the outputs p computes for `rows`;
 * 1 when an output's first dim is not the batch, -1 out of memory. */
static int gathered_fit(sm_model *m, const plan *p, int64_t rows,
                        int64_t total, sm_err *err)
{
    if (!m->gathered) {
        m->gathered = calloc((size_t)m->g.n_outputs, sizeof(sm_tensor));
        m->gathered_cap = calloc((size_t)m->g.n_outputs, sizeof(size_t));
        if (!m->gathered || !m->gathered_cap)
            return sm_err_set(err, "out of memory");
    }
    for (int o = 0; o < m->g.n_outputs; o++) {
        const sm_tensor *y = &p->vals[m->g.outputs[o]];
        if (y->ndim < 1 || y->shape[0] != rows)
            return 1;
        sm_tensor *g = &m->gathered[o];
        size_t need = (size_t)(sm_tensor_numel(y) / rows * total);
        if (need > m->gathered_cap[o]) {
            float *nd = realloc(g->data, (need ? need : 1) * sizeof(float));
            if (!nd)
                return sm_err_set(err, "out of memory");
            g->data = nd;
            m->gathered_cap[o] = need;
        }
        g->ndim = y->ndim;
        memcpy(g->shape, y->shape, sizeof g->shape);
        g->shape[0] = total;
    }
    return 0;
}

/* Lane ln's plan for `rows` rows of the inputs (shapes only). */
static plan *rows_plan(sm_model *m, lane *ln, const sm_tensor *const *in,
                       int64_t rows, sm_err *err)
{
    sm_tensor views[8];
    const sm_tensor *vin[8];
    for (int i = 0; i < m->g.n_inputs; i++) {
        views[i] = sm_tensor_rows(in[i], 0, rows);
        vin[i] = &views[i];
    }
    return sm_plan_get(m, ln, vin, err);
}

/* The batch in chunks over the lanes: 0, 1 when chunks would not help or
 * the outputs are not batched (the caller runs it as sm_model_run does),
 * -1 on error. */
static int infer_chunked(sm_model *m, const sm_tensor *const *in,
                         const sm_tensor **outputs, sm_err *err)
{
    if (m->unbatched || m->g.n_inputs > 8 || !batched_inputs(m, in))
        return 1;
    int64_t total = in[0]->shape[0];
    int lanes = m->threads >= 2 && total >= 2 * m->threads ? m->threads : 1;
    plan *one = rows_plan(m, &m->lanes[0], in, 1, err);
    if (!one)
        return -1;
    size_t per_image = (one->total ? one->total : 1) * sizeof(float);
    size_t budget = m->infer_bytes ? m->infer_bytes : SM_INFER_CHUNK_BYTES;
    int64_t cap = (int64_t)(budget / per_image);
    cap = cap < 1 ? 1 : cap;
    if ((total + lanes - 1) / lanes <= cap)
        return 1; /* one chunk a lane: a plain run */
    chunk_lane c[SM_MODEL_MAX_THREADS];
    for (int t = 0; t < lanes; t++) {
        int64_t r0 = total * t / lanes, rows = total * (t + 1) / lanes - r0;
        c[t] = (chunk_lane){m, in, NULL, NULL, r0, 0, 0, 0, NULL, NULL};
        c[t].chunks = (rows + cap - 1) / cap;
        c[t].q = rows / c[t].chunks;
        c[t].extra = rows % c[t].chunks;
        if (c[t].extra &&
            !(c[t].big = rows_plan(m, &m->lanes[t], in, c[t].q + 1, err)))
            return -1;
        if (!(c[t].small = rows_plan(m, &m->lanes[t], in, c[t].q, err)))
            return -1;
    }
    /* A lane's plans share its arena and workspace, which the planning
     * above may have grown after binding the first: bind both again, now
     * that the buffers hold the largest (no growth, no planning). */
    for (int t = 0; t < lanes; t++) {
        if ((c[t].extra &&
             !(c[t].big = rows_plan(m, &m->lanes[t], in, c[t].q + 1, err))) ||
            !(c[t].small = rows_plan(m, &m->lanes[t], in, c[t].q, err)))
            return -1;
        int rc = gathered_fit(m, c[t].small, c[t].q, total, err);
        if (rc > 0)
            m->unbatched = 1; /* outputs not batched: never split again */
        if (rc)
            return rc;
    }
    for (int t = 0; t < lanes; t++)
        c[t].out = m->gathered;
    sm_team *team = model_team(m);
    if (lanes == 1) { /* too few images to split: split nodes, as a run */
        c[0].team = team;
        chunk_lane_run(c, 0, 1);
    } else {
        sm_team_run(team && lanes <= sm_team_size(team) ? team : NULL,
                    chunk_lane_run, c, lanes);
    }
    m->last_flops = 0;
    for (int t = 0; t < lanes; t++) {
        m->last_flops += (double)(c[t].chunks - c[t].extra) * c[t].small->flops;
        if (c[t].extra)
            m->last_flops += (double)c[t].extra * c[t].big->flops;
    }
    for (int o = 0; o < m->g.n_outputs; o++)
        outputs[o] = &m->gathered[o];
    return 0;
}

int64_t sm_model_backward_rows(sm_model *m, const sm_tensor *const *inputs,
                               int n_inputs, sm_err *err)
{
    if (check_inputs(m, inputs, n_inputs, err))
        return -1;
    int64_t total = inputs[0]->shape[0] > 0 ? inputs[0]->shape[0] : 1;
    if (m->unbatched || m->g.n_inputs > 8 || !batched_inputs(m, inputs))
        return total; /* not a batch of images: whole */
    plan *one = rows_plan(m, &m->lanes[0], inputs, 1, err);
    if (!one)
        return sm_err_prefix(err, "%s", m->g.origin);
    /* activations and as many floats of their gradients */
    double bytes = 2.0 * (double)(one->total ? one->total : 1) * sizeof(float);
    if (one->flops / bytes >= SM_BACKWARD_CHUNK_INTENSITY)
        return total;
    int64_t cap = (int64_t)((double)SM_BACKWARD_CHUNK_BYTES / bytes);
    cap = cap < 2 ? 2 : cap; /* a run splits from 2 rows a lane */
    cap *= m->threads > 1 ? m->threads : 1;
    return cap < total ? cap : total;
}

void sm_model_set_infer_bytes(sm_model *m, size_t bytes)
{
    m->infer_bytes = bytes;
}

int sm_model_infer(sm_model *m, const sm_tensor *const *inputs, int n_inputs,
                   const sm_tensor **outputs, sm_err *err)
{
    if (check_inputs(m, inputs, n_inputs, err))
        return -1;
    m->last_lanes = 0;
    int rc = infer_chunked(m, inputs, outputs, err);
    if (rc < 0)
        return sm_err_prefix(err, "%s", m->g.origin);
    if (rc > 0 && sm_model_run(m, inputs, n_inputs, outputs, err))
        return -1;
    m->last_lanes = 0; /* nothing kept to go back through */
    m->last_infer = 1;
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

int sm_model_threads(const sm_model *m)
{
    return m->threads;
}

/* sm_model_forward and sm_model_forward_infer: `run` is sm_model_run or
 * sm_model_infer. */
static const sm_tensor *forward_with(sm_model *m, const float *x, int64_t n,
                                     int (*run)(sm_model *,
                                                const sm_tensor *const *, int,
                                                const sm_tensor **, sm_err *),
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
    if (run(m, in, 1, out, err))
        return NULL;
    return out[0];
}

const sm_tensor *sm_model_forward(sm_model *m, const float *x, int64_t n,
                                  sm_err *err)
{
    return forward_with(m, x, n, sm_model_run, err);
}

const sm_tensor *sm_model_forward_infer(sm_model *m, const float *x, int64_t n,
                                        sm_err *err)
{
    return forward_with(m, x, n, sm_model_infer, err);
}

double sm_model_flops(const sm_model *m)
{
    return m->last_flops;
}
