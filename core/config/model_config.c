#include "config/model_config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "util/file.h"

/* ---- what libcyaml loads ------------------------------------------------ */

/* Numbers are loaded as strings and parsed here: libcyaml 1.3's INT and
 * FLOAT readers stop at the first bad character and keep the prefix
 * ("12.7" -> 12, "1e9" -> 1, "1,5" -> 1), which would pass typos. */
typedef struct raw_input {
    char *channels, *height, *width;
} raw_input;

typedef struct raw_output {
    char *name;
    int kind;
} raw_output;

typedef struct raw_config {
    raw_input *input;
    char *scale;
    char **mean;
    unsigned mean_count;
    char **std;
    unsigned std_count;
    char **classes;
    unsigned classes_count;
    raw_output *output;
} raw_config;

static const cyaml_schema_field_t input_fields[] = {
    CYAML_FIELD_STRING_PTR("channels", CYAML_FLAG_POINTER, raw_input,
                           channels, 1, 32),
    CYAML_FIELD_STRING_PTR("height", CYAML_FLAG_POINTER, raw_input, height,
                           1, 32),
    CYAML_FIELD_STRING_PTR("width", CYAML_FLAG_POINTER, raw_input, width, 1,
                           32),
    CYAML_FIELD_END};

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
                            input_fields),
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

/* ---- where each key is -------------------------------------------------- */

/* libcyaml's messages carry lines, but for an unknown or repeated key they
 * point at the event before it, and its checks do not cover the rules
 * below (channels 1|3, std > 0...). So one libyaml pass first records the
 * line of every mapping key by its dotted path ("input.channels"); it also
 * gives exact lines for YAML syntax errors. */

#define MAX_KEYS 256
#define MAX_DEPTH 16
#define MAX_PATH 128

typedef struct key_line {
    char path[MAX_PATH];
    int line;
} key_line;

typedef struct key_index {
    key_line keys[MAX_KEYS];
    int n;
    int root_line;
} key_index;

/* The line of the first (or last) key with this path; 1 if none. */
static int key_line_of(const key_index *ix, const char *path, int last)
{
    int line = 0;
    for (int i = 0; i < ix->n; i++)
        if (strcmp(ix->keys[i].path, path) == 0) {
            line = ix->keys[i].line;
            if (!last)
                break;
        }
    return line ? line : ix->root_line ? ix->root_line : 1;
}

static int index_keys(const char *yaml, size_t len, const char *name,
                      key_index *ix, sm_err *err)
{
    struct frame {
        int is_map, want_key;
        char key[MAX_PATH];
    } st[MAX_DEPTH];
    int depth = 0, docs = 0, rc = 0, done = 0;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return sm_err_set(err, "%s: out of memory", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = sm_err_set(err, "%s:%zu: YAML syntax error: %s%s%s", name,
                            p.problem_mark.line + 1,
                            p.problem ? p.problem : "cannot parse",
                            p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        struct frame *top = depth ? &st[depth - 1] : NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = sm_err_set(err, "%s:%d: only one YAML document is "
                                "allowed", name, line);
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (!ix->root_line)
                ix->root_line = line;
            if (top && top->is_map)
                top->want_key = 1; /* this node is the pending value */
            if (depth == MAX_DEPTH) {
                rc = sm_err_set(err, "%s:%d: nested more than %d deep", name,
                                line, MAX_DEPTH);
                break;
            }
            st[depth].is_map = ev.type == YAML_MAPPING_START_EVENT;
            st[depth].want_key = 1;
            st[depth].key[0] = '\0';
            depth++;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (!ix->root_line)
                ix->root_line = line;
            if (!top || !top->is_map)
                break;
            if (!top->want_key) {
                top->want_key = 1;
                break;
            }
            top->want_key = 0;
            snprintf(top->key, sizeof top->key, "%s",
                     ev.type == YAML_SCALAR_EVENT
                         ? (const char *)ev.data.scalar.value : "*alias");
            if (ix->n < MAX_KEYS) {
                key_line *k = &ix->keys[ix->n++];
                size_t off = 0;
                k->path[0] = '\0';
                for (int d = 0; d < depth && off < sizeof k->path; d++)
                    if (st[d].is_map)
                        off += (size_t)snprintf(k->path + off,
                                                sizeof k->path - off, "%s%s",
                                                off ? "." : "", st[d].key);
                k->line = line;
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ---- libcyaml's log, captured ------------------------------------------- */

typedef struct log_capture {
    char text[2048];
    size_t len;
} log_capture;

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt,
                        va_list args)
{
    log_capture *c = ctx;
    if (level < CYAML_LOG_ERROR || c->len + 1 >= sizeof c->text)
        return;
    int n = vsnprintf(c->text + c->len, sizeof c->text - c->len, fmt, args);
    if (n > 0)
        c->len += (size_t)n < sizeof c->text - c->len
                      ? (size_t)n : sizeof c->text - c->len - 1;
}

/* Turns libcyaml's report, e.g.
 *   Load: Unexpected key: depth
 *   Load: Backtrace:
 *     in mapping (line: 4, column: 10)
 *     in mapping field 'input' (line: 1, column: 8)
 * into "name:5: input.depth: unknown key". */
static int cyaml_fail(const log_capture *c, cyaml_err_t e,
                      const key_index *ix, const char *name, sm_err *err)
{
    char what[256] = "";
    char fields[MAX_DEPTH][64]; /* innermost first */
    int nf = 0, inner_line = 0;
    const char *p = c->text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char ln[512];
        snprintf(ln, sizeof ln, "%.*s", (int)(n < 511 ? n : 511), p);
        const char *f = strstr(ln, "in mapping field '");
        const char *at = strstr(ln, "(line: ");
        if (at && !inner_line)
            inner_line = atoi(at + 7);
        if (f && nf < MAX_DEPTH) {
            f += strlen("in mapping field '");
            const char *q = strchr(f, '\'');
            snprintf(fields[nf++], sizeof fields[0], "%.*s",
                     (int)(q ? q - f : 0), f);
        } else if (!what[0] && strncmp(ln, "Load: ", 6) == 0 &&
                   strcmp(ln, "Load: Backtrace:") != 0)
            snprintf(what, sizeof what, "%.200s", ln + 6);
        p += n + (eol ? 1 : 0);
    }
    if (!what[0])
        snprintf(what, sizeof what, "%s", cyaml_strerror(e));
    /* "Expecting SEQUENCE, got event: SCALAR" -> "expected a list, found
     * a scalar" */
    static const char *const kinds[][2] = {
        {"SEQUENCE", "a list"}, {"MAPPING", "a mapping"},
        {"STRING", "a single value"}, {"ENUM", "a name"},
        {"SCALAR", "a scalar"}, {"SEQUENCE_START", "a list"},
        {"MAPPING_START", "a mapping"}};
    char want_k[32], got_k[32];
    if (sscanf(what, "Expecting %31[A-Z_], got event: %31[A-Z_]", want_k,
               got_k) == 2) {
        const char *a = want_k, *b = got_k;
        for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
            if (strcmp(want_k, kinds[i][0]) == 0)
                a = kinds[i][1];
            if (strcmp(got_k, kinds[i][0]) == 0)
                b = kinds[i][1];
        }
        snprintf(what, sizeof what, "expected %s, found %s", a, b);
    } else if (strstr(what, "STRING length < 1"))
        snprintf(what, sizeof what, "empty string");

    char path[MAX_PATH] = "", key[128] = "";
    int use_key_line = 0, last = 0;
    const char *tail;
    if ((tail = strstr(what, "Unexpected key: "))) {
        snprintf(key, sizeof key, "%.100s",
                 tail + strlen("Unexpected key: "));
        snprintf(what, sizeof what, "unknown key");
        use_key_line = 1;
    } else if ((tail = strstr(what, "Missing required mapping field: "))) {
        snprintf(key, sizeof key, "%.100s",
                 tail + strlen("Missing required mapping field: "));
        /* The innermost entry is whichever field the mapping saw last. */
        if (nf) {
            memmove(fields[0], fields[1], sizeof fields[0] * (size_t)(nf - 1));
            nf--;
        }
        char k[160];
        snprintf(k, sizeof k, "missing required key '%.100s'", key);
        snprintf(what, sizeof what, "%s", k);
        key[0] = '\0';
        use_key_line = 1;
    } else if (strstr(what, "Mapping field already seen")) {
        snprintf(what, sizeof what, "key given twice");
        use_key_line = last = 1;
    }
    size_t off = 0;
    for (int i = nf - 1; i >= 0 && off < sizeof path; i--)
        off += (size_t)snprintf(path + off, sizeof path - off, "%s%s",
                                off ? "." : "", fields[i]);
    if (key[0] && off < sizeof path &&
        snprintf(path + off, sizeof path - off, "%s%s", off ? "." : "", key) <
            0)
        path[0] = '\0';
    int line = use_key_line || !inner_line ? key_line_of(ix, path, last)
                                           : inner_line;
    if (path[0])
        return sm_err_set(err, "%s:%d: %s: %s", name, line, path, what);
    return sm_err_set(err, "%s:%d: %s", name, line, what);
}

/* ---- checks and conversion ---------------------------------------------- */

/* A decimal integer, all of s. */
static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'))
        return -1; /* strtol would skip leading spaces */
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < INT_MIN || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/* A finite decimal number (digits, sign, '.', exponent), all of s; no
 * hex, inf or nan. */
static int parse_number(const char *s, float *out)
{
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v) || !isfinite((float)v))
        return -1;
    *out = (float)v;
    return 0;
}

static int input_dim(const char *text, const char *key, const key_index *ix,
                     const char *name, int *out, sm_err *err)
{
    if (parse_int(text, out))
        return sm_err_set(err, "%s:%d: %s: '%s' is not an integer", name,
                          key_line_of(ix, key, 0), key, text);
    return 0;
}

static int per_channel(char **v, unsigned count, int channels,
                       const char *key, int positive, const key_index *ix,
                       const char *name, float *out, sm_err *err)
{
    if (!v)
        return 0;
    int line = key_line_of(ix, key, 0);
    if ((int)count != channels)
        return sm_err_set(err, "%s:%d: %s: %u values for %d channel%s", name,
                          line, key, count, channels, channels > 1 ? "s" : "");
    for (unsigned i = 0; i < count; i++) {
        if (parse_number(v[i], &out[i]))
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

static int convert(const raw_config *raw, const key_index *ix,
                   const char *name, sm_model_config *cfg, sm_err *err)
{
    const raw_input *in = raw->input;
    if (input_dim(in->channels, "input.channels", ix, name, &cfg->channels,
                  err) ||
        input_dim(in->height, "input.height", ix, name, &cfg->height, err) ||
        input_dim(in->width, "input.width", ix, name, &cfg->width, err))
        return -1;
    if (cfg->channels != 1 && cfg->channels != 3)
        return sm_err_set(err, "%s:%d: input.channels: must be 1 or 3, not "
                          "%d", name, key_line_of(ix, "input.channels", 0),
                          cfg->channels);
    if (cfg->height < 1)
        return sm_err_set(err, "%s:%d: input.height: must be positive, not "
                          "%d", name, key_line_of(ix, "input.height", 0),
                          cfg->height);
    if (cfg->width < 1)
        return sm_err_set(err, "%s:%d: input.width: must be positive, not %d",
                          name, key_line_of(ix, "input.width", 0),
                          cfg->width);
    if ((int64_t)cfg->height * cfg->width > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "%s:%d: input: %dx%d is over the limit of "
                          "%lld pixels", name, key_line_of(ix, "input", 0),
                          cfg->width, cfg->height,
                          (long long)SM_IMAGE_MAX_PIXELS);
    sm_preproc pp;
    sm_preproc_init(&pp, cfg->channels, cfg->height, cfg->width);
    cfg->scale = pp.scale;
    memcpy(cfg->mean, pp.mean, sizeof cfg->mean);
    memcpy(cfg->std, pp.std, sizeof cfg->std);
    if (raw->scale && (parse_number(raw->scale, &cfg->scale) ||
                       !(cfg->scale > 0)))
        return sm_err_set(err, "%s:%d: scale: '%s' is not a number > 0",
                          name, key_line_of(ix, "scale", 0), raw->scale);
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
                                      key_line_of(ix, "classes", 0),
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
    key_index *ix = calloc(1, sizeof *ix);
    sm_model_config *cfg = calloc(1, sizeof *cfg);
    raw_config *raw = NULL;
    log_capture cap = {.len = 0};
    cyaml_config_t cy = {
        .log_fn = capture_log,
        .log_ctx = &cap,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        /* Aliases can expand a small file into a huge one. */
        .flags = CYAML_CFG_NO_ALIAS,
    };
    int rc = -1;
    if (!ix || !cfg || !(cfg->source = dup_str(name))) {
        sm_err_set(err, "%s: out of memory", name);
        goto done;
    }
    if (index_keys(yaml, len, name, ix, err))
        goto done;
    cyaml_err_t e = cyaml_load_data((const uint8_t *)yaml, len, &cy,
                                    &config_schema, (cyaml_data_t **)&raw,
                                    NULL);
    if (e != CYAML_OK) {
        cyaml_fail(&cap, e, ix, name, err);
        raw = NULL;
        goto done;
    }
    if (!raw || !raw->input) {
        sm_err_set(err, "%s:%d: missing required key 'input'", name,
                   ix->root_line ? ix->root_line : 1);
        goto done;
    }
    rc = convert(raw, ix, name, cfg, err);
done:
    if (raw)
        cyaml_free(&cy, &config_schema, raw, 0);
    free(ix);
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
