/* sm_worker: connects to a broker, announces its capacity, runs the tasks
 * it is leased (worker/compute.h) on a compute thread while this thread
 * keeps heartbeating, fetches models by hash, reconnects with backoff when
 * the broker goes silent, and on stop finishes its current task, hands
 * back the rest (DISCONNECT) and returns. */
#ifndef SM_WORKER_H
#define SM_WORKER_H

#include <stdatomic.h>

#include "config/daemon_config.h"
#include "util/err.h"

typedef struct sm_worker sm_worker;

/* A worker on ZeroMQ context ctx (borrowed). cfg->threads is the model's
 * thread count (0: all cores). NULL with a message. */
sm_worker *sm_worker_new(void *ctx, const sm_worker_config *cfg, sm_err *err);

/* Serves until *stop becomes non-zero; 0, or -1 with a message. */
int sm_worker_run(sm_worker *w, atomic_int *stop, sm_err *err);

/* quiet: only warnings on stderr, not connects and stops. */
void sm_worker_set_quiet(sm_worker *w, int quiet);

void sm_worker_destroy(sm_worker **w);

#endif
