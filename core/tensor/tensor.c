#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t sm_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int64_t sm_tensor_numel(const sm_tensor *t)
{
    return sm_shape_numel(t->ndim, t->shape);
}

sm_tensor sm_tensor_rows(const sm_tensor *t, int64_t r0, int64_t n)
{
    int64_t row = sm_tensor_numel(t) / (t->shape[0] ? t->shape[0] : 1);
    sm_tensor v = *t;
    v.owns = 0;
    v.shape[0] = n;
    v.data = t->data + r0 * row;
    return v;
}

sm_tensor *sm_tensor_new(int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > SM_MAX_DIMS)
        return NULL;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return NULL;
    sm_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    int64_t n = sm_shape_numel(ndim, shape);
    /* calloc(0) may return NULL: keep one element so data is never NULL. */
    t->data = calloc((size_t)(n ? n : 1), sizeof(float));
    if (!t->data) {
        free(t);
        return NULL;
    }
    t->owns = 1;
    return t;
}

sm_tensor *sm_tensor_clone(const sm_tensor *src)
{
    sm_tensor *t = sm_tensor_new(src->ndim, src->shape);
    if (t && src->data)
        memcpy(t->data, src->data, (size_t)sm_tensor_numel(src) * sizeof(float));
    return t;
}

void sm_tensor_destroy(sm_tensor **t)
{
    if (!t || !*t)
        return;
    if ((*t)->owns) {
        free((*t)->data);
        free((*t)->i64);
    }
    free(*t);
    *t = NULL;
}

int sm_shape_equal(int na, const int64_t *a, int nb, const int64_t *b)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

const char *sm_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "",
                                (long long)shape[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
    return buf;
}

int sm_shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                       int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1)
            return -1;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return 0;
}
