/* The wire codec (schemas/): every message through encode and decode, the
 * raw-byte check refusing what msgpack-c would trust (truncations, huge
 * counts, depth bombs, 0xc1, trailing bytes), field errors with their exact
 * text, content hashes, frames over inproc sockets, and the fuzzer's corpus
 * through every decoder. Bodies that our encoders cannot produce are made by
 * unpacking a good one with msgpack-c, editing the objects and packing them
 * again, or byte by byte. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "schemas/mp.h"
#include "schemas/msg.h"
#include "util/file.h"

TestSuite(msg);

#define TM_HASH "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"

static sm_msg_limits tm_limits(void)
{
    sm_msg_limits l;
    sm_msg_limits_default(&l);
    return l;
}

/* ---- sample messages ----------------------------------------------------- */

static const uint8_t tm_png[] = {0x89, 'P', 'N', 'G', 1, 2, 3};
static const uint8_t tm_px[2 * 3 * 1] = {0, 64, 128, 192, 255, 7};
static const char *tm_methods[] = {"sal", "lime"};
static const char *tm_settings[] = {"lime.samples=500", "sal.abs=true",
                                    "lime.kernel.width=0.25"};

static sm_msg_image tm_images[3] = {
    {.id = "a/0.png", .label = "3", .label_index = 3, .format = SM_IMAGE_FILE,
     .data = tm_png, .len = sizeof tm_png},
    {.id = "b.raw", .label = NULL, .label_index = -1, .format = SM_IMAGE_U8,
     .width = 3, .height = 2, .bands = 1, .data = tm_px, .len = sizeof tm_px},
    {.id = "c", .label = "seven", .label_index = 7, .format = SM_IMAGE_FILE,
     .data = tm_png, .len = 2},
};

#define TM_HASH2 "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"

static const char *tm_model_names[] = {"aae", "vae_2"};
static const char *tm_model_hashes[] = {TM_HASH, TM_HASH2};
static const uint8_t tm_state[5] = {1, 0, 255, 7, 9};

static sm_msg_task tm_task(sm_task_kind kind)
{
    static const char *set[] = {"samples=500", "seed=1"};
    static const double scores[3] = {0.5, -1.25, 1e300};
    sm_msg_task t = {
        .task = 0xfedcba9876543210ull, .job = "j-1", .kind = kind,
        .model = TM_HASH, .config = "input: x\n", .method = "lime",
        .settings = set, .n_settings = 2, .seed = 42, .target = "label",
        .score = "prob", .metrics = 0, .faithfulness_subsets = 2,
        .sensitivity_samples = 10000, .sensitivity_radius = 1,
        .images = tm_images, .n_images = 3, .model_names = tm_model_names, .model_hashes = tm_model_hashes,
        .n_models = 2,
    };
    if (kind != SM_TASK_IMAGES)
        t.n_images = 1, t.state = tm_state, t.state_len = sizeof tm_state;
    if (kind == SM_TASK_CHUNK)
        t.part = 2, t.parts = 5;
    if (kind == SM_TASK_STEP)
        t.scores = scores, t.n_scores = 3;
    return t;
}

static const float tm_map[6] = {0.f, -1.5f, 3.25f, 1e-30f, 7.f, -0.f};
static const float tm_latent[2 * 3 * 1] = {1.f, 2.f, -3.f, 0.5f, 1e9f, -0.f};

static sm_msg_array tm_arrays[2] = {
    {.name = "latent", .ndim = 3, .shape = {2, 3, 1}, .data = tm_latent},
    {.name = "z_0", .ndim = 1, .shape = {4}, .data = tm_map},
};

static sm_msg_result tm_result(void)
{
    static sm_msg_item items[3] = {
        {.id = "a/0.png", .predicted = 3, .target = 3, .score = 0.75,
         .evals = 1000, .seconds = 0.125, .height = 2, .width = 3,
         .map = tm_map, .params = "{\"samples\":500}", .record = "{}",
         .arrays = tm_arrays, .n_arrays = 2, .has_metrics = 1,
         .deletion = 0.25, .insertion = 0.5, .faithfulness = -0.75,
         .sparseness = 0.125, .complexity = NAN, .sensitivity = 1e-9},
        {.id = "c", .error = "c: cannot decode"},
        /* a method that yields no pixel map: a record and an array only */
        {.id = "d", .predicted = 1, .target = 2, .score = -0.5,
         .record = "{\"rule\": \"x > 3\"}", .arrays = tm_arrays + 1,
         .n_arrays = 1},
    };
    return (sm_msg_result){.task = 9, .items = items, .n_items = 3};
}

static sm_msg_job tm_job(void)
{
    return (sm_msg_job){
        .name = "nightly", .model = TM_HASH, .model_name = "models/m.onnx",
        .config = "k: v\n",
        .images = tm_images, .n_images = 3, .methods = tm_methods,
        .n_methods = 2, .settings = tm_settings, .n_settings = 3,
        .seed = UINT64_MAX, .out = "out/x", .limit = 100, .metrics = 0,
        .png = 0, .scale = "job", .faithfulness_subsets = 65536, .faithfulness_size = 14,
        .sensitivity_samples = 3, .sensitivity_radius = 0.05, .target = "5", .score = "prob", .batch = 16,
        .model_names = tm_model_names, .model_hashes = tm_model_hashes,
        .n_models = 2,
    };
}

/* The models of a decoded job or task are tm_model_names / hashes. */
static void tm_same_models(const char **names, const char **hashes, size_t n)
{
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(names[i], tm_model_names[i]);
        cr_assert_str_eq(hashes[i], tm_model_hashes[i]);
    }
}

/* ---- round trips ---------------------------------------------------------- */

static void tm_same_image(const sm_msg_image *a, const sm_msg_image *b,
                          int in_task)
{
    cr_assert_str_eq(a->id, b->id);
    if (b->label)
        cr_assert_str_eq(a->label, b->label);
    else
        cr_assert_null(a->label);
    cr_assert_eq(a->label_index, in_task ? b->label_index : -1);
    cr_assert_eq(a->format, b->format);
    cr_assert_eq(a->len, b->len);
    cr_assert_eq(memcmp(a->data, b->data, b->len), 0);
    if (b->format == SM_IMAGE_U8) {
        cr_assert_eq(a->width, b->width);
        cr_assert_eq(a->height, b->height);
        cr_assert_eq(a->bands, b->bands);
    }
}

Test(msg, job_round_trip)
{
    sm_msg_job in = tm_job(), out;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    sm_msg_limits l = tm_limits();
    cr_assert_eq(sm_msg_encode_job(&in, &b), 0);
    cr_assert_eq(sm_msg_decode_job(b.data, b.len, &l, &doc, &out, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(out.name, "nightly");
    cr_assert_str_eq(out.model, TM_HASH);
    cr_assert_str_eq(out.config, "k: v\n");
    cr_assert_str_eq(out.model_name, "models/m.onnx");
    cr_assert_null(out.dataset);
    cr_assert_eq(out.n_images, 3);
    for (int i = 0; i < 3; i++)
        tm_same_image(&out.images[i], &tm_images[i], 0);
    cr_assert_eq(out.n_methods, 2);
    cr_assert_str_eq(out.methods[0], "sal");
    cr_assert_str_eq(out.methods[1], "lime");
    /* grouped by method in order of first appearance */
    cr_assert_eq(out.n_settings, 3);
    cr_assert_str_eq(out.settings[0], "lime.samples=500");
    cr_assert_str_eq(out.settings[1], "lime.kernel.width=0.25");
    cr_assert_str_eq(out.settings[2], "sal.abs=true");
    cr_assert_eq(out.seed, UINT64_MAX);
    cr_assert_str_eq(out.out, "out/x");
    cr_assert_eq(out.limit, 100);
    cr_assert_eq(out.metrics, 0);
    cr_assert_eq(out.png, 0);
    cr_assert_str_eq(out.scale, "job");
    cr_assert_eq(out.faithfulness_subsets, 65536);
    cr_assert_eq(out.faithfulness_size, 14);
    cr_assert_eq(out.sensitivity_samples, 3);
    cr_assert_eq(out.sensitivity_radius, 0.05);
    cr_assert_str_eq(out.target, "5");
    cr_assert_str_eq(out.score, "prob");
    cr_assert_eq(out.batch, 16);
    tm_same_models(out.model_names, out.model_hashes, out.n_models);
    sm_msg_doc_destroy(&doc);
    cr_assert_null(doc);
    sm_msg_buf_free(&b);
}

Test(msg, job_defaults_and_dataset)
{
    const char *methods[] = {"grad"};
    /* an images pointer with no images beside a dataset is no images (the
     * client leaves it so) */
    sm_msg_job in = {.model = TM_HASH, .dataset = "data/mnist/test",
                     .images = tm_images, .n_images = 0,
                     .methods = methods, .n_methods = 1, .out = "o",
                     .metrics = 1, .png = 1};
    sm_msg_job out;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_job(&in, &b), 0);
    cr_assert_eq(sm_msg_decode_job(b.data, b.len, NULL, &doc, &out, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(out.dataset, "data/mnist/test");
    cr_assert_eq(out.n_images, 0);
    cr_assert_eq(out.n_settings, 0);
    cr_assert_eq(out.seed, 0);
    cr_assert_eq(out.limit, 0);
    cr_assert_eq(out.metrics, 1);
    cr_assert_eq(out.png, 1);
    cr_assert_str_eq(out.scale, "map");
    /* the metric parameters: 0, the defaults, and left out */
    cr_assert_eq(out.faithfulness_subsets, 0);
    cr_assert_eq(out.faithfulness_size, 0);
    cr_assert_eq(out.sensitivity_samples, 0);
    cr_assert_eq(out.sensitivity_radius, 0);
    for (size_t i = 0; i + 8 <= b.len; i++)
        cr_assert(memcmp(b.data + i, "sensitiv", 8) &&
                  memcmp(b.data + i, "faithful", 8), "a default was packed");
    cr_assert_str_eq(out.target, "predicted");
    cr_assert_str_eq(out.score, "logit");
    cr_assert_eq(out.batch, 64);
    cr_assert_null(out.name);
    cr_assert_null(out.model_name);
    cr_assert_null(out.config);
    cr_assert_null(out.model_names);
    cr_assert_eq(out.n_models, 0);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

static sm_msg_status tm_status(const char *job, const char *state)
{
    return (sm_msg_status){.job = job, .name = "n", .state = state,
                           .out = "out/j", .error = NULL, .images = 200,
                           .maps_total = 400, .maps_done = 123,
                           .maps_failed = 2, .maps_found = 3, .seconds = 12.5, .rate = 9.84};
}

static void tm_same_status(const sm_msg_status *a, const sm_msg_status *b)
{
    cr_assert_str_eq(a->job, b->job);
    cr_assert_str_eq(a->state, b->state);
    cr_assert_str_eq(a->out, b->out);
    cr_assert_eq(!a->name, !b->name);
    cr_assert_eq(!a->error, !b->error);
    if (b->error)
        cr_assert_str_eq(a->error, b->error);
    cr_assert_eq(a->images, b->images);
    cr_assert_eq(a->maps_total, b->maps_total);
    cr_assert_eq(a->maps_done, b->maps_done);
    cr_assert_eq(a->maps_failed, b->maps_failed);
    cr_assert_eq(a->maps_found, b->maps_found);
    cr_assert_eq(a->seconds, b->seconds);
    cr_assert_eq(a->rate, b->rate);
}

Test(msg, status_and_list_round_trip)
{
    sm_msg_status st = tm_status("j-1", "running"), got;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_status(&st, &b), 0);
    cr_assert_eq(sm_msg_decode_status(b.data, b.len, NULL, &doc, &got, &err),
                 0, "%s", err.msg);
    tm_same_status(&got, &st);
    sm_msg_doc_destroy(&doc);

    sm_msg_status jobs[3] = {tm_status("a", "queued"), tm_status("b", "done"),
                             tm_status("c", "failed")};
    jobs[2].error = "model did not load";
    jobs[1].name = NULL;
    sm_msg_list list = {.jobs = jobs, .n = 3}, gl;
    cr_assert_eq(sm_msg_encode_list(&list, &b), 0);
    cr_assert_eq(sm_msg_decode_list(b.data, b.len, NULL, &doc, &gl, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(gl.n, 3);
    for (int i = 0; i < 3; i++)
        tm_same_status(&gl.jobs[i], &jobs[i]);
    sm_msg_doc_destroy(&doc);

    sm_msg_list empty = {0};
    cr_assert_eq(sm_msg_encode_list(&empty, &b), 0);
    cr_assert_eq(sm_msg_decode_list(b.data, b.len, NULL, &doc, &gl, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(gl.n, 0);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

Test(msg, blob_round_trip)
{
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_msg_blob got;
    sm_err err = {0};
    /* HAS request, HAS reply (true, false), PUT, empty PUT */
    sm_msg_blob has = {.hash = TM_HASH};
    cr_assert_eq(sm_msg_encode_blob(&has, &b), 0);
    cr_assert_eq(sm_msg_decode_blob(b.data, b.len, NULL, &doc, &got, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(got.hash, TM_HASH);
    cr_assert_null(got.data);
    cr_assert_eq(got.have, 0);
    sm_msg_doc_destroy(&doc);

    has.have = 1;
    cr_assert_eq(sm_msg_encode_blob(&has, &b), 0);
    cr_assert_eq(sm_msg_decode_blob(b.data, b.len, NULL, &doc, &got, &err), 0);
    cr_assert_eq(got.have, 1);
    sm_msg_doc_destroy(&doc);

    uint8_t data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (uint8_t)(i * 7);
    sm_msg_blob put = {.hash = TM_HASH, .data = data, .len = sizeof data};
    cr_assert_eq(sm_msg_encode_blob(&put, &b), 0);
    cr_assert_eq(sm_msg_decode_blob(b.data, b.len, NULL, &doc, &got, &err), 0);
    cr_assert_eq(got.len, 1000);
    cr_assert_eq(memcmp(got.data, data, 1000), 0);
    /* copied out of the body: clobbering it changes nothing */
    memset(b.data, 0, b.len);
    cr_assert_eq(got.data[999], data[999]);
    cr_assert_str_eq(got.hash, TM_HASH);
    sm_msg_doc_destroy(&doc);

    put.len = 0;
    cr_assert_eq(sm_msg_encode_blob(&put, &b), 0);
    cr_assert_eq(sm_msg_decode_blob(b.data, b.len, NULL, &doc, &got, &err), 0);
    cr_assert_not_null(got.data);
    cr_assert_eq(got.len, 0);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

Test(msg, files_round_trip)
{
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_msg_files got;
    sm_err err = {0};
    sm_msg_files fetch = {.job = "j-1", .from = 7};
    cr_assert_eq(sm_msg_encode_files(&fetch, &b), 0);
    cr_assert_eq(sm_msg_decode_files(b.data, b.len, NULL, &doc, &got, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(got.job, "j-1");
    cr_assert_eq(got.from, 7);
    cr_assert_eq(got.n, 0);
    sm_msg_doc_destroy(&doc);

    sm_msg_file files[2] = {
        {.path = "index.csv", .data = (const uint8_t *)"id\n", .len = 3},
        {.path = "maps/a/0.png/sal.npy", .data = tm_png, .len = sizeof tm_png},
    };
    sm_msg_files reply = {.job = "j-1", .from = 0, .files = files, .n = 2,
                          .next = 2};
    cr_assert_eq(sm_msg_encode_files(&reply, &b), 0);
    cr_assert_eq(sm_msg_decode_files(b.data, b.len, NULL, &doc, &got, &err),
                 0, "%s", err.msg);
    cr_assert_eq(got.n, 2);
    cr_assert_eq(got.next, 2);
    cr_assert_str_eq(got.files[1].path, "maps/a/0.png/sal.npy");
    cr_assert_eq(got.files[1].len, sizeof tm_png);
    cr_assert_eq(memcmp(got.files[1].data, tm_png, sizeof tm_png), 0);
    sm_msg_doc_destroy(&doc);

    sm_msg_files last = {.job = "j-1", .from = 2, .next = -1};
    cr_assert_eq(sm_msg_encode_files(&last, &b), 0);
    cr_assert_eq(sm_msg_decode_files(b.data, b.len, NULL, &doc, &got, &err),
                 0, "%s", err.msg);
    cr_assert_eq(got.n, 0);
    cr_assert_eq(got.next, -1);
    cr_assert_null(got.path);
    sm_msg_doc_destroy(&doc);

    /* one file by name; a path that climbs out does not decode */
    sm_msg_files one = {.job = "j-1", .path = "maps/a/7/lime.png"};
    cr_assert_eq(sm_msg_encode_files(&one, &b), 0);
    cr_assert_eq(sm_msg_decode_files(b.data, b.len, NULL, &doc, &got, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(got.path, "maps/a/7/lime.png");
    sm_msg_doc_destroy(&doc);
    sm_msg_files out = {.job = "j-1", .path = "maps/../../etc/passwd"};
    cr_assert_eq(sm_msg_encode_files(&out, &b), 0);
    cr_assert_eq(sm_msg_decode_files(b.data, b.len, NULL, &doc, &got, &err), -1);
    cr_assert(strstr(err.msg, "path"), "%s", err.msg);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

Test(msg, workers_round_trip)
{
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_msg_workers got;
    sm_err err = {0};
    sm_msg_lease leases[2] = {
        {"j-1", "lime", "chunk", "0/0_0004", 1, 2, 0.5},
        {"j-2", "sal", "images", "a/b", 64, 0, 1.25},
    };
    sm_msg_worker workers[2] = {
        {"w1", 2, 2, 17, 0.25, 30.0, leases, 2},
        {"w2", 1, 0, 3, 1.5, 2.0, NULL, 0},
    };
    sm_msg_fault faults[2] = {{1.7e9, "j-1", "0/0_0004: lime: out of memory"},
                              {1.7e9 + 1, NULL, "worker w3 silent"}};
    sm_msg_workers m = {workers, 2, faults, 2};
    cr_assert_eq(sm_msg_encode_workers(&m, &b), 0);
    cr_assert_eq(sm_msg_decode_workers(b.data, b.len, NULL, &doc, &got, &err),
                 0, "%s", err.msg);
    cr_assert_eq(got.n, 2);
    cr_assert_str_eq(got.workers[0].name, "w1");
    cr_assert_eq(got.workers[0].capacity, 2);
    cr_assert_eq(got.workers[0].served, 17);
    cr_assert_eq(got.workers[0].heard, 0.25);
    cr_assert_eq(got.workers[0].n_tasks, 2);
    cr_assert_str_eq(got.workers[0].tasks[1].kind, "images");
    cr_assert_eq(got.workers[0].tasks[1].images, 64);
    cr_assert_eq(got.workers[0].tasks[0].failures, 2);
    cr_assert_str_eq(got.workers[0].tasks[0].first, "0/0_0004");
    cr_assert_eq(got.workers[1].n_tasks, 0);
    cr_assert_eq(got.n_faults, 2);
    cr_assert_null(got.faults[1].job);
    cr_assert_str_eq(got.faults[0].message, "0/0_0004: lime: out of memory");
    cr_assert_eq(got.faults[1].at, 1.7e9 + 1);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

Test(msg, error_ready_job_id_empty_round_trip)
{
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    sm_msg_error e = {.code = "need_blob", .message = TM_HASH,
                      .command = "SUBMIT"}, ge;
    cr_assert_eq(sm_msg_encode_error(&e, &b), 0);
    cr_assert_eq(sm_msg_decode_error(b.data, b.len, NULL, &doc, &ge, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(ge.code, "need_blob");
    cr_assert_str_eq(ge.message, TM_HASH);
    cr_assert_str_eq(ge.command, "SUBMIT");
    sm_msg_doc_destroy(&doc);

    sm_msg_ready r = {.capacity = 4, .name = "w1"}, gr;
    cr_assert_eq(sm_msg_encode_ready(&r, &b), 0);
    cr_assert_eq(sm_msg_decode_ready(b.data, b.len, NULL, &doc, &gr, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(gr.capacity, 4);
    cr_assert_str_eq(gr.name, "w1");
    sm_msg_doc_destroy(&doc);

    const char *job;
    cr_assert_eq(sm_msg_encode_job_id("j-42", &b), 0);
    cr_assert_eq(sm_msg_decode_job_id(b.data, b.len, NULL, &doc, &job, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(job, "j-42");
    sm_msg_doc_destroy(&doc);

    cr_assert_eq(sm_msg_encode_empty(&b), 0);
    cr_assert_eq(b.len, 1);
    cr_assert_eq(b.data[0], 0x80);
    cr_assert_eq(sm_msg_decode_empty(b.data, b.len, NULL, &err), 0);
    /* any map will do, unknown fields and all */
    cr_assert_eq(sm_msg_decode_empty("\x81\xa1x\x01", 4, NULL, &err), 0);
    sm_msg_buf_free(&b);
}

static void tm_task_round_trip(sm_task_kind kind)
{
    sm_msg_task in = tm_task(kind), out;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_task(&in, &b), 0);
    cr_assert_eq(sm_msg_decode_task(b.data, b.len, NULL, &doc, &out, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(out.task, in.task);
    cr_assert_str_eq(out.job, "j-1");
    cr_assert_eq(out.kind, kind);
    cr_assert_str_eq(out.model, TM_HASH);
    cr_assert_str_eq(out.config, in.config);
    cr_assert_str_eq(out.method, "lime");
    cr_assert_eq(out.n_settings, 2);
    cr_assert_str_eq(out.settings[1], "seed=1");
    cr_assert_eq(out.seed, 42);
    cr_assert_str_eq(out.target, "label");
    cr_assert_str_eq(out.score, "prob");
    cr_assert_eq(out.metrics, 0);
    cr_assert_eq(out.faithfulness_subsets, 2);
    cr_assert_eq(out.faithfulness_size, 0);
    cr_assert_eq(out.sensitivity_samples, 10000);
    cr_assert_eq(out.sensitivity_radius, 1);
    cr_assert_eq(out.n_images, in.n_images);
    for (size_t i = 0; i < in.n_images; i++)
        tm_same_image(&out.images[i], &in.images[i], 1);
    if (kind == SM_TASK_CHUNK) {
        cr_assert_eq(out.part, 2);
        cr_assert_eq(out.parts, 5);
    }
    if (kind == SM_TASK_STEP) {
        cr_assert_eq(out.n_scores, 3);
        cr_assert_eq(((uintptr_t)out.scores) % _Alignof(double), 0);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(out.scores[i], in.scores[i]);
    } else {
        cr_assert_null(out.scores);
    }
    if (kind == SM_TASK_IMAGES) {
        cr_assert_null(out.state);
    } else {
        cr_assert_eq(out.state_len, sizeof tm_state);
        cr_assert_eq(memcmp(out.state, tm_state, sizeof tm_state), 0);
    }
    tm_same_models(out.model_names, out.model_hashes, out.n_models);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

Test(msg, task_round_trip)
{
    tm_task_round_trip(SM_TASK_IMAGES);
    tm_task_round_trip(SM_TASK_CHUNK);
    tm_task_round_trip(SM_TASK_STEP);
}

Test(msg, result_round_trip)
{
    sm_msg_result in = tm_result(), out;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_result(&in, &b), 0);
    cr_assert_eq(sm_msg_decode_result(b.data, b.len, NULL, &doc, &out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(out.task, 9);
    cr_assert_null(out.error);
    cr_assert_eq(out.n_items, 3);
    const sm_msg_item *a = &out.items[0], *e = &in.items[0];
    cr_assert_str_eq(a->id, e->id);
    cr_assert_null(a->error);
    cr_assert_eq(a->predicted, 3);
    cr_assert_eq(a->target, 3);
    cr_assert_eq(a->score, 0.75);
    cr_assert_eq(a->evals, 1000);
    cr_assert_eq(a->seconds, 0.125);
    cr_assert_eq(a->height, 2);
    cr_assert_eq(a->width, 3);
    cr_assert_eq(((uintptr_t)a->map) % _Alignof(float), 0);
    cr_assert_eq(memcmp(a->map, tm_map, sizeof tm_map), 0); /* -0 too */
    cr_assert_str_eq(a->params, e->params);
    cr_assert_str_eq(a->record, "{}");
    cr_assert_eq(a->has_metrics, 1);
    cr_assert_eq(a->deletion, 0.25);
    cr_assert_eq(a->insertion, 0.5);
    cr_assert_eq(a->faithfulness, -0.75);
    cr_assert_eq(a->sparseness, 0.125);
    cr_assert(isnan(a->complexity), "undefined travels as NaN");
    cr_assert_eq(a->sensitivity, 1e-9);
    cr_assert_str_eq(out.items[1].id, "c");
    cr_assert_str_eq(out.items[1].error, "c: cannot decode");
    cr_assert_null(out.items[1].map);
    cr_assert_null(out.items[1].arrays);
    cr_assert_null(out.scores);
    cr_assert_null(out.state);
    /* the arrays, copied aligned */
    cr_assert_eq(a->n_arrays, 2);
    for (size_t i = 0; i < 2; i++) {
        const sm_msg_array *x = &a->arrays[i], *w = &tm_arrays[i];
        cr_assert_str_eq(x->name, w->name);
        cr_assert_eq(x->ndim, w->ndim);
        size_t n = 1;
        for (int d = 0; d < w->ndim; d++) {
            cr_assert_eq(x->shape[d], w->shape[d]);
            n *= (size_t)w->shape[d];
        }
        cr_assert_eq(((uintptr_t)x->data) % _Alignof(float), 0);
        cr_assert_eq(memcmp(x->data, w->data, n * sizeof(float)), 0);
    }
    /* no map: height and width 0 */
    const sm_msg_item *nm = &out.items[2];
    cr_assert_null(nm->map);
    cr_assert_eq(nm->height, 0);
    cr_assert_eq(nm->width, 0);
    cr_assert_str_eq(nm->record, "{\"rule\": \"x > 3\"}");
    cr_assert_eq(nm->n_arrays, 1);
    cr_assert_str_eq(nm->arrays[0].name, "z_0");
    cr_assert_eq(nm->arrays[0].shape[0], 4);
    cr_assert_eq(nm->has_metrics, 0);
    cr_assert_eq(nm->target, 2);
    sm_msg_doc_destroy(&doc);

    /* a chunk's scores, a whole task failing */
    double y[4] = {1, 2, -3, NAN};
    sm_msg_result chunk = {.task = 10, .scores = y, .n_scores = 4,
                           .samples = 1000};
    cr_assert_eq(sm_msg_encode_result(&chunk, &b), 0);
    cr_assert_eq(sm_msg_decode_result(b.data, b.len, NULL, &doc, &out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(out.n_scores, 4);
    cr_assert_eq(out.samples, 1000);
    cr_assert_eq(out.scores[2], -3);
    cr_assert(isnan(out.scores[3]));
    cr_assert_eq(out.n_items, 0);
    sm_msg_doc_destroy(&doc);

    sm_msg_result failed = {.task = 11, .error = "model did not load"};
    cr_assert_eq(sm_msg_encode_result(&failed, &b), 0);
    cr_assert_eq(sm_msg_decode_result(b.data, b.len, NULL, &doc, &out, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(out.error, "model did not load");
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

/* A step task's result that is not finished: the image's next state and
 * the sample count of its next round, no items. */
Test(msg, step_result_round_trip)
{
    sm_msg_result in = {.task = 12, .state = tm_state,
                        .state_len = sizeof tm_state, .samples = 250}, out;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_result(&in, &b), 0);
    cr_assert_eq(sm_msg_decode_result(b.data, b.len, NULL, &doc, &out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(out.task, 12);
    cr_assert_eq(out.samples, 250);
    cr_assert_eq(out.state_len, sizeof tm_state);
    cr_assert_eq(memcmp(out.state, tm_state, sizeof tm_state), 0);
    cr_assert_eq(out.n_items, 0);
    cr_assert_null(out.items);
    cr_assert_null(out.scores);
    /* copied out of the body */
    memset(b.data, 0, b.len);
    cr_assert_eq(out.state[2], 255);
    sm_msg_doc_destroy(&doc);

    /* an empty state is a state (present, 0 bytes), not its absence */
    in.state_len = 0;
    in.samples = 0;
    cr_assert_eq(sm_msg_encode_result(&in, &b), 0);
    cr_assert_eq(sm_msg_decode_result(b.data, b.len, NULL, &doc, &out, &err),
                 0, "%s", err.msg);
    cr_assert_not_null(out.state);
    cr_assert_eq(out.state_len, 0);
    cr_assert_eq(out.samples, 0);
    sm_msg_doc_destroy(&doc);

    /* a step task's first round: no state */
    sm_msg_task t = tm_task(SM_TASK_STEP), gt;
    t.state = NULL, t.state_len = 0;
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(sm_msg_decode_task(b.data, b.len, NULL, &doc, &gt, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(gt.kind, SM_TASK_STEP);
    cr_assert_null(gt.state);
    cr_assert_eq(gt.n_scores, 3);
    cr_assert_str_eq(sm_task_kind_name(gt.kind), "step");
    cr_assert_str_eq(sm_task_kind_name((sm_task_kind)3), "");
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

/* ---- bodies made by hand ----------------------------------------------------- */

/* msgpack-c's own packer into sb; msgpack_object values to edit with. */
typedef struct tm_body {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} tm_body;

static void tm_body_init(tm_body *t)
{
    msgpack_sbuffer_init(&t->sb);
    msgpack_packer_init(&t->pk, &t->sb, msgpack_sbuffer_write);
}

static void tm_pstr(tm_body *t, const char *s)
{
    msgpack_pack_str_with_body(&t->pk, s, strlen(s));
}

/* Unpacks body into zone, for editing. */
static msgpack_object tm_unpack(const sm_msg_buf *b, msgpack_zone *z)
{
    msgpack_object o;
    size_t off = 0;
    cr_assert_eq(msgpack_unpack((const char *)b->data, b->len, &off, z, &o),
                 MSGPACK_UNPACK_SUCCESS);
    return o;
}

/* The value of key in map (which must have it). */
static msgpack_object *tm_at(msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return &kv->val;
    }
    cr_assert_fail("no key %s", key);
    return NULL;
}

static msgpack_object tm_str(const char *s)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)strlen(s);
    return o;
}

static msgpack_object tm_int(int64_t v)
{
    msgpack_object o;
    if (v >= 0) {
        o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o.via.u64 = (uint64_t)v;
    } else {
        o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o.via.i64 = v;
    }
    return o;
}

static msgpack_object tm_bin(const void *p, size_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
    o.via.bin.ptr = p;
    o.via.bin.size = (uint32_t)n;
    return o;
}

/* Packs root into sb. */
static void tm_repack(const msgpack_object *root, tm_body *t)
{
    tm_body_init(t);
    cr_assert_eq(msgpack_pack_object(&t->pk, *root), 0);
}

typedef int (*tm_decoder)(const void *body, size_t len, sm_err *err);

static int tm_dec_task(const void *body, size_t len, sm_err *err)
{
    sm_msg_doc *doc;
    sm_msg_task m;
    sm_msg_limits l = tm_limits();
    int rc = sm_msg_decode_task(body, len, &l, &doc, &m, err);
    cr_assert(rc == 0 ? doc != NULL : doc == NULL && m.images == NULL);
    sm_msg_doc_destroy(&doc);
    return rc;
}

static int tm_dec_result(const void *body, size_t len, sm_err *err)
{
    sm_msg_doc *doc;
    sm_msg_result m;
    int rc = sm_msg_decode_result(body, len, NULL, &doc, &m, err);
    sm_msg_doc_destroy(&doc);
    return rc;
}

static int tm_dec_job(const void *body, size_t len, sm_err *err)
{
    sm_msg_doc *doc;
    sm_msg_job m;
    int rc = sm_msg_decode_job(body, len, NULL, &doc, &m, err);
    sm_msg_doc_destroy(&doc);
    return rc;
}

/* Edits a task body (a function of the root map), decodes it and expects
 * the message want. */
static void tm_task_refused(sm_task_kind kind,
                            void (*edit)(msgpack_object *root),
                            const char *want)
{
    sm_msg_task t = tm_task(kind);
    sm_msg_buf b = {0};
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    msgpack_zone *z = msgpack_zone_new(4096);
    msgpack_object root = tm_unpack(&b, z);
    edit(&root);
    tm_body body;
    tm_repack(&root, &body);
    sm_err err = {0};
    cr_assert_eq(tm_dec_task(body.sb.data, body.sb.size, &err), -1,
                 "accepted, wanted %s", want);
    cr_assert_str_eq(err.msg, want);
    msgpack_sbuffer_destroy(&body.sb);
    msgpack_zone_free(z);
    sm_msg_buf_free(&b);
}

static void tm_e_data_str(msgpack_object *root)
{
    msgpack_object *im = &tm_at(root, "images")->via.array.ptr[2];
    *tm_at(im, "data") = tm_str("not bytes");
}
static void tm_e_kind(msgpack_object *root) { *tm_at(root, "kind") = tm_str("sideways"); }
static void tm_e_hash(msgpack_object *root) { *tm_at(root, "model") = tm_str("ABC"); }
static void tm_e_task_neg(msgpack_object *root) { *tm_at(root, "task") = tm_int(-1); }
static void tm_e_task_str(msgpack_object *root) { *tm_at(root, "task") = tm_str("9"); }
static void tm_e_dotdot(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[0], "id") = tm_str("a/../../etc");
}
static void tm_e_slash(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[0], "id") = tm_str("/etc/passwd");
}
static void tm_e_backslash(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[0], "id") = tm_str("a\\b");
}
static void tm_e_empty_id(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[0], "id") = tm_str("");
}
static void tm_e_nul(msgpack_object *root)
{
    msgpack_object *id = tm_at(&tm_at(root, "images")->via.array.ptr[1], "id");
    id->via.str.ptr = "ab\0c";
    id->via.str.size = 4;
}
static void tm_e_u8_len(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[1], "data") = tm_bin(tm_px, 5);
}
static void tm_e_u8_width(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[1], "width") = tm_int(65536);
}
static void tm_e_u8_bands(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[1], "bands") = tm_int(5);
}
static void tm_e_format(msgpack_object *root)
{
    *tm_at(&tm_at(root, "images")->via.array.ptr[1], "format") = tm_str("f32");
}
static void tm_e_dup(msgpack_object *root)
{
    /* the key "job" twice: rename "method" */
    for (uint32_t i = 0; i < root->via.map.size; i++)
        if (root->via.map.ptr[i].key.via.str.size == 6 &&
            memcmp(root->via.map.ptr[i].key.via.str.ptr, "method", 6) == 0)
            root->via.map.ptr[i].key = tm_str("job");
}
static void tm_e_missing(msgpack_object *root)
{
    for (uint32_t i = 0; i < root->via.map.size; i++)
        if (root->via.map.ptr[i].key.via.str.size == 6 &&
            memcmp(root->via.map.ptr[i].key.via.str.ptr, "method", 6) == 0)
            root->via.map.ptr[i].key = tm_str("method_");
}
static void tm_e_nil_required(msgpack_object *root)
{
    tm_at(root, "job")->type = MSGPACK_OBJECT_NIL;
}
static void tm_e_scores(msgpack_object *root) { *tm_at(root, "scores") = tm_bin(tm_png, 7); }
static void tm_e_part(msgpack_object *root) { *tm_at(root, "part") = tm_int(5); }
static void tm_e_parts(msgpack_object *root) { *tm_at(root, "parts") = tm_int(0); }
static void tm_e_setting(msgpack_object *root)
{
    tm_at(root, "settings")->via.array.ptr[1] = tm_int(3);
}

Test(msg, task_field_errors)
{
    tm_task_refused(SM_TASK_IMAGES, tm_e_data_str,
                    "TASK: images[2].data: expected bin, got str");
    tm_task_refused(SM_TASK_IMAGES, tm_e_kind,
                    "TASK: kind: must be images, chunk or step, not 'sideways'");
    tm_task_refused(SM_TASK_IMAGES, tm_e_hash,
                    "TASK: model: 'ABC' is not a content hash (64 lower-case "
                    "hex characters)");
    tm_task_refused(SM_TASK_IMAGES, tm_e_task_neg,
                    "TASK: task: -1 is out of range 0..18446744073709551615");
    tm_task_refused(SM_TASK_IMAGES, tm_e_task_str,
                    "TASK: task: expected int, got str");
    tm_task_refused(SM_TASK_IMAGES, tm_e_dotdot,
                    "TASK: images[0].id: 'a/../../etc' contains '..'");
    tm_task_refused(SM_TASK_IMAGES, tm_e_slash,
                    "TASK: images[0].id: '/etc/passwd' starts with '/'");
    tm_task_refused(SM_TASK_IMAGES, tm_e_backslash,
                    "TASK: images[0].id: 'a\\b' contains a backslash");
    tm_task_refused(SM_TASK_IMAGES, tm_e_empty_id,
                    "TASK: images[0].id: empty");
    tm_task_refused(SM_TASK_IMAGES, tm_e_nul,
                    "TASK: images[1].id: contains a NUL byte");
    tm_task_refused(SM_TASK_IMAGES, tm_e_u8_len,
                    "TASK: images[1].data: 5 bytes, expected width x height "
                    "x bands = 6");
    tm_task_refused(SM_TASK_IMAGES, tm_e_u8_width,
                    "TASK: images[1].width: 65536 is out of range 1..65535");
    tm_task_refused(SM_TASK_IMAGES, tm_e_u8_bands,
                    "TASK: images[1].bands: 5 is out of range 1..4");
    tm_task_refused(SM_TASK_IMAGES, tm_e_format,
                    "TASK: images[1].format: must be file or u8, not 'f32'");
    tm_task_refused(SM_TASK_IMAGES, tm_e_dup, "TASK: job: given twice");
    tm_task_refused(SM_TASK_IMAGES, tm_e_missing, "TASK: method: missing");
    tm_task_refused(SM_TASK_IMAGES, tm_e_nil_required, "TASK: job: missing");
    tm_task_refused(SM_TASK_IMAGES, tm_e_setting,
                    "TASK: settings[1]: expected str, got int");
    tm_task_refused(SM_TASK_STEP, tm_e_scores,
                    "TASK: scores: 7 bytes, not a multiple of 8");
    tm_task_refused(SM_TASK_CHUNK, tm_e_part,
                    "TASK: part: 5 is out of range 0..4");
    tm_task_refused(SM_TASK_CHUNK, tm_e_parts,
                    "TASK: parts: 0 is out of range 1..9223372036854775807");
}

Test(msg, task_image_counts)
{
    sm_msg_task t = tm_task(SM_TASK_CHUNK);
    t.n_images = 2;
    sm_msg_buf b = {0};
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(tm_dec_task(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "TASK: images: 2 images, a chunk task has "
                              "exactly 1");
    t = tm_task(SM_TASK_IMAGES);
    t.n_images = 0;
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(tm_dec_task(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "TASK: images: empty");
    sm_msg_buf_free(&b);
}

static void tm_result_refused(void (*edit)(msgpack_object *root),
                              const char *want)
{
    sm_msg_result r = tm_result();
    sm_msg_buf b = {0};
    cr_assert_eq(sm_msg_encode_result(&r, &b), 0);
    msgpack_zone *z = msgpack_zone_new(4096);
    msgpack_object root = tm_unpack(&b, z);
    edit(&root);
    tm_body body;
    tm_repack(&root, &body);
    sm_err err = {0};
    cr_assert_eq(tm_dec_result(body.sb.data, body.sb.size, &err), -1,
                 "accepted, wanted %s", want);
    cr_assert_str_eq(err.msg, want);
    msgpack_sbuffer_destroy(&body.sb);
    msgpack_zone_free(z);
    sm_msg_buf_free(&b);
}

static void tm_e_map_len(msgpack_object *root)
{
    *tm_at(&tm_at(root, "items")->via.array.ptr[0], "map") = tm_bin(tm_map, 20);
}
static void tm_e_map_odd(msgpack_object *root)
{
    *tm_at(&tm_at(root, "items")->via.array.ptr[0], "map") = tm_bin(tm_map, 7);
}
static void tm_e_height(msgpack_object *root)
{
    *tm_at(&tm_at(root, "items")->via.array.ptr[0], "height") = tm_int(0);
}
static void tm_e_one_metric(msgpack_object *root)
{
    tm_at(&tm_at(root, "items")->via.array.ptr[0], "insertion")->type =
        MSGPACK_OBJECT_NIL;
}
static void tm_e_no_faithfulness(msgpack_object *root)
{
    tm_at(&tm_at(root, "items")->via.array.ptr[0], "faithfulness")->type =
        MSGPACK_OBJECT_NIL;
}
static void tm_e_item_type(msgpack_object *root)
{
    tm_at(root, "items")->via.array.ptr[1] = tm_int(1);
}
static void tm_e_score_str(msgpack_object *root)
{
    *tm_at(&tm_at(root, "items")->via.array.ptr[0], "score") = tm_str("high");
}

Test(msg, result_field_errors)
{
    tm_result_refused(tm_e_map_len, "RESULT: items[0].map: 20 bytes, expected "
                                    "height x width x 4 = 24");
    tm_result_refused(tm_e_map_odd, "RESULT: items[0].map: 7 bytes, not a "
                                    "multiple of 4");
    tm_result_refused(tm_e_height, "RESULT: items[0].height: 0 is out of "
                                   "range 1..65535");
    tm_result_refused(tm_e_one_metric, "RESULT: items[0].insertion: missing "
                                       "(metrics come in pairs)");
    tm_result_refused(tm_e_no_faithfulness, "RESULT: items[0].faithfulness: "
                                            "missing");
    tm_result_refused(tm_e_item_type, "RESULT: items[1]: expected map, got int");
    tm_result_refused(tm_e_score_str, "RESULT: items[0].score: expected "
                                      "float, got str");
}

/* ---- the new fields' refusals ------------------------------------------------ */

/* Our encoders trust their input, so bad values set in the struct reach
 * the decoder as they are: b holds such a body (rc: its encoder's
 * return), which dec must refuse with want. Frees b. */
static void tm_encoded_refused(int rc, sm_msg_buf *b, tm_decoder dec,
                               const char *want)
{
    sm_err err = {0};
    cr_assert_eq(rc, 0);
    cr_assert_eq(dec(b->data, b->len, &err), -1, "accepted, wanted %s", want);
    cr_assert_str_eq(err.msg, want);
    sm_msg_buf_free(b);
}

static void tm_task_struct_refused(const sm_msg_task *t, const char *want)
{
    sm_msg_buf b = {0};
    tm_encoded_refused(sm_msg_encode_task(t, &b), &b, tm_dec_task, want);
}

static void tm_result_struct_refused(const sm_msg_result *r, const char *want)
{
    sm_msg_buf b = {0};
    tm_encoded_refused(sm_msg_encode_result(r, &b), &b, tm_dec_result, want);
}

Test(msg, models_errors)
{
    sm_msg_task t = tm_task(SM_TASK_IMAGES);
    const char *names[17], *hashes[17];
    char keys[17][16];
    for (int i = 0; i < 17; i++) {
        snprintf(keys[i], sizeof keys[i], "m%d", i);
        names[i] = keys[i];
        hashes[i] = TM_HASH;
    }
    t.model_names = names, t.model_hashes = hashes;
    t.n_models = 16;
    sm_msg_buf b = {0};
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(tm_dec_task(b.data, b.len, &err), 0, "%s", err.msg);
    sm_msg_buf_free(&b);
    t.n_models = 17;
    tm_task_struct_refused(&t, "TASK: models: 17 entries, more than 16");

    t.n_models = 2;
    names[1] = "Aae";
    tm_task_struct_refused(&t, "TASK: models: 'Aae' is not a name (1 to 64 "
                               "characters of a-z, 0-9 and _)");
    names[1] = "a-e";
    tm_task_struct_refused(&t, "TASK: models: 'a-e' is not a name (1 to 64 "
                               "characters of a-z, 0-9 and _)");
    names[1] = "";
    tm_task_struct_refused(&t, "TASK: models: '' is not a name (1 to 64 "
                               "characters of a-z, 0-9 and _)");
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    names[1] = long_name;
    tm_task_struct_refused(&t, "TASK: models: '" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a name "
                               "(1 to 64 characters of a-z, 0-9 and _)");
    long_name[64] = '\0'; /* 64: fine */
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(tm_dec_task(b.data, b.len, &err), 0, "%s", err.msg);
    sm_msg_buf_free(&b);
    names[1] = "m0";
    tm_task_struct_refused(&t, "TASK: models: 'm0' given twice");
    names[1] = "aae";
    hashes[1] = "xyz";
    tm_task_struct_refused(&t, "TASK: models.aae: 'xyz' is not a content hash "
                               "(64 lower-case hex characters)");
    hashes[1] = TM_HASH "0";
    tm_task_struct_refused(&t, "TASK: models.aae: '" TM_HASH "0' is not a "
                               "content hash (64 lower-case hex characters)");

    /* the metric parameters' ranges */
    t = tm_task(SM_TASK_IMAGES);
    t.faithfulness_subsets = 1;
    tm_task_struct_refused(&t, "TASK: faithfulness_subsets: 1 is out of range "
                               "(0: the default, or 2..65536)");
    t.faithfulness_subsets = 0;
    t.sensitivity_radius = 1.5;
    tm_task_struct_refused(&t, "TASK: sensitivity_radius: 1.5 is out of range "
                               "(0: the default, or up to 1)");
    t.sensitivity_radius = NAN;
    tm_task_struct_refused(&t, "TASK: sensitivity_radius: nan is out of range "
                               "(0: the default, or up to 1)");

    /* SUBMIT's are the same field */
    sm_msg_job j = tm_job();
    hashes[1] = "ABC";
    j.model_names = names, j.model_hashes = hashes, j.n_models = 2;
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: models.aae: 'ABC' is not a content "
                              "hash (64 lower-case hex characters)");
    sm_msg_buf_free(&b);
}

static msgpack_object tm_none[1];
static void tm_e_models_array(msgpack_object *root)
{
    msgpack_object *o = tm_at(root, "models");
    o->type = MSGPACK_OBJECT_ARRAY;
    o->via.array.size = 0;
}
static void tm_e_models_int_key(msgpack_object *root)
{
    msgpack_object *o = tm_at(root, "models");
    o->via.map.ptr[0].key = tm_int(1);
}
static void tm_e_models_int_value(msgpack_object *root)
{
    msgpack_object *o = tm_at(root, "models");
    o->via.map.ptr[1].val = tm_int(1);
}
static void tm_e_state_str(msgpack_object *root)
{
    *tm_at(root, "state") = tm_str("opaque");
}
static void tm_e_state_array(msgpack_object *root)
{
    msgpack_object *o = tm_at(root, "state");
    o->type = MSGPACK_OBJECT_ARRAY;
    o->via.array.ptr = tm_none;
    o->via.array.size = 0;
}
static void tm_e_no_scores(msgpack_object *root)
{
    tm_at(root, "scores")->type = MSGPACK_OBJECT_NIL;
}
static void tm_e_kind_fit(msgpack_object *root)
{
    *tm_at(root, "kind") = tm_str("fit");
}

Test(msg, task_new_field_errors)
{
    tm_task_refused(SM_TASK_IMAGES, tm_e_models_array,
                    "TASK: models: expected map, got array");
    tm_task_refused(SM_TASK_IMAGES, tm_e_models_int_key,
                    "TASK: models: names must be str, not int");
    tm_task_refused(SM_TASK_IMAGES, tm_e_models_int_value,
                    "TASK: models.vae_2: expected str, got int");
    tm_task_refused(SM_TASK_STEP, tm_e_state_str,
                    "TASK: state: expected bin, got str");
    tm_task_refused(SM_TASK_CHUNK, tm_e_state_array,
                    "TASK: state: expected bin, got array");
    tm_task_refused(SM_TASK_STEP, tm_e_no_scores, "TASK: scores: missing");
    /* the old name of the step kind is gone from the wire */
    tm_task_refused(SM_TASK_STEP, tm_e_kind_fit,
                    "TASK: kind: must be images, chunk or step, not 'fit'");
    /* a step task has one image, as a fit task had */
    sm_msg_task t = tm_task(SM_TASK_STEP);
    t.n_images = 3;
    tm_task_struct_refused(&t, "TASK: images: 3 images, a step task has "
                               "exactly 1");
}

/* An images task's state is not part of it: neither sent nor read. */
Test(msg, images_task_ignores_state)
{
    sm_msg_task t = tm_task(SM_TASK_IMAGES), out;
    t.state = tm_state, t.state_len = sizeof tm_state;
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(sm_msg_decode_task(b.data, b.len, NULL, &doc, &out, &err), 0,
                 "%s", err.msg);
    cr_assert_null(out.state);
    sm_msg_doc_destroy(&doc);
    sm_msg_buf_free(&b);
}

static msgpack_object tm_dims5[5];
/* Array j of item i of a RESULT body. */
static msgpack_object *tm_array_at(msgpack_object *root, int i, int j)
{
    msgpack_object *item = &tm_at(root, "items")->via.array.ptr[i];
    return &tm_at(item, "arrays")->via.array.ptr[j];
}
static void tm_e_shape5(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 0, 0);
    for (int i = 0; i < 5; i++)
        tm_dims5[i] = tm_int(1);
    msgpack_object *shape = tm_at(a, "shape");
    shape->via.array.ptr = tm_dims5;
    shape->via.array.size = 5;
}
static msgpack_object tm_dims_huge[4];
static void tm_e_shape_huge(msgpack_object *root)
{
    msgpack_object *shape = tm_at(tm_array_at(root, 0, 0), "shape");
    for (int i = 0; i < 4; i++)
        tm_dims_huge[i] = tm_int(INT64_MAX);
    shape->via.array.ptr = tm_dims_huge;
    shape->via.array.size = 4;
}
static void tm_e_shape0(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 0, 0);
    tm_at(a, "shape")->via.array.size = 0;
}
static void tm_e_shape_dim0(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 0, 1);
    tm_at(a, "shape")->via.array.ptr[0] = tm_int(0);
}
static void tm_e_shape_str(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 0, 0);
    *tm_at(a, "shape") = tm_str("2x3");
}
static void tm_e_array_data_len(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 0, 0);
    *tm_at(a, "data") = tm_bin(tm_latent, 20);
}
static void tm_e_array_data_odd(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 2, 0);
    *tm_at(a, "data") = tm_bin(tm_latent, 6);
}
static void tm_e_array_name(msgpack_object *root)
{
    msgpack_object *a = tm_array_at(root, 0, 1);
    *tm_at(a, "name") = tm_str("Z.0");
}
static void tm_e_array_not_map(msgpack_object *root)
{
    tm_at(&tm_at(root, "items")->via.array.ptr[0], "arrays")->via.array.ptr[1] =
        tm_int(3);
}
static void tm_e_map_no_height(msgpack_object *root)
{
    tm_at(&tm_at(root, "items")->via.array.ptr[0], "height")->type =
        MSGPACK_OBJECT_NIL;
}
static void tm_e_record_int(msgpack_object *root)
{
    *tm_at(&tm_at(root, "items")->via.array.ptr[2], "record") = tm_int(7);
}
static void tm_e_items_str(msgpack_object *root)
{
    *tm_at(root, "items") = tm_str("none");
}

Test(msg, result_new_field_errors)
{
    tm_result_refused(tm_e_shape5, "RESULT: items[0].arrays[0].shape: 5 "
                                   "elements, more than 4");
    tm_result_refused(tm_e_shape0, "RESULT: items[0].arrays[0].shape: empty");
    tm_result_refused(tm_e_shape_dim0, "RESULT: items[0].arrays[1].shape[0]: 0 "
                                       "is out of range 1..9223372036854775807");
    tm_result_refused(tm_e_shape_str, "RESULT: items[0].arrays[0].shape: "
                                      "expected array, got str");
    tm_result_refused(tm_e_array_data_len, "RESULT: items[0].arrays[0].data: "
                                           "20 bytes, expected the product of "
                                           "shape x 4 = 24");
    tm_result_refused(tm_e_array_data_odd, "RESULT: items[2].arrays[0].data: "
                                           "6 bytes, not a multiple of 4");
    tm_result_refused(tm_e_array_name, "RESULT: items[0].arrays[1].name: 'Z.0' "
                                       "is not a name (1 to 64 characters of "
                                       "a-z, 0-9 and _)");
    tm_result_refused(tm_e_array_not_map, "RESULT: items[0].arrays[1]: "
                                          "expected map, got int");
    tm_result_refused(tm_e_map_no_height, "RESULT: items[0].height: missing");
    tm_result_refused(tm_e_record_int, "RESULT: items[2].record: expected "
                                       "str, got int");
    tm_result_refused(tm_e_items_str,    "RESULT: items: expected array, got "
                                         "str");

    /* the same through the struct: dims, names, and a state of another
     * type */
    sm_msg_array arr = {.name = "a", .ndim = 0, .data = tm_map};
    sm_msg_item it = {.id = "x", .score = 1, .arrays = &arr, .n_arrays = 1};
    sm_msg_result r = {.task = 1, .items = &it, .n_items = 1};
    tm_result_struct_refused(&r, "RESULT: items[0].arrays[0].shape: empty");
    arr.ndim = 2, arr.shape[0] = 2, arr.shape[1] = 2, arr.name = "";
    tm_result_struct_refused(&r, "RESULT: items[0].arrays[0].name: '' is not "
                                 "a name (1 to 64 characters of a-z, 0-9 and "
                                 "_)");
    arr.name = NULL;
    tm_result_struct_refused(&r, "RESULT: items[0].arrays[0].name: missing");
    arr.name = "ok", arr.data = NULL;
    tm_result_struct_refused(&r, "RESULT: items[0].arrays[0].data: missing");
    arr.data = tm_map;
    sm_msg_buf b = {0};
    sm_err err = {0};
    cr_assert_eq(sm_msg_encode_result(&r, &b), 0);
    cr_assert_eq(tm_dec_result(b.data, b.len, &err), 0, "%s", err.msg);

    sm_msg_buf_free(&b);

    tm_result_refused(tm_e_shape_huge, "RESULT: items[0].arrays[0].shape: "
                                       "holds more than 4611686018427387903 "
                                       "values");

    /* a step result's state and samples, of the wrong type and range */
    sm_msg_result next = {.task = 1, .state = tm_state, .state_len = 2,
                          .samples = 10};
    cr_assert_eq(sm_msg_encode_result(&next, &b), 0);
    msgpack_zone *z = msgpack_zone_new(4096);
    msgpack_object root = tm_unpack(&b, z);
    *tm_at(&root, "state") = tm_str("opaque");
    tm_body t;
    tm_repack(&root, &t);
    cr_assert_eq(tm_dec_result(t.sb.data, t.sb.size, &err), -1);
    cr_assert_str_eq(err.msg, "RESULT: state: expected bin, got str");
    msgpack_sbuffer_destroy(&t.sb);
    *tm_at(&root, "state") = tm_bin(tm_state, 0);
    *tm_at(&root, "samples") = tm_int(-1);
    tm_repack(&root, &t);
    cr_assert_eq(tm_dec_result(t.sb.data, t.sb.size, &err), -1);
    cr_assert_str_eq(err.msg, "RESULT: samples: -1 is out of range "
                              "0..9223372036854775807");
    msgpack_sbuffer_destroy(&t.sb);
    msgpack_zone_free(z);
    sm_msg_buf_free(&b);
}

Test(msg, params_values_as_text)
{
    tm_body t;
    tm_body_init(&t);
    msgpack_pack_map(&t.pk, 5);
    tm_pstr(&t, "model");
    tm_pstr(&t, TM_HASH);
    tm_pstr(&t, "dataset");
    tm_pstr(&t, "d");
    tm_pstr(&t, "out");
    tm_pstr(&t, "o");
    tm_pstr(&t, "methods");
    msgpack_pack_array(&t.pk, 1);
    tm_pstr(&t, "lime");
    tm_pstr(&t, "params");
    msgpack_pack_map(&t.pk, 2);
    tm_pstr(&t, "lime");
    msgpack_pack_map(&t.pk, 6);
    tm_pstr(&t, "samples");
    msgpack_pack_uint64(&t.pk, 1000);
    tm_pstr(&t, "shift");
    msgpack_pack_int64(&t.pk, -3);
    tm_pstr(&t, "width");
    msgpack_pack_double(&t.pk, 0.1);
    tm_pstr(&t, "half");
    msgpack_pack_float(&t.pk, 0.5f);
    tm_pstr(&t, "select");
    msgpack_pack_false(&t.pk);
    tm_pstr(&t, "kernel");
    tm_pstr(&t, "exp=2");
    tm_pstr(&t, "sal");
    msgpack_pack_nil(&t.pk); /* nil: no parameters */
    sm_msg_doc *doc;
    sm_msg_job m;
    sm_err err = {0};
    cr_assert_eq(sm_msg_decode_job(t.sb.data, t.sb.size, NULL, &doc, &m, &err),
                 0, "%s", err.msg);
    cr_assert_eq(m.n_settings, 6);
    cr_assert_str_eq(m.settings[0], "lime.samples=1000");
    cr_assert_str_eq(m.settings[1], "lime.shift=-3");
    cr_assert_str_eq(m.settings[2], "lime.width=0.10000000000000001");
    cr_assert_str_eq(m.settings[3], "lime.half=0.5");
    cr_assert_str_eq(m.settings[4], "lime.select=false");
    cr_assert_str_eq(m.settings[5], "lime.kernel=exp=2");
    sm_msg_doc_destroy(&doc);
    msgpack_sbuffer_destroy(&t.sb);
}

/* A SUBMIT body of the given params value (packed by fn). */
static void tm_params_refused(void (*fn)(msgpack_packer *pk), const char *want)
{
    tm_body t;
    tm_body_init(&t);
    msgpack_pack_map(&t.pk, 5);
    tm_pstr(&t, "model");
    tm_pstr(&t, TM_HASH);
    tm_pstr(&t, "dataset");
    tm_pstr(&t, "d");
    tm_pstr(&t, "out");
    tm_pstr(&t, "o");
    tm_pstr(&t, "methods");
    msgpack_pack_array(&t.pk, 1);
    tm_pstr(&t, "lime");
    tm_pstr(&t, "params");
    fn(&t.pk);
    sm_err err = {0};
    cr_assert_eq(tm_dec_job(t.sb.data, t.sb.size, &err), -1);
    cr_assert_str_eq(err.msg, want);
    msgpack_sbuffer_destroy(&t.sb);
}

static void tm_p_array(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "samples", 7);
    msgpack_pack_array(pk, 0);
}
static void tm_p_dot(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "li.me", 5);
    msgpack_pack_map(pk, 0);
}
static void tm_p_meq(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "a=b", 3);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "c", 1);
    msgpack_pack_int(pk, 1);
}
static void tm_p_eq(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "a=b", 3);
    msgpack_pack_int(pk, 1);
}
static void tm_p_not_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_int(pk, 1);
}
static void tm_p_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_map(pk, 0);
}

static void tm_p_twice(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_map(pk, 0);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_nil(pk);
}
static void tm_p_key_twice(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_int(pk, 2);
}
static void tm_p_many(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "lime", 4);
    msgpack_pack_map(pk, 257);
    for (int i = 0; i < 257; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        msgpack_pack_str_with_body(pk, k, strlen(k));
        msgpack_pack_int(pk, i);
    }
}

Test(msg, params_errors)
{
    tm_params_refused(tm_p_array, "SUBMIT: params.lime.samples: expected str, "
                                  "int, float or bool, got array");
    tm_params_refused(tm_p_dot, "SUBMIT: params: method name 'li.me' is "
                                "empty or contains '.' or '='");
    tm_params_refused(tm_p_meq, "SUBMIT: params: method name 'a=b' is "
                                "empty or contains '.' or '='");
    tm_params_refused(tm_p_eq, "SUBMIT: params.lime: parameter name 'a=b' is "
                               "empty or contains '='");
    tm_params_refused(tm_p_not_map, "SUBMIT: params.lime: expected map, got "
                                    "int");
    tm_params_refused(tm_p_int_key, "SUBMIT: params: method names must be "
                                    "str, not int");
    tm_params_refused(tm_p_twice, "SUBMIT: params: method 'lime' given "
                                  "twice");
    tm_params_refused(tm_p_key_twice, "SUBMIT: params.lime.a: given twice");
    tm_params_refused(tm_p_many, "SUBMIT: params: more than 256 methods or "
                                 "parameters");
}

Test(msg, job_field_errors)
{
    sm_msg_job j = tm_job();
    sm_msg_buf b = {0};
    sm_err err = {0};
    j.dataset = "d";
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: images: give a dataset or images, not "
                              "both");
    j = tm_job();
    j.images = NULL;
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: dataset: missing (give a dataset or "
                              "images)");
    j = tm_job();
    j.n_methods = 0;
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: methods: empty");
    j = tm_job();
    j.target = "-1";
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: target: must be predicted, label or a "
                              "class index, not '-1'");
    j = tm_job();
    j.score = "softmax";
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: score: must be logit or prob, not "
                              "'softmax'");
    j = tm_job();
    j.scale = "method";
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: scale: must be map or job, not "
                              "'method'");
    j = tm_job();
    j.model = NULL;
    cr_assert_eq(sm_msg_encode_job(&j, &b), 0);
    cr_assert_eq(tm_dec_job(b.data, b.len, &err), -1);
    cr_assert_str_eq(err.msg, "SUBMIT: model: missing");
    sm_msg_buf_free(&b);
}

Test(msg, other_field_errors)
{
    sm_msg_buf b = {0};
    sm_msg_doc *doc;
    sm_err err = {0};
    sm_msg_ready r = {.capacity = 0};
    sm_msg_ready gr;
    cr_assert_eq(sm_msg_encode_ready(&r, &b), 0);
    cr_assert_eq(sm_msg_decode_ready(b.data, b.len, NULL, &doc, &gr, &err), -1);
    cr_assert_null(doc);
    cr_assert_str_eq(err.msg, "READY: capacity: 0 is out of range 1..4294967295");

    sm_msg_status st = tm_status("j", "paused"), gs;
    cr_assert_eq(sm_msg_encode_status(&st, &b), 0);
    cr_assert_eq(sm_msg_decode_status(b.data, b.len, NULL, &doc, &gs, &err),
                 -1);
    cr_assert_str_eq(err.msg, "STATUS: state: must be queued, running, done, "
                              "failed or cancelled, not 'paused'");

    sm_msg_status jobs[2] = {tm_status("a", "done"), tm_status("b", "done")};
    jobs[1].out = NULL;
    sm_msg_list l = {.jobs = jobs, .n = 2}, gl;
    cr_assert_eq(sm_msg_encode_list(&l, &b), 0);
    cr_assert_eq(sm_msg_decode_list(b.data, b.len, NULL, &doc, &gl, &err), -1);
    cr_assert_str_eq(err.msg, "LIST: jobs[1].out: missing");

    sm_msg_blob bl = {.hash = TM_HASH "0"}, gb;
    cr_assert_eq(sm_msg_encode_blob(&bl, &b), 0);
    cr_assert_eq(sm_msg_decode_blob(b.data, b.len, NULL, &doc, &gb, &err), -1);
    cr_assert(strstr(err.msg, "BLOB: hash: '") == err.msg, "%s", err.msg);

    sm_msg_file f = {.path = "../../x", .data = tm_png, .len = 1};
    sm_msg_files fs = {.job = "j", .files = &f, .n = 1, .next = -1}, gf;
    cr_assert_eq(sm_msg_encode_files(&fs, &b), 0);
    cr_assert_eq(sm_msg_decode_files(b.data, b.len, NULL, &doc, &gf, &err),
                 -1);
    cr_assert_str_eq(err.msg, "FILES: files[0].path: '../../x' contains '..'");

    sm_msg_error e = {.message = "m"}, ge;
    cr_assert_eq(sm_msg_encode_error(&e, &b), 0);
    cr_assert_eq(sm_msg_decode_error(b.data, b.len, NULL, &doc, &ge, &err),
                 -1);
    cr_assert_str_eq(err.msg, "ERROR: code: missing");

    const char *job;
    cr_assert_eq(sm_msg_encode_job_id("", &b), 0);
    cr_assert_eq(sm_msg_decode_job_id(b.data, b.len, NULL, &doc, &job, &err),
                 -1);
    cr_assert_str_eq(err.msg, "JOB: job: empty");
    cr_assert_null(job);
    sm_msg_buf_free(&b);
}

/* ---- the raw check ------------------------------------------------------------ */

/* Every decoder on body: each must refuse it (and so must sm_mp_check
 * when check). */
static void tm_refused_by_all(const void *body, size_t len, int check)
{
    sm_msg_limits l = tm_limits();
    sm_err err = {0};
    sm_msg_doc *doc = NULL;
    union {
        sm_msg_job job;
        sm_msg_status st;
        sm_msg_list list;
        sm_msg_blob blob;
        sm_msg_files files;
        sm_msg_error e;
        sm_msg_ready ready;
        sm_msg_task task;
        sm_msg_result result;
    } m;
    const char *job;
    if (check)
        cr_assert_eq(sm_mp_check(body, len, &l, &err), -1);
    cr_assert_eq(sm_msg_decode_job(body, len, &l, &doc, &m.job, &err), -1);
    cr_assert_eq(sm_msg_decode_status(body, len, &l, &doc, &m.st, &err), -1);
    cr_assert_eq(sm_msg_decode_list(body, len, &l, &doc, &m.list, &err), -1);
    cr_assert_eq(sm_msg_decode_blob(body, len, &l, &doc, &m.blob, &err), -1);
    cr_assert_eq(sm_msg_decode_files(body, len, &l, &doc, &m.files, &err), -1);
    cr_assert_eq(sm_msg_decode_error(body, len, &l, &doc, &m.e, &err), -1);
    cr_assert_eq(sm_msg_decode_ready(body, len, &l, &doc, &m.ready, &err), -1);
    cr_assert_eq(sm_msg_decode_task(body, len, &l, &doc, &m.task, &err), -1);
    cr_assert_eq(sm_msg_decode_result(body, len, &l, &doc, &m.result, &err),
                 -1);
    cr_assert_eq(sm_msg_decode_job_id(body, len, &l, &doc, &job, &err), -1);
    cr_assert_eq(sm_msg_decode_empty(body, len, &l, &err), -1);
    cr_assert_null(doc);
}

static void tm_all_refuse(const void *body, size_t len)
{
    tm_refused_by_all(body, len, 1);
}

Test(msg, truncated_at_every_length)
{
    sm_msg_buf b = {0};
    sm_msg_task t = tm_task(SM_TASK_STEP);
    sm_msg_result r = tm_result();
    sm_msg_job j = tm_job();
    for (int which = 0; which < 3; which++) {
        int rc = which == 0   ? sm_msg_encode_task(&t, &b)
                 : which == 1 ? sm_msg_encode_result(&r, &b)
                              : sm_msg_encode_job(&j, &b);
        cr_assert_eq(rc, 0);
        uint8_t *copy = malloc(b.len);
        for (size_t n = 0; n < b.len; n++) {
            /* an exact-size copy, so a sanitizer sees any overread */
            memcpy(copy, b.data, n);
            uint8_t *p = n ? malloc(n) : NULL;
            if (n)
                memcpy(p, copy, n);
            tm_all_refuse(p, n);
            free(p);
        }
        free(copy);
    }
    sm_msg_buf_free(&b);
}

static void tm_check_fails(const void *p, size_t n, const sm_msg_limits *l,
                           const char *want)
{
    sm_err err = {0};
    cr_assert_eq(sm_mp_check(p, n, l, &err), -1, "accepted, wanted %s", want);
    cr_assert_str_eq(err.msg, want);
}

Test(msg, huge_counts_in_tiny_buffers)
{
    sm_msg_limits l = tm_limits();
    tm_check_fails("\xdd\xff\xff\xff\xff", 5, &l, "byte 0: array of 4294967295 "
                   "elements, more than the limit of 1048576");
    tm_check_fails("\xdf\xff\xff\xff\xff", 5, &l, "byte 0: map of 4294967295 "
                   "elements, more than the limit of 1048576");
    l.max_items = SIZE_MAX; /* now only the bytes stop them */
    l.max_total = SIZE_MAX;
    tm_check_fails("\xdd\xff\xff\xff\xff\xc0", 6, &l, "byte 0: array of "
                   "4294967295 elements in 1 remaining bytes");
    tm_check_fails("\xdf\x00\x00\x00\x02\xc0\xc0\xc0", 8, &l, "byte 0: map of "
                   "2 elements in 3 remaining bytes");
    tm_check_fails("\x93\xc0\xc0", 3, &l, "byte 0: array of 3 elements in 2 "
                   "remaining bytes");
    tm_check_fails("\x81\xa1x\xdb\xff\xff\xff\xff", 8, &l, "byte 3: str of "
                   "4294967295 bytes in 0 remaining bytes");
    tm_check_fails("\x81\xa1x\xc6\x7f\xff\xff\xff\x01\x02", 10, &l,
                   "byte 3: bin of 2147483647 bytes in 2 remaining bytes");
    tm_check_fails("\xc9\xff\xff\xff\xff\x01", 6, &l, "byte 0: ext of "
                   "4294967296 bytes in 1 remaining bytes");
    tm_check_fails("\xd8\x01\x02", 3, &l, "byte 0: ext of 17 bytes in 2 "
                   "remaining bytes");
    tm_check_fails("\xcb\x00", 2, &l, "byte 0: number of 8 bytes in 1 "
                   "remaining bytes");
    tm_check_fails("\xdc\x00", 2, &l, "byte 0: truncated header");
    /* the decoders add the command */
    sm_err err = {0};
    cr_assert_eq(tm_dec_task("\xdd\xff\xff\xff\xff", 5, &err), -1);
    cr_assert_str_eq(err.msg, "TASK: body: byte 0: array of 4294967295 "
                              "elements, more than the limit of 1048576");
    tm_all_refuse("\xdf\xff\xff\xff\xff", 5);
    tm_all_refuse("\xc6\xff\xff\xff\xff", 5);
}

Test(msg, limits)
{
    sm_msg_limits l = tm_limits();
    cr_assert_eq(l.max_body, (size_t)256 << 20);
    cr_assert_eq(l.max_items, (size_t)1 << 20);
    cr_assert_eq(l.max_depth, 16);
    cr_assert_eq(l.max_string, (size_t)1 << 20);
    cr_assert_eq(l.max_total, (size_t)4 << 20);
    l.max_body = 4;
    tm_check_fails("\x81\xa1x\xa1y", 5, &l, "5 bytes, more than the limit of 4");
    l = tm_limits();
    l.max_string = 2;
    cr_assert_eq(sm_mp_check("\x81\xa2xy\xa2yz", 7, &l, NULL), 0);
    tm_check_fails("\x81\xa2xy\xa3xyz", 8, &l, "byte 4: string of 3 bytes, "
                   "more than the limit of 2");
    l = tm_limits();
    l.max_items = 2;
    cr_assert_eq(sm_mp_check("\x92\xc0\xc0", 3, &l, NULL), 0);
    tm_check_fails("\x93\xc0\xc0\xc0", 4, &l, "byte 0: array of 3 elements, "
                   "more than the limit of 2");
    /* max_total: 0 means 4 x max_items */
    l.max_total = 0;
    cr_assert_eq(sm_mp_check("\x92\x92\xc0\xc0\x92\xc0\xc0", 7, &l, NULL), 0);
    tm_check_fails("\x92\x92\x92\xc0\xc0\xc0\x92\xc0\x92\xc0\xc0", 11, &l,
                   "byte 8: more than 8 elements in all");
    l.max_total = 3;
    tm_check_fails("\x92\x92\xc0\xc0\x92\xc0\xc0", 7, &l,
                   "byte 1: more than 3 elements in all");
}

Test(msg, depth_bombs)
{
    sm_msg_limits l = tm_limits();
    uint8_t buf[2001];
    /* 16 arrays deep is fine, 17 is not */
    memset(buf, 0x91, 16);
    buf[16] = 0xc0;
    cr_assert_eq(sm_mp_check(buf, 17, &l, NULL), 0);
    memset(buf, 0x91, 17);
    buf[17] = 0xc0;
    tm_check_fails(buf, 18, &l, "byte 16: nested deeper than 16");
    /* an empty innermost array still counts */
    memset(buf, 0x91, 16);
    buf[16] = 0x90;
    tm_check_fails(buf, 17, &l, "byte 16: nested deeper than 16");
    /* 2000 deep, of arrays and of maps; a limit above msgpack-c's own
     * stack is clamped to it (33 deep fails inside msgpack-c) */
    memset(buf, 0x91, 2000);
    buf[2000] = 0xc0;
    tm_all_refuse(buf, 2001);
    for (int i = 0; i < 1000; i++)
        buf[2 * i] = 0x81, buf[2 * i + 1] = 0xc0;
    tm_all_refuse(buf, 2001);
    l.max_depth = 1000;
    memset(buf, 0x91, 32);
    buf[32] = 0xc0;
    msgpack_zone *z = msgpack_zone_new(1024);
    msgpack_object o;
    sm_err err = {0};
    cr_assert_eq(sm_mp_unpack(buf, 33, &l, z, &o, &err), 0, "%s", err.msg);
    memset(buf, 0x91, 33);
    buf[33] = 0xc0;
    cr_assert_eq(sm_mp_unpack(buf, 34, &l, z, &o, &err), -1);
    cr_assert_str_eq(err.msg, "byte 32: nested deeper than 32");
    msgpack_zone_free(z);
}

Test(msg, reserved_trailing_and_non_maps)
{
    sm_msg_limits l = tm_limits();
    tm_check_fails("\xc1", 1, &l, "byte 0: 0xc1 is not a MessagePack type");
    tm_check_fails("\x82\xa1x\x01\xa1y\xc1", 7, &l,
                   "byte 6: 0xc1 is not a MessagePack type");
    tm_check_fails("\x80\x00", 2, &l, "byte 1: 1 bytes after the object");
    tm_check_fails("\x80\x80", 2, &l, "byte 1: 1 bytes after the object");
    tm_check_fails("", 0, &l, "empty: expected one MessagePack object");
    tm_all_refuse("\xc1", 1);
    tm_all_refuse("\x80\x00", 2);
    tm_all_refuse(NULL, 0);
    /* well-formed, but not a map */
    static const struct {
        const char *body;
        size_t len;
        const char *want;
    } cases[] = {
        {"\x90", 1, "TASK: body: expected map, got array"},
        {"\x01", 1, "TASK: body: expected map, got int"},
        {"\xa1x", 2, "TASK: body: expected map, got str"},
        {"\xc0", 1, "TASK: body: expected map, got nil"},
        {"\xc4\x01x", 3, "TASK: body: expected map, got bin"},
        {"\xcb\x3f\xf0\0\0\0\0\0\0", 9, "TASK: body: expected map, got float"},
        {"\xd4\x01\x02", 3, "TASK: body: expected map, got ext"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_err err = {0};
        cr_assert_eq(sm_mp_check(cases[i].body, cases[i].len, &l, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(tm_dec_task(cases[i].body, cases[i].len, &err), -1);
        cr_assert_str_eq(err.msg, cases[i].want);
        tm_refused_by_all(cases[i].body, cases[i].len, 0);
    }
    /* every well-formed format byte passes the check */
    static const char *good[] = {
        "\x7f", "\xe0", "\xc2", "\xc3", "\xcc\x01", "\xcd\x01\x02",
        "\xce\x01\x02\x03\x04", "\xd0\x01", "\xd3\0\0\0\0\0\0\0\1",
        "\xca\0\0\0\0", "\xd9\x01x", "\xda\x00\x01x", "\xc5\x00\x01x",
        "\xc7\x01\x05x", "\xd5\x05xy", "\xde\x00\x01\x01\x02",
    };
    static const size_t good_len[] = {1, 1, 1, 1, 2, 3, 5, 2, 9, 5, 3, 4, 4,
                                      4, 4, 5};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        sm_err err = {0};
        cr_assert_eq(sm_mp_check(good[i], good_len[i], &l, &err), 0,
                     "case %zu: %s", i, err.msg);
    }
}

/* ---- hashes --------------------------------------------------------------- */

Test(msg, hash_known_answers)
{
    char hex[SM_HASH_HEX + 1];
    sm_hash_hex("", 0, hex);
    cr_assert_str_eq(hex, TM_HASH);
    /* BLAKE2b-256("abc"), RFC 7693's input, from Python's hashlib */
    sm_hash_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e4272"
                          "62c8c068d52319");
    cr_assert_eq(sm_hash_valid(hex), 1);
    cr_assert_eq(sm_hash_valid(TM_HASH), 1);
    cr_assert_eq(sm_hash_valid(NULL), 0);
    cr_assert_eq(sm_hash_valid(""), 0);
    cr_assert_eq(sm_hash_valid(TM_HASH "0"), 0);
    char upper[] = TM_HASH;
    upper[0] = 'E';
    cr_assert_eq(sm_hash_valid(upper), 0);
    upper[0] = 'g';
    cr_assert_eq(sm_hash_valid(upper), 0);
    cr_assert_eq(sm_hash_valid(TM_HASH + 1), 0);
}

/* ---- frames ---------------------------------------------------------------- */

static void tm_sendparts(void *s, int n, const char *const *parts)
{
    for (int i = 0; i < n; i++)
        cr_assert_geq(zmq_send(s, parts[i], strlen(parts[i]),
                               i < n - 1 ? ZMQ_SNDMORE : 0), 0);
}

static void tm_sock_opts(void *s)
{
    int ms = 2000, zero = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof ms);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
}

Test(msg, frames_dealer_router)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    tm_sock_opts(router);
    tm_sock_opts(dealer);
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, "client-7", 8);
    cr_assert_eq(zmq_bind(router, "inproc://tm-msg-frames"), 0);
    cr_assert_eq(zmq_connect(dealer, "inproc://tm-msg-frames"), 0);

    sm_msg_frames f;
    sm_err err = {0};
    errno = 0;
    cr_assert_eq(sm_msg_recv(router, 1, ZMQ_DONTWAIT, &f, &err), -1);
    cr_assert_eq(errno, EAGAIN);

    sm_msg_buf b = {0};
    cr_assert_eq(sm_msg_encode_job_id("j-1", &b), 0);
    cr_assert_eq(sm_msg_send(dealer, NULL, 0, SM_PROTO_CLIENT, "STATUS",
                             b.data, b.len), 0);
    cr_assert_eq(sm_msg_recv(router, 1, 0, &f, &err), 0, "%s", err.msg);
    cr_assert_eq(f.identity_len, 8);
    cr_assert_eq(memcmp(f.identity, "client-7", 8), 0);
    cr_assert_str_eq(f.signature, "SMC1");
    cr_assert_str_eq(f.command, "STATUS");
    cr_assert_eq(f.len, b.len);
    sm_msg_doc *doc;
    const char *job;
    cr_assert_eq(sm_msg_decode_job_id(f.body, f.len, NULL, &doc, &job, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(job, "j-1");
    sm_msg_doc_destroy(&doc);

    /* the reply, routed by identity */
    sm_msg_error e = {.code = "unknown_job", .message = "j-1"};
    cr_assert_eq(sm_msg_encode_error(&e, &b), 0);
    cr_assert_eq(sm_msg_send(router, f.identity, f.identity_len,
                             SM_PROTO_CLIENT, "ERROR", b.data, b.len), 0);
    sm_msg_frames_free(&f);
    cr_assert_null(f.body);
    sm_msg_frames g;
    cr_assert_eq(sm_msg_recv(dealer, 0, 0, &g, &err), 0, "%s", err.msg);
    cr_assert_str_eq(g.command, "ERROR");
    cr_assert_eq(g.identity_len, 0);
    sm_msg_frames_free(&g);

    /* 2 and 5 frames: refused, drained, the identity kept for an answer;
     * then the next good message comes through whole */
    const char *two[] = {"SMC1", "LIST"};
    const char *five[] = {"SMC1", "LIST", "\x80", "extra", "more"};
    const char *lower[] = {"SMC1", "list", "\x80"};
    const char *longsig[] = {"SMC1SMC1", "LIST", "\x80"};
    const char *good[] = {"SMC1", "LIST", "\x80"};
    tm_sendparts(dealer, 2, two);
    tm_sendparts(dealer, 5, five);
    tm_sendparts(dealer, 3, lower);
    tm_sendparts(dealer, 3, longsig);
    tm_sendparts(dealer, 3, good);
    errno = 0;
    cr_assert_eq(sm_msg_recv(router, 1, 0, &f, &err), -1);
    cr_assert_eq(errno, EPROTO);
    cr_assert_str_eq(err.msg, "message refused: 2 frames after the identity, "
                              "expected 3");
    cr_assert_eq(f.identity_len, 8);
    cr_assert_null(f.body);
    cr_assert_eq(sm_msg_recv(router, 1, 0, &f, &err), -1);
    cr_assert_str_eq(err.msg, "message refused: 5 frames after the identity, "
                              "expected 3");
    cr_assert_eq(sm_msg_recv(router, 1, 0, &f, &err), -1);
    cr_assert(strstr(err.msg, "command frame"), "%s", err.msg);
    cr_assert_eq(sm_msg_recv(router, 1, 0, &f, &err), -1);
    cr_assert(strstr(err.msg, "signature frame"), "%s", err.msg);
    cr_assert_eq(sm_msg_recv(router, 1, 0, &f, &err), 0, "%s", err.msg);
    cr_assert_str_eq(f.command, "LIST");
    cr_assert_eq(sm_msg_decode_empty(f.body, f.len, NULL, &err), 0);
    sm_msg_frames_free(&f);
    cr_assert_eq(sm_msg_recv(router, 1, ZMQ_DONTWAIT, &f, &err), -1);
    cr_assert_eq(errno, EAGAIN);

    sm_msg_buf_free(&b);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

Test(msg, frames_pair_refuses_and_drains)
{
    void *ctx = zmq_ctx_new();
    void *a = zmq_socket(ctx, ZMQ_PAIR);
    void *c = zmq_socket(ctx, ZMQ_PAIR);
    tm_sock_opts(a);
    tm_sock_opts(c);
    cr_assert_eq(zmq_bind(a, "inproc://tm-msg-pair"), 0);
    cr_assert_eq(zmq_connect(c, "inproc://tm-msg-pair"), 0);
    const char *two[] = {"SMW1", "HEARTBEAT"};
    const char *five[] = {"SMW1", "HEARTBEAT", "\x80", "\x80", "\x80"};
    tm_sendparts(c, 2, two);
    tm_sendparts(c, 5, five);
    cr_assert_eq(sm_msg_send(c, NULL, 0, SM_PROTO_WORKER, "HEARTBEAT", NULL, 0),
                 0);
    sm_msg_frames f;
    sm_err err = {0};
    cr_assert_eq(sm_msg_recv(a, 0, 0, &f, &err), -1);
    cr_assert_str_eq(err.msg, "message refused: 2 frames, expected 3");
    cr_assert_eq(sm_msg_recv(a, 0, 0, &f, &err), -1);
    cr_assert_str_eq(err.msg, "message refused: 5 frames, expected 3");
    cr_assert_eq(sm_msg_recv(a, 0, 0, &f, &err), 0, "%s", err.msg);
    cr_assert_str_eq(f.signature, "SMW1");
    cr_assert_str_eq(f.command, "HEARTBEAT");
    cr_assert_eq(f.len, 0);
    cr_assert_not_null(f.body);
    /* an empty body is not a map */
    cr_assert_eq(sm_msg_decode_empty(f.body, f.len, NULL, &err), -1);
    sm_msg_frames_free(&f);
    zmq_close(a);
    zmq_close(c);
    zmq_ctx_term(ctx);
}

/* ---- the fuzzer's corpus -------------------------------------------------- */

/* The decoders in the order of tm_decode_everything's bits. */
static const char *const tm_decoders[] = {"job", "status", "list", "blob",
                                          "files", "error", "ready", "task",
                                          "result", "jobid", "empty"};

/* Every decoder under default and tiny limits; an accepted body must also
 * encode again. Returns a bit per decoder (tm_decoders) that accepted it
 * with the default limits. */
static unsigned tm_decode_everything(const uint8_t *p, size_t n)
{
    unsigned accepted = 0;
    sm_msg_limits lims[2];
    sm_msg_limits_default(&lims[0]);
    lims[1] = (sm_msg_limits){.max_body = 4096, .max_items = 16,
                              .max_depth = 6, .max_string = 64,
                              .max_total = 64};
    for (int k = 0; k < 2; k++) {
        const sm_msg_limits *l = &lims[k];
        sm_msg_doc *doc = NULL;
        sm_err err;
        sm_msg_buf b = {0};
        const char *job;
        sm_msg_job mj;
        sm_msg_status ms;
        sm_msg_list ml;
        sm_msg_blob mb;
        sm_msg_files mf;
        sm_msg_error me;
        sm_msg_ready mr;
        sm_msg_task mt;
        sm_msg_result mres;
        sm_mp_check(p, n, l, &err);
        int bit = 0;
#define TM_OK(call) (bit++, !(call) && (accepted |= (k == 0) << (bit - 1), 1))
        if (TM_OK(sm_msg_decode_job(p, n, l, &doc, &mj, &err)))
            cr_assert_eq(sm_msg_encode_job(&mj, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_status(p, n, l, &doc, &ms, &err)))
            cr_assert_eq(sm_msg_encode_status(&ms, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_list(p, n, l, &doc, &ml, &err)))
            cr_assert_eq(sm_msg_encode_list(&ml, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_blob(p, n, l, &doc, &mb, &err)))
            cr_assert_eq(sm_msg_encode_blob(&mb, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_files(p, n, l, &doc, &mf, &err)))
            cr_assert_eq(sm_msg_encode_files(&mf, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_error(p, n, l, &doc, &me, &err)))
            cr_assert_eq(sm_msg_encode_error(&me, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_ready(p, n, l, &doc, &mr, &err)))
            cr_assert_eq(sm_msg_encode_ready(&mr, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_task(p, n, l, &doc, &mt, &err)))
            cr_assert_eq(sm_msg_encode_task(&mt, &b), 0);
        sm_msg_doc_destroy(&doc);
        if (TM_OK(sm_msg_decode_result(p, n, l, &doc, &mres, &err)))
            cr_assert_eq(sm_msg_encode_result(&mres, &b), 0);
        sm_msg_doc_destroy(&doc);
        TM_OK(sm_msg_decode_job_id(p, n, l, &doc, &job, &err));
        sm_msg_doc_destroy(&doc);
        TM_OK(sm_msg_decode_empty(p, n, l, &err));
#undef TM_OK
        sm_msg_buf_free(&b);
    }
    return accepted;
}

Test(msg, fuzz_corpus_regression)
{
    const char *dir = "tests/fuzz/corpus/msg";
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int files = 0, accepted = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        sm_err err = {0};
        unsigned char *p = sm_file_read(path, (size_t)1 << 24, &n, &err);
        cr_assert_not_null(p, "%s", err.msg);
        /* the seeds say what they are: bad_<decoder>_* must be refused by
         * that decoder (bad_any_*: by all), the others are some message;
         * inputs the fuzzer found (crash-*, ...) must only not crash */
        unsigned ok = tm_decode_everything(p, n);
        if (strncmp(e->d_name, "bad_any_", 8) == 0) {
            cr_assert_eq(ok, 0, "%s: accepted (%#x)", e->d_name, ok);
        } else if (strncmp(e->d_name, "bad_", 4) == 0) {
            size_t k = 0;
            while (k < 11 && (strncmp(e->d_name + 4, tm_decoders[k],
                                      strlen(tm_decoders[k])) ||
                              e->d_name[4 + strlen(tm_decoders[k])] != '_'))
                k++;
            cr_assert_lt(k, 11, "%s: names no decoder", e->d_name);
            cr_assert_eq(ok & (1u << k), 0, "%s: accepted", e->d_name);
        } else if (!strchr(e->d_name, '-')) {
            cr_assert_neq(ok, 0, "%s: refused by every decoder", e->d_name);
        }
        accepted += ok != 0;
        free(p);
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 20, "only %d files in %s", files, dir);
    cr_assert_gt(accepted, 0);
    cr_assert_lt(accepted, files);
}

Test(msg, peek_task_reads_the_id_of_a_task_that_does_not_decode)
{
    sm_msg_limits l = tm_limits();
    char hash[SM_HASH_HEX + 1], model[SM_HASH_HEX + 1];
    sm_hash_hex("m", 1, hash);
    /* {task: 7, model: <hash>, kind: "nope"}: the kind makes it invalid */
    uint8_t body[128];
    size_t n = 0;
    body[n++] = 0x83;
    body[n++] = 0xa4;
    memcpy(body + n, "task", 4), n += 4;
    body[n++] = 0x07;
    body[n++] = 0xa5;
    memcpy(body + n, "model", 5), n += 5;
    body[n++] = 0xd9;
    body[n++] = SM_HASH_HEX;
    memcpy(body + n, hash, SM_HASH_HEX), n += SM_HASH_HEX;
    body[n++] = 0xa4;
    memcpy(body + n, "kind", 4), n += 4;
    body[n++] = 0xa4;
    memcpy(body + n, "nope", 4), n += 4;
    sm_msg_doc *doc = NULL;
    sm_msg_task t;
    sm_err err;
    cr_assert_eq(sm_msg_decode_task(body, n, &l, &doc, &t, &err), -1);
    uint64_t id = 0;
    cr_assert_eq(sm_msg_peek_task(body, n, &l, &id, model), 0);
    cr_assert_eq(id, 7);
    cr_assert_str_eq(model, hash);
    /* no task id: nothing to answer */
    cr_assert_eq(sm_msg_peek_task("\x81\xa4kind\xa4nope", 11, &l, &id, model), -1);
}
