/* Bounded MessagePack: the raw-byte check, unpacking, typed reading and
 * packing helpers (mp.h).
 *
 * sm_mp_check accepts buf[0..len) when all of these hold:
 *   - len <= max_body, and len > 0;
 *   - the bytes hold exactly one object (nothing missing, nothing after);
 *   - no byte 0xc1 (reserved, never used) where a type byte is expected;
 *   - every str, bin and ext length fits in the bytes that remain, and a
 *     str is at most max_string bytes;
 *   - every array or map has at most max_items elements (a map of n pairs
 *     counts n), and its 1 or 2 objects per element fit in the bytes that
 *     remain (each object takes at least one byte);
 *   - all the arrays and maps of the body together have at most max_total
 *     elements (map pairs count 2), which bounds what msgpack-c allocates
 *     (24 bytes an element);
 *   - arrays and maps nest at most max_depth deep (the body's own map is
 *     depth 1), and never deeper than SM_MP_DEPTH_MAX. */
#include "mp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the raw check ------------------------------------------------------ */

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int sm_mp_check(const void *buf, size_t len, const sm_msg_limits *l,
                sm_err *err)
{
    const uint8_t *p = buf;
    if (len == 0)
        return sm_err_set(err, "empty: expected one MessagePack object");
    if (len > l->max_body)
        return sm_err_set(err, "%zu bytes, more than the limit of %zu", len,
                          l->max_body);
    size_t max_depth = l->max_depth < SM_MP_DEPTH_MAX ? l->max_depth
                                                      : SM_MP_DEPTH_MAX;
    size_t max_total = l->max_total ? l->max_total : 4 * l->max_items;
    /* The objects still to read in each open array or map. */
    uint64_t left[SM_MP_DEPTH_MAX];
    size_t depth = 0, total = 0, pos = 0;
    for (;;) {
        if (pos >= len)
            return sm_err_set(err, "byte %zu: truncated: %s", pos,
                              depth ? "an array or map is missing elements"
                                    : "no object");
        size_t at = pos, rest = len - pos - 1; /* bytes after the type */
        uint8_t t = p[pos++];
        uint64_t count = 0; /* elements of a container */
        int objs = 0;       /* objects per element: 1 array, 2 map */
        uint64_t skip = 0;  /* payload bytes of a scalar */
        int hdr = 0;        /* bytes of the length or count field */
        const char *kind = NULL;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            /* fixints, nil, false, true: the type byte is all */
        } else if (t <= 0x8f) {
            count = t & 0x0f, objs = 2;
        } else if (t <= 0x9f) {
            count = t & 0x0f, objs = 1;
        } else if (t <= 0xbf) {
            skip = t & 0x1f, kind = "str";
        } else if (t == 0xc1) {
            return sm_err_set(err, "byte %zu: 0xc1 is not a MessagePack type",
                              at);
        } else if (t >= 0xc4 && t <= 0xc6) { /* bin 8/16/32 */
            hdr = 1 << (t - 0xc4), kind = "bin";
        } else if (t >= 0xc7 && t <= 0xc9) { /* ext 8/16/32, then a type */
            hdr = 1 << (t - 0xc7), kind = "ext";
        } else if (t == 0xca || t == 0xcb) { /* float 32/64 */
            skip = t == 0xca ? 4 : 8;
        } else if (t >= 0xcc && t <= 0xd3) { /* uint, int 8..64 */
            skip = (uint64_t)1 << ((t - 0xcc) & 3);
        } else if (t >= 0xd4 && t <= 0xd8) { /* fixext 1..16, plus a type */
            skip = 1 + ((uint64_t)1 << (t - 0xd4)), kind = "ext";
        } else if (t >= 0xd9 && t <= 0xdb) { /* str 8/16/32 */
            hdr = 1 << (t - 0xd9), kind = "str";
        } else if (t == 0xdc || t == 0xdd) {
            hdr = t == 0xdc ? 2 : 4, objs = 1;
        } else { /* 0xde, 0xdf */
            hdr = t == 0xde ? 2 : 4, objs = 2;
        }
        if ((size_t)hdr > rest)
            return sm_err_set(err, "byte %zu: truncated header", at);
        if (hdr) {
            uint64_t n = be(p + pos, hdr);
            pos += (size_t)hdr, rest -= (size_t)hdr;
            if (objs)
                count = n;
            else
                skip = n + (t >= 0xc7 && t <= 0xc9); /* ext's type byte */
        }
        if (objs) {
            if (depth + 1 > max_depth)
                return sm_err_set(err, "byte %zu: nested deeper than %zu",
                                  at, max_depth);
            if (count > l->max_items)
                return sm_err_set(err, "byte %zu: %s of %llu elements, more "
                                  "than the limit of %zu", at,
                                  objs == 2 ? "map" : "array",
                                  (unsigned long long)count, l->max_items);
            /* count <= max_items fits a size_t, so this cannot wrap. */
            if (count * (uint64_t)objs > rest)
                return sm_err_set(err, "byte %zu: %s of %llu elements in %zu "
                                  "remaining bytes", at,
                                  objs == 2 ? "map" : "array",
                                  (unsigned long long)count, rest);
            total += (size_t)count * (size_t)objs;
            if (total > max_total)
                return sm_err_set(err, "byte %zu: more than %zu elements in "
                                  "all", at, max_total);
            if (count) {
                left[depth++] = count * (uint64_t)objs;
                continue;
            }
        } else if (skip > rest) {
            return sm_err_set(err, "byte %zu: %s of %llu bytes in %zu "
                              "remaining bytes", at, kind ? kind : "number",
                              (unsigned long long)skip, rest);
        } else {
            if (kind && kind[0] == 's' && skip > l->max_string)
                return sm_err_set(err, "byte %zu: string of %llu bytes, more "
                                  "than the limit of %zu", at,
                                  (unsigned long long)skip, l->max_string);
            pos += (size_t)skip;
        }
        /* An object ended: so may the containers it closes. */
        while (depth > 0 && --left[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    if (pos != len)
        return sm_err_set(err, "byte %zu: %zu bytes after the object", pos,
                          len - pos);
    return 0;
}

int sm_mp_unpack(const void *buf, size_t len, const sm_msg_limits *l,
                 msgpack_zone *zone, msgpack_object *root, sm_err *err)
{
    if (sm_mp_check(buf, len, l, err))
        return -1;
    size_t off = 0;
    msgpack_unpack_return rc =
        msgpack_unpack((const char *)buf, len, &off, zone, root);
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        return sm_err_set(err, "out of memory");
    /* The check accepted exactly what msgpack-c parses; anything else
     * would be a disagreement between the two, refused all the same. */
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len)
        return sm_err_set(err, "msgpack-c could not unpack it (%d)", (int)rc);
    return 0;
}

const char *sm_mp_type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown";
}

/* ---- reading ------------------------------------------------------------ */

void sm_mp_reader_init(sm_mp_reader *r, msgpack_zone *zone,
                       const char *command, sm_err *err)
{
    r->zone = zone;
    r->command = command;
    r->path[0] = '\0';
    r->err = err;
}

int sm_mp_fail(sm_mp_reader *r, const char *name, const char *fmt, ...)
{
    if (!r->err)
        return -1;
    char what[SM_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *dot = r->path[0] && name && name[0] ? "." : "";
    return sm_err_set(r->err, "%s: %s%s%s: %s", r->command, r->path, dot,
                      name ? name : "", what);
}

size_t sm_mp_enter(sm_mp_reader *r, const char *name)
{
    size_t mark = strlen(r->path);
    /* Truncation only shortens messages; our names are short. */
    snprintf(r->path + mark, sizeof r->path - mark, "%s%s",
             mark && name[0] ? "." : "", name);
    return mark;
}

void sm_mp_leave(sm_mp_reader *r, size_t mark)
{
    if (mark < sizeof r->path)
        r->path[mark] = '\0';
}

void *sm_mp_alloc(sm_mp_reader *r, const char *name, size_t size)
{
    void *p = msgpack_zone_malloc(r->zone, size ? size : 1);
    if (!p)
        sm_mp_fail(r, name, "out of memory (%zu bytes)", size);
    return p;
}

static int wrong(sm_mp_reader *r, const msgpack_object *o, const char *name,
                 const char *want)
{
    return sm_mp_fail(r, name, "expected %s, got %s", want,
                      sm_mp_type_name(o));
}

int sm_mp_field(sm_mp_reader *r, const msgpack_object *map, const char *key,
                int required, const msgpack_object **value)
{
    *value = NULL;
    size_t klen = strlen(key);
    int seen = 0;
    /* The whole map is scanned so a repeated key is caught; decoders ask
     * for a fixed number of keys, so this stays linear in the body. */
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR ||
            kv->key.via.str.size != klen ||
            memcmp(kv->key.via.str.ptr, key, klen) != 0)
            continue;
        if (seen++)
            return sm_mp_fail(r, key, "given twice");
        if (kv->val.type != MSGPACK_OBJECT_NIL)
            *value = &kv->val;
    }
    if (!*value && required)
        return sm_mp_fail(r, key, "missing");
    return 0;
}

int sm_mp_str(sm_mp_reader *r, const msgpack_object *o, const char *name,
              const char **out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong(r, o, name, "str");
    size_t n = o->via.str.size;
    if (n && memchr(o->via.str.ptr, '\0', n))
        return sm_mp_fail(r, name, "contains a NUL byte");
    char *s = msgpack_zone_malloc_no_align(r->zone, n + 1);
    if (!s)
        return sm_mp_fail(r, name, "out of memory");
    if (n)
        memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

int sm_mp_uint(sm_mp_reader *r, const msgpack_object *o, const char *name,
               uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return sm_mp_fail(r, name, "%lld is out of range %llu..%llu",
                          (long long)o->via.i64, (unsigned long long)lo,
                          (unsigned long long)hi);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong(r, o, name, "int");
    uint64_t v = o->via.u64;
    if (v < lo || v > hi)
        return sm_mp_fail(r, name, "%llu is out of range %llu..%llu",
                          (unsigned long long)v, (unsigned long long)lo,
                          (unsigned long long)hi);
    *out = v;
    return 0;
}

int sm_mp_int(sm_mp_reader *r, const msgpack_object *o, const char *name,
              int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return sm_mp_fail(r, name, "%llu is out of range %lld..%lld",
                              (unsigned long long)o->via.u64, (long long)lo,
                              (long long)hi);
        v = (int64_t)o->via.u64;
    } else {
        return wrong(r, o, name, "int");
    }
    if (v < lo || v > hi)
        return sm_mp_fail(r, name, "%lld is out of range %lld..%lld",
                          (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

int sm_mp_float(sm_mp_reader *r, const msgpack_object *o, const char *name,
                double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    default: return wrong(r, o, name, "float");
    }
}

int sm_mp_bool(sm_mp_reader *r, const msgpack_object *o, const char *name,
               int *out)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return wrong(r, o, name, "bool");
    *out = o->via.boolean ? 1 : 0;
    return 0;
}

int sm_mp_bin(sm_mp_reader *r, const msgpack_object *o, const char *name,
              const uint8_t **data, size_t *len)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return wrong(r, o, name, "bin");
    size_t n = o->via.bin.size;
    uint8_t *d = sm_mp_alloc(r, name, n);
    if (!d)
        return -1;
    if (n)
        memcpy(d, o->via.bin.ptr, n);
    *data = d;
    *len = n;
    return 0;
}

/* The bytes of a bin holding whole elements of esize bytes. */
static int number_bin(sm_mp_reader *r, const msgpack_object *o,
                      const char *name, size_t esize, const uint8_t **p,
                      size_t *n)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return wrong(r, o, name, "bin");
    if (o->via.bin.size % esize)
        return sm_mp_fail(r, name, "%u bytes, not a multiple of %zu",
                          (unsigned)o->via.bin.size, esize);
    *p = (const uint8_t *)o->via.bin.ptr;
    *n = o->via.bin.size / esize;
    return 0;
}

/* The elements of a bin of little-endian numbers of esize (4 or 8) bytes,
 * copied aligned: byte by byte, so the wire stays little-endian on any
 * host. NULL on failure. */
static const void *le_numbers(sm_mp_reader *r, const msgpack_object *o,
                              const char *name, size_t esize, size_t *n)
{
    const uint8_t *p = NULL;
    if (number_bin(r, o, name, esize, &p, n))
        return NULL;
    uint8_t *v = sm_mp_alloc(r, name, *n * esize);
    for (size_t i = 0; v && i < *n; i++) {
        uint64_t u = 0;
        uint32_t u4;
        for (size_t k = esize; k-- > 0;)
            u = u << 8 | p[esize * i + k];
        u4 = (uint32_t)u;
        memcpy(v + esize * i, esize == 8 ? (void *)&u : (void *)&u4, esize);
    }
    return v;
}

int sm_mp_f64s(sm_mp_reader *r, const msgpack_object *o, const char *name,
               const double **out, size_t *n)
{
    return (*out = le_numbers(r, o, name, sizeof **out, n)) ? 0 : -1;
}

int sm_mp_f32s(sm_mp_reader *r, const msgpack_object *o, const char *name,
               const float **out, size_t *n)
{
    return (*out = le_numbers(r, o, name, sizeof **out, n)) ? 0 : -1;
}

int sm_mp_array(sm_mp_reader *r, const msgpack_object *o, const char *name,
                const msgpack_object **items, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return wrong(r, o, name, "array");
    *items = o->via.array.ptr;
    *n = o->via.array.size;
    return 0;
}

int sm_mp_map(sm_mp_reader *r, const msgpack_object *o, const char *name)
{
    return o->type == MSGPACK_OBJECT_MAP ? 0 : wrong(r, o, name, "map");
}

/* ---- writing ------------------------------------------------------------ */

static int out_write(void *data, const char *buf, size_t len)
{
    sm_mp_out *o = data;
    if (o->failed)
        return -1;
    if (len == 0)
        return 0;
    sm_msg_buf *b = o->b;
    if (len > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < len) {
            if (cap > SIZE_MAX / 2) {
                o->failed = 1;
                return -1;
            }
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            o->failed = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

void sm_mp_packer_init(msgpack_packer *pk, sm_mp_out *out, sm_msg_buf *b)
{
    out->b = b;
    out->failed = 0;
    b->len = 0;
    msgpack_packer_init(pk, out, out_write);
}

void sm_mp_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void sm_mp_pack_bin(msgpack_packer *pk, const void *data, size_t len)
{
    msgpack_pack_bin(pk, len);
    if (len)
        msgpack_pack_bin_body(pk, data, len);
}

/* Numbers are written through a small buffer, little-endian byte by byte
 * whatever the host's order; esize is 4 or 8. */
#define CHUNK 512

static void pack_le(msgpack_packer *pk, const void *v, size_t n, size_t esize)
{
    uint8_t tmp[CHUNK * 8];
    msgpack_pack_bin(pk, n * esize);
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < m; j++) {
            uint64_t u;
            uint32_t u4;
            const char *e = (const char *)v + (i + j) * esize;
            if (esize == 8) {
                memcpy(&u, e, sizeof u);
            } else {
                memcpy(&u4, e, sizeof u4);
                u = u4;
            }
            for (size_t k = 0; k < esize; k++)
                tmp[esize * j + k] = (uint8_t)(u >> (8 * k));
        }
        msgpack_pack_bin_body(pk, tmp, m * esize);
    }
}

void sm_mp_pack_f64s(msgpack_packer *pk, const double *v, size_t n)
{
    pack_le(pk, v, n, sizeof *v);
}

void sm_mp_pack_f32s(msgpack_packer *pk, const float *v, size_t n)
{
    pack_le(pk, v, n, sizeof *v);
}
