/* sm_broker: takes jobs from clients, plans them into tasks, leases the
 * tasks to workers by credit, re-dispatches the tasks of dead workers,
 * gathers neighbourhood chunks and writes every map to the job's output
 * folder (schemas/PROTOCOL.md, docs/PIPELINE.md). One thread runs it: the
 * broker's loop never evaluates a model or fits a surrogate (workers do:
 * see broker/gather.c), so heartbeats are never late because of work. */
#ifndef SM_BROKER_H
#define SM_BROKER_H

#include <stdatomic.h>
#include <stddef.h>

#include "config/daemon_config.h"
#include "util/err.h"

typedef struct sm_broker sm_broker;

/* Binds cfg's client and worker endpoints on the ZeroMQ context ctx
 * (borrowed; inproc:// endpoints need the peers on the same context),
 * opens the journal in cfg->state_dir (":memory:"-like when state_dir is
 * empty: nothing survives the broker) and resumes the unfinished jobs it
 * finds there. NULL with a message. */
sm_broker *sm_broker_new(void *ctx, const sm_broker_config *cfg, sm_err *err);

/* Serves until *stop becomes non-zero (checked at least every 100 ms).
 * 0, or -1 with a message when the loop cannot go on (a socket error). */
int sm_broker_run(sm_broker *b, atomic_int *stop, sm_err *err);

/* The endpoint the client (which 0) or worker (1) socket is bound to, as
 * ZeroMQ reports it: "tcp://127.0.0.1:*" becomes the port it chose. */
void sm_broker_endpoint(const sm_broker *b, int which, char *buf, size_t cap);

/* The most bytes of files one FILES reply carries (default 8 MiB; a
 * reply holds at least one file whatever its size). */
void sm_broker_set_fetch_bytes(sm_broker *b, size_t bytes);

/* quiet: only warnings on stderr (bad images, dead workers), not the
 * progress of jobs and workers. */
void sm_broker_set_quiet(sm_broker *b, int quiet);

/* Closes the sockets (the jobs stay in the journal). NULL-safe. */
void sm_broker_destroy(sm_broker **b);

#endif
