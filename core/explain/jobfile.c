#include "explain/jobfile.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "config/yaml_strict.h"
#include "explain/explainer.h"
#include "util/file.h"
#include "util/text.h"

/* ---- what libcyaml loads ------------------------------------------------ */

/* Scalars are loaded as text and checked by sm_jobfile_set_field, the rules
 * the command line follows too. params is skipped here: its keys are the
 * methods' parameter names, read from the key index (yaml_strict.h) and
 * checked by the methods. */
typedef struct raw_job {
    char *model, *config, *dataset, *out;
    char **methods;
    unsigned methods_count;
    char *limit, *seed, *batch, *target, *score, *metrics, *png, *scale;
} raw_job;

static const cyaml_schema_value_t method_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 63)};

#define REQ_STR(key, field)                                                    \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER, raw_job, field, 1,         \
                           CYAML_UNLIMITED)
#define OPT_STR(key, field, max)                                               \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,      \
                           raw_job, field, 1, max)

static const cyaml_schema_field_t job_fields[] = {
    REQ_STR("model", model),
    OPT_STR("config", config, CYAML_UNLIMITED),
    REQ_STR("dataset", dataset),
    REQ_STR("out", out),
    CYAML_FIELD_SEQUENCE("methods", CYAML_FLAG_POINTER, raw_job, methods,
                         &method_entry, 1, SM_JOBFILE_MAX_METHODS),
    OPT_STR("limit", limit, 64),
    OPT_STR("seed", seed, 64),
    OPT_STR("batch", batch, 64),
    OPT_STR("target", target, 64),
    OPT_STR("score", score, 64),
    OPT_STR("metrics", metrics, 64),
    OPT_STR("png", png, 64),
    OPT_STR("scale", scale, 64),
    CYAML_FIELD_IGNORE("params", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_IGNORE("models", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_IGNORE("metric_params", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END};

static const cyaml_schema_value_t job_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_job, job_fields)};

struct sm_jobfile {
    sm_explain_job job;
    raw_job *raw;    /* owns the job's strings and methods */
    char **settings; /* "method.key=value", owned */
    int n_settings;
    const char *aux_names[SM_EXPLAIN_MAX_AUX]; /* borrowed from ix */
    const char *aux_paths[SM_EXPLAIN_MAX_AUX];
    sm_yaml_keys ix; /* kept: the auxiliary models' names and paths */
};

/* ---- fields shared with the command line -------------------------------- */

void sm_jobfile_defaults(sm_explain_job *job)
{
    *job = (sm_explain_job){.batch = 64, .metrics = 1, .progress = 1};
}

/* The metric parameters (metrics.h) by name: the job file's
 * metric_params keys and --set metrics.<name>; integers in lo..hi, the
 * radius a number in (0, 1]. */
static const struct metric_key {
    const char *name;
    size_t off;
    int lo, hi;
} metric_keys[] = {
    {"faithfulness_subsets", offsetof(sm_metric_params, faithfulness_subsets),
     2, 65536},
    {"faithfulness_size", offsetof(sm_metric_params, faithfulness_size), 0,
     1 << 24},
    {"sensitivity_samples", offsetof(sm_metric_params, sensitivity_samples),
     0, 10000},
    {"sensitivity_radius", offsetof(sm_metric_params, sensitivity_radius), 0,
     0},
};

static int set_metric(sm_metric_params *mp, const char *name,
                      const char *value, sm_err *err)
{
    const struct metric_key *k = metric_keys;
    const size_t n = sizeof metric_keys / sizeof *metric_keys;
    while (k < metric_keys + n && strcmp(k->name, name))
        k++;
    if (k == metric_keys + n)
        return sm_err_set(err, "no such metric parameter (faithfulness_"
                          "subsets, faithfulness_size, sensitivity_samples, "
                          "sensitivity_radius)");
    char *at = (char *)mp + k->off;
    int i;
    float f;
    if (k->hi == 0) {
        /* parsed strictly, then kept in double: 0.02 is the default's bits */
        if (sm_yaml_parse_float(value, &f) || !(f > 0 && f <= 1))
            return sm_err_set(err, "must be a number in (0, 1], not '%s'",
                              value);
        double d = strtod(value, NULL);
        memcpy(at, &d, sizeof d);
        return 0;
    }
    if (sm_yaml_parse_int(value, &i) || i < k->lo || i > k->hi)
        return sm_err_set(err, "must be an integer in %d..%d, not '%s'",
                          k->lo, k->hi, value);
    memcpy(at, &i, sizeof i);
    return 0;
}

int sm_jobfile_set_field(sm_explain_job *job, const char *key,
                         const char *value, sm_err *err)
{
    uint64_t u;
    int i;
    if (strcmp(key, "limit") == 0) {
        if (sm_yaml_parse_u64(value, &u) || u == 0 || u > SIZE_MAX)
            return sm_err_set(err, "must be a positive integer, not '%s'",
                              value);
        job->limit = (size_t)u;
    } else if (strcmp(key, "seed") == 0) {
        if (sm_yaml_parse_u64(value, &u))
            return sm_err_set(err, "must be a non-negative integer, not "
                              "'%s'", value);
        job->seed = u;
    } else if (strcmp(key, "batch") == 0) {
        if (sm_yaml_parse_int(value, &i) || i < 1 || i > 65536)
            return sm_err_set(err, "must be an integer in 1..65536, not '%s'",
                              value);
        job->batch = i;
    } else if (strcmp(key, "target") == 0) {
        if (strcmp(value, "predicted") == 0) {
            job->target = SM_TARGET_PREDICTED;
        } else if (strcmp(value, "label") == 0) {
            job->target = SM_TARGET_LABEL;
        } else if (sm_yaml_parse_int(value, &i) == 0 && i >= 0 &&
                   i <= 1000000) {
            job->target = SM_TARGET_INDEX;
            job->target_index = i;
        } else {
            return sm_err_set(err, "must be predicted, label or a class "
                              "index, not '%s'", value);
        }
    } else if (strcmp(key, "score") == 0) {
        if (strcmp(value, "logit") && strcmp(value, "prob"))
            return sm_err_set(err, "must be logit or prob, not '%s'", value);
        job->score_prob = strcmp(value, "prob") == 0;
    } else if (strcmp(key, "metrics") == 0) {
        if (strcmp(value, "true") && strcmp(value, "false"))
            return sm_err_set(err, "must be true or false, not '%s'", value);
        job->metrics = strcmp(value, "true") == 0;
    } else if (strcmp(key, "png") == 0) {
        if (strcmp(value, "true") && strcmp(value, "false"))
            return sm_err_set(err, "must be true or false, not '%s'", value);
        job->no_png = strcmp(value, "false") == 0;
    } else if (strcmp(key, "scale") == 0) {
        if (strcmp(value, "map") && strcmp(value, "job"))
            return sm_err_set(err, "must be map or job, not '%s'", value);
        job->scale_job = strcmp(value, "job") == 0;
    } else if (strncmp(key, "metrics.", 8) == 0) {
        return set_metric(&job->metric, key + 8, value, err);
    } else {
        return sm_err_set(err, "no such job field");
    }
    return 0;
}

/* ---- conversion --------------------------------------------------------- */

/* Adds the setting "method.key=value". */
static int add_setting(sm_jobfile *jf, const char *method, const char *key,
                       const char *value)
{
    size_t n = strlen(method) + strlen(key) + strlen(value) + 3;
    char *s = malloc(n);
    if (!s)
        return -1;
    snprintf(s, n, "%s.%s=%s", method, key, value);
    jf->settings[jf->n_settings++] = s;
    return 0;
}

/* -1 with "key given twice" when an earlier sibling of key i has its
 * name (libcyaml does not see inside params). */
static int repeated(const sm_yaml_keys *ix, int i, const char *name,
                    sm_err *err)
{
    const sm_yaml_key *k = &ix->keys[i];
    for (int j = 0; j < i; j++)
        if (ix->keys[j].parent == k->parent &&
            strcmp(ix->keys[j].name, k->name) == 0)
            return sm_err_set(err, "%s:%d: %s: key given twice", name,
                              k->line, k->path);
    return 0;
}

/* The top-level key `key` of the file: its index, or -1 when absent (an
 * empty value counts as absent); -1 with a message when given twice. */
static int top_key(const sm_yaml_keys *ix, const char *key, const char *name,
                   int *at, sm_err *err)
{
    *at = -1;
    for (int i = 0; i < ix->n; i++)
        if (ix->keys[i].parent < 0 && strcmp(ix->keys[i].name, key) == 0) {
            if (*at >= 0) /* libcyaml does not count keys it ignores */
                return repeated(ix, i, name, err);
            *at = i;
        }
    if (*at >= 0 && ix->keys[*at].kind == SM_YAML_SCALAR &&
        !*ix->keys[*at].value)
        *at = -1; /* "key:" with everything under it commented out */
    return 0;
}

/* top_key for a key whose value must be a mapping (of `what`). */
static int top_mapping(const sm_yaml_keys *ix, const char *key,
                       const char *what, const char *name, int *at,
                       sm_err *err)
{
    if (top_key(ix, key, name, at, err))
        return -1;
    if (*at >= 0 && ix->keys[*at].kind != SM_YAML_MAPPING)
        return sm_err_set(err, "%s:%d: %s: expected a mapping of %s", name,
                          ix->keys[*at].line, key, what);
    return 0;
}

/* models: {name: path, ...}: the auxiliary models, names checked. */
static int convert_models(sm_jobfile *jf, const char *name, sm_err *err)
{
    const sm_yaml_keys *ix = &jf->ix;
    int p, n = 0;
    if (top_mapping(ix, "models", "names to ONNX files", name, &p, err))
        return -1;
    if (p < 0)
        return 0;
    const sm_yaml_key *pk = &ix->keys[p];
    for (int i = p + 1; i < ix->n; i++) {
        const sm_yaml_key *k = &ix->keys[i];
        if (k->parent != p)
            continue;
        if (repeated(ix, i, name, err))
            return -1;
        if (!sm_name_valid(k->name, SM_EXPLAIN_AUX_NAME))
            return sm_err_set(err, "%s:%d: %s: a model's name is 1 to %d of "
                              "a-z, 0-9 and _", name, k->line, k->path,
                              SM_EXPLAIN_AUX_NAME);
        if (k->kind != SM_YAML_SCALAR || !*k->value)
            return sm_err_set(err, "%s:%d: %s: expected the path of an ONNX "
                              "file", name, k->line, k->path);
        if (n == SM_EXPLAIN_MAX_AUX)
            return sm_err_set(err, "%s:%d: models: more than %d", name,
                              pk->line, SM_EXPLAIN_MAX_AUX);
        jf->aux_names[n] = k->name;
        jf->aux_paths[n++] = k->value;
    }
    jf->job.aux_names = jf->aux_names;
    jf->job.aux_paths = jf->aux_paths;
    jf->job.n_aux = n;
    return 0;
}

/* metric_params: {name: value, ...}: the metric parameters, each by the
 * rules of --set metrics.<name>. */
static int convert_metric_params(sm_jobfile *jf, const char *name,
                                 sm_err *err)
{
    const sm_yaml_keys *ix = &jf->ix;
    int p;
    if (top_mapping(ix, "metric_params", "metric parameters to values", name,
                    &p, err))
        return -1;
    for (int i = p + 1; p >= 0 && i < ix->n; i++) {
        const sm_yaml_key *k = &ix->keys[i];
        if (k->parent != p)
            continue;
        char key[SM_YAML_MAX_PATH + 8];
        snprintf(key, sizeof key, "metrics.%s", k->name);
        if (repeated(ix, i, name, err))
            return -1;
        if (k->kind != SM_YAML_SCALAR)
            return sm_err_set(err, "%s:%d: %s: expected a single value",
                              name, k->line, k->path);
        if (sm_jobfile_set_field(&jf->job, key, k->value, err))
            return sm_err_prefix(err, "%s:%d: %s", name, k->line, k->path);
    }
    return 0;
}

/* params: {method: {key: value, ...}, ...} into settings, each checked by
 * its method (ex[m] is methods[m] with its defaults). */
static int convert_params(sm_jobfile *jf, const sm_yaml_keys *ix,
                          sm_explainer *const *ex, const char *name,
                          sm_err *err)
{
    const raw_job *raw = jf->raw;
    int p, count = 0;
    if (top_mapping(ix, "params", "methods to their parameters", name, &p,
                    err))
        return -1;
    if (p < 0)
        return 0;
    const sm_yaml_key *pk = &ix->keys[p];
    /* Bounds the sibling checks below, which are quadratic. */
    for (int i = p + 1; i < ix->n; i++)
        if (ix->keys[i].parent >= 0 && ix->keys[ix->keys[i].parent].parent == p)
            count++;
    if (count > SM_JOBFILE_MAX_SETTINGS)
        return sm_err_set(err, "%s:%d: params: more than %d parameters", name,
                          pk->line, SM_JOBFILE_MAX_SETTINGS);
    if (!(jf->settings = calloc((size_t)count + 1, sizeof *jf->settings)))
        return sm_err_set(err, "%s: out of memory", name);
    for (int i = p + 1; i < ix->n; i++) {
        const sm_yaml_key *mk = &ix->keys[i];
        if (mk->parent != p)
            continue;
        int m = 0;
        while (m < (int)raw->methods_count && strcmp(raw->methods[m], mk->name))
            m++;
        if (repeated(ix, i, name, err))
            return -1;
        if (m == (int)raw->methods_count)
            return sm_err_set(err, "%s:%d: %s: %s is not among the methods",
                              name, mk->line, mk->path, mk->name);
        if (mk->kind != SM_YAML_MAPPING)
            return sm_err_set(err, "%s:%d: %s: expected a mapping of "
                              "parameters to values", name, mk->line,
                              mk->path);
        for (int k = i + 1; k < ix->n; k++) {
            const sm_yaml_key *kk = &ix->keys[k];
            if (kk->parent != i)
                continue;
            if (repeated(ix, k, name, err))
                return -1;
            if (kk->kind != SM_YAML_SCALAR)
                return sm_err_set(err, "%s:%d: %s: expected a single value",
                                  name, kk->line, kk->path);
            if (sm_explainer_set(ex[m], kk->name, kk->value, err))
                return sm_err_prefix(err, "%s:%d: params", name, kk->line);
            if (add_setting(jf, mk->name, kk->name, kk->value))
                return sm_err_set(err, "%s: out of memory", name);
        }
    }
    return 0;
}

static int convert(sm_jobfile *jf, const sm_yaml_keys *ix, const char *name,
                   sm_err *err)
{
    const raw_job *raw = jf->raw;
    sm_explain_job *job = &jf->job;
    sm_jobfile_defaults(job);
    job->model = raw->model;
    job->config = raw->config;
    job->dataset = raw->dataset;
    job->out = raw->out;
    job->methods = (const char *const *)raw->methods;
    job->n_methods = (int)raw->methods_count;
    const struct {
        const char *key;
        size_t off;
    } fields[] = {
        {"limit", offsetof(raw_job, limit)},
        {"seed", offsetof(raw_job, seed)},
        {"batch", offsetof(raw_job, batch)},
        {"target", offsetof(raw_job, target)},
        {"score", offsetof(raw_job, score)},
        {"metrics", offsetof(raw_job, metrics)},
        {"png", offsetof(raw_job, png)},
        {"scale", offsetof(raw_job, scale)},
    };
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        const char *text = *(char *const *)((const char *)raw + fields[f].off);
        if (text && sm_jobfile_set_field(job, fields[f].key, text, err))
            return sm_err_prefix(err, "%s:%d: %s", name,
                                 sm_yaml_line(ix, fields[f].key, 0),
                                 fields[f].key);
    }
    /* The methods are made here, not only when the job runs, so that a bad
     * name or parameter is reported with its line. */
    sm_explainer *ex[SM_JOBFILE_MAX_METHODS] = {0};
    int rc = 0, line = sm_yaml_line(ix, "methods", 0);
    for (int m = 0; m < job->n_methods && rc == 0; m++) {
        for (int k = 0; k < m && rc == 0; k++)
            if (strcmp(raw->methods[k], raw->methods[m]) == 0)
                rc = sm_err_set(err, "%s:%d: methods: '%s' is listed twice",
                                name, line, raw->methods[m]);
        if (rc == 0 && !(ex[m] = sm_explainer_new(raw->methods[m], err)))
            rc = sm_err_prefix(err, "%s:%d: methods", name, line);
    }
    if (rc == 0)
        rc = convert_params(jf, ix, ex, name, err) ||
                     convert_models(jf, name, err) ||
                     convert_metric_params(jf, name, err)
                 ? -1
                 : 0;
    for (int m = 0; m < job->n_methods; m++)
        sm_explainer_destroy(&ex[m]);
    job->settings = (const char *const *)jf->settings;
    job->n_settings = jf->n_settings;
    return rc;
}

/* ---- loading ------------------------------------------------------------ */

int sm_jobfile_parse(const char *yaml, size_t len, const char *name,
                     sm_jobfile **out, sm_err *err)
{
    sm_jobfile *jf = calloc(1, sizeof *jf);
    int rc = -1;
    *out = NULL;
    if (!jf)
        return sm_err_set(err, "%s: out of memory", name);
    if (sm_yaml_load(yaml, len, name, &job_schema, (void **)&jf->raw, &jf->ix,
                     err))
        goto done;
    if (!jf->raw) {
        sm_err_set(err, "%s:%d: missing required key 'model'", name,
                   jf->ix.root_line ? jf->ix.root_line : 1);
        goto done;
    }
    rc = convert(jf, &jf->ix, name, err);
done:
    if (rc)
        sm_jobfile_destroy(&jf);
    *out = jf;
    return rc;
}

int sm_jobfile_load(const char *path, sm_jobfile **out, sm_err *err)
{
    size_t len;
    *out = NULL;
    unsigned char *buf = sm_file_read(path, SM_JOBFILE_MAX_BYTES, &len, err);
    if (!buf)
        return -1;
    int rc = sm_jobfile_parse((const char *)buf, len, path, out, err);
    free(buf);
    return rc;
}

const sm_explain_job *sm_jobfile_job(const sm_jobfile *jf)
{
    return &jf->job;
}

void sm_jobfile_destroy(sm_jobfile **jf)
{
    if (!jf || !*jf)
        return;
    sm_jobfile *j = *jf;
    for (int i = 0; i < j->n_settings; i++)
        free(j->settings[i]);
    free(j->settings);
    sm_yaml_free(&job_schema, j->raw);
    sm_yaml_keys_free(&j->ix);
    free(j);
    *jf = NULL;
}
