#include "broker/embedded.h"

#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <zmq.h>

#include "broker/broker.h"
#include "data/image.h"
#include "worker/worker.h"

/* Heartbeats missed before the embedded broker or a worker gives the
 * other up (salmap-broker and salmap-worker: 3). */
#define EMBEDDED_LIVENESS 60

typedef struct eworker {
    sm_worker *w;
    pthread_t thread;
    int started;
    atomic_int stop;
} eworker;

struct sm_embedded {
    void *ctx;
    char endpoint[64], workers_ep[64];
    sm_broker *broker;
    pthread_t broker_thread;
    int broker_started;
    atomic_int broker_stop;
    eworker *wk;
    int n;
};

static void *broker_main(void *arg)
{
    sm_embedded *e = arg;
    sm_err err;
    if (sm_broker_run(e->broker, &e->broker_stop, &err))
        fprintf(stderr, "salmap: embedded broker: %s\n", err.msg);
    return NULL;
}

static void *worker_main(void *arg)
{
    eworker *w = arg;
    sm_err err;
    if (sm_worker_run(w->w, &w->stop, &err))
        fprintf(stderr, "salmap: embedded worker: %s\n", err.msg);
    return NULL;
}

sm_embedded *sm_embedded_new(int workers, int threads, sm_err *err)
{
    const int n = workers > 0 ? workers : 1;
    sm_embedded *e = calloc(1, sizeof *e);
    if (!e || !(e->wk = calloc((size_t)n, sizeof *e->wk))) {
        free(e);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    e->n = n;
    /* libvips is started on this thread, before the threads that use it
     * (sm_vips_init): two workers' first blurs starting it at once had
     * failed ("class \"embed\" not found") or crashed, once decoding no
     * longer started it first (data/png.h) */
    if (sm_vips_init(NULL, err))
        goto fail;
    if (!(e->ctx = zmq_ctx_new())) {
        sm_err_set(err, "zmq: %s", zmq_strerror(errno));
        goto fail;
    }
    /* inproc names are per context: fixed names are enough */
    snprintf(e->endpoint, sizeof e->endpoint, "inproc://salmap-clients");
    snprintf(e->workers_ep, sizeof e->workers_ep, "inproc://salmap-workers");
    sm_broker_config bc;
    sm_broker_config_defaults(&bc);
    snprintf(bc.client_endpoint, sizeof bc.client_endpoint, "%s", e->endpoint);
    snprintf(bc.worker_endpoint, sizeof bc.worker_endpoint, "%s", e->workers_ep);
    bc.state_dir[0] = '\0';
    /* Its workers are threads of this process: none dies alone, so a
     * silence only means the threads were starved (a loaded machine, a
     * sanitizer build), and must not count as a death that quarantines a
     * task. The same on the workers' side for the broker. */
    bc.heartbeat_liveness = EMBEDDED_LIVENESS;
    bc.task_timeout = 0; /* likewise: a long task is only long */
    if (!(e->broker = sm_broker_new(e->ctx, &bc, err)))
        goto fail;
    sm_broker_set_quiet(e->broker, 1);
    if (pthread_create(&e->broker_thread, NULL, broker_main, e)) {
        sm_err_set(err, "cannot start the broker thread");
        goto fail;
    }
    e->broker_started = 1;
    /* The workers' models split batches over their own threads; OpenBLAS
     * stays on one (as salmap-worker does; docs/PERFORMANCE.md), else the
     * two pools fight for the cores. */
    openblas_set_num_threads(1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    sm_worker_config wc;
    sm_worker_config_defaults(&wc);
    snprintf(wc.broker, sizeof wc.broker, "%s", e->workers_ep);
    wc.threads = threads > 0 ? threads
                             : (cores > e->n ? (int)(cores / e->n) : 1);
    wc.capacity = 2; /* the next task waits on the worker, not the broker */
    wc.heartbeat_liveness = EMBEDDED_LIVENESS;
    for (int k = 0; k < e->n; k++) {
        snprintf(wc.name, sizeof wc.name, "embedded-%d", k + 1);
        if (!(e->wk[k].w = sm_worker_new(e->ctx, &wc, err)))
            goto fail;
        sm_worker_set_quiet(e->wk[k].w, 1);
        if (pthread_create(&e->wk[k].thread, NULL, worker_main, &e->wk[k])) {
            sm_err_set(err, "cannot start a worker thread");
            goto fail;
        }
        e->wk[k].started = 1;
    }
    return e;
fail:
    sm_embedded_destroy(&e);
    return NULL;
}

void *sm_embedded_ctx(const sm_embedded *e)
{
    return e->ctx;
}

const char *sm_embedded_endpoint(const sm_embedded *e)
{
    return e->endpoint;
}

void sm_embedded_destroy(sm_embedded **ep)
{
    sm_embedded *e = *ep;
    if (!e)
        return;
    for (int k = 0; k < e->n; k++)
        atomic_store(&e->wk[k].stop, 1);
    for (int k = 0; k < e->n; k++) {
        if (e->wk[k].started)
            pthread_join(e->wk[k].thread, NULL);
        sm_worker_destroy(&e->wk[k].w);
    }
    atomic_store(&e->broker_stop, 1);
    if (e->broker_started)
        pthread_join(e->broker_thread, NULL);
    sm_broker_destroy(&e->broker);
    if (e->ctx)
        zmq_ctx_term(e->ctx);
    free(e->wk);
    free(e);
    *ep = NULL;
}
