/* sm_pool_run: one thread a task, joined before returning. */
#include "util/pool.h"

#include <pthread.h>

typedef struct pool_task {
    void (*fn)(void *);
    void *task;
} pool_task;

static void *pool_main(void *arg)
{
    pool_task *t = arg;
    t->fn(t->task);
    return NULL;
}

void sm_pool_run(void (*fn)(void *task), void *tasks, size_t size, int n)
{
    pthread_t tid[SM_POOL_MAX];
    pool_task arg[SM_POOL_MAX];
    int started[SM_POOL_MAX] = {0};
    char *base = tasks;
    for (int t = 1; t < n; t++) {
        arg[t] = (pool_task){fn, base + (size_t)t * size};
        started[t] = pthread_create(&tid[t], NULL, pool_main, &arg[t]) == 0;
    }
    for (int t = 0; t < n; t++)
        if (t == 0 || !started[t]) /* no thread to be had: run it here */
            fn(base + (size_t)t * size);
    for (int t = 1; t < n; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
}
