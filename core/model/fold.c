/* Folding BatchNormalization into the Conv before it, at load:
 *   W'[m] = a[m] * W[m],  B'[m] = a[m] * B[m] + b[m]
 * where y = a * x + b is the normalisation's per-channel affine form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "ops/batchnorm.h"

extern const sm_op_class sm_op_conv;

static int is_const_float(const sm_model *m, int v)
{
    return v >= 0 && m->vals[v].kind == V_CONST && m->vals[v].cst->data &&
           !m->vals[v].cst->i64;
}

/* Nodes that read value v, plus one if it is a graph output. */
static int readers(const sm_model *m, int v)
{
    int n = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++)
            n += m->nodes[i].in[k] == v;
    for (int o = 0; o < m->n_outputs; o++)
        n += m->outputs[o] == v;
    return n;
}

static int producer(const sm_model *m, int v)
{
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_out; k++)
            if (m->nodes[i].out[k] == v)
                return i;
    return -1;
}

/* 1 when bn (a BatchNormalization node) can fold into conv: constant
 * weights, per-output-channel statistics, and nothing else reads the Conv's
 * output. */
static int foldable(const sm_model *m, const node *bn, const node *conv)
{
    if (conv->op != &sm_op_conv || bn->n_out != 1 || !is_const_float(m, conv->in[1]))
        return 0;
    if (conv->n_in > 2 && conv->in[2] >= 0 && !is_const_float(m, conv->in[2]))
        return 0;
    int64_t ch = m->vals[conv->in[1]].cst->shape[0];
    for (int k = 1; k <= 4; k++) {
        if (!is_const_float(m, bn->in[k]))
            return 0;
        const sm_tensor *t = m->vals[bn->in[k]].cst;
        if (t->ndim != 1 || t->shape[0] != ch)
            return 0;
    }
    return readers(m, conv->out[0]) == 1;
}

/* Frees a constant nothing reads any more (the weights before folding);
 * the value stays as an unproduced, unread slot. */
static void release_unread(sm_model *m, int v)
{
    if (v < 0 || m->vals[v].kind != V_CONST || readers(m, v))
        return;
    sm_tensor_destroy(&m->vals[v].cst);
    m->vals[v].kind = V_ACT;
}

static int fold_one(sm_model *m, node *bn, node *conv, int *vcap, sm_err *err)
{
    const sm_tensor *w = m->vals[conv->in[1]].cst;
    const sm_tensor *b = conv->n_in > 2 && conv->in[2] >= 0
                             ? m->vals[conv->in[2]].cst
                             : NULL;
    int64_t ch = w->shape[0], per = sm_tensor_numel(w) / (ch ? ch : 1);
    const sm_tensor *stats[5] = {NULL};
    for (int k = 1; k <= 4; k++)
        stats[k] = m->vals[bn->in[k]].cst;
    float *a = malloc(sizeof(float) * (size_t)(2 * ch + 1));
    sm_tensor *nw = sm_tensor_clone(w);
    sm_tensor *nb = sm_tensor_new(1, &ch);
    char name[600];
    snprintf(name, sizeof name, "%s.folded", bn->name);
    int iw = sm_model_add_value(m, name, V_CONST, vcap);
    strncat(name, "_bias", sizeof name - strlen(name) - 1);
    int ib = iw < 0 ? -1 : sm_model_add_value(m, name, V_CONST, vcap);
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
    m->vals[iw].cst = nw;
    m->vals[ib].cst = nb;
    int old_w = conv->in[1], old_b = conv->n_in > 2 ? conv->in[2] : -1;
    conv->in[1] = iw;
    conv->in[2] = ib;
    conv->n_in = 3;
    conv->out[0] = bn->out[0];
    release_unread(m, old_w);
    release_unread(m, old_b);
    return 0;
}

static void drop_node(sm_model *m, int i)
{
    sm_model_node_free(&m->nodes[i]);
    memmove(&m->nodes[i], &m->nodes[i + 1],
            (size_t)(m->n_nodes - i - 1) * sizeof(node));
    m->n_nodes--;
}

int sm_model_fold_batchnorm(sm_model *m, int *vcap, sm_err *err)
{
    for (int i = 0; i < m->n_nodes; i++) {
        node *bn = &m->nodes[i];
        if (bn->op != &sm_op_batchnormalization)
            continue;
        int c = producer(m, bn->in[0]);
        if (c < 0 || !foldable(m, bn, &m->nodes[c]))
            continue;
        if (fold_one(m, bn, &m->nodes[c], vcap, err))
            return -1;
        drop_node(m, i); /* the Conv came earlier: the order stays sorted */
        i--;
    }
    return 0;
}
