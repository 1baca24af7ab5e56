/* sm_mp: bounded MessagePack under the wire codec (msg.c).
 *
 * msgpack-c trusts the counts and lengths it reads: an array32 header that
 * claims 4 billion elements makes it allocate ~100 GB before it notices the
 * bytes are missing. sm_mp_check therefore walks the raw bytes first,
 * iteratively, and refuses whatever the buffer itself or a limit does not
 * allow; only a body that passes is handed to msgpack_unpack. Because every
 * element takes at least one byte and the elements of a body together are
 * bounded (max_total), what msgpack-c allocates is bounded by the limits.
 *
 * The reader functions then type-check the fields of an unpacked map and
 * copy what they return (NUL-terminated strings, bins, aligned number
 * arrays) into the reader's zone: msgpack_unpack leaves strings and bins
 * pointing into the input, and a decoded message must outlive its bytes.
 * Errors read "<command>: <field>: <what>", the field being the reader's
 * path ("images[2]") joined to the name ("images[2].data"). */
#ifndef SM_MP_H
#define SM_MP_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

/* msgpack-c's unpacker keeps a fixed stack of 32 containers and fails on a
 * deeper document, so depth limits above this are clamped to it. */
#define SM_MP_DEPTH_MAX 32

/* Checks that buf[0..len) is exactly one well-formed MessagePack object
 * within the limits (see the top comment of mp.c for the list). 0, or -1
 * with a message in err ("byte N: <what>" when a byte is to blame). Never
 * allocates, never recurses. */
int sm_mp_check(const void *buf, size_t len, const sm_msg_limits *l,
                sm_err *err);

/* sm_mp_check, then msgpack_unpack into zone: *root borrows from zone and
 * from buf (strings and bins point into buf). 0, or -1 with a message (a
 * check failure, or "out of memory"). */
int sm_mp_unpack(const void *buf, size_t len, const sm_msg_limits *l,
                 msgpack_zone *zone, msgpack_object *root, sm_err *err);

/* "nil", "bool", "int", "float", "str", "bin", "array", "map", "ext". */
const char *sm_mp_type_name(const msgpack_object *o);

/* ---- reading ------------------------------------------------------------ */

typedef struct sm_mp_reader {
    msgpack_zone *zone;   /* copies and arrays are allocated here */
    const char *command;  /* first word of every message */
    char path[160];       /* the enclosing field; "" at the top */
    sm_err *err;          /* may be NULL */
} sm_mp_reader;

void sm_mp_reader_init(sm_mp_reader *r, msgpack_zone *zone,
                       const char *command, sm_err *err);

/* Formats "<command>: <path>.<name>: <what>" into r->err. Returns -1. */
int sm_mp_fail(sm_mp_reader *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Descends into the field name (path "a" -> "a.name"); returns the old
 * path length for sm_mp_leave. */
size_t sm_mp_enter(sm_mp_reader *r, const char *name);
void sm_mp_leave(sm_mp_reader *r, size_t mark);

/* size bytes of the zone, aligned for any number type; NULL with "out of
 * memory" naming the field name. */
void *sm_mp_alloc(sm_mp_reader *r, const char *name, size_t size);

/* The value of key in map, or NULL when the key is absent or its value is
 * nil (an optional field left empty). -1 when the key appears twice (the
 * two values might be read differently by another decoder) or, when
 * required, is missing. Keys that are not strings are ignored. */
int sm_mp_field(sm_mp_reader *r, const msgpack_object *map, const char *key,
                int required, const msgpack_object **value);

/* Value conversions: 0 with *out set, or -1 naming name when o has another
 * type or is out of range. Strings, bins and arrays of numbers are copied
 * into the zone, so they outlive the unpacked input. */
int sm_mp_str(sm_mp_reader *r, const msgpack_object *o, const char *name,
              const char **out); /* a NUL inside is an error */
int sm_mp_uint(sm_mp_reader *r, const msgpack_object *o, const char *name,
               uint64_t lo, uint64_t hi, uint64_t *out);
int sm_mp_int(sm_mp_reader *r, const msgpack_object *o, const char *name,
              int64_t lo, int64_t hi, int64_t *out);
/* float32, float64 or an integer. */
int sm_mp_float(sm_mp_reader *r, const msgpack_object *o, const char *name,
                double *out);
int sm_mp_bool(sm_mp_reader *r, const msgpack_object *o, const char *name,
               int *out);
/* *data is never NULL (a 0-length bin gives a valid pointer). */
int sm_mp_bin(sm_mp_reader *r, const msgpack_object *o, const char *name,
              const uint8_t **data, size_t *len);
/* A bin of little-endian float64 (f64s) or float32 (f32s): its length must
 * be a multiple of the element size; *n is the number of elements. */
int sm_mp_f64s(sm_mp_reader *r, const msgpack_object *o, const char *name,
               const double **out, size_t *n);
int sm_mp_f32s(sm_mp_reader *r, const msgpack_object *o, const char *name,
               const float **out, size_t *n);
/* Borrows the elements (they live in the zone already). */
int sm_mp_array(sm_mp_reader *r, const msgpack_object *o, const char *name,
                const msgpack_object **items, size_t *n);
int sm_mp_map(sm_mp_reader *r, const msgpack_object *o, const char *name);

/* ---- writing ------------------------------------------------------------ */

/* Where a packer writes: appends to b, growing it. A failed allocation
 * sets failed and every later write fails too, so an encoder can pack
 * everything and look at failed once at the end. */
typedef struct sm_mp_out {
    sm_msg_buf *b;
    int failed;
} sm_mp_out;

/* Empties b (keeping its memory) and points pk at it through out. */
void sm_mp_packer_init(msgpack_packer *pk, sm_mp_out *out, sm_msg_buf *b);

/* A str of strlen(s) bytes. */
void sm_mp_pack_str(msgpack_packer *pk, const char *s);
/* A bin (data may be NULL when len is 0). */
void sm_mp_pack_bin(msgpack_packer *pk, const void *data, size_t len);
/* A bin of n little-endian float64 / float32 (v may be NULL when n is 0). */
void sm_mp_pack_f64s(msgpack_packer *pk, const double *v, size_t n);
void sm_mp_pack_f32s(msgpack_packer *pk, const float *v, size_t n);

#endif
