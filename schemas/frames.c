/* Frames over ZeroMQ (msg.h): signature, command and body, with the
 * sender's identity in front on a ROUTER. */
#include "msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

/* A command: 1..31 of A-Z, 0-9 and '_' (BLOB_GET). */
static int command_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n >= sizeof ((sm_msg_frames *)0)->command)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '_'))
            return 0;
    return 1;
}

/* A signature: 1..7 printable ASCII characters. */
static int signature_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n >= sizeof ((sm_msg_frames *)0)->signature)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
    return 1;
}

int sm_msg_recv(void *sock, int router, int flags, sm_msg_frames *f,
                sm_err *err)
{
    memset(f, 0, sizeof *f);
    int first = router ? 1 : 0; /* frames before the signature */
    int parts = 0;
    char bad[160] = "";
    /* Every part is read, even after the message is known to be bad: the
     * next recv must start at the next message. ZeroMQ delivers the parts
     * of a message together, so only the first recv can wait. */
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, parts == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            free(f->body);
            f->body = NULL;
            f->len = 0;
            errno = e;
            if (e == EAGAIN && parts == 0)
                return sm_err_set(err, "no message waiting");
            return sm_err_set(err, "receiving: %s", zmq_strerror(e));
        }
        const uint8_t *p = zmq_msg_data(&part);
        size_t n = zmq_msg_size(&part);
        int more = zmq_msg_more(&part);
        int k = parts - first; /* 0 signature, 1 command, 2 body */
        if (bad[0]) {
            /* already refused: just drain */
        } else if (k < 0) {
            if (n > sizeof f->identity)
                snprintf(bad, sizeof bad, "identity of %zu bytes", n);
            else if (n) {
                memcpy(f->identity, p, n);
                f->identity_len = n;
            }
        } else if (k == 0) {
            if (!signature_ok(p, n))
                snprintf(bad, sizeof bad, "signature frame of %zu bytes is "
                         "not 1 to 7 printable characters", n);
            else
                memcpy(f->signature, p, n);
        } else if (k == 1) {
            if (!command_ok(p, n))
                snprintf(bad, sizeof bad, "command frame of %zu bytes is not "
                         "1 to 31 of A-Z, 0-9, _", n);
            else
                memcpy(f->command, p, n);
        } else if (k == 2 && !more) {
            if (!(f->body = malloc(n ? n : 1))) {
                snprintf(bad, sizeof bad, "out of memory for a body of %zu "
                         "bytes", n);
            } else {
                if (n)
                    memcpy(f->body, p, n);
                f->len = n;
            }
        }
        zmq_msg_close(&part);
        parts++;
        if (!more)
            break;
    }
    if (!bad[0] && parts != first + 3)
        snprintf(bad, sizeof bad, "%d frames%s, expected 3", parts - first,
                 first ? " after the identity" : "");
    if (bad[0]) {
        free(f->body);
        f->body = NULL;
        f->len = 0;
        errno = EPROTO;
        return sm_err_set(err, "message refused: %s", bad);
    }
    return 0;
}

void sm_msg_frames_free(sm_msg_frames *f)
{
    if (!f)
        return;
    free(f->body);
    f->body = NULL;
    f->len = 0;
}

int sm_msg_send(void *sock, const uint8_t *identity, size_t identity_len,
                const char *signature, const char *command, const void *body,
                size_t len)
{
    if (identity && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE) < 0)
        return -1;
    if (zmq_send(sock, signature, strlen(signature), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, command, strlen(command), ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, body ? body : "", body ? len : 0, 0) < 0)
        return -1;
    return 0;
}
