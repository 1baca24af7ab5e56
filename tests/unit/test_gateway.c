/* The gateway's job documents, statuses and the routes it answers without
 * the broker (gateway/json.c, gateway/api.c), against hand-written
 * expectations; the rest is tests/integration/http.sh against a real
 * broker. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "gateway/api.h"
#include "gateway/json.h"
#include "tdata.h"

TDATA_SUITE(gateway);

#define HASH "d5100f2557fc71ec5d7a07897669b134501a4af93cebff599594ac2e2b196bea"

static const char *const roots[] = {"data/mnist", "data/fashion-mnist/"};
static const sm_gw_paths paths = {"out/gw", roots, 2};

/* Parses text into j; *doc (which j borrows from) is the caller's to free
 * after j. */
static int parse(const char *text, int inline_image, sm_gw_job *j, sm_err *err,
                 json_t **doc)
{
    json_error_t je;
    *doc = json_loads(text, JSON_ALLOW_NUL, &je); /* the gateway refuses NULs sooner */
    cr_assert_not_null(*doc, "%s", je.text);
    return sm_gw_job_parse(*doc, &paths, inline_image, j, err);
}

Test(gateway, a_full_job_document)
{
    cr_assert_geq(sodium_init(), 0);
    sm_gw_job j;
    sm_err err;
    json_t *doc;
    int rc = parse("{\"name\": \"n\", \"model\": \"" HASH "\", \"dataset\": \"data/mnist/test\","
                   " \"methods\": [\"sal\", \"lime\"], \"limit\": 6, \"seed\": 7, \"batch\": 16,"
                   " \"target\": \"label\", \"score\": \"prob\", \"metrics\": false, \"png\": false,"
                   " \"scale\": \"job\", \"config\": \"input: x\\n\","
                   " \"metric_params\": {\"faithfulness_subsets\": 50, \"sensitivity_radius\": 0.5},"
                   " \"params\": {\"lime\": {\"samples\": 1000, \"kernel_width\": 0.25,"
                   " \"segmenter\": \"slic\", \"positive\": true}, \"sal\": null},"
                   " \"models\": {\"aae\": \"" HASH "\"}}",
                   0, &j, &err, &doc);
    cr_assert_eq(rc, 0, "%s", err.msg);
    const sm_client_job *c = &j.job;
    cr_assert_str_eq(c->model_hash, HASH);
    cr_assert_str_eq(c->name, "n");
    cr_assert_str_eq(c->dataset, "data/mnist/test");
    cr_assert_eq(c->n_methods, 2);
    cr_assert_str_eq(c->methods[1], "lime");
    cr_assert_eq(c->limit, 6);
    cr_assert_eq(c->seed, 7);
    cr_assert_eq(c->batch, 16);
    cr_assert_str_eq(c->target, "label");
    cr_assert_str_eq(c->score, "prob");
    cr_assert_eq(c->metrics, 0);
    cr_assert_eq(c->no_png, 1);
    cr_assert_str_eq(c->scale, "job");
    cr_assert_str_eq(c->config_text, "input: x\n");
    cr_assert_eq(c->faithfulness_subsets, 50);
    cr_assert_float_eq(c->sensitivity_radius, 0.5, 0);
    cr_assert_eq(c->n_settings, 4);
    cr_assert_str_eq(c->settings[0], "lime.samples=1000");
    cr_assert_str_eq(c->settings[1], "lime.kernel_width=0.25");
    cr_assert_str_eq(c->settings[2], "lime.segmenter=slic");
    cr_assert_str_eq(c->settings[3], "lime.positive=true");
    cr_assert_eq(c->n_aux, 1);
    cr_assert_str_eq(c->aux_names[0], "aae");
    cr_assert_str_eq(c->aux_hashes[0], HASH);
    /* out/gw/ and 16 hex digits */
    cr_assert_eq(strlen(c->out), strlen("out/gw/") + 16, "%s", c->out);
    cr_assert_eq(strncmp(c->out, "out/gw/", 7), 0);
    cr_assert_eq(strspn(c->out + 7, "0123456789abcdef"), 16);
    sm_gw_job_free(&j);
    json_decref(doc);
}

Test(gateway, images_inline_and_defaults)
{
    cr_assert_geq(sodium_init(), 0);
    sm_gw_job j;
    sm_err err;
    json_t *doc;
    /* "aGVsbG8=" is base64 of "hello", "AAEC" of 00 01 02 */
    cr_assert_eq(parse("{\"model\": \"" HASH "\", \"methods\": [\"sal\"], \"images\": ["
                       "{\"id\": \"a/7\", \"label\": \"7\", \"data\": \"aGVsbG8=\"},"
                       "{\"id\": \"b\", \"data\": \"AAEC\"}]}", 0, &j, &err, &doc), 0, "%s", err.msg);
    cr_assert_eq(j.job.n_images, 2);
    cr_assert_str_eq(j.job.images[0].id, "a/7");
    cr_assert_str_eq(j.job.images[0].label, "7");
    cr_assert_eq(j.job.images[0].len, 5);
    cr_assert_eq(memcmp(j.job.images[0].data, "hello", 5), 0);
    cr_assert_eq(j.job.images[1].len, 3);
    cr_assert_eq(memcmp(j.job.images[1].data, "\0\1\2", 3), 0);
    cr_assert_null(j.job.images[1].label);
    cr_assert_null(j.job.dataset);
    cr_assert_eq(j.job.metrics, 1); /* a job's defaults: metrics and PNGs on */
    cr_assert_eq(j.job.no_png, 0);
    sm_gw_job_free(&j);
    json_decref(doc);
    /* explain: one image, metrics and PNGs off unless asked for */
    cr_assert_eq(parse("{\"model\": \"" HASH "\", \"methods\": [\"sal\"], \"image\": \"aGVsbG8=\"}",
                       1, &j, &err, &doc), 0, "%s", err.msg);
    cr_assert_eq(j.job.n_images, 1);
    cr_assert_str_eq(j.job.images[0].id, "image");
    cr_assert_eq(j.job.images[0].len, 5);
    cr_assert_eq(j.job.metrics, 0);
    cr_assert_eq(j.job.no_png, 1);
    sm_gw_job_free(&j);
    json_decref(doc);
}

static void refused(const char *text, int inline_image, const char *want)
{
    sm_gw_job j;
    sm_err err;
    json_t *doc;
    cr_assert_eq(parse(text, inline_image, &j, &err, &doc), -1, "accepted: %s", text);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
    sm_gw_job_free(&j);
    json_decref(doc);
}

Test(gateway, bad_documents_name_the_key)
{
#define M "\"model\": \"" HASH "\", "
    static const struct {
        const char *text;
        int inline_image;
        const char *want;
    } cases[] = {
        {"[1]", 0, "must be a JSON object"},
        {"{\"methods\": [\"sal\"], \"dataset\": \"data/mnist\"}", 0, "model: required"},
        {"{\"model\": \"D5100F\", \"methods\": [\"sal\"]}", 0, "model: 'D5100F' is not a model hash"},
        {"{" M "\"dataset\": \"data/mnist\"}", 0, "methods: required"},
        {"{" M "\"methods\": [], \"dataset\": \"data/mnist\"}", 0, "methods: must be a non-empty"},
        {"{" M "\"methods\": [\"a.b\"], \"dataset\": \"data/mnist\"}", 0, "methods[0]"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"out\": \"/tmp\"}", 0, "out: the gateway chooses"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"outt\": 1}", 0, "unknown key 'outt'"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"image\": \"aGVsbG8=\"}", 0, "unknown key 'image'"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\"}", 1, "unknown key 'dataset'"},
        {"{" M "\"methods\": [\"sal\"]}", 0, "dataset or images: one of them"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnistx\"}", 0, "not under a folder"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"/data/mnist\"}", 0, "not under a folder"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist/../../etc\"}", 0, "not under a folder"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"images\": []}", 0, "give one of them, not both"},
        {"{" M "\"methods\": [\"sal\"], \"images\": [{\"id\": \"../a\", \"data\": \"AAEC\"}]}", 0, "images[0].id"},
        {"{" M "\"methods\": [\"sal\"], \"images\": [{\"id\": \"a\", \"data\": \"!!\"}]}", 0, "images[0]: data: not base64"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"limit\": -1}", 0, "limit:"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"batch\": 0}", 0, "batch: must be an integer in 1..65536"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"metrics\": 1}", 0, "metrics: must be true or false"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"name\": \"a\\u0000b\"}", 0, "name: holds a NUL"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"params\": {\"lime\": {}}}", 0, "params: lime is not in methods"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"params\": {\"sal\": {\"k\": []}}}", 0, "params.sal.k: must be a string, number or boolean"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"metric_params\": {\"x\": 1}}", 0, "metric_params: unknown key 'x'"},
        {"{" M "\"methods\": [\"sal\"], \"dataset\": \"data/mnist\", \"models\": {\"A\": \"" HASH "\"}}", 0, "models: 'A' is not a name"},
        {"{" M "\"methods\": [\"sal\"]}", 1, "image: required"},
    };
#undef M
    cr_assert_geq(sodium_init(), 0);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        refused(cases[k].text, cases[k].inline_image, cases[k].want);
}

Test(gateway, paths_a_client_may_name)
{
    cr_assert(sm_gw_path_safe("0/0_0004/sal.npy"));
    cr_assert(sm_gw_path_safe("a b/c.json"));
    cr_assert_not(sm_gw_path_safe(""));
    cr_assert_not(sm_gw_path_safe("/etc/passwd"));
    cr_assert_not(sm_gw_path_safe("a/../b"));
    cr_assert_not(sm_gw_path_safe(".."));
    cr_assert_not(sm_gw_path_safe("a\\b"));
    cr_assert_not(sm_gw_path_safe("a\nb"));
    cr_assert_not(sm_gw_path_safe("a\x7f"));
}

Test(gateway, base64_and_status)
{
    cr_assert_geq(sodium_init(), 0);
    char *s = sm_gw_base64("hello", 5);
    cr_assert_str_eq(s, "aGVsbG8=");
    free(s);
    sm_client_status st = {.job = "j1", .state = "running", .images = 6, .maps_total = 12,
                           .maps_done = 5, .maps_failed = 1, .seconds = 3, .rate = 2};
    json_t *o = sm_gw_status_json(&st);
    cr_assert_not_null(o);
    /* (12 - 5 - 1) maps at 2 a second */
    cr_assert_float_eq(json_real_value(json_object_get(o, "eta_seconds")), 3.0, 1e-12);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(o, "maps"), "failed")), 1);
    cr_assert_null(json_object_get(o, "error"));
    json_decref(o);
    strcpy(st.state, "queued");
    o = sm_gw_status_json(&st);
    cr_assert(json_is_null(json_object_get(o, "eta_seconds")));
    json_decref(o);
    strcpy(st.state, "failed");
    strcpy(st.error, "model: bad");
    o = sm_gw_status_json(&st);
    cr_assert_str_eq(json_string_value(json_object_get(o, "error")), "model: bad");
    json_decref(o);
}

static const char *no_query(void *u, const char *key)
{
    (void)u, (void)key;
    return NULL;
}

/* The answer to METHOD PATH with body, from a gateway whose broker is
 * never reached: *code_out gets the error code. */
static int answer(const char *method, const char *path, const char *type, const char *body,
                  char *code_out, size_t cap)
{
    void *ctx = zmq_ctx_new();
    sm_gw_api a = {.zmq_ctx = ctx, .broker = "inproc://nobody", .timeout = 1, .paths = paths};
    sm_gw_request rq = {method, path, no_query, NULL, type, (const uint8_t *)body,
                        body ? strlen(body) : 0};
    sm_gw_reply rp;
    sm_gw_api_handle(&a, &rq, &rp);
    json_t *doc = json_loadb(rp.body, rp.len, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %.*s", (int)rp.len, rp.body);
    const char *code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    cr_assert(code && msg && msg[0], "%.*s", (int)rp.len, rp.body);
    cr_assert_str_eq(rp.type, "application/json");
    snprintf(code_out, cap, "%s", code);
    json_decref(doc);
    free(rp.body);
    zmq_ctx_term(ctx);
    return rp.status;
}

Test(gateway, routes_refused_before_the_broker)
{
    cr_assert_geq(sodium_init(), 0);
    char code[64];
    cr_assert_eq(answer("POST", "/", NULL, NULL, code, sizeof code), 405);
    cr_assert_eq(answer("GET", "/index.html", NULL, NULL, code, sizeof code), 404);
    cr_assert_str_eq(code, "not_found");
    cr_assert_eq(answer("GET", "/v1/nothing", NULL, NULL, code, sizeof code), 404);
    cr_assert_eq(answer("PUT", "/v1/jobs", NULL, NULL, code, sizeof code), 405);
    cr_assert_str_eq(code, "method_not_allowed");
    cr_assert_eq(answer("GET", "/v1/models", NULL, NULL, code, sizeof code), 405);
    cr_assert_eq(answer("GET", "/v1/jobs/j1/cancel", NULL, NULL, code, sizeof code), 405);
    cr_assert_eq(answer("GET", "/v1/jobs/a.b", NULL, NULL, code, sizeof code), 404);
    cr_assert_eq(answer("GET", "/v1/jobs/j1/other", NULL, NULL, code, sizeof code), 404);
    cr_assert_eq(answer("GET", "/v1/jobs/j1/maps/../x.npy", NULL, NULL, code, sizeof code), 400);
    cr_assert_str_eq(code, "bad_path");
    cr_assert_eq(answer("GET", "/v1/jobs/j1/maps//etc/passwd", NULL, NULL, code, sizeof code), 400);
    cr_assert_eq(answer("POST", "/v1/jobs", "application/json", "{\"a\": ", code, sizeof code), 400);
    cr_assert_str_eq(code, "malformed_json");
    cr_assert_eq(answer("POST", "/v1/jobs", "application/json", "{\"a\": 1, \"a\": 2}", code,
                        sizeof code), 400);
    cr_assert_str_eq(code, "malformed_json");
    cr_assert_eq(answer("POST", "/v1/jobs", "application/json", "{\"model\": 1}", code, sizeof code),
                 400);
    cr_assert_str_eq(code, "invalid_job");
    cr_assert_eq(answer("POST", "/v1/models", NULL, NULL, code, sizeof code), 400);
    cr_assert_str_eq(code, "empty_body");
    cr_assert_eq(answer("POST", "/v1/explain", "image/png", "\x89PNG", code, sizeof code), 400);
    cr_assert_str_eq(code, "invalid_job"); /* no ?model=&methods= */
}

Test(gateway, errors_are_json_whatever_the_bytes)
{
    sm_gw_reply rp = {0};
    sm_gw_reply_error(&rp, 400, "bad_path", "'%s': no", "a\xff\"b");
    json_t *doc = json_loadb(rp.body, rp.len, 0, NULL);
    cr_assert_not_null(doc, "%s", rp.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "error"), "message")),
                     "'a?\"b': no");
    cr_assert_eq(rp.status, 400);
    json_decref(doc);
    free(rp.body);
}
