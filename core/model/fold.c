/* Folding BatchNormalization into the Conv before it, at load:
 *   W'[m] = a[m] * W[m],  B'[m] = a[m] * B[m] + b[m]
 * where y = a * x + b is the normalisation's per-channel affine form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "ops/batchnorm.h"

extern const sm_op_class sm_op_conv;

static int is_const_float(const sm_graph *g, int v)
{
    return v >= 0 && g->vals[v].kind == V_CONST && g->vals[v].cst->data &&
           !g->vals[v].cst->i64;
}

/* Nodes that read value v, plus one if it is a graph output. */
static int readers(const sm_graph *g, int v)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            n += g->nodes[i].in[k] == v;
    for (int o = 0; o < g->n_outputs; o++)
        n += g->outputs[o] == v;
    return n;
}

static int producer(const sm_graph *g, int v)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] == v)
                return i;
    return -1;
}

/* 1 when bn (a BatchNormalization node) can fold into conv: constant
 * weights, per-output-channel statistics, and nothing else reads the Conv's
 * output. */
static int foldable(const sm_graph *g, const node *bn, const node *conv)
{
    if (conv->op != &sm_op_conv || bn->n_out != 1 || !is_const_float(g, conv->in[1]))
        return 0;
    if (conv->n_in > 2 && conv->in[2] >= 0 && !is_const_float(g, conv->in[2]))
        return 0;
    int64_t ch = g->vals[conv->in[1]].cst->shape[0];
    for (int k = 1; k <= 4; k++) {
        if (!is_const_float(g, bn->in[k]))
            return 0;
        const sm_tensor *t = g->vals[bn->in[k]].cst;
        if (t->ndim != 1 || t->shape[0] != ch)
            return 0;
    }
    return readers(g, conv->out[0]) == 1;
}

/* Frees a constant nothing reads any more (the weights before folding);
 * the value stays as an unproduced, unread slot. */
static void release_unread(sm_graph *g, int v)
{
    if (v < 0 || g->vals[v].kind != V_CONST || readers(g, v))
        return;
    sm_tensor_destroy(&g->vals[v].cst);
    g->vals[v].kind = V_ACT;
}

static int fold_one(sm_graph *g, node *bn, node *conv, int *vcap, sm_err *err)
{
    const sm_tensor *w = g->vals[conv->in[1]].cst;
    const sm_tensor *b = conv->n_in > 2 && conv->in[2] >= 0
                             ? g->vals[conv->in[2]].cst
                             : NULL;
    int64_t ch = w->shape[0], per = sm_tensor_numel(w) / (ch ? ch : 1);
    const sm_tensor *stats[5] = {NULL};
    for (int k = 1; k <= 4; k++)
        stats[k] = g->vals[bn->in[k]].cst;
    float *a = malloc(sizeof(float) * (size_t)(2 * ch + 1));
    sm_tensor *nw = sm_tensor_clone(w);
    sm_tensor *nb = sm_tensor_new(1, &ch);
    char name[600];
    snprintf(name, sizeof name, "%s.folded", bn->name);
    int iw = sm_graph_add_value(g, name, V_CONST, vcap);
    strncat(name, "_bias", sizeof name - strlen(name) - 1);
    int ib = iw < 0 ? -1 : sm_graph_add_value(g, name, V_CONST, vcap);
    int *in = realloc(conv->in, 3 * sizeof(int));
    if (!a || !nw || !nb || iw < 0 || ib < 0 || !in) {
        free(a);
        sm_tensor_destroy(&nw);
        sm_tensor_destroy(&nb);
        if (in)
            conv->in = in;
        return sm_err_set(err, "out of memory folding '%s'", bn->name);
    }
    conv->in = in;
    sm_batchnorm_affine(bn->params, stats, a, a + ch);
    for (int64_t c = 0; c < ch; c++) {
        for (int64_t i = 0; i < per; i++)
            nw->data[c * per + i] *= a[c];
        nb->data[c] = a[c] * (b ? b->data[c] : 0.0f) + a[ch + c];
    }
    free(a);
    g->vals[iw].cst = nw;
    g->vals[ib].cst = nb;
    int old_w = conv->in[1], old_b = conv->n_in > 2 ? conv->in[2] : -1;
    conv->in[1] = iw;
    conv->in[2] = ib;
    conv->n_in = 3;
    conv->out[0] = bn->out[0];
    release_unread(g, old_w);
    release_unread(g, old_b);
    return 0;
}

static void drop_node(sm_graph *g, int i)
{
    sm_graph_node_free(&g->nodes[i]);
    memmove(&g->nodes[i], &g->nodes[i + 1],
            (size_t)(g->n_nodes - i - 1) * sizeof(node));
    g->n_nodes--;
}

int sm_graph_fold_batchnorm(sm_graph *g, int *vcap, sm_err *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        node *bn = &g->nodes[i];
        if (bn->op != &sm_op_batchnormalization)
            continue;
        int c = producer(g, bn->in[0]);
        if (c < 0 || !foldable(g, bn, &g->nodes[c]))
            continue;
        if (fold_one(g, bn, &g->nodes[c], vcap, err))
            return -1;
        drop_node(g, i); /* the Conv came earlier: the order stays sorted */
        i--;
    }
    return 0;
}
