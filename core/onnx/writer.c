#include "onnx/writer.h"

#include <stdlib.h>
#include <string.h>

#include "onnx/proto.h"
#include "util/file.h"

/* Every piece of the message tree is allocated through the writer and freed
 * in one sweep, so the protobuf-c structs need no per-type destructor. */
struct sm_onnx_writer {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    Onnx__NodeProto *last;
    void **allocs;
    size_t n_allocs, cap_allocs;
    int failed;
};

static void *wal(sm_onnx_writer *w, size_t n)
{
    if (w->failed)
        return NULL;
    if (w->n_allocs == w->cap_allocs) {
        size_t nc = w->cap_allocs ? w->cap_allocs * 2 : 256;
        void **na = realloc(w->allocs, nc * sizeof *na);
        if (!na) {
            w->failed = 1;
            return NULL;
        }
        w->allocs = na;
        w->cap_allocs = nc;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        w->failed = 1;
        return NULL;
    }
    w->allocs[w->n_allocs++] = p;
    return p;
}

static char *wstr(sm_onnx_writer *w, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = wal(w, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Appends item to a protobuf-c repeated field (array + count). */
static int push(sm_onnx_writer *w, void ***arr, size_t *n, void *item)
{
    if (!item)
        return -1;
    void **na = wal(w, (*n + 1) * sizeof(void *));
    if (!na)
        return -1;
    if (*n)
        memcpy(na, *arr, *n * sizeof(void *));
    na[(*n)++] = item;
    *arr = na; /* the old array stays in the sweep list */
    return 0;
}

sm_onnx_writer *sm_onnx_writer_new(int opset)
{
    sm_onnx_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    onnx__model_proto__init(&w->model);
    onnx__graph_proto__init(&w->graph);
    onnx__operator_set_id_proto__init(&w->opset);
    w->opset.domain = "";
    w->opset.has_version = 1;
    w->opset.version = opset;
    w->opsets[0] = &w->opset;
    w->model.has_ir_version = 1;
    w->model.ir_version = 8;
    w->model.n_opset_import = 1;
    w->model.opset_import = w->opsets;
    w->model.producer_name = "salmap";
    w->model.graph = &w->graph;
    w->graph.name = "salmap";
    return w;
}

void sm_onnx_writer_destroy(sm_onnx_writer **w)
{
    if (!w || !*w)
        return;
    for (size_t i = 0; i < (*w)->n_allocs; i++)
        free((*w)->allocs[i]);
    free((*w)->allocs);
    free(*w);
    *w = NULL;
}

static Onnx__ValueInfoProto *value_info(sm_onnx_writer *w, const char *name,
                                        int ndim, const int64_t *shape)
{
    Onnx__ValueInfoProto *vi = wal(w, sizeof *vi);
    Onnx__TypeProto *tp = wal(w, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = wal(w, sizeof *tt);
    Onnx__TensorShapeProto *sp = wal(w, sizeof *sp);
    Onnx__TensorShapeProto__Dimension **dims =
        wal(w, (size_t)(ndim + 1) * sizeof *dims);
    if (!vi || !tp || !tt || !sp || !dims)
        return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = wal(w, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (shape[i] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = i == 0 ? "N" : "?";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = shape[i];
        }
        dims[i] = d;
    }
    sp->n_dim = (size_t)ndim;
    sp->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = wstr(w, name);
    vi->type = tp;
    return vi->name ? vi : NULL;
}

int sm_onnx_writer_input(sm_onnx_writer *w, const char *name, int ndim,
                         const int64_t *shape)
{
    return push(w, (void ***)&w->graph.input, &w->graph.n_input,
                value_info(w, name, ndim, shape));
}

int sm_onnx_writer_output(sm_onnx_writer *w, const char *name, int ndim,
                          const int64_t *shape)
{
    return push(w, (void ***)&w->graph.output, &w->graph.n_output,
                value_info(w, name, ndim, shape));
}

static Onnx__TensorProto *tensor_proto(sm_onnx_writer *w, const char *name,
                                       const sm_tensor *t)
{
    Onnx__TensorProto *tp = wal(w, sizeof *tp);
    int64_t *dims = wal(w, (size_t)(t->ndim + 1) * sizeof(int64_t));
    size_t n = (size_t)sm_tensor_numel(t);
    size_t bytes = n * (t->i64 ? sizeof(int64_t) : sizeof(float));
    unsigned char *raw = wal(w, bytes);
    if (!tp || !dims || !raw)
        return NULL;
    onnx__tensor_proto__init(tp);
    memcpy(dims, t->shape, (size_t)t->ndim * sizeof(int64_t));
    memcpy(raw, t->i64 ? (const void *)t->i64 : (const void *)t->data, bytes);
    tp->n_dims = (size_t)t->ndim;
    tp->dims = dims;
    tp->has_data_type = 1;
    tp->data_type = t->i64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64
                           : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tp->has_raw_data = 1;
    tp->raw_data.len = bytes;
    tp->raw_data.data = raw;
    tp->name = wstr(w, name);
    return tp->name ? tp : NULL;
}

int sm_onnx_writer_initializer(sm_onnx_writer *w, const char *name,
                               const sm_tensor *t)
{
    return push(w, (void ***)&w->graph.initializer, &w->graph.n_initializer,
                tensor_proto(w, name, t));
}

int sm_onnx_writer_node(sm_onnx_writer *w, const char *op_type,
                        const char *name, const char *const *inputs, int n_in,
                        const char *const *outputs, int n_out)
{
    Onnx__NodeProto *np = wal(w, sizeof *np);
    char **in = wal(w, (size_t)(n_in + 1) * sizeof(char *));
    char **out = wal(w, (size_t)(n_out + 1) * sizeof(char *));
    if (!np || !in || !out)
        return -1;
    onnx__node_proto__init(np);
    for (int i = 0; i < n_in; i++)
        if (!(in[i] = wstr(w, inputs[i])))
            return -1;
    for (int i = 0; i < n_out; i++)
        if (!(out[i] = wstr(w, outputs[i])))
            return -1;
    np->n_input = (size_t)n_in;
    np->input = in;
    np->n_output = (size_t)n_out;
    np->output = out;
    np->op_type = wstr(w, op_type);
    np->name = wstr(w, name ? name : "");
    np->domain = "";
    w->last = np;
    return push(w, (void ***)&w->graph.node, &w->graph.n_node, np);
}

static Onnx__AttributeProto *attr(sm_onnx_writer *w, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    if (!w->last) {
        w->failed = 1;
        return NULL;
    }
    Onnx__AttributeProto *a = wal(w, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = wstr(w, name);
    a->has_type = 1;
    a->type = type;
    if (push(w, (void ***)&w->last->attribute, &w->last->n_attribute, a))
        return NULL;
    return a->name ? a : NULL;
}

int sm_onnx_writer_attr_int(sm_onnx_writer *w, const char *name, int64_t v)
{
    Onnx__AttributeProto *a =
        attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a)
        return -1;
    a->has_i = 1;
    a->i = v;
    return 0;
}

int sm_onnx_writer_attr_float(sm_onnx_writer *w, const char *name, float v)
{
    Onnx__AttributeProto *a =
        attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a)
        return -1;
    a->has_f = 1;
    a->f = v;
    return 0;
}

int sm_onnx_writer_attr_ints(sm_onnx_writer *w, const char *name,
                             const int64_t *v, int n)
{
    Onnx__AttributeProto *a =
        attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = wal(w, (size_t)(n + 1) * sizeof(int64_t));
    if (!a || !c)
        return -1;
    memcpy(c, v, (size_t)n * sizeof(int64_t));
    a->n_ints = (size_t)n;
    a->ints = c;
    return 0;
}

int sm_onnx_writer_attr_string(sm_onnx_writer *w, const char *name,
                               const char *v)
{
    Onnx__AttributeProto *a =
        attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *c = wstr(w, v);
    if (!a || !c)
        return -1;
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)c;
    return 0;
}

int sm_onnx_writer_attr_tensor(sm_onnx_writer *w, const char *name,
                               const sm_tensor *t)
{
    Onnx__AttributeProto *a =
        attr(w, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    if (!a)
        return -1;
    a->t = tensor_proto(w, "", t);
    return a->t ? 0 : -1;
}

unsigned char *sm_onnx_writer_serialize(sm_onnx_writer *w, size_t *len,
                                        sm_err *err)
{
    if (w->failed) {
        sm_err_set(err, "ONNX writer: out of memory or an attribute before "
                   "any node while building the model");
        return NULL;
    }
    size_t n = onnx__model_proto__get_packed_size(&w->model);
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        sm_err_set(err, "ONNX writer: out of memory (%zu bytes)", n);
        return NULL;
    }
    *len = onnx__model_proto__pack(&w->model, buf);
    return buf;
}

int sm_onnx_writer_save(sm_onnx_writer *w, const char *path, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, err);
    if (!buf)
        return sm_err_prefix(err, "%s", path);
    int rc = sm_file_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}
