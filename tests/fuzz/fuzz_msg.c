/* libFuzzer target for the wire decoders: the input as a body to
 * sm_mp_check and to every sm_msg_decode_* under small limits (so the
 * limits themselves are reached often). A body a decoder accepts must
 * encode again and the encoding must decode again: an accepted message
 * that our own encoder turns into something refused would break the
 * broker's replies. `make fuzz` builds it, `make fuzz-run` runs it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mp.h"
#include "schemas/msg.h"

static const sm_msg_limits small = {
    .max_body = 1 << 16, .max_items = 64, .max_depth = 8, .max_string = 512,
    .max_total = 1024,
};

static void fail(const char *what, const sm_err *err)
{
    fprintf(stderr, "fuzz_msg: %s: %s\n", what, err->msg);
    abort();
}

/* Re-encoding went through and decodes again (with default limits: an
 * encoding may be longer than its input, e.g. float32 -> float64). */
#define AGAIN(name, encode, decode_fn, type)                                   \
    do {                                                                       \
        sm_msg_buf b_ = {0};                                                   \
        sm_msg_doc *d2_ = NULL;                                                \
        type m2_;                                                              \
        if (encode)                                                            \
            fail(name ": encode", &err);                                       \
        if (decode_fn(b_.data, b_.len, NULL, &d2_, &m2_, &err))                \
            fail(name ": decode of the encoding", &err);                       \
        sm_msg_doc_destroy(&d2_);                                              \
        sm_msg_buf_free(&b_);                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_err err = {0};
    sm_msg_doc *doc = NULL;
    sm_mp_check(data, size, &small, &err);

    sm_msg_job job;
    if (!sm_msg_decode_job(data, size, &small, &doc, &job, &err))
        AGAIN("job", sm_msg_encode_job(&job, &b_), sm_msg_decode_job,
              sm_msg_job);
    sm_msg_doc_destroy(&doc);

    sm_msg_status st;
    if (!sm_msg_decode_status(data, size, &small, &doc, &st, &err))
        AGAIN("status", sm_msg_encode_status(&st, &b_), sm_msg_decode_status,
              sm_msg_status);
    sm_msg_doc_destroy(&doc);

    sm_msg_list list;
    if (!sm_msg_decode_list(data, size, &small, &doc, &list, &err))
        AGAIN("list", sm_msg_encode_list(&list, &b_), sm_msg_decode_list,
              sm_msg_list);
    sm_msg_doc_destroy(&doc);

    sm_msg_blob blob;
    if (!sm_msg_decode_blob(data, size, &small, &doc, &blob, &err))
        AGAIN("blob", sm_msg_encode_blob(&blob, &b_), sm_msg_decode_blob,
              sm_msg_blob);
    sm_msg_doc_destroy(&doc);

    sm_msg_files files;
    if (!sm_msg_decode_files(data, size, &small, &doc, &files, &err))
        AGAIN("files", sm_msg_encode_files(&files, &b_), sm_msg_decode_files,
              sm_msg_files);
    sm_msg_doc_destroy(&doc);

    sm_msg_error e;
    if (!sm_msg_decode_error(data, size, &small, &doc, &e, &err))
        AGAIN("error", sm_msg_encode_error(&e, &b_), sm_msg_decode_error,
              sm_msg_error);
    sm_msg_doc_destroy(&doc);

    sm_msg_ready ready;
    if (!sm_msg_decode_ready(data, size, &small, &doc, &ready, &err))
        AGAIN("ready", sm_msg_encode_ready(&ready, &b_), sm_msg_decode_ready,
              sm_msg_ready);
    sm_msg_doc_destroy(&doc);

    sm_msg_task task;
    if (!sm_msg_decode_task(data, size, &small, &doc, &task, &err))
        AGAIN("task", sm_msg_encode_task(&task, &b_), sm_msg_decode_task,
              sm_msg_task);
    sm_msg_doc_destroy(&doc);

    sm_msg_result res;
    if (!sm_msg_decode_result(data, size, &small, &doc, &res, &err))
        AGAIN("result", sm_msg_encode_result(&res, &b_),
              sm_msg_decode_result, sm_msg_result);
    sm_msg_doc_destroy(&doc);

    const char *id;
    if (!sm_msg_decode_job_id(data, size, &small, &doc, &id, &err)) {
        sm_msg_buf b = {0};
        sm_msg_doc *d2 = NULL;
        if (sm_msg_encode_job_id(id, &b) ||
            sm_msg_decode_job_id(b.data, b.len, NULL, &d2, &id, &err))
            fail("job_id", &err);
        sm_msg_doc_destroy(&d2);
        sm_msg_buf_free(&b);
    }
    sm_msg_doc_destroy(&doc);

    sm_msg_decode_empty(data, size, &small, &err);
    return 0;
}
