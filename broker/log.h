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

/* A warning that is also kept among the broker's latest faults (WORKERS
 * requests show them): job may be NULL. */
void sm_broker_fault(sm_broker *b, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees the kept faults (sm_broker_destroy). */
void sm_broker_faults_free(sm_broker *b);

#endif
