#include "onnx/attr.h"

#include <stdio.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnx/tensorproto_internal.h"

static const Onnx__AttributeProto *find(const sm_attrs *a, const char *name)
{
    for (size_t i = 0; i < a->node->n_attribute; i++)
        if (a->node->attribute[i]->name &&
            strcmp(a->node->attribute[i]->name, name) == 0)
            return a->node->attribute[i];
    return NULL;
}

static int wrong_type(const char *name, const char *want, sm_err *err)
{
    return sm_err_set(err, "attribute '%s' must be %s", name, want);
}

int sm_attrs_opset(const sm_attrs *a)
{
    return a->opset;
}

int sm_attrs_has(const sm_attrs *a, const char *name)
{
    return find(a, name) != NULL;
}

int sm_attrs_int(const sm_attrs *a, const char *name, int64_t def,
                 int64_t *out, sm_err *err)
{
    const Onnx__AttributeProto *at = find(a, name);
    if (!at) {
        *out = def;
        return 0;
    }
    if (at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return wrong_type(name, "an integer", err);
    *out = at->i;
    return 0;
}

int sm_attrs_float(const sm_attrs *a, const char *name, float def, float *out,
                   sm_err *err)
{
    const Onnx__AttributeProto *at = find(a, name);
    if (!at) {
        *out = def;
        return 0;
    }
    if (at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return wrong_type(name, "a float", err);
    *out = at->f;
    return 0;
}

int sm_attrs_string(const sm_attrs *a, const char *name, const char *def,
                    char *out, size_t cap, sm_err *err)
{
    const Onnx__AttributeProto *at = find(a, name);
    if (!at) {
        snprintf(out, cap, "%s", def);
        return 0;
    }
    if (at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return wrong_type(name, "a string", err);
    if (at->s.len >= cap)
        return sm_err_set(err, "attribute '%s': value too long", name);
    if (at->s.len) /* an empty string's data may be NULL */
        memcpy(out, at->s.data, at->s.len);
    out[at->s.len] = '\0';
    return 0;
}

int sm_attrs_ints(const sm_attrs *a, const char *name, int64_t *out, int cap,
                  int *n, sm_err *err)
{
    const Onnx__AttributeProto *at = find(a, name);
    *n = 0;
    if (!at)
        return 0;
    if (at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return wrong_type(name, "a list of integers", err);
    if (at->n_ints > (size_t)cap)
        return sm_err_set(err, "attribute '%s': %zu values (at most %d)",
                          name, at->n_ints, cap);
    if (at->n_ints) /* an empty list's array may be NULL */
        memcpy(out, at->ints, at->n_ints * sizeof(int64_t));
    *n = (int)at->n_ints;
    return 0;
}

int sm_attrs_tensor(const sm_attrs *a, const char *name, sm_tensor **out,
                    sm_err *err)
{
    const Onnx__AttributeProto *at = find(a, name);
    if (!at)
        return sm_err_set(err, "attribute '%s' is missing", name);
    if (at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !at->t)
        return wrong_type(name, "a tensor", err);
    if (sm_tensorproto_to_tensor(at->t, out, err))
        return sm_err_prefix(err, "attribute '%s'", name);
    return 0;
}
