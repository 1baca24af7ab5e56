/* sm_zap: the broker's ZAP handler (ZeroMQ RFC 27): with CURVE on, a
 * client or worker gets in only if its public key is in the allowlist
 * folder (one Z85 key a file). Fails closed: anything else, a malformed
 * request included, is refused. */
#ifndef SM_ZAP_H
#define SM_ZAP_H

#include "util/err.h"

typedef struct sm_zap sm_zap;

/* Loads the keys of allow_dir and starts the handler on ctx (it must run
 * before the broker's sockets bind). NULL with a message. */
sm_zap *sm_zap_new(void *ctx, const char *allow_dir, sm_err *err);

/* Logs the failed handshakes of sock (the broker's ROUTER `name`,
 * "clients" or "workers"): peers that do not speak CURVE or whose
 * handshake does not decrypt (refusals of a key not allowed are logged
 * with the request). Called once a socket, before it binds. 0 or -1. */
int sm_zap_watch(sm_zap *z, void *sock, const char *name, sm_err *err);

/* Stops the handler. NULL-safe. */
void sm_zap_destroy(sm_zap **z);

#endif
