/* The salmap command line: one file a subcommand (client/cmd_*.c), each an
 * `int cmd_<name>(int argc, char **argv)` returning the process exit code
 * (0 success, 1 error, 2 usage). */
#ifndef SM_CLI_H
#define SM_CLI_H

int sm_cli_predict(int argc, char **argv);
int sm_cli_explain(int argc, char **argv);
int sm_cli_train(int argc, char **argv);

/* Prints "salmap <cmd>: <msg>" on stderr; returns 1 (the exit code). */
int sm_cli_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a positive integer option value; -1 when it is not one. */
long sm_cli_positive(const char *s);

#endif
