/* sm_team: every part of every call runs exactly once, and is done when
 * the call returns, across many calls in a row and after the workers have
 * gone to sleep. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "util/team.h"

typedef struct record {
    atomic_long runs[SM_TEAM_MAX];
    pthread_t who[SM_TEAM_MAX];
    long sum;
    atomic_long total;
} record;

static void note(void *arg, int part, int parts)
{
    record *r = arg;
    cr_assert(part >= 0 && part < parts);
    atomic_fetch_add(&r->runs[part], 1);
    r->who[part] = pthread_self();
    atomic_fetch_add(&r->total, part + 1);
}

Test(team, each_part_once)
{
    sm_team *t = sm_team_new(4);
    cr_assert(t);
    cr_assert_eq(sm_team_size(t), 4);
    for (int parts = 1; parts <= 4; parts++) {
        record r = {0};
        sm_team_run(t, note, &r, parts);
        for (int k = 0; k < parts; k++)
            cr_assert_eq(atomic_load(&r.runs[k]), 1, "%d parts: part %d", parts, k);
        for (int k = parts; k < 4; k++)
            cr_assert_eq(atomic_load(&r.runs[k]), 0);
    }
    sm_team_destroy(&t);
    cr_assert_null(t);
    sm_team_destroy(&t); /* safe on NULL */
}

Test(team, many_calls_lose_nothing)
{
    sm_team *t = sm_team_new(2);
    record r = {0};
    long want = 0;
    for (int i = 0; i < 20000; i++) {
        int parts = 1 + i % 2;
        sm_team_run(t, note, &r, parts);
        want += parts == 2 ? 3 : 1;
        /* the call is over when it returns: its parts are all counted */
        cr_assert_eq(atomic_load(&r.total), want, "call %d", i);
    }
    sm_team_destroy(&t);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

Test(team, calls_after_the_workers_sleep)
{
    /* 20 ms idle between calls: far past the workers' spinning, so each
     * call has to wake them. */
    sm_team *t = sm_team_new(3);
    record r = {0};
    for (int i = 0; i < 5; i++) {
        for (double t0 = now(); now() - t0 < 0.02;)
            ;
        sm_team_run(t, note, &r, 3);
        cr_assert_eq(atomic_load(&r.total), 6L * (i + 1));
    }
    sm_team_destroy(&t);
}

Test(team, no_team_runs_every_part_on_the_caller)
{
    cr_assert_null(sm_team_new(1));
    cr_assert_eq(sm_team_size(NULL), 1);
    record r = {0};
    sm_team_run(NULL, note, &r, 3);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(atomic_load(&r.runs[k]), 1);
        cr_assert(pthread_equal(r.who[k], pthread_self()));
    }
}
