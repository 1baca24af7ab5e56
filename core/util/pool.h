/* Fork-join parallelism: n tasks at once, one thread each, the caller's
 * thread taking the first. Threads are started per call and joined before
 * it returns (no threads are kept between calls). */
#ifndef SM_POOL_H
#define SM_POOL_H

#include <stddef.h>

/* Most tasks one call runs. */
#define SM_POOL_MAX 64

/* Calls fn(tasks + t * size) for t < n (n <= SM_POOL_MAX) in parallel and
 * returns when all are done. The caller's thread runs task 0, and any task
 * no thread could be started for, so every task runs whatever the system
 * allows. */
void sm_pool_run(void (*fn)(void *task), void *tasks, size_t size, int n);

#endif
