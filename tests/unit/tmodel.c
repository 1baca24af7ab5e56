#include "tmodel.h"

#include <criterion/criterion.h>
#include <math.h>
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
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(wr, len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_onnx_writer_destroy(&wr);
    return buf;
}

sm_model *tmodel_linear(const sm_tensor *w, const sm_tensor *b, int64_t c,
                        int64_t h, int64_t wd)
{
    size_t len;
    sm_err err = {0};
    unsigned char *buf = tmodel_linear_bytes(w, b, c, h, wd, &len);
    sm_model *m = sm_model_load_buffer(buf, len, "linear.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    return m;
}

sm_model *tmodel_cells(int64_t s, int cells, int k, const float *weight,
                       const float *bias)
{
    cr_assert(s % cells == 0);
    int64_t side = s / cells, hw = s * s;
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){k, hw});
    sm_tensor *b = bias ? sm_tensor_new(1, (int64_t[]){k}) : NULL;
    cr_assert(w && (b || !bias));
    for (int i = 0; i < k; i++) {
        for (int64_t r = 0; r < s; r++)
            for (int64_t q = 0; q < s; q++)
                w->data[i * hw + r * s + q] =
                    weight[i * cells * cells + (r / side) * cells + q / side];
        if (b)
            b->data[i] = bias[i];
    }
    sm_model *m = tmodel_linear(w, b, 1, s, s);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&b);
    return m;
}

sm_tensor *tmodel_ones(int64_t n, int64_t c, int64_t h, int64_t w)
{
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){n, c, h, w});
    cr_assert_not_null(x);
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = 1;
    return x;
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

/* The "key=value" settings (NULL-ended) into e: 0, or -1 with the
 * message of the first refused. */
static int set_all(sm_explainer *e, const char *const *set, sm_err *err)
{
    for (int i = 0; set && set[i]; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s", set[i]);
        char *eq = strchr(kv, '=');
        cr_assert_not_null(eq, "setting '%s' is not key=value", set[i]);
        *eq = '\0';
        if (sm_explainer_set(e, kv, eq + 1, err))
            return -1;
    }
    return 0;
}

int tmodel_explain(const char *name, const char *const *set,
                   const sm_explain_ctx *ctx, const sm_tensor *x,
                   const int *target, const char *const *ids, float *maps,
                   sm_explain_out *out, sm_err *err)
{
    sm_explainer *e = sm_explainer_new(name, err);
    cr_assert_not_null(e, "%s", err->msg);
    if (set_all(e, set, err)) {
        sm_explainer_destroy(&e);
        return -1;
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

void tmodel_concat(const char **set, int cap, const char *const *a,
                   const char *const *b)
{
    int k = 0;
    for (int l = 0; l < 2; l++)
        for (const char *const *p = l ? b : a; p && *p; p++) {
            cr_assert_lt(k + 1, cap, "more than %d settings", cap - 1);
            set[k++] = *p;
        }
    set[k] = NULL;
}

sm_explainer *tmodel_explainer(const char *name, const char *const *set)
{
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new(name, &err);
    cr_assert_not_null(e, "%s", err.msg);
    cr_assert_eq(set_all(e, set, &err), 0, "%s", err.msg);
    return e;
}

const sm_record_array *tmodel_array(const sm_record *r, const char *name)
{
    for (size_t i = 0; i < r->n_arrays; i++)
        if (strcmp(r->arrays[i].name, name) == 0)
            return &r->arrays[i];
    return NULL;
}

double tmodel_jnum(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    cr_assert_not_null(p, "%s missing: %s", key, json);
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    cr_assert(end != p, "%s is not a number: %s", key, json);
    return v;
}

void tmodel_grid_segments(const sm_record *r, int h, int w, int cells)
{
    cr_assert(h % cells == 0 && w % cells == 0);
    const sm_record_array *a = tmodel_array(r, "segments");
    cr_assert_not_null(a);
    cr_assert(a->ndim == 2 && a->shape[0] == h && a->shape[1] == w);
    for (int y = 0; y < h; y++)
        for (int q = 0; q < w; q++)
            cr_assert_eq(a->data[y * w + q],
                         (float)((y / (h / cells)) * cells + q / (w / cells)),
                         "segment of pixel %d,%d", y, q);
}

void tmodel_same_out(const sm_explain_out *a, const float *amap,
                     const sm_explain_out *b, const float *bmap, int64_t hw,
                     const char *what)
{
    cr_assert(memcmp(amap, bmap, sizeof(float) * (size_t)hw) == 0,
              "%s: maps differ", what);
    cr_assert_eq(a->evals, b->evals, "%s", what);
    cr_assert(a->score == b->score, "%s: scores differ", what);
    cr_assert_str_eq(sm_record_json(&a->record), sm_record_json(&b->record),
                     "%s", what);
    cr_assert_eq(a->record.n_arrays, b->record.n_arrays, "%s", what);
    for (size_t i = 0; i < a->record.n_arrays; i++) {
        const sm_record_array *x = &a->record.arrays[i],
                              *y = &b->record.arrays[i];
        cr_assert_str_eq(x->name, y->name, "%s", what);
        cr_assert_eq(x->ndim, y->ndim);
        cr_assert(memcmp(x->shape, y->shape, sizeof x->shape) == 0, "%s: %s",
                  what, x->name);
        cr_assert(memcmp(x->data, y->data,
                         sizeof(float) *
                             (size_t)sm_record_array_count(x)) == 0,
                  "%s: array %s differs", what, x->name);
    }
}

int tmodel_by_rounds(sm_explainer *e, const sm_explain_ctx *ctx,
                     const sm_explain_image *im, int classes,
                     sm_explain_out *out, int64_t *rows)
{
    sm_err err = {0};
    sm_explain_rounds *rd = sm_explain_rounds_new(e, ctx, im, NULL, 0, &err);
    cr_assert_not_null(rd, "%s", err.msg);
    int rounds = 0;
    int64_t total = 0;
    while (sm_explain_rounds_n(rd) > 0) {
        int64_t n = sm_explain_rounds_n(rd), half = n / 2;
        rounds++;
        total += n;
        cr_assert_eq(sm_explain_rounds_round(rd), rounds);
        sm_text st = {0};
        cr_assert_eq(sm_explain_rounds_encode(rd, &st, &err), 0, "%s",
                     err.msg);
        sm_explain_rounds_destroy(&rd);
        double *y = malloc(sizeof(double) * (size_t)n);
        cr_assert_not_null(y);
        const int64_t first[2] = {half, 0}, count[2] = {n - half, half};
        for (int k = 0; k < 2; k++) {
            sm_explain_rounds *ck = sm_explain_rounds_new(
                e, ctx, im, (const uint8_t *)st.s, st.len, &err);
            cr_assert_not_null(ck, "round %d: %s", rounds, err.msg);
            cr_assert_eq(sm_explain_rounds_n(ck), n);
            cr_assert_eq(sm_explain_rounds_score(ck, first[k], count[k],
                                                 y + first[k], &err),
                         0, "%s", err.msg);
            sm_explain_rounds_destroy(&ck);
        }
        for (int64_t i = 0; i < n; i++)
            cr_assert(y[i] >= 0 && y[i] < classes && y[i] == floor(y[i]),
                      "row %ld: %g is not a class", (long)i, y[i]);
        rd = sm_explain_rounds_new(e, ctx, im, (const uint8_t *)st.s, st.len,
                                   &err);
        cr_assert_not_null(rd, "%s", err.msg);
        cr_assert_eq(sm_explain_rounds_update(rd, y, n, &err), 0, "%s",
                     err.msg);
        free(y);
        sm_text_free(&st);
    }
    cr_assert_eq(sm_explain_rounds_finish(rd, out, &err), 0, "%s", err.msg);
    sm_explain_rounds_destroy(&rd);
    if (rows)
        *rows = total;
    return rounds;
}

int tmodel_runs_equal_rounds(const char *method, const char *const *set,
                             const sm_explain_ctx *ctx, const sm_tensor *x,
                             int target, const char *id, int classes,
                             int64_t *rows, int64_t *evals)
{
    int64_t hw = x->shape[2] * x->shape[3];
    float *m1 = malloc(sizeof(float) * (size_t)hw * 3);
    cr_assert_not_null(m1);
    float *m2 = m1 + hw, *m3 = m2 + hw;
    sm_explain_out o1[1] = {0}, o2[1] = {0}, o3 = {.map = m3};
    sm_err err = {0};
    const char *const ids[] = {id};
    cr_assert_eq(tmodel_explain(method, set, ctx, x, &target, ids, m1, o1,
                                &err),
                 0, "%s", err.msg);
    cr_assert_eq(tmodel_explain(method, set, ctx, x, &target, ids, m2, o2,
                                &err),
                 0, "%s", err.msg);
    tmodel_same_out(o1, m1, o2, m2, hw, "run twice");
    sm_explainer *e = tmodel_explainer(method, set);
    sm_explain_image im = {x->data, x->shape[1], x->shape[2], x->shape[3],
                           target, id};
    int rounds = tmodel_by_rounds(e, ctx, &im, classes, &o3, rows);
    tmodel_same_out(o1, m1, &o3, m3, hw, "run and rounds");
    if (evals)
        *evals = o1[0].evals;
    sm_explain_out_free(o1, 1);
    sm_explain_out_free(o2, 1);
    sm_explain_out_free(&o3, 1);
    sm_explainer_destroy(&e);
    free(m1);
    return rounds;
}

void tmodel_bad_setting(const char *method, const char *key,
                        const char *value)
{
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new(method, &err);
    cr_assert_not_null(e, "%s", err.msg);
    cr_assert_eq(sm_explainer_set(e, key, value, &err), -1, "%s=%s accepted",
                 key, value);
    cr_assert(strstr(err.msg, key), "'%s' does not name %s", err.msg, key);
    cr_assert(strstr(err.msg, method), "'%s' does not name %s", err.msg,
              method);
    sm_explainer_destroy(&e);
}

/* State b (len bytes) refused by e with a message naming the method, the
 * image and want. */
static void refused(sm_explainer *e, const char *method,
                    const sm_explain_ctx *ctx, const sm_explain_image *im,
                    const uint8_t *b, size_t len, const char *want,
                    const char *what)
{
    sm_err err = {0};
    sm_explain_rounds *r = sm_explain_rounds_new(e, ctx, im, b, len, &err);
    cr_assert_null(r, "%s: accepted", what);
    cr_assert(strstr(err.msg, method) && strstr(err.msg, im->id),
              "%s: '%s'", what, err.msg);
    cr_assert(strstr(err.msg, want), "%s: '%s' lacks '%s'", what, err.msg,
              want);
}

/* The state b (len bytes, seen labels) with its labels changed: the
 * last `cut` dropped, then `add` labels of class 0 added; its count
 * set to the labels it holds when recount, else left. Into *out_len;
 * the caller frees it. */
static uint8_t *relabel(const uint8_t *b, size_t len, int64_t seen,
                        int64_t cut, int64_t add, int recount,
                        size_t *out_len)
{
    size_t labels = len - 4 * (size_t)seen;
    int64_t now = seen - cut + add;
    uint8_t *v = calloc(1, labels + 4 * (size_t)(now > seen ? now : seen));
    cr_assert_not_null(v);
    memcpy(v, b, labels + 4 * (size_t)(seen - cut));
    if (recount)
        memcpy(v + labels - 8, &now, 8);
    *out_len = labels + 4 * (size_t)now;
    return v;
}

/* The state's bytes: the rounds header (12), the segmentation (d, then
 * h x w superpixel ids, int32), the count of labels (int64) and every
 * label so far (int32). */
void tmodel_corrupt_states(sm_explainer *e, const char *method,
                           const sm_explain_ctx *ctx,
                           const sm_explain_image *im, int rounds, int d)
{
    sm_err err = {0};
    sm_explain_rounds *rd = sm_explain_rounds_new(e, ctx, im, NULL, 0, &err);
    cr_assert_not_null(rd, "%s", err.msg);
    int64_t seen = 0, last = 0;
    for (int k = 0; k < rounds; k++) {
        int64_t n = sm_explain_rounds_n(rd);
        cr_assert_gt(n, 0, "round %d", k + 1);
        double *y = malloc(sizeof(double) * (size_t)n);
        cr_assert_eq(sm_explain_rounds_score(rd, 0, n, y, &err), 0);
        cr_assert_eq(sm_explain_rounds_update(rd, y, n, &err), 0, "%s",
                     err.msg);
        free(y);
        seen += n;
        last = n;
    }
    /* a round of one row cut by one is no cut */
    cr_assert_gt(last, 1, "the last round has more than one row");
    cr_assert_gt(sm_explain_rounds_n(rd), 1);
    sm_text st = {0};
    cr_assert_eq(sm_explain_rounds_encode(rd, &st, &err), 0, "%s", err.msg);
    sm_explain_rounds_destroy(&rd);
    size_t head = 12 + 4 + 4 * (size_t)(im->h * im->w) + 8;
    cr_assert_eq(st.len, head + 4 * (size_t)seen);
    uint8_t *b = (uint8_t *)st.s;
    int64_t count;
    memcpy(&count, b + head - 8, 8);
    cr_assert_eq(count, seen);
    /* the bytes as they are: taken up */
    rd = sm_explain_rounds_new(e, ctx, im, b, st.len, &err);
    cr_assert_not_null(rd, "%s", err.msg);
    sm_explain_rounds_destroy(&rd);

    refused(e, method, ctx, im, b, st.len - 2, "labels of",
            "half a label cut");
    refused(e, method, ctx, im, b, head - 3, "labels of", "the count cut");
    static const struct {
        int64_t cut, add;
        int recount;
        const char *want, *what;
    } v[] = {
        {1, 0, 0, "the state counts", "one label cut"},
        {0, 1, 0, "the state counts", "one label more"},
        {-1, 0, 0, "the state counts", "the last round cut"},
        {1, 0, 1, "do not end a round", "one label cut, counted"},
        {0, 1, 1, "do not end a round", "one label more, counted"},
        {-2, 0, 1, "do not end a round", "a round but one label cut, counted"},
    };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        size_t len;
        int64_t cut = v[k].cut == -1 ? last
                      : v[k].cut == -2 ? last - 1
                                       : v[k].cut;
        uint8_t *c = relabel(b, st.len, seen, cut, v[k].add, v[k].recount,
                             &len);
        refused(e, method, ctx, im, c, len, v[k].want, v[k].what);
        free(c);
    }
    /* a count below zero */
    int64_t neg64 = -1;
    memcpy(b + head - 8, &neg64, 8);
    refused(e, method, ctx, im, b, st.len, "labels of", "a negative count");
    memcpy(b + head - 8, &count, 8);
    /* a negative label, last or first */
    int32_t neg = -1, keep, keep0;
    memcpy(&keep, b + st.len - 4, 4);
    memcpy(&keep0, b + head, 4);
    memcpy(b + st.len - 4, &neg, 4);
    refused(e, method, ctx, im, b, st.len, "not a class", "a negative label");
    memcpy(b + st.len - 4, &keep, 4);
    memcpy(b + head, &neg, 4);
    refused(e, method, ctx, im, b, st.len, "not a class",
            "a negative first label");
    memcpy(b + head, &keep0, 4);
    /* a superpixel id outside 0..d-1 (pixel 50's) */
    char want[32];
    snprintf(want, sizeof want, "superpixel %d", d);
    int32_t far = d, id;
    memcpy(&id, b + 16 + 4 * 50, 4);
    memcpy(b + 16 + 4 * 50, &far, 4);
    refused(e, method, ctx, im, b, st.len, want, "a superpixel id");
    memcpy(b + 16 + 4 * 50, &id, 4);
    /* restored, taken up again */
    rd = sm_explain_rounds_new(e, ctx, im, b, st.len, &err);
    cr_assert_not_null(rd, "%s", err.msg);
    sm_explain_rounds_destroy(&rd);
    sm_text_free(&st);
}
