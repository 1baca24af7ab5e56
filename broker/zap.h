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

/* Stops the handler. NULL-safe. */
void sm_zap_destroy(sm_zap **z);

#endif
