#include "config/model_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "config/yaml_strict.h"
#include "util/file.h"

/* ---- what libcyaml loads ------------------------------------------------ */

/* Numbers are loaded as strings and parsed strictly (config/yaml_strict.h
 * says why). */
typedef struct raw_output {
    char *name;
    int kind;
} raw_output;

typedef struct raw_config {
    sm_yaml_image *input;
    char *scale;
    char **mean;
    unsigned mean_count;
    char **std;
    unsigned std_count;
    char **classes;
    unsigned classes_count;
    raw_output *output;
} raw_config;

static const cyaml_strval_t kind_names[] = {
    {"logits", SM_OUTPUT_LOGITS},
    {"probabilities", SM_OUTPUT_PROBABILITIES},
};

static const cyaml_schema_field_t output_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                           raw_output, name, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("kind", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT,
                     raw_output, kind, kind_names,
                     sizeof kind_names / sizeof *kind_names),
    CYAML_FIELD_END};

static const cyaml_schema_value_t number_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64)};

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, CYAML_UNLIMITED)};

#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)

static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_MAPPING_PTR("input", CYAML_FLAG_POINTER, raw_config, input,
                            sm_yaml_image_fields),
    CYAML_FIELD_STRING_PTR("scale", OPT_PTR, raw_config, scale, 1, 64),
    CYAML_FIELD_SEQUENCE("mean", OPT_PTR, raw_config, mean, &number_entry, 1,
                         3),
    CYAML_FIELD_SEQUENCE("std", OPT_PTR, raw_config, std, &number_entry, 1,
                         3),
    CYAML_FIELD_SEQUENCE("classes", OPT_PTR, raw_config, classes,
                         &string_entry, 1, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("output", OPT_PTR, raw_config, output,
                            output_fields),
    CYAML_FIELD_END};

static const cyaml_schema_value_t config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_config, config_fields)};

/* ---- checks and conversion ---------------------------------------------- */

static int per_channel(char **v, unsigned count, int channels,
                       const char *key, int positive, const sm_yaml_keys *ix,
                       const char *name, float *out, sm_err *err)
{
    if (!v)
        return 0;
    int line = sm_yaml_line(ix, key, 0);
    if ((int)count != channels)
        return sm_err_set(err, "%s:%d: %s: %u values for %d channel%s", name,
                          line, key, count, channels, channels > 1 ? "s" : "");
    for (unsigned i = 0; i < count; i++) {
        if (sm_yaml_parse_float(v[i], &out[i]))
            return sm_err_set(err, "%s:%d: %s: value %u ('%s') is not a "
                              "number", name, line, key, i + 1, v[i]);
        if (positive && !(out[i] > 0))
            return sm_err_set(err, "%s:%d: %s: value %u must be > 0", name,
                              line, key, i + 1);
    }
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

static int convert(const raw_config *raw, const sm_yaml_keys *ix,
                   const char *name, sm_model_config *cfg, sm_err *err)
{
    if (sm_yaml_image_size(raw->input, "input", ix, name, &cfg->channels,
                           &cfg->height, &cfg->width, err))
        return -1;
    sm_preproc pp;
    sm_preproc_init(&pp, cfg->channels, cfg->height, cfg->width);
    cfg->scale = pp.scale;
    memcpy(cfg->mean, pp.mean, sizeof cfg->mean);
    memcpy(cfg->std, pp.std, sizeof cfg->std);
    if (raw->scale && (sm_yaml_parse_float(raw->scale, &cfg->scale) ||
                       !(cfg->scale > 0)))
        return sm_err_set(err, "%s:%d: scale: '%s' is not a number > 0",
                          name, sm_yaml_line(ix, "scale", 0), raw->scale);
    if (per_channel(raw->mean, raw->mean_count, cfg->channels, "mean", 0, ix,
                    name, cfg->mean, err) ||
        per_channel(raw->std, raw->std_count, cfg->channels, "std", 1, ix,
                    name, cfg->std, err))
        return -1;
    if (raw->classes_count) {
        cfg->classes = calloc(raw->classes_count, sizeof *cfg->classes);
        if (!cfg->classes)
            return sm_err_set(err, "%s: out of memory", name);
        for (unsigned i = 0; i < raw->classes_count; i++) {
            for (unsigned j = 0; j < i; j++)
                if (strcmp(raw->classes[i], raw->classes[j]) == 0)
                    return sm_err_set(err, "%s:%d: classes: '%s' is listed "
                                      "twice", name,
                                      sm_yaml_line(ix, "classes", 0),
                                      raw->classes[i]);
            if (!(cfg->classes[i] = dup_str(raw->classes[i])))
                return sm_err_set(err, "%s: out of memory", name);
            cfg->n_classes = (int)i + 1;
        }
    }
    if (raw->output) {
        cfg->output_kind = (sm_output_kind)raw->output->kind;
        if (raw->output->name &&
            !(cfg->output_name = dup_str(raw->output->name)))
            return sm_err_set(err, "%s: out of memory", name);
    }
    return 0;
}

sm_model_config *sm_model_config_parse(const char *yaml, size_t len,
                                       const char *name, sm_err *err)
{
    sm_yaml_keys ix = {0};
    sm_model_config *cfg = calloc(1, sizeof *cfg);
    raw_config *raw = NULL;
    int rc = -1;
    if (!cfg || !(cfg->source = dup_str(name))) {
        sm_err_set(err, "%s: out of memory", name);
        goto done;
    }
    if (sm_yaml_load(yaml, len, name, &config_schema, (void **)&raw, &ix,
                     err))
        goto done;
    if (!raw || !raw->input) {
        sm_err_set(err, "%s:%d: missing required key 'input'", name,
                   ix.root_line ? ix.root_line : 1);
        goto done;
    }
    rc = convert(raw, &ix, name, cfg, err);
done:
    sm_yaml_free(&config_schema, raw);
    sm_yaml_keys_free(&ix);
    if (rc)
        sm_model_config_destroy(&cfg);
    return cfg;
}

sm_model_config *sm_model_config_load(const char *path, sm_err *err)
{
    size_t len;
    unsigned char *buf =
        sm_file_read(path, SM_MODEL_CONFIG_MAX_BYTES, &len, err);
    if (!buf)
        return NULL;
    sm_model_config *cfg =
        sm_model_config_parse((const char *)buf, len, path, err);
    free(buf);
    return cfg;
}

void sm_model_config_destroy(sm_model_config **cfg)
{
    if (!cfg || !*cfg)
        return;
    sm_model_config *c = *cfg;
    if (c->classes)
        for (int i = 0; i < c->n_classes; i++)
            free(c->classes[i]);
    free(c->classes);
    free(c->output_name);
    free(c->source);
    free(c);
    *cfg = NULL;
}

void sm_model_config_preproc(const sm_model_config *cfg, sm_preproc *pp)
{
    sm_preproc_init(pp, cfg->channels, cfg->height, cfg->width);
    pp->scale = cfg->scale;
    memcpy(pp->mean, cfg->mean, sizeof pp->mean);
    memcpy(pp->std, cfg->std, sizeof pp->std);
}

const char *sm_output_kind_name(sm_output_kind kind)
{
    return kind == SM_OUTPUT_PROBABILITIES ? "probabilities" : "logits";
}
