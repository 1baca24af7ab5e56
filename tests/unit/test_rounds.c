/* Rounds (explainer.h): an adaptive method, defined here, explained whole
 * by run()'s generic loop and round by round as the pipeline does (each
 * chunk scored on rounds taken up from the encoded state, each step on
 * another): the same map, score, evals and record; bad states refused.
 *
 * The method halves: the candidates are a range of pixels, all at first;
 * each round scores the image with the first half hidden and with the
 * second, and keeps the half whose hiding lowers the target's logit more.
 * On a linear model where one pixel outweighs all the others together it
 * must end on that pixel, after log2(pixels) rounds. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "explain/gradient.h"
#include "explain/task.h"
#include "tdata.h"
#include "tmodel.h"
#include "util/rng.h"
#include "worker/compute.h"

typedef struct halving {
    int64_t lo, hi; /* candidate pixels [lo, hi) */
    int64_t evals;
} halving;

static void *halve_begin(const void *params, const sm_explain_ctx *ctx,
                         const sm_explain_image *im, sm_err *err)
{
    (void)params, (void)ctx, (void)err;
    halving *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    s->hi = im->h * im->w;
    return s;
}

static int64_t halve_propose(const void *params, const sm_explain_ctx *ctx,
                             const sm_explain_image *im, void *st,
                             sm_err *err)
{
    (void)params, (void)ctx, (void)im, (void)err;
    const halving *s = st;
    return s->hi - s->lo > 1 ? 2 : 0;
}

static int halve_score(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, const void *st,
                       int64_t first, int64_t count, double *y, sm_err *err)
{
    (void)params;
    const halving *s = st;
    int64_t hw = im->h * im->w, mid = (s->lo + s->hi) / 2;
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){count, im->c, im->h, im->w});
    int *target = malloc(sizeof(int) * (size_t)count);
    cr_assert(x && target);
    for (int64_t k = 0; k < count; k++) {
        float *d = x->data + k * im->c * hw;
        memcpy(d, im->x, sizeof(float) * (size_t)(im->c * hw));
        int64_t a = first + k == 0 ? s->lo : mid, b = first + k == 0 ? mid : s->hi;
        for (int64_t ch = 0; ch < im->c; ch++)
            for (int64_t q = a; q < b; q++)
                d[ch * hw + q] = 0;
        target[k] = im->target;
    }
    int rc = sm_explain_scores(ctx, x, target, y, err);
    sm_tensor_destroy(&x);
    free(target);
    return rc;
}

static int halve_update(const void *params, const sm_explain_ctx *ctx,
                        const sm_explain_image *im, void *st, const double *y,
                        int64_t n, sm_err *err)
{
    (void)params, (void)ctx, (void)im, (void)err;
    halving *s = st;
    int64_t mid = (s->lo + s->hi) / 2;
    if (y[0] <= y[1])
        s->hi = mid;
    else
        s->lo = mid;
    s->evals += n;
    return 0;
}

static int halve_finish(const void *params, const sm_explain_ctx *ctx,
                        const sm_explain_image *im, void *st,
                        sm_explain_out *out, sm_err *err)
{
    (void)params, (void)ctx;
    const halving *s = st;
    for (int64_t q = 0; q < im->h * im->w; q++)
        out->map[q] = q == s->lo;
    out->evals = (long)s->evals;
    const float row[2] = {(float)s->lo, (float)s->evals};
    if (sm_record_addf(&out->record, "pixel", "%lld", (long long)s->lo) ||
        sm_record_array_add(&out->record, "found", 1, (int64_t[]){2}, row))
        return sm_err_set(err, "out of memory");
    return 0;
}

static int halve_encode(const void *params, const void *st, sm_text *t,
                        sm_err *err)
{
    (void)params, (void)err;
    return sm_text_add(t, st, sizeof(halving));
}

static void *halve_decode(const void *params, const sm_explain_ctx *ctx,
                          const sm_explain_image *im, const uint8_t *b,
                          size_t len, sm_err *err)
{
    (void)params, (void)ctx;
    halving s;
    if (len != sizeof s)
        return sm_err_set(err, "state of %zu bytes", len), NULL;
    memcpy(&s, b, sizeof s);
    if (s.lo < 0 || s.lo >= s.hi || s.hi > im->h * im->w)
        return sm_err_set(err, "candidates [%lld, %lld) out of the image",
                          (long long)s.lo, (long long)s.hi), NULL;
    halving *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    *h = s;
    return h;
}

static const sm_explainer_class halving_class = {
    .name = "halving",
    .summary = "a test's adaptive method",
    .begin = halve_begin,
    .propose = halve_propose,
    .round_score = halve_score,
    .update = halve_update,
    .finish = halve_finish,
    .encode = halve_encode,
    .decode = halve_decode,
    .release = free,
};

#define HC 2
#define HH 4
#define HW 8
#define HP (HH * HW)

/* 3 classes over 2 x 4 x 8 inputs: class 1 weighs pixel `pixel` (both
 * channels) 100 and every other one 1, on images in [0.5, 1). */
static sm_model *dominant_model(int pixel)
{
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){3, HC * HP});
    for (int64_t i = 0; i < 3 * HC * HP; i++)
        w->data[i] = (float)sm_rng_uniform(5, (uint64_t)i);
    for (int64_t ch = 0; ch < HC; ch++)
        for (int64_t q = 0; q < HP; q++)
            w->data[1 * HC * HP + ch * HP + q] = q == pixel ? 100.0f : 1.0f;
    sm_model *m = tmodel_linear(w, NULL, HC, HH, HW);
    sm_tensor_destroy(&w);
    return m;
}

static sm_tensor *bright_images(int n)
{
    sm_tensor *x = tmodel_images(n, HC, HH, HW, 17);
    for (int64_t e = 0; e < sm_tensor_numel(x); e++)
        x->data[e] = 0.5f + 0.5f * x->data[e];
    return x;
}

Test(rounds, run_finds_the_dominant_pixel_and_equals_the_pipeline)
{
    const int pixel = 21;
    sm_model *m = dominant_model(pixel);
    sm_tensor *x = bright_images(2);
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new_class(&halving_class, &err);
    cr_assert_not_null(e, "%s", err.msg);
    cr_assert(sm_explainer_chunked(e));
    const int target[2] = {1, 1};
    const char *ids[2] = {"p", "q"};
    float maps[2][HP];
    sm_explain_out out[2] = {{.map = maps[0]}, {.map = maps[1]}};
    sm_explain_ctx ctx = {m, 0, 0, 0, 3, NULL, 0, NULL};
    sm_explain_batch b = {x, target, ids};
    cr_assert_eq(sm_explainer_run(e, &ctx, &b, out, &err), 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        for (int q = 0; q < HP; q++)
            cr_assert_eq(maps[i][q], q == pixel ? 1.0f : 0.0f, "pixel %d", q);
        cr_assert_eq(out[i].evals, 2 * 5, "5 rounds of 2 for 32 pixels");
        cr_assert_str_eq(sm_record_json(&out[i].record),
                         "{\"pixel\": 21, \"scale\": {\"colormap\": \"sequential\", "
                         "\"min\": 0, \"max\": 1}}");
        cr_assert_eq(out[i].record.n_arrays, 1);
    }

    /* As the pipeline: every chunk and step on rounds taken up from the
     * state's bytes, never on the object that proposed the round. */
    sm_explain_setup s = {.model = m, .seed = 3};
    sm_tensor xi = *x;
    xi.owns = 0;
    xi.shape[0] = 1;
    sm_explain_rounds *rd = sm_explain_rounds_open(&s, e, &xi, "p", 1, NULL,
                                                   0, &err);
    cr_assert_not_null(rd, "%s", err.msg);
    float map[HP];
    sm_explain_result res = {.map = map, .target = 1};
    int rounds = 0, rc = 1;
    while (rc == 1) {
        rounds++;
        cr_assert_eq(sm_explain_rounds_round(rd), rounds);
        sm_text st = {0};
        cr_assert_eq(sm_explain_rounds_encode(rd, &st, &err), 0);
        sm_explain_rounds_destroy(&rd);
        double y[2];
        for (int k = 1; k >= 0; k--) { /* the chunks in any order */
            sm_explain_rounds *ck = sm_explain_rounds_open(
                &s, e, &xi, "p", 1, (const uint8_t *)st.s, st.len, &err);
            cr_assert_not_null(ck, "%s", err.msg);
            cr_assert_eq(sm_explain_rounds_n(ck), 2);
            cr_assert_eq(sm_explain_rounds_score(ck, k, 1, y + k, &err), 0);
            sm_explain_rounds_destroy(&ck);
        }
        rd = sm_explain_rounds_open(&s, e, &xi, "p", 1, (const uint8_t *)st.s,
                                    st.len, &err);
        cr_assert_not_null(rd, "%s", err.msg);
        rc = sm_explain_step(&s, rd, &xi, y, 2, &res, &err);
        cr_assert_neq(rc, -1, "%s", err.msg);
        sm_text_free(&st);
    }
    cr_assert_eq(rounds, 5);
    cr_assert(memcmp(map, maps[0], sizeof map) == 0);
    cr_assert_eq(res.evals, out[0].evals);
    cr_assert_str_eq(sm_record_json(&res.record),
                     sm_record_json(&out[0].record));
    cr_assert_eq(res.record.n_arrays, 1);
    cr_assert(memcmp(res.record.arrays[0].data, out[0].record.arrays[0].data,
                     2 * sizeof(float)) == 0);
    /* finished: no more scores taken, and finishing again is refused */
    cr_assert_eq(sm_explain_rounds_n(rd), 0);
    cr_assert_eq(sm_explain_rounds_update(rd, (double[]){0, 0}, 2, &err), -1);
    cr_assert(tdata_has(err.msg, "halving: image 'p': 2 scores for a round "
                        "of 0"), "%s", err.msg);
    sm_explain_rounds_destroy(&rd);
    sm_explain_results_free(&res, 1);
    sm_explain_out_free(out, 2);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(rounds, bad_states_are_refused)
{
    sm_model *m = dominant_model(3);
    sm_tensor *x = bright_images(1);
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new_class(&halving_class, &err);
    sm_explain_setup s = {.model = m};
    sm_explain_rounds *rd = sm_explain_rounds_open(&s, e, x, "a", 1, NULL, 0,
                                                   &err);
    cr_assert_not_null(rd, "%s", err.msg);
    sm_text st = {0};
    cr_assert_eq(sm_explain_rounds_encode(rd, &st, &err), 0);
    sm_explain_rounds_destroy(&rd);
    const uint8_t *b = (const uint8_t *)st.s;
    /* shorter than the header; a header with round 0; the class's bytes
     * cut; candidates outside the image: each refused with the image */
    uint8_t bad[256];
    cr_assert_lt(st.len, sizeof bad);
    cr_assert_null(sm_explain_rounds_open(&s, e, x, "a", 1, b, 5, &err));
    cr_assert(tdata_has(err.msg, "halving: image 'a': state of 5 bytes"),
              "%s", err.msg);
    memcpy(bad, b, st.len);
    memset(bad, 0, 4);
    cr_assert_null(sm_explain_rounds_open(&s, e, x, "a", 1, bad, st.len, &err));
    cr_assert(tdata_has(err.msg, "round 0"), "%s", err.msg);
    cr_assert_null(sm_explain_rounds_open(&s, e, x, "a", 1, b, st.len - 1,
                                          &err));
    cr_assert(tdata_has(err.msg, "halving: state of"), "%s", err.msg);
    memcpy(bad, b, st.len);
    int64_t far = 1000;
    memcpy(bad + 12 + sizeof(int64_t), &far, sizeof far); /* hi */
    cr_assert_null(sm_explain_rounds_open(&s, e, x, "a", 1, bad, st.len, &err));
    cr_assert(tdata_has(err.msg, "out of the image"), "%s", err.msg);
    sm_text_free(&st);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* One TASK through a worker's runner (the model's bytes given), its
 * RESULT decoded into *r (doc to destroy). */
static void compute(sm_compute *c, const sm_msg_task *t, const void *model,
                    size_t len, sm_msg_doc **doc, sm_msg_result *r)
{
    sm_msg_buf task = {0}, res = {0};
    sm_err err = {0};
    char need[SM_HASH_HEX + 1];
    cr_assert_eq(sm_msg_encode_task(t, &task), 0);
    cr_assert_eq(sm_compute_run(c, task.data, task.len, model, len, &res,
                                need, &err),
                 SM_COMPUTE_DONE, "%s", err.msg);
    cr_assert_eq(sm_msg_decode_result(res.data, res.len, NULL, doc, r, &err),
                 0, "%s", err.msg);
    cr_assert_null(r->error, "%s", r->error);
    sm_msg_buf_free(&task);
    sm_msg_buf_free(&res);
}

/* A worker's runner taught the halving method (sm_compute_add_class)
 * carries its rounds as the broker drives them: chunk tasks of round 1
 * without a state, steps that answer the next round's state and count,
 * chunks carrying that state, and a last step whose item holds the map,
 * the record and its array: what run() gives on the same pixels. */
Test(rounds, a_worker_answers_steps_with_the_next_round)
{
    const int pixel = 13;
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){3, HP});
    for (int64_t i = 0; i < 3 * HP; i++)
        w->data[i] = i / HP == 1 ? (i % HP == pixel ? 100.0f : 1.0f)
                                 : (float)sm_rng_uniform(5, (uint64_t)i);
    size_t mlen;
    unsigned char *mbytes = tmodel_linear_bytes(w, NULL, 1, HH, HW, &mlen);
    char hash[SM_HASH_HEX + 1];
    sm_hash_hex(mbytes, mlen, hash);
    uint8_t px[HP];
    for (int q = 0; q < HP; q++)
        px[q] = (uint8_t)(128 + (q * 37) % 128);
    sm_msg_limits lim;
    sm_msg_limits_default(&lim);
    sm_err err = {0};
    sm_compute *c = sm_compute_new(1, 2, &lim, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(sm_compute_add_class(c, &halving_class), 0);
    sm_msg_image im = {.id = "p", .label_index = -1, .format = SM_IMAGE_U8,
                       .width = HW, .height = HH, .bands = 1, .data = px,
                       .len = HP};
    sm_msg_task t = {.task = 1, .job = "j", .model = hash,
                     .method = "halving", .target = "1", .score = "logit",
                     .images = &im, .n_images = 1, .parts = 2};
    uint8_t *state = NULL;
    size_t state_len = 0;
    int rounds = 0;
    sm_msg_doc *doc = NULL;
    sm_msg_result r;
    for (;;) {
        double y[2];
        int64_t n = 0;
        for (int k = 0; k < 2; k++) {
            t.kind = SM_TASK_CHUNK;
            t.part = k;
            t.state = state;
            t.state_len = state_len;
            compute(c, &t, mbytes, mlen, &doc, &r);
            cr_assert_eq(r.n_scores, 1, "round %d part %d", rounds + 1, k);
            y[k] = r.scores[0];
            n = r.samples;
            sm_msg_doc_destroy(&doc);
        }
        cr_assert_eq(n, 2);
        t.kind = SM_TASK_STEP;
        t.scores = y;
        t.n_scores = 2;
        compute(c, &t, mbytes, mlen, &doc, &r);
        rounds++;
        free(state);
        state = NULL;
        if (r.n_items)
            break;
        cr_assert_not_null(r.state, "round %d: neither an item nor a state",
                           rounds);
        cr_assert_eq(r.samples, 2);
        state = malloc(r.state_len);
        memcpy(state, r.state, r.state_len);
        state_len = r.state_len;
        sm_msg_doc_destroy(&doc);
    }
    cr_assert_eq(rounds, 5, "32 pixels: 5 rounds");
    const sm_msg_item *it = &r.items[0];
    cr_assert_null(it->error, "%s", it->error);
    cr_assert_str_eq(it->record, "{\"pixel\": 13, \"scale\": {\"colormap\": "
                                 "\"sequential\", \"min\": 0, \"max\": 1}}");
    cr_assert_eq(it->n_arrays, 1);
    cr_assert_str_eq(it->arrays[0].name, "found");
    cr_assert(it->arrays[0].ndim == 1 && it->arrays[0].shape[0] == 2);

    /* run() on the pixels the worker decoded (u8 / 255) */
    sm_model *m = sm_model_load_buffer(mbytes, mlen, "m", &err);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, 1, HH, HW});
    for (int q = 0; q < HP; q++)
        x->data[q] = (float)px[q] / 255.0f;
    sm_explainer *e = sm_explainer_new_class(&halving_class, &err);
    float map[HP];
    sm_explain_out out = {.map = map};
    sm_explain_ctx ctx = {m, 0, 0, 0, 0, NULL, 0, NULL};
    const int target = 1;
    const char *id = "p";
    sm_explain_batch b = {x, &target, &id};
    cr_assert_eq(sm_explainer_run(e, &ctx, &b, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(it->height, HH);
    cr_assert(memcmp(it->map, map, sizeof map) == 0,
              "the worker's map differs from run()'s");
    cr_assert_str_eq(it->record, sm_record_json(&out.record));
    cr_assert(memcmp(it->arrays[0].data, out.record.arrays[0].data,
                     2 * sizeof(float)) == 0);
    sm_explain_out_free(&out, 1);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_msg_doc_destroy(&doc);
    sm_compute_destroy(&c);
    free(mbytes);
    sm_tensor_destroy(&w);
}

/* A method with no_map: only a record. */
static int record_only_run(const void *params, const sm_explain_ctx *ctx,
                           const sm_explain_batch *b, sm_explain_out *out,
                           sm_err *err)
{
    (void)params, (void)ctx, (void)err;
    for (int64_t i = 0; i < b->x->shape[0]; i++) {
        cr_assert_null(out[i].map, "a no_map method gets no map buffer");
        sm_record_addf(&out[i].record, "target", "%d", b->target[i]);
    }
    return 0;
}

/* The worker's item of a no_map method: its record, no map, and no
 * deletion or insertion curve though metrics are asked for. */
Test(rounds, a_method_without_a_map_sends_its_record_alone)
{
    static const sm_explainer_class record_only = {
        .name = "record_only", .no_map = 1, .run = record_only_run};
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){3, HP});
    for (int64_t i = 0; i < 3 * HP; i++)
        w->data[i] = (float)sm_rng_uniform(6, (uint64_t)i);
    size_t mlen;
    unsigned char *mbytes = tmodel_linear_bytes(w, NULL, 1, HH, HW, &mlen);
    char hash[SM_HASH_HEX + 1];
    sm_hash_hex(mbytes, mlen, hash);
    uint8_t px[HP] = {0};
    sm_msg_limits lim;
    sm_msg_limits_default(&lim);
    sm_err err = {0};
    sm_compute *c = sm_compute_new(1, 2, &lim, &err);
    cr_assert_eq(sm_compute_add_class(c, &record_only), 0);
    sm_msg_image im = {.id = "q", .label_index = -1, .format = SM_IMAGE_U8,
                       .width = HW, .height = HH, .bands = 1, .data = px,
                       .len = HP};
    sm_msg_task t = {.task = 2, .job = "j", .kind = SM_TASK_IMAGES,
                     .model = hash, .method = "record_only", .target = "2",
                     .score = "logit", .metrics = 1, .images = &im,
                     .n_images = 1};
    sm_msg_doc *doc = NULL;
    sm_msg_result r;
    compute(c, &t, mbytes, mlen, &doc, &r);
    cr_assert_eq(r.n_items, 1);
    const sm_msg_item *it = &r.items[0];
    cr_assert_null(it->error, "%s", it->error);
    cr_assert_null(it->map);
    cr_assert_eq(it->height, 0);
    cr_assert_not(it->has_metrics);
    cr_assert_str_eq(it->record, "{\"target\": 2}");
    sm_msg_doc_destroy(&doc);
    sm_compute_destroy(&c);
    free(mbytes);
    sm_tensor_destroy(&w);
}

/* Model bytes that hash to none of the task's models (a broker's corrupt
 * blob) fail the task with a message, rather than asking for the model
 * again and again. */
Test(rounds, bytes_of_another_model_fail_the_task)
{
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){3, HP});
    for (int64_t i = 0; i < 3 * HP; i++)
        w->data[i] = (float)sm_rng_uniform(7, (uint64_t)i);
    size_t mlen;
    unsigned char *mbytes = tmodel_linear_bytes(w, NULL, 1, HH, HW, &mlen);
    char other[SM_HASH_HEX + 1], need[SM_HASH_HEX + 1];
    sm_hash_hex("not these bytes", 15, other);
    uint8_t px[HP] = {0};
    sm_msg_limits lim;
    sm_msg_limits_default(&lim);
    sm_err err = {0};
    sm_compute *c = sm_compute_new(1, 2, &lim, &err);
    sm_msg_image im = {.id = "q", .label_index = -1, .format = SM_IMAGE_U8,
                       .width = HW, .height = HH, .bands = 1, .data = px,
                       .len = HP};
    sm_msg_task t = {.task = 3, .job = "j", .kind = SM_TASK_IMAGES,
                     .model = other, .method = "sal", .target = "0",
                     .score = "logit", .images = &im, .n_images = 1};
    sm_msg_buf task = {0}, res = {0};
    cr_assert_eq(sm_msg_encode_task(&t, &task), 0);
    cr_assert_eq(sm_compute_run(c, task.data, task.len, mbytes, mlen, &res,
                                need, &err),
                 SM_COMPUTE_DONE, "%s", err.msg);
    sm_msg_doc *doc = NULL;
    sm_msg_result r;
    cr_assert_eq(sm_msg_decode_result(res.data, res.len, NULL, &doc, &r, &err),
                 0, "%s", err.msg);
    cr_assert_not_null(r.error);
    cr_assert(tdata_has(r.error, "none of the task's models"), "%s", r.error);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&task);
    sm_msg_buf_free(&res);
    sm_compute_destroy(&c);
    free(mbytes);
    sm_tensor_destroy(&w);
}
