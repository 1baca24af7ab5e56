/* sm_embedded: the pipeline in one process, the single-machine default of
 * `salmap explain`: a broker and N workers on threads, talking over
 * inproc:// sockets of one ZeroMQ context; a client (libsalmap-client)
 * submits to it as to a remote broker. The same code as a distributed
 * run, so the same maps. */
#ifndef SM_EMBEDDED_H
#define SM_EMBEDDED_H

#include "util/err.h"

typedef struct sm_embedded sm_embedded;

/* Starts a broker (no journal: state in a temporary folder) and `workers`
 * workers (>= 1), each running its model on `threads` threads (0: the
 * cores shared out among the workers). NULL with a message. */
sm_embedded *sm_embedded_new(int workers, int threads, sm_err *err);

/* The ZeroMQ context and the client endpoint to submit to. */
void *sm_embedded_ctx(const sm_embedded *e);
const char *sm_embedded_endpoint(const sm_embedded *e);

/* Stops the workers (each finishing its task) and the broker. */
void sm_embedded_destroy(sm_embedded **e);

#endif
