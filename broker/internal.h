/* What the broker's files share (broker.c: sockets, life and the loop;
 * clients.c and workers.c: the two endpoints; jobs.c: a job's life;
 * tasks.c: tasks and their FIFOs; plan.c: a job into tasks; gather.c:
 * workers' results; log.c: log lines; path.c: paths refused, not cut).
 * Each declaration below is used across files; the rest of each file is
 * static. */
#ifndef SM_BROKER_INTERNAL_H
#define SM_BROKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/journal.h"
#include "broker/zap.h"
#include "schemas/curve.h"
#include "config/model_config.h"
#include "data/dataset.h"
#include "explain/explainer.h"
#include "explain/store.h"
#include "io/jobinfo.h"
#include "report/finish.h"
#include "schemas/msg.h"

typedef struct bjob bjob;
typedef struct btask btask;
typedef struct bworker bworker;

/* A worker, known by its ROUTER identity. */
struct bworker {
    uint8_t id[256];
    size_t id_len;
    char *name;        /* as it says in READY (any length) */
    uint32_t capacity, inflight;
    double expiry;     /* dead when not heard from by then */
    double last_sent;  /* for heartbeats */
    double joined, heard; /* READY, the last message (WORKERS) */
    uint64_t served;   /* tasks leased, for least-recently-used choice */
    bworker *next;
};

/* The part scores of one image's neighbourhood, gathered from chunk
 * tasks until all parts are in. */
typedef struct bgather {
    struct bgather *next; /* the job's gathers: the job owns them */
    int failed;           /* a part failed: the rest are ignored */
    size_t image;
    int method;
    int parts, received;
    int round;         /* 1, 2, ...: the round being scored */
    uint8_t *state;    /* the image's state for this round (from the last
                          step), NULL in round 1: workers begin it */
    size_t state_len;
    int64_t samples;   /* n of the round, from the first part in */
    double **scores;   /* per part, NULL until received */
    int64_t *len;
} bgather;

/* A unit of work. */
struct btask {
    uint64_t id;
    bjob *job;
    int method;
    sm_task_kind kind;
    size_t *images;    /* dataset indices */
    size_t n_images;
    int part;          /* chunk */
    bgather *gather;   /* chunk and step (borrowed from the job) */
    bworker *lease;    /* NULL while queued */
    int failures;      /* workers that died holding it */
    double leased_at;
    btask *next, *prev;
};

/* A FIFO of tasks (doubly linked). */
typedef struct btask_list {
    btask *head, *tail;
    size_t n;
} btask_list;

typedef enum bjob_state {
    BJOB_QUEUED, BJOB_RUNNING, BJOB_DONE, BJOB_FAILED, BJOB_CANCELLED,
} bjob_state;

struct bjob {
    char *id;                 /* any length (a journal's row) */
    uint8_t *body;            /* the SUBMIT body (journal, resume) */
    size_t body_len;
    sm_msg_doc *doc;
    sm_msg_job spec;          /* borrows from doc */
    bjob_state state;
    char *error;
    sm_dataset *ds;
    sm_model_config *cfg;
    sm_explainer **ex;        /* one a method, for checks and chunkability */
    const char ***msettings;  /* per method: its "key=value" settings */
    size_t *n_msettings;
    sm_explain_store *store;
    size_t count;             /* images (limit applied) */
    size_t cursor;            /* next image to plan */
    btask_list queue;
    bgather *gathers;         /* open neighbourhoods */
    uint64_t maps_total, maps_done, maps_failed, maps_found;
    double t0, last_event;
    double started, finished; /* wall clock (job.json); finished: when
                                 the maps were complete, 0 before */
    char **workers;           /* names of those whose results were kept */
    int n_workers;
    sm_jobinfo_failure *failures; /* the failed maps named (strings owned),
                                     at most SM_JOBINFO_FAILURES */
    int n_failures;
    sm_output_task *finish;   /* the PNGs, figure and report being written:
                                 the job stays running until they are */
    int dirty;                /* progress to report to watchers */
    double paused_until;      /* the disk was full: no lease before then */
    bjob *next;
};

#define BJOB_DISK_FULL_WAIT 2.0 /* seconds between tries of a full disk */

/* Watchers kept at most (WATCH beyond: ERROR busy). */
#define BWATCHERS_MAX 1024

/* A client watching a job's progress. */
typedef struct bwatch {
    uint8_t id[256];
    size_t id_len;
    bjob *job;
    struct bwatch *next;
} bwatch;

/* A fault a person should see (WORKERS, the status page): a failed map or
 * task, a worker given up, a failed job. */
typedef struct bfault {
    double at;     /* Unix time */
    char *job;     /* or NULL */
    char *message;
} bfault;

#define BFAULTS 50 /* the latest kept */

struct sm_broker {
    void *ctx, *clients, *workers;
    sm_zap *zap;              /* CURVE on: the allowlist */
    char curve_secret[SM_CURVE_KEY];
    sm_broker_config cfg;
    sm_msg_limits limits;
    sm_journal *journal;
    char *state_dir, *blob_dir; /* any length; blob paths fit BPATH_MAX */
    int own_state;            /* state_dir is a temporary folder */
    char **dataset_roots;     /* cfg's, resolved (realpath); n 0: anywhere */
    size_t n_dataset_roots;
    char *output_root;        /* resolved; NULL: anywhere */
    bjob *jobs, *rr;          /* submission order; round-robin cursor */
    bworker *wk;
    btask_list leased;        /* tasks out with workers, all jobs */
    bwatch *watchers;
    uint64_t epoch, next_task;
    uint64_t served;          /* leases made, to order workers by use */
    int quiet;                /* no progress lines (embedded runs; log.c) */
    size_t fetch_bytes;       /* a FILES reply's files, about */
    int wake_fd;              /* an eventfd: a job's pages are written */
    bfault faults[BFAULTS];   /* a ring: the oldest at fault_at when full */
    size_t n_faults, fault_at;
    double now;
};

/* broker.c's loop calls these each turn. clients.c: */
void bclients_on_message(sm_broker *b, const sm_msg_frames *f);
void bclients_events(sm_broker *b); /* progress to watchers */
void bclients_unwatch(sm_broker *b, const bjob *j); /* drops j's watchers */
/* workers.c: */
void bworkers_on_message(sm_broker *b, const sm_msg_frames *f);
void bworkers_expire(sm_broker *b);     /* silent workers lose their tasks */
void bworkers_heartbeats(sm_broker *b);
void bworkers_dispatch(sm_broker *b);   /* queued tasks to workers with credit */

/* tasks.c */
void btask_push(btask_list *l, btask *t);       /* at the tail */
void btask_push_front(btask_list *l, btask *t); /* at the head */
void btask_unlink(btask_list *l, btask *t);
void btask_free(btask *t);
/* A task of j with room for n_images images (none in yet) and the next
 * task id; NULL when out of memory. */
btask *btask_new(sm_broker *b, bjob *j, int method, sm_task_kind kind,
                 size_t n_images);

/* jobs.c */
bjob *bjob_find(sm_broker *b, const char *id); /* NULL when unknown */
void bjob_append(sm_broker *b, bjob *j);        /* in submission order */
int bjob_ended(const bjob *j);                  /* done, failed, cancelled */
/* Creates and sets up a job from a SUBMIT body (copied); the job is then
 * RUNNING, or FAILED with its error when its setup failed and `resume`.
 * NULL with a message when !resume and it cannot run. */
bjob *bjob_new(sm_broker *b, const char *id, const void *body, size_t len,
               int resume, sm_err *err);
void bjob_free(bjob **j);
const char *bjob_state_name(bjob_state s);
/* Writes the job's index.csv (of what is complete) and sets its state s
 * (or failed, when the index cannot be written). */
void bjob_finish(sm_broker *b, bjob *j, bjob_state s);
/* Finishes the job (done) when nothing is left to do. */
void bjob_check_done(sm_broker *b, bjob *j);
/* Ends the jobs whose PNGs, figure and report are written. */
void bjobs_reap(sm_broker *b);
void bjob_set_state(sm_broker *b, bjob *j, bjob_state s, const char *error);
void bjob_status(const bjob *j, double now, sm_msg_status *st);
/* The disk of j's output is full (why says what failed): no lease of j's
 * tasks for BJOB_DISK_FULL_WAIT seconds, a fault at the pause's start. */
void bjob_pause(sm_broker *b, bjob *j, const char *why);

/* delete.c */
/* Forgets the ended job j (memory, journal) and removes the files it wrote
 * (frees j). -1 with a message when j has not ended (or is writing its
 * pages) or the journal fails. */
int bjob_delete(sm_broker *b, bjob *j, sm_err *err);

/* plan.c */
/* Plans more of the job's tasks into its queue when it is empty. */
void bjob_plan(sm_broker *b, bjob *j);
/* Encodes task t into buf: 0; or 1 when none of its images could be read
 * (each was failed alone: t is empty); or -1 with a message (the task's
 * one image unreadable, out of memory). An unreadable image of several is
 * dropped from t and failed alone. */
int bjob_encode_task(sm_broker *b, btask *t, sm_msg_buf *buf, sm_err *err);

/* gather.c */
/* A new gather of `parts` parts for `image` of `method`, on j's list (j
 * owns it); NULL when out of memory. */
bgather *bgather_open(bjob *j, int method, size_t image, int parts);
/* Removes g from j's gathers and frees it. */
void bgather_close(bjob *j, bgather *g);
/* A worker's result for t (already unlinked from the leased list); frees
 * t or hands it on. */
void bjob_result(sm_broker *b, btask *t, const sm_msg_result *r);
/* Names a failed map of j (job.json's failures, the report): image i of
 * the dataset, method m, why. */
void bjob_note_failure(bjob *j, size_t i, int m, const char *why);
/* Image i's map of method m failed: a fault "<file or id>: <method>: why",
 * named in job.json, counted. */
void bjob_map_failed(sm_broker *b, bjob *j, size_t i, int m, const char *why);
/* Remembers that the worker `name` computed some of j (job.json). */
void bjob_note_worker(bjob *j, const char *name);
/* t could not be run (encoding failed, or quarantined after killing
 * cfg.max_task_failures workers): its maps count as failed. Frees t. */
void bjob_task_failed(sm_broker *b, btask *t, const char *why);

#endif
