/* Whole-file reading and atomic writing. */
#ifndef SM_FILE_H
#define SM_FILE_H

#include <stddef.h>

#include "util/err.h"

#define SM_FILE_MAX_MODEL ((size_t)2 << 30) /* 2 GiB: protobuf's own limit */

/* Reads the whole file into a new buffer (caller frees) and sets *len;
 * a NUL byte follows the len bytes read, so that a text file is also a
 * string. Refuses files larger than max bytes. NULL with a message on
 * failure. */
unsigned char *sm_file_read(const char *path, size_t max, size_t *len,
                            sm_err *err);

/* Writes buf to path atomically (temp file in the same folder, fsync,
 * rename), so a reader never sees a partial file. 0 or -1. */
int sm_file_write_atomic(const char *path, const void *buf, size_t len,
                         sm_err *err);

/* The same without the fsync: readers never see a partial file, but a
 * crash may leave an empty one. For files that can be made again (the
 * PNGs of maps), where thousands of fsyncs would cost more than the
 * drawing. */
int sm_file_replace(const char *path, const void *buf, size_t len,
                    sm_err *err);

/* Makes every file written so far on the filesystem holding dir durable
 * (syncfs): one barrier for many sm_file_replace writes. 0, or -1 with
 * "<dir>: ..." (errno in err->sys). */
int sm_file_sync_fs(const char *dir, sm_err *err);

/* The path of rel read relative to the folder of file (rel itself when it
 * is absolute or file has no folder): a new string (caller frees), NULL
 * when out of memory. */
char *sm_file_sibling(const char *file, const char *rel);

/* Creates a directory and its parents (like mkdir -p). 0 or -1. */
int sm_file_mkdirs(const char *path, sm_err *err);

/* Removes a folder and everything below it, best effort (what cannot be
 * removed stays). Symlinks are removed, not followed. */
void sm_file_remove_tree(const char *path);

#endif
