#include "tmodel.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/writer.h"
#include "util/rng.h"

unsigned char *tmodel_linear_bytes(const sm_tensor *w, const sm_tensor *b,
                                   int64_t c, int64_t h, int64_t wd,
                                   size_t *len)
{
    int64_t k = w->shape[0];
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, (int64_t[]){-1, c, h, wd});
    sm_onnx_writer_initializer(wr, "w", w);
    if (b)
        sm_onnx_writer_initializer(wr, "b", b);
    sm_onnx_writer_node(wr, "Flatten", "f", (const char *[]){"x"}, 1,
                        (const char *[]){"flat"}, 1);
    sm_onnx_writer_node(wr, "Gemm", "fc", (const char *[]){"flat", "w", "b"},
                        b ? 3 : 2, (const char *[]){"logits"}, 1);
    sm_onnx_writer_attr_int(wr, "transB", 1);
    sm_onnx_writer_output(wr, "logits", 2, (int64_t[]){-1, k});
    sm_err err = {{0}};
    unsigned char *buf = sm_onnx_writer_serialize(wr, len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_onnx_writer_destroy(&wr);
    return buf;
}

sm_model *tmodel_linear(const sm_tensor *w, const sm_tensor *b, int64_t c,
                        int64_t h, int64_t wd)
{
    size_t len;
    sm_err err = {{0}};
    unsigned char *buf = tmodel_linear_bytes(w, b, c, h, wd, &len);
    sm_model *m = sm_model_load_buffer(buf, len, "linear.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    return m;
}

sm_tensor *tmodel_images(int64_t n, int64_t c, int64_t h, int64_t w,
                         uint64_t key)
{
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){n, c, h, w});
    cr_assert_not_null(x);
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = (float)sm_rng_uniform(key, (uint64_t)i);
    return x;
}

int tmodel_explain(const char *name, const char *const *set,
                   const sm_explain_ctx *ctx, const sm_tensor *x,
                   const int *target, const char *const *ids, float *maps,
                   sm_explain_out *out, sm_err *err)
{
    sm_explainer *e = sm_explainer_new(name, err);
    cr_assert_not_null(e, "%s", err->msg);
    for (int i = 0; set && set[i]; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s", set[i]);
        char *eq = strchr(kv, '=');
        cr_assert_not_null(eq, "setting '%s' is not key=value", set[i]);
        *eq = '\0';
        if (sm_explainer_set(e, kv, eq + 1, err)) {
            sm_explainer_destroy(&e);
            return -1;
        }
    }
    int64_t n = x->shape[0], hw = x->shape[2] * x->shape[3];
    for (int64_t i = 0; i < n; i++)
        out[i].map = maps + i * hw;
    sm_explain_batch b = {x, target, ids};
    sm_explain_out_free(out, n); /* a test may run into the same out again */
    int rc = sm_explainer_run(e, ctx, &b, out, err);
    sm_explainer_destroy(&e);
    return rc;
}
