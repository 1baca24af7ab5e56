/* The configs of the two daemons, salmap-broker and salmap-worker: YAML
 * files (configs/broker.yaml and configs/worker.yaml list every key with
 * its default; docs/DEPLOY.md says what each is for), loaded as strictly as
 * model configs and job files. Every key is optional, and an empty file
 * gives the defaults. Numbers are parsed as a whole ("1.5s", "3.0" for an
 * integer and "1e400" are refused); unknown keys, values out of range and
 * values of the wrong kind (a list where a number belongs) are errors of
 * the form "<file>:<line>: <key>: <what>".
 *
 * Paths are used as written: relative ones against the daemon's current
 * folder. The loaded structs hold fixed-size strings, so a caller has
 * nothing to free and may copy them freely. */
#ifndef SM_DAEMON_CONFIG_H
#define SM_DAEMON_CONFIG_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/err.h"

/* Config files larger than this are refused. */
#define SM_DAEMON_CONFIG_MAX_BYTES ((size_t)64 << 10)

/* Array sizes of the strings below, the NUL included: longer values are
 * refused at load. */
#define SM_ENDPOINT_MAX 256    /* "tcp://host:port" and the like */
#define SM_DAEMON_PATH_MAX 1024
#define SM_WORKER_NAME_MAX 256
#define SM_DATASET_ROOTS_MAX 16 /* folders in dataset_roots */

typedef struct sm_broker_config {
    /* Where clients and workers connect; by default tcp port 5555 and
     * 5556 on loopback: any other address needs CURVE (or
     * insecure_allow_plaintext), see sm_daemon_endpoint_loopback. */
    char client_endpoint[SM_ENDPOINT_MAX];
    char worker_endpoint[SM_ENDPOINT_MAX];
    char state_dir[SM_DAEMON_PATH_MAX];    /* "state": journal and blobs */
    double heartbeat_interval; /* seconds between heartbeats, 1.0; > 0 */
    int heartbeat_liveness;    /* heartbeats missed before a worker counts
                                  as dead, 3; >= 1 */
    int max_task_failures;     /* workers a task may kill before it is
                                  quarantined, 3; >= 1 */
    size_t max_message;        /* bytes of one message, 256 MiB (YAML:
                                  max_message_mb, in MiB) */
    int max_parts;             /* a lone image's neighbourhood goes out in
                                  at most this many parts, 16; 1: whole */
    int task_timeout;          /* seconds a worker may hold a task, 3600;
                                  then it is told to start over and its
                                  tasks go back (a worker that heartbeats
                                  but never answers); 0: no limit */
    char curve_secret_key[SM_DAEMON_PATH_MAX]; /* file holding the broker's
                                  Z85 secret key; "" = no CURVE */
    char curve_allow_dir[SM_DAEMON_PATH_MAX];  /* folder of allowed client
                                  and worker public keys, Z85, one per file;
                                  "" = no allowlist (needs curve_secret_key) */
    int insecure_allow_plaintext; /* 0: without CURVE the broker binds
                                  loopback endpoints only (refuses to start
                                  otherwise); 1: serves in the clear
                                  anywhere (YAML: true / false) */
    /* Where a job may read its dataset and write its output folder, each
     * checked by realpath at SUBMIT (util/confine.h); none given: anywhere
     * (the behaviour before these keys, logged at start). */
    char dataset_roots[SM_DATASET_ROOTS_MAX][SM_DAEMON_PATH_MAX];
    int n_dataset_roots;
    char output_root[SM_DAEMON_PATH_MAX]; /* "": anywhere */
} sm_broker_config;

typedef struct sm_worker_config {
    char broker[SM_ENDPOINT_MAX]; /* "tcp://localhost:5556" */
    char name[SM_WORKER_NAME_MAX]; /* "": the worker uses host name + pid */
    int capacity;                 /* tasks held at once, 2; >= 1 */
    int threads;                  /* compute threads, 0 = all cores */
    double heartbeat_interval;    /* seconds, 1.0; > 0 */
    int heartbeat_liveness;       /* 3; >= 1 */
    double reconnect_min;         /* first reconnect delay, 0.25 s */
    double reconnect_max;         /* backoff ceiling, 8 s; >= reconnect_min */
    size_t max_message;           /* bytes, 256 MiB (YAML: max_message_mb) */
    int model_cache;              /* models kept loaded, 4; >= 1 */
    char curve_server_key[SM_DAEMON_PATH_MAX]; /* file holding the broker's
                                  Z85 public key; "" = no CURVE */
    char curve_secret_key[SM_DAEMON_PATH_MAX]; /* file holding this
                                  worker's Z85 secret key; set together
                                  with curve_server_key */
    char test_crash_on[256];      /* not a YAML key: the worker's environment
                                     SALMAP_TEST_CRASH_ON (tests only; see
                                     sm_compute_set_crash_on) */
} sm_worker_config;

/* The defaults listed above. Cannot fail. */
void sm_broker_config_defaults(sm_broker_config *cfg);
void sm_worker_config_defaults(sm_worker_config *cfg);

/* Reads the file (at most SM_DAEMON_CONFIG_MAX_BYTES) and sets *cfg to the
 * defaults overridden by the file's values. 0, or -1 with a message of the
 * form "<path>:<line>: <key>: <what>" (or "<path>: <what>" when the file
 * cannot be read), leaving *cfg as it was. */
int sm_broker_config_load(const char *path, sm_broker_config *cfg,
                          sm_err *err);
int sm_worker_config_load(const char *path, sm_worker_config *cfg,
                          sm_err *err);

/* The same from YAML text in memory (len bytes); `name` stands for the
 * file in messages. */
int sm_broker_config_parse(const char *yaml, size_t len, const char *name,
                           sm_broker_config *cfg, sm_err *err);
int sm_worker_config_parse(const char *yaml, size_t len, const char *name,
                           sm_worker_config *cfg, sm_err *err);

/* Copies endpoint into dst (SM_ENDPOINT_MAX bytes) after the check a
 * config file's endpoints get: "<transport>://<address>" and short enough.
 * For the daemons' --client, --workers and --broker options. 0, or -1 with
 * a message without the option's name ("'x' is not of the form
 * transport://address"), leaving dst as it was. */
int sm_daemon_set_endpoint(char *dst, const char *endpoint, sm_err *err);

/* 1 when the endpoint reaches this machine only: ipc:// and inproc://,
 * or tcp:// on 127.0.0.0/8, ::1 or localhost; 0 for anything else
 * (every interface, a host name, another address or transport). The broker
 * needs CURVE (or insecure_allow_plaintext) to bind any other. */
int sm_daemon_endpoint_loopback(const char *endpoint);

/* Copies path into dst (SM_DAEMON_PATH_MAX bytes), refused when longer as
 * a config file's paths are, rather than cut into another path. For the
 * broker's --state. 0, or -1 with "longer than 1023 characters", leaving
 * dst as it was. */
int sm_daemon_set_path(char *dst, const char *path, sm_err *err);

/* A daemon's command line: "--name value" pairs into the value pointers
 * of opts (ended by a NULL name). 0 when parsed, 1 for --help or -h,
 * -1 with a message naming the option (unknown, or without a value). */
typedef struct sm_daemon_opt {
    const char *name;   /* "--config" */
    const char **value; /* receives the argument */
} sm_daemon_opt;

int sm_daemon_args(int argc, char **argv, const sm_daemon_opt *opts,
                   sm_err *err);

/* Makes SIGINT and SIGTERM set the flag returned, which a daemon's run
 * loop polls to stop. The flag is process-wide: a signal handler can reach
 * nothing else. */
atomic_int *sm_daemon_stop_on_signals(void);

#endif
