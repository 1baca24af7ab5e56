#include "config/aae_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cyaml/cyaml.h>

#include "config/yaml_strict.h"
#include "util/file.h"
#include "util/text.h"

#define MAX_BYTES ((size_t)1 << 20)

/* ---- what libcyaml loads ------------------------------------------------ */

/* Numbers are loaded as strings and parsed strictly (config/yaml_strict.h
 * says why). */
typedef struct raw_train {
    char *dataset, *steps, *batch, *lr, *beta1, *seed, *threads, *shift,
         *noise;
} raw_train;

typedef struct raw_test {
    char *dataset, *mse, *agreement;
} raw_test;

typedef struct raw_aae {
    char *latent;
    sm_yaml_image *input;
    char **range;
    unsigned range_count;
    char *encoder, *decoder, *discriminator, *classifier;
    raw_train *train;
    raw_test *test;
} raw_aae;

typedef struct raw_doc {
    raw_aae *aae;
} raw_doc;

#define REQ_STR(key, type, field) \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER, type, field, 1, CYAML_UNLIMITED)
#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)

static const cyaml_schema_field_t train_fields[] = {
    REQ_STR("dataset", raw_train, dataset),
    REQ_STR("steps", raw_train, steps),
    REQ_STR("batch", raw_train, batch),
    REQ_STR("lr", raw_train, lr),
    REQ_STR("beta1", raw_train, beta1),
    REQ_STR("seed", raw_train, seed),
    REQ_STR("threads", raw_train, threads),
    CYAML_FIELD_STRING_PTR("shift", OPT_PTR, raw_train, shift, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("noise", OPT_PTR, raw_train, noise, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t test_fields[] = {
    REQ_STR("dataset", raw_test, dataset),
    REQ_STR("mse", raw_test, mse),
    REQ_STR("agreement", raw_test, agreement),
    CYAML_FIELD_END};

static const cyaml_schema_value_t number_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64)};

static const cyaml_schema_field_t aae_fields[] = {
    REQ_STR("latent", raw_aae, latent),
    CYAML_FIELD_MAPPING_PTR("input", CYAML_FLAG_POINTER, raw_aae, input,
                            sm_yaml_image_fields),
    CYAML_FIELD_SEQUENCE("range", OPT_PTR, raw_aae, range, &number_entry, 2,
                         2),
    REQ_STR("encoder", raw_aae, encoder),
    REQ_STR("decoder", raw_aae, decoder),
    REQ_STR("discriminator", raw_aae, discriminator),
    CYAML_FIELD_STRING_PTR("classifier", OPT_PTR, raw_aae, classifier, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("train", OPT_PTR, raw_aae, train, train_fields),
    CYAML_FIELD_MAPPING_PTR("test", OPT_PTR, raw_aae, test, test_fields),
    CYAML_FIELD_END};

static const cyaml_schema_field_t doc_fields[] = {
    CYAML_FIELD_MAPPING_PTR("aae", CYAML_FLAG_POINTER, raw_doc, aae,
                            aae_fields),
    CYAML_FIELD_END};

static const cyaml_schema_value_t doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc, doc_fields)};

/* ---- checks and conversion ---------------------------------------------- */

typedef struct ctx {
    const sm_yaml_keys *ix;
    const char *name;
    sm_err *err;
} ctx;

/* An integer in lo..hi at key. */
static int get_int(const ctx *c, const char *key, const char *text, int lo,
                   int hi, int *out)
{
    if (sm_yaml_parse_int(text, out) || *out < lo || *out > hi)
        return sm_err_set(c->err, "%s:%d: %s: '%s' is not an integer in "
                          "%d..%d", c->name, sm_yaml_line(c->ix, key, 0), key,
                          text, lo, hi);
    return 0;
}

/* A number in [lo, hi] at key. */
static int get_num(const ctx *c, const char *key, const char *text, double lo,
                   double hi, double *out)
{
    float f;
    if (sm_yaml_parse_float(text, &f) || !(f >= lo && f <= hi))
        return sm_err_set(c->err, "%s:%d: %s: '%s' is not a number in "
                          "[%g, %g]", c->name, sm_yaml_line(c->ix, key, 0),
                          key, text, lo, hi);
    *out = f;
    return 0;
}

static int get_str(const ctx *c, const char *text, char **out)
{
    if (!(*out = strdup(text)))
        return sm_err_set(c->err, "%s: out of memory", c->name);
    return 0;
}

/* A net's path, relative to the YAML's folder, which must be a file. */
static int get_net(const ctx *c, const char *key, const char *text,
                   char **out)
{
    if (!(*out = sm_file_sibling(c->name, text)))
        return sm_err_set(c->err, "%s: out of memory", c->name);
    struct stat st;
    const char *why = stat(*out, &st) != 0 ? strerror(errno)
                      : !S_ISREG(st.st_mode) ? "not a regular file" : NULL;
    if (why)
        return sm_err_set(c->err, "%s:%d: %s: %s: %s", c->name,
                          sm_yaml_line(c->ix, key, 0), key, *out, why);
    return 0;
}

static int convert(const raw_aae *r, const ctx *c, sm_aae_config *cfg)
{
    if (get_int(c, "aae.latent", r->latent, 1, SM_AAE_MAX_LATENT,
                &cfg->latent) ||
        sm_yaml_image_size(r->input, "aae.input", c->ix, c->name,
                           &cfg->channels, &cfg->height, &cfg->width, c->err))
        return -1;
    if (r->range) {
        float lo, hi;
        if (sm_yaml_parse_float(r->range[0], &lo) ||
            sm_yaml_parse_float(r->range[1], &hi) || lo != -1 || hi != 1)
            return sm_err_set(c->err, "%s:%d: aae.range: must be [-1, 1] "
                              "(the only pixel space), not [%s, %s]", c->name,
                              sm_yaml_line(c->ix, "aae.range", 0),
                              r->range[0], r->range[1]);
    }
    if (get_net(c, "aae.encoder", r->encoder, &cfg->encoder) ||
        get_net(c, "aae.decoder", r->decoder, &cfg->decoder) ||
        get_net(c, "aae.discriminator", r->discriminator,
                &cfg->discriminator) ||
        (r->classifier && get_str(c, r->classifier, &cfg->classifier)))
        return -1;
    if (r->train) {
        const raw_train *t = r->train;
        sm_aae_train_info *o = &cfg->train;
        cfg->has_train = 1;
        if (get_str(c, t->dataset, &o->dataset) ||
            get_int(c, "aae.train.steps", t->steps, 1, 1 << 30, &o->steps) ||
            get_int(c, "aae.train.batch", t->batch, 1, 1 << 30, &o->batch) ||
            get_num(c, "aae.train.lr", t->lr, 0, 1, &o->lr) ||
            get_num(c, "aae.train.beta1", t->beta1, 0, 1, &o->beta1) ||
            get_int(c, "aae.train.threads", t->threads, 1, 1 << 10,
                    &o->threads) ||
            (t->shift && get_int(c, "aae.train.shift", t->shift, 0,
                                 SM_AAE_MAX_SHIFT, &o->shift)) ||
            (t->noise && get_num(c, "aae.train.noise", t->noise, 0, 1,
                                 &o->noise)))
            return -1;
        if (sm_yaml_parse_u64(t->seed, &o->seed))
            return sm_err_set(c->err, "%s:%d: aae.train.seed: '%s' is not an "
                              "integer in 0..2^64-1", c->name,
                              sm_yaml_line(c->ix, "aae.train.seed", 0),
                              t->seed);
    }
    if (r->test) {
        const raw_test *t = r->test;
        cfg->has_test = 1;
        if (get_str(c, t->dataset, &cfg->test.dataset) ||
            get_num(c, "aae.test.mse", t->mse, 0, 4, &cfg->test.mse) ||
            get_num(c, "aae.test.agreement", t->agreement, 0, 1,
                    &cfg->test.agreement))
            return -1;
    }
    return 0;
}

int sm_aae_config_load(const char *path, sm_aae_config *cfg, sm_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    size_t len;
    unsigned char *buf = sm_file_read(path, MAX_BYTES, &len, err);
    if (!buf)
        return -1;
    sm_yaml_keys ix = {0};
    raw_doc *raw = NULL;
    ctx c = {&ix, path, err};
    int rc = -1;
    if (!(cfg->source = strdup(path)))
        sm_err_set(err, "%s: out of memory", path);
    else if (sm_yaml_load((const char *)buf, len, path, &doc_schema,
                          (void **)&raw, &ix, err) == 0) {
        if (!raw || !raw->aae)
            sm_err_set(err, "%s:%d: missing required key 'aae'", path,
                       ix.root_line ? ix.root_line : 1);
        else
            rc = convert(raw->aae, &c, cfg);
    }
    sm_yaml_free(&doc_schema, raw);
    sm_yaml_keys_free(&ix);
    free(buf);
    if (rc)
        sm_aae_config_free(cfg);
    return rc;
}

void sm_aae_config_free(sm_aae_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source);
    free(cfg->encoder);
    free(cfg->decoder);
    free(cfg->discriminator);
    free(cfg->classifier);
    free(cfg->train.dataset);
    free(cfg->test.dataset);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- writing ------------------------------------------------------------ */

/* Appends `key: "s"` (s quoted); 0 or -1. */
static int put_str(sm_text *t, const char *pre, const char *key,
                   const char *s)
{
    size_t cap = 4 * strlen(s) + 3;
    char *q = malloc(cap);
    if (!q)
        return -1;
    sm_yaml_quote(q, cap, s);
    int rc = sm_text_addf(t, "%s%s: %s", pre, key, q);
    free(q);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

char *sm_aae_config_yaml(const sm_aae_config *cfg)
{
    sm_text t = {0};
    int rc = sm_text_addf(
        &t,
        "# Adversarial autoencoder written by salmap train-aae "
        "(docs/TRAINING.md).\n"
        "aae:\n"
        "  latent: %d\n"
        "  input: {channels: %d, height: %d, width: %d}\n"
        "  range: [-1, 1]             # the AAE's pixel space: "
        "2*pixel/255 - 1\n",
        cfg->latent, cfg->channels, cfg->height, cfg->width);
    rc |= put_str(&t, "  ", "encoder", base_name(cfg->encoder));
    rc |= put_str(&t, "\n  ", "decoder", base_name(cfg->decoder));
    rc |= put_str(&t, "\n  ", "discriminator", base_name(cfg->discriminator));
    if (cfg->classifier)
        rc |= put_str(&t, "\n  ", "classifier", base_name(cfg->classifier));
    if (cfg->has_train) {
        const sm_aae_train_info *o = &cfg->train;
        rc |= put_str(&t, "\n  train: {", "dataset", o->dataset);
        rc |= sm_text_addf(&t, ", steps: %d, batch: %d, lr: %.9g, beta1: "
                           "%.9g, seed: %llu, threads: %d", o->steps,
                           o->batch, o->lr, o->beta1,
                           (unsigned long long)o->seed, o->threads);
        if (o->shift)
            rc |= sm_text_addf(&t, ", shift: %d", o->shift);
        if (o->noise > 0)
            rc |= sm_text_addf(&t, ", noise: %.9g", o->noise);
        rc |= sm_text_addf(&t, "}");
    }
    if (cfg->has_test) {
        rc |= put_str(&t, "\n  test: {", "dataset", cfg->test.dataset);
        rc |= sm_text_addf(&t, ", mse: %.6g, agreement: %.6g}",
                           cfg->test.mse, cfg->test.agreement);
    }
    rc |= sm_text_addf(&t, "\n");
    if (rc) {
        sm_text_free(&t);
        return NULL;
    }
    return t.s;
}

int sm_aae_config_save(const sm_aae_config *cfg, const char *path,
                       sm_err *err)
{
    char *yaml = sm_aae_config_yaml(cfg);
    if (!yaml)
        return sm_err_set(err, "%s: out of memory", path);
    int rc = sm_file_write_atomic(path, yaml, strlen(yaml), err);
    free(yaml);
    return rc;
}

int sm_aae_config_net_path(const char *yaml_path, const char *part,
                           char *buf, size_t cap)
{
    size_t n = strlen(yaml_path);
    if (n >= 5 && strcmp(yaml_path + n - 5, ".yaml") == 0)
        n -= 5;
    int w = snprintf(buf, cap, "%.*s_%s.onnx", (int)n, yaml_path, part);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* ---- the nets ----------------------------------------------------------- */

void sm_aae_models_free(sm_aae_models *m)
{
    if (!m)
        return;
    sm_model_destroy(&m->encoder);
    sm_model_destroy(&m->decoder);
    sm_model_destroy(&m->discriminator);
}

/* Loads the net at path and runs it on one input of `in` zeros; its first
 * output must have `nd` dims `want` (batch 1). */
static sm_model *check_net(const sm_aae_config *cfg, const char *part,
                           const char *path, int64_t in, int nd,
                           const int64_t *want, sm_err *err)
{
    sm_model *m = sm_model_load_file(path, err);
    float *x = calloc((size_t)in, sizeof(float));
    const sm_tensor *y = NULL;
    if (m && !x)
        sm_err_set(err, "out of memory");
    else if (m && !(y = sm_model_forward(m, x, 1, err)))
        sm_err_prefix(err, "%s", path);
    free(x);
    if (y && !sm_shape_equal(y->ndim, y->shape, nd, want)) {
        char got[64], exp[64];
        sm_err_set(err, "%s: output %s is %s, the config wants %s", path,
                   sm_model_output_name(m, 0),
                   sm_shape_str(y->ndim, y->shape, got, sizeof got),
                   sm_shape_str(nd, want, exp, sizeof exp));
        y = NULL;
    }
    if (!y) {
        sm_model_destroy(&m);
        sm_err_prefix(err, "%s: %s", cfg->source, part);
    }
    return m;
}

int sm_aae_config_models(const sm_aae_config *cfg, sm_aae_models *m,
                         sm_err *err)
{
    memset(m, 0, sizeof *m);
    int64_t image = (int64_t)cfg->channels * cfg->height * cfg->width;
    int64_t z[2] = {1, cfg->latent}, one[2] = {1, 1};
    int64_t im[4] = {1, cfg->channels, cfg->height, cfg->width};
    if (!(m->encoder = check_net(cfg, "encoder", cfg->encoder, image, 2, z,
                                 err)) ||
        !(m->decoder = check_net(cfg, "decoder", cfg->decoder, cfg->latent,
                                 4, im, err)) ||
        !(m->discriminator = check_net(cfg, "discriminator",
                                       cfg->discriminator, cfg->latent, 2,
                                       one, err))) {
        sm_aae_models_free(m);
        return -1;
    }
    return 0;
}
