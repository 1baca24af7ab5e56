/* sm_team: threads kept for the life of their owner (a model), that take
 * the parts of one call at a time: fork-join at the cost of a wake-up, not
 * of a thread's start (util/pool.h starts threads per call, which costs
 * more than a whole node of a one-image run). Every thread, the caller's
 * included, takes parts until none is left, so a worker the system has
 * not scheduled delays nothing. A worker waits for the next call spinning
 * for a short while, then asleep. One caller at a time. */
#ifndef SM_TEAM_H
#define SM_TEAM_H

#define SM_TEAM_MAX 64

typedef struct sm_team sm_team;

/* A team of n threads: the caller's and n - 1 started here. NULL when out
 * of memory or n < 2; a thread that cannot be started leaves its parts to
 * the caller. */
sm_team *sm_team_new(int n);

/* Stops and joins the threads, frees the team and sets *t to NULL (safe
 * on NULL). */
void sm_team_destroy(sm_team **t);

/* Threads of the team, the caller's included. */
int sm_team_size(const sm_team *t);

/* Calls fn(arg, k, parts) once for each k < parts (parts <=
 * sm_team_size), each on whichever thread takes it first, and returns
 * when all are done. */
void sm_team_run(sm_team *t, void (*fn)(void *arg, int part, int parts),
                 void *arg, int parts);

#endif
