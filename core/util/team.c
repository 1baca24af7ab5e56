/* sm_team: a call is published by bumping a generation counter; workers
 * spin on it for about SPIN pauses (tens of microseconds: the gap between
 * two nodes of a forward pass) before sleeping on a condition variable,
 * and the caller waits for their acknowledgements likewise. */
#include "util/team.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

#define SPIN 2000

typedef struct member {
    struct sm_team *t;
    int idx;
} member;

struct sm_team {
    int n;
    pthread_t tid[SM_TEAM_MAX];
    int started[SM_TEAM_MAX];
    member mem[SM_TEAM_MAX];
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint gen;      /* bumped once a call (and to stop) */
    atomic_int pending;   /* started workers yet to acknowledge the call */
    atomic_int sleepers;  /* workers asleep on wake */
    atomic_int stop;
    /* the call, written before gen is bumped */
    void (*fn)(void *arg, int part, int parts);
    void *arg;
    int parts;
};

/* The generation after `seen`, spinning then asleep. */
static unsigned next_call(sm_team *t, unsigned seen)
{
    unsigned g = seen;
    for (int i = 0; i < SPIN; i++) {
        g = atomic_load_explicit(&t->gen, memory_order_acquire);
        if (g != seen)
            return g;
        RELAX();
    }
    pthread_mutex_lock(&t->mu);
    atomic_fetch_add(&t->sleepers, 1);
    while ((g = atomic_load(&t->gen)) == seen)
        pthread_cond_wait(&t->wake, &t->mu);
    atomic_fetch_sub(&t->sleepers, 1);
    pthread_mutex_unlock(&t->mu);
    return g;
}

static void *worker_main(void *arg)
{
    member *me = arg;
    sm_team *t = me->t;
    unsigned seen = 0;
    for (;;) {
        seen = next_call(t, seen);
        if (atomic_load(&t->stop))
            return NULL;
        if (me->idx < t->parts)
            t->fn(t->arg, me->idx, t->parts);
        if (atomic_fetch_sub_explicit(&t->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&t->mu);
            pthread_cond_signal(&t->done);
            pthread_mutex_unlock(&t->mu);
        }
    }
}

sm_team *sm_team_new(int n)
{
    if (n < 2)
        return NULL;
    if (n > SM_TEAM_MAX)
        n = SM_TEAM_MAX;
    sm_team *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n = n;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->wake, NULL);
    pthread_cond_init(&t->done, NULL);
    atomic_init(&t->gen, 0);
    atomic_init(&t->pending, 0);
    atomic_init(&t->sleepers, 0);
    atomic_init(&t->stop, 0);
    for (int k = 1; k < n; k++) {
        t->mem[k] = (member){t, k};
        t->started[k] = pthread_create(&t->tid[k], NULL, worker_main,
                                       &t->mem[k]) == 0;
        t->n_started += t->started[k];
    }
    return t;
}

/* Publishes the call (or the stop) and wakes any worker asleep. */
static void publish(sm_team *t)
{
    atomic_fetch_add(&t->gen, 1);
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->mu);
    }
}

void sm_team_destroy(sm_team **tp)
{
    sm_team *t = tp ? *tp : NULL;
    if (!t)
        return;
    atomic_store(&t->stop, 1);
    publish(t);
    for (int k = 1; k < t->n; k++)
        if (t->started[k])
            pthread_join(t->tid[k], NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->done);
    free(t);
    *tp = NULL;
}

int sm_team_size(const sm_team *t)
{
    return t ? t->n : 1;
}

void sm_team_run(sm_team *t, void (*fn)(void *arg, int part, int parts),
                 void *arg, int parts)
{
    if (!t || parts < 2 || t->n_started == 0) {
        for (int k = 0; k < parts; k++)
            fn(arg, k, parts);
        return;
    }
    assert(parts <= t->n);
    t->fn = fn;
    t->arg = arg;
    t->parts = parts;
    atomic_store(&t->pending, t->n_started);
    publish(t);
    fn(arg, 0, parts);
    for (int k = 1; k < parts; k++)
        if (!t->started[k]) /* no thread: its part runs here */
            fn(arg, k, parts);
    for (int i = 0; i < SPIN; i++) {
        if (atomic_load_explicit(&t->pending, memory_order_acquire) == 0)
            return;
        RELAX();
    }
    pthread_mutex_lock(&t->mu);
    while (atomic_load(&t->pending) > 0)
        pthread_cond_wait(&t->done, &t->mu);
    pthread_mutex_unlock(&t->mu);
}
