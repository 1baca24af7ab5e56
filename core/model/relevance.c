/* Layer-wise relevance propagation: a reverse sweep over the last run, like
 * backward.c's, in the same lanes and gradient buffers, that reuses each
 * operator's vector-Jacobian product. A linear node y = f(x) (+ b) moves
 * relevance by R_x = x * VJP_x(R_y / stab(y)), the epsilon rule with the
 * weights implicit in the VJP; the modified rules (z+, alpha-beta, flat)
 * run the weighted layer's own run() and backward() again with modified
 * weight and input tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"

extern const sm_op_class sm_op_conv, sm_op_gemm, sm_op_matmul, sm_op_add,
    sm_op_sub, sm_op_mul, sm_op_div, sm_op_averagepool,
    sm_op_globalaveragepool, sm_op_batchnormalization, sm_op_relu,
    sm_op_leakyrelu, sm_op_sigmoid, sm_op_tanh, sm_op_clip, sm_op_identity,
    sm_op_dropout, sm_op_maxpool, sm_op_flatten, sm_op_reshape,
    sm_op_transpose, sm_op_concat, sm_op_pad, sm_op_softmax,
    sm_op_logsoftmax;

/* How a node moves relevance. */
enum {
    K_NONE,     /* no rule: refused on the path */
    K_PASS,     /* elementwise activation: R_x = R_y */
    K_MOVE,     /* shape ops, MaxPool: R_x = VJP(R_y) */
    K_LINEAR,   /* epsilon rule over every non-constant input */
    K_WEIGHTED, /* Conv, Gemm, MatMul: the rule of sm_model_lrp_rules */
};

static int op_kind(const sm_op_class *op)
{
    static const struct {
        const sm_op_class *op;
        int kind;
    } table[] = {
        {&sm_op_conv, K_WEIGHTED}, {&sm_op_gemm, K_WEIGHTED},
        {&sm_op_matmul, K_WEIGHTED}, {&sm_op_add, K_LINEAR},
        {&sm_op_sub, K_LINEAR}, {&sm_op_mul, K_LINEAR},
        {&sm_op_div, K_LINEAR}, {&sm_op_averagepool, K_LINEAR},
        {&sm_op_globalaveragepool, K_LINEAR},
        {&sm_op_batchnormalization, K_LINEAR}, {&sm_op_relu, K_PASS},
        {&sm_op_leakyrelu, K_PASS}, {&sm_op_sigmoid, K_PASS},
        {&sm_op_tanh, K_PASS}, {&sm_op_clip, K_PASS},
        {&sm_op_identity, K_MOVE}, {&sm_op_dropout, K_MOVE},
        {&sm_op_maxpool, K_MOVE}, {&sm_op_flatten, K_MOVE},
        {&sm_op_reshape, K_MOVE}, {&sm_op_transpose, K_MOVE},
        {&sm_op_concat, K_MOVE}, {&sm_op_pad, K_MOVE},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].op == op)
            return table[i].kind;
    return K_NONE;
}

/* A value relevance never goes to: a constant, or a trained weight. */
static int fixed(const sm_model *m, const plan *p, int v)
{
    return v < 0 || p->is_const[v] || sm_graph_is_param(&m->g, v);
}

/* What every lane needs: per node, its kind and (weighted) rule, and the
 * operand indices of a weighted layer. */
typedef struct rel_ctx {
    const sm_model_lrp_rules *rules;
    unsigned char *kind, *rule;
    signed char *data, *weight; /* weighted: the input index of each */
} rel_ctx;

/* Classifies the nodes the relevance of output value ov flows through,
 * marks the values it reaches in m->live, and refuses what has no rule. */
static int mark(sm_model *m, const plan *p, int ov, rel_ctx *c, sm_err *err)
{
    if (!m->live && !(m->live = malloc((size_t)m->g.n_vals)))
        return sm_err_set(err, "out of memory");
    memset(m->live, 0, (size_t)m->g.n_vals);
    m->live[ov] = !fixed(m, p, ov);
    /* The first weighted layer in graph order is the one nearest the input:
     * find it before the reverse walk. */
    int first_node = -1;
    for (int i = 0; i < m->g.n_nodes && first_node < 0; i++)
        if (!p->folded[i] && op_kind(m->g.nodes[i].op) == K_WEIGHTED)
            first_node = i;
    for (int i = m->g.n_nodes - 1; i >= 0; i--) {
        const node *n = &m->g.nodes[i];
        int any = 0;
        for (int k = 0; k < n->n_out; k++)
            any |= n->out[k] >= 0 && m->live[n->out[k]];
        c->kind[i] = K_NONE;
        if (!any || p->folded[i])
            continue;
        const char *op = n->op->name;
        int kind = op_kind(n->op);
        if (n->op == &sm_op_softmax || n->op == &sm_op_logsoftmax)
            return sm_err_set(err, "node '%s': %s on the relevance path; LRP "
                              "explains scores before the %s: use a model "
                              "output that gives the logits", n->name, op, op);
        if (kind == K_NONE)
            return sm_err_set(err, "node '%s': operator %s has no relevance "
                              "rule", n->name, op);
        int v0 = n->in[0], v1 = n->n_in > 1 ? n->in[1] : -1;
        int f0 = fixed(m, p, v0), f1 = fixed(m, p, v1);
        if (kind == K_WEIGHTED) {
            /* Conv: x, W, B. Gemm and MatMul: the constant operand of the
             * two is the weight; a computed bias (Gemm's C) makes the node
             * plainly linear. */
            int d = n->op == &sm_op_conv ? 0 : f0 ? 1 : 0;
            int w = 1 - d, b = n->n_in > 2 ? n->in[2] : -1;
            if (!fixed(m, p, n->in[w])) {
                if (n->op != &sm_op_conv && !f0 && !f1)
                    return sm_err_set(err, "node '%s': %s of two activations "
                                      "is not linear: no relevance rule",
                                      n->name, op);
                return sm_err_set(err, "node '%s': %s weights computed by the "
                                  "graph: no relevance rule", n->name, op);
            }
            if (fixed(m, p, b)) {
                c->data[i] = (signed char)d;
                c->weight[i] = (signed char)w;
                c->rule[i] = (unsigned char)(i == first_node ? c->rules->first
                                             : n->op == &sm_op_conv ? c->rules->conv
                                             : c->rules->dense);
            } else {
                kind = K_LINEAR;
            }
        } else if (n->op == &sm_op_mul && !f0 && !f1) {
            return sm_err_set(err, "node '%s': Mul of two activations is not "
                              "linear: no relevance rule", n->name);
        } else if (n->op == &sm_op_div && !f1) {
            return sm_err_set(err, "node '%s': Div by an activation is not "
                              "linear: no relevance rule", n->name);
        } else if (n->op == &sm_op_batchnormalization) {
            for (int k = 1; k < n->n_in; k++)
                if (!fixed(m, p, n->in[k]))
                    return sm_err_set(err, "node '%s': BatchNormalization "
                                      "parameters computed by the graph: no "
                                      "relevance rule", n->name);
        }
        c->kind[i] = (unsigned char)kind;
        if (kind == K_WEIGHTED)
            m->live[n->in[c->data[i]]] = 1;
        else if (kind == K_PASS) /* Clip's bounds get none */
            m->live[v0] = !f0;
        else
            for (int k = 0; k < n->n_in; k++)
                if (!fixed(m, p, n->in[k]))
                    m->live[n->in[k]] = 1;
    }
    return 0;
}

/* --- scratch -------------------------------------------------------------- */

/* Scratch buffers, in plan->rarena: V floats each for ratios, VJP results,
 * modified outputs and inputs; W each for modified weights and biases. */
enum { S_POS, S_T, S_NEG, S_ZA, S_ZB, S_XP, S_XN, N_VBUF };
enum { W_POS, W_NEG, W_BIAS, N_WBUF };

typedef struct scratch {
    float *v[N_VBUF], *w[N_WBUF];
} scratch;

static int uses_modified(const rel_ctx *c, const sm_model *m)
{
    for (int i = 0; i < m->g.n_nodes; i++)
        if (c->kind[i] == K_WEIGHTED && c->rule[i] != SM_LRP_EPSILON)
            return 1;
    return 0;
}

static int ensure_scratch(const sm_model *m, plan *p, const rel_ctx *c,
                          scratch *s, sm_err *err)
{
    size_t V = 1, W = 1;
    for (int v = 0; v < m->g.n_vals; v++)
        if (!p->is_const[v] && (size_t)sm_tensor_numel(&p->vals[v]) > V)
            V = (size_t)sm_tensor_numel(&p->vals[v]);
    int mod = uses_modified(c, m);
    for (int i = 0; mod && i < m->g.n_nodes; i++) {
        const node *n = &m->g.nodes[i];
        if (c->kind[i] != K_WEIGHTED)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (k != c->data[i] && n->in[k] >= 0 &&
                (size_t)sm_tensor_numel(&p->vals[n->in[k]]) > W)
                W = (size_t)sm_tensor_numel(&p->vals[n->in[k]]);
    }
    V = (V + 15) & ~(size_t)15;
    W = (W + 15) & ~(size_t)15;
    /* The epsilon rule needs a ratio and a VJP buffer only. */
    size_t need = mod ? N_VBUF * V + N_WBUF * W : 2 * V;
    if (need > p->rcap) {
        free(p->rarena);
        p->rcap = 0;
        if (!(p->rarena = malloc(need * sizeof(float))))
            return sm_err_set(err, "out of memory for %zu floats of relevance "
                              "scratch", need);
        p->rcap = need;
    }
    memset(s, 0, sizeof *s);
    for (int k = 0; k < N_VBUF && (mod || k <= S_T); k++)
        s->v[k] = p->rarena + (size_t)k * V;
    for (int k = 0; mod && k < N_WBUF; k++)
        s->w[k] = p->rarena + N_VBUF * V + (size_t)k * W;
    return 0;
}

/* --- elementwise helpers ------------------------------------------------- */

/* s = r / (z + e sign(z)), sign(0) = +1; 0 where that is 0 (e = 0). */
static void ratio(const float *restrict r, const float *restrict z, float e,
                  float *restrict s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float d = z[i] + (z[i] >= 0 ? e : -e);
        s[i] = d != 0 ? r[i] / d : 0.0f;
    }
}

/* dst += a * x * t */
static void add_product(float *restrict dst, const float *restrict x,
                        const float *restrict t, float a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += a * x[i] * t[i];
}

static void add_to(float *restrict dst, const float *restrict src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* The positive (sign > 0) or negative part of src into dst; returns 1 when
 * that part has a nonzero element. */
static int part(const float *restrict src, int sign, float *restrict dst,
                int64_t n)
{
    int any = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = sign > 0 ? (src[i] > 0 ? src[i] : 0.0f)
                           : (src[i] < 0 ? src[i] : 0.0f);
        dst[i] = v;
        any |= v != 0;
    }
    return any;
}

static void fill(float *dst, float v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = v;
}

/* --- the rules ----------------------------------------------------------- */

/* One node and its input and output values in a plan. */
typedef struct nview {
    const node *n;
    plan *p;
    const sm_tensor *in[MAX_IO], *out[MAX_IO];
} nview;

/* t (zeroed here, shaped like input k) = VJP of node v with respect to
 * input k at gout, with inputs in (which may be modified tensors). */
static void vjp(const nview *v, const sm_tensor *const *in, int k,
                const sm_tensor *gout, sm_tensor *t)
{
    const node *n = v->n;
    const sm_tensor *go[MAX_IO] = {gout};
    sm_tensor *gin[MAX_IO] = {0};
    memset(t->data, 0, (size_t)sm_tensor_numel(t) * sizeof(float));
    gin[k] = t;
    n->op->backward(n->params, in, n->n_in, v->out, n->n_out, go, gin,
                    v->p->bws);
}

/* Epsilon rule over every relevant input k of a linear node:
 * R_k += x_k * VJP_k(R_y / stab(y)). */
static void rule_linear(const sm_model *m, const nview *v, float e,
                        const scratch *s)
{
    const node *n = v->n;
    plan *p = v->p;
    int y = n->out[0];
    sm_tensor g = p->vals[y], t;
    g.data = s->v[S_POS];
    ratio(p->grads[y].data, p->vals[y].data, e, g.data, sm_tensor_numel(&g));
    for (int k = 0; k < n->n_in; k++) {
        int x = n->in[k];
        if (x < 0 || !m->live[x])
            continue;
        t = p->vals[x];
        t.data = s->v[S_T];
        vjp(v, v->in, k, &g, &t);
        add_product(p->grads[x].data, p->vals[x].data, t.data, 1.0f,
                    sm_tensor_numel(&t));
    }
}

/* The weighted layer run with input x and weight w (bias b, or none) into
 * z (+= when acc). */
static void run_mod(const nview *v, int d, int wi, const sm_tensor *x,
                    const sm_tensor *w, const sm_tensor *b, sm_tensor *z,
                    float *tmp, int acc)
{
    const node *n = v->n;
    const sm_tensor *in[MAX_IO];
    memcpy(in, v->in, sizeof in);
    in[d] = x;
    in[wi] = w;
    if (n->n_in > 2)
        in[2] = b;
    sm_tensor o = *z;
    if (acc)
        o.data = tmp;
    sm_tensor *out[MAX_IO] = {&o};
    n->op->run(n->params, in, n->n_in, out, 1, v->p->ws);
    if (acc)
        add_to(z->data, tmp, sm_tensor_numel(z));
}

/* VJP to the data input with weight w at g, into t; then
 * R_x += a * xs * t. */
static void back_mod(const nview *v, int d, int wi, const sm_tensor *w,
                     const sm_tensor *g, const float *xs, float a,
                     sm_tensor *t, float *rx)
{
    const sm_tensor *in[MAX_IO];
    memcpy(in, v->in, sizeof in);
    in[wi] = w;
    vjp(v, in, d, g, t);
    if (xs)
        add_product(rx, xs, t->data, a, sm_tensor_numel(t));
    else /* flat: the input counts as ones */
        for (int64_t i = 0; i < sm_tensor_numel(t); i++)
            rx[i] += a * t->data[i];
}

/* z+, alpha-beta and flat on a Conv, Gemm or MatMul (rules in model.h). */
static void rule_weighted(const nview *v, int rule, int d, int wi,
                          const sm_model_lrp_rules *r, const scratch *s)
{
    const node *n = v->n;
    plan *p = v->p;
    int xv = n->in[d], y = n->out[0];
    const sm_tensor *x = &p->vals[xv], *w = &p->vals[n->in[wi]];
    const sm_tensor *b = n->n_in > 2 && n->in[2] >= 0 ? &p->vals[n->in[2]] : NULL;
    int64_t nx = sm_tensor_numel(x), nw = sm_tensor_numel(w);
    int64_t ny = sm_tensor_numel(&p->vals[y]);
    float e = (float)r->stabilizer, *rx = p->grads[xv].data;
    const float *ry = p->grads[y].data;
    sm_tensor xp = *x, xn = *x, wp = *w, wn = *w, t = *x;
    sm_tensor za = p->vals[y], zb = p->vals[y], gp = p->vals[y], gn = p->vals[y];
    xp.data = s->v[S_XP];
    xn.data = s->v[S_XN];
    wp.data = s->w[W_POS];
    wn.data = s->w[W_NEG];
    t.data = s->v[S_T];
    za.data = s->v[S_ZA];
    zb.data = s->v[S_ZB];
    gp.data = s->v[S_POS];
    gn.data = s->v[S_NEG];
    if (rule == SM_LRP_FLAT) {
        fill(xp.data, 1.0f, nx);
        fill(wp.data, 1.0f, nw);
        run_mod(v, d, wi, &xp, &wp, NULL, &za, NULL, 0);
        ratio(ry, za.data, e, gp.data, ny);
        back_mod(v, d, wi, &wp, &gp, NULL, 1.0f, &t, rx);
        return;
    }
    part(x->data, 1, xp.data, nx);
    int neg = part(x->data, -1, xn.data, nx); /* none after a Relu */
    part(w->data, 1, wp.data, nw);
    part(w->data, -1, wn.data, nw);
    if (rule == SM_LRP_ZPLUS) {
        /* z = x+ w+ + x- w-: the contributions that are positive. */
        run_mod(v, d, wi, &xp, &wp, NULL, &za, NULL, 0);
        if (neg)
            run_mod(v, d, wi, &xn, &wn, NULL, &za, zb.data, 1);
        ratio(ry, za.data, e, gp.data, ny);
        back_mod(v, d, wi, &wp, &gp, xp.data, 1.0f, &t, rx);
        if (neg)
            back_mod(v, d, wi, &wn, &gp, xn.data, 1.0f, &t, rx);
        return;
    }
    /* alpha-beta: positive contributions (with b+) and negative ones (with
     * b-) normalised separately; the bias parts share the W buffer. */
    sm_tensor bp, *bpp = NULL;
    if (b) {
        bp = *b;
        bp.data = s->w[W_BIAS];
        bpp = &bp;
        part(b->data, 1, bp.data, sm_tensor_numel(b));
    }
    run_mod(v, d, wi, &xp, &wp, bpp, &za, NULL, 0);
    if (neg)
        run_mod(v, d, wi, &xn, &wn, NULL, &za, gn.data, 1);
    ratio(ry, za.data, e, gp.data, ny);
    if (b)
        part(b->data, -1, bp.data, sm_tensor_numel(b));
    run_mod(v, d, wi, &xp, &wn, bpp, &zb, NULL, 0);
    if (neg)
        run_mod(v, d, wi, &xn, &wp, NULL, &zb, gn.data, 1);
    ratio(ry, zb.data, e, gn.data, ny);
    float a = (float)r->alpha, be = (float)r->beta;
    back_mod(v, d, wi, &wp, &gp, xp.data, a, &t, rx);
    back_mod(v, d, wi, &wn, &gn, xp.data, -be, &t, rx);
    if (neg) {
        back_mod(v, d, wi, &wn, &gp, xn.data, a, &t, rx);
        back_mod(v, d, wi, &wp, &gn, xn.data, -be, &t, rx);
    }
}

/* --- the sweep ----------------------------------------------------------- */

static void relevance_job(lane_job *j)
{
    const sm_model *m = j->m;
    const rel_ctx *c = j->ctx;
    plan *p = j->p;
    scratch s;
    /* Cannot fail: the caller sized the scratch before starting the lanes. */
    ensure_scratch(m, p, c, &s, NULL);
    if (sm_plan_seed(j, NULL))
        return;
    float e = (float)c->rules->epsilon;
    for (int i = m->g.n_nodes - 1; i >= 0; i--) {
        if (c->kind[i] == K_NONE)
            continue;
        nview v = {.n = &m->g.nodes[i], .p = p};
        const node *n = v.n;
        for (int k = 0; k < n->n_in; k++)
            v.in[k] = n->in[k] >= 0 ? &p->vals[n->in[k]] : NULL;
        for (int k = 0; k < n->n_out; k++)
            v.out[k] = n->out[k] >= 0 ? &p->vals[n->out[k]] : NULL;
        int y = n->out[0], x = n->in[0];
        switch (c->kind[i]) {
        case K_PASS:
            add_to(p->grads[x].data, p->grads[y].data,
                   sm_tensor_numel(&p->grads[y]));
            break;
        case K_MOVE: {
            const sm_tensor *gout[MAX_IO] = {0};
            sm_tensor *gin[MAX_IO] = {0};
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0 && m->live[n->out[k]])
                    gout[k] = &p->grads[n->out[k]];
            for (int k = 0; k < n->n_in; k++)
                if (n->in[k] >= 0 && m->live[n->in[k]])
                    gin[k] = &p->grads[n->in[k]];
            n->op->backward(n->params, v.in, n->n_in, v.out, n->n_out, gout,
                            gin, p->bws);
            break;
        }
        case K_WEIGHTED:
            if (c->rule[i] != SM_LRP_EPSILON) {
                rule_weighted(&v, c->rule[i], c->data[i], c->weight[i],
                              c->rules, &s);
                break;
            }
            /* the epsilon rule is the linear one */
            __attribute__((fallthrough));
        case K_LINEAR:
            rule_linear(m, &v, e, &s);
            break;
        }
    }
}

int sm_model_relevance(sm_model *m, int out, const sm_tensor *seed,
                       const sm_model_lrp_rules *rules,
                       const sm_tensor **rel_in, sm_err *err)
{
    if (sm_model_check_seed(m, out, seed, "relevance", err))
        return -1;
    if (!(rules->epsilon >= 0) || !(rules->stabilizer >= 0))
        return sm_err_set(err, "%s: relevance epsilon %g and stabilizer %g "
                          "must not be negative", m->g.origin, rules->epsilon,
                          rules->stabilizer);
    int lanes = m->last_lanes, ov = m->g.outputs[out];
    lane_job *jobs = NULL;
    rel_ctx c = {.rules = rules};
    size_t nn = (size_t)m->g.n_nodes + 1;
    c.kind = malloc(nn);
    c.rule = calloc(nn, 1);
    c.data = calloc(nn, 1);
    c.weight = calloc(nn, 1);
    int rc = -1;
    if (!c.kind || !c.rule || !c.data || !c.weight) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if (mark(m, m->last_plan[0], ov, &c, err))
        goto done;
    jobs = calloc((size_t)lanes, sizeof *jobs);
    if (!jobs) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    for (int t = 0; t < lanes; t++) {
        scratch s;
        if (sm_plan_ensure_grads(m, m->last_plan[t], err) ||
            ensure_scratch(m, m->last_plan[t], &c, &s, err))
            goto done;
    }
    sm_lanes_seed_jobs(m, out, seed, jobs, relevance_job, &c);
    sm_lanes_run(m, jobs, lanes);
    rc = sm_model_input_grads(m, rel_in, err);
done:
    free(jobs);
    free(c.kind);
    free(c.rule);
    free(c.data);
    free(c.weight);
    return rc ? sm_err_prefix(err, "%s", m->g.origin) : 0;
}
