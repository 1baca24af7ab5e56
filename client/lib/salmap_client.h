/* libsalmap-client: submit explanation jobs to a salmap broker and get
 * their results, over the wire protocol of schemas/PROTOCOL.md.
 *
 *   sm_client *c = sm_client_new("tcp://broker:5555");
 *   sm_client_job job = {.model = "models/mnist_cnn.onnx", ...};
 *   char id[SM_CLIENT_ID_MAX];
 *   if (sm_client_submit(c, &job, id) || sm_client_wait(c, id, NULL, NULL, &st))
 *       fprintf(stderr, "%s\n", sm_client_error(c));
 *   sm_client_fetch(c, id, "results/");
 *   sm_client_destroy(&c);
 *
 * Every call returns 0 or -1; after -1, sm_client_error() says what went
 * wrong (naming the broker, the job or the file). A request the broker
 * does not answer within the timeout (default 30 s) fails, and the next
 * one starts on a fresh connection. One sm_client per thread. Link with
 * `pkg-config --libs salmap-client`. */
#ifndef SALMAP_CLIENT_H
#define SALMAP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define SM_CLIENT_ID_MAX 40

/* The shared library exports these names only (it is built with hidden
 * visibility and SM_CLIENT_EXPORT). */
#ifdef SM_CLIENT_EXPORT
#define SM_CLIENT_API __attribute__((visibility("default")))
#else
#define SM_CLIENT_API
#endif

typedef struct sm_client sm_client;

/* A client of the broker at endpoint (e.g. "tcp://host:5555"). NULL only
 * when out of memory or the endpoint is malformed (message on stderr). */
SM_CLIENT_API sm_client *sm_client_new(const char *endpoint);

/* The same on an existing ZeroMQ context (borrowed), e.g. for inproc://
 * endpoints of a broker in the same process. */
SM_CLIENT_API sm_client *sm_client_new_ctx(void *zmq_ctx, const char *endpoint);

SM_CLIENT_API void sm_client_destroy(sm_client **c);

/* The message of the last failure. */
SM_CLIENT_API const char *sm_client_error(const sm_client *c);

/* The broker's ERROR code of the last failure (schemas/PROTOCOL.md 4.9:
 * "invalid", "unknown_job", "need_blob", "rejected", "busy", ...), or ""
 * when the failure was not the broker's answer (no reply, bad input). */
SM_CLIENT_API const char *sm_client_error_code(const sm_client *c);

/* How long a request waits for its reply (seconds). */
SM_CLIENT_API void sm_client_set_timeout(sm_client *c, double seconds);

/* Encrypts and authenticates the connection with CURVE: server_key is
 * the file of the broker's public key, secret_key the file of this
 * client's secret key (whose public key the broker must allow). */
SM_CLIENT_API int sm_client_set_curve(sm_client *c, const char *server_key,
                                      const char *secret_key);

/* An image sent with the job (when the job has no dataset path). */
typedef struct sm_client_image {
    const char *id;       /* its name in the results ("cat", "a/b/7") */
    const char *label;    /* class name, or NULL */
    const void *data;     /* the bytes of an image file (PNG, JPEG, ...) */
    size_t len;
} sm_client_image;

/* A job (schemas/PROTOCOL.md, SUBMIT; docs/EXPLAIN.md for its fields). */
typedef struct sm_client_job {
    const char *name;                 /* optional */
    const char *model;                /* ONNX file here; sent once (by hash) */
    const char *config;               /* model config YAML file here, or NULL */
    const char *dataset;              /* a path on the broker's machine, or */
    const sm_client_image *images;    /* images sent inline */
    size_t n_images;
    const char *const *methods;
    size_t n_methods;
    const char *const *settings;      /* "method.key=value" */
    size_t n_settings;
    uint64_t seed;
    const char *out;                  /* output folder on the broker */
    uint64_t limit;                   /* 0: every image */
    int metrics;                      /* every metric (docs/EXPLAIN.md) */
    const char *target;               /* "predicted" (NULL), "label", "3" */
    const char *score;                /* "logit" (NULL) or "prob" */
    int batch;                        /* 0: the broker's default */
    const char *const *aux_names;     /* auxiliary models methods use, by */
    const char *const *aux_paths;     /*   name ([a-z0-9_], at most 64): */
    size_t n_aux;                     /*   ONNX files here, sent once; <= 16 */
    /* The metric parameters (last: the fields above keep their places),
     * 0: their defaults (100, the width, 0: max-sensitivity off, 0.02). */
    int faithfulness_subsets;
    int faithfulness_size;
    int sensitivity_samples;
    double sensitivity_radius;
    int no_png;                       /* 1: no PNGs of the maps */
    const char *scale;                /* the PNGs' colour scales: "map"
                                         (NULL: each map its own) or "job"
                                         (one a method over the job) */
    /* For a client that holds no files (e.g. a gateway): each, when set,
     * replaces its file counterpart above. */
    const char *model_hash;           /* a model the broker holds
                                         (sm_client_put); model: its name */
    const char *config_text;          /* the model config's YAML text */
    const char *const *aux_hashes;    /* aux models the broker holds */
} sm_client_job;

/* Uploads bytes (a model) unless the broker holds them already, and
 * writes their content hash into hash[65]. */
SM_CLIENT_API int sm_client_put(sm_client *c, const void *data, size_t len, char *hash);

/* Uploads the model (and the auxiliary models) if the broker lacks it, submits the job and writes
 * its id into id[SM_CLIENT_ID_MAX]. A name or output folder longer than
 * sm_client_status holds (127, 1023 bytes) is refused. */
SM_CLIENT_API int sm_client_submit(sm_client *c, const sm_client_job *job, char *id);

/* A job's state. A broker's reply with a string longer than its field
 * fails the call (naming the job and the field) rather than be cut. */
typedef struct sm_client_status {
    char job[SM_CLIENT_ID_MAX];
    char name[128];
    char state[16];       /* queued, running, done, failed, cancelled */
    char out[1024];
    char error[1024];     /* "" unless failed */
    uint64_t images, maps_total, maps_done, maps_failed;
    uint64_t maps_found;  /* of maps_done, those found complete on disk */
    double seconds, rate; /* since the job started; maps per second */
} sm_client_status;

SM_CLIENT_API int sm_client_status_of(sm_client *c, const char *job, sm_client_status *st);

/* Every job the broker knows, in submission order: *jobs (caller frees)
 * holds *n entries. */
SM_CLIENT_API int sm_client_list(sm_client *c, sm_client_status **jobs, size_t *n);

/* Follows the job's progress until it ends, calling on_event (may be
 * NULL) at each report; *final (may be NULL) receives the last state.
 * Returns 0 when the job ended (whatever its state: see final->state),
 * -1 when the broker could not be asked. Survives a broker restart. */
SM_CLIENT_API int sm_client_wait(sm_client *c, const char *job,
                   void (*on_event)(const sm_client_status *st, void *u),
                   void *u, sm_client_status *final);

/* The same for at most `seconds`: returns 1 when the job had not ended by
 * then (*final, if given, holds its last state). */
SM_CLIENT_API int sm_client_wait_for(sm_client *c, const char *job, double seconds,
                       void (*on_event)(const sm_client_status *st, void *u),
                       void *u, sm_client_status *final);

SM_CLIENT_API int sm_client_cancel(sm_client *c, const char *job);

/* Makes the broker forget an ended job and remove the files it wrote
 * (by name: other files in its folder, and the folders holding them,
 * stay). -1 when the job is unknown ("unknown_job"), still running
 * ("invalid": cancel it first) or writing its pages ("busy": retry). */
SM_CLIENT_API int sm_client_delete(sm_client *c, const char *job);

/* Calls fn on each output file of the job (index.csv first, then
 * maps/<id>/<method>.npy), path relative to the job's folder; fn returns
 * 0 to go on, -1 to stop (the call then fails with fn's message unset). */
SM_CLIENT_API int sm_client_fetch_each(sm_client *c, const char *job,
                         int (*fn)(const char *path, const void *data,
                                   size_t len, void *u),
                         void *u);

/* One FETCH: calls fn on the files numbered from `from` on, as many as
 * one reply holds, and writes the `from` of the next call into *next
 * (-1 when there are no more). For a reader that paces itself (a stream);
 * fn as in sm_client_fetch_each. */
SM_CLIENT_API int sm_client_fetch_page(sm_client *c, const char *job, int64_t from,
                         int (*fn)(const char *path, const void *data,
                                   size_t len, void *u),
                         void *u, int64_t *next);

/* One named file of the job (a path that FETCH lists, e.g.
 * "maps/7/lime.png"), into *data (malloc'ed: free it) and *len. -1 with
 * sm_client_error_code "not_found" when the job has no such file. */
SM_CLIENT_API int sm_client_fetch_file(sm_client *c, const char *job, const char *path,
                                       void **data, size_t *len);

/* The workers the broker knows, the tasks each holds, and the broker's
 * latest faults (failed maps and tasks, workers given up, failed jobs),
 * oldest first. Every pointer inside lives until
 * sm_client_workers_destroy. */
typedef struct sm_client_lease {
    const char *job, *method;
    const char *kind;      /* "images", "chunk" (of a neighbourhood), "step" */
    const char *first;     /* the id of its first image */
    uint64_t images, failures; /* failures: workers that died holding it */
    double seconds;        /* since it was leased */
} sm_client_lease;

typedef struct sm_client_worker {
    const char *name;
    uint64_t capacity, inflight, served;
    double heard, joined;  /* seconds since its last message, its READY */
    const sm_client_lease *tasks;
    size_t n_tasks;
} sm_client_worker;

typedef struct sm_client_fault {
    double at;             /* Unix time, seconds */
    const char *job;       /* NULL when of no job */
    const char *message;
} sm_client_fault;

typedef struct sm_client_workers {
    const sm_client_worker *workers;
    size_t n;
    const sm_client_fault *faults;
    size_t n_faults;
} sm_client_workers;

/* NULL with sm_client_error when the broker could not be asked. */
SM_CLIENT_API sm_client_workers *sm_client_workers_get(sm_client *c);
SM_CLIENT_API void sm_client_workers_destroy(sm_client_workers **w);

/* Writes the job's output files under dir (atomically, folders made). */
SM_CLIENT_API int sm_client_fetch(sm_client *c, const char *job, const char *dir);

#endif
