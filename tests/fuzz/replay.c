/* Replays a libFuzzer target's corpus without libFuzzer (and without
 * clang): main() calls LLVMFuzzerTestOneInput on every file of the folders
 * (or the files) given, in name order, so that `make test` checks every
 * committed seed and reproducer with the project's compiler and sanitizers.
 * A target that crashes or aborts on an input fails the run; the input's
 * name is printed before it runs, so the last name printed is the culprit. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/err.h"
#include "util/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Larger than any target's -max_len (Makefile). */
#define REPLAY_MAX_BYTES ((size_t)16 << 20)

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path, int verbose)
{
    sm_err err = {0};
    size_t len;
    unsigned char *buf = sm_file_read(path, REPLAY_MAX_BYTES, &len, &err);
    if (!buf) {
        fprintf(stderr, "replay: %s\n", err.msg);
        return -1;
    }
    if (verbose)
        fprintf(stderr, "replay: %s\n", path);
    /* A copy of exactly len bytes, so that ASan sees a read past the end
     * as libFuzzer's own buffer would. */
    unsigned char *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

/* Every regular file of dir, sorted; *n inputs run. */
static int run_dir(const char *dir, int verbose, int *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        size_t l = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[count] = malloc(l))) {
            rc = -1;
            break;
        }
        snprintf(names[count++], l, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof *names, cmp_name);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            rc = run_file(names[i], verbose);
            ++*n;
        }
        free(names[i]);
    }
    free(names);
    if (rc)
        fprintf(stderr, "replay: %s: failed\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    if (argc < 2 + verbose) {
        fprintf(stderr, "usage: %s [-v] DIR|FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int n = 0;
    for (int i = 1 + verbose; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode) ? run_dir(argv[i], verbose, &n)
                                : (n++, run_file(argv[i], verbose)))
            return 1;
    }
    if (n == 0) {
        fprintf(stderr, "replay: no inputs in the folders given\n");
        return 1;
    }
    printf("%s: %d inputs replayed\n", argv[0], n);
    return 0;
}
