/* libsalmap-client against strings longer than its fixed status fields:
 * a job it could not report whole is refused at submit, and a broker's
 * reply with such a string (a fake broker on inproc) fails with a message
 * naming the field, never cut short in silence. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "client/lib/salmap_client.h"
#include "schemas/msg.h"
#include "tdata.h"

TDATA_SUITE(client);

/* A string of n 'x'. */
static char *longstr(size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

static void submit_refused(sm_client *c, sm_client_job *job, const char *want)
{
    char id[SM_CLIENT_ID_MAX];
    cr_assert_eq(sm_client_submit(c, job, id), -1);
    cr_assert(tdata_has(sm_client_error(c), want), "'%s' not in: %s", want,
              sm_client_error(c));
}

Test(client, submit_refuses_what_a_status_cannot_hold)
{
    void *ctx = zmq_ctx_new();
    sm_client *c = sm_client_new_ctx(ctx, "inproc://nobody");
    cr_assert_not_null(c);
    const char *methods[] = {"grad"};
    char *out = longstr(1024), *name = longstr(128);
    sm_client_job job = {.model = "no-such.onnx", .out = out,
                         .methods = methods, .n_methods = 1};
    submit_refused(c, &job, "the output folder 'xxx");
    submit_refused(c, &job, "is 1024 bytes, longer than the 1023");
    job.out = "out";
    job.name = name;
    submit_refused(c, &job, "job: the name 'xxx");
    submit_refused(c, &job, "is 128 bytes, longer than the 127");
    /* at the limits they pass, to fail on the missing model instead */
    out[1023] = '\0';
    name[127] = '\0';
    job.out = out;
    submit_refused(c, &job, "no-such.onnx");
    free(out);
    free(name);
    sm_client_destroy(&c);
    zmq_ctx_term(ctx);
}

/* A broker that answers HAS (have), SUBMIT, STATUS and LIST with the
 * strings below, until its context is shut down. (No asserts here: they
 * belong to the test's thread; a wrong reply fails the client's call.) */
typedef struct fake {
    void *sock;
    const char *job_id, *out, *error;
} fake;

static void *fake_broker(void *arg)
{
    fake *fk = arg;
    sm_msg_limits lim;
    sm_msg_limits_default(&lim);
    for (;;) {
        sm_msg_frames f;
        sm_err err;
        if (sm_msg_recv(fk->sock, 1, 0, &f, &err))
            break; /* the context is shutting down */
        sm_msg_buf b = {0};
        sm_msg_status st = {.job = fk->job_id, .state = "failed",
                            .out = fk->out, .error = fk->error};
        sm_msg_list l = {.jobs = &st, .n = 1};
        const char *reply = f.command;
        if (!strcmp(f.command, "HAS")) {
            sm_msg_doc *doc = NULL;
            sm_msg_blob m;
            if (sm_msg_decode_blob(f.body, f.len, &lim, &doc, &m, &err) == 0) {
                sm_msg_blob r = {.hash = m.hash, .have = 1};
                sm_msg_encode_blob(&r, &b);
            }
            sm_msg_doc_destroy(&doc);
        } else if (!strcmp(f.command, "SUBMIT")) {
            reply = "SUBMITTED";
            sm_msg_encode_job_id(fk->job_id, &b);
        } else if (!strcmp(f.command, "STATUS")) {
            sm_msg_encode_status(&st, &b);
        } else {
            sm_msg_encode_list(&l, &b);
        }
        sm_msg_send(fk->sock, f.identity, f.identity_len, SM_PROTO_CLIENT,
                    reply, b.data, b.len);
        sm_msg_buf_free(&b);
        sm_msg_frames_free(&f);
    }
    return NULL;
}

/* Runs ask against a fake broker with those strings: ask's return, with
 * the client's message then in msg (SM_ERR_MAX bytes). */
static int with_fake(const char *job_id, const char *out, const char *error,
                     int (*ask)(sm_client *c), char *msg)
{
    void *ctx = zmq_ctx_new();
    fake fk = {zmq_socket(ctx, ZMQ_ROUTER), job_id, out, error};
    cr_assert_eq(zmq_bind(fk.sock, "inproc://fake"), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fake_broker, &fk), 0);
    sm_client *c = sm_client_new_ctx(ctx, "inproc://fake");
    cr_assert_not_null(c);
    sm_client_set_timeout(c, 5);
    int rc = ask(c);
    snprintf(msg, SM_ERR_MAX, "%s", sm_client_error(c));
    sm_client_destroy(&c);
    zmq_ctx_shutdown(ctx); /* ends the fake's recv */
    pthread_join(t, NULL);
    zmq_close(fk.sock);
    zmq_ctx_term(ctx);
    return rc;
}

static void refused(const char *job_id, const char *out, const char *error,
                    int (*ask)(sm_client *c), const char *want)
{
    char msg[SM_ERR_MAX];
    cr_assert_eq(with_fake(job_id, out, error, ask, msg), -1,
                 "accepted what it cannot hold (%s)", want);
    cr_assert(tdata_has(msg, want), "'%s' not in: %s", want, msg);
}

static sm_client_status got;

static int ask_status(sm_client *c)
{
    return sm_client_status_of(c, "j1", &got);
}

static int ask_list(sm_client *c)
{
    sm_client_status *all = NULL;
    size_t n = 7;
    int rc = sm_client_list(c, &all, &n);
    if (rc == 0)
        free(all);
    else
        cr_assert(!all && n == 0, "a failed list left %zu entries", n);
    return rc;
}

static char model[TDATA_PATH];

static int ask_submit(sm_client *c)
{
    const char *methods[] = {"grad"};
    sm_client_job job = {.model = model, .out = "out", .methods = methods,
                         .n_methods = 1};
    char id[SM_CLIENT_ID_MAX];
    return sm_client_submit(c, &job, id);
}

Test(client, replies_too_long_for_a_status_are_refused)
{
    char *big = longstr(1024), *id = longstr(SM_CLIENT_ID_MAX);
    refused("j1", big, NULL, ask_status,
            "STATUS: job j1: the output folder 'xxx");
    refused("j1", "out", big, ask_status, "STATUS: job j1: the error 'xxx");
    refused("j1", "out", big, ask_status, "is 1024 bytes, longer than the 1023");
    refused(id, "out", NULL, ask_status, "STATUS: the job id 'xxx");
    refused("j1", big, NULL, ask_list, "LIST: job j1: the output folder");
    tdata_text(model, dir, "m.onnx", "not read by the fake broker");
    refused(id, "out", NULL, ask_submit, "SUBMITTED: the job id 'xxx");
    free(big);
    free(id);
}

Test(client, replies_at_the_limits_come_whole)
{
    char *big = longstr(1023), *id = longstr(SM_CLIENT_ID_MAX - 1);
    char msg[SM_ERR_MAX];
    cr_assert_eq(with_fake(id, big, big, ask_status, msg), 0, "%s", msg);
    cr_assert_str_eq(got.job, id);
    cr_assert_str_eq(got.out, big);
    cr_assert_str_eq(got.error, big);
    cr_assert_eq(with_fake(id, big, big, ask_list, msg), 0, "%s", msg);
    free(big);
    free(id);
}
