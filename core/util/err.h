/* sm_err: the error convention of salmap.
 *
 * A function that can fail for reasons outside the program (a file, the wire,
 * a config, a model) takes an `sm_err *err` as its last argument, returns -1
 * (or NULL) on failure and writes one human-readable line into err->msg that
 * names the thing that failed and where it came from. `err` may be NULL when
 * the caller does not want the message. Callers add context with
 * sm_err_prefix() as the error travels up ("model.onnx: node 'conv1': ..."). */
#ifndef SM_ERR_H
#define SM_ERR_H

#include <stddef.h>

#define SM_ERR_MAX 1024

typedef struct sm_err {
    char msg[SM_ERR_MAX];
    int sys;  /* the errno behind the failure when the caller may act on it
                 (ENOSPC: wait for space, not give up), else 0 */
} sm_err;

/* Formats the message into err (if not NULL), sys 0. Always returns -1 so
 * that `return sm_err_set(err, ...);` reads as a failure return. */
int sm_err_set(sm_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same with the errno sys behind it kept in err->sys. */
int sm_err_set_sys(sm_err *err, int sys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when err failed for want of disk space (ENOSPC, EDQUOT): a failure
 * to wait out, not to give up on. */
int sm_err_disk_full(const sm_err *err);

/* Prepends "<formatted>: " to the message already in err. Returns -1. */
int sm_err_prefix(sm_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the message. */
void sm_err_clear(sm_err *err);

#endif
