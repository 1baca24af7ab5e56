/* The salmap command line: one file a subcommand (client/cmd_*.c), each an
 * `int sm_cli_<name>(int argc, char **argv)` returning the process exit
 * code (0 success, 1 error, 2 usage), dispatched by main (client/salmap.c);
 * the helpers they share below are in client/cli.c. */
#ifndef SM_CLI_H
#define SM_CLI_H

#include <stddef.h>
#include <stdint.h>

int sm_cli_predict(int argc, char **argv);
int sm_cli_explain(int argc, char **argv);
int sm_cli_train(int argc, char **argv);
int sm_cli_train_aae(int argc, char **argv);
int sm_cli_submit(int argc, char **argv);
int sm_cli_status(int argc, char **argv);
int sm_cli_wait(int argc, char **argv);
int sm_cli_cancel(int argc, char **argv);
int sm_cli_delete(int argc, char **argv);
int sm_cli_fetch(int argc, char **argv);
int sm_cli_keygen(int argc, char **argv);
int sm_cli_sanity(int argc, char **argv);
int sm_cli_render(int argc, char **argv);
int sm_cli_figure(int argc, char **argv);
int sm_cli_report(int argc, char **argv);

/* Prints "salmap <cmd>: <msg>" on stderr; returns 1 (the exit code). */
int sm_cli_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a positive integer option value; -1 when it is not one. */
long sm_cli_positive(const char *s);

/* A finite number (*v); 0, or -1 when s is not one. */
int sm_cli_double(const char *s, double *v);

/* An integer in 0..2^64-1 (a seed); 0 or -1. */
int sm_cli_u64(const char *s, uint64_t *v);

/* Splits a comma list in place into out (at most cap items); the count,
 * or -1 when there are more or one is empty. */
int sm_cli_split(char *list, const char **out, int cap);

/* Prints "salmap <cmd>: <opt> must be <what>, not '<val>'"; returns 2 (the
 * usage exit code). */
int sm_cli_bad(const char *cmd, const char *opt, const char *val,
               const char *what);

/* 0 when argv[optind_..argc) is one argument (an output folder), else 2
 * (the usage exit code) after saying what is wrong. */
int sm_cli_one_folder(const char *cmd, int argc, int optind_);

/* The default thread count: the online cores, 1..SM_MODEL_MAX_THREADS. */
int sm_cli_threads(void);


/* 0 when the folder of path is writable, else 1 (the exit code) after
 * "salmap <cmd>: <opt> <path>: folder <dir> is not writable: <why>":
 * training fails before minutes of work, not after. */
int sm_cli_check_out_dir(const char *cmd, const char *opt, const char *path);

/* A job (job file and options) as libsalmap-client takes it; target
 * (cap bytes) holds the target's text. Pointers borrow from j. */
struct sm_explain_job;
struct sm_client_job;
int sm_cli_client_job(const struct sm_explain_job *j, struct sm_client_job *cj,
                      char *target, size_t cap);

/* A progress bar on a terminal, else a log line every 5 s and the last,
 * for a job's status; u is an sm_cli_progress_state ({-1e9} at first). */
typedef struct sm_cli_progress_state {
    double last; /* the job's seconds at the last log line */
} sm_cli_progress_state;
struct sm_client_status;
void sm_cli_progress(const struct sm_client_status *st, void *u);

#endif
