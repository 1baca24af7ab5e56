/* sm_team: a call is published as one atomic word, (generation, parts,
 * next part), from which every thread, the caller's included, claims
 * parts until none is left; the caller returns when all are done. A part
 * goes to whichever thread is there first, so a worker that the system
 * has not scheduled (a busy machine) costs the call nothing: the caller
 * takes its parts. Workers wait for the next call spinning for SPIN
 * pauses (tens of microseconds: the gap between two nodes of a forward
 * pass), then asleep. */
#include "util/team.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

#define SPIN 2000

/* The claim word: generation (32 bits), parts (16), next part (16). */
#define GEN_OF(c) ((uint32_t)((c) >> 32))
#define PARTS_OF(c) ((int)(((c) >> 16) & 0xffff))
#define NEXT_OF(c) ((int)((c) & 0xffff))

struct sm_team {
    int n;
    pthread_t tid[SM_TEAM_MAX];
    int started[SM_TEAM_MAX];
    pthread_mutex_t mu;
    pthread_cond_t wake, finished;
    _Atomic uint64_t claim;
    atomic_int done;      /* parts of the current call finished */
    atomic_int sleepers;  /* workers asleep on wake */
    atomic_int caller_asleep;
    atomic_int stop;
    uint32_t gen;         /* the caller's count of calls */
    /* the call, written before its claim word is published */
    void (*fn)(void *arg, int part, int parts);
    void *arg;
};

/* Claims and runs parts of the call whose word was c until none is left
 * (or another call has begun: its parts are then no longer this one's to
 * take). */
static void run_claims(sm_team *t, uint64_t c)
{
    const uint32_t gen = GEN_OF(c);
    while (GEN_OF(c) == gen && NEXT_OF(c) < PARTS_OF(c)) {
        if (!atomic_compare_exchange_weak(&t->claim, &c, c + 1))
            continue; /* c reloaded */
        /* claimed: the caller waits for this part, so the call stands */
        const int part = NEXT_OF(c), parts = PARTS_OF(c);
        t->fn(t->arg, part, parts);
        if (atomic_fetch_add(&t->done, 1) + 1 == parts &&
            atomic_load(&t->caller_asleep)) {
            pthread_mutex_lock(&t->mu);
            pthread_cond_signal(&t->finished);
            pthread_mutex_unlock(&t->mu);
        }
        c = atomic_load(&t->claim);
    }
}

/* The claim word of the first call after generation `seen`, spinning
 * then asleep. */
static uint64_t next_call(sm_team *t, uint32_t seen)
{
    uint64_t c;
    for (int i = 0; i < SPIN; i++) {
        c = atomic_load_explicit(&t->claim, memory_order_acquire);
        if (GEN_OF(c) != seen)
            return c;
        RELAX();
    }
    pthread_mutex_lock(&t->mu);
    atomic_fetch_add(&t->sleepers, 1);
    while (GEN_OF(c = atomic_load(&t->claim)) == seen)
        pthread_cond_wait(&t->wake, &t->mu);
    atomic_fetch_sub(&t->sleepers, 1);
    pthread_mutex_unlock(&t->mu);
    return c;
}

static void *worker_main(void *arg)
{
    sm_team *t = arg;
    uint32_t seen = 0;
    for (;;) {
        uint64_t c = next_call(t, seen);
        if (atomic_load(&t->stop))
            return NULL;
        seen = GEN_OF(c);
        run_claims(t, c);
    }
}

/* Publishes a call of `parts` parts (0: the stop) and wakes the workers
 * asleep. */
static void publish(sm_team *t, int parts)
{
    t->gen++;
    atomic_store(&t->claim, (uint64_t)t->gen << 32 | (uint64_t)parts << 16);
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->mu);
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
    pthread_cond_init(&t->finished, NULL);
    atomic_init(&t->claim, 0);
    atomic_init(&t->done, 0);
    atomic_init(&t->sleepers, 0);
    atomic_init(&t->caller_asleep, 0);
    atomic_init(&t->stop, 0);
    for (int k = 1; k < n; k++)
        t->started[k] = pthread_create(&t->tid[k], NULL, worker_main, t) == 0;
    return t;
}

void sm_team_destroy(sm_team **tp)
{
    sm_team *t = tp ? *tp : NULL;
    if (!t)
        return;
    atomic_store(&t->stop, 1);
    publish(t, 0);
    for (int k = 1; k < t->n; k++)
        if (t->started[k])
            pthread_join(t->tid[k], NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->finished);
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
    if (!t || parts < 2) {
        for (int k = 0; k < parts; k++)
            fn(arg, k, parts);
        return;
    }
    assert(parts <= t->n && parts <= 0xffff);
    t->fn = fn;
    t->arg = arg;
    atomic_store(&t->done, 0);
    publish(t, parts);
    run_claims(t, atomic_load(&t->claim));
    for (int i = 0; i < SPIN; i++) {
        if (atomic_load_explicit(&t->done, memory_order_acquire) == parts)
            return;
        RELAX();
    }
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->caller_asleep, 1);
    while (atomic_load(&t->done) < parts)
        pthread_cond_wait(&t->finished, &t->mu);
    atomic_store(&t->caller_asleep, 0);
    pthread_mutex_unlock(&t->mu);
}
