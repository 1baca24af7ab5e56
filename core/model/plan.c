/* Planning: shapes, buffers and constant folding, once per input shape
 * and lane, kept in each lane's plan cache. */
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"

static void plan_free(plan **pp)
{
    if (!*pp)
        return;
    free((*pp)->vals);
    free((*pp)->folded);
    free((*pp)->offset);
    free((*pp)->is_const);
    free((*pp)->fuse);
    free((*pp)->split);
    free((*pp)->grads);
    free((*pp)->garena);
    free((*pp)->bws);
    free((*pp)->rarena);
    free(*pp);
    *pp = NULL;
}

/* Frees the buffers of p's folded node outputs (m's graph says which). */
static void folded_free(const sm_model *m, plan *p)
{
    if (!p || !p->vals || !p->folded)
        return;
    for (int i = 0; i < m->g.n_nodes; i++)
        if (p->folded[i])
            for (int k = 0; k < m->g.nodes[i].n_out; k++)
                if (m->g.nodes[i].out[k] >= 0) {
                    free(p->vals[m->g.nodes[i].out[k]].data);
                    p->vals[m->g.nodes[i].out[k]].data = NULL;
                }
}

/* Frees *pp and its folded outputs. */
static void plan_drop(const sm_model *m, plan **pp)
{
    folded_free(m, *pp);
    plan_free(pp);
}

void sm_plan_drop_all(sm_model *m)
{
    m->last_lanes = 0;
    for (int i = 0; i < m->g.n_nodes; i++) {
        free(m->packed ? m->packed[i] : NULL);
        free(m->bwd_packed ? m->bwd_packed[i] : NULL);
    }
    free(m->packed);
    free(m->pack_asked);
    free(m->bwd_packed);
    free(m->bwd_pack_asked);
    m->packed = m->bwd_packed = NULL;
    m->pack_asked = m->bwd_pack_asked = NULL;
    for (int l = 0; l < SM_MODEL_MAX_THREADS; l++) {
        lane *ln = &m->lanes[l];
        for (int i = 0; i < MAX_PLANS; i++)
            plan_drop(m, &ln->plans[i]);
        ln->last = NULL;
        free(ln->arena);
        free(ln->ws);
        ln->arena = ln->ws = NULL;
        ln->arena_cap = ln->ws_cap = 0;
    }
}

/* Grows *buf (*cap floats, 64-aligned) to n floats; contents are not
 * kept (a run writes every activation before reading it). 0 or -1. */
static int lane_grow(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    float *b = aligned_alloc(64, n * sizeof(float));
    if (!b)
        return -1;
    free(*buf);
    *buf = b;
    *cap = n;
    return 0;
}

/* Points p's activations into ln's arena (grown to fit) and its workspace
 * at ln's. 0 or -1 with a message. */
static int plan_bind(const sm_model *m, lane *ln, plan *p, sm_err *err)
{
    /* Lane 0 also runs nodes split over the model's threads, each part
     * in its own slice of the workspace (run.c). */
    size_t ws = p->ws_len * (ln == &m->lanes[0] ? (size_t)m->threads : 1);
    if (lane_grow(&ln->arena, &ln->arena_cap, p->total) ||
        lane_grow(&ln->ws, &ln->ws_cap, ws))
        return sm_err_set(err, "out of memory planning %zu floats of "
                          "activations", p->total);
    p->ws = ln->ws;
    if (p->bound == ln->arena)
        return 0;
    for (int i = 0; i < m->g.n_nodes; i++)
        if (!p->folded[i])
            for (int k = 0; k < m->g.nodes[i].n_out; k++) {
                int v = m->g.nodes[i].out[k];
                if (v >= 0)
                    p->vals[v].data = ln->arena + p->offset[v];
            }
    p->bound = ln->arena;
    return 0;
}

/* --- planning ------------------------------------------------------------ */

static int check_input_shape(const sm_model *m, int i, const sm_tensor *t,
                             sm_err *err)
{
    const value *v = &m->g.vals[m->g.inputs[i]];
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
    for (int i = 0; i < m->g.n_inputs; i++) {
        key[i][0] = in[i]->ndim;
        memcpy(&key[i][1], in[i]->shape, (size_t)in[i]->ndim * sizeof(int64_t));
    }
}

void sm_plan_node_io(const node *n, sm_tensor *vals, const sm_tensor **in,
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

int sm_plan_pack_node(sm_model *m, int i, int bwd,
                      const unsigned char *is_const,
                      const sm_tensor *const *nin,
                      const sm_tensor *const *nout, sm_err *err)
{
    const node *n = &m->g.nodes[i];
    size_t (*size)(const void *, const sm_tensor *const *, int,
                   const sm_tensor *const *, int) =
        bwd ? n->op->bwd_pack_size : n->op->pack_size;
    if (!size)
        return 0;
    float ***packed = bwd ? &m->bwd_packed : &m->packed;
    unsigned char **asked = bwd ? &m->bwd_pack_asked : &m->pack_asked;
    if (!*packed) {
        *packed = calloc((size_t)m->g.n_nodes, sizeof **packed);
        *asked = calloc((size_t)m->g.n_nodes, 1);
        if (!*packed || !*asked)
            return sm_err_set(err, "out of memory");
    }
    if ((*asked)[i])
        return 0;
    for (int k = 1; k < n->n_in; k++)
        if (n->in[k] >= 0 && !is_const[n->in[k]])
            return 0; /* a trainable parameter: it changes between runs */
    (*asked)[i] = 1;
    size_t len = size(n->params, nin, n->n_in, nout, n->n_out);
    if (!len)
        return 0;
    float *buf = aligned_alloc(64, round_up(len) * sizeof(float));
    if (!buf)
        return sm_err_set(err, "node '%s' (%s): out of memory packing %zu "
                          "floats", n->name, n->op->name, len);
    (bwd ? n->op->bwd_pack : n->op->pack)(n->params, nin, n->n_in, nout,
                                          n->n_out, buf);
    (*packed)[i] = buf;
    return 0;
}

/* Activations a plan may hold, per image (the first dim of input 0): a
 * ResNet-50 needs about 2^25 floats an image, while a model of a few
 * hundred bytes can declare shapes (or pads) of terabytes. */
#define MAX_FLOATS_PER_IMAGE ((int64_t)1 << 28)

/* Elements of t, or -1 when a dim is negative or the count passes limit
 * (checked before each product, so it cannot wrap). */
static int64_t bounded_numel(const sm_tensor *t, int64_t limit)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (t->shape[d] && n > limit / t->shape[d]))
            return -1;
        n *= t->shape[d];
    }
    return n;
}

/* Fuses each Relu into the node that computes its input, when that
 * node's operator can (op.h, run_relu): the first Relu reading its
 * output 0. Neither is folded (the Relu then cannot be either). Every
 * value is still computed, so other readers, backward and relevance see
 * what they would without. */
static void plan_fuse(const sm_model *m, plan *p)
{
    for (int i = 0; i < m->g.n_nodes; i++) {
        const node *n = &m->g.nodes[i];
        if (p->folded[i] || !n->op->run_relu || n->n_out < 1 || n->out[0] < 0)
            continue;
        for (int j = i + 1; j < m->g.n_nodes; j++) {
            const node *r = &m->g.nodes[j];
            if (!p->fuse[j] && strcmp(r->op->name, "Relu") == 0 &&
                r->in[0] == n->out[0] && r->out[0] >= 0) {
                p->fuse[i] = j + 1;
                p->fuse[j] = -1;
                break;
            }
        }
    }
}

static plan *build_plan(sm_model *m, const sm_tensor *const *in, sm_err *err)
{
    plan *p = calloc(1, sizeof *p);
    if (!p) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    make_key(m, in, p->key);
    p->vals = calloc((size_t)m->g.n_vals, sizeof(sm_tensor));
    p->folded = calloc((size_t)m->g.n_nodes + 1, 1);
    p->fuse = calloc((size_t)m->g.n_nodes + 1, sizeof *p->fuse);
    p->split = calloc((size_t)m->g.n_nodes + 1, 1);
    unsigned char *is_const = calloc((size_t)m->g.n_vals, 1);
    size_t *offset = calloc((size_t)m->g.n_vals, sizeof(size_t));
    if (!p->vals || !p->folded || !p->fuse || !p->split || !is_const ||
        !offset) {
        sm_err_set(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->g.n_vals; i++)
        if (m->g.vals[i].kind == V_CONST) {
            p->vals[i] = *m->g.vals[i].cst;
            p->vals[i].owns = 0;
            /* Parameters are data that changes between runs: never folded. */
            is_const[i] = !sm_graph_is_param(&m->g, i);
        }
    for (int i = 0; i < m->g.n_inputs; i++) {
        sm_tensor *t = &p->vals[m->g.inputs[i]];
        t->ndim = in[i]->ndim;
        memcpy(t->shape, in[i]->shape, sizeof t->shape);
    }
    /* Shapes, node by node; the sizes of every activation and workspace. */
    size_t total = 0, ws = 0;
    int64_t images = m->g.n_inputs && in[0]->ndim && in[0]->shape[0] > 1
                         ? in[0]->shape[0] : 1;
    int64_t limit = images > INT64_MAX / MAX_FLOATS_PER_IMAGE
                        ? INT64_MAX : images * MAX_FLOATS_PER_IMAGE;
    for (int i = 0; i < m->g.n_nodes; i++) {
        node *n = &m->g.nodes[i];
        const sm_tensor *nin[MAX_IO];
        sm_tensor *nout[MAX_IO];
        if (n->n_in > MAX_IO || n->n_out > MAX_IO) {
            sm_err_set(err, "node '%s': too many inputs or outputs", n->name);
            goto fail;
        }
        sm_plan_node_io(n, p->vals, nin, nout);
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
            if (nout[k]->ndim < 0 || nout[k]->ndim > SM_MAX_DIMS) {
                sm_err_set(err, "node '%s' (%s): invalid output shape",
                           n->name, n->op->name);
                goto fail;
            }
            int64_t cnt = bounded_numel(nout[k], limit);
            if (cnt < 0 || total > (size_t)limit ||
                (size_t)cnt > (size_t)limit - total) {
                char sh[160];
                sm_err_set(err, "node '%s' (%s): output shape %s is negative "
                           "or takes the activations past the limit of "
                           "%lld floats an image", n->name, n->op->name,
                           sm_shape_str(nout[k]->ndim, nout[k]->shape, sh,
                                        sizeof sh),
                           (long long)MAX_FLOATS_PER_IMAGE);
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
        if (!all_const &&
            sm_plan_pack_node(m, i, 0, is_const, nin,
                              (const sm_tensor *const *)nout, err))
            goto fail;
        if (n->op->flops && !all_const) {
            double f = n->op->flops(n->params, nin, n->n_in,
                                    (const sm_tensor *const *)nout, n->n_out);
            p->flops += f;
            if (n->op->run_part && f >= SM_PLAN_SPLIT_TRY_FLOPS &&
                n->op->split(n->params, nin, n->n_in,
                             (const sm_tensor *const *)nout, n->n_out))
                p->split[i] = f >= SM_PLAN_SPLIT_FLOPS ? SPLIT_ALWAYS
                                                       : SPLIT_TRIED;
            p->tried |= p->split[i] == SPLIT_TRIED;
        }
        p->folded[i] = (unsigned char)all_const;
        /* Folded outputs count as constants for the nodes below and keep
         * buffers of their own, outside the lane's shared arena (shapes
         * suffice here, but Reshape and Pad read constant contents in
         * infer, so fold now). */
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
    plan_fuse(m, p);
    p->total = total ? total : 16;
    p->ws_len = round_up(ws ? ws : 16);
    p->is_const = is_const;
    p->offset = offset;
    return p;
fail:
    folded_free(m, p);
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
        return plan_bind(m, ln, ln->last, err) ? NULL : ln->last;
    }
    int slot = 0;
    for (int i = 0; i < MAX_PLANS; i++) {
        plan *p = ln->plans[i];
        if (p && memcmp(p->key, key, sizeof key) == 0) {
            p->last_use = ln->clock;
            ln->last = p;
            return plan_bind(m, ln, p, err) ? NULL : p;
        }
        if (!p || (ln->plans[slot] && p->last_use < ln->plans[slot]->last_use))
            slot = i;
        if (!p)
            break;
    }
    for (int i = 0; i < m->g.n_inputs; i++)
        if (check_input_shape(m, i, in[i], err))
            return NULL;
    plan *p = build_plan(m, in, err);
    if (!p)
        return NULL;
    if (ln->last == ln->plans[slot])
        ln->last = NULL;
    plan_drop(m, &ln->plans[slot]);
    ln->plans[slot] = p;
    p->last_use = ln->clock;
    ln->last = p;
    return plan_bind(m, ln, p, err) ? NULL : p;
}
