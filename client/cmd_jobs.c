/* salmap submit / status / wait / cancel / fetch: a broker's jobs, through
 * libsalmap-client (schemas/PROTOCOL.md); salmap keygen: a CURVE key pair
 * for talking to one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "explain/abele_aae.h"
#include "client/lib/salmap_client.h"
#include "explain/jobfile.h"
#include "util/file.h"

#include <zmq.h>

#define DEFAULT_BROKER "tcp://localhost:5555"

static const char common_usage[] =
    "  --broker ENDPOINT    the broker's client endpoint (default\n"
    "                       " DEFAULT_BROKER ")\n"
    "  --server-key FILE    CURVE: the broker's public key, and\n"
    "  --secret-key FILE    this client's secret key (salmap keygen)\n";

/* The options every job command takes. */
typedef struct opts {
    const char *broker;
    const char *server_key, *secret_key; /* CURVE key files, or NULL */
    const char *out;                     /* fetch */
    const char *pos[1];                  /* the positional argument */
} opts;

/* Parses argv into o; returns -1 to go on, else the exit code (--help,
 * usage errors). */
static int parse(int argc, char **argv, const char *cmd, const char *usage,
                 opts *o)
{
    static const struct option longs[] = {{"broker", required_argument, 0, 'b'},
                                          {"out", required_argument, 0, 'o'},
                                          {"server-key", required_argument, 0, 'k'},
                                          {"secret-key", required_argument, 0, 's'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int c, k = 0;
    memset(o, 0, sizeof *o);
    o->broker = DEFAULT_BROKER;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'b')
            o->broker = optarg;
        else if (c == 'k')
            o->server_key = optarg;
        else if (c == 's')
            o->secret_key = optarg;
        else if (c == 'o' && !strcmp(cmd, "fetch"))
            o->out = optarg;
        else if (c == 'h') {
            fputs(usage, stdout);
            fputs(common_usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            fputs(common_usage, stderr);
            return 2;
        }
    }
    if (!o->server_key != !o->secret_key) {
        sm_cli_fail(cmd, "--server-key and --secret-key go together");
        return 2;
    }
    for (; optind < argc; optind++) {
        if (k == 1) {
            sm_cli_fail(cmd, "unexpected argument '%s'", argv[optind]);
            return 2;
        }
        o->pos[k++] = argv[optind];
    }
    return -1; /* go on */
}

static sm_client *connect_to(const char *cmd, const opts *o)
{
    sm_client *c = sm_client_new(o->broker);
    if (!c)
        sm_cli_fail(cmd, "cannot connect to %s", o->broker);
    else if (o->server_key && sm_client_set_curve(c, o->server_key, o->secret_key)) {
        sm_cli_fail(cmd, "%s", sm_client_error(c));
        sm_client_destroy(&c);
    }
    return c;
}

/* Parses argv, checks the positional argument (`need` names it; NULL: it
 * is optional) and connects: -1 with *c set to go on, else the exit code. */
static int begin(int argc, char **argv, const char *cmd, const char *usage,
                 const char *need, opts *o, sm_client **c)
{
    int rc = parse(argc, argv, cmd, usage, o);
    if (rc >= 0)
        return rc;
    if (need && !o->pos[0])
        return sm_cli_fail(cmd, "needs %s (see --help)", need) + 1;
    if (!strcmp(cmd, "fetch") && !o->out)
        return sm_cli_fail(cmd, "needs --out DIR (see --help)") + 1;
    return (*c = connect_to(cmd, o)) ? -1 : 1;
}

int sm_cli_submit(int argc, char **argv)
{
    static const char usage[] =
        "usage: salmap submit JOB.yaml [--broker tcp://host:5555]\n"
        "Sends the job file's job (docs/EXPLAIN.md, Job files) to a broker,\n"
        "uploading the model if the broker lacks it, and prints the job id\n"
        "as the last line. Paths in the job (dataset, out) are the broker's.\n";
    opts o;
    sm_client *c = NULL;
    int rc = begin(argc, argv, "submit", usage, "a job file", &o, &c);
    if (rc >= 0)
        return rc;
    sm_jobfile *jf = NULL;
    sm_err err;
    if (sm_jobfile_load(o.pos[0], &jf, &err)) {
        sm_client_destroy(&c);
        return sm_cli_fail("submit", "%s", err.msg);
    }
    sm_client_job cj;
    char target[32], id[SM_CLIENT_ID_MAX];
    sm_explain_job job = *sm_jobfile_job(jf);
    static sm_abele_aux abele; /* large; the command runs once */
    if (sm_abele_job_aux(&job, &abele, &err)) {
        sm_client_destroy(&c);
        sm_jobfile_destroy(&jf);
        return sm_cli_fail("submit", "%s", err.msg);
    }
    sm_cli_client_job(&job, &cj, target, sizeof target);
    cj.name = o.pos[0];
    rc = 1;
    if (sm_client_submit(c, &cj, id) == 0) {
        printf("%s\n", id);
        rc = 0;
    } else {
        sm_cli_fail("submit", "%s", sm_client_error(c));
    }
    sm_client_destroy(&c);
    sm_jobfile_destroy(&jf);
    return rc;
}

int sm_cli_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fputs("usage: salmap keygen NAME\n"
              "Writes a CURVE key pair: NAME.key (secret, mode 600) and\n"
              "NAME.pub (public: give it to the broker's curve_allow_dir, or\n"
              "for the broker's own pair, to its clients and workers).\n",
              argc == 2 ? stdout : stderr);
        return argc == 2 ? 0 : 2;
    }
    char pub[41], sec[41];
    sm_err err;
    if (zmq_curve_keypair(pub, sec))
        return sm_cli_fail("keygen", "CURVE is not available in this libzmq");
    /* NAME + ".key" or ".pub": as long as NAME is */
    size_t cap = strlen(argv[1]) + sizeof ".key";
    char *path = malloc(cap);
    if (!path)
        return sm_cli_fail("keygen", "out of memory");
    snprintf(path, cap, "%s.key", argv[1]);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600), rc = 0;
    if (fd < 0) {
        rc = sm_cli_fail("keygen", "%s: %s", path, strerror(errno));
    } else {
        int ok = write(fd, sec, 40) == 40 && write(fd, "\n", 1) == 1;
        close(fd);
        if (!ok)
            rc = sm_cli_fail("keygen", "%s: cannot write", path);
    }
    if (rc == 0) {
        snprintf(path, cap, "%s.pub", argv[1]);
        char text[42];
        snprintf(text, sizeof text, "%s\n", pub);
        if (sm_file_write_atomic(path, text, 41, &err))
            rc = sm_cli_fail("keygen", "%s", err.msg);
    }
    free(path);
    if (rc == 0)
        printf("%s.key (secret), %s.pub (public: %s)\n", argv[1], argv[1], pub);
    return rc;
}

static void print_status(const sm_client_status *s)
{
    printf("%s  %-9s %llu/%llu maps, %llu failed, %.0f s  %s%s%s\n", s->job,
           s->state, (unsigned long long)s->maps_done,
           (unsigned long long)s->maps_total, (unsigned long long)s->maps_failed,
           s->seconds, s->out, s->error[0] ? "  error: " : "", s->error);
}

int sm_cli_status(int argc, char **argv)
{
    static const char usage[] =
        "usage: salmap status [JOB] [--broker tcp://host:5555]\n"
        "One job's state and the faults the broker remembers of it (failed\n"
        "maps, quarantined tasks), or every job the broker knows.\n";
    opts o;
    sm_client *c = NULL;
    int rc = begin(argc, argv, "status", usage, NULL, &o, &c);
    if (rc >= 0)
        return rc;
    rc = 0;
    if (o.pos[0]) {
        sm_client_status st;
        if (sm_client_status_of(c, o.pos[0], &st))
            rc = sm_cli_fail("status", "%s", sm_client_error(c));
        else
            print_status(&st);
        /* the job's faults the broker still remembers (its latest 50):
         * which images failed and why, a quarantined task's among them */
        sm_client_workers *w = rc ? NULL : sm_client_workers_get(c);
        for (size_t k = 0; w && k < w->n_faults; k++)
            if (w->faults[k].job && !strcmp(w->faults[k].job, st.job))
                printf("  fault: %s\n", w->faults[k].message);
        sm_client_workers_destroy(&w);
    } else {
        sm_client_status *all;
        size_t n;
        if (sm_client_list(c, &all, &n))
            rc = sm_cli_fail("status", "%s", sm_client_error(c));
        for (size_t k = 0; rc == 0 && k < n; k++)
            print_status(&all[k]);
        if (rc == 0)
            free(all);
    }
    sm_client_destroy(&c);
    return rc;
}

int sm_cli_wait(int argc, char **argv)
{
    static const char usage[] =
        "usage: salmap wait JOB [--broker tcp://host:5555]\n"
        "Shows the job's progress until it ends; exits 0 when it is done,\n"
        "1 when it failed or was cancelled (or the broker cannot be asked).\n";
    opts o;
    sm_client *c = NULL;
    int rc = begin(argc, argv, "wait", usage, "a job id", &o, &c);
    if (rc >= 0)
        return rc;
    sm_client_status st;
    sm_cli_progress_state ps = {-1e9};
    if (sm_client_wait(c, o.pos[0], sm_cli_progress, &ps, &st))
        rc = sm_cli_fail("wait", "%s", sm_client_error(c));
    else if (strcmp(st.state, "done"))
        rc = sm_cli_fail("wait", "job %s %s%s%s", st.job, st.state,
                         st.error[0] ? ": " : "", st.error);
    else
        rc = 0;
    sm_client_destroy(&c);
    return rc;
}

/* A command that does one request about one job (cancel, delete). */
static int one_job(int argc, char **argv, const char *name, const char *usage,
                   int (*request)(sm_client *c, const char *job))
{
    opts o;
    sm_client *c = NULL;
    int rc = begin(argc, argv, name, usage, "a job id", &o, &c);
    if (rc >= 0)
        return rc;
    rc = request(c, o.pos[0]) ? sm_cli_fail(name, "%s", sm_client_error(c)) : 0;
    sm_client_destroy(&c);
    return rc;
}

int sm_cli_cancel(int argc, char **argv)
{
    return one_job(argc, argv, "cancel",
                   "usage: salmap cancel JOB [--broker tcp://host:5555]\n"
                   "Stops the job; what it wrote stays.\n",
                   sm_client_cancel);
}

int sm_cli_delete(int argc, char **argv)
{
    return one_job(argc, argv, "delete",
                   "usage: salmap delete JOB [--broker tcp://host:5555]\n"
                   "Makes the broker forget an ended job and remove the files it\n"
                   "wrote (by name: other files in its folder stay).\n",
                   sm_client_delete);
}

int sm_cli_fetch(int argc, char **argv)
{
    static const char usage[] =
        "usage: salmap fetch JOB --out DIR [--broker tcp://host:5555]\n"
        "Copies the job's index.csv and maps from the broker into DIR.\n";
    opts o;
    sm_client *c = NULL;
    int rc = begin(argc, argv, "fetch", usage, "a job id", &o, &c);
    if (rc >= 0)
        return rc;
    rc = sm_client_fetch(c, o.pos[0], o.out) ? sm_cli_fail("fetch", "%s", sm_client_error(c)) : 0;
    sm_client_destroy(&c);
    return rc;
}
