/* The encoders of msg.h. They trust their input (it is ours): a NULL
 * optional field is left out, a NULL required one too (the receiver then
 * says it is missing). They empty b first and reuse its memory; b must be
 * zero-initialized or come from an earlier encode. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include "mp.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void kstr(msgpack_packer *pk, const char *k, const char *v)
{
    sm_mp_pack_str(pk, k);
    sm_mp_pack_str(pk, v);
}

static void kuint(msgpack_packer *pk, const char *k, uint64_t v)
{
    sm_mp_pack_str(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void kint(msgpack_packer *pk, const char *k, int64_t v)
{
    sm_mp_pack_str(pk, k);
    msgpack_pack_int64(pk, v);
}

static void kfloat(msgpack_packer *pk, const char *k, double v)
{
    sm_mp_pack_str(pk, k);
    msgpack_pack_double(pk, v);
}

static void kbool(msgpack_packer *pk, const char *k, int v)
{
    sm_mp_pack_str(pk, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void kbin(msgpack_packer *pk, const char *k, const void *data,
                 size_t len)
{
    sm_mp_pack_str(pk, k);
    sm_mp_pack_bin(pk, data, data ? len : 0);
}

static int done(sm_mp_out *out)
{
    if (out->failed) {
        out->b->len = 0;
        return -1;
    }
    return 0;
}

static void pack_strs(msgpack_packer *pk, const char *const *s, size_t n)
{
    if (!s)
        n = 0;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        sm_mp_pack_str(pk, nz(s[i]));
}

static void pack_image(msgpack_packer *pk, const sm_msg_image *im)
{
    int u8 = im->format == SM_IMAGE_U8;
    msgpack_pack_map(pk, 2 + !!im->id + !!im->label +
                             (im->label_index >= 0) + 3 * u8);
    if (im->id)
        kstr(pk, "id", im->id);
    if (im->label)
        kstr(pk, "label", im->label);
    if (im->label_index >= 0)
        kint(pk, "label_index", im->label_index);
    kstr(pk, "format", u8 ? "u8" : "file");
    if (u8) {
        kint(pk, "width", im->width);
        kint(pk, "height", im->height);
        kint(pk, "bands", im->bands);
    }
    kbin(pk, "data", im->data, im->len);
}

static void pack_images(msgpack_packer *pk, const sm_msg_image *im, size_t n)
{
    if (!im)
        n = 0;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_image(pk, &im[i]);
}

/* The part of "method.key=value" that names the method: up to the first
 * '.' that comes before any '='; none ("key=value") gives "". */
static size_t method_len(const char *s)
{
    size_t dot = strcspn(s, ".="), eq = strcspn(s, "=");
    return dot < eq ? dot : 0;
}

/* "method.key=value" settings into {method: {key: "value"}}, methods in
 * the order they first appear. Values go as str: the receiver only needs
 * their text, which is what it would make of an int or float anyway. */
static void pack_params(msgpack_packer *pk, const char *const *settings,
                        size_t n)
{
    const char *set[n]; /* n is small: a job's parameters */
    for (size_t i = 0; i < n; i++)
        set[i] = nz(settings[i]);
    size_t methods = 0;
    for (size_t i = 0; i < n; i++) {
        size_t ml = method_len(set[i]), j = 0;
        while (j < i && !(method_len(set[j]) == ml &&
                          memcmp(set[j], set[i], ml) == 0))
            j++;
        methods += j == i;
    }
    msgpack_pack_map(pk, methods);
    for (size_t i = 0; i < n; i++) {
        size_t ml = method_len(set[i]), j = 0, count = 0;
        while (j < i && !(method_len(set[j]) == ml &&
                          memcmp(set[j], set[i], ml) == 0))
            j++;
        if (j < i)
            continue; /* packed with its first setting */
        for (j = i; j < n; j++)
            count += method_len(set[j]) == ml &&
                     memcmp(set[j], set[i], ml) == 0;
        msgpack_pack_str(pk, ml);
        msgpack_pack_str_body(pk, set[i], ml);
        msgpack_pack_map(pk, count);
        for (j = i; j < n; j++) {
            if (method_len(set[j]) != ml || memcmp(set[j], set[i], ml))
                continue;
            const char *key = set[j] + ml + (ml > 0);
            size_t kl = strcspn(key, "=");
            msgpack_pack_str(pk, kl);
            msgpack_pack_str_body(pk, key, kl);
            sm_mp_pack_str(pk, key[kl] ? key + kl + 1 : "");
        }
    }
}

int sm_msg_encode_job(const sm_msg_job *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    int images = m->images != NULL && m->n_images > 0;
    int params = m->settings != NULL && m->n_settings > 0;
    msgpack_pack_map(&pk, 4 + !!m->name + !!m->model + !!m->config +
                              !!m->dataset + images + params + !!m->out +
                              !!m->target + !!m->score + (m->batch > 0));
    if (m->name)
        kstr(&pk, "name", m->name);
    if (m->model)
        kstr(&pk, "model", m->model);
    if (m->config)
        kstr(&pk, "config", m->config);
    if (m->dataset)
        kstr(&pk, "dataset", m->dataset);
    if (images) {
        sm_mp_pack_str(&pk, "images");
        pack_images(&pk, m->images, m->n_images);
    }
    sm_mp_pack_str(&pk, "methods");
    pack_strs(&pk, m->methods, m->n_methods);
    if (params) {
        sm_mp_pack_str(&pk, "params");
        pack_params(&pk, m->settings, m->n_settings);
    }
    kuint(&pk, "seed", m->seed);
    if (m->out)
        kstr(&pk, "out", m->out);
    kuint(&pk, "limit", m->limit);
    kbool(&pk, "metrics", m->metrics);
    if (m->target)
        kstr(&pk, "target", m->target);
    if (m->score)
        kstr(&pk, "score", m->score);
    if (m->batch > 0)
        kint(&pk, "batch", m->batch);
    return done(&out);
}

static void pack_status(msgpack_packer *pk, const sm_msg_status *m)
{
    msgpack_pack_map(pk, 7 + !!m->job + !!m->name + !!m->state + !!m->out +
                             !!m->error);
    if (m->job)
        kstr(pk, "job", m->job);
    if (m->name)
        kstr(pk, "name", m->name);
    if (m->state)
        kstr(pk, "state", m->state);
    if (m->out)
        kstr(pk, "out", m->out);
    if (m->error)
        kstr(pk, "error", m->error);
    kuint(pk, "images", m->images);
    kuint(pk, "maps_total", m->maps_total);
    kuint(pk, "maps_done", m->maps_done);
    kuint(pk, "maps_failed", m->maps_failed);
    kuint(pk, "maps_found", m->maps_found);
    kfloat(pk, "seconds", m->seconds);
    kfloat(pk, "rate", m->rate);
}

int sm_msg_encode_status(const sm_msg_status *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    pack_status(&pk, m);
    return done(&out);
}

int sm_msg_encode_list(const sm_msg_list *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    size_t n = m->jobs ? m->n : 0;
    msgpack_pack_map(&pk, 1);
    sm_mp_pack_str(&pk, "jobs");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        pack_status(&pk, &m->jobs[i]);
    return done(&out);
}

int sm_msg_encode_blob(const sm_msg_blob *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    /* "have" only when true: absent reads as false, so a HAS reply of
     * false and every request stay as short as they can. */
    msgpack_pack_map(&pk, !!m->hash + !!m->data + !!m->have);
    if (m->hash)
        kstr(&pk, "hash", m->hash);
    if (m->data)
        kbin(&pk, "data", m->data, m->len);
    if (m->have)
        kbool(&pk, "have", 1);
    return done(&out);
}

int sm_msg_encode_files(const sm_msg_files *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    /* One struct for the request and the reply: a FETCH leaves files NULL
     * and next 0 (a FILES reply always has files or next -1). */
    int reply = m->files != NULL || m->n > 0 || m->next != 0;
    size_t n = m->files ? m->n : 0;
    msgpack_pack_map(&pk, 1 + !!m->job + 2 * reply);
    if (m->job)
        kstr(&pk, "job", m->job);
    kint(&pk, "from", m->from);
    if (reply) {
        sm_mp_pack_str(&pk, "files");
        msgpack_pack_array(&pk, n);
        for (size_t i = 0; i < n; i++) {
            const sm_msg_file *f = &m->files[i];
            msgpack_pack_map(&pk, 1 + !!f->path);
            if (f->path)
                kstr(&pk, "path", f->path);
            kbin(&pk, "data", f->data, f->len);
        }
        kint(&pk, "next", m->next);
    }
    return done(&out);
}

int sm_msg_encode_error(const sm_msg_error *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    msgpack_pack_map(&pk, !!m->code + !!m->message + !!m->command);
    if (m->code)
        kstr(&pk, "code", m->code);
    if (m->message)
        kstr(&pk, "message", m->message);
    if (m->command)
        kstr(&pk, "command", m->command);
    return done(&out);
}

int sm_msg_encode_ready(const sm_msg_ready *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    msgpack_pack_map(&pk, 1 + !!m->name);
    kuint(&pk, "capacity", m->capacity);
    if (m->name)
        kstr(&pk, "name", m->name);
    return done(&out);
}

int sm_msg_encode_task(const sm_msg_task *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    int chunk = m->kind == SM_TASK_CHUNK;
    int scores = m->scores != NULL || m->kind == SM_TASK_FIT;
    int settings = m->settings != NULL && m->n_settings > 0;
    const char *kind = sm_task_kind_name(m->kind);
    msgpack_pack_map(&pk, 5 + !!m->job + !!m->model + !!m->config +
                              !!m->method + settings + !!m->target +
                              !!m->score + 2 * chunk + scores);
    kuint(&pk, "task", m->task);
    if (m->job)
        kstr(&pk, "job", m->job);
    kstr(&pk, "kind", kind);
    if (m->model)
        kstr(&pk, "model", m->model);
    if (m->config)
        kstr(&pk, "config", m->config);
    if (m->method)
        kstr(&pk, "method", m->method);
    if (settings) {
        sm_mp_pack_str(&pk, "settings");
        pack_strs(&pk, m->settings, m->n_settings);
    }
    kuint(&pk, "seed", m->seed);
    if (m->target)
        kstr(&pk, "target", m->target);
    if (m->score)
        kstr(&pk, "score", m->score);
    kbool(&pk, "metrics", m->metrics);
    sm_mp_pack_str(&pk, "images");
    pack_images(&pk, m->images, m->n_images);
    if (chunk) {
        kint(&pk, "part", m->part);
        kint(&pk, "parts", m->parts);
    }
    if (scores) {
        sm_mp_pack_str(&pk, "scores");
        sm_mp_pack_f64s(&pk, m->scores,
                        m->scores && m->n_scores > 0 ? (size_t)m->n_scores
                                                     : 0);
    }
    return done(&out);
}

static void pack_item(msgpack_packer *pk, const sm_msg_item *it)
{
    if (it->error) {
        msgpack_pack_map(pk, 1 + !!it->id);
        if (it->id)
            kstr(pk, "id", it->id);
        kstr(pk, "error", it->error);
        return;
    }
    int map = it->map != NULL;
    msgpack_pack_map(pk, 7 + !!it->id + map + !!it->params + !!it->extras +
                             2 * !!it->has_metrics);
    if (it->id)
        kstr(pk, "id", it->id);
    kint(pk, "predicted", it->predicted);
    kint(pk, "target", it->target);
    kfloat(pk, "score", it->score);
    kint(pk, "evals", it->evals);
    kfloat(pk, "seconds", it->seconds);
    kint(pk, "height", it->height);
    kint(pk, "width", it->width);
    if (map) {
        size_t n = it->height > 0 && it->width > 0
                       ? (size_t)it->height * (size_t)it->width
                       : 0;
        sm_mp_pack_str(pk, "map");
        sm_mp_pack_f32s(pk, it->map, n);
    }
    if (it->params)
        kstr(pk, "params", it->params);
    if (it->extras)
        kstr(pk, "extras", it->extras);
    if (it->has_metrics) {
        kfloat(pk, "deletion", it->deletion);
        kfloat(pk, "insertion", it->insertion);
    }
}

int sm_msg_encode_result(const sm_msg_result *m, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    int items = m->items != NULL;
    int scores = m->scores != NULL;
    int samples = scores || m->samples > 0; /* a chunk's result */
    msgpack_pack_map(&pk, 1 + !!m->error + items + scores + samples);
    kuint(&pk, "task", m->task);
    if (m->error)
        kstr(&pk, "error", m->error);
    if (items) {
        sm_mp_pack_str(&pk, "items");
        msgpack_pack_array(&pk, m->n_items);
        for (size_t i = 0; i < m->n_items; i++)
            pack_item(&pk, &m->items[i]);
    }
    if (scores) {
        sm_mp_pack_str(&pk, "scores");
        sm_mp_pack_f64s(&pk, m->scores,
                        m->n_scores > 0 ? (size_t)m->n_scores : 0);
    }
    if (samples)
        kint(&pk, "samples", m->samples);
    return done(&out);
}

int sm_msg_encode_job_id(const char *job, sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    msgpack_pack_map(&pk, 1);
    kstr(&pk, "job", nz(job));
    return done(&out);
}

int sm_msg_encode_empty(sm_msg_buf *b)
{
    sm_mp_out out;
    msgpack_packer pk;
    sm_mp_packer_init(&pk, &out, b);
    msgpack_pack_map(&pk, 0);
    return done(&out);
}

