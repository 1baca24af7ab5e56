/* The broker's log lines on stderr ("salmap-broker: ..."). A file of their
 * own so that a broker file that logs needs no other broker file for it. */
#ifndef SM_BROKER_LOG_H
#define SM_BROKER_LOG_H

#include "broker/broker.h"

/* Progress lines (jobs, workers) unless b is quiet (sm_broker_set_quiet);
 * warnings always. */
void sm_broker_info(const sm_broker *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sm_broker_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
