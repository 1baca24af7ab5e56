/* sm_compute: a worker's task runner. It holds the models (cached by
 * content hash) and turns a TASK body into a RESULT body with the
 * explainers of core/explain/task.h. It never touches the network: a task
 * whose model is not loaded is answered "need the model" and tried again
 * with the bytes. */
#ifndef SM_COMPUTE_H
#define SM_COMPUTE_H

#include <stddef.h>
#include <stdint.h>

#include "explain/explainer.h"
#include "schemas/msg.h"
#include "util/err.h"

typedef struct sm_compute sm_compute;

/* threads: model threads (>= 1); cache: models kept (>= 1). */
sm_compute *sm_compute_new(int threads, int cache, const sm_msg_limits *l,
                           sm_err *err);
void sm_compute_destroy(sm_compute **c);

/* Teaches c a method that is not in the registry (a test's adaptive
 * method, a plug-in): tasks naming cls->name run it. Borrowed; at most 8.
 * 0, or -1 when full. */
int sm_compute_add_class(sm_compute *c, const sm_explainer_class *cls);

/* Test hook (tests/integration/faults.sh, a poison input): a task that
 * holds the image called id aborts the process. NULL or "": off. */
void sm_compute_set_crash_on(sm_compute *c, const char *id);

typedef enum sm_compute_status {
    SM_COMPUTE_DONE,       /* *result holds a RESULT body (maybe with an
                              error for the broker, e.g. a TASK that does
                              not decode) */
    SM_COMPUTE_NEED_MODEL, /* the model `need` (hash) is not loaded: call
                              again with its bytes */
    SM_COMPUTE_BAD_TASK,   /* the body does not decode and has no task id
                              to answer: drop it (message in err) */
} sm_compute_status;

/* Runs one TASK body. model/len: the model's bytes when the caller has
 * them (NULL otherwise). need receives a hash (SM_HASH_HEX + 1). */
sm_compute_status sm_compute_run(sm_compute *c, const void *task, size_t len,
                                 const void *model, size_t model_len,
                                 sm_msg_buf *result, char *need, sm_err *err);

#endif
