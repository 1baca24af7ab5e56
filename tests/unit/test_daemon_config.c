/* The broker's and the worker's YAML configs: defaults, every key, the
 * shipped files, and refusals that name the file, the line and the key,
 * leaving the caller's config untouched. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/daemon_config.h"
#include "tdata.h"

TDATA_SUITE(daemon_config);

typedef union dc_config {
    sm_broker_config broker;
    sm_worker_config worker;
} dc_config;

/* Loads text from a file, as the worker's config when worker != 0, else
 * as the broker's. */
static int dc_load(int worker, const char *text, dc_config *cfg, sm_err *err)
{
    char p[TDATA_PATH];
    tdata_text(p, dir, worker ? "worker.yaml" : "broker.yaml", text);
    return worker ? sm_worker_config_load(p, &cfg->worker, err)
                  : sm_broker_config_load(p, &cfg->broker, err);
}

/* The load refuses text with "<file>:<line>: " and want in the message,
 * and leaves the config as it was. */
static void dc_fails(int worker, const char *text, int line,
                     const char *want)
{
    sm_err err = {0};
    dc_config cfg, before;
    memset(&cfg, 0x5a, sizeof cfg);
    before = cfg;
    cr_assert_eq(dc_load(worker, text, &cfg, &err), -1, "accepted:\n%s",
                 text);
    cr_assert(memcmp(&cfg, &before, sizeof cfg) == 0,
              "a failed load changed the config");
    char where[64];
    snprintf(where, sizeof where, "%s:%d: ",
             worker ? "worker.yaml" : "broker.yaml", line);
    cr_assert(tdata_has(err.msg, where), "'%s' not in: %s", where, err.msg);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

static void dc_broker_fails(const char *text, int line, const char *want)
{
    dc_fails(0, text, line, want);
}

static void dc_worker_fails(const char *text, int line, const char *want)
{
    dc_fails(1, text, line, want);
}

static void dc_broker_is_default(const sm_broker_config *c)
{
    cr_assert_str_eq(c->client_endpoint, "tcp://127.0.0.1:5555");
    cr_assert_str_eq(c->worker_endpoint, "tcp://127.0.0.1:5556");
    cr_assert_str_eq(c->state_dir, "state");
    cr_assert_eq(c->heartbeat_interval, 1.0);
    cr_assert_eq(c->heartbeat_liveness, 3);
    cr_assert_eq(c->max_task_failures, 3);
    cr_assert_eq(c->max_message, (size_t)256 << 20);
    cr_assert_eq(c->max_parts, 16);
    cr_assert_eq(c->task_timeout, 3600);
    cr_assert_str_eq(c->curve_secret_key, "");
    cr_assert_str_eq(c->curve_allow_dir, "");
    cr_assert_eq(c->insecure_allow_plaintext, 0);
    cr_assert_eq(c->n_dataset_roots, 0);
    cr_assert_str_eq(c->output_root, "");
}

static void dc_worker_is_default(const sm_worker_config *c)
{
    cr_assert_str_eq(c->broker, "tcp://localhost:5556");
    cr_assert_str_eq(c->name, "");
    cr_assert_eq(c->capacity, 2);
    cr_assert_eq(c->threads, 0);
    cr_assert_eq(c->heartbeat_interval, 1.0);
    cr_assert_eq(c->heartbeat_liveness, 3);
    cr_assert_eq(c->reconnect_min, 0.25);
    cr_assert_eq(c->reconnect_max, 8.0);
    cr_assert_eq(c->max_message, (size_t)256 << 20);
    cr_assert_eq(c->model_cache, 4);
    cr_assert_str_eq(c->curve_server_key, "");
    cr_assert_str_eq(c->curve_secret_key, "");
}

Test(daemon_config, defaults)
{
    sm_broker_config b;
    sm_worker_config w;
    sm_broker_config_defaults(&b);
    sm_worker_config_defaults(&w);
    dc_broker_is_default(&b);
    dc_worker_is_default(&w);

    /* An empty file, or one of comments, is the defaults. */
    sm_err err = {0};
    dc_config c;
    memset(&c, 0, sizeof c);
    cr_assert_eq(dc_load(0, "", &c, &err), 0, "%s", err.msg);
    dc_broker_is_default(&c.broker);
    memset(&c, 0, sizeof c);
    cr_assert_eq(dc_load(1, "# nothing set\n", &c, &err), 0, "%s", err.msg);
    dc_worker_is_default(&c.worker);
}

Test(daemon_config, broker_full)
{
    sm_err err = {0};
    dc_config u;
    const sm_broker_config *c = &u.broker;
    cr_assert_eq(dc_load(0, "# every key\n"
                            "client_endpoint: tcp://10.0.0.1:6000\n"
                            "worker_endpoint: \"ipc:///run/salmap/w\"\n"
                            "state_dir: /var/lib/salmap\n"
                            "heartbeat_interval: 0.5\n"
                            "heartbeat_liveness: 5\n"
                            "max_task_failures: 2\n"
                            "max_message_mb: 64\n"
                            "max_parts: 100\n"
                            "curve_secret_key: keys/broker.key\n"
                            "curve_allow_dir: keys/allowed\n",
                           &u, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(c->client_endpoint, "tcp://10.0.0.1:6000");
    cr_assert_str_eq(c->worker_endpoint, "ipc:///run/salmap/w");
    cr_assert_str_eq(c->state_dir, "/var/lib/salmap");
    cr_assert_eq(c->heartbeat_interval, 0.5);
    cr_assert_eq(c->heartbeat_liveness, 5);
    cr_assert_eq(c->max_task_failures, 2);
    cr_assert_eq(c->max_message, (size_t)64 << 20);
    cr_assert_eq(c->max_parts, 100);
    cr_assert_str_eq(c->curve_secret_key, "keys/broker.key");
    cr_assert_str_eq(c->curve_allow_dir, "keys/allowed");

    /* Keys left out keep their defaults; empty CURVE paths mean none. */
    cr_assert_eq(dc_load(0, "heartbeat_interval: 0.1\ncurve_secret_key:\n"
                            "curve_allow_dir: \"\"\n",
                           &u, &err),
                 0, "%s", err.msg);
    cr_assert_eq(c->heartbeat_interval, 0.1); /* double, not float */
    cr_assert_str_eq(c->client_endpoint, "tcp://127.0.0.1:5555");
    cr_assert_str_eq(c->curve_secret_key, "");
    cr_assert_eq(c->max_parts, 16);
}

Test(daemon_config, worker_full)
{
    sm_err err = {0};
    dc_config u;
    const sm_worker_config *c = &u.worker;
    cr_assert_eq(dc_load(1, "broker: tcp://broker:5556\n"
                            "name: gpu-box-1\n"
                            "capacity: 4\n"
                            "threads: 2\n"
                            "heartbeat_interval: 2\n"
                            "heartbeat_liveness: 4\n"
                            "reconnect_min: 0.5\n"
                            "reconnect_max: 30\n"
                            "max_message_mb: 1024\n"
                            "model_cache: 1\n"
                            "curve_server_key: keys/broker.pub\n"
                            "curve_secret_key: keys/worker.key\n",
                           &u, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(c->broker, "tcp://broker:5556");
    cr_assert_str_eq(c->name, "gpu-box-1");
    cr_assert_eq(c->capacity, 4);
    cr_assert_eq(c->threads, 2);
    cr_assert_eq(c->heartbeat_interval, 2.0);
    cr_assert_eq(c->heartbeat_liveness, 4);
    cr_assert_eq(c->reconnect_min, 0.5);
    cr_assert_eq(c->reconnect_max, 30.0);
    cr_assert_eq(c->max_message, (size_t)1024 << 20);
    cr_assert_eq(c->model_cache, 1);
    cr_assert_str_eq(c->curve_server_key, "keys/broker.pub");
    cr_assert_str_eq(c->curve_secret_key, "keys/worker.key");
}

/* The files shipped in configs/ load and hold the defaults. */
Test(daemon_config, shipped_files)
{
    sm_err err = {0};
    sm_broker_config b;
    sm_worker_config w;
    cr_assert_eq(sm_broker_config_load("configs/broker.yaml", &b, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(sm_worker_config_load("configs/worker.yaml", &w, &err), 0,
                 "%s", err.msg);
    dc_broker_is_default(&b);
    dc_worker_is_default(&w);
}

Test(daemon_config, parse_from_memory)
{
    static const char text[] = "capacity: 2\nthreads: lots\n";
    sm_err err = {0};
    sm_worker_config c;
    cr_assert_eq(sm_worker_config_parse(text, sizeof text - 1, "mem", &c,
                                        &err),
                 -1);
    cr_assert(tdata_has(err.msg, "mem:2: threads: 'lots' is not an integer"),
              "%s", err.msg);
    cr_assert_eq(sm_worker_config_parse(text, 12, "mem", &c, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(c.capacity, 2);
}

Test(daemon_config, unknown_key)
{
    dc_broker_fails("state_dir: s\nheartbeat: 2\n", 2,
                    "heartbeat: unknown key");
    dc_worker_fails("# typo\n\ncapacty: 2\n", 3, "capacty: unknown key");
    /* The worker's keys are not the broker's. */
    dc_broker_fails("broker: tcp://x:1\n", 1, "broker: unknown key");
    dc_broker_fails("max_message: 100\n", 1, "max_message: unknown key");
}

Test(daemon_config, bad_number)
{
    dc_broker_fails("heartbeat_liveness: 3.0\n", 1,
                    "heartbeat_liveness: '3.0' is not an integer");
    dc_broker_fails("\nmax_parts: 12x\n", 2,
                    "max_parts: '12x' is not an integer");
    dc_broker_fails("heartbeat_interval: 1s\n", 1,
                    "heartbeat_interval: '1s' is not a number of seconds");
    dc_broker_fails("heartbeat_interval: nan\n", 1, "heartbeat_interval");
    dc_broker_fails("heartbeat_interval: 1e400\n", 1, "heartbeat_interval");
    dc_broker_fails("max_message_mb: 0.5\n", 1,
                    "max_message_mb: '0.5' is not a whole number of MiB");
    dc_worker_fails("capacity: \" 2\"\n", 1,
                    "capacity: ' 2' is not an integer");
    dc_worker_fails("threads: 99999999999\n", 1,
                    "threads: '99999999999' is not an integer");
    dc_worker_fails("reconnect_max: 0x10\n", 1,
                    "reconnect_max: '0x10' is not a number of seconds");
    dc_worker_fails("capacity:\n", 1, "capacity: needs a value");
}

Test(daemon_config, out_of_range)
{
    dc_broker_fails("heartbeat_interval: 0\n", 1,
                    "heartbeat_interval: must be > 0");
    dc_broker_fails("heartbeat_interval: -1\n", 1,
                    "heartbeat_interval: must be > 0");
    dc_broker_fails("heartbeat_interval: 7200\n", 1,
                    "heartbeat_interval: must be > 0 and at most 3600");
    dc_broker_fails("heartbeat_liveness: 0\n", 1,
                    "heartbeat_liveness: must be in 1..1000, not 0");
    dc_broker_fails("max_task_failures: -3\n", 1,
                    "max_task_failures: must be in 1..1000, not -3");
    dc_broker_fails("max_message_mb: 0\n", 1,
                    "max_message_mb: must be in 1..4096 (MiB), not 0");
    dc_broker_fails("max_parts: 0\n", 1, "max_parts: must be in 1..");
    dc_worker_fails("capacity: 0\n", 1, "capacity: must be in 1..4096");
    dc_worker_fails("threads: -1\n", 1, "threads: must be in 0..4096");
    dc_worker_fails("model_cache: 0\n", 1, "model_cache: must be in 1..4096");
    dc_worker_fails("max_message_mb: 5000\n", 1, "max_message_mb: must be in");
    /* Across keys: the line of the key that breaks the rule. */
    dc_worker_fails("reconnect_min: 2\nreconnect_max: 1\n", 2,
                    "reconnect_max: 1 is below reconnect_min (2)");
    dc_worker_fails("\nreconnect_min: 10\n", 2,
                    "reconnect_min: 10 is above reconnect_max (8)");
}

Test(daemon_config, wrong_kind)
{
    dc_broker_fails("client_endpoint: [tcp://a:1]\n", 1,
                    "client_endpoint: expected a single value, found a list");
    dc_broker_fails("state_dir: s\nheartbeat_interval: {s: 1}\n", 2,
                    "heartbeat_interval: expected a single value, found a "
                    "mapping");
    dc_worker_fails("- broker\n", 1, "expected a mapping");
    dc_worker_fails("just text\n", 1, "expected a mapping");
}

Test(daemon_config, strings)
{
    /* Endpoints are transport://address. */
    dc_broker_fails("worker_endpoint: localhost:5556\n", 1,
                    "worker_endpoint: 'localhost:5556' is not of the form "
                    "transport://address");
    dc_worker_fails("broker: \"tcp://\"\n", 1, "broker: 'tcp://' is not");
    dc_worker_fails("broker: \"tcp://a b:1\"\n", 1, "broker:");
    dc_broker_fails("client_endpoint:\n", 1, "client_endpoint: needs a value");
    dc_broker_fails("state_dir: \"\"\n", 1, "state_dir: needs a folder");
    /* Longer than its array. */
    char text[2200];
    int n = snprintf(text, sizeof text, "state_dir: ");
    memset(text + n, 'a', 1100);
    strcpy(text + n + 1100, "\n");
    dc_broker_fails(text, 1, "state_dir: longer than 1023 characters");
    /* CURVE: an allowlist needs the key; a worker needs both keys. */
    dc_broker_fails("\ncurve_allow_dir: keys\n", 2,
                    "curve_allow_dir: needs curve_secret_key");
    dc_worker_fails("curve_secret_key: w.key\n", 1,
                    "curve_secret_key: needs curve_server_key too");
    dc_worker_fails("curve_server_key: b.pub\n", 1,
                    "curve_server_key: needs curve_secret_key too");
}

Test(daemon_config, file_errors)
{
    sm_err err = {0};
    sm_broker_config b;
    char p[TDATA_PATH];
    tdata_path(p, dir, "none.yaml");
    cr_assert_eq(sm_broker_config_load(p, &b, &err), -1);
    cr_assert(tdata_has(err.msg, "none.yaml"), "%s", err.msg);

    /* Over the size cap. */
    static char big[(64 << 10) + 16];
    memset(big, '#', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tdata_text(p, dir, "big.yaml", big);
    cr_assert_eq(sm_broker_config_load(p, &b, &err), -1);
    cr_assert(tdata_has(err.msg, "big.yaml"), "%s", err.msg);

    /* Repeated keys, syntax errors and aliases. */
    dc_broker_fails("max_parts: 1\nmax_parts: 2\n", 2,
                    "max_parts: key given twice");
    dc_worker_fails("capacity: [1\n", 2, "YAML syntax error");
    dc_worker_fails("name: &n a\nbroker: *n\n", 2, "broker: YAML alias");
}

Test(daemon_config, set_endpoint)
{
    sm_err err = {0};
    char ep[SM_ENDPOINT_MAX] = "tcp://old:1";
    cr_assert_eq(sm_daemon_set_endpoint(ep, "tcp://*:7000", &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(ep, "tcp://*:7000");
    cr_assert_eq(sm_daemon_set_endpoint(ep, "inproc://x", &err), 0);
    cr_assert_eq(sm_daemon_set_endpoint(ep, "*:7000", &err), -1);
    cr_assert(tdata_has(err.msg, "'*:7000' is not of the form"), "%s",
              err.msg);
    cr_assert_str_eq(ep, "inproc://x");
    char longer[SM_ENDPOINT_MAX + 8] = "tcp://";
    memset(longer + 6, 'h', SM_ENDPOINT_MAX);
    longer[SM_ENDPOINT_MAX + 6] = '\0';
    cr_assert_eq(sm_daemon_set_endpoint(ep, longer, &err), -1);
    cr_assert(tdata_has(err.msg, "longer than 255"), "%s", err.msg);
    cr_assert_str_eq(ep, "inproc://x");
}

Test(daemon_config, set_path)
{
    sm_err err = {0};
    char dir[SM_DAEMON_PATH_MAX] = "state";
    cr_assert_eq(sm_daemon_set_path(dir, "/var/lib/salmap", &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(dir, "/var/lib/salmap");
    /* One byte over is refused, not cut into another folder's name. */
    char longer[SM_DAEMON_PATH_MAX + 1];
    memset(longer, 'd', SM_DAEMON_PATH_MAX);
    longer[SM_DAEMON_PATH_MAX] = '\0';
    cr_assert_eq(sm_daemon_set_path(dir, longer, &err), -1);
    cr_assert(tdata_has(err.msg, "longer than 1023 characters"), "%s",
              err.msg);
    cr_assert_str_eq(dir, "/var/lib/salmap");
    longer[SM_DAEMON_PATH_MAX - 1] = '\0'; /* 1023: fits */
    cr_assert_eq(sm_daemon_set_path(dir, longer, &err), 0, "%s", err.msg);
    cr_assert_str_eq(dir, longer);
}

Test(daemon_config, command_line_args)
{
    const char *config = NULL, *broker = NULL;
    const sm_daemon_opt opts[] = {{"--config", &config}, {"--broker", &broker},
                                  {NULL, NULL}};
    sm_err err;
    char *ok[] = {"w", "--broker", "tcp://h:1", "--config", "w.yaml"};
    cr_assert_eq(sm_daemon_args(5, ok, opts, &err), 0);
    cr_assert_str_eq(config, "w.yaml");
    cr_assert_str_eq(broker, "tcp://h:1");
    char *help[] = {"w", "--config", "x", "-h"};
    cr_assert_eq(sm_daemon_args(4, help, opts, &err), 1);
    char *unknown[] = {"w", "--brokr", "x"};
    cr_assert_eq(sm_daemon_args(3, unknown, opts, &err), -1);
    cr_assert(strstr(err.msg, "unknown option '--brokr'"), "%s", err.msg);
    char *novalue[] = {"w", "--config"};
    cr_assert_eq(sm_daemon_args(2, novalue, opts, &err), -1);
    cr_assert(strstr(err.msg, "--config needs a value"), "%s", err.msg);
}

Test(daemon_config, paths_and_plaintext_keys)
{
    sm_err err = {0};
    dc_config u;
    const sm_broker_config *c = &u.broker;
    cr_assert_eq(dc_load(0, "insecure_allow_plaintext: true\n"
                            "task_timeout: 0\n"
                            "output_root: /srv/out\n"
                            "dataset_roots: [data/mnist, /srv/data]\n",
                         &u, &err),
                 0, "%s", err.msg);
    cr_assert_eq(c->insecure_allow_plaintext, 1);
    cr_assert_eq(c->task_timeout, 0);
    cr_assert_str_eq(c->output_root, "/srv/out");
    cr_assert_eq(c->n_dataset_roots, 2);
    cr_assert_str_eq(c->dataset_roots[0], "data/mnist");
    cr_assert_str_eq(c->dataset_roots[1], "/srv/data");
    /* the defaults: plaintext on loopback only, paths anywhere */
    cr_assert_eq(dc_load(0, "insecure_allow_plaintext: false\n", &u, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(c->insecure_allow_plaintext, 0);
    cr_assert_eq(c->n_dataset_roots, 0);
    cr_assert_str_eq(c->output_root, "");
    dc_broker_fails("state_dir: s\ninsecure_allow_plaintext: yes\n", 2,
                    "insecure_allow_plaintext: 'yes' is neither true nor false");
    dc_broker_fails("dataset_roots: data\n", 1, "dataset_roots");
    dc_broker_fails("task_timeout: 604801\n", 1, "task_timeout: must be in 0..604800");
    dc_broker_fails("max_parts: 2\ndataset_roots: [a, \"\"]\n", 2,
                    "dataset_roots[1]: an empty path");
    dc_broker_fails("dataset_roots: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, "
                    "o, p, q]\n", 1, "17 folders, at most 16");
}

Test(daemon_config, loopback_endpoints)
{
    static const char *const local[] = {
        "tcp://127.0.0.1:5555", "tcp://127.9.8.7:*", "tcp://localhost:1",
        "tcp://[::1]:5555", "ipc:///run/salmap/c", "inproc://broker-c"};
    static const char *const open_[] = {
        "tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.1:5555",
        "tcp://128.0.0.1:5555", "tcp://[::]:5555", "tcp://[::2]:5555",
        "tcp://eth0:5555", "tcp://broker:5556", "tcp://localhost.evil:1",
        "tcp://127.0.0.1.example:1", "ws://127.0.0.1:80", "udp://127.0.0.1:1"};
    for (size_t k = 0; k < sizeof local / sizeof *local; k++)
        cr_assert_eq(sm_daemon_endpoint_loopback(local[k]), 1, "%s", local[k]);
    for (size_t k = 0; k < sizeof open_ / sizeof *open_; k++)
        cr_assert_eq(sm_daemon_endpoint_loopback(open_[k]), 0, "%s", open_[k]);
}
