/* bench/pipeline: what the pipeline (docs/PIPELINE.md) costs against the
 * direct loop, and whether a lone image's LIME gets faster with workers
 * (the pipeline's targets: cost under 10%, latency falling as workers are
 * added). On models/mnist_cnn.onnx and data/mnist/test, seed 7, metrics
 * off, each run into a fresh folder:
 *
 *   direct       sm_explain_job_run (core/explain/job.c), one loop
 *   embedded N   sm_embedded_new(N, 0) + libsalmap-client over inproc://
 *   distributed  salmap-broker and N salmap-worker processes on loopback
 *                (--threads cores/N), libsalmap-client over tcp://
 *
 * for sal on 1024 images (batch 64) and lime (1,000 samples) on 48:
 * images per second, from submit to the end of wait (the direct loop:
 * the whole sm_explain_job_run call; both include loading the model and
 * opening the dataset), and the ratio to the direct loop of the same run
 * (target: >= 0.90, the pipeline costing under 10%): the direct loop
 * runs first and again last, and the ratios take its better time. Setup
 * (starting the embedded pipeline, or the processes until every worker
 * is READY) is shown apart. Then the latency of LIME on one image,
 * embedded with 1 and 2 workers: median of 5 runs after a warm-up (the
 * broker splits a lone image's neighbourhood over idle workers), and the
 * ratio 2 / 1 (target: below 1, falling as workers are added), in two
 * setups: the machine's cores shared out among the workers, and one
 * thread a worker (each worker bringing a core of its own, as on a
 * cluster).
 *
 * Last, every map of every pipeline run is compared byte for byte with
 * the direct loop's ("maps identical: yes/no"); the exit status is
 * non-zero when they differ or a run failed.
 *
 * Run from the repository root (make bench). The daemons are taken from
 * $BUILD/bin (BUILD from the environment; else the folder above this
 * binary's bench/; else "build"). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/embedded.h"
#include "client/lib/salmap_client.h"
#include "common.h"
#include "data/dataset.h"
#include "data/image.h"
#include "explain/job.h"
#include "util/file.h"


#define MODEL   "models/mnist_cnn.onnx"
#define CONFIG  "models/mnist_cnn.yaml"
#define DATASET "data/mnist/test"
#define SEED    7
#define BATCH   64
#define N_SAL   1024
#define N_LIME  48
#define LAT_RUNS 5
#define MAX_WORKERS 2

static char tmp[1024];   /* this run's folder, removed at the end */
static char build[512];  /* where bin/salmap-broker is */
static long cores = 1;

typedef struct row {
    const char *mode, *method;
    int workers;         /* 0: the direct loop */
    size_t images;
    double seconds, setup;
    double runs[2];      /* the direct loop: before and after the others */
    char out[1200];
    int ok;
} row;

static row rows[16];
static int n_rows;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t limit_of(const char *method)
{
    return strcmp(method, "sal") == 0 ? N_SAL : N_LIME;
}

/* ---- the direct loop ---------------------------------------------------- */

/* sm_explain_job_run with progress off (it still logs a line per batch:
 * those go to a log file, shown when the run fails). */
static int direct(const char *method, size_t limit, const char *out,
                  double *seconds)
{
    const char *methods[1] = {method};
    sm_explain_job job = {
        .model = MODEL, .config = CONFIG, .dataset = DATASET, .out = out,
        .methods = methods, .n_methods = 1, .limit = limit, .seed = SEED,
        .batch = BATCH, .target = SM_TARGET_PREDICTED, .score_prob = 0,
        .metrics = 0, .progress = 0,
    };
    char log[1200];
    snprintf(log, sizeof log, "%s/direct-%s.log", tmp, method);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved >= 0 && fd >= 0)
        dup2(fd, STDERR_FILENO);
    sm_explain_stats st;
    sm_err err = {0};
    double t0 = bench_now();
    int rc = sm_explain_job_run(&job, &st, &err);
    *seconds = bench_now() - t0;
    fflush(stderr);
    if (saved >= 0 && fd >= 0)
        dup2(saved, STDERR_FILENO);
    if (fd >= 0)
        close(fd);
    if (saved >= 0)
        close(saved);
    if (rc || st.maps_written != limit) {
        fprintf(stderr, "pipeline: direct %s: %s (%zu maps written of %zu; "
                "log %s)\n", method, rc ? err.msg : "maps missing",
                st.maps_written, limit, log);
        return -1;
    }
    return 0;
}

/* ---- through libsalmap-client ------------------------------------------ */

/* Submits the job and waits for its end; *seconds from submit to the end
 * of wait. 0 when it ended done with every map written. */
static int submit_wait(sm_client *c, const char *what, const char *method,
                       size_t limit, const char *out, double *seconds)
{
    const char *methods[1] = {method};
    sm_client_job job = {
        .name = what, .model = MODEL, .config = CONFIG, .dataset = DATASET,
        .methods = methods, .n_methods = 1, .seed = SEED, .out = out,
        .limit = limit, .metrics = 0, .batch = BATCH,
    };
    char id[SM_CLIENT_ID_MAX];
    sm_client_status st;
    double t0 = bench_now();
    if (sm_client_submit(c, &job, id) || sm_client_wait(c, id, NULL, NULL, &st)) {
        fprintf(stderr, "pipeline: %s %s: %s\n", what, method, sm_client_error(c));
        return -1;
    }
    *seconds = bench_now() - t0;
    if (strcmp(st.state, "done") || st.maps_failed ||
        st.maps_done != (uint64_t)limit) {
        fprintf(stderr, "pipeline: %s %s: job %s, %llu maps done, %llu failed%s%s\n",
                what, method, st.state, (unsigned long long)st.maps_done,
                (unsigned long long)st.maps_failed, st.error[0] ? ": " : "",
                st.error);
        return -1;
    }
    return 0;
}

/* Runs sal then lime through c, adding their rows. */
static int both_methods(sm_client *c, const char *mode, int workers,
                        double setup)
{
    static const char *const methods[2] = {"sal", "lime"};
    int rc = 0;
    for (int m = 0; m < 2; m++) {
        row *r = &rows[n_rows++];
        *r = (row){.mode = mode, .method = methods[m], .workers = workers,
                   .images = limit_of(methods[m]), .setup = setup};
        snprintf(r->out, sizeof r->out, "%s/%s-%d-%s", tmp, mode, workers,
                 methods[m]);
        char what[64];
        snprintf(what, sizeof what, "%s-%d", mode, workers);
        r->ok = submit_wait(c, what, r->method, r->images, r->out,
                            &r->seconds) == 0;
        rc |= !r->ok;
    }
    return rc ? -1 : 0;
}

static int embedded(int workers)
{
    sm_err err = {0};
    double t0 = bench_now();
    sm_embedded *e = sm_embedded_new(workers, 0, &err);
    if (!e) {
        fprintf(stderr, "pipeline: embedded: %s\n", err.msg);
        return -1;
    }
    sm_client *c = sm_client_new_ctx(sm_embedded_ctx(e), sm_embedded_endpoint(e));
    double setup = bench_now() - t0;
    int rc = c ? both_methods(c, "embedded", workers, setup) : -1;
    sm_client_destroy(&c);
    sm_embedded_destroy(&e);
    return rc;
}

/* ---- processes on loopback --------------------------------------------- */

/* SIGTERM, then up to 10 s for it to exit (SIGKILL after that). */
static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int k = 0; k < 1000; k++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        sleep_ms(10);
    }
    fprintf(stderr, "pipeline: process %ld ignored SIGTERM: killed\n", (long)pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* 1 when file holds text. */
static int file_has(const char *path, const char *text)
{
    size_t len;
    sm_err err;
    char *s = (char *)sm_file_read(path, (size_t)16 << 20, &len, &err);
    int found = 0;
    if (s) {
        char *z = realloc(s, len + 1);
        if (z) {
            s = z;
            s[len] = '\0';
            found = strstr(s, text) != NULL;
        }
        free(s);
    }
    return found;
}

/* Waits until log holds text, pid (if > 0) still running, up to seconds.
 * 0 when it does. */
static int wait_for(const char *log, const char *text, pid_t pid, double seconds)
{
    double end = bench_now() + seconds;
    for (;;) {
        if (file_has(log, text))
            return 0;
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
            return -2; /* it exited */
        if (bench_now() > end)
            return -1;
        sleep_ms(10);
    }
}

/* A port p with p and p + 1 both free on 127.0.0.1 at the time asked. */
static int free_ports(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int s = socket(AF_INET, SOCK_STREAM, 0), t = -1, port = -1;
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof a;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(s, (struct sockaddr *)&a, &len) == 0 &&
            ntohs(a.sin_port) < 65535) {
            port = ntohs(a.sin_port);
            a.sin_port = htons((uint16_t)(port + 1));
            t = socket(AF_INET, SOCK_STREAM, 0);
            if (t < 0 || bind(t, (struct sockaddr *)&a, sizeof a) != 0)
                port = -1;
        }
        if (s >= 0)
            close(s);
        if (t >= 0)
            close(t);
        if (port > 0)
            return port;
    }
    return -1;
}

static int distributed(int workers)
{
    char bin_b[700], bin_w[700], state[1200], blog[1200], client_ep[64],
        workers_ep[64];
    snprintf(bin_b, sizeof bin_b, "%s/bin/salmap-broker", build);
    snprintf(bin_w, sizeof bin_w, "%s/bin/salmap-worker", build);
    pid_t broker = -1, wpid[MAX_WORKERS];
    int rc = -1, n_started = 0;
    double t0 = bench_now();
    for (int tries = 0; tries < 8 && broker < 0; tries++) {
        int port = free_ports();
        if (port < 0)
            break;
        snprintf(client_ep, sizeof client_ep, "tcp://127.0.0.1:%d", port);
        snprintf(workers_ep, sizeof workers_ep, "tcp://127.0.0.1:%d", port + 1);
        snprintf(state, sizeof state, "%s/state-%d-%d", tmp, workers, tries);
        snprintf(blog, sizeof blog, "%s/broker-%d-%d.log", tmp, workers, tries);
        char *argv[] = {bin_b, "--client", client_ep, "--workers", workers_ep,
                        "--state", state, NULL};
        broker = bench_spawn(argv, blog);
        if (broker < 0)
            break;
        int w = wait_for(blog, "clients on", broker, 10);
        if (w == 0)
            break;
        if (w == -1)
            stop(broker);
        broker = -1; /* the port was taken meanwhile: another */
    }
    if (broker < 0) {
        fprintf(stderr, "pipeline: the broker did not start (%s)\n", blog);
        return -1;
    }
    char threads[24];
    snprintf(threads, sizeof threads, "%ld", cores / workers > 0 ? cores / workers : 1);
    for (int k = 0; k < workers; k++) {
        char name[16], log[1200];
        snprintf(name, sizeof name, "w%d", k + 1);
        snprintf(log, sizeof log, "%s/worker-%d-%s.log", tmp, workers, name);
        char *argv[] = {bin_w, "--broker", workers_ep, "--threads", threads,
                        "--name", name, NULL};
        if ((wpid[k] = bench_spawn(argv, log)) < 0)
            goto out;
        n_started++;
    }
    /* timed from submit, so every worker first joins (READY) */
    for (int k = 0; k < workers; k++) {
        char ready[64];
        snprintf(ready, sizeof ready, "worker w%d ready", k + 1);
        if (wait_for(blog, ready, broker, 10)) {
            fprintf(stderr, "pipeline: worker w%d did not join (%s)\n", k + 1, blog);
            goto out;
        }
    }
    double setup = bench_now() - t0;
    sm_client *c = sm_client_new(client_ep);
    if (c)
        rc = both_methods(c, "distributed", workers, setup);
    sm_client_destroy(&c);
out:
    for (int k = 0; k < n_started; k++)
        stop(wpid[k]);
    stop(broker);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- paired runs ----------------------------------------------------------
 * The VM's speed drifts by tens of percent within minutes, which swamps a
 * 10% target when the direct loop and the pipeline run minutes apart. So
 * LIME on one embedded worker is also timed in alternating pairs (direct,
 * then pipeline, PAIRS times) and the median of the pair ratios is shown. */
#define PAIRS 5
#define N_PAIRED 16

static int paired_lime(double *median, double *lo, double *hi)
{
    sm_err err = {0};
    sm_embedded *e = sm_embedded_new(1, 0, &err);
    if (!e) {
        fprintf(stderr, "pipeline: embedded: %s\n", err.msg);
        return -1;
    }
    sm_client *c = sm_client_new_ctx(sm_embedded_ctx(e), sm_embedded_endpoint(e));
    double ratio[PAIRS];
    int rc = c ? 0 : -1;
    for (int k = 0; rc == 0 && k < PAIRS; k++) {
        char out[1200];
        double d = 0, p = 1;
        snprintf(out, sizeof out, "%s/pair-direct-%d", tmp, k);
        rc = direct("lime", N_PAIRED, out, &d);
        snprintf(out, sizeof out, "%s/pair-embedded-%d", tmp, k);
        if (rc == 0)
            rc = submit_wait(c, "pair", "lime", N_PAIRED, out, &p);
        ratio[k] = d / p; /* images/s of the pipeline over the direct loop's */
    }
    sm_client_destroy(&c);
    sm_embedded_destroy(&e);
    if (rc)
        return -1;
    qsort(ratio, PAIRS, sizeof ratio[0], cmp_double);
    *median = ratio[PAIRS / 2];
    *lo = ratio[0];
    *hi = ratio[PAIRS - 1];
    return 0;
}

/* ---- one image's latency ------------------------------------------------ */

typedef struct latency {
    int workers, threads;
    double runs[LAT_RUNS], median;
    char out[LAT_RUNS][1200];
    int ok;
} latency;

/* LIME on image 0 alone, embedded, each worker's model on `threads`
 * threads (0: the cores shared out): a warm-up run (workers joined, model
 * loaded), then LAT_RUNS timed runs into fresh folders. */
static int lone_image(int workers, int threads, latency *l)
{
    sm_err err = {0};
    memset(l, 0, sizeof *l);
    l->workers = workers;
    l->threads = threads;
    sm_embedded *e = sm_embedded_new(workers, threads, &err);
    if (!e) {
        fprintf(stderr, "pipeline: embedded: %s\n", err.msg);
        return -1;
    }
    sm_client *c = sm_client_new_ctx(sm_embedded_ctx(e), sm_embedded_endpoint(e));
    char what[64], out[1200];
    snprintf(what, sizeof what, "latency-%d-%d", workers, threads);
    snprintf(out, sizeof out, "%s/latency-%d-%d-warm", tmp, workers, threads);
    double s;
    int rc = c ? submit_wait(c, what, "lime", 1, out, &s) : -1;
    for (int k = 0; rc == 0 && k < LAT_RUNS; k++) {
        snprintf(l->out[k], sizeof l->out[k], "%s/latency-%d-%d-%d", tmp, workers,
                 threads, k);
        rc = submit_wait(c, what, "lime", 1, l->out[k], &l->runs[k]);
    }
    sm_client_destroy(&c);
    sm_embedded_destroy(&e);
    if (rc)
        return -1;
    double sorted[LAT_RUNS];
    memcpy(sorted, l->runs, sizeof sorted);
    qsort(sorted, LAT_RUNS, sizeof sorted[0], cmp_double);
    l->median = sorted[LAT_RUNS / 2];
    l->ok = 1;
    return 0;
}

/* ---- the maps ----------------------------------------------------------- */

/* Compares the first n maps of method in folder b with folder a's, byte
 * for byte; the number that differ or are missing. */
static size_t differing(const sm_dataset *ds, size_t n, const char *method,
                        const char *a, const char *b)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        char pa[2048], pb[2048];
        const char *id = sm_dataset_id(ds, i);
        snprintf(pa, sizeof pa, "%s/maps/%s/%s.npy", a, id, method);
        snprintf(pb, sizeof pb, "%s/maps/%s/%s.npy", b, id, method);
        size_t la = 0, lb = 0;
        sm_err err;
        unsigned char *x = sm_file_read(pa, (size_t)64 << 20, &la, &err);
        unsigned char *y = sm_file_read(pb, (size_t)64 << 20, &lb, &err);
        bad += !x || !y || la != lb || memcmp(x, y, la) != 0;
        free(x);
        free(y);
    }
    return bad;
}

/* ---- main --------------------------------------------------------------- */

static const row *direct_row(const char *method)
{
    for (int k = 0; k < n_rows; k++)
        if (rows[k].workers == 0 && !strcmp(rows[k].method, method))
            return &rows[k];
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    sm_err err = {0};
    bench_build_dir(argv[0], build, sizeof build);
    cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (access(MODEL, R_OK) || access(DATASET, R_OK)) {
        fprintf(stderr, "pipeline: needs %s and %s: run from the repository "
                "root after make data\n", MODEL, DATASET);
        return 1;
    }
    if (sm_vips_init(argv[0], &err)) {
        fprintf(stderr, "pipeline: %s\n", err.msg);
        return 1;
    }
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/salmap-bench-pipeline-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "pipeline: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    /* the broker must not die of a worker that went away */
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    printf("pipeline: %s on %s, sal x %d images (batch %d), lime (1000 samples) "
           "x %d images, seed %d, metrics off; %ld cores\n",
           MODEL, DATASET, N_SAL, BATCH, N_LIME, SEED, cores);
    fflush(stdout);

    static const char *const methods[2] = {"sal", "lime"};
    for (int m = 0; m < 2; m++) {
        row *r = &rows[n_rows++];
        *r = (row){.mode = "direct", .method = methods[m], .workers = 0,
                   .images = limit_of(methods[m])};
        snprintf(r->out, sizeof r->out, "%s/direct-%s", tmp, methods[m]);
        r->ok = direct(r->method, r->images, r->out, &r->runs[0]) == 0;
        r->seconds = r->runs[0];
        failed |= !r->ok;
    }
    for (int w = 1; w <= MAX_WORKERS; w++)
        failed |= embedded(w) != 0;
    char broker_bin[700];
    snprintf(broker_bin, sizeof broker_bin, "%s/bin/salmap-broker", build);
    int have_daemons = access(broker_bin, X_OK) == 0;
    for (int w = 1; have_daemons && w <= MAX_WORKERS; w++)
        failed |= distributed(w) != 0;
    /* the direct loop again, into fresh folders: the ratios take its
     * better time, so that the VM drifting during the run does not flatter
     * the pipeline */
    for (int m = 0; m < 2; m++) {
        row *r = &rows[m];
        char out[1200];
        snprintf(out, sizeof out, "%s/direct-again-%s", tmp, r->method);
        if (r->ok && direct(r->method, r->images, out, &r->runs[1]) == 0) {
            if (r->runs[1] < r->seconds)
                r->seconds = r->runs[1];
        } else {
            failed = 1;
        }
    }

    printf("%-12s %-6s %7s %7s %9s %10s %7s %9s\n", "mode", "method", "workers",
           "images", "seconds", "images/s", "ratio", "setup s");
    for (int k = 0; k < n_rows; k++) {
        const row *r = &rows[k], *d = direct_row(r->method);
        char w[8] = "-", ratio[16] = "-", setup[16] = "-";
        if (r->workers)
            snprintf(w, sizeof w, "%d", r->workers);
        if (!r->ok) {
            printf("%-12s %-6s %7s %7zu    failed\n", r->mode, r->method, w,
                   r->images);
            continue;
        }
        double ips = (double)r->images / r->seconds;
        if (d && d->ok)
            snprintf(ratio, sizeof ratio, "%.2f", d->seconds / r->seconds);
        if (r->workers)
            snprintf(setup, sizeof setup, "%.3f", r->setup);
        printf("%-12s %-6s %7s %7zu %9.3f %10.1f %7s %9s\n", r->mode, r->method,
               w, r->images, r->seconds, ips, ratio, setup);
    }
    if (!have_daemons)
        printf("distributed: skipped: %s is not built (make)\n", broker_bin);
    for (int m = 0; m < 2; m++)
        if (rows[m].ok)
            printf("direct %s: %.3f s first, %.3f s last; the better one above\n",
                   rows[m].method, rows[m].runs[0], rows[m].runs[1]);
    printf("ratio = pipeline images/s / direct images/s (target >= 0.90)\n");
    double pm, plo, phi;
    if (paired_lime(&pm, &plo, &phi) == 0)
        printf("lime, embedded 1 worker, %d alternating pairs of %d images: "
               "median ratio %.2f (%.2f-%.2f)\n", PAIRS, N_PAIRED, pm, plo, phi);
    else
        failed = 1;
    fflush(stdout);

    /* two setups: the cores shared out among the workers (one machine),
     * and one thread a worker (each worker brings a core, as on a cluster
     * of small machines) */
    latency lat[2][MAX_WORKERS];
    const int lat_threads[2] = {0, 1};
    for (int t = 0; t < 2; t++)
        for (int w = 1; w <= MAX_WORKERS; w++)
            failed |= lone_image(w, lat_threads[t], &lat[t][w - 1]) != 0;
    printf("lime, one image (1000 samples), embedded, %d runs after a warm-up:\n",
           LAT_RUNS);
    const row *dl = direct_row("lime");
    if (dl && dl->ok)
        printf("  direct loop, per image of its %d     %8.1f ms\n", N_LIME,
               1000 * dl->seconds / N_LIME);
    for (int t = 0; t < 2; t++) {
        printf("  %s:\n", lat_threads[t] ? "one thread a worker"
                                         : "the cores shared out among the workers");
        for (int w = 1; w <= MAX_WORKERS; w++) {
            const latency *l = &lat[t][w - 1];
            if (!l->ok) {
                printf("    %d worker%s           failed\n", w, w > 1 ? "s" : " ");
                continue;
            }
            double lo = l->runs[0], hi = l->runs[0];
            for (int k = 1; k < LAT_RUNS; k++) {
                lo = l->runs[k] < lo ? l->runs[k] : lo;
                hi = l->runs[k] > hi ? l->runs[k] : hi;
            }
            printf("    %d worker%s median    %8.1f ms  (%.1f-%.1f)\n", w,
                   w > 1 ? "s" : " ", 1000 * l->median, 1000 * lo, 1000 * hi);
        }
        if (lat[t][0].ok && lat[t][1].ok)
            printf("    ratio 2 workers / 1 worker: %.2f (target: below 1)\n",
                   lat[t][1].median / lat[t][0].median);
    }
    fflush(stdout);

    /* every pipeline map against the direct loop's */
    size_t bad = 0, compared = 0;
    sm_dataset *ds = sm_dataset_open(DATASET, &err);
    if (!ds) {
        fprintf(stderr, "pipeline: %s\n", err.msg);
        failed = 1;
    }
    for (int k = 0; ds && k < n_rows; k++) {
        const row *r = &rows[k], *d = direct_row(r->method);
        if (!r->workers || !r->ok || !d || !d->ok)
            continue;
        size_t n = differing(ds, r->images, r->method, d->out, r->out);
        if (n)
            printf("  %s-%d %s: %zu of %zu maps differ from the direct loop's\n",
                   r->mode, r->workers, r->method, n, r->images);
        bad += n;
        compared += r->images;
    }
    for (int t = 0; t < 2; t++)
        for (int w = 1; ds && dl && dl->ok && w <= MAX_WORKERS; w++)
            for (int k = 0; lat[t][w - 1].ok && k < LAT_RUNS; k++) {
                size_t n = differing(ds, 1, "lime", dl->out, lat[t][w - 1].out[k]);
                if (n)
                    printf("  latency-%d (threads %d) run %d: its lime map (in "
                           "parts) differs from the direct loop's\n", w,
                           lat_threads[t], k + 1);
                bad += n;
                compared++;
            }
    sm_dataset_destroy(&ds);
    const row *e2s = NULL, *e2l = NULL;
    for (int k = 0; k < n_rows; k++)
        if (!strcmp(rows[k].mode, "embedded") && rows[k].workers == 2 && rows[k].ok) {
            if (!strcmp(rows[k].method, "sal"))
                e2s = &rows[k];
            else
                e2l = &rows[k];
        }
    int same = !bad && e2s && e2l && compared > 0;
    printf("maps identical: %s (%zu maps of the pipeline runs compared with the "
           "direct loop's, %zu differ)\n", same ? "yes" : "no", compared, bad);
    if (failed || !same)
        printf("kept for inspection (logs, outputs): %s\n", tmp);
    else
        sm_file_remove_tree(tmp);
    return failed || !same ? 1 : 0;
}
