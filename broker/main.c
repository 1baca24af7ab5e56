/* salmap-broker [--config broker.yaml] [--client ENDPOINT] [--workers
 * ENDPOINT] [--state DIR]: serves until SIGINT or SIGTERM. */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "broker/broker.h"
#include "data/image.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: salmap-broker [--config broker.yaml] [--client ENDPOINT]\n"
            "                     [--workers ENDPOINT] [--state DIR]\n"
            "Takes jobs from clients (default tcp://127.0.0.1:5555) and leases\n"
            "their tasks to workers (default tcp://127.0.0.1:5556); keeps its\n"
            "journal and blobs in --state (default ./state). Endpoints beyond\n"
            "loopback need CURVE keys (salmap keygen). Options override the\n"
            "config file (configs/broker.yaml documents every key).\n");
    return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    sm_broker_config cfg;
    sm_err err;
    const char *client = NULL, *workers = NULL, *state = NULL, *config = NULL;
    const sm_daemon_opt opts[] = {{"--config", &config}, {"--client", &client},
                                  {"--workers", &workers}, {"--state", &state},
                                  {NULL, NULL}};
    int rc = sm_daemon_args(argc, argv, opts, &err);
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "salmap-broker: %s\n", err.msg);
        return usage(rc > 0 ? stdout : stderr);
    }
    sm_broker_config_defaults(&cfg);
    if ((config && sm_broker_config_load(config, &cfg, &err)) ||
        (client && sm_daemon_set_endpoint(cfg.client_endpoint, client, &err) &&
         sm_err_prefix(&err, "--client")) ||
        (workers && sm_daemon_set_endpoint(cfg.worker_endpoint, workers, &err) &&
         sm_err_prefix(&err, "--workers")) ||
        (state && sm_daemon_set_path(cfg.state_dir, state, &err) &&
         sm_err_prefix(&err, "--state"))) {
        fprintf(stderr, "salmap-broker: %s\n", err.msg);
        return 2;
    }
    if (sm_vips_init(argv[0], &err)) {
        fprintf(stderr, "salmap-broker: %s\n", err.msg);
        return 1;
    }
    atomic_int *stop = sm_daemon_stop_on_signals();
    void *ctx = zmq_ctx_new();
    sm_broker *b = sm_broker_new(ctx, &cfg, &err);
    rc = 1;
    if (b) {
        fprintf(stderr, "salmap-broker: clients on %s, workers on %s\n",
                cfg.client_endpoint, cfg.worker_endpoint);
        if (!cfg.curve_secret_key[0])
            fprintf(stderr, "salmap-broker: CURVE is off: %s\n",
                    cfg.insecure_allow_plaintext
                        ? "serving in the clear (insecure_allow_plaintext)"
                        : "loopback peers only");
        if (!cfg.n_dataset_roots || !cfg.output_root[0])
            fprintf(stderr, "salmap-broker: %s not set: jobs may %s anywhere "
                    "this user can (docs/DEPLOY.md, \"Paths\")\n",
                    !cfg.n_dataset_roots && !cfg.output_root[0]
                        ? "dataset_roots and output_root"
                        : cfg.n_dataset_roots ? "output_root" : "dataset_roots",
                    !cfg.n_dataset_roots && !cfg.output_root[0]
                        ? "read datasets and write outputs"
                        : cfg.n_dataset_roots ? "write outputs" : "read datasets");
        rc = sm_broker_run(b, stop, &err) ? 1 : 0;
    }
    if (rc)
        fprintf(stderr, "salmap-broker: %s\n", err.msg);
    sm_broker_destroy(&b);
    zmq_ctx_term(ctx);
    return rc;
}
