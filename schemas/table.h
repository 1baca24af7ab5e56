/* sm_msg tables: each wire message (msg.h) is described once, as a table
 * of its fields, and one generic reader and one generic packer walk that
 * table, so the encoder and the decoder of a message cannot disagree on a
 * name, a type, a range or a default.
 *
 * A field names its wire key, its type, where its C field lies in the
 * message struct (and its length or count, for bins, arrays and maps),
 * whether it is required, its default, and, where needed, a predicate
 * saying when it belongs to the message at all (a chunk task's part) and
 * a check of its value. Checks that span fields (a map's bytes against
 * height x width, a task kind that needs some fields) are the table's own
 * check function, called after the fields are read, with what was present
 * and how many elements each field held.
 *
 * Reading takes the unpacked map of an untrusted body (mp.h has checked
 * its bytes); every count and length is checked before use, and every
 * error reads "<COMMAND>: <path>.<field>: <what>" through sm_mp_fail. */
#ifndef SM_TABLE_H
#define SM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "mp.h"

typedef enum sm_msg_type {
    SM_MSG_STR,     /* const char *: str */
    SM_MSG_HASH,    /* const char *: a content hash (64 lower-case hex) */
    SM_MSG_PATH,    /* const char *: a relative path (PROTOCOL.md 3.3) */
    SM_MSG_NAME,    /* const char *: 1..64 characters of [a-z0-9_] */
    SM_MSG_INT,     /* int or int64_t (size): int in lo..hi */
    SM_MSG_UINT,    /* uint32_t or uint64_t (size): uint from lo */
    SM_MSG_F64,     /* double: float or int */
    SM_MSG_BOOL,    /* int: bool */
    SM_MSG_ENUM,    /* an enum (int): str, one of names, stored as its index */
    SM_MSG_BIN,     /* const uint8_t *, length at off_n */
    SM_MSG_F64S,    /* const double *: bin of float64 LE, count at off_n */
    SM_MSG_F32S,    /* const float *: bin of float32 LE, count at off_n or
                       (none) given by count() */
    SM_MSG_INTS,    /* int64_t[max] inline: array of 1..max ints in lo..hi,
                       count at off_n */
    SM_MSG_STRS,    /* const char **: array of str, count at off_n */
    SM_MSG_STRMAP,  /* const char ** keys at off, values at off_v, count at
                       off_n: map of NAME -> HASH, at most max entries */
    SM_MSG_STRUCTS, /* array of maps, each read by sub into an array of
                       sub->size bytes at off, count at off_n */
    SM_MSG_PARAMS,  /* const char ** "method.key=value" texts, count at
                       off_n: SUBMIT's {method: {key: str|int|float|bool}} */
} sm_msg_type;

enum {
    SM_MSG_REQ = 1,      /* required (when it belongs to the message) */
    SM_MSG_NONEMPTY = 2, /* str: not ""; arrays: at least one element */
    SM_MSG_OMIT = 4,     /* packer: leave out a scalar equal to its default
                            or outside its range (a caller's "unset") */
    SM_MSG_LAST = 8,     /* when present, the fields after it are neither
                            read nor packed (a failed item's error) */
    SM_MSG_HAS = 16,     /* int at off_v: 1 when present; packed only when
                            it is 1 */
};

typedef struct sm_msg_schema sm_msg_schema;
typedef struct sm_msg_seen sm_msg_seen;

typedef struct sm_msg_field {
    const char *key;
    sm_msg_type type;
    unsigned flags;            /* SM_MSG_REQ | ... */
    size_t off, size;          /* the C field: offsetof, sizeof */
    size_t off_n, nsize;       /* its count or length: offsetof, sizeof
                                  (size_t, int64_t or int); nsize 0: none */
    size_t off_v;              /* STRMAP values; SM_MSG_HAS flag */
    int64_t lo, hi;            /* INT and INTS elements: range; UINT: lo */
    size_t max;                /* INTS, STRMAP: most elements */
    int64_t def;               /* INT, UINT, BOOL, ENUM default */
    const char *sdef;          /* STR default */
    const char *const *names;  /* ENUM: the names; STR: one of these */
    int n_names;
    const sm_msg_schema *sub;  /* STRUCTS: the elements' table */
    /* NULL, or when the field belongs to m (read, defaulted and packed
     * only then); the reader asks it of m as read so far, so it may only
     * look at fields earlier in the table. */
    int (*when)(const void *m);
    /* NULL, or a check of the value at value (the C field) once read. */
    int (*check)(sm_mp_reader *r, const char *key, const void *value);
    /* F32S without a count field: the elements to pack. */
    size_t (*count)(const void *m);
} sm_msg_field;

#define SM_MSG_FIELDS_MAX 32

struct sm_msg_schema {
    const char *command;       /* top-level tables: the errors' first word */
    const sm_msg_field *fields;
    size_t n;                  /* <= SM_MSG_FIELDS_MAX */
    size_t size;               /* sizeof the C struct */
    /* NULL, or the checks that span fields, after they are all read. */
    int (*check)(sm_mp_reader *r, void *m, const sm_msg_seen *seen);
};

/* What a read found, for a schema's check. */
struct sm_msg_seen {
    const sm_msg_schema *schema;
    uint64_t present;                  /* bit i: fields[i] was given */
    size_t count[SM_MSG_FIELDS_MAX];   /* elements (bytes of a BIN) read */
};

/* Field macros: the C field f of struct T, and its count n. */
#define SM_MSG_AT(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)
#define SM_MSG_N(T, n) .off_n = offsetof(T, n), .nsize = sizeof(((T *)0)->n)
#define SM_MSG_TABLE(cmd, T, fields_, check_)                                  \
    {.command = cmd, .fields = fields_,                                        \
     .n = sizeof fields_ / sizeof fields_[0], .size = sizeof(T),               \
     .check = check_}

/* 1 when the field key was present; the elements it held. */
int sm_msg_seen_has(const sm_msg_seen *s, const char *key);
size_t sm_msg_seen_count(const sm_msg_seen *s, const char *key);

/* Reads the fields of map (a MessagePack map) into m (s->size bytes,
 * zeroed by the caller) as s says, copying into r's zone, then runs
 * s->check. 0, or -1 with the message in r->err. */
int sm_msg_read(sm_mp_reader *r, const sm_msg_schema *s,
                const msgpack_object *map, void *m);

/* Packs m as the map s describes. Our own messages are trusted: a NULL
 * optional field is left out, and so is a NULL required str (the receiver
 * then says it is missing). */
void sm_msg_pack(msgpack_packer *pk, const sm_msg_schema *s, const void *m);

/* The checks of the value types, for tables' own checks. */
int sm_msg_check_hash(sm_mp_reader *r, const char *key, const char *s);
int sm_msg_check_path(sm_mp_reader *r, const char *key, const char *s);
int sm_msg_check_name(sm_mp_reader *r, const char *key, const char *s);

#endif
