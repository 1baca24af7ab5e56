#include "explain/record.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marks r incomplete: an add ran out of memory. -1. */
static int failed(sm_record *r)
{
    r->failed = 1;
    return -1;
}

/* Opens the member "key": the object's closing brace is taken off and put
 * back by member_close, so the text is a whole object between adds. */
static int member_open(sm_record *r, const char *key)
{
    sm_text *t = &r->json;
    if (t->len == 0)
        return sm_text_addf(t, "{\"%s\": ", key);
    t->s[--t->len] = '\0'; /* the '}' */
    return sm_text_addf(t, ", \"%s\": ", key);
}

static int member_close(sm_record *r, int rc)
{
    /* On failure the member may be half written: end the object anyway so
     * the text stays one object (the failure is reported). */
    if (sm_text_addf(&r->json, "}") || rc)
        return failed(r);
    return r->failed ? -1 : 0;
}

int sm_record_addf(sm_record *r, const char *key, const char *fmt, ...)
{
    if (member_open(r, key))
        return failed(r);
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    int rc = n < 0;
    if (!rc && (size_t)n < sizeof small) {
        rc = sm_text_addf(&r->json, "%s", small);
    } else if (!rc) {
        char *big = malloc((size_t)n + 1);
        va_start(ap, fmt);
        rc = !big || vsnprintf(big, (size_t)n + 1, fmt, ap) != n ||
             sm_text_addf(&r->json, "%s", big);
        va_end(ap);
        free(big);
    }
    return member_close(r, rc ? -1 : 0);
}

int sm_record_str(sm_record *r, const char *key, const char *s)
{
    int rc = member_open(r, key) || sm_text_addf(&r->json, "\"");
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = sm_text_addf(&r->json, "\\%c", *p);
        else if (*p < 0x20)
            rc = sm_text_addf(&r->json, "\\u%04x", *p);
        else
            rc = sm_text_addf(&r->json, "%c", *p);
    }
    return member_close(r, rc || sm_text_addf(&r->json, "\"") ? -1 : 0);
}

int sm_record_nums(sm_record *r, const char *key, const double *v, size_t n)
{
    int rc = member_open(r, key) || sm_text_addf(&r->json, "[");
    for (size_t i = 0; i < n && !rc; i++)
        rc = sm_text_addf(&r->json, "%s%.9g", i ? ", " : "", v[i]);
    return member_close(r, rc || sm_text_addf(&r->json, "]") ? -1 : 0);
}

int sm_record_name_valid(const char *name)
{
    return sm_name_valid(name, SM_RECORD_NAME_MAX);
}

int64_t sm_record_array_count(const sm_record_array *a)
{
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++)
        n *= a->shape[d];
    return n;
}

int sm_record_array_add(sm_record *r, const char *name, int ndim,
                        const int64_t *shape, const float *data)
{
    assert(sm_record_name_valid(name));
    assert(ndim >= 1 && ndim <= SM_RECORD_MAX_DIMS);
    sm_record_array a = {.ndim = ndim};
    for (int d = 0; d < ndim; d++) {
        assert(shape[d] >= 1);
        a.shape[d] = shape[d];
    }
    size_t bytes = sizeof(float) * (size_t)sm_record_array_count(&a);
    sm_record_array *grown =
        realloc(r->arrays, sizeof *grown * (r->n_arrays + 1));
    if (!grown)
        return failed(r);
    r->arrays = grown;
    a.name = strdup(name);
    a.data = malloc(bytes);
    if (!a.name || !a.data) {
        free(a.name);
        free(a.data);
        return failed(r);
    }
    memcpy(a.data, data, bytes);
    r->arrays[r->n_arrays++] = a;
    return 0;
}

const char *sm_record_json(const sm_record *r)
{
    return r->json.len ? r->json.s : "{}";
}

/* Past the JSON string at s (at its opening quote); NULL if unended. */
static const char *skip_string(const char *s)
{
    for (s++; *s && *s != '"'; s++)
        if (*s == '\\' && !*++s)
            return NULL;
    return *s ? s + 1 : NULL;
}

/* The end of the member value at s: the ',' or '}' after it at depth 0;
 * NULL if the text ends first. Strings, objects and arrays skipped whole. */
static const char *skip_value(const char *s)
{
    for (int depth = 0;;) {
        if (*s == '"') {
            if (!(s = skip_string(s)))
                return NULL;
        } else if (!*s) {
            return NULL;
        } else if ((*s == '}' || *s == ']' || *s == ',') && depth == 0) {
            return s;
        } else {
            depth += (*s == '{' || *s == '[') - (*s == '}' || *s == ']');
            s++;
        }
    }
}

int sm_record_number(const sm_record *r, const char *key, double *v)
{
    const char *s = r->json.s;
    size_t klen = strlen(key);
    if (!s || *(s += strspn(s, " \t\r\n")) != '{')
        return 0;
    for (s++;;) {
        s += strspn(s, " \t\r\n,");
        if (*s != '"')
            return 0;
        const char *k = s + 1, *end = skip_string(s);
        if (!end)
            return 0;
        s = end + strspn(end, " \t\r\n");
        if (*s++ != ':')
            return 0;
        s += strspn(s, " \t\r\n");
        if ((size_t)(end - 1 - k) == klen && memcmp(k, key, klen) == 0) {
            char *num_end;
            double x = strtod(s, &num_end);
            if (num_end == s || (*s != '-' && (*s < '0' || *s > '9')))
                return 0;
            *v = x;
            return 1;
        }
        if (!(s = skip_value(s)))
            return 0;
    }
}

int sm_record_set_json(sm_record *r, const char *json)
{
    r->json.len = 0;
    if (sm_text_addf(&r->json, "%s", json))
        return failed(r);
    return 0;
}

void sm_record_move(sm_record *dst, sm_record *src)
{
    sm_record_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

void sm_record_free(sm_record *r)
{
    sm_text_free(&r->json);
    for (size_t i = 0; i < r->n_arrays; i++) {
        free(r->arrays[i].name);
        free(r->arrays[i].data);
    }
    free(r->arrays);
    r->arrays = NULL;
    r->n_arrays = 0;
    r->failed = 0;
}
