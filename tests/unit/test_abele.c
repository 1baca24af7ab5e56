/* ABELE (core/explain/abele.c) on an autoencoder made by hand, whose
 * answers are known: images are 1 x 8 x 8, latents 2-dimensional.
 *
 *   encoder:       z0 = the mean of the image's pixels in [-1, 1] (t),
 *                  z1 = 0
 *   decoder:       every pixel t = tanh(A z0), A = 0.5
 *   discriminator: validity = sigmoid(10 (1.5 - z1)): valid iff z1 < 1.5
 *   classifier:    logit0 = 32, logit1 = the sum of the 64 pixels of the
 *                  model input (pixel / 255): label 1 iff t > 0, i.e.
 *                  iff z0 > 0 (a tie at 0 goes to class 0)
 *
 * So the latent tree must split on z0 near 0 alone; exemplars (label 1)
 * have z0 > 0, counter-exemplars z0 <= 0; an exemplar's image is uniform,
 * its difference from x one value, so no knee cuts it and the saliency S
 * is the median of those values: all checked here from the latents the
 * record gives, with the model asked here. Then: a run is the same twice
 * and as its rounds driven as the pipeline drives them; a job finds its
 * autoencoder or says which file it looked for; bad settings and missing
 * models are refused by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/aae_config.h"
#include "explain/abele_aae.h"
#include "explain/explainer.h"
#include "onnx/writer.h"
#include "tdata.h"
#include "tmodel.h"

TDATA_SUITE(abele);

#define S 8
#define HW (S * S)
#define A 0.5f

static const char *const id1[] = {"img/a"};
static const char *const small[] = {"samples=200",        "generations=4",
                                    "exemplars=20",       "counter_exemplars=20",
                                    "internal_batch=64",  NULL};

/* A graph of input `in` (rank 2 of width n_in, or the 1 x S x S image)
 * through Gemm(W [n_out, n_in], b) and then `tail` ("Tanh" plus the
 * reshape to the image, "Sigmoid" beside the logit, or NULL), as bytes. */
static unsigned char *graph(const char *in, int image_in, int n_in, int n_out,
                            const float *w, const float *b, const char *tail,
                            const char *out, size_t *len)
{
    sm_onnx_writer *g = sm_onnx_writer_new(13);
    cr_assert_not_null(g);
    int rc = image_in
                 ? sm_onnx_writer_input(g, in, 4, (int64_t[]){-1, 1, S, S})
                 : sm_onnx_writer_input(g, in, 2, (int64_t[]){-1, n_in});
    sm_tensor *W = sm_tensor_new(2, (int64_t[]){n_out, n_in});
    sm_tensor *B = sm_tensor_new(1, (int64_t[]){n_out});
    memcpy(W->data, w, sizeof(float) * (size_t)(n_out * n_in));
    memcpy(B->data, b, sizeof(float) * (size_t)n_out);
    rc |= sm_onnx_writer_initializer(g, "w", W) |
          sm_onnx_writer_initializer(g, "b", B);
    const char *x = in;
    if (image_in) {
        rc |= sm_onnx_writer_node(g, "Flatten", "flat", (const char *[]){in},
                                  1, (const char *[]){"flat"}, 1) |
              sm_onnx_writer_attr_int(g, "axis", 1);
        x = "flat";
    }
    int plain = !tail;
    rc |= sm_onnx_writer_node(g, "Gemm", "fc", (const char *[]){x, "w", "b"},
                              3, (const char *[]){plain ? out : "fc"}, 1) |
          sm_onnx_writer_attr_int(g, "transB", 1);
    if (tail && !strcmp(tail, "Tanh")) {
        int64_t dims[4] = {-1, 1, S, S};
        sm_tensor shape = {.ndim = 1, .shape = {4}, .i64 = dims};
        rc |= sm_onnx_writer_initializer(g, "shape", &shape) |
              sm_onnx_writer_node(g, "Tanh", "tanh", (const char *[]){"fc"}, 1,
                                  (const char *[]){"t"}, 1) |
              sm_onnx_writer_node(g, "Reshape", "reshape",
                                  (const char *[]){"t", "shape"}, 2,
                                  (const char *[]){out}, 1) |
              sm_onnx_writer_output(g, out, 4, (int64_t[]){-1, 1, S, S});
    } else if (tail) {
        rc |= sm_onnx_writer_node(g, "Sigmoid", "sig", (const char *[]){"fc"},
                                  1, (const char *[]){out}, 1) |
              sm_onnx_writer_output(g, out, 2, (int64_t[]){-1, n_out});
    } else {
        rc |= sm_onnx_writer_output(g, out, 2, (int64_t[]){-1, n_out});
    }
    cr_assert_eq(rc, 0);
    sm_err err;
    unsigned char *bytes = sm_onnx_writer_serialize(g, len, &err);
    cr_assert_not_null(bytes, "%s", err.msg);
    sm_onnx_writer_destroy(&g);
    sm_tensor_destroy(&W);
    sm_tensor_destroy(&B);
    return bytes;
}

/* The three nets of the hand-made autoencoder as bytes: [0] encoder, [1]
 * decoder, [2] discriminator. */
static unsigned char *net_bytes(int part, size_t *len)
{
    float w[2 * HW] = {0}, b[HW] = {0};
    if (part == 0) {
        for (int q = 0; q < HW; q++)
            w[q] = 1.0f / HW; /* z0 = mean(t), z1 = 0 */
        return graph("image", 1, HW, 2, w, b, NULL, "z", len);
    }
    if (part == 1) {
        for (int q = 0; q < HW; q++)
            w[q * 2] = A; /* pixel q = tanh(A z0) */
        return graph("z", 0, 2, HW, w, b, "Tanh", "image", len);
    }
    w[1] = -10, b[0] = 15; /* 10 (1.5 - z1) */
    return graph("z", 0, 2, 1, w, b, "Sigmoid", "validity", len);
}

typedef struct rig {
    sm_model *cls, *net[3];
    sm_explain_aux aux[3];
    sm_preproc pp;
    sm_explain_ctx ctx;
    sm_tensor *x;
} rig;

static void rig_open(rig *r, float value)
{
    sm_err err;
    static const char *const names[3] = {"aae_encoder", "aae_decoder",
                                         "aae_discriminator"};
    for (int p = 0; p < 3; p++) {
        size_t len;
        unsigned char *b = net_bytes(p, &len);
        r->net[p] = sm_model_load_buffer(b, len, names[p], &err);
        free(b);
        cr_assert_not_null(r->net[p], "%s", err.msg);
        r->aux[p] = (sm_explain_aux){names[p], r->net[p]};
    }
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){2, HW});
    sm_tensor *b = sm_tensor_new(1, (int64_t[]){2});
    for (int q = 0; q < HW; q++)
        w->data[q] = 0, w->data[HW + q] = 1;
    b->data[0] = HW / 2.0f, b->data[1] = 0;
    r->cls = tmodel_linear(w, b, 1, S, S);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&b);
    sm_preproc_init(&r->pp, 1, S, S);
    r->ctx = (sm_explain_ctx){r->cls, 0, 0, 1, 42, r->aux, 3, &r->pp};
    r->x = sm_tensor_new(4, (int64_t[]){1, 1, S, S});
    for (int q = 0; q < HW; q++)
        r->x->data[q] = value;
}

static void rig_close(rig *r)
{
    for (int p = 0; p < 3; p++)
        sm_model_destroy(&r->net[p]);
    sm_model_destroy(&r->cls);
    sm_tensor_destroy(&r->x);
}

/* The classifier's label of the decoded latent z0, computed here: the
 * model's logit1 - logit0 = 64 (t + 1) / 2 - 32 = 32 t. */
static int label_of(float z0)
{
    return tanhf(A * z0) > 0;
}

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

Test(abele, hand_made_autoencoder_gives_the_known_rule_and_maps)
{
    rig r;
    rig_open(&r, 0.8f); /* t = 0.6: z0 = 0.6, label 1 */
    float map[HW];
    sm_explain_out out = {0};
    sm_err err;
    int target = 1;
    cr_assert_eq(tmodel_explain("abele", small, &r.ctx, r.x, &target, id1,
                                map, &out, &err), 0, "%s", err.msg);
    const char *json = sm_record_json(&out.record);
    cr_assert_geq(tmodel_jnum(json, "fidelity"), 0.99, "%s", json);
    cr_assert_eq(tmodel_jnum(json, "rule_length"), 1, "%s", json);
    const sm_record_array *box = tmodel_array(&out.record, "rule_bounds");
    cr_assert_not_null(box);
    cr_assert(box->data[0] > -0.3f && box->data[0] < 0.3f,
              "z0 > %g", box->data[0]);
    cr_assert(isinf(box->data[1]) && isinf(box->data[2]) &&
              isinf(box->data[3]), "only z0 from below: %s", json);

    /* exemplars: in the box, valid, labelled 1; counter-exemplars: valid,
     * labelled 0; counterfactuals move z_x to a latent labelled 0 */
    const sm_record_array *ex = tmodel_array(&out.record, "exemplar_latents");
    const sm_record_array *cex =
        tmodel_array(&out.record, "counter_exemplar_latents");
    const sm_record_array *cf = tmodel_array(&out.record, "counterfactuals");
    cr_assert_not_null(ex);
    cr_assert_not_null(cex);
    cr_assert_not_null(cf);
    int64_t ne = ex->shape[0];
    cr_assert_eq(ne, 20);
    cr_assert_eq(cex->shape[0], 20);
    for (int64_t i = 0; i < ne; i++) {
        const float *z = ex->data + 2 * i;
        cr_assert(z[0] > box->data[0] && z[1] < 1.5f && label_of(z[0]) == 1,
                  "exemplar %lld: (%g, %g)", (long long)i, z[0], z[1]);
    }
    for (int64_t i = 0; i < cex->shape[0]; i++) {
        const float *z = cex->data + 2 * i;
        cr_assert(z[1] < 1.5f && label_of(z[0]) == 0,
                  "counter-exemplar %lld: (%g, %g)", (long long)i, z[0], z[1]);
    }
    for (int64_t i = 0; i < cf->shape[0]; i++)
        cr_assert_eq(label_of(cf->data[2 * i]), 0, "counterfactual z0 %g",
                     cf->data[2 * i]);

    /* S: the median over exemplars of (x - e + 255) / 2 on 0..255 */
    float d[64];
    cr_assert_leq(ne, 64);
    for (int64_t i = 0; i < ne; i++) {
        float e = (tanhf(A * ex->data[2 * i]) + 1.0f) * 127.5f;
        d[i] = (0.8f * 255.0f - e + 255.0f) / 2.0f;
    }
    qsort(d, (size_t)ne, sizeof(float), float_cmp);
    float s = ne % 2 ? d[ne / 2] : (d[ne / 2 - 1] + d[ne / 2]) / 2;
    const sm_record_array *sal = tmodel_array(&out.record, "saliency");
    cr_assert_not_null(sal);
    for (int q = 0; q < HW; q++) {
        cr_assert_float_eq(sal->data[q], s, 1e-3, "S[%d] %g, not %g", q,
                           sal->data[q], s);
        cr_assert_float_eq(map[q], 1.0f - fabsf(s - 127.5f) / 127.5f, 1e-5,
                           "R[%d]", q);
    }
    /* the images written are the exemplars' decoded, on 0..255 */
    const sm_record_array *img = tmodel_array(&out.record, "exemplars");
    cr_assert_not_null(img);
    cr_assert_eq(img->ndim, 3);
    cr_assert_eq(img->shape[1], S);
    cr_assert_float_eq(img->data[5], (tanhf(A * ex->data[0]) + 1) * 127.5f,
                       1e-3);
    sm_explain_out_free(&out, 1);
    rig_close(&r);
}

Test(abele, runs_equal_rounds_driven_as_the_pipeline)
{
    rig r;
    rig_open(&r, 0.8f);
    int64_t rows, evals;
    int rounds = tmodel_runs_equal_rounds("abele", small, &r.ctx, r.x, 1,
                                          "img/a", 2, &rows, &evals);
    /* the prior's round, 4 generations (the first of copies of z_x is
     * known already), counterfactuals, exemplar candidates */
    cr_assert_geq(rounds, 5);
    cr_assert_eq(evals, rows + 1 + 3, "evals %lld, rows %lld",
                 (long long)evals, (long long)rows);
    rig_close(&r);
}

Test(abele, missing_models_and_preprocessing_are_named)
{
    rig r;
    rig_open(&r, 0.8f);
    float map[HW];
    sm_explain_out out = {0};
    sm_err err;
    int target = 1;
    sm_explain_ctx ctx = r.ctx;
    ctx.n_aux = 2; /* no discriminator */
    cr_assert_eq(tmodel_explain("abele", small, &ctx, r.x, &target, id1, map,
                                &out, &err), -1);
    cr_assert(tdata_has(err.msg, "aae_discriminator"), "%s", err.msg);
    ctx = r.ctx;
    ctx.preproc = NULL;
    cr_assert_eq(tmodel_explain("abele", small, &ctx, r.x, &target, id1, map,
                                &out, &err), -1);
    cr_assert(tdata_has(err.msg, "preprocessing"), "%s", err.msg);
    ctx = r.ctx;
    ctx.aux = (sm_explain_aux[]){{"aae_encoder", r.net[1]},
                                 {"aae_decoder", r.net[1]},
                                 {"aae_discriminator", r.net[2]}};
    cr_assert_eq(tmodel_explain("abele", small, &ctx, r.x, &target, id1, map,
                                &out, &err), -1);
    cr_assert(tdata_has(err.msg, "aae_encoder"), "%s", err.msg);
    sm_explain_out_free(&out, 1);
    rig_close(&r);
    tmodel_bad_setting("abele", "samples", "2");
    tmodel_bad_setting("abele", "folds", "1");
    tmodel_bad_setting("abele", "spread", "0");
}

/* At submit: no autoencoder beside the model is an error naming the file
 * looked for and the command that trains one; one of another input size
 * too; a matching one adds its three nets to the job's models, the job's
 * own names winning. */
Test(abele, a_job_finds_its_autoencoder_or_says_where_it_looked)
{
    sm_abele_aux a;
    sm_err err;
    const char *methods[] = {"sal", "abele"};
    sm_explain_job job = {.model = "tests/fixtures/lenet.onnx",
                          .methods = methods, .n_methods = 2};
    cr_assert_eq(sm_abele_job_aux(&job, &a, &err), -1);
    cr_assert(tdata_has(err.msg, "tests/fixtures/lenet_aae.yaml does not exist"),
              "%s", err.msg);
    cr_assert(tdata_has(err.msg, "salmap train-aae"), "%s", err.msg);

    /* the hand-made nets as an autoencoder of 8 x 8 images on disk */
    char yaml[TDATA_PATH], p[TDATA_PATH];
    tdata_path(yaml, dir, "hand_aae.yaml");
    static const char *const part[3] = {"encoder", "decoder", "discriminator"};
    for (int k = 0; k < 3; k++) {
        size_t len;
        unsigned char *b = net_bytes(k, &len);
        char name[64];
        snprintf(name, sizeof name, "hand_aae_%s.onnx", part[k]);
        tdata_write(p, dir, name, b, len);
        free(b);
    }
    tdata_text(p, dir, "hand_aae.yaml",
               "aae:\n  latent: 2\n  input: {channels: 1, height: 8, width: 8}\n"
               "  encoder: hand_aae_encoder.onnx\n"
               "  decoder: hand_aae_decoder.onnx\n"
               "  discriminator: hand_aae_discriminator.onnx\n");
    char set[TDATA_PATH + 16];
    snprintf(set, sizeof set, "abele.aae=%s", yaml);
    const char *settings[] = {set};
    job.settings = settings, job.n_settings = 1;
    job.config = "configs/mnist.yaml"; /* 28 x 28 */
    cr_assert_eq(sm_abele_job_aux(&job, &a, &err), -1);
    cr_assert(tdata_has(err.msg, "autoencoder of 1x8x8 images"), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "reads 1x28x28"), "%s", err.msg);

    /* an 8 x 8 model: the nets join the job's own auxiliary model */
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){2, HW});
    size_t mlen;
    unsigned char *mb = tmodel_linear_bytes(w, NULL, 1, S, S, &mlen);
    char model[TDATA_PATH];
    tdata_write(model, dir, "m8.onnx", mb, mlen);
    free(mb);
    sm_tensor_destroy(&w);
    const char *names[] = {"aae_decoder"}, *paths[] = {"mine.onnx"};
    job.model = model, job.config = NULL;
    job.aux_names = names, job.aux_paths = paths, job.n_aux = 1;
    cr_assert_eq(sm_abele_job_aux(&job, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(job.n_aux, 3);
    cr_assert_str_eq(job.aux_names[0], "aae_decoder");
    cr_assert_str_eq(job.aux_paths[0], "mine.onnx");
    cr_assert_str_eq(job.aux_names[1], "aae_encoder");
    cr_assert(tdata_has(job.aux_paths[1], "hand_aae_encoder.onnx"), "%s",
              job.aux_paths[1]);
    cr_assert_str_eq(job.aux_names[2], "aae_discriminator");

    /* a job without abele is left alone */
    const char *only_sal[] = {"sal"};
    sm_explain_job plain = {.model = "tests/fixtures/lenet.onnx",
                            .methods = only_sal, .n_methods = 1};
    cr_assert_eq(sm_abele_job_aux(&plain, &a, &err), 0);
    cr_assert_eq(plain.n_aux, 0);
}
