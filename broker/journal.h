/* sm_journal: the broker's memory of its jobs, in SQLite (WAL), so that a
 * broker started again resumes the jobs it had instead of losing them.
 * It holds each job's SUBMIT body and state; which maps are complete is
 * read back from the output folders themselves (explain/store.h), which
 * are written atomically, so the journal never disagrees with the disk. */
#ifndef SM_JOURNAL_H
#define SM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct sm_journal sm_journal;

/* Opens (creating) the journal at path; NULL path: in memory, gone with
 * the broker. NULL with a message naming the file. */
sm_journal *sm_journal_open(const char *path, sm_err *err);
void sm_journal_destroy(sm_journal **j);

/* Records a new job (state "queued"). 0 or -1. */
int sm_journal_add(sm_journal *j, const char *id, const void *body,
                   size_t len, sm_err *err);

/* Records a job's state and counts. 0 or -1. */
int sm_journal_set(sm_journal *j, const char *id, const char *state,
                   const char *error, uint64_t maps_done, uint64_t maps_failed,
                   sm_err *err);

/* Forgets a job. 0 or -1. */
int sm_journal_delete(sm_journal *j, const char *id, sm_err *err);

typedef struct sm_journal_row {
    const char *id, *state, *error; /* error may be NULL */
    const void *body;
    size_t len;
    uint64_t maps_done, maps_failed;
} sm_journal_row;

/* Calls fn on every job in submission order; fn returns 0 to go on.
 * 0, or -1 with a message (or fn's -1). */
int sm_journal_each(sm_journal *j, int (*fn)(const sm_journal_row *r, void *u),
                    void *u, sm_err *err);

#endif
