/* CURVE keys for the wire (ZeroMQ's CurveZMQ): key files, and setting up
 * a socket as a CURVE server or client. Keys are Z85 text, 40 characters
 * (32 bytes), one to a file; `salmap keygen` writes pairs. */
#ifndef SM_CURVE_H
#define SM_CURVE_H

#include "util/err.h"

#define SM_CURVE_KEY 41 /* 40 Z85 characters and a NUL */

/* The ZAP domain the broker's sockets enforce. */
#define SM_CURVE_DOMAIN "salmap"

/* Reads a key file (40 Z85 characters, surrounding whitespace allowed)
 * into key. -1 with a message naming the file. */
int sm_curve_read_key(const char *path, char *key, sm_err *err);

/* The public key of a secret key. */
int sm_curve_public(const char *secret, char *public_key, sm_err *err);

/* Makes sock a CURVE server with this secret key whose clients a ZAP
 * handler must admit (ZMQ_ZAP_ENFORCE_DOMAIN: no handler, no entry).
 * Before bind. */
int sm_curve_server(void *sock, const char *secret, sm_err *err);

/* Makes sock a CURVE client of the server with public key `server`,
 * itself holding `secret`. Before connect. */
int sm_curve_client(void *sock, const char *server, const char *secret,
                    sm_err *err);

#endif
