/* Strict YAML loading shared by salmap's YAML files (model configs, job
 * files): libcyaml loads the document into a struct by a schema, and one
 * libyaml pass before it records where every mapping key is and what its
 * value is, so that every error reads "<file>:<line>: <key>: <what>".
 * Numbers are loaded as text and parsed by the strict parsers below:
 * libcyaml 1.3's INT and FLOAT readers stop at the first bad character and
 * keep the prefix ("12.7" -> 12, "1e9" -> 1, "1,5" -> 1), which would pass
 * typos. */
#ifndef SM_YAML_STRICT_H
#define SM_YAML_STRICT_H

#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "util/err.h"

#define SM_YAML_MAX_PATH 128

typedef enum sm_yaml_kind {
    SM_YAML_SCALAR,
    SM_YAML_MAPPING,
    SM_YAML_SEQUENCE,
    SM_YAML_ALIAS,
} sm_yaml_kind;

/* A mapping key of the document. */
typedef struct sm_yaml_key {
    char path[SM_YAML_MAX_PATH]; /* dotted keys from the top:
                                    "input.channels" (lists skipped) */
    char *name;                  /* the key itself */
    int parent;                  /* index of the key whose value holds this
                                    one's mapping; -1 at the top level */
    int line;                    /* 1-based */
    sm_yaml_kind kind;           /* of its value */
    char *value;                 /* the value's text when a scalar */
} sm_yaml_key;

/* Every mapping key of a document, in document order. */
typedef struct sm_yaml_keys {
    sm_yaml_key *keys;
    int n, cap;
    int root_line; /* the line of the document's first node */
} sm_yaml_keys;

/* Loads the one YAML document in yaml (len bytes; `name` stands for the
 * file in messages) by schema into *data (NULL for an empty document;
 * free with sm_yaml_free) and its keys into *keys (free with
 * sm_yaml_keys_free, also after a failure). Aliases are refused (they can
 * expand a small file into a huge one). 0, or -1 with "<name>:<line>: ..."
 * for a syntax error, an unknown or repeated key, a missing required key
 * or a value of the wrong kind. */
int sm_yaml_load(const char *yaml, size_t len, const char *name,
                 const cyaml_schema_value_t *schema, void **data,
                 sm_yaml_keys *keys, sm_err *err);

void sm_yaml_free(const cyaml_schema_value_t *schema, void *data);
void sm_yaml_keys_free(sm_yaml_keys *keys);

/* The line of the first (or, last != 0, the last) key with this dotted
 * path; the document's first line when there is none. */
int sm_yaml_line(const sm_yaml_keys *keys, const char *path, int last);

/* Strict parsers of a whole string: no leading spaces, no trailing text,
 * no overflow. 0 or -1. */
int sm_yaml_parse_int(const char *s, int *out);        /* decimal */
int sm_yaml_parse_u64(const char *s, uint64_t *out);   /* digits only */
int sm_yaml_parse_float(const char *s, float *out);    /* finite decimal:
                                                          no hex, inf, nan */

/* An image size, `{channels: 1, height: 28, width: 28}`, as libcyaml
 * loads it (sm_yaml_image_fields, every key required) and its check:
 * integers, channels 1 or 3, a positive size within SM_IMAGE_MAX_PIXELS.
 * key: the mapping's dotted path ("input") for lines and messages. 0 or
 * -1. */
typedef struct sm_yaml_image {
    char *channels, *height, *width;
} sm_yaml_image;
extern const cyaml_schema_field_t sm_yaml_image_fields[];
int sm_yaml_image_size(const sm_yaml_image *raw, const char *key,
                       const sm_yaml_keys *ix, const char *name, int *c,
                       int *h, int *w, sm_err *err);

/* s as a YAML double-quoted scalar into dst (cap bytes, snprintf's
 * rules: cut to fit, always NUL-terminated); returns the length it needs.
 * 4 * strlen(s) + 3 bytes always suffice. */
size_t sm_yaml_quote(char *dst, size_t cap, const char *s);

#endif
