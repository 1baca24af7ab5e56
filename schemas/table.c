/* The generic reader and packer of the message tables (table.h), and the
 * checks of the value types. One walk per direction: a field's C storage
 * is found by its offset and size, so a table entry is all a message
 * needs to add a field to both directions at once. */
#include "table.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* SUBMIT params: methods, and parameters in all (as job files, whose
 * bound is the same); it also keeps the repeated-name checks cheap. */
#define MAX_PARAMS 256
#define MAX_NAME 64

/* ---- C fields ------------------------------------------------------------ */

static void *at(void *m, size_t off)
{
    return (char *)m + off;
}

static const void *cat(const void *m, size_t off)
{
    return (const char *)m + off;
}

/* Integers of the sizes tables use: 4 bytes (int, uint32_t) or 8 (int64_t,
 * uint64_t, size_t; counts are never negative, so size_t reads the same
 * as int64_t). Exact-width types are two's complement, so one store
 * serves signed and unsigned fields. */
_Static_assert(sizeof(int) == sizeof(int32_t), "int fields are 4 bytes");

/* The field's bits; signed: whether 4 bytes widen with their sign. */
static uint64_t get_bits(const void *p, size_t size, int is_signed)
{
    uint32_t v4;
    uint64_t v8;
    if (size != sizeof v4)
        return memcpy(&v8, p, sizeof v8), v8;
    memcpy(&v4, p, sizeof v4);
    return is_signed && v4 >> 31 ? v4 | ~(uint64_t)UINT32_MAX : v4;
}

static int64_t get_int(const void *p, size_t size)
{
    uint64_t u = get_bits(p, size, 1);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void set_bits(void *p, size_t size, uint64_t v)
{
    uint32_t v4 = (uint32_t)v;
    if (size == sizeof v4)
        memcpy(p, &v4, sizeof v4);
    else
        memcpy(p, &v, sizeof v);
}

static const void *get_ptr(const void *m, size_t off)
{
    const void *p;
    memcpy(&p, cat(m, off), sizeof p);
    return p;
}

static void set_ptr(void *m, size_t off, const void *p)
{
    memcpy(at(m, off), &p, sizeof p);
}

static size_t get_count(const sm_msg_field *f, const void *m)
{
    if (!f->nsize)
        return 0;
    int64_t n = get_int(cat(m, f->off_n), f->nsize);
    return n > 0 ? (size_t)n : 0;
}

static void set_count(const sm_msg_field *f, void *m, size_t n)
{
    if (f->nsize)
        set_bits(at(m, f->off_n), f->nsize, (uint64_t)n);
}

/* ---- value checks --------------------------------------------------------- */

int sm_msg_check_hash(sm_mp_reader *r, const char *key, const char *s)
{
    if (s && !sm_hash_valid(s))
        return sm_mp_fail(r, key, "'%.80s' is not a content hash (64 "
                          "lower-case hex characters)", s);
    return 0;
}

/* Image ids and file paths become paths on the receiver's disk: no way
 * out of the folder they are put in, and no control characters (they also
 * go into index.csv lines). */
int sm_msg_check_path(sm_mp_reader *r, const char *key, const char *s)
{
    if (!s)
        return 0;
    if (!s[0])
        return sm_mp_fail(r, key, "empty");
    if (s[0] == '/')
        return sm_mp_fail(r, key, "'%.80s' starts with '/'", s);
    if (strstr(s, ".."))
        return sm_mp_fail(r, key, "'%.80s' contains '..'", s);
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            return sm_mp_fail(r, key, "'%.80s' contains a backslash", s);
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return sm_mp_fail(r, key, "contains control character 0x%02x",
                              (unsigned char)*p);
    }
    return 0;
}

/* Names of arrays and auxiliary models become file and setting names. */
int sm_msg_check_name(sm_mp_reader *r, const char *key, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (s && (n < 1 || n > MAX_NAME ||
              strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n))
        return sm_mp_fail(r, key, "'%.80s' is not a name (1 to %d characters "
                          "of a-z, 0-9 and _)", s, MAX_NAME);
    return 0;
}

/* The index of s in names[0..n), or -1 with "must be a, b or c". */
static int one_of(sm_mp_reader *r, const char *key, const char *s,
                  const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    char list[256] = "";
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                i == 0 ? "" : i == n - 1 ? " or " : ", ",
                                names[i]);
    sm_mp_fail(r, key, "must be %s, not '%.80s'", list, s);
    return -1;
}

/* ---- reading: arrays and maps --------------------------------------------- */

/* n elements of size bytes, zeroed, in the zone; never NULL on success
 * (a present empty array reads back as present). */
static void *alloc_array(sm_mp_reader *r, const char *key, size_t n,
                         size_t size)
{
    if (n > SIZE_MAX / size) {
        sm_mp_fail(r, key, "out of memory");
        return NULL;
    }
    void *p = sm_mp_alloc(r, key, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

/* An array field's elements, refusing an empty one when it must not be. */
static int elements(sm_mp_reader *r, const sm_msg_field *f,
                    const msgpack_object *v, const msgpack_object **items,
                    size_t *n)
{
    if (sm_mp_array(r, v, f->key, items, n))
        return -1;
    if (*n == 0 && (f->flags & SM_MSG_NONEMPTY))
        return sm_mp_fail(r, f->key, "empty");
    return 0;
}

static int read_strs(sm_mp_reader *r, const sm_msg_field *f,
                     const msgpack_object *v, void *m, size_t *count)
{
    const msgpack_object *items;
    size_t k;
    const char **s;
    if (elements(r, f, v, &items, &k) ||
        !(s = alloc_array(r, f->key, k, sizeof *s)))
        return -1;
    for (size_t i = 0; i < k; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s[%zu]", f->key, i);
        if (sm_mp_str(r, &items[i], name, &s[i]))
            return -1;
    }
    set_ptr(m, f->off, s);
    *count = k;
    return 0;
}

/* Into the inline int64_t array of the field (its size bounds the count). */
static int read_ints(sm_mp_reader *r, const sm_msg_field *f,
                     const msgpack_object *v, void *m, size_t *count)
{
    const msgpack_object *items;
    size_t k, max = f->size / sizeof(int64_t);
    if (elements(r, f, v, &items, &k))
        return -1;
    if (k > max)
        return sm_mp_fail(r, f->key, "%zu elements, more than %zu", k, max);
    for (size_t i = 0; i < k; i++) {
        char name[80];
        int64_t x;
        snprintf(name, sizeof name, "%s[%zu]", f->key, i);
        if (sm_mp_int(r, &items[i], name, f->lo, f->hi, &x))
            return -1;
        memcpy((char *)at(m, f->off) + i * sizeof x, &x, sizeof x);
    }
    *count = k;
    return 0;
}

static int read_structs(sm_mp_reader *r, const sm_msg_field *f,
                        const msgpack_object *v, void *m, size_t *count)
{
    const msgpack_object *items;
    size_t k;
    char *a;
    if (elements(r, f, v, &items, &k) ||
        !(a = alloc_array(r, f->key, k, f->sub->size)))
        return -1;
    for (size_t i = 0; i < k; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s[%zu]", f->key, i);
        if (sm_mp_map(r, &items[i], name))
            return -1;
        size_t mark = sm_mp_enter(r, name);
        if (sm_msg_read(r, f->sub, &items[i], a + i * f->sub->size))
            return -1;
        sm_mp_leave(r, mark);
    }
    set_ptr(m, f->off, a);
    *count = k;
    return 0;
}

/* 1 when key i of map (a str) repeats an earlier str key. */
static int same_key(const msgpack_object *map, uint32_t i)
{
    const msgpack_object *k = &map->via.map.ptr[i].key;
    for (uint32_t j = 0; j < i; j++) {
        const msgpack_object *o = &map->via.map.ptr[j].key;
        if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == k->via.str.size &&
            (k->via.str.size == 0 ||
             memcmp(o->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0))
            return 1;
    }
    return 0;
}

/* {name: hash} into the keys at off and the values at off_v. */
static int read_strmap(sm_mp_reader *r, const sm_msg_field *f,
                       const msgpack_object *v, void *m, size_t *count)
{
    if (sm_mp_map(r, v, f->key))
        return -1;
    uint32_t k = v->via.map.size;
    if (k > f->max)
        return sm_mp_fail(r, f->key, "%u entries, more than %zu", k, f->max);
    const char **keys, **vals;
    if (!(keys = alloc_array(r, f->key, k, sizeof *keys)) ||
        !(vals = alloc_array(r, f->key, k, sizeof *vals)))
        return -1;
    for (uint32_t i = 0; i < k; i++) {
        const msgpack_object_kv *kv = &v->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return sm_mp_fail(r, f->key, "names must be str, not %s",
                              sm_mp_type_name(&kv->key));
        if (sm_mp_str(r, &kv->key, f->key, &keys[i]) ||
            sm_msg_check_name(r, f->key, keys[i]))
            return -1;
        if (same_key(v, i))
            return sm_mp_fail(r, f->key, "'%s' given twice", keys[i]);
        size_t mark = sm_mp_enter(r, f->key);
        if (sm_mp_str(r, &kv->val, keys[i], &vals[i]) ||
            sm_msg_check_hash(r, keys[i], vals[i]))
            return -1;
        sm_mp_leave(r, mark);
    }
    set_ptr(m, f->off, keys);
    set_ptr(m, f->off_v, vals);
    *count = k;
    return 0;
}

/* A params value as text: str as is, ints in decimal, floats %.17g (enough
 * digits to read back the same double), bools true/false. */
static int param_text(sm_mp_reader *r, const msgpack_object *o,
                      const char *name, const char **out)
{
    char tmp[64];
    switch (o->type) {
    case MSGPACK_OBJECT_STR: return sm_mp_str(r, o, name, out);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(tmp, sizeof tmp, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(tmp, sizeof tmp, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        snprintf(tmp, sizeof tmp, "%.17g", o->via.f64);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(tmp, sizeof tmp, "%s", o->via.boolean ? "true" : "false");
        break;
    default:
        return sm_mp_fail(r, name, "expected str, int, float or bool, got %s",
                          sm_mp_type_name(o));
    }
    char *s = sm_mp_alloc(r, name, strlen(tmp) + 1);
    if (!s)
        return -1;
    memcpy(s, tmp, strlen(tmp) + 1);
    *out = s;
    return 0;
}

/* One method's {key: value} into "method.key=value" texts at s[*k...]. */
static int read_method_params(sm_mp_reader *r, const char *method,
                              const msgpack_object *mm, const char **s,
                              size_t *k)
{
    size_t mark = sm_mp_enter(r, method);
    for (uint32_t j = 0; j < mm->via.map.size; j++) {
        const msgpack_object_kv *kv = &mm->via.map.ptr[j];
        const char *key, *value;
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return sm_mp_fail(r, "", "parameter names must be str, not %s",
                              sm_mp_type_name(&kv->key));
        if (sm_mp_str(r, &kv->key, "", &key))
            return -1;
        if (!key[0] || strchr(key, '='))
            return sm_mp_fail(r, "", "parameter name '%.80s' is empty or "
                              "contains '='", key);
        if (same_key(mm, j))
            return sm_mp_fail(r, key, "given twice");
        if (param_text(r, &kv->val, key, &value))
            return -1;
        size_t len = strlen(method) + strlen(key) + strlen(value) + 3;
        char *t = sm_mp_alloc(r, key, len);
        if (!t)
            return -1;
        snprintf(t, len, "%s.%s=%s", method, key, value);
        s[(*k)++] = t;
    }
    sm_mp_leave(r, mark);
    return 0;
}

/* {method: {key: value}} into "method.key=value" texts, in the order of
 * the body; at most MAX_PARAMS, no name twice. */
static int read_params(sm_mp_reader *r, const sm_msg_field *f,
                       const msgpack_object *pm, void *m, size_t *count)
{
    if (sm_mp_map(r, pm, f->key))
        return -1;
    size_t mark = sm_mp_enter(r, f->key);
    size_t total = 0;
    for (uint32_t i = 0; i < pm->via.map.size; i++) {
        const msgpack_object_kv *kv = &pm->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return sm_mp_fail(r, "", "method names must be str, not %s",
                              sm_mp_type_name(&kv->key));
        if (kv->val.type == MSGPACK_OBJECT_MAP)
            total += kv->val.via.map.size;
        if (i >= MAX_PARAMS || total > MAX_PARAMS)
            return sm_mp_fail(r, "", "more than %d methods or parameters",
                              MAX_PARAMS);
        if (same_key(pm, i))
            return sm_mp_fail(r, "", "method '%.*s' given twice",
                              (int)(kv->key.via.str.size < 80
                                        ? kv->key.via.str.size : 80),
                              kv->key.via.str.ptr);
    }
    const char **s = alloc_array(r, f->key, total, sizeof *s);
    if (!s)
        return -1;
    size_t k = 0;
    for (uint32_t i = 0; i < pm->via.map.size; i++) {
        const msgpack_object_kv *kv = &pm->via.map.ptr[i];
        const char *method;
        if (sm_mp_str(r, &kv->key, "", &method))
            return -1;
        /* "method.key=value" must split back the same way */
        if (!method[0] || strpbrk(method, ".="))
            return sm_mp_fail(r, "", "method name '%.80s' is empty or "
                              "contains '.' or '='", method);
        if (kv->val.type == MSGPACK_OBJECT_NIL)
            continue;
        if (sm_mp_map(r, &kv->val, method) ||
            read_method_params(r, method, &kv->val, s, &k))
            return -1;
    }
    sm_mp_leave(r, mark);
    set_ptr(m, f->off, s);
    *count = k;
    return 0;
}

/* ---- reading: one field, one table ----------------------------------------- */

static int read_text(sm_mp_reader *r, const sm_msg_field *f,
                     const msgpack_object *v, void *m)
{
    const char *s;
    if (sm_mp_str(r, v, f->key, &s))
        return -1;
    set_ptr(m, f->off, s);
    switch (f->type) {
    case SM_MSG_HASH: return sm_msg_check_hash(r, f->key, s);
    case SM_MSG_PATH: return sm_msg_check_path(r, f->key, s);
    case SM_MSG_NAME: return sm_msg_check_name(r, f->key, s);
    default: break;
    }
    if ((f->flags & SM_MSG_NONEMPTY) && !s[0])
        return sm_mp_fail(r, f->key, "empty");
    if (f->names && one_of(r, f->key, s, f->names, f->n_names) < 0)
        return -1;
    return 0;
}

/* The value v of field f into m; *count: the elements (bytes) it held. */
static int read_value(sm_mp_reader *r, const sm_msg_field *f,
                      const msgpack_object *v, void *m, size_t *count)
{
    void *p = at(m, f->off);
    const char *k = f->key;
    const char *s;
    const void *data = NULL;
    int64_t i;
    uint64_t u;
    switch (f->type) {
    case SM_MSG_STR:
    case SM_MSG_HASH:
    case SM_MSG_PATH:
    case SM_MSG_NAME: return read_text(r, f, v, m);
    case SM_MSG_INT:
        if (sm_mp_int(r, v, k, f->lo, f->hi, &i))
            return -1;
        set_bits(p, f->size, (uint64_t)i);
        return 0;
    case SM_MSG_UINT:
        if (sm_mp_uint(r, v, k, (uint64_t)f->lo,
                       f->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX,
                       &u))
            return -1;
        set_bits(p, f->size, u);
        return 0;
    case SM_MSG_F64: return sm_mp_float(r, v, k, p);
    case SM_MSG_BOOL: return sm_mp_bool(r, v, k, p);
    case SM_MSG_ENUM:
        if (sm_mp_str(r, v, k, &s) ||
            (i = one_of(r, k, s, f->names, f->n_names)) < 0)
            return -1;
        set_bits(p, f->size, (uint64_t)i);
        return 0;
    case SM_MSG_BIN:
        if (sm_mp_bin(r, v, k, (const uint8_t **)&data, count))
            return -1;
        break;
    case SM_MSG_F64S:
        if (sm_mp_f64s(r, v, k, (const double **)&data, count))
            return -1;
        break;
    case SM_MSG_F32S:
        if (sm_mp_f32s(r, v, k, (const float **)&data, count))
            return -1;
        break;
    case SM_MSG_INTS: return read_ints(r, f, v, m, count) ? -1
                             : (set_count(f, m, *count), 0);
    case SM_MSG_STRS: return read_strs(r, f, v, m, count) ? -1
                             : (set_count(f, m, *count), 0);
    case SM_MSG_STRMAP: return read_strmap(r, f, v, m, count) ? -1
                               : (set_count(f, m, *count), 0);
    case SM_MSG_STRUCTS: return read_structs(r, f, v, m, count) ? -1
                                : (set_count(f, m, *count), 0);
    case SM_MSG_PARAMS: return read_params(r, f, v, m, count) ? -1
                               : (set_count(f, m, *count), 0);
    }
    /* the bins */
    set_ptr(m, f->off, data);
    set_count(f, m, *count);
    return 0;
}

static void set_default(const sm_msg_field *f, void *m)
{
    void *p = at(m, f->off);
    switch (f->type) {
    case SM_MSG_INT:
    case SM_MSG_ENUM:
    case SM_MSG_BOOL:
    case SM_MSG_UINT: set_bits(p, f->size, (uint64_t)f->def); break;
    case SM_MSG_STR:
        if (f->sdef)
            set_ptr(m, f->off, f->sdef);
        break;
    default: break;
    }
}

int sm_msg_read(sm_mp_reader *r, const sm_msg_schema *s,
                const msgpack_object *map, void *m)
{
    sm_msg_seen seen = {.schema = s};
    if (s->n > SM_MSG_FIELDS_MAX) /* a table too long: ours to fix */
        return sm_mp_fail(r, "", "more than %d fields in a table",
                          SM_MSG_FIELDS_MAX);
    for (size_t i = 0; i < s->n; i++)
        set_default(&s->fields[i], m);
    for (size_t i = 0; i < s->n; i++) {
        const sm_msg_field *f = &s->fields[i];
        const msgpack_object *v;
        if (f->when && !f->when(m))
            continue;
        if (sm_mp_field(r, map, f->key, f->flags & SM_MSG_REQ, &v))
            return -1;
        if (!v)
            continue;
        seen.present |= (uint64_t)1 << i;
        if (read_value(r, f, v, m, &seen.count[i]) ||
            (f->check && f->check(r, f->key, at(m, f->off))))
            return -1;
        if (f->flags & SM_MSG_HAS)
            set_bits(at(m, f->off_v), sizeof(int), 1);
        if (f->flags & SM_MSG_LAST)
            break;
    }
    return s->check ? s->check(r, m, &seen) : 0;
}

static size_t seen_index(const sm_msg_seen *s, const char *key)
{
    size_t i = 0;
    while (i < s->schema->n && strcmp(s->schema->fields[i].key, key))
        i++;
    return i;
}

int sm_msg_seen_has(const sm_msg_seen *s, const char *key)
{
    size_t i = seen_index(s, key);
    return i < s->schema->n && (s->present >> i & 1);
}

size_t sm_msg_seen_count(const sm_msg_seen *s, const char *key)
{
    size_t i = seen_index(s, key);
    return i < s->schema->n ? s->count[i] : 0;
}

/* ---- packing ---------------------------------------------------------------- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* The part of "method.key=value" that names the method: up to the first
 * '.' that comes before any '='; none ("key=value") gives "". */
static size_t method_len(const char *s)
{
    size_t dot = strcspn(s, ".="), eq = strcspn(s, "=");
    return dot < eq ? dot : 0;
}

/* 1 when settings a and b name the same method. */
static int same_method(const char *a, const char *b)
{
    size_t ml = method_len(a);
    return method_len(b) == ml && memcmp(a, b, ml) == 0;
}

/* The first of set[0..i] with set[i]'s method. */
static size_t first_of_method(const char *const *set, size_t i)
{
    size_t j = 0;
    while (j < i && !same_method(set[j], set[i]))
        j++;
    return j;
}

/* "method.key=value" settings into {method: {key: "value"}}, methods in
 * the order they first appear. Values go as str: the receiver only needs
 * their text, which is what it would make of an int or float anyway. */
static void pack_params(msgpack_packer *pk, const char *const *settings,
                        size_t n)
{
    if (n == 0) {
        msgpack_pack_map(pk, 0);
        return;
    }
    const char *set[n]; /* n is small: a job's parameters */
    for (size_t i = 0; i < n; i++)
        set[i] = nz(settings[i]);
    size_t methods = 0;
    for (size_t i = 0; i < n; i++)
        methods += first_of_method(set, i) == i;
    msgpack_pack_map(pk, methods);
    for (size_t i = 0; i < n; i++) {
        if (first_of_method(set, i) < i)
            continue; /* packed with its first setting */
        size_t ml = method_len(set[i]), count = 0;
        for (size_t j = i; j < n; j++)
            count += same_method(set[j], set[i]);
        msgpack_pack_str(pk, ml);
        msgpack_pack_str_body(pk, set[i], ml);
        msgpack_pack_map(pk, count);
        for (size_t j = i; j < n; j++) {
            if (!same_method(set[j], set[i]))
                continue;
            const char *key = set[j] + ml + (ml > 0);
            size_t kl = strcspn(key, "=");
            msgpack_pack_str(pk, kl);
            msgpack_pack_str_body(pk, key, kl);
            sm_mp_pack_str(pk, key[kl] ? key + kl + 1 : "");
        }
    }
}

/* 1 when f goes into the packed m. */
static int packed(const sm_msg_field *f, const void *m)
{
    const void *p = cat(m, f->off);
    int omit = (f->flags & SM_MSG_OMIT) != 0;
    if (f->when && !f->when(m))
        return 0;
    if (f->flags & SM_MSG_HAS)
        return get_int(cat(m, f->off_v), sizeof(int)) != 0;
    switch (f->type) {
    case SM_MSG_INT: {
        int64_t v = get_int(p, f->size);
        return !omit || (v != f->def && v >= f->lo && v <= f->hi);
    }
    case SM_MSG_UINT: {
        uint64_t v = get_bits(p, f->size, 0);
        return !omit || (v != (uint64_t)f->def && v >= (uint64_t)f->lo);
    }
    case SM_MSG_BOOL: return !omit || get_int(p, f->size) != f->def;
    case SM_MSG_F64: {
        double d;
        memcpy(&d, p, sizeof d);
        return !omit || d != (double)f->def;
    }
    case SM_MSG_ENUM:
    case SM_MSG_INTS: return 1;
    /* a required array goes even when NULL (as an empty one), an optional
     * array or map only when it has elements (callers leave a pointer set
     * with a count of 0: SUBMIT's images beside a dataset) */
    case SM_MSG_STRS:
    case SM_MSG_STRUCTS:
    case SM_MSG_STRMAP:
    case SM_MSG_PARAMS:
        return (f->flags & SM_MSG_REQ) ||
               (get_ptr(m, f->off) && get_count(f, m) > 0);
    default: return get_ptr(m, f->off) != NULL; /* bins: empty is a value */
    }
}

static void pack_value(msgpack_packer *pk, const sm_msg_field *f,
                       const void *m)
{
    const void *p = cat(m, f->off), *ptr = NULL;
    size_t n = get_count(f, m);
    double d;
    if (f->type >= SM_MSG_BIN && f->type != SM_MSG_INTS) {
        ptr = get_ptr(m, f->off);
        n = ptr ? n : 0;
    }
    switch (f->type) {
    case SM_MSG_STR:
    case SM_MSG_HASH:
    case SM_MSG_PATH:
    case SM_MSG_NAME: sm_mp_pack_str(pk, nz(get_ptr(m, f->off))); break;
    case SM_MSG_INT: msgpack_pack_int64(pk, get_int(p, f->size)); break;
    case SM_MSG_UINT: msgpack_pack_uint64(pk, get_bits(p, f->size, 0)); break;
    case SM_MSG_F64:
        memcpy(&d, p, sizeof d);
        msgpack_pack_double(pk, d);
        break;
    case SM_MSG_BOOL:
        if (get_int(p, f->size))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case SM_MSG_ENUM: {
        int64_t i = get_int(p, f->size);
        sm_mp_pack_str(pk, i >= 0 && i < f->n_names ? f->names[i] : "");
        break;
    }
    case SM_MSG_BIN: sm_mp_pack_bin(pk, ptr, n); break;
    case SM_MSG_F64S: sm_mp_pack_f64s(pk, ptr, n); break;
    case SM_MSG_F32S:
        sm_mp_pack_f32s(pk, ptr, !ptr || f->nsize || !f->count ? n
                                                                : f->count(m));
        break;
    case SM_MSG_INTS: {
        int64_t x;
        if (n > f->size / sizeof x)
            n = f->size / sizeof x;
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++) {
            memcpy(&x, (const char *)p + i * sizeof x, sizeof x);
            msgpack_pack_int64(pk, x);
        }
        break;
    }
    case SM_MSG_STRS:
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            sm_mp_pack_str(pk, nz(((const char *const *)ptr)[i]));
        break;
    case SM_MSG_STRMAP: {
        const char *const *vals = get_ptr(m, f->off_v);
        n = vals ? n : 0;
        msgpack_pack_map(pk, n);
        for (size_t i = 0; i < n; i++) {
            sm_mp_pack_str(pk, nz(((const char *const *)ptr)[i]));
            sm_mp_pack_str(pk, nz(vals[i]));
        }
        break;
    }
    case SM_MSG_STRUCTS:
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            sm_msg_pack(pk, f->sub, (const char *)ptr + i * f->sub->size);
        break;
    case SM_MSG_PARAMS: pack_params(pk, ptr, n); break;
    }
}

void sm_msg_pack(msgpack_packer *pk, const sm_msg_schema *s, const void *m)
{
    /* Fields after a present SM_MSG_LAST one are not packed at all. */
    size_t end = 0, n = 0;
    while (end < s->n) {
        const sm_msg_field *f = &s->fields[end++];
        n += packed(f, m);
        if ((f->flags & SM_MSG_LAST) && packed(f, m))
            break;
    }
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < end; i++) {
        if (!packed(&s->fields[i], m))
            continue;
        sm_mp_pack_str(pk, s->fields[i].key);
        pack_value(pk, &s->fields[i], m);
    }
}
