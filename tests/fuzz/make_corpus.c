/* Writes the seed corpus of fuzz_msg into a folder: a valid body of every
 * message (from the encoders; every field, the optional ones too) and
 * the shapes the decoders must refuse
 * (huge counts in tiny buffers, depth bombs, 0xc1, trailing bytes,
 * truncations, wrong types), named bad_<decoder>_<what>: the decoder
 * that must refuse it (job, task, jobid, ...; "any": all of them, the
 * bytes themselves are wrong). `make fuzz-corpus` runs it into
 * tests/fuzz/corpus/msg. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/msg.h"

#define HASH "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"

static const char *dir;

static void put(const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        perror(path);
        exit(1);
    }
}

/* A string literal's bytes, without its terminating NUL. */
#define PUT_LIT(name, lit) put(name, lit, sizeof lit - 1)

static void put_buf(const char *name, int rc, sm_msg_buf *b)
{
    if (rc) {
        fprintf(stderr, "%s: encoding failed\n", name);
        exit(1);
    }
    put(name, b->data, b->len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    sm_msg_buf b = {0};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', 0, 1};
    static const uint8_t px[4] = {1, 2, 3, 4};
    static const float map[4] = {0.5f, -1.f, 0.f, 2.f};
    static const double scores[3] = {0.25, 1, -2};
    static const uint8_t state[4] = {0, 1, 0xfe, 3};
    const char *model_names[] = {"aae"};
    const char *model_hashes[] = {HASH};
    const char *methods[] = {"sal", "lime"};
    const char *settings[] = {"lime.samples=100", "sal.abs=true"};
    const char *tsettings[] = {"samples=100"};
    sm_msg_image images[2] = {
        {.id = "a/0.png", .label = "3", .label_index = 3, .data = png,
         .len = sizeof png},
        {.id = "b", .label_index = -1, .format = SM_IMAGE_U8, .width = 2,
         .height = 2, .bands = 1, .data = px, .len = sizeof px},
    };

    sm_msg_job job = {.name = "n", .model = HASH, .config = "x: 1\n",
                      .images = images, .n_images = 2, .methods = methods,
                      .n_methods = 2, .settings = settings, .n_settings = 2,
                      .seed = 7, .out = "out", .limit = 10, .metrics = 1,
                      .png = 1, .scale = "job",
                      .target = "label", .score = "prob", .batch = 8,
                      .model_names = model_names, .model_hashes = model_hashes,
                      .n_models = 1};
    put_buf("submit_images", sm_msg_encode_job(&job, &b), &b);
    job.images = NULL, job.n_images = 0, job.dataset = "data/mnist/test";
    put_buf("submit_dataset", sm_msg_encode_job(&job, &b), &b);

    sm_msg_status st = {.job = "j-1", .name = "n", .state = "running",
                        .out = "out", .images = 2, .maps_total = 4,
                        .maps_done = 1, .seconds = 1.5, .rate = 0.66};
    put_buf("status", sm_msg_encode_status(&st, &b), &b);
    sm_msg_status jobs[2] = {st, st};
    jobs[1].state = "failed", jobs[1].error = "boom";
    sm_msg_list list = {.jobs = jobs, .n = 2};
    put_buf("list", sm_msg_encode_list(&list, &b), &b);

    sm_msg_blob blob = {.hash = HASH};
    put_buf("has", sm_msg_encode_blob(&blob, &b), &b);
    blob.have = 1;
    put_buf("has_reply", sm_msg_encode_blob(&blob, &b), &b);
    blob.have = 0, blob.data = png, blob.len = sizeof png;
    put_buf("put", sm_msg_encode_blob(&blob, &b), &b);

    sm_msg_files fetch = {.job = "j-1", .from = 1};
    put_buf("fetch", sm_msg_encode_files(&fetch, &b), &b);
    sm_msg_file files[2] = {{.path = "index.csv", .data = png, .len = 3},
                            {.path = "maps/a/0.png/sal.npy", .data = png,
                             .len = sizeof png}};
    sm_msg_files reply = {.job = "j-1", .files = files, .n = 2, .next = -1};
    put_buf("files", sm_msg_encode_files(&reply, &b), &b);

    sm_msg_error e = {.code = "invalid", .message = "TASK: kind: missing",
                      .command = "TASK"};
    put_buf("error", sm_msg_encode_error(&e, &b), &b);
    sm_msg_ready ready = {.capacity = 2, .name = "w"};
    put_buf("ready", sm_msg_encode_ready(&ready, &b), &b);

    sm_msg_task task = {.task = 1, .job = "j-1", .kind = SM_TASK_IMAGES,
                        .model = HASH, .method = "lime",
                        .settings = tsettings, .n_settings = 1, .seed = 3,
                        .target = "predicted", .score = "logit",
                        .metrics = 1, .images = images, .n_images = 2};
    put_buf("task_images", sm_msg_encode_task(&task, &b), &b);
    task.kind = SM_TASK_CHUNK, task.n_images = 1, task.part = 1,
    task.parts = 4;
    put_buf("task_chunk", sm_msg_encode_task(&task, &b), &b);
    task.state = state, task.state_len = sizeof state;
    put_buf("task_chunk_state", sm_msg_encode_task(&task, &b), &b);
    task.kind = SM_TASK_STEP, task.scores = scores, task.n_scores = 3;
    task.model_names = model_names, task.model_hashes = model_hashes;
    task.n_models = 1;
    put_buf("task_step", sm_msg_encode_task(&task, &b), &b);
    task.state = NULL, task.state_len = 0; /* an image's first round */
    put_buf("task_step_first", sm_msg_encode_task(&task, &b), &b);

    sm_msg_array arrays[2] = {
        {.name = "latent", .ndim = 2, .shape = {2, 2}, .data = map},
        {.name = "z", .ndim = 4, .shape = {1, 1, 1, 3}, .data = map},
    };
    sm_msg_item items[3] = {
        {.id = "b", .predicted = 1, .target = 1, .score = 0.5, .evals = 100,
         .seconds = 0.01, .height = 2, .width = 2, .map = map,
         .params = "{}", .record = "{}", .arrays = arrays, .n_arrays = 1,
         .has_metrics = 1, .deletion = 0.1, .insertion = 0.9},
        {.id = "a/0.png", .error = "cannot decode"},
        /* no pixel map: a record and arrays only */
        {.id = "c", .predicted = 2, .target = 0, .score = -1,
         .record = "{\"rule\": \"x > 1\"}", .arrays = arrays,
         .n_arrays = 2},
    };
    sm_msg_result res = {.task = 1, .items = items, .n_items = 3};
    put_buf("result_items", sm_msg_encode_result(&res, &b), &b);
    sm_msg_result next = {.task = 4, .state = state,
                          .state_len = sizeof state, .samples = 64};
    put_buf("result_step_next", sm_msg_encode_result(&next, &b), &b);
    sm_msg_result chunk = {.task = 2, .scores = scores, .n_scores = 3,
                           .samples = 12};
    put_buf("result_chunk", sm_msg_encode_result(&chunk, &b), &b);
    sm_msg_result failed = {.task = 3, .error = "model did not load"};
    put_buf("result_error", sm_msg_encode_result(&failed, &b), &b);
    put_buf("job_id", sm_msg_encode_job_id("j-1", &b), &b);
    put_buf("empty", sm_msg_encode_empty(&b), &b);

    /* params of every value type (our encoder writes str only) */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "model", 5);
    msgpack_pack_str_with_body(&pk, HASH, 64);
    msgpack_pack_str_with_body(&pk, "dataset", 7);
    msgpack_pack_str_with_body(&pk, "d", 1);
    msgpack_pack_str_with_body(&pk, "out", 3);
    msgpack_pack_str_with_body(&pk, "o", 1);
    msgpack_pack_str_with_body(&pk, "methods", 7);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, "lime", 4);
    msgpack_pack_str_with_body(&pk, "params", 6);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "lime", 4);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "samples", 7);
    msgpack_pack_uint64(&pk, 1000);
    msgpack_pack_str_with_body(&pk, "shift", 5);
    msgpack_pack_int64(&pk, -3);
    msgpack_pack_str_with_body(&pk, "width", 5);
    msgpack_pack_double(&pk, 0.25);
    msgpack_pack_str_with_body(&pk, "half", 4);
    msgpack_pack_float(&pk, 0.5f);
    msgpack_pack_str_with_body(&pk, "abs", 3);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "sal", 3);
    msgpack_pack_nil(&pk);
    put("submit_params_typed", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    /* what must be refused */
    job.images = images, job.n_images = 2; /* and a dataset */
    put_buf("bad_job_dataset_and_images", sm_msg_encode_job(&job, &b), &b);
    task.kind = SM_TASK_CHUNK, task.n_images = 2;
    put_buf("bad_task_chunk_two_images", sm_msg_encode_task(&task, &b), &b);
    task.kind = SM_TASK_STEP, task.n_images = 1, task.scores = NULL;
    put_buf("bad_task_step_no_scores", sm_msg_encode_task(&task, &b), &b);
    task.scores = scores;
    model_names[0] = "AAE";
    put_buf("bad_task_model_name", sm_msg_encode_task(&task, &b), &b);
    model_names[0] = "aae", model_hashes[0] = "abc";
    put_buf("bad_task_model_hash", sm_msg_encode_task(&task, &b), &b);
    model_hashes[0] = HASH;
    arrays[0].ndim = 0;
    put_buf("bad_result_array_no_dims", sm_msg_encode_result(&res, &b), &b);
    arrays[0].ndim = 2, arrays[0].name = "Latent";
    put_buf("bad_result_array_name", sm_msg_encode_result(&res, &b), &b);
    PUT_LIT("bad_any_array32_huge", "\xdd\xff\xff\xff\xff\xc0");
    PUT_LIT("bad_any_map32_huge", "\x81\xa1x\xdf\xff\xff\xff\xff\xc0\xc0");
    PUT_LIT("bad_any_str32_huge", "\x81\xa1x\xdb\xff\xff\xff\xff");
    PUT_LIT("bad_any_bin32_huge", "\x81\xa4" "data\xc6\x7f\xff\xff\xff");
    PUT_LIT("bad_any_ext32_huge", "\x81\xa1x\xc9\xff\xff\xff\xff\x01");
    PUT_LIT("bad_any_reserved_c1", "\x82\xa1x\x01\xa1y\xc1");
    PUT_LIT("bad_any_trailing", "\x80\x00");
    PUT_LIT("bad_any_not_map", "\x93\x01\x02\x03");
    uint8_t deep[300];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0xc0;
    put("bad_any_depth_arrays", deep, sizeof deep);
    for (size_t i = 0; i + 1 < sizeof deep; i += 3)
        deep[i] = 0x81, deep[i + 1] = 0xa1, deep[i + 2] = 'k';
    deep[sizeof deep - 1] = 0xc0;
    put("bad_any_depth_maps", deep, sizeof deep);
    task.kind = SM_TASK_IMAGES, task.n_images = 2, task.scores = NULL;
    task.n_models = 0;
    if (sm_msg_encode_task(&task, &b))
        return 1;
    put("bad_any_truncated_task", b.data, b.len / 2);
    /* images[0].data as str, and an id with a NUL */
    static const char wrong[] =
        "\x86\xa4task\x01\xa3job\xa1j\xa4kind\xa6images\xa5model\xd9\x40" HASH
        "\xa6method\xa3sal\xa6images\x91\x82\xa2id\xa1" "a\xa4" "data\xa3png";
    put("bad_task_wrong_type", wrong, sizeof wrong - 1);
    static const char nul[] = "\x81\xa3job\xa3j\0x";
    put("bad_jobid_nul_in_str", nul, sizeof nul - 1);
    static const char dup[] = "\x82\xa3job\xa1" "a\xa3job\xa1" "b";
    put("bad_jobid_duplicate_key", dup, sizeof dup - 1);
    sm_msg_buf_free(&b);
    return 0;
}
