/* The loaded graph's own bookkeeping: adding values, freeing nodes and the
 * whole graph, and which values are trainable parameters. */
#include "model/graph.h"

#include <stdlib.h>
#include <string.h>

int sm_graph_add_value(sm_graph *g, const char *name, int kind, int *cap)
{
    if (g->n_vals == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        value *nv = realloc(g->vals, (size_t)nc * sizeof *nv);
        if (!nv)
            return -1;
        g->vals = nv;
        *cap = nc;
    }
    value *v = &g->vals[g->n_vals];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    if (!v->name)
        return -1;
    v->kind = kind;
    return g->n_vals++;
}

void sm_graph_node_free(node *n)
{
    if (n->params && n->op->release)
        n->op->release(n->params);
    free(n->params);
    free(n->name);
    free(n->in);
    free(n->out);
}

void sm_graph_free(sm_graph *g)
{
    for (int i = 0; i < g->n_vals; i++) {
        free(g->vals[i].name);
        sm_tensor_destroy(&g->vals[i].cst);
    }
    for (int i = 0; i < g->n_nodes; i++)
        sm_graph_node_free(&g->nodes[i]);
    free(g->vals);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->origin);
    memset(g, 0, sizeof *g);
}

int sm_graph_is_param(const sm_graph *g, int v)
{
    return g->trainable && g->vals[v].kind == V_CONST &&
           g->vals[v].cst->data && !g->vals[v].cst->i64;
}
