#include "config/yaml_strict.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "data/image.h"

#define MAX_DEPTH 16

/* ---- where each key is -------------------------------------------------- */

/* libcyaml's messages carry lines, but for an unknown or repeated key they
 * point at the event before it, and callers check rules libcyaml does not
 * (ranges, names). So one libyaml pass first records the line of every
 * mapping key by its dotted path; it also gives exact lines for YAML syntax
 * errors, and lets callers read mappings whose keys are not known in
 * advance (a job file's params). */

int sm_yaml_line(const sm_yaml_keys *ix, const char *path, int last)
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

void sm_yaml_keys_free(sm_yaml_keys *ix)
{
    for (int i = 0; i < ix->n; i++) {
        free(ix->keys[i].name);
        free(ix->keys[i].value);
    }
    free(ix->keys);
    memset(ix, 0, sizeof *ix);
}

static char *dup_text(const unsigned char *s)
{
    size_t n = strlen((const char *)s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

typedef struct frame {
    int is_map, want_key;
    int key; /* index of this mapping's latest key; -1 before the first */
} frame;

/* A new key in the mapping st[depth - 1]: its path, parent and line. */
static int add_key(sm_yaml_keys *ix, const frame *st, int depth,
                   const yaml_event_t *ev)
{
    if (ix->n == ix->cap) {
        int cap = ix->cap ? 2 * ix->cap : 32;
        sm_yaml_key *k = realloc(ix->keys, (size_t)cap * sizeof *k);
        if (!k)
            return -1;
        ix->keys = k;
        ix->cap = cap;
    }
    sm_yaml_key *k = &ix->keys[ix->n];
    memset(k, 0, sizeof *k);
    k->name = dup_text(ev->type == YAML_SCALAR_EVENT
                           ? ev->data.scalar.value
                           : (const unsigned char *)"*alias");
    if (!k->name)
        return -1;
    k->line = (int)ev->start_mark.line + 1;
    k->parent = -1;
    for (int d = depth - 2; d >= 0 && k->parent < 0; d--)
        if (st[d].is_map)
            k->parent = st[d].key;
    size_t off = 0;
    for (int d = 0; d < depth && off < sizeof k->path; d++)
        if (st[d].is_map)
            off += (size_t)snprintf(k->path + off, sizeof k->path - off,
                                    "%s%s", off ? "." : "",
                                    d == depth - 1 ? k->name
                                                   : ix->keys[st[d].key].name);
    return ix->n++;
}

static int index_keys(const char *yaml, size_t len, const char *name,
                      sm_yaml_keys *ix, sm_err *err)
{
    frame st[MAX_DEPTH];
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
        frame *top = depth ? &st[depth - 1] : NULL;
        /* The key whose value this event starts, if any. */
        sm_yaml_key *valued = top && top->is_map && !top->want_key
                                  ? &ix->keys[top->key] : NULL;
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
            if (valued) {
                valued->kind = ev.type == YAML_MAPPING_START_EVENT
                                   ? SM_YAML_MAPPING : SM_YAML_SEQUENCE;
                top->want_key = 1;
            }
            /* A complex key ({[a]: 1}, "? [a]") has no name to index it
             * by, and no config has one. */
            if (top && top->is_map && top->want_key && !valued) {
                rc = sm_err_set(err, "%s:%d: a mapping key must be a plain "
                                "value, not a %s", name, line,
                                ev.type == YAML_MAPPING_START_EVENT
                                    ? "mapping" : "sequence");
                break;
            }
            if (depth == MAX_DEPTH) {
                rc = sm_err_set(err, "%s:%d: nested more than %d deep", name,
                                line, MAX_DEPTH);
                break;
            }
            st[depth].is_map = ev.type == YAML_MAPPING_START_EVENT;
            st[depth].want_key = 1;
            st[depth].key = -1;
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
            if (valued) {
                top->want_key = 1;
                if (ev.type == YAML_ALIAS_EVENT)
                    valued->kind = SM_YAML_ALIAS;
                else if (!(valued->value = dup_text(ev.data.scalar.value)))
                    rc = sm_err_set(err, "%s: out of memory", name);
                break;
            }
            if (!top || !top->is_map)
                break;
            top->want_key = 0;
            if ((top->key = add_key(ix, st, depth, &ev)) < 0)
                rc = sm_err_set(err, "%s: out of memory", name);
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
                      const sm_yaml_keys *ix, const char *name, sm_err *err)
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

    char path[SM_YAML_MAX_PATH] = "", key[128] = "";
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
    int line = use_key_line || !inner_line ? sm_yaml_line(ix, path, last)
                                           : inner_line;
    if (path[0])
        return sm_err_set(err, "%s:%d: %s: %s", name, line, path, what);
    return sm_err_set(err, "%s:%d: %s", name, line, what);
}


/* ---- loading ------------------------------------------------------------ */

static cyaml_config_t cyaml_config(log_capture *cap)
{
    return (cyaml_config_t){
        .log_fn = capture_log,
        .log_ctx = cap,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        /* Aliases can expand a small file into a huge one. */
        .flags = CYAML_CFG_NO_ALIAS,
    };
}

int sm_yaml_load(const char *yaml, size_t len, const char *name,
                 const cyaml_schema_value_t *schema, void **data,
                 sm_yaml_keys *keys, sm_err *err)
{
    log_capture cap = {.len = 0};
    cyaml_config_t cy = cyaml_config(&cap);
    *data = NULL;
    if (index_keys(yaml, len, name, keys, err))
        return -1;
    cyaml_err_t e = cyaml_load_data((const uint8_t *)yaml, len, &cy, schema,
                                    (cyaml_data_t **)data, NULL);
    if (e != CYAML_OK) {
        *data = NULL;
        return cyaml_fail(&cap, e, keys, name, err);
    }
    return 0;
}

void sm_yaml_free(const cyaml_schema_value_t *schema, void *data)
{
    log_capture cap = {.len = 0};
    cyaml_config_t cy = cyaml_config(&cap);
    if (data)
        cyaml_free(&cy, schema, data, 0);
}

/* ---- strict numbers ----------------------------------------------------- */

int sm_yaml_parse_int(const char *s, int *out)
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

int sm_yaml_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!(*s >= '0' && *s <= '9'))
        return -1; /* strtoull would take spaces and a '-' */
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int sm_yaml_parse_float(const char *s, float *out)
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

size_t sm_yaml_quote(char *dst, size_t cap, const char *s)
{
    size_t len = 0;
#define PUT(...) len += (size_t)snprintf(dst + len, len < cap ? cap - len : 0, __VA_ARGS__)
    PUT("\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            PUT("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            PUT("\\x%02x", *p);
        else
            PUT("%c", *p);
    }
    PUT("\"");
#undef PUT
    return len;
}

/* ---- image sizes -------------------------------------------------------- */

const cyaml_schema_field_t sm_yaml_image_fields[] = {
    CYAML_FIELD_STRING_PTR("channels", CYAML_FLAG_POINTER, sm_yaml_image,
                           channels, 1, 32),
    CYAML_FIELD_STRING_PTR("height", CYAML_FLAG_POINTER, sm_yaml_image,
                           height, 1, 32),
    CYAML_FIELD_STRING_PTR("width", CYAML_FLAG_POINTER, sm_yaml_image, width,
                           1, 32),
    CYAML_FIELD_END};

static int image_dim(const char *text, const char *key, const char *dim,
                     int positive, const sm_yaml_keys *ix, const char *name,
                     int *out, sm_err *err)
{
    char path[SM_YAML_MAX_PATH];
    snprintf(path, sizeof path, "%s.%s", key, dim);
    int line = sm_yaml_line(ix, path, 0);
    if (sm_yaml_parse_int(text, out))
        return sm_err_set(err, "%s:%d: %s: '%s' is not an integer", name,
                          line, path, text);
    if (!positive && *out != 1 && *out != 3)
        return sm_err_set(err, "%s:%d: %s: must be 1 or 3, not %d", name,
                          line, path, *out);
    if (positive && *out < 1)
        return sm_err_set(err, "%s:%d: %s: must be positive, not %d", name,
                          line, path, *out);
    return 0;
}

int sm_yaml_image_size(const sm_yaml_image *raw, const char *key,
                       const sm_yaml_keys *ix, const char *name, int *c,
                       int *h, int *w, sm_err *err)
{
    if (image_dim(raw->channels, key, "channels", 0, ix, name, c, err) ||
        image_dim(raw->height, key, "height", 1, ix, name, h, err) ||
        image_dim(raw->width, key, "width", 1, ix, name, w, err))
        return -1;
    if ((int64_t)*h * *w > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "%s:%d: %s: %dx%d is over the limit of "
                          "%lld pixels", name, sm_yaml_line(ix, key, 0), key,
                          *w, *h, (long long)SM_IMAGE_MAX_PIXELS);
    return 0;
}
