/* The wire codec of msg.h, its decoding side (decoders, content hashes,
 * the shared buffers); msg_encode.c encodes, frames.c moves frames.
 *
 * Decoders open a doc (a msgpack_zone), unpack the checked body into it
 * (mp.c), then read the fields they know; what they hand back (strings,
 * bins, arrays, the message's own arrays of structs) is copied into the
 * zone, so a message lives exactly as long as its doc and one destroy frees
 * it all. A nil value reads as an absent field (peers whose language has
 * null send it for optional fields). Messages name the command a decoder
 * is for: SUBMIT, STATUS, LIST, BLOB (HAS, PUT, BLOB_GET, BLOB), FILES
 * (FETCH, FILES), ERROR, READY, TASK, RESULT, JOB (any {job} body) and
 * EMPTY (HEARTBEAT, DISCONNECT, LIST requests).
 */
#include "msg.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "mp.h"

#define MAX_SIDE 65535   /* width and height of u8 images and of maps */
#define MAX_BATCH 65536  /* SUBMIT batch */
/* SUBMIT params: methods, and parameters in all (as job files, whose
 * bound is the same); it also keeps the repeated-name checks cheap. */
#define MAX_PARAMS 256

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

static int check_nonempty(sm_mp_reader *r, const char *name, const char *s)
{
    return s && !s[0] ? sm_mp_fail(r, name, "empty") : 0;
}

static int check_hash(sm_mp_reader *r, const char *name, const char *s)
{
    if (s && !sm_hash_valid(s))
        return sm_mp_fail(r, name, "'%.80s' is not a content hash (64 "
                          "lower-case hex characters)", s);
    return 0;
}

/* Image ids and file paths become paths on the receiver's disk: no way
 * out of the folder they are put in, and no control characters (they also
 * go into index.csv lines). */
static int check_path(sm_mp_reader *r, const char *name, const char *s)
{
    if (!s)
        return 0;
    if (!s[0])
        return sm_mp_fail(r, name, "empty");
    if (s[0] == '/')
        return sm_mp_fail(r, name, "'%.80s' starts with '/'", s);
    if (strstr(s, ".."))
        return sm_mp_fail(r, name, "'%.80s' contains '..'", s);
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            return sm_mp_fail(r, name, "'%.80s' contains a backslash", s);
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return sm_mp_fail(r, name, "contains control character 0x%02x",
                              (unsigned char)*p);
    }
    return 0;
}

/* The index of s in names[0..n), or -1 with "must be a, b or c". */
static int one_of(sm_mp_reader *r, const char *name, const char *s,
                  const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    char list[256] = "";
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
                               i == 0 ? "" : i == n - 1 ? " or " : ", ",
                               names[i]);
    sm_mp_fail(r, name, "must be %s, not '%.80s'", list, s);
    return -1;
}

/* "predicted", "label" or a class index in decimal. */
static int check_target(sm_mp_reader *r, const char *s)
{
    if (strcmp(s, "predicted") == 0 || strcmp(s, "label") == 0)
        return 0;
    size_t n = strlen(s);
    if (n >= 1 && n <= 9 && strspn(s, "0123456789") == n)
        return 0;
    return sm_mp_fail(r, "target", "must be predicted, label or a class "
                      "index, not '%.80s'", s);
}

static const char *const scores_names[] = {"logit", "prob"};
static const char *const kind_names[] = {"images", "chunk", "fit"};
static const char *const state_names[] = {"queued", "running", "done",
                                          "failed", "cancelled"};
static const char *const format_names[] = {"file", "u8"};

/* An array of n elements of size bytes in the zone (NULL when n is 0). */
static int alloc_array(sm_mp_reader *r, const char *name, size_t n,
                       size_t size, void **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / size)
        return sm_mp_fail(r, name, "out of memory");
    if (!(*out = sm_mp_alloc(r, name, n * size)))
        return -1;
    memset(*out, 0, n * size);
    return 0;
}

/* An array of str; *present tells an absent field from an empty one. */
static int read_strs(sm_mp_reader *r, const msgpack_object *map,
                     const char *key, int required, const char ***out,
                     size_t *n, int *present)
{
    const msgpack_object *items = NULL;
    size_t k = 0;
    const msgpack_object *v;
    *out = NULL;
    *n = 0;
    if (sm_mp_field(r, map, key, required, &v))
        return -1;
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (sm_mp_array(r, v, key, &items, &k))
        return -1;
    const char **s;
    if (alloc_array(r, key, k, sizeof *s, (void **)&s))
        return -1;
    for (size_t i = 0; i < k; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        if (sm_mp_str(r, &items[i], name, &s[i]))
            return -1;
    }
    *out = s;
    *n = k;
    return 0;
}

/* ---- decoding: shared values -------------------------------------------- */

static int read_image(sm_mp_reader *r, const msgpack_object *o, int in_task,
                      sm_msg_image *im)
{
    const char *format = NULL;
    int64_t v;
    im->label_index = -1;
    im->format = SM_IMAGE_FILE;
    if (sm_mp_get_str(r, o, "id", 1, &im->id) ||
        check_path(r, "id", im->id) ||
        sm_mp_get_str(r, o, "label", 0, &im->label))
        return -1;
    if (in_task) {
        v = -1;
        if (sm_mp_get_int(r, o, "label_index", 0, -1, INT_MAX, &v))
            return -1;
        im->label_index = (int)v;
    }
    if (sm_mp_get_str(r, o, "format", 0, &format))
        return -1;
    if (format) {
        int f = one_of(r, "format", format, format_names, 2);
        if (f < 0)
            return -1;
        im->format = (sm_image_format)f;
    }
    if (sm_mp_get_bin(r, o, "data", 1, &im->data, &im->len))
        return -1;
    if (im->format == SM_IMAGE_FILE)
        return im->len ? 0 : sm_mp_fail(r, "data", "empty");
    int64_t w, h, b;
    if (sm_mp_get_int(r, o, "width", 1, 1, MAX_SIDE, &w) ||
        sm_mp_get_int(r, o, "height", 1, 1, MAX_SIDE, &h) ||
        sm_mp_get_int(r, o, "bands", 1, 1, 4, &b))
        return -1;
    im->width = (int)w, im->height = (int)h, im->bands = (int)b;
    size_t want = (size_t)w * (size_t)h * (size_t)b;
    if (im->len != want)
        return sm_mp_fail(r, "data", "%zu bytes, expected width x height x "
                          "bands = %zu", im->len, want);
    return 0;
}

/* "images": *present tells an absent field from an empty array. */
static int read_images(sm_mp_reader *r, const msgpack_object *map,
                       int required, int in_task, sm_msg_image **out,
                       size_t *n, int *present)
{
    const msgpack_object *v, *items;
    size_t k;
    *out = NULL;
    *n = 0;
    if (sm_mp_field(r, map, "images", required, &v))
        return -1;
    *present = v != NULL;
    if (!v)
        return 0;
    if (sm_mp_array(r, v, "images", &items, &k))
        return -1;
    sm_msg_image *im;
    if (alloc_array(r, "images", k, sizeof *im, (void **)&im))
        return -1;
    for (size_t i = 0; i < k; i++) {
        char name[40];
        snprintf(name, sizeof name, "images[%zu]", i);
        if (sm_mp_map(r, &items[i], name))
            return -1;
        size_t mark = sm_mp_enter(r, name);
        if (read_image(r, &items[i], in_task, &im[i]))
            return -1;
        sm_mp_leave(r, mark);
    }
    *out = im;
    *n = k;
    return 0;
}

/* A params value as text: str as is, ints in decimal, floats %.17g (enough
 * digits to read back the same double), bools true/false. */
static int param_text(sm_mp_reader *r, const msgpack_object *o,
                      const char *name, const char **out)
{
    char tmp[64];
    switch (o->type) {
    case MSGPACK_OBJECT_STR: return sm_mp_str(r, o, name, out);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(tmp, sizeof tmp, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(tmp, sizeof tmp, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        snprintf(tmp, sizeof tmp, "%.17g", o->via.f64);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(tmp, sizeof tmp, "%s", o->via.boolean ? "true" : "false");
        break;
    default:
        return sm_mp_fail(r, name, "expected str, int, float or bool, got %s",
                          sm_mp_type_name(o));
    }
    char *s = sm_mp_alloc(r, name, strlen(tmp) + 1);
    if (!s)
        return -1;
    memcpy(s, tmp, strlen(tmp) + 1);
    *out = s;
    return 0;
}

/* 1 when key i of map (a str) repeats an earlier str key. */
static int same_key(const msgpack_object *map, uint32_t i)
{
    const msgpack_object *k = &map->via.map.ptr[i].key;
    for (uint32_t j = 0; j < i; j++) {
        const msgpack_object *o = &map->via.map.ptr[j].key;
        if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == k->via.str.size &&
            (k->via.str.size == 0 ||
             memcmp(o->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0))
            return 1;
    }
    return 0;
}

/* "params": {method: {key: value}} into "method.key=value" texts, in the
 * order of the body; at most MAX_PARAMS, no name twice. */
static int read_params(sm_mp_reader *r, const msgpack_object *map,
                       const char ***out, size_t *n)
{
    const msgpack_object *pm;
    *out = NULL;
    *n = 0;
    if (sm_mp_get_map(r, map, "params", 0, &pm))
        return -1;
    if (!pm)
        return 0;
    size_t mark = sm_mp_enter(r, "params");
    size_t count = 0;
    for (uint32_t i = 0; i < pm->via.map.size; i++) {
        const msgpack_object_kv *kv = &pm->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return sm_mp_fail(r, "", "method names must be str, not %s",
                              sm_mp_type_name(&kv->key));
        if (kv->val.type == MSGPACK_OBJECT_MAP)
            count += kv->val.via.map.size;
        if (i >= MAX_PARAMS || count > MAX_PARAMS)
            return sm_mp_fail(r, "", "more than %d methods or parameters",
                              MAX_PARAMS);
        if (same_key(pm, i))
            return sm_mp_fail(r, "", "method '%.*s' given twice",
                              (int)(kv->key.via.str.size < 80
                                        ? kv->key.via.str.size : 80),
                              kv->key.via.str.ptr);
    }
    const char **s;
    if (alloc_array(r, "params", count, sizeof *s, (void **)&s))
        return -1;
    size_t k = 0;
    for (uint32_t i = 0; i < pm->via.map.size; i++) {
        const msgpack_object_kv *kv = &pm->via.map.ptr[i];
        const char *method;
        if (sm_mp_str(r, &kv->key, "", &method))
            return -1;
        /* "method.key=value" must split back the same way */
        if (!method[0] || strpbrk(method, ".="))
            return sm_mp_fail(r, "", "method name '%.80s' is empty or "
                              "contains '.' or '='", method);
        if (kv->val.type == MSGPACK_OBJECT_NIL)
            continue;
        if (sm_mp_map(r, &kv->val, method))
            return -1;
        size_t mark2 = sm_mp_enter(r, method);
        const msgpack_object *mm = &kv->val;
        for (uint32_t j = 0; j < mm->via.map.size; j++) {
            const char *key, *value;
            if (mm->via.map.ptr[j].key.type != MSGPACK_OBJECT_STR)
                return sm_mp_fail(r, "", "parameter names must be str, not "
                                  "%s",
                                  sm_mp_type_name(&mm->via.map.ptr[j].key));
            if (sm_mp_str(r, &mm->via.map.ptr[j].key, "", &key))
                return -1;
            if (!key[0] || strchr(key, '='))
                return sm_mp_fail(r, "", "parameter name '%.80s' is empty "
                                  "or contains '='", key);
            if (same_key(mm, j))
                return sm_mp_fail(r, key, "given twice");
            if (param_text(r, &mm->via.map.ptr[j].val, key, &value))
                return -1;
            size_t len = strlen(method) + strlen(key) + strlen(value) + 3;
            char *t = sm_mp_alloc(r, key, len);
            if (!t)
                return -1;
            snprintf(t, len, "%s.%s=%s", method, key, value);
            s[k++] = t;
        }
        sm_mp_leave(r, mark2);
    }
    sm_mp_leave(r, mark);
    *out = s;
    *n = k;
    return 0;
}

static int read_status(sm_mp_reader *r, const msgpack_object *o,
                       sm_msg_status *st)
{
    if (sm_mp_get_str(r, o, "job", 1, &st->job) ||
        check_nonempty(r, "job", st->job) ||
        sm_mp_get_str(r, o, "name", 0, &st->name) ||
        sm_mp_get_str(r, o, "state", 1, &st->state) ||
        one_of(r, "state", st->state, state_names, 5) < 0 ||
        sm_mp_get_str(r, o, "out", 1, &st->out) ||
        sm_mp_get_str(r, o, "error", 0, &st->error) ||
        sm_mp_get_uint(r, o, "images", 1, 0, UINT64_MAX, &st->images) ||
        sm_mp_get_uint(r, o, "maps_total", 1, 0, UINT64_MAX,
                       &st->maps_total) ||
        sm_mp_get_uint(r, o, "maps_done", 1, 0, UINT64_MAX,
                       &st->maps_done) ||
        sm_mp_get_uint(r, o, "maps_failed", 1, 0, UINT64_MAX,
                       &st->maps_failed) ||
        sm_mp_get_uint(r, o, "maps_found", 0, 0, st->maps_done,
                       &st->maps_found) ||
        sm_mp_get_float(r, o, "seconds", 1, &st->seconds) ||
        sm_mp_get_float(r, o, "rate", 1, &st->rate))
        return -1;
    return 0;
}

static int read_item(sm_mp_reader *r, const msgpack_object *o,
                     sm_msg_item *it)
{
    int64_t v;
    if (sm_mp_get_str(r, o, "id", 1, &it->id) ||
        check_path(r, "id", it->id) ||
        sm_mp_get_str(r, o, "error", 0, &it->error))
        return -1;
    if (it->error)
        return 0; /* a failed image carries nothing else */
    if (sm_mp_get_int(r, o, "predicted", 1, -1, INT_MAX, &v))
        return -1;
    it->predicted = (int)v;
    if (sm_mp_get_int(r, o, "target", 1, -1, INT_MAX, &v))
        return -1;
    it->target = (int)v;
    if (sm_mp_get_float(r, o, "score", 1, &it->score) ||
        sm_mp_get_int(r, o, "evals", 0, 0, INT64_MAX, &it->evals) ||
        sm_mp_get_float(r, o, "seconds", 0, &it->seconds))
        return -1;
    int64_t h, w;
    if (sm_mp_get_int(r, o, "height", 1, 1, MAX_SIDE, &h) ||
        sm_mp_get_int(r, o, "width", 1, 1, MAX_SIDE, &w))
        return -1;
    it->height = (int)h, it->width = (int)w;
    size_t n;
    if (sm_mp_get_f32s(r, o, "map", 1, &it->map, &n))
        return -1;
    if (n != (size_t)h * (size_t)w)
        return sm_mp_fail(r, "map", "%zu bytes, expected height x width x 4 "
                          "= %zu", n * 4, (size_t)h * (size_t)w * 4);
    if (sm_mp_get_str(r, o, "params", 0, &it->params) ||
        sm_mp_get_str(r, o, "extras", 0, &it->extras))
        return -1;
    const msgpack_object *del, *ins;
    if (sm_mp_field(r, o, "deletion", 0, &del) ||
        sm_mp_field(r, o, "insertion", 0, &ins))
        return -1;
    if (!del != !ins)
        return sm_mp_fail(r, del ? "insertion" : "deletion",
                          "missing (metrics come in pairs)");
    if (del) {
        if (sm_mp_float(r, del, "deletion", &it->deletion) ||
            sm_mp_float(r, ins, "insertion", &it->insertion))
            return -1;
        it->has_metrics = 1;
    }
    return 0;
}

/* ---- decoders ----------------------------------------------------------- */

int sm_msg_decode_job(const void *body, size_t len, const sm_msg_limits *l,
                      sm_msg_doc **doc, sm_msg_job *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "SUBMIT", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    const msgpack_object *o = &d.root;
    int has_images = 0;
    m->metrics = 1;
    m->target = "predicted";
    m->score = "logit";
    int64_t batch = 64;
    int failed =
        sm_mp_get_str(r, o, "name", 0, &m->name) ||
        sm_mp_get_str(r, o, "model", 1, &m->model) ||
        check_hash(r, "model", m->model) ||
        sm_mp_get_str(r, o, "config", 0, &m->config) ||
        sm_mp_get_str(r, o, "dataset", 0, &m->dataset) ||
        check_nonempty(r, "dataset", m->dataset) ||
        read_images(r, o, 0, 0, &m->images, &m->n_images, &has_images) ||
        read_strs(r, o, "methods", 1, &m->methods, &m->n_methods, NULL) ||
        read_params(r, o, &m->settings, &m->n_settings) ||
        sm_mp_get_uint(r, o, "seed", 0, 0, UINT64_MAX, &m->seed) ||
        sm_mp_get_str(r, o, "out", 1, &m->out) ||
        check_nonempty(r, "out", m->out) ||
        sm_mp_get_uint(r, o, "limit", 0, 0, UINT64_MAX, &m->limit) ||
        sm_mp_get_bool(r, o, "metrics", 0, &m->metrics) ||
        sm_mp_get_str(r, o, "target", 0, &m->target) ||
        check_target(r, m->target) ||
        sm_mp_get_str(r, o, "score", 0, &m->score) ||
        one_of(r, "score", m->score, scores_names, 2) < 0 ||
        sm_mp_get_int(r, o, "batch", 0, 1, MAX_BATCH, &batch);
    if (!failed && m->n_methods == 0)
        failed = sm_mp_fail(r, "methods", "empty");
    for (size_t i = 0; !failed && i < m->n_methods; i++)
        if (!m->methods[i][0])
            failed = sm_mp_fail(r, "methods", "method %zu is empty", i);
    if (!failed && m->dataset && has_images)
        failed = sm_mp_fail(r, "images", "give a dataset or images, not "
                            "both");
    if (!failed && !m->dataset && !has_images)
        failed = sm_mp_fail(r, "dataset", "missing (give a dataset or "
                            "images)");
    if (!failed && has_images && m->n_images == 0)
        failed = sm_mp_fail(r, "images", "empty");
    m->batch = (int)batch;
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_status(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, sm_msg_status *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "STATUS", body, len, l, err))
        return -1;
    return dec_close(&d, read_status(&d.r, &d.root, m), doc, m, sizeof *m);
}

int sm_msg_decode_list(const void *body, size_t len, const sm_msg_limits *l,
                       sm_msg_doc **doc, sm_msg_list *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "LIST", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    const msgpack_object *items;
    size_t k;
    int failed = sm_mp_get_array(r, &d.root, "jobs", 1, &items, &k) ||
                 alloc_array(r, "jobs", k, sizeof *m->jobs,
                             (void **)&m->jobs);
    for (size_t i = 0; !failed && i < k; i++) {
        char name[40];
        snprintf(name, sizeof name, "jobs[%zu]", i);
        if ((failed = sm_mp_map(r, &items[i], name)))
            break;
        size_t mark = sm_mp_enter(r, name);
        failed = read_status(r, &items[i], &m->jobs[i]);
        sm_mp_leave(r, mark);
    }
    if (!failed)
        m->n = k;
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_blob(const void *body, size_t len, const sm_msg_limits *l,
                       sm_msg_doc **doc, sm_msg_blob *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "BLOB", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    int failed = sm_mp_get_str(r, &d.root, "hash", 1, &m->hash) ||
                 check_hash(r, "hash", m->hash) ||
                 sm_mp_get_bin(r, &d.root, "data", 0, &m->data, &m->len) ||
                 sm_mp_get_bool(r, &d.root, "have", 0, &m->have);
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_files(const void *body, size_t len, const sm_msg_limits *l,
                        sm_msg_doc **doc, sm_msg_files *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "FILES", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    const msgpack_object *items = NULL;
    size_t k = 0;
    m->next = -1;
    int failed = sm_mp_get_str(r, &d.root, "job", 1, &m->job) ||
                 check_nonempty(r, "job", m->job) ||
                 sm_mp_get_int(r, &d.root, "from", 0, 0, INT64_MAX,
                               &m->from) ||
                 sm_mp_get_int(r, &d.root, "next", 0, -1, INT64_MAX,
                               &m->next) ||
                 sm_mp_get_array(r, &d.root, "files", 0, &items, &k) ||
                 alloc_array(r, "files", k, sizeof *m->files,
                             (void **)&m->files);
    for (size_t i = 0; !failed && i < k; i++) {
        char name[40];
        snprintf(name, sizeof name, "files[%zu]", i);
        if ((failed = sm_mp_map(r, &items[i], name)))
            break;
        size_t mark = sm_mp_enter(r, name);
        sm_msg_file *f = &m->files[i];
        failed = sm_mp_get_str(r, &items[i], "path", 1, &f->path) ||
                 check_path(r, "path", f->path) ||
                 sm_mp_get_bin(r, &items[i], "data", 1, &f->data, &f->len);
        sm_mp_leave(r, mark);
    }
    if (!failed)
        m->n = k;
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_error(const void *body, size_t len, const sm_msg_limits *l,
                        sm_msg_doc **doc, sm_msg_error *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "ERROR", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    int failed = sm_mp_get_str(r, &d.root, "code", 1, &m->code) ||
                 check_nonempty(r, "code", m->code) ||
                 sm_mp_get_str(r, &d.root, "message", 1, &m->message) ||
                 sm_mp_get_str(r, &d.root, "command", 0, &m->command);
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_ready(const void *body, size_t len, const sm_msg_limits *l,
                        sm_msg_doc **doc, sm_msg_ready *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "READY", body, len, l, err))
        return -1;
    uint64_t cap = 0;
    int failed =
        sm_mp_get_uint(&d.r, &d.root, "capacity", 1, 1, UINT32_MAX, &cap) ||
        sm_mp_get_str(&d.r, &d.root, "name", 0, &m->name);
    m->capacity = (uint32_t)cap;
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_task(const void *body, size_t len, const sm_msg_limits *l,
                       sm_msg_doc **doc, sm_msg_task *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "TASK", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    const msgpack_object *o = &d.root;
    const char *kind = NULL;
    int has_images, k = 0;
    size_t n_scores = 0;
    m->metrics = 1;
    m->target = "predicted";
    m->score = "logit";
    int failed =
        sm_mp_get_uint(r, o, "task", 1, 0, UINT64_MAX, &m->task) ||
        sm_mp_get_str(r, o, "job", 1, &m->job) ||
        check_nonempty(r, "job", m->job) ||
        sm_mp_get_str(r, o, "kind", 1, &kind) ||
        (k = one_of(r, "kind", kind, kind_names, 3)) < 0 ||
        sm_mp_get_str(r, o, "model", 1, &m->model) ||
        check_hash(r, "model", m->model) ||
        sm_mp_get_str(r, o, "config", 0, &m->config) ||
        sm_mp_get_str(r, o, "method", 1, &m->method) ||
        check_nonempty(r, "method", m->method) ||
        read_strs(r, o, "settings", 0, &m->settings, &m->n_settings, NULL) ||
        sm_mp_get_uint(r, o, "seed", 0, 0, UINT64_MAX, &m->seed) ||
        sm_mp_get_str(r, o, "target", 0, &m->target) ||
        check_target(r, m->target) ||
        sm_mp_get_str(r, o, "score", 0, &m->score) ||
        one_of(r, "score", m->score, scores_names, 2) < 0 ||
        sm_mp_get_bool(r, o, "metrics", 0, &m->metrics) ||
        read_images(r, o, 1, 1, &m->images, &m->n_images, &has_images) ||
        sm_mp_get_f64s(r, o, "scores", k == SM_TASK_FIT, &m->scores,
                       &n_scores);
    if (!failed) {
        m->kind = (sm_task_kind)k;
        m->n_scores = (int64_t)n_scores;
        if (k == SM_TASK_IMAGES && m->n_images == 0)
            failed = sm_mp_fail(r, "images", "empty");
        else if (k != SM_TASK_IMAGES && m->n_images != 1)
            failed = sm_mp_fail(r, "images", "%zu images, a %s task has "
                                "exactly 1", m->n_images, kind);
    }
    if (!failed && k == SM_TASK_CHUNK)
        failed = sm_mp_get_int(r, o, "parts", 1, 1, INT64_MAX, &m->parts) ||
                 sm_mp_get_int(r, o, "part", 1, 0, m->parts - 1, &m->part);
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_result(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, sm_msg_result *m, sm_err *err)
{
    dec d;
    memset(m, 0, sizeof *m);
    *doc = NULL;
    if (dec_open(&d, "RESULT", body, len, l, err))
        return -1;
    sm_mp_reader *r = &d.r;
    const msgpack_object *items = NULL;
    size_t k = 0, n_scores = 0;
    int failed =
        sm_mp_get_uint(r, &d.root, "task", 1, 0, UINT64_MAX, &m->task) ||
        sm_mp_get_str(r, &d.root, "error", 0, &m->error) ||
        sm_mp_get_array(r, &d.root, "items", 0, &items, &k) ||
        alloc_array(r, "items", k, sizeof *m->items, (void **)&m->items) ||
        sm_mp_get_f64s(r, &d.root, "scores", 0, &m->scores, &n_scores) ||
        sm_mp_get_int(r, &d.root, "samples", 0, 0, INT64_MAX, &m->samples);
    for (size_t i = 0; !failed && i < k; i++) {
        char name[40];
        snprintf(name, sizeof name, "items[%zu]", i);
        if ((failed = sm_mp_map(r, &items[i], name)))
            break;
        size_t mark = sm_mp_enter(r, name);
        failed = read_item(r, &items[i], &m->items[i]);
        sm_mp_leave(r, mark);
    }
    if (!failed) {
        m->n_items = k;
        m->n_scores = (int64_t)n_scores;
    }
    return dec_close(&d, failed, doc, m, sizeof *m);
}

int sm_msg_decode_job_id(const void *body, size_t len, const sm_msg_limits *l,
                         sm_msg_doc **doc, const char **job, sm_err *err)
{
    dec d;
    *job = NULL;
    *doc = NULL;
    if (dec_open(&d, "JOB", body, len, l, err))
        return -1;
    int failed = sm_mp_get_str(&d.r, &d.root, "job", 1, job) ||
                 check_nonempty(&d.r, "job", *job);
    return dec_close(&d, failed, doc, (void *)job, sizeof *job);
}

int sm_msg_peek_task(const void *body, size_t len, const sm_msg_limits *l,
                     uint64_t *task, char *model)
{
    dec d;
    const char *hash = NULL;
    if (model)
        model[0] = '\0';
    if (dec_open(&d, "TASK", body, len, l, NULL))
        return -1;
    int failed = sm_mp_get_uint(&d.r, &d.root, "task", 1, 0, UINT64_MAX, task);
    if (!failed && model && sm_mp_get_str(&d.r, &d.root, "model", 0, &hash) == 0 &&
        hash && sm_hash_valid(hash))
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
    return (unsigned)k < 3 ? kind_names[k] : "";
}
