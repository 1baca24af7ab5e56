/* salmap-worker [--config worker.yaml] [--broker ENDPOINT]: serves until
 * SIGINT or SIGTERM, then finishes its current task and hands back the
 * rest. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "data/image.h"
#include "worker/worker.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: salmap-worker [--config worker.yaml] [--broker ENDPOINT]\n"
            "                     [--name NAME] [--threads N] [--capacity N]\n"
            "Runs the tasks a broker leases it (default broker\n"
            "tcp://localhost:5556). Options override the config file\n"
            "(configs/worker.yaml documents every key).\n");
    return f == stdout ? 0 : 2;
}

static int parse_count(const char *opt, const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 0 || n > 4096) {
        fprintf(stderr, "salmap-worker: %s '%s': a count from 0 to 4096\n", opt, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

int main(int argc, char **argv)
{
    sm_worker_config cfg;
    sm_err err;
    const char *config = NULL, *broker = NULL, *name = NULL, *threads = NULL,
               *capacity = NULL;
    const sm_daemon_opt opts[] = {{"--config", &config}, {"--broker", &broker},
                                  {"--name", &name}, {"--threads", &threads},
                                  {"--capacity", &capacity}, {NULL, NULL}};
    int rc = sm_daemon_args(argc, argv, opts, &err);
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "salmap-worker: %s\n", err.msg);
        return usage(rc > 0 ? stdout : stderr);
    }
    sm_worker_config_defaults(&cfg);
    if ((config && sm_worker_config_load(config, &cfg, &err)) ||
        (broker && sm_daemon_set_endpoint(cfg.broker, broker, &err) &&
         sm_err_prefix(&err, "--broker"))) {
        fprintf(stderr, "salmap-worker: %s\n", err.msg);
        return 2;
    }
    if (name && strlen(name) >= sizeof cfg.name) {
        fprintf(stderr, "salmap-worker: --name: longer than %zu characters\n",
                sizeof cfg.name - 1);
        return 2;
    }
    if (name)
        snprintf(cfg.name, sizeof cfg.name, "%s", name);
    if ((threads && parse_count("--threads", threads, &cfg.threads)) ||
        (capacity && parse_count("--capacity", capacity, &cfg.capacity)))
        return 2;
    if (cfg.capacity < 1)
        cfg.capacity = 1;
    /* a test's poison input (tests/integration/faults.sh), never a config key */
    const char *crash = getenv("SALMAP_TEST_CRASH_ON");
    snprintf(cfg.test_crash_on, sizeof cfg.test_crash_on, "%s", crash ? crash : "");
    if (sm_vips_init(argv[0], &err)) {
        fprintf(stderr, "salmap-worker: %s\n", err.msg);
        return 1;
    }
    /* the model splits batches over its own threads (docs/PERFORMANCE.md) */
    openblas_set_num_threads(1);
    atomic_int *stop = sm_daemon_stop_on_signals();
    void *ctx = zmq_ctx_new();
    sm_worker *w = sm_worker_new(ctx, &cfg, &err);
    rc = 1;
    if (w)
        rc = sm_worker_run(w, stop, &err) ? 1 : 0;
    if (rc)
        fprintf(stderr, "salmap-worker: %s\n", err.msg);
    sm_worker_destroy(&w);
    zmq_ctx_term(ctx);
    return rc;
}
