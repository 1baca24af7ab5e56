/* The wire codec of msg.h: the table of each message (table.h) and its
 * encoder and decoder through them, content hashes, the shared buffers;
 * table.c walks the tables, frames.c moves frames.
 *
 * Decoders open a doc (a msgpack_zone), unpack the checked body into it
 * (mp.c), then read the fields of their table; what they hand back (strings,
 * bins, arrays, the message's own arrays of structs) is copied into the
 * zone, so a message lives exactly as long as its doc and one destroy frees
 * it all. A nil value reads as an absent field (peers whose language has
 * null send it for optional fields). Messages name the command a decoder
 * is for: SUBMIT, STATUS, LIST, BLOB (HAS, PUT, BLOB_GET, BLOB), FILES
 * (FETCH, FILES), ERROR, READY, TASK, RESULT, JOB (any {job} body) and
 * EMPTY (HEARTBEAT, DISCONNECT, LIST requests).
 */
#include "msg.h"

#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "table.h"

#define MAX_SIDE 65535   /* width and height of u8 images and of maps */
#define MAX_BATCH 65536  /* SUBMIT batch */
#define MAX_MODELS 16    /* SUBMIT and TASK models */

struct sm_msg_doc {
    msgpack_zone *zone;
};

void sm_msg_limits_default(sm_msg_limits *l)
{
    l->max_body = (size_t)256 << 20;
    l->max_items = (size_t)1 << 20;
    l->max_depth = 16;
    l->max_string = (size_t)1 << 20;
    l->max_total = (size_t)4 << 20;
}

void sm_msg_doc_destroy(sm_msg_doc **doc)
{
    if (!doc || !*doc)
        return;
    if ((*doc)->zone)
        msgpack_zone_free((*doc)->zone);
    free(*doc);
    *doc = NULL;
}

void sm_msg_buf_free(sm_msg_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- hashes ------------------------------------------------------------- */

void sm_hash_hex(const void *data, size_t len, char *hex)
{
    unsigned char h[32];
    /* Picks the fastest BLAKE2b code; safe and cheap to call again. */
    if (sodium_init() < 0) {
        /* Cannot happen on Linux (no entropy is needed for hashing); an
         * all-zero hash matches nothing real. */
        memset(hex, '0', SM_HASH_HEX);
        hex[SM_HASH_HEX] = '\0';
        return;
    }
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[h[i] >> 4];
        hex[2 * i + 1] = digits[h[i] & 15];
    }
    hex[SM_HASH_HEX] = '\0';
}

int sm_hash_valid(const char *s)
{
    if (!s)
        return 0;
    for (int i = 0; i < SM_HASH_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[SM_HASH_HEX] == '\0';
}

/* ---- decoding: the doc and the checks ----------------------------------- */

typedef struct dec {
    sm_mp_reader r;
    sm_msg_doc *doc;
    msgpack_object root;
} dec;

/* A new doc holding the unpacked body, whose top must be a map. 0, or -1
 * with "<command>: body: <what>". */
static int dec_open(dec *d, const char *command, const void *body,
                    size_t len, const sm_msg_limits *l, sm_err *err)
{
    sm_msg_limits def;
    if (!l) {
        sm_msg_limits_default(&def);
        l = &def;
    }
    d->doc = calloc(1, sizeof *d->doc);
    if (!d->doc || !(d->doc->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE))) {
        sm_msg_doc_destroy(&d->doc);
        return sm_err_set(err, "%s: out of memory", command);
    }
    sm_mp_reader_init(&d->r, d->doc->zone, command, err);
    if (sm_mp_unpack(body, len, l, d->doc->zone, &d->root, err)) {
        sm_msg_doc_destroy(&d->doc);
        return sm_err_prefix(err, "%s: body", command);
    }
    if (sm_mp_map(&d->r, &d->root, "body")) {
        sm_msg_doc_destroy(&d->doc);
        return -1;
    }
    return 0;
}

/* Hands the doc over when the decode went through; otherwise frees it and
 * clears the half-filled message m (its pointers were into the doc). */
static int dec_close(dec *d, int failed, sm_msg_doc **doc, void *m,
                     size_t size)
{
    if (failed) {
        sm_msg_doc_destroy(&d->doc);
        memset(m, 0, size);
        *doc = NULL;
        return -1;
    }
    *doc = d->doc;
    return 0;
}

/* ---- the tables ----------------------------------------------------------- */

#define REQ SM_MSG_REQ
#define NONEMPTY SM_MSG_NONEMPTY
#define NAMES(a) .names = a, .n_names = (int)(sizeof a / sizeof a[0])

static const char *const scores_names[] = {"logit", "prob"};
static const char *const scale_names[] = {"map", "job"};
static const char *const kind_names[] = {"images", "chunk", "step"};
static const char *const state_names[] = {"queued", "running", "done",
                                          "failed", "cancelled"};
static const char *const format_names[] = {"file", "u8"};

/* "predicted", "label" or a class index in decimal. */
static int check_target(sm_mp_reader *r, const char *key, const void *value)
{
    const char *s = *(const char *const *)value;
    if (strcmp(s, "predicted") == 0 || strcmp(s, "label") == 0)
        return 0;
    size_t n = strlen(s);
    if (n >= 1 && n <= 9 && strspn(s, "0123456789") == n)
        return 0;
    return sm_mp_fail(r, key, "must be predicted, label or a class index, "
                      "not '%.80s'", s);
}

/* The metric parameters of SUBMIT and TASK: 0 is the default. */
static int check_subsets(sm_mp_reader *r, const char *key, const void *value)
{
    return *(const int *)value == 1
               ? sm_mp_fail(r, key, "1 is out of range (0: the default, or "
                            "2..65536)")
               : 0;
}

static int check_radius(sm_mp_reader *r, const char *key, const void *value)
{
    double v = *(const double *)value;
    return v >= 0 && v <= 1 ? 0
                            : sm_mp_fail(r, key, "%g is out of range (0: the "
                                         "default, or up to 1)", v);
}

#define METRIC_PARAMS(T)                                                       \
    {.key = "faithfulness_subsets", .type = SM_MSG_INT,                        \
     .flags = SM_MSG_OMIT, SM_MSG_AT(T, faithfulness_subsets), .lo = 0,        \
     .hi = 65536, .check = check_subsets},                                     \
    {.key = "faithfulness_size", .type = SM_MSG_INT, .flags = SM_MSG_OMIT,     \
     SM_MSG_AT(T, faithfulness_size), .lo = 0, .hi = 1 << 24},                 \
    {.key = "sensitivity_samples", .type = SM_MSG_INT, .flags = SM_MSG_OMIT,   \
     SM_MSG_AT(T, sensitivity_samples), .lo = 0, .hi = 10000},                 \
    {.key = "sensitivity_radius", .type = SM_MSG_F64, .flags = SM_MSG_OMIT,    \
     SM_MSG_AT(T, sensitivity_radius), .check = check_radius}

/* images: in SUBMIT and in TASK */

static int image_is_u8(const void *m)
{
    return ((const sm_msg_image *)m)->format == SM_IMAGE_U8;
}

static int image_check(sm_mp_reader *r, void *m, const sm_msg_seen *seen)
{
    const sm_msg_image *im = m;
    (void)seen;
    if (im->format == SM_IMAGE_FILE)
        return im->len ? 0 : sm_mp_fail(r, "data", "empty");
    size_t want = (size_t)im->width * (size_t)im->height * (size_t)im->bands;
    if (im->len != want)
        return sm_mp_fail(r, "data", "%zu bytes, expected width x height x "
                          "bands = %zu", im->len, want);
    return 0;
}

/* A SUBMIT image has no label_index: the broker finds it. */
static int image_submit_check(sm_mp_reader *r, void *m,
                              const sm_msg_seen *seen)
{
    ((sm_msg_image *)m)->label_index = -1;
    return image_check(r, m, seen);
}

#define IM(f) SM_MSG_AT(sm_msg_image, f)
static const sm_msg_field image_fields[] = {
    {.key = "id", .type = SM_MSG_PATH, .flags = REQ, IM(id)},
    {.key = "label", .type = SM_MSG_STR, IM(label)},
    {.key = "format", .type = SM_MSG_ENUM, IM(format), NAMES(format_names)},
    {.key = "data", .type = SM_MSG_BIN, .flags = REQ, IM(data),
     SM_MSG_N(sm_msg_image, len)},
    {.key = "width", .type = SM_MSG_INT, .flags = REQ, IM(width), .lo = 1,
     .hi = MAX_SIDE, .when = image_is_u8},
    {.key = "height", .type = SM_MSG_INT, .flags = REQ, IM(height), .lo = 1,
     .hi = MAX_SIDE, .when = image_is_u8},
    {.key = "bands", .type = SM_MSG_INT, .flags = REQ, IM(bands), .lo = 1,
     .hi = 4, .when = image_is_u8},
    /* last, so that the SUBMIT table is this one less its last field */
    {.key = "label_index", .type = SM_MSG_INT, .flags = SM_MSG_OMIT,
     IM(label_index), .lo = -1, .hi = INT_MAX, .def = -1},
};
static const sm_msg_schema image_task =
    SM_MSG_TABLE(NULL, sm_msg_image, image_fields, image_check);
static const sm_msg_schema image_submit = {
    .fields = image_fields,
    .n = sizeof image_fields / sizeof image_fields[0] - 1,
    .size = sizeof(sm_msg_image), .check = image_submit_check};

/* SUBMIT */

static int job_check(sm_mp_reader *r, void *m, const sm_msg_seen *seen)
{
    const sm_msg_job *j = m;
    int has_images = sm_msg_seen_has(seen, "images");
    for (size_t i = 0; i < j->n_methods; i++)
        if (!j->methods[i][0])
            return sm_mp_fail(r, "methods", "method %zu is empty", i);
    if (j->dataset && has_images)
        return sm_mp_fail(r, "images", "give a dataset or images, not both");
    if (!j->dataset && !has_images)
        return sm_mp_fail(r, "dataset", "missing (give a dataset or "
                          "images)");
    if (has_images && j->n_images == 0)
        return sm_mp_fail(r, "images", "empty");
    return 0;
}

#define JB(f) SM_MSG_AT(sm_msg_job, f)
#define JN(f) SM_MSG_N(sm_msg_job, f)
static const sm_msg_field job_fields[] = {
    {.key = "name", .type = SM_MSG_STR, JB(name)},
    {.key = "model", .type = SM_MSG_HASH, .flags = REQ, JB(model)},
    {.key = "model_name", .type = SM_MSG_STR, JB(model_name)},
    {.key = "config", .type = SM_MSG_STR, JB(config)},
    {.key = "dataset", .type = SM_MSG_STR, .flags = NONEMPTY, JB(dataset)},
    {.key = "images", .type = SM_MSG_STRUCTS, JB(images), JN(n_images),
     .sub = &image_submit},
    {.key = "methods", .type = SM_MSG_STRS, .flags = REQ | NONEMPTY,
     JB(methods), JN(n_methods)},
    {.key = "params", .type = SM_MSG_PARAMS, JB(settings), JN(n_settings)},
    {.key = "seed", .type = SM_MSG_UINT, JB(seed)},
    {.key = "out", .type = SM_MSG_STR, .flags = REQ | NONEMPTY, JB(out)},
    {.key = "limit", .type = SM_MSG_UINT, JB(limit)},
    {.key = "metrics", .type = SM_MSG_BOOL, JB(metrics), .def = 1},
    METRIC_PARAMS(sm_msg_job),
    {.key = "png", .type = SM_MSG_BOOL, JB(png), .def = 1},
    {.key = "scale", .type = SM_MSG_STR, JB(scale), .sdef = "map",
     NAMES(scale_names)},
    {.key = "target", .type = SM_MSG_STR, JB(target), .sdef = "predicted",
     .check = check_target},
    {.key = "score", .type = SM_MSG_STR, JB(score), .sdef = "logit",
     NAMES(scores_names)},
    {.key = "batch", .type = SM_MSG_INT, .flags = SM_MSG_OMIT, JB(batch),
     .lo = 1, .hi = MAX_BATCH, .def = 64},
    {.key = "models", .type = SM_MSG_STRMAP, JB(model_names), JN(n_models),
     .off_v = offsetof(sm_msg_job, model_hashes), .max = MAX_MODELS},
};
static const sm_msg_schema job_table =
    SM_MSG_TABLE("SUBMIT", sm_msg_job, job_fields, job_check);

/* STATUS, LIST */

static int status_check(sm_mp_reader *r, void *m, const sm_msg_seen *seen)
{
    const sm_msg_status *st = m;
    (void)seen;
    if (st->maps_found > st->maps_done)
        return sm_mp_fail(r, "maps_found", "%" PRIu64 " is out of range "
                          "0..%" PRIu64, st->maps_found, st->maps_done);
    return 0;
}

#define ST(f) SM_MSG_AT(sm_msg_status, f)
static const sm_msg_field status_fields[] = {
    {.key = "job", .type = SM_MSG_STR, .flags = REQ | NONEMPTY, ST(job)},
    {.key = "name", .type = SM_MSG_STR, ST(name)},
    {.key = "state", .type = SM_MSG_STR, .flags = REQ, ST(state),
     NAMES(state_names)},
    {.key = "out", .type = SM_MSG_STR, .flags = REQ, ST(out)},
    {.key = "error", .type = SM_MSG_STR, ST(error)},
    {.key = "images", .type = SM_MSG_UINT, .flags = REQ, ST(images)},
    {.key = "maps_total", .type = SM_MSG_UINT, .flags = REQ, ST(maps_total)},
    {.key = "maps_done", .type = SM_MSG_UINT, .flags = REQ, ST(maps_done)},
    {.key = "maps_failed", .type = SM_MSG_UINT, .flags = REQ,
     ST(maps_failed)},
    {.key = "maps_found", .type = SM_MSG_UINT, ST(maps_found)},
    {.key = "seconds", .type = SM_MSG_F64, .flags = REQ, ST(seconds)},
    {.key = "rate", .type = SM_MSG_F64, .flags = REQ, ST(rate)},
};
static const sm_msg_schema status_table =
    SM_MSG_TABLE("STATUS", sm_msg_status, status_fields, status_check);
static const sm_msg_schema status_elem =
    SM_MSG_TABLE(NULL, sm_msg_status, status_fields, status_check);

static const sm_msg_field list_fields[] = {
    {.key = "jobs", .type = SM_MSG_STRUCTS, .flags = REQ,
     SM_MSG_AT(sm_msg_list, jobs), SM_MSG_N(sm_msg_list, n),
     .sub = &status_elem},
};
static const sm_msg_schema list_table =
    SM_MSG_TABLE("LIST", sm_msg_list, list_fields, NULL);

/* HAS, PUT, BLOB_GET, BLOB: "have" only when true (absent reads as false,
 * so a HAS reply of false and every request stay as short as they can) */

static const sm_msg_field blob_fields[] = {
    {.key = "hash", .type = SM_MSG_HASH, .flags = REQ,
     SM_MSG_AT(sm_msg_blob, hash)},
    {.key = "data", .type = SM_MSG_BIN, SM_MSG_AT(sm_msg_blob, data),
     SM_MSG_N(sm_msg_blob, len)},
    {.key = "have", .type = SM_MSG_BOOL, .flags = SM_MSG_OMIT,
     SM_MSG_AT(sm_msg_blob, have)},
};
static const sm_msg_schema blob_table =
    SM_MSG_TABLE("BLOB", sm_msg_blob, blob_fields, NULL);

/* FETCH, FILES: one struct for the request and the reply; a FETCH has no
 * files, and next -1 (the end) is the default */

static const sm_msg_field file_fields[] = {
    {.key = "path", .type = SM_MSG_PATH, .flags = REQ,
     SM_MSG_AT(sm_msg_file, path)},
    {.key = "data", .type = SM_MSG_BIN, .flags = REQ,
     SM_MSG_AT(sm_msg_file, data), SM_MSG_N(sm_msg_file, len)},
};
static const sm_msg_schema file_elem =
    SM_MSG_TABLE(NULL, sm_msg_file, file_fields, NULL);

#define FS(f) SM_MSG_AT(sm_msg_files, f)
static const sm_msg_field files_fields[] = {
    {.key = "job", .type = SM_MSG_STR, .flags = REQ | NONEMPTY, FS(job)},
    {.key = "from", .type = SM_MSG_INT, FS(from), .lo = 0, .hi = INT64_MAX},
    {.key = "path", .type = SM_MSG_PATH, FS(path)},
    {.key = "next", .type = SM_MSG_INT, .flags = SM_MSG_OMIT, FS(next),
     .lo = -1, .hi = INT64_MAX, .def = -1},
    {.key = "files", .type = SM_MSG_STRUCTS, FS(files),
     SM_MSG_N(sm_msg_files, n), .sub = &file_elem},
};
static const sm_msg_schema files_table =
    SM_MSG_TABLE("FILES", sm_msg_files, files_fields, NULL);

/* WORKERS */

#define LS(f) SM_MSG_AT(sm_msg_lease, f)
static const sm_msg_field lease_fields[] = {
    {.key = "job", .type = SM_MSG_STR, .flags = REQ, LS(job)},
    {.key = "method", .type = SM_MSG_STR, .flags = REQ, LS(method)},
    {.key = "kind", .type = SM_MSG_STR, .flags = REQ, LS(kind)},
    {.key = "first", .type = SM_MSG_STR, LS(first)},
    {.key = "images", .type = SM_MSG_UINT, .flags = REQ, LS(images)},
    {.key = "failures", .type = SM_MSG_UINT, LS(failures)},
    {.key = "seconds", .type = SM_MSG_F64, LS(seconds)},
};
static const sm_msg_schema lease_elem =
    SM_MSG_TABLE(NULL, sm_msg_lease, lease_fields, NULL);

#define WK(f) SM_MSG_AT(sm_msg_worker, f)
static const sm_msg_field worker_fields[] = {
    {.key = "name", .type = SM_MSG_STR, .flags = REQ, WK(name)},
    {.key = "capacity", .type = SM_MSG_UINT, .flags = REQ, WK(capacity)},
    {.key = "inflight", .type = SM_MSG_UINT, .flags = REQ, WK(inflight)},
    {.key = "served", .type = SM_MSG_UINT, WK(served)},
    {.key = "heard", .type = SM_MSG_F64, .flags = REQ, WK(heard)},
    {.key = "joined", .type = SM_MSG_F64, WK(joined)},
    {.key = "tasks", .type = SM_MSG_STRUCTS, WK(tasks),
     SM_MSG_N(sm_msg_worker, n_tasks), .sub = &lease_elem},
};
static const sm_msg_schema worker_elem =
    SM_MSG_TABLE(NULL, sm_msg_worker, worker_fields, NULL);

static const sm_msg_field fault_fields[] = {
    {.key = "at", .type = SM_MSG_F64, .flags = REQ, SM_MSG_AT(sm_msg_fault, at)},
    {.key = "job", .type = SM_MSG_STR, SM_MSG_AT(sm_msg_fault, job)},
    {.key = "message", .type = SM_MSG_STR, .flags = REQ,
     SM_MSG_AT(sm_msg_fault, message)},
};
static const sm_msg_schema fault_elem =
    SM_MSG_TABLE(NULL, sm_msg_fault, fault_fields, NULL);

static const sm_msg_field workers_fields[] = {
    {.key = "workers", .type = SM_MSG_STRUCTS, .flags = REQ,
     SM_MSG_AT(sm_msg_workers, workers), SM_MSG_N(sm_msg_workers, n),
     .sub = &worker_elem},
    {.key = "faults", .type = SM_MSG_STRUCTS, SM_MSG_AT(sm_msg_workers, faults),
     SM_MSG_N(sm_msg_workers, n_faults), .sub = &fault_elem},
};
static const sm_msg_schema workers_table =
    SM_MSG_TABLE("WORKERS", sm_msg_workers, workers_fields, NULL);

/* ERROR, READY */

static const sm_msg_field error_fields[] = {
    {.key = "code", .type = SM_MSG_STR, .flags = REQ | NONEMPTY,
     SM_MSG_AT(sm_msg_error, code)},
    {.key = "message", .type = SM_MSG_STR, .flags = REQ,
     SM_MSG_AT(sm_msg_error, message)},
    {.key = "command", .type = SM_MSG_STR, SM_MSG_AT(sm_msg_error, command)},
};
static const sm_msg_schema error_table =
    SM_MSG_TABLE("ERROR", sm_msg_error, error_fields, NULL);

static const sm_msg_field ready_fields[] = {
    {.key = "capacity", .type = SM_MSG_UINT, .flags = REQ,
     SM_MSG_AT(sm_msg_ready, capacity), .lo = 1},
    {.key = "name", .type = SM_MSG_STR, SM_MSG_AT(sm_msg_ready, name)},
};
static const sm_msg_schema ready_table =
    SM_MSG_TABLE("READY", sm_msg_ready, ready_fields, NULL);

/* TASK */

static int task_is_chunk(const void *m)
{
    return ((const sm_msg_task *)m)->kind == SM_TASK_CHUNK;
}

static int task_has_state(const void *m)
{
    return ((const sm_msg_task *)m)->kind != SM_TASK_IMAGES;
}

static int task_check(sm_mp_reader *r, void *m, const sm_msg_seen *seen)
{
    const sm_msg_task *t = m;
    if (t->kind == SM_TASK_IMAGES && t->n_images == 0)
        return sm_mp_fail(r, "images", "empty");
    if (t->kind != SM_TASK_IMAGES && t->n_images != 1)
        return sm_mp_fail(r, "images", "%zu images, a %s task has exactly 1",
                          t->n_images, kind_names[t->kind]);
    if (t->kind == SM_TASK_STEP && !sm_msg_seen_has(seen, "scores"))
        return sm_mp_fail(r, "scores", "missing");
    if (t->kind == SM_TASK_CHUNK && t->part >= t->parts)
        return sm_mp_fail(r, "part", "%" PRId64 " is out of range 0..%" PRId64,
                          t->part, t->parts - 1);
    return 0;
}

#define TK(f) SM_MSG_AT(sm_msg_task, f)
#define TN(f) SM_MSG_N(sm_msg_task, f)
static const sm_msg_field task_fields[] = {
    {.key = "task", .type = SM_MSG_UINT, .flags = REQ, TK(task)},
    {.key = "job", .type = SM_MSG_STR, .flags = REQ | NONEMPTY, TK(job)},
    {.key = "kind", .type = SM_MSG_ENUM, .flags = REQ, TK(kind),
     NAMES(kind_names)},
    {.key = "model", .type = SM_MSG_HASH, .flags = REQ, TK(model)},
    {.key = "config", .type = SM_MSG_STR, TK(config)},
    {.key = "method", .type = SM_MSG_STR, .flags = REQ | NONEMPTY,
     TK(method)},
    {.key = "settings", .type = SM_MSG_STRS, TK(settings), TN(n_settings)},
    {.key = "seed", .type = SM_MSG_UINT, TK(seed)},
    {.key = "target", .type = SM_MSG_STR, TK(target), .sdef = "predicted",
     .check = check_target},
    {.key = "score", .type = SM_MSG_STR, TK(score), .sdef = "logit",
     NAMES(scores_names)},
    {.key = "metrics", .type = SM_MSG_BOOL, TK(metrics), .def = 1},
    METRIC_PARAMS(sm_msg_task),
    {.key = "images", .type = SM_MSG_STRUCTS, .flags = REQ, TK(images),
     TN(n_images), .sub = &image_task},
    {.key = "parts", .type = SM_MSG_INT, .flags = REQ, TK(parts), .lo = 1,
     .hi = INT64_MAX, .when = task_is_chunk},
    {.key = "part", .type = SM_MSG_INT, .flags = REQ, TK(part), .lo = 0,
     .hi = INT64_MAX, .when = task_is_chunk},
    {.key = "scores", .type = SM_MSG_F64S, TK(scores), TN(n_scores)},
    {.key = "state", .type = SM_MSG_BIN, TK(state), TN(state_len),
     .when = task_has_state},
    {.key = "models", .type = SM_MSG_STRMAP, TK(model_names), TN(n_models),
     .off_v = offsetof(sm_msg_task, model_hashes), .max = MAX_MODELS},
};
static const sm_msg_schema task_table =
    SM_MSG_TABLE("TASK", sm_msg_task, task_fields, task_check);

/* RESULT: its items, and their arrays */

/* The elements of a shape's product, or 0 when it overflows (or is not a
 * shape). */
static uint64_t shape_product(const int64_t *shape, int ndim)
{
    uint64_t n = 1;
    if (ndim < 1 || ndim > 4)
        return 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || (uint64_t)shape[d] > (UINT64_MAX / 4) / n)
            return 0;
        n *= (uint64_t)shape[d];
    }
    return n;
}

static size_t array_count(const void *m)
{
    const sm_msg_array *a = m;
    uint64_t n = shape_product(a->shape, a->ndim);
    return n <= SIZE_MAX ? (size_t)n : 0;
}

static int array_check(sm_mp_reader *r, void *m, const sm_msg_seen *seen)
{
    const sm_msg_array *a = m;
    size_t n = sm_msg_seen_count(seen, "data");
    uint64_t want = shape_product(a->shape, a->ndim);
    if (want == 0)
        return sm_mp_fail(r, "shape", "holds more than %llu values",
                          (unsigned long long)(UINT64_MAX / 4));
    if ((uint64_t)n != want)
        return sm_mp_fail(r, "data", "%zu bytes, expected the product of "
                          "shape x 4 = %llu", n * 4,
                          (unsigned long long)want * 4);
    return 0;
}

#define AR(f) SM_MSG_AT(sm_msg_array, f)
static const sm_msg_field array_fields[] = {
    {.key = "name", .type = SM_MSG_NAME, .flags = REQ, AR(name)},
    {.key = "shape", .type = SM_MSG_INTS, .flags = REQ | NONEMPTY, AR(shape),
     SM_MSG_N(sm_msg_array, ndim), .lo = 1, .hi = INT64_MAX},
    {.key = "data", .type = SM_MSG_F32S, .flags = REQ, AR(data),
     .count = array_count},
};
static const sm_msg_schema array_elem =
    SM_MSG_TABLE(NULL, sm_msg_array, array_fields, array_check);

static int item_has_map(const void *m)
{
    return ((const sm_msg_item *)m)->map != NULL;
}

static int item_has_metrics(const void *m)
{
    return ((const sm_msg_item *)m)->has_metrics;
}

static size_t item_map_count(const void *m)
{
    const sm_msg_item *it = m;
    return it->height > 0 && it->width > 0
               ? (size_t)it->height * (size_t)it->width
               : 0;
}

static int item_check(sm_mp_reader *r, void *m, const sm_msg_seen *seen)
{
    const sm_msg_item *it = m;
    size_t n = sm_msg_seen_count(seen, "map"), want = item_map_count(m);
    if (it->map && n != want)
        return sm_mp_fail(r, "map", "%zu bytes, expected height x width x 4 "
                          "= %zu", n * 4, want * 4);
    int del = sm_msg_seen_has(seen, "deletion");
    if (del != sm_msg_seen_has(seen, "insertion"))
        return sm_mp_fail(r, del ? "insertion" : "deletion",
                          "missing (metrics come in pairs)");
    return 0;
}

#define IT(f) SM_MSG_AT(sm_msg_item, f)
static const sm_msg_field item_fields[] = {
    {.key = "id", .type = SM_MSG_PATH, .flags = REQ, IT(id)},
    /* a failed image carries nothing else */
    {.key = "error", .type = SM_MSG_STR, .flags = SM_MSG_LAST, IT(error)},
    {.key = "predicted", .type = SM_MSG_INT, .flags = REQ, IT(predicted),
     .lo = -1, .hi = INT_MAX},
    {.key = "target", .type = SM_MSG_INT, .flags = REQ, IT(target), .lo = -1,
     .hi = INT_MAX},
    {.key = "score", .type = SM_MSG_F64, .flags = REQ, IT(score)},
    {.key = "evals", .type = SM_MSG_INT, IT(evals), .lo = 0, .hi = INT64_MAX},
    {.key = "seconds", .type = SM_MSG_F64, IT(seconds)},
    /* before height and width, which it brings */
    {.key = "map", .type = SM_MSG_F32S, IT(map), .count = item_map_count},
    {.key = "height", .type = SM_MSG_INT, .flags = REQ, IT(height), .lo = 1,
     .hi = MAX_SIDE, .when = item_has_map},
    {.key = "width", .type = SM_MSG_INT, .flags = REQ, IT(width), .lo = 1,
     .hi = MAX_SIDE, .when = item_has_map},
    {.key = "params", .type = SM_MSG_STR, IT(params)},
    {.key = "record", .type = SM_MSG_STR, IT(record)},
    {.key = "arrays", .type = SM_MSG_STRUCTS, IT(arrays),
     SM_MSG_N(sm_msg_item, n_arrays), .sub = &array_elem},
    {.key = "deletion", .type = SM_MSG_F64, .flags = SM_MSG_HAS,
     IT(deletion), .off_v = offsetof(sm_msg_item, has_metrics)},
    {.key = "insertion", .type = SM_MSG_F64, .flags = SM_MSG_HAS,
     IT(insertion), .off_v = offsetof(sm_msg_item, has_metrics)},
    /* with the pair only, after it: its presence says whether they are */
    {.key = "faithfulness", .type = SM_MSG_F64, .flags = REQ,
     IT(faithfulness), .when = item_has_metrics},
    {.key = "sparseness", .type = SM_MSG_F64, .flags = REQ, IT(sparseness),
     .when = item_has_metrics},
    {.key = "complexity", .type = SM_MSG_F64, .flags = REQ, IT(complexity),
     .when = item_has_metrics},
    {.key = "sensitivity", .type = SM_MSG_F64, .flags = REQ,
     IT(sensitivity), .when = item_has_metrics},
};
static const sm_msg_schema item_elem =
    SM_MSG_TABLE(NULL, sm_msg_item, item_fields, item_check);

#define RS(f) SM_MSG_AT(sm_msg_result, f)
#define RN(f) SM_MSG_N(sm_msg_result, f)
static const sm_msg_field result_fields[] = {
    {.key = "task", .type = SM_MSG_UINT, .flags = REQ, RS(task)},
    {.key = "error", .type = SM_MSG_STR, RS(error)},
    {.key = "items", .type = SM_MSG_STRUCTS, RS(items), RN(n_items),
     .sub = &item_elem},
    {.key = "scores", .type = SM_MSG_F64S, RS(scores), RN(n_scores)},
    {.key = "samples", .type = SM_MSG_INT, .flags = SM_MSG_OMIT, RS(samples),
     .lo = 0, .hi = INT64_MAX},
    {.key = "state", .type = SM_MSG_BIN, RS(state), RN(state_len)},
};
static const sm_msg_schema result_table =
    SM_MSG_TABLE("RESULT", sm_msg_result, result_fields, NULL);

/* {job}: SUBMITTED, STATUS / WATCH / CANCEL requests, CANCELLED */
typedef struct job_id {
    const char *job;
} job_id;
static const sm_msg_field job_id_fields[] = {
    {.key = "job", .type = SM_MSG_STR, .flags = REQ | NONEMPTY,
     SM_MSG_AT(job_id, job)},
};
static const sm_msg_schema job_id_table =
    SM_MSG_TABLE("JOB", job_id, job_id_fields, NULL);

/* ---- the messages: a table each ---------------------------------------------- */

static int decode(const sm_msg_schema *s, const void *body, size_t len,
                  const sm_msg_limits *l, sm_msg_doc **doc, void *m,
                  sm_err *err)
{
    dec d;
    memset(m, 0, s->size);
    *doc = NULL;
    if (dec_open(&d, s->command, body, len, l, err))
        return -1;
    return dec_close(&d, sm_msg_read(&d.r, s, &d.root, m), doc, m, s->size);
}

/* 0, or -1 (out of memory) with b emptied. */
static int encode(const sm_msg_schema *s, const void *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    sm_msg_pack(&pk, s, m);
    if (out.failed) {
        b->len = 0;
        return -1;
    }
    return 0;
}

#define CODEC(name, type, table)                                               \
    int sm_msg_encode_##name(const type *m, sm_msg_buf *b)                     \
    {                                                                          \
        return encode(&table, m, b);                                           \
    }                                                                          \
    int sm_msg_decode_##name(const void *body, size_t len,                     \
                             const sm_msg_limits *l, sm_msg_doc **doc,         \
                             type *m, sm_err *err)                             \
    {                                                                          \
        return decode(&table, body, len, l, doc, m, err);                      \
    }

CODEC(job, sm_msg_job, job_table)
CODEC(status, sm_msg_status, status_table)
CODEC(list, sm_msg_list, list_table)
CODEC(workers, sm_msg_workers, workers_table)
CODEC(blob, sm_msg_blob, blob_table)
CODEC(files, sm_msg_files, files_table)
CODEC(error, sm_msg_error, error_table)
CODEC(ready, sm_msg_ready, ready_table)
CODEC(task, sm_msg_task, task_table)
CODEC(result, sm_msg_result, result_table)

int sm_msg_encode_job_id(const char *job, sm_msg_buf *b)
{
    job_id m = {.job = job};
    return encode(&job_id_table, &m, b);
}

int sm_msg_encode_empty(sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    msgpack_pack_map(&pk, 0);
    return out.failed ? (b->len = 0, -1) : 0;
}

int sm_msg_decode_job_id(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, const char **job, sm_err *err)
{
    job_id m;
    int rc = decode(&job_id_table, body, len, l, doc, &m, err);
    *job = m.job;
    return rc;
}

int sm_msg_peek_task(const void *body, size_t len, const sm_msg_limits *l,
                     uint64_t *task, char *model)
{
    dec d;
    const msgpack_object *v;
    const char *hash = NULL;
    if (model)
        model[0] = '\0';
    if (dec_open(&d, "TASK", body, len, l, NULL))
        return -1;
    int failed = sm_mp_field(&d.r, &d.root, "task", 1, &v) ||
                 sm_mp_uint(&d.r, v, "task", 0, UINT64_MAX, task);
    /* the model is a help only: anything but a hash reads as none */
    if (!failed && model && sm_mp_field(&d.r, &d.root, "model", 0, &v) == 0 &&
        v && sm_mp_str(&d.r, v, "model", &hash) == 0 && sm_hash_valid(hash))
        memcpy(model, hash, SM_HASH_HEX + 1);
    sm_msg_doc_destroy(&d.doc);
    return failed ? -1 : 0;
}

int sm_msg_decode_empty(const void *body, size_t len, const sm_msg_limits *l,
                        sm_err *err)
{
    dec d;
    if (dec_open(&d, "EMPTY", body, len, l, err))
        return -1;
    sm_msg_doc_destroy(&d.doc);
    return 0;
}


const char *sm_task_kind_name(sm_task_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0]
               ? kind_names[k]
               : "";
}
