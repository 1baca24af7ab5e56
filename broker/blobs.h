/* sm_blobs: content-addressed bytes (models, inline images) in a folder,
 * one file a blob named by its hash (schemas/msg.h, sm_hash_hex). */
#ifndef SM_BLOBS_H
#define SM_BLOBS_H

#include <stddef.h>

#include "util/err.h"

/* Stores data under its hash in dir, which must match `hash` (the
 * sender's claim). 0 or -1 with a message. */
int sm_blobs_put(const char *dir, const char *hash, const void *data,
                 size_t len, sm_err *err);

/* The path of a blob into buf; 1 when it exists, 0 when not (or hash is
 * not a hash). */
int sm_blobs_path(const char *dir, const char *hash, char *buf, size_t cap);

#endif
