/* salmap-mkdata end to end on small made-up inputs: the layout, the split,
 * the pixels, and that failures leave nothing behind. Runs the binary of
 * the same build (BUILD/bin next to BUILD/tests); skips when it is not
 * built. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "tdata.h"
#include "util/file.h"

extern char **environ;

TDATA_SUITE(mkdata);

static void find_tool(char *out)
{
    char exe[TDATA_PATH];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt(n, 0);
    exe[n] = '\0';
    /* BUILD/tests/unit -> BUILD/bin/salmap-mkdata */
    char *build = dirname(dirname(exe));
    snprintf(out, TDATA_PATH, "%s/bin/salmap-mkdata", build);
    if (access(out, X_OK) != 0)
        cr_skip_test("%s is not built", out);
}

/* Runs the tool with args; returns its exit status and its stderr in
 * msg (TDATA_PATH bytes). */
static int run(char *msg, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5)
{
    char tool[TDATA_PATH], log[TDATA_PATH];
    find_tool(tool);
    tdata_path(log, dir, "stderr.txt");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {tool, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                    (char *)a5, NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, tool, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "the tool crashed");
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(msg, 1, TDATA_PATH - 1, f) : 0;
    msg[n] = '\0';
    if (f)
        fclose(f);
    return WEXITSTATUS(st);
}

static size_t count_files(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* digits/<d>.json with n[d] digits; pixel j of digit k = ((d*7 + k + j) %
 * 256) / 255 written with 6 decimals. */
static void make_digits(const size_t *n)
{
    for (int d = 0; d < 10; d++) {
        size_t cap = n[d] * 784 * 10 + 32, off = 0;
        char *s = malloc(cap);
        off += (size_t)snprintf(s, cap, "{\"data\":[");
        for (size_t k = 0; k < n[d]; k++)
            for (int j = 0; j < 784; j++)
                off += (size_t)snprintf(s + off, cap - off, "%s%.6f",
                                        k || j ? "," : "",
                                        ((d * 7 + k + (size_t)j) % 256) /
                                            255.0);
        snprintf(s + off, cap - off, "]}");
        char name[32], p[TDATA_PATH];
        snprintf(name, sizeof name, "digits/%d.json", d);
        tdata_text(p, dir, name, s);
        free(s);
    }
}

Test(mkdata, mnist_layout_split_and_pixels)
{
    const size_t n[10] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 6}; /* 51 digits */
    make_digits(n);
    char in[TDATA_PATH], out[TDATA_PATH], msg[TDATA_PATH], p[TDATA_PATH];
    tdata_path(in, dir, "digits");
    tdata_path(out, dir, "deep/er/mnist");
    cr_assert_eq(run(msg, "mnist", in, out, NULL, NULL), 0, "%s", msg);

    size_t len;
    sm_err err = {0};
    char *classes = (char *)sm_file_read(tdata_path(p, out, "classes.txt"),
                                         1024, &len, &err);
    cr_assert_not_null(classes, "%s", err.msg);
    cr_assert_eq(len, 20);
    cr_assert_eq(memcmp(classes, "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n", 20), 0);
    free(classes);
    /* round(0.2 * 51) = 10: one per class (floors), none left over */
    size_t test = 0, train = 0;
    for (int d = 0; d < 10; d++) {
        char sub[64];
        snprintf(sub, sizeof sub, "test/%d", d);
        size_t t = count_files(tdata_path(p, out, sub));
        cr_assert_eq(t, 1, "class %d has %zu test images", d, t);
        test += t;
        snprintf(sub, sizeof sub, "train/%d", d);
        train += count_files(tdata_path(p, out, sub));
    }
    cr_assert_eq(test, 10);
    cr_assert_eq(train, 41);

    /* every file of class 9 is 9_000k.png with the digit's pixels */
    sm_dataset *ds = sm_dataset_open(tdata_path(p, out, "train"), &err);
    cr_assert_not_null(ds, "%s", err.msg);
    cr_assert_eq(sm_dataset_count(ds), 41);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28);
    pp.scale = 1.0f;
    float v[784];
    for (size_t i = 0; i < sm_dataset_count(ds); i++) {
        const char *id = sm_dataset_id(ds, i);
        int d = sm_dataset_label(ds, i);
        unsigned k;
        char want_prefix[8];
        snprintf(want_prefix, sizeof want_prefix, "%d/%d_", d, d);
        cr_assert_eq(strncmp(id, want_prefix, 4), 0, "%s", id);
        cr_assert_eq(sscanf(id + 4, "%4u", &k), 1, "%s", id);
        cr_assert_eq(strlen(id), 8, "4-digit index: %s", id);
        cr_assert_eq(sm_dataset_load(ds, i, &pp, v, &err), 0, "%s", err.msg);
        for (int j = 0; j < 784; j += 97)
            cr_assert_eq(v[j], (float)((d * 7 + k + (unsigned)j) % 256), "%s",
                         id);
    }
    sm_dataset_destroy(&ds);

    /* the same input gives the same split */
    char again[TDATA_PATH];
    tdata_path(again, dir, "again");
    cr_assert_eq(run(msg, "mnist", in, again, NULL, NULL), 0, "%s", msg);
    for (int d = 0; d < 10; d++) {
        char sub[64], a[TDATA_PATH], b[TDATA_PATH];
        snprintf(sub, sizeof sub, "test/%d", d);
        DIR *x = opendir(tdata_path(a, out, sub));
        DIR *y = opendir(tdata_path(b, again, sub));
        struct dirent *e;
        while ((e = readdir(x))) {
            if (e->d_name[0] == '.')
                continue;
            char f[TDATA_PATH];
            tdata_path(f, b, e->d_name);
            cr_assert_eq(access(f, F_OK), 0, "%s missing in the rerun", f);
        }
        closedir(x);
        closedir(y);
    }

    /* out exists: refused, left alone */
    cr_assert_eq(run(msg, "mnist", in, out, NULL, NULL), 1);
    cr_assert(tdata_has(msg, "already exists"), "%s", msg);
    cr_assert_eq(count_files(tdata_path(p, out, "train/0")), 4);
}

Test(mkdata, mnist_bad_input_leaves_nothing)
{
    const size_t n[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    make_digits(n);
    char in[TDATA_PATH], out[TDATA_PATH], msg[TDATA_PATH], p[TDATA_PATH];
    tdata_path(in, dir, "digits");
    tdata_path(out, dir, "o");
    tdata_text(p, dir, "digits/4.json", "{\"data\": [0.1, 0.2,");
    cr_assert_eq(run(msg, "mnist", in, out, NULL, NULL), 1);
    cr_assert(tdata_has(msg, "4.json:1:"), "%s", msg);
    unlink(p);
    cr_assert_eq(run(msg, "mnist", in, out, NULL, NULL), 1);
    cr_assert(tdata_has(msg, "4.json: No such file"), "%s", msg);
    cr_assert_eq(access(out, F_OK), -1, "no output after a failure");
    /* nothing but digits/ and stderr.txt: no temporary folder left */
    cr_assert_eq(count_files(dir), 2);
    cr_assert_eq(run(msg, "bogus", in, out, NULL, NULL), 2);
    cr_assert(tdata_has(msg, "usage"), "%s", msg);
}

/* dir/<name> gzip-compressed IDX of unsigned bytes. */
static void write_idx(const char *name, int ndim, const uint32_t *dims,
                      const uint8_t *data, size_t n)
{
    uint8_t head[4 + 12] = {0, 0, 8, (uint8_t)ndim};
    for (int d = 0; d < ndim; d++)
        for (int b = 0; b < 4; b++)
            head[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
    char p[TDATA_PATH];
    tdata_text(p, dir, name, ""); /* makes the folders */
    gzFile g = gzopen(p, "wb");
    cr_assert_not_null(g);
    gzwrite(g, head, (unsigned)(4 + 4 * ndim));
    if (n)
        gzwrite(g, data, (unsigned)n);
    gzclose(g);
}

Test(mkdata, idx_with_class_file)
{
    /* train: 6 images 2x3, test: 3; labels 0..2 */
    uint8_t img[9 * 6];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 5);
    const uint8_t ltrain[6] = {2, 0, 2, 1, 2, 0}, ltest[3] = {1, 1, 0};
    const uint32_t dtrain[3] = {6, 2, 3}, dtest[3] = {3, 2, 3};
    write_idx("in/train-images-idx3-ubyte.gz", 3, dtrain, img, 36);
    write_idx("in/train-labels-idx1-ubyte.gz", 1, dtrain, ltrain, 6);
    write_idx("in/t10k-images-idx3-ubyte.gz", 3, dtest, img + 36, 18);
    write_idx("in/t10k-labels-idx1-ubyte.gz", 1, dtest, ltest, 3);
    char in[TDATA_PATH], out[TDATA_PATH], msg[TDATA_PATH], p[TDATA_PATH],
        cls[TDATA_PATH];
    tdata_path(in, dir, "in");
    tdata_path(out, dir, "out");
    tdata_text(cls, dir, "names.txt", "ant\r\nbee\n\ncat\n");
    cr_assert_eq(run(msg, "idx", "--classes", cls, in, out), 0, "%s", msg);
    /* third train image with label 2 is cat_0002: image index 4 */
    tdata_path(p, out, "train/cat/cat_0002.png");
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 2, 3);
    pp.scale = 1.0f;
    float v[6];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, v, &err), 0, "%s", err.msg);
    for (int j = 0; j < 6; j++)
        cr_assert_eq(v[j], (float)img[4 * 6 + j]);
    cr_assert_eq(count_files(tdata_path(p, out, "test/bee")), 2);
    cr_assert_eq(count_files(tdata_path(p, out, "test/cat")), 0);
    cr_assert_eq(count_files(tdata_path(p, out, "train/ant")), 2);

    /* the default (Fashion-MNIST) names take labels 0..9 */
    char out2[TDATA_PATH];
    tdata_path(out2, dir, "out2");
    cr_assert_eq(run(msg, "idx", in, out2, NULL, NULL), 0, "%s", msg);
    cr_assert_eq(count_files(tdata_path(p, out2, "train/Pullover")), 3);
    cr_assert_eq(count_files(tdata_path(p, out2, "test/T-shirt_top")), 1);

    /* a label past the named classes */
    tdata_text(cls, dir, "names.txt", "ant\nbee\n");
    char out3[TDATA_PATH];
    tdata_path(out3, dir, "out3");
    cr_assert_eq(run(msg, "idx", "--classes", cls, in, out3), 1);
    cr_assert(tdata_has(msg, "has label 2, but there are 2 classes"), "%s",
              msg);
    tdata_text(cls, dir, "names.txt", "a/b\n");
    cr_assert_eq(run(msg, "idx", "--classes", cls, in, out3), 1);
    cr_assert(tdata_has(msg, "names.txt:1: 'a/b'"), "%s", msg);
}

Test(mkdata, idx_bad_files)
{
    const uint8_t l[3] = {0, 1, 2};
    const uint32_t d3[3] = {3, 1, 1}, d1[1] = {3};
    write_idx("in/train-images-idx3-ubyte.gz", 3, d3, l, 3);
    write_idx("in/train-labels-idx1-ubyte.gz", 1, d1, l, 3);
    write_idx("in/t10k-images-idx3-ubyte.gz", 3, d3, l, 2); /* truncated */
    write_idx("in/t10k-labels-idx1-ubyte.gz", 1, d1, l, 3);
    char in[TDATA_PATH], out[TDATA_PATH], msg[TDATA_PATH], p[TDATA_PATH];
    tdata_path(in, dir, "in");
    tdata_path(out, dir, "out");
    cr_assert_eq(run(msg, "idx", in, out, NULL, NULL), 1);
    cr_assert(tdata_has(msg, "t10k-images-idx3-ubyte.gz: truncated"), "%s",
              msg);
    tdata_text(p, dir, "in/t10k-images-idx3-ubyte.gz", "PK not idx");
    cr_assert_eq(run(msg, "idx", in, out, NULL, NULL), 1);
    cr_assert(tdata_has(msg, "bad magic"), "%s", msg);
    unlink(p);
    cr_assert_eq(run(msg, "idx", in, out, NULL, NULL), 1);
    cr_assert(tdata_has(msg, "t10k-images-idx3-ubyte.gz: No such file"),
              "%s", msg);
    cr_assert_eq(access(out, F_OK), -1);
}
