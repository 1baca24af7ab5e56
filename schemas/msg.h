/* sm_msg: the messages of salmap's wire protocol (schemas/PROTOCOL.md) and
 * their one codec.
 *
 * Every message is three ZeroMQ frames, sent by a DEALER peer to the
 * broker's ROUTER (which adds the peer's identity in front) and back:
 *
 *   frame 0  protocol signature: "SMC1" (client <-> broker) or
 *            "SMW1" (worker <-> broker); the digit is the version
 *   frame 1  command, upper-case ASCII ("SUBMIT", "TASK", ...)
 *   frame 2  body: one MessagePack map (possibly empty) of the fields
 *            listed for the command
 *
 * Decoding takes untrusted bytes: the body is checked (sm_mp_check) before
 * msgpack-c unpacks it, every field is type-checked, strings are copied
 * NUL-terminated (an embedded NUL is an error), and binary arrays of
 * numbers are copied into aligned buffers. A decoded message borrows from
 * its sm_msg_doc: it stays valid until sm_msg_doc_destroy. Unknown fields
 * are ignored (a newer peer may add some); a missing required field, a
 * field of the wrong type or a value out of range is an error naming the
 * command and the field. Each message is one table of its fields
 * (schemas/table.h, the tables in msg.c) that both directions walk. */
#ifndef SM_MSG_H
#define SM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SM_PROTO_CLIENT "SMC1"
#define SM_PROTO_WORKER "SMW1"

/* Content hashes: BLAKE2b-256 (libsodium crypto_generichash, no key) of
 * the bytes, as 64 lower-case hex characters. */
#define SM_HASH_HEX 64

/* Bounds on what a decoder accepts. */
typedef struct sm_msg_limits {
    size_t max_body;   /* bytes of a body (also ZMQ_MAXMSGSIZE) */
    size_t max_items;  /* elements of any one array or map */
    size_t max_depth;  /* nesting of arrays and maps */
    size_t max_string; /* bytes of one string (bin fields: max_body) */
    size_t max_total;  /* elements of all arrays and maps of a body
                          together (map pairs count 2): msgpack-c spends
                          24 bytes on each; 0 means 4 x max_items */
} sm_msg_limits;

/* 256 MiB bodies, 1M items, depth 16, 1 MiB strings, 4M elements. */
void sm_msg_limits_default(sm_msg_limits *l);

/* The memory of a decoded message. */
typedef struct sm_msg_doc sm_msg_doc;
void sm_msg_doc_destroy(sm_msg_doc **doc);

/* An encoded body: data[0..len), malloc'ed; free with sm_msg_buf_free. */
typedef struct sm_msg_buf {
    uint8_t *data;
    size_t len, cap;
} sm_msg_buf;
void sm_msg_buf_free(sm_msg_buf *b);

/* sm_hash_hex: the content hash of data into hex[SM_HASH_HEX + 1]. */
void sm_hash_hex(const void *data, size_t len, char *hex);
/* 1 when s is 64 lower-case hex characters. */
int sm_hash_valid(const char *s);

/* ---- values shared by several messages -------------------------------- */

typedef enum sm_image_format {
    SM_IMAGE_FILE = 0, /* "file": the bytes of an image file (libvips reads it) */
    SM_IMAGE_U8 = 1,   /* "u8": raw 8-bit pixels, height x width x bands */
} sm_image_format;

/* An image: in SUBMIT (inline images: id, data, label) and in TASK (all
 * fields; label_index is the model class of its label or -1). */
typedef struct sm_msg_image {
    const char *id;        /* required */
    const char *label;     /* may be NULL */
    int label_index;       /* TASK: -1 when unknown; SUBMIT: ignored */
    sm_image_format format;/* "format": "file" (default) or "u8" */
    int width, height, bands; /* u8 only */
    const uint8_t *data;   /* required (bin) */
    size_t len;
} sm_msg_image;

/* ---- client <-> broker (SMC1) ----------------------------------------- */

/* SUBMIT: a job. Reply SUBMITTED {job} or ERROR. */
typedef struct sm_msg_job {
    const char *name;            /* optional, shown in LIST */
    const char *model;           /* "model": content hash (required); the
                                    broker must hold the bytes (PUT) */
    const char *model_name;      /* "model_name": the model's file as the
                                    client named it (shown in job.json and
                                    the report), or NULL */
    const char *config;          /* "config": model config YAML text, or NULL
                                    for the model's default */
    const char *dataset;         /* "dataset": a path on the broker, or NULL */
    sm_msg_image *images;        /* "images": inline images (when no dataset) */
    size_t n_images;
    const char **methods;        /* "methods": array of str, >= 1 */
    size_t n_methods;
    const char **settings;       /* "params": {method: {key: str|int|float|bool}}
                                    decoded as "method.key=value" texts */
    size_t n_settings;
    uint64_t seed;               /* "seed", default 0 */
    const char *out;             /* "out": output folder on the broker
                                    (required) */
    uint64_t limit;              /* "limit": first N images, 0 (default) all */
    int metrics;                 /* "metrics": bool, default true */
    int png;                     /* "png": bool, default true: the maps' PNGs */
    const char *scale;           /* "scale": "map" (default) or "job" */
    /* The metric parameters (PROTOCOL.md; zero: the default, left out) */
    int faithfulness_subsets;    /* "faithfulness_subsets": 2..65536, 0: 100 */
    int faithfulness_size;       /* "faithfulness_size": 0: the width */
    int sensitivity_samples;     /* "sensitivity_samples": 0: off */
    double sensitivity_radius;   /* "sensitivity_radius": (0, 1], 0: 0.02 */
    const char *target;          /* "target": "predicted" (default), "label"
                                    or a class index written as text */
    const char *score;           /* "score": "logit" (default) or "prob" */
    int batch;                   /* "batch": images a gradient task, default 64 */
    const char **model_names;    /* "models": {name: hash}, auxiliary models */
    const char **model_hashes;   /* a method uses (e.g. "aae"); names 1..64 */
    size_t n_models;             /* of [a-z0-9_], at most 16; optional */
} sm_msg_job;

/* A job's state as STATUS, LIST and EVENT report it. */
typedef struct sm_msg_status {
    const char *job;       /* id */
    const char *name;      /* may be NULL */
    const char *state;     /* "queued", "running", "done", "failed",
                              "cancelled" */
    const char *out;
    const char *error;     /* NULL unless failed */
    uint64_t images;       /* images in the job */
    uint64_t maps_total;   /* images x methods */
    uint64_t maps_done;    /* written (including those found done) */
    uint64_t maps_found;   /* "maps_found": found complete in the output
                              folder when planned (a resumed job) */
    uint64_t maps_failed;  /* images that could not be explained, x methods */
    double seconds;        /* since the job started */
    double rate;           /* maps per second over the job so far */
} sm_msg_status;

/* STATUS {job} -> STATUS {status fields}; LIST {} -> LIST {jobs: [status]};
 * WATCH {job} -> EVENT {status fields} on each change (at most 4 a second)
 * until the job ends; CANCEL {job} -> CANCELLED {job}. */
typedef struct sm_msg_list {
    sm_msg_status *jobs;
    size_t n;
} sm_msg_list;

/* HAS {hash} -> HAS {hash, have: bool}; PUT {hash, data} -> PUT {hash}
 * (the broker checks the hash against the data). */
typedef struct sm_msg_blob {
    const char *hash;
    const uint8_t *data;   /* PUT and BLOB: required; HAS: absent */
    size_t len;
    int have;              /* HAS reply */
} sm_msg_blob;

/* FETCH {job, from} -> FILES {job, files: [{path, data}], next}: the job's
 * output files (index.csv, then maps/<id>/<method>.npy in index order),
 * from the from-th on, as many as fit a reply; next is the index to ask
 * for next, or -1 when there are no more. */
typedef struct sm_msg_file {
    const char *path;      /* relative to the job's output folder */
    const uint8_t *data;
    size_t len;
} sm_msg_file;

typedef struct sm_msg_files {
    const char *job;
    int64_t from;          /* FETCH */
    const char *path;      /* FETCH: just this file (from ignored), or NULL */
    sm_msg_file *files;    /* FILES */
    size_t n;
    int64_t next;          /* FILES: -1 at the end */
} sm_msg_files;

/* WORKERS {} -> WORKERS {workers: [worker], faults: [fault]}: the workers
 * the broker knows with the tasks they hold, and its latest faults (failed
 * maps and tasks, workers given up), oldest first. */
typedef struct sm_msg_lease {
    const char *job;
    const char *method;
    const char *kind;      /* "images", "chunk", "step" */
    const char *first;     /* the first image's id */
    uint64_t images;
    uint64_t failures;     /* workers that died holding it */
    double seconds;        /* since it was leased */
} sm_msg_lease;

typedef struct sm_msg_worker {
    const char *name;
    uint64_t capacity, inflight, served;
    double heard;          /* seconds since the broker last heard from it */
    double joined;         /* seconds since its READY */
    sm_msg_lease *tasks;
    size_t n_tasks;
} sm_msg_worker;

typedef struct sm_msg_fault {
    double at;             /* Unix time, seconds */
    const char *job;       /* NULL when of no job */
    const char *message;
} sm_msg_fault;

typedef struct sm_msg_workers {
    sm_msg_worker *workers;
    size_t n;
    sm_msg_fault *faults;
    size_t n_faults;
} sm_msg_workers;

/* ERROR {code, message, command}: codes "invalid" (a body or field that
 * does not decode), "unknown_command", "unknown_job", "need_blob" (SUBMIT
 * of a model the broker lacks; message holds the hash), "rejected" (a job
 * that fails its checks: bad model, config, dataset, method, setting),
 * "not_found" (a FETCH path the job does not have), "busy". */
typedef struct sm_msg_error {
    const char *code;
    const char *message;
    const char *command;   /* the command it answers, may be NULL */
} sm_msg_error;

/* ---- broker <-> worker (SMW1) ------------------------------------------ */

/* READY {capacity, name}: a worker joins and may hold up to capacity tasks
 * at once. HEARTBEAT {} both ways. DISCONNECT {} both ways: a worker
 * leaving (its tasks go back to the queue), or the broker telling a worker
 * it does not know to send READY again. BLOB_GET {hash} -> BLOB {hash,
 * data} or ERROR. */
typedef struct sm_msg_ready {
    uint32_t capacity;     /* >= 1 */
    const char *name;      /* may be NULL */
} sm_msg_ready;

typedef enum sm_task_kind {
    SM_TASK_IMAGES = 0, /* "images": explain these images whole */
    SM_TASK_CHUNK = 1,  /* "chunk": score part `part` of `parts` equal parts
                           of one image's neighbourhood of n samples: samples
                           [part * n / parts, (part + 1) * n / parts); only
                           the worker knows n (it may depend on the image) */
    SM_TASK_STEP = 2,   /* "step": one round of one image: from its state
                           (none: the first round) and the scores of its
                           last round, the image's result or its next
                           round (a new state and its sample count) */
} sm_task_kind;

typedef struct sm_msg_task {
    uint64_t task;        /* id, unique within a broker */
    const char *job;
    sm_task_kind kind;    /* "kind": "images" | "chunk" | "step" */
    const char *model;    /* hash: BLOB_GET it when not cached */
    const char *config;   /* model config YAML, or NULL: the default */
    const char *method;
    const char **settings; /* "settings": array of "key=value" */
    size_t n_settings;
    uint64_t seed;
    const char *target;   /* as in sm_msg_job */
    const char *score;
    int metrics;          /* images, step */
    int faithfulness_subsets, faithfulness_size, sensitivity_samples;
    double sensitivity_radius; /* the job's metric parameters, as in
                                  sm_msg_job */
    sm_msg_image *images; /* images: >= 1; chunk and step: exactly 1 */
    size_t n_images;
    int64_t part, parts;  /* chunk: "part" (0-based) and "parts" (>= 1) */
    const double *scores; /* step: "scores" (required), bin of float64 LE */
    int64_t n_scores;
    const uint8_t *state; /* chunk, step: "state" (bin), the explainer's */
    size_t state_len;     /* opaque state after the image's last round;
                             NULL: its first round */
    const char **model_names;  /* "models", as in sm_msg_job */
    const char **model_hashes;
    size_t n_models;
} sm_msg_task;

/* A named array of float32 a method yields besides (or instead of) a map:
 * "name" 1..64 of [a-z0-9_], "shape" 1..4 dims each >= 1, "data" a bin of
 * prod(shape) float32 LE (copied aligned). */
typedef struct sm_msg_array {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;
} sm_msg_array;

/* One image's outcome in a RESULT. */
typedef struct sm_msg_item {
    const char *id;
    const char *error;    /* non-NULL: the image failed (the rest unset) */
    int predicted, target;
    double score;
    int64_t evals;
    double seconds;
    int height, width;    /* 0 when there is no map */
    const float *map;     /* "map": bin of height x width float32 LE, or
                             NULL: a method that yields no pixel map */
    const char *params;   /* JSON text */
    const char *record;   /* "record": JSON object text, what the method
                             records besides the map */
    sm_msg_array *arrays; /* "arrays": optional */
    size_t n_arrays;
    int has_metrics;      /* "deletion"/"insertion" present */
    double deletion, insertion;
    /* with has_metrics, required: "faithfulness", "sparseness",
     * "complexity", "sensitivity" (NaN: undefined, or off) */
    double faithfulness, sparseness, complexity, sensitivity;
} sm_msg_item;

/* RESULT {task, error?, items?, scores?, samples?, state?}: error set
 * means the task failed as a whole (e.g. the model did not load). */
typedef struct sm_msg_result {
    uint64_t task;
    const char *error;
    sm_msg_item *items;   /* images, and a step that finished the image */
    size_t n_items;
    const double *scores; /* chunk: "scores", bin float64 LE: the part's */
    int64_t n_scores;
    int64_t samples;      /* chunk: "samples", n of the whole neighbourhood;
                             unfinished step: the next round's sample count */
    const uint8_t *state; /* unfinished step: "state" (bin), the image's */
    size_t state_len;     /* state for its next round */
} sm_msg_result;

/* "images", "chunk" or "step" ("" for anything else). */
const char *sm_task_kind_name(sm_task_kind k);

/* ---- encoders: 0, or -1 (out of memory) -------------------------------- */
int sm_msg_encode_job(const sm_msg_job *m, sm_msg_buf *b);
int sm_msg_encode_status(const sm_msg_status *m, sm_msg_buf *b);
int sm_msg_encode_list(const sm_msg_list *m, sm_msg_buf *b);
int sm_msg_encode_workers(const sm_msg_workers *m, sm_msg_buf *b);
int sm_msg_encode_blob(const sm_msg_blob *m, sm_msg_buf *b);
int sm_msg_encode_files(const sm_msg_files *m, sm_msg_buf *b);
int sm_msg_encode_error(const sm_msg_error *m, sm_msg_buf *b);
int sm_msg_encode_ready(const sm_msg_ready *m, sm_msg_buf *b);
int sm_msg_encode_task(const sm_msg_task *m, sm_msg_buf *b);
int sm_msg_encode_result(const sm_msg_result *m, sm_msg_buf *b);
/* {job: id} (SUBMITTED, STATUS/WATCH/CANCEL requests, CANCELLED) */
int sm_msg_encode_job_id(const char *job, sm_msg_buf *b);
/* {} (HEARTBEAT, DISCONNECT, LIST request) */
int sm_msg_encode_empty(sm_msg_buf *b);

/* ---- decoders: 0 with *doc and *m set, or -1 with a message -----------
 * Messages read "<COMMAND>: <field>: <what>". */
int sm_msg_decode_job(const void *body, size_t len, const sm_msg_limits *l,
                      sm_msg_doc **doc, sm_msg_job *m, sm_err *err);
int sm_msg_decode_status(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, sm_msg_status *m, sm_err *err);
int sm_msg_decode_workers(const void *body, size_t len, const sm_msg_limits *l,
                          sm_msg_doc **doc, sm_msg_workers *m, sm_err *err);
int sm_msg_decode_list(const void *body, size_t len, const sm_msg_limits *l,
                       sm_msg_doc **doc, sm_msg_list *m, sm_err *err);
int sm_msg_decode_blob(const void *body, size_t len, const sm_msg_limits *l,
                       sm_msg_doc **doc, sm_msg_blob *m, sm_err *err);
int sm_msg_decode_files(const void *body, size_t len, const sm_msg_limits *l,
                        sm_msg_doc **doc, sm_msg_files *m, sm_err *err);
int sm_msg_decode_error(const void *body, size_t len, const sm_msg_limits *l,
                        sm_msg_doc **doc, sm_msg_error *m, sm_err *err);
int sm_msg_decode_ready(const void *body, size_t len, const sm_msg_limits *l,
                        sm_msg_doc **doc, sm_msg_ready *m, sm_err *err);
int sm_msg_decode_task(const void *body, size_t len, const sm_msg_limits *l,
                       sm_msg_doc **doc, sm_msg_task *m, sm_err *err);
int sm_msg_decode_result(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, sm_msg_result *m, sm_err *err);
/* {job} -> *job (borrowed from *doc) */
int sm_msg_decode_job_id(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, const char **job, sm_err *err);
/* The "task" id of a TASK body without decoding the rest (which may not
 * decode: a worker then answers the id with an error), and its "model"
 * hash into model[SM_HASH_HEX + 1] when model is not NULL ("" when absent
 * or not a hash). -1 when there is no task id. */
int sm_msg_peek_task(const void *body, size_t len, const sm_msg_limits *l,
                     uint64_t *task, char *model);
/* any well-formed map (HEARTBEAT, DISCONNECT, LIST) */
int sm_msg_decode_empty(const void *body, size_t len, const sm_msg_limits *l,
                        sm_err *err);

/* ---- frames over ZeroMQ ------------------------------------------------ */

/* A received message. identity: set when read from a ROUTER. The frames
 * are copied; free with sm_msg_frames_free. */
typedef struct sm_msg_frames {
    uint8_t identity[256];
    size_t identity_len;
    char signature[8];     /* NUL-terminated */
    char command[32];      /* NUL-terminated */
    uint8_t *body;
    size_t len;
} sm_msg_frames;

/* Receives one message (blocking unless flags has ZMQ_DONTWAIT); router: 1
 * when sock is a ROUTER. A message that is not 3 frames (after the
 * identity), whose signature or command is too long or whose command is
 * not upper-case ASCII is read whole and refused: -1 with a message (the
 * caller drops it); errno EAGAIN when nothing was waiting. A refused
 * message sets errno EPROTO and keeps f->identity (ROUTER), so the sender
 * can be answered; other errnos come from zmq (ETERM, EINTR, ...). */
int sm_msg_recv(void *sock, int router, int flags, sm_msg_frames *f,
                sm_err *err);
void sm_msg_frames_free(sm_msg_frames *f);

/* Sends signature, command and body (to identity first when not NULL).
 * 0 or -1 (errno from zmq). */
int sm_msg_send(void *sock, const uint8_t *identity, size_t identity_len,
                const char *signature, const char *command, const void *body,
                size_t len);

#endif
