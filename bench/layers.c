/* bench/layers: where a forward pass's time goes, node by node: each node
 * of the planned graph run on its own (on one thread, after a whole run
 * has filled every activation) until it has taken a quarter of a second,
 * its microseconds an image (of the thread's CPU time), its share of the
 * sum and its GFLOP/s. A Relu fused into the node before it
 * (model/plan.c) takes its time there. Then the same for the backward
 * pass (what sal and grad run after it: the input gradient seeded with
 * ones), node by node, when every node on the path has one.
 *
 *   build/bench/layers [MODEL.onnx BATCH]...   (default: the ResNet-18
 *   and MobileNet-style fixtures at batch 1 and 64)
 *
 * It reads the engine's plans (model/exec.h): a bench, not a client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "model/exec.h"

/* Seconds of CPU this thread has run: the machine is shared, and a wall
 * clock would count the time other processes hold the core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Microseconds one call of step(m, p, i) takes: calls in blocks that
 * double until a quarter of a second, the clock read between blocks
 * (reading it is a system call, longer than a small node). */
static double time_node(const sm_model *m, plan *p, int i,
                        void (*step)(const sm_model *, plan *, int))
{
    long runs = 0, block = 1;
    double t0 = cpu_now(), t;
    do {
        for (long r = 0; r < block; r++)
            step(m, p, i);
        runs += block;
        block *= 2;
        t = cpu_now() - t0;
    } while (t < 0.25);
    return 1e6 * t / (double)runs;
}

/* Prints " %7.1f", the GFLOP/s of flops an image done in us microseconds
 * an image, or a dash for a node without a FLOP count. */
static void print_rate(double flops, int n, double us)
{
    if (flops > 0 && us > 0)
        printf(" %7.1f", flops / n / (us * 1e3));
    else
        printf(" %7s", "-");
}

static int profile(const char *path, int n)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_file(path, &err);
    if (!m) {
        fprintf(stderr, "layers: %s\n", err.msg);
        return -1;
    }
    const value *v = &m->g.vals[m->g.inputs[0]];
    size_t len = (size_t)n;
    for (int d = 1; d < v->decl_ndim; d++)
        len *= (size_t)v->decl[d];
    float *x = malloc(len * sizeof(float));
    for (size_t i = 0; i < len; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    sm_model_set_threads(m, 1);
    const sm_tensor *y = sm_model_forward(m, x, n, &err);
    if (!y) {
        fprintf(stderr, "layers: %s\n", err.msg);
        free(x);
        sm_model_destroy(&m);
        return -1;
    }
    plan *p = m->last_plan[0];
    double *us = calloc((size_t)m->g.n_nodes, sizeof(double)), sum = 0;
    double *bus = calloc((size_t)m->g.n_nodes, sizeof(double)), bsum = 0;
    double *fl = calloc((size_t)m->g.n_nodes, sizeof(double));
    char (*shape)[64] = calloc((size_t)m->g.n_nodes, sizeof *shape);
    for (int i = 0; i < m->g.n_nodes; i++) {
        if (p->folded[i] || p->fuse[i] < 0)
            continue;
        const node *nd = &m->g.nodes[i];
        const sm_tensor *nin[MAX_IO];
        sm_tensor *nout[MAX_IO];
        sm_plan_node_io(nd, p->vals, nin, nout);
        sm_shape_str(nout[0]->ndim, nout[0]->shape, shape[i], sizeof shape[i]);
        if (nd->op->flops)
            fl[i] = nd->op->flops(nd->params, nin, nd->n_in,
                                  (const sm_tensor *const *)nout, nd->n_out);
        us[i] = time_node(m, p, i, sm_plan_run_node) / n; /* as a run runs it */
        sum += us[i];
    }
    /* The backward, seeded with ones. */
    float *ones = malloc((size_t)sm_tensor_numel(y) * sizeof(float));
    for (int64_t k = 0; k < sm_tensor_numel(y); k++)
        ones[k] = 1.0f;
    sm_tensor seed = *y;
    seed.data = ones;
    const sm_tensor *gx[1];
    int bwd = sm_model_n_inputs(m) == 1 &&
              sm_model_backward(m, 0, &seed, gx, &err) == 0;
    for (int i = m->g.n_nodes - 1; bwd && i >= 0; i--) {
        /* a whole sweep first, so that every gradient the node reads is
         * there, and fresh: a node's repeated steps grow the gradients
         * upstream of it, which would reach infinities by the stem */
        if (!(bwd = sm_model_backward(m, 0, &seed, gx, &err) == 0))
            break;
        bus[i] = time_node(m, p, i, sm_plan_backward_node) / n;
        bsum += bus[i];
    }
    free(ones);
    printf("%s, batch %d, one thread: %.1f us an image in all", path, n, sum);
    if (bwd)
        printf(", %.1f backward", bsum);
    else
        printf(" (no backward: %s)", err.msg);
    printf("\n%-24s %-18s %-18s %9s %6s %7s %9s %7s\n", "node", "op", "output",
           "us/img", "share", "GFLOP/s", "bwd us", "GFLOP/s");
    for (int i = 0; i < m->g.n_nodes; i++) {
        if (p->folded[i])
            continue;
        printf("%-24.24s %-18.18s ", m->g.nodes[i].name, m->g.nodes[i].op->name);
        if (p->fuse[i] < 0)
            printf("%-18s %9s %6s %7s", "(fused above)", "", "", "");
        else {
            printf("%-18.18s %9.2f %5.1f%%", shape[i], us[i], 100.0 * us[i] / sum);
            print_rate(fl[i], n, us[i]);
        }
        if (bwd && bus[i] > 0) {
            printf(" %9.2f", bus[i]);
            print_rate(fl[i], n, bus[i]);
        }
        printf("\n");
    }
    free(fl);
    free(shape);
    free(us);
    free(bus);
    free(x);
    sm_model_destroy(&m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && argc % 2 == 1) {
        for (int a = 1; a + 1 < argc; a += 2)
            if (profile(argv[a], atoi(argv[a + 1])))
                return 1;
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: layers [MODEL.onnx BATCH]...\n");
        return 2;
    }
    const char *models[] = {"tests/fixtures/resnet18s.onnx",
                            "tests/fixtures/mobilenets.onnx"};
    for (int i = 0; i < 2; i++)
        for (int n = 1; n <= 64; n += 63)
            if (profile(models[i], n))
                return 1;
    return 0;
}
