/* The dataset reader over its three kinds of input, built in a private
 * folder per test: ImageFolder trees of PNGs written by libvips, IDX files
 * written byte by byte, CSV manifests. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "tdata.h"

TDATA_SUITE(dataset);

/* A 2x2 grey PNG whose pixels are all v. */
static void png(const char *name, uint8_t v)
{
    uint8_t px[4] = {v, v, v, v};
    char p[TDATA_PATH];
    tdata_png(p, dir, name, px, 2, 2, 1);
}

static sm_dataset *open_ok(const char *path)
{
    sm_err err = {0};
    sm_dataset *ds = sm_dataset_open(path, &err);
    cr_assert_not_null(ds, "%s", err.msg);
    return ds;
}

static void open_fails(const char *path, const char *want)
{
    sm_err err = {0};
    sm_dataset *ds = sm_dataset_open(path, &err);
    cr_assert_null(ds, "%s should not open", path);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

/* Loads image i as 1 x 2 x 2 with scale 1 and returns pixel 0. */
static float pixel0(const sm_dataset *ds, size_t i)
{
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 2, 2);
    pp.scale = 1.0f;
    float v[4];
    sm_err err = {0};
    cr_assert_eq(sm_dataset_load(ds, i, &pp, v, &err), 0, "%s", err.msg);
    return v[0];
}

Test(dataset, image_folder)
{
    png("root/dog/b.png", 30);
    png("root/cat/z.png", 10);
    png("root/cat/sub/a.PNG", 20);
    png("root/.hidden/h.png", 99);
    png("root/cat/.h.png", 99);
    char p[TDATA_PATH];
    tdata_text(p, dir, "root/cat/notes.txt", "not an image");
    tdata_text(p, dir, "root/classes.txt", "cat\ndog\n");
    sm_dataset *ds = open_ok(tdata_path(p, dir, "root"));
    cr_assert_eq(sm_dataset_n_classes(ds), 2);
    cr_assert_str_eq(sm_dataset_class_name(ds, 0), "cat");
    cr_assert_str_eq(sm_dataset_class_name(ds, 1), "dog");
    cr_assert_null(sm_dataset_class_name(ds, 2));
    cr_assert_eq(sm_dataset_class_index(ds, "dog"), 1);
    cr_assert_eq(sm_dataset_class_index(ds, "cow"), -1);
    cr_assert_eq(sm_dataset_count(ds), 3);
    /* sorted: cat/sub < cat/z.png < dog */
    const char *ids[3] = {"cat/sub/a", "cat/z", "dog/b"};
    const int labels[3] = {0, 0, 1};
    const float values[3] = {20, 10, 30};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(sm_dataset_id(ds, i), ids[i]);
        cr_assert_eq(sm_dataset_label(ds, i), labels[i]);
        cr_assert_str_eq(sm_dataset_label_name(ds, i),
                         labels[i] ? "dog" : "cat");
        cr_assert_float_eq(pixel0(ds, i), values[i], 1e-4);
    }
    cr_assert(tdata_has(sm_dataset_path(ds, 0), "root/cat/sub/a.PNG"));
    cr_assert_null(sm_dataset_id(ds, 3));
    cr_assert_eq(sm_dataset_label(ds, 3), -1);
    sm_dataset_destroy(&ds);
    cr_assert_null(ds);
}

Test(dataset, unlabelled_folder)
{
    png("flat/2.png", 2);
    png("flat/10.png", 10);
    char p[TDATA_PATH];
    sm_dataset *ds = open_ok(tdata_path(p, dir, "flat"));
    cr_assert_eq(sm_dataset_n_classes(ds), 0);
    cr_assert_eq(sm_dataset_count(ds), 2);
    cr_assert_str_eq(sm_dataset_id(ds, 0), "10"); /* byte order */
    cr_assert_str_eq(sm_dataset_id(ds, 1), "2");
    cr_assert_eq(sm_dataset_label(ds, 0), -1);
    cr_assert_null(sm_dataset_label_name(ds, 0));
    cr_assert_float_eq(pixel0(ds, 1), 2.0f, 1e-4);
    sm_dataset_destroy(&ds);
}

Test(dataset, corrupt_image_is_an_error_naming_it)
{
    png("c/a/good.png", 1);
    char p[TDATA_PATH];
    tdata_text(p, dir, "c/a/bad.png", "\x89PNG broken");
    sm_dataset *ds = open_ok(tdata_path(p, dir, "c"));
    cr_assert_eq(sm_dataset_count(ds), 2);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 2, 2);
    float v[4];
    sm_err err = {0};
    cr_assert_eq(sm_dataset_load(ds, 0, &pp, v, &err), -1);
    cr_assert(tdata_has(err.msg, "c/a/bad.png"), "%s", err.msg);
    cr_assert_eq(sm_dataset_load(ds, 1, &pp, v, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_dataset_load(ds, 2, &pp, v, &err), -1);
    cr_assert(tdata_has(err.msg, "does not exist"), "%s", err.msg);
    sm_dataset_destroy(&ds);
}

Test(dataset, duplicate_ids_refused)
{
    png("d/a/x.png", 1);
    uint8_t px[4] = {0};
    char p[TDATA_PATH];
    tdata_png(p, dir, "d/a/x.tif", px, 2, 2, 1);
    open_fails(tdata_path(p, dir, "d"), "'a/x'");
}

Test(dataset, empty_and_missing)
{
    char p[TDATA_PATH];
    mkdir(tdata_path(p, dir, "empty"), 0755);
    open_fails(p, "no images found");
    open_fails(tdata_path(p, dir, "nope"), "No such file");
}

/* images: n x h x w bytes, pixel j of image i = i * 10 + j. */
static size_t idx_images(uint8_t *f, uint32_t n, uint32_t h, uint32_t w)
{
    const uint8_t head[16] = {0,      0,      8,     3,     0, 0, 0,
                              (uint8_t)n, 0, 0, 0, (uint8_t)h, 0,
                              0,      0,      (uint8_t)w};
    memcpy(f, head, 16);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < h * w; j++)
            f[16 + i * h * w + j] = (uint8_t)(i * 10 + j);
    return 16 + (size_t)n * h * w;
}

static size_t idx_labels(uint8_t *f, uint32_t n, const uint8_t *labels)
{
    const uint8_t head[8] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
    memcpy(f, head, 8);
    memcpy(f + 8, labels, n);
    return 8 + n;
}

Test(dataset, idx_with_labels)
{
    uint8_t f[16 + 12 * 4];
    size_t n = idx_images(f, 12, 2, 2);
    char p[TDATA_PATH], img[TDATA_PATH];
    tdata_path(img, dir, "t10k-images-idx3-ubyte.gz");
    gzFile g = gzopen(img, "wb");
    cr_assert_not_null(g);
    gzwrite(g, f, (unsigned)n);
    gzclose(g);
    /* labels uncompressed: the sibling is found either way */
    const uint8_t labels[12] = {3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2};
    uint8_t l[8 + 12];
    tdata_write(p, dir, "t10k-labels-idx1-ubyte", l, idx_labels(l, 12, labels));
    sm_dataset *ds = open_ok(img);
    cr_assert_eq(sm_dataset_count(ds), 12);
    cr_assert_eq(sm_dataset_n_classes(ds), 4);
    cr_assert_str_eq(sm_dataset_class_name(ds, 3), "3");
    cr_assert_str_eq(sm_dataset_id(ds, 0), "00");
    cr_assert_str_eq(sm_dataset_id(ds, 11), "11");
    cr_assert_eq(sm_dataset_label(ds, 4), 3);
    cr_assert_str_eq(sm_dataset_label_name(ds, 5), "0");
    cr_assert_null(sm_dataset_path(ds, 0));
    sm_preproc pp;
    sm_preproc_init(&pp, 3, 2, 2);
    pp.scale = 1.0f;
    float v[12];
    sm_err err = {0};
    cr_assert_eq(sm_dataset_load(ds, 7, &pp, v, &err), 0, "%s", err.msg);
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < 4; j++)
            cr_assert_float_eq(v[c * 4 + j], 70.0f + j, 1e-4);
    sm_dataset_destroy(&ds);
}

Test(dataset, idx_without_labels_and_bad_labels)
{
    uint8_t f[16 + 3 * 4];
    char p[TDATA_PATH];
    tdata_write(p, dir, "a/x-images-idx3-ubyte", f, idx_images(f, 3, 2, 2));
    sm_dataset *ds = open_ok(p);
    cr_assert_eq(sm_dataset_n_classes(ds), 0);
    cr_assert_str_eq(sm_dataset_id(ds, 2), "2");
    cr_assert_eq(sm_dataset_label(ds, 2), -1);
    sm_dataset_destroy(&ds);

    const uint8_t labels[2] = {0, 1};
    uint8_t l[8 + 2];
    tdata_write(p, dir, "a/x-labels-idx1-ubyte", l, idx_labels(l, 2, labels));
    tdata_path(p, dir, "a/x-images-idx3-ubyte");
    open_fails(p, "expected 3 labels");

    tdata_text(p, dir, "a/x-labels-idx1-ubyte", "junk");
    tdata_path(p, dir, "a/x-images-idx3-ubyte");
    open_fails(p, "x-labels-idx1-ubyte: not an IDX file");
}

Test(dataset, not_a_dataset_file)
{
    char p[TDATA_PATH];
    tdata_png(p, dir, "one.png", (const uint8_t[]){1}, 1, 1, 1);
    open_fails(p, "a dataset is a folder, a .csv manifest or an IDX file");
}

Test(dataset, csv_manifest)
{
    png("m/img/a.png", 1);
    png("m/img/b,c.png", 2);
    png("m/d.png", 3);
    png("abs/e.png", 4);
    char p[TDATA_PATH], csv[4 * TDATA_PATH];
    snprintf(csv, sizeof csv,
             "Path,label\n"
             "img/a.png,dog\n"
             "\"img/b,c.png\",cat\r\n"
             "\n"
             "./d.png,\n"
             "%s/abs/e.png , dog\n",
             dir);
    tdata_text(p, dir, "m/list.csv", csv);
    sm_dataset *ds = open_ok(p);
    cr_assert_eq(sm_dataset_count(ds), 4);
    cr_assert_eq(sm_dataset_n_classes(ds), 2);
    cr_assert_str_eq(sm_dataset_class_name(ds, 0), "cat");
    cr_assert_str_eq(sm_dataset_class_name(ds, 1), "dog");
    /* the manifest's order */
    cr_assert_str_eq(sm_dataset_id(ds, 0), "img/a");
    cr_assert_str_eq(sm_dataset_id(ds, 1), "img/b,c");
    cr_assert_str_eq(sm_dataset_id(ds, 2), "d");
    cr_assert(tdata_has(sm_dataset_id(ds, 3), "/abs/e"));
    const int labels[4] = {1, 0, -1, 1};
    const float values[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(sm_dataset_label(ds, i), labels[i], "row %zu", i);
        cr_assert_float_eq(pixel0(ds, i), values[i], 1e-4);
    }
    cr_assert_null(sm_dataset_label_name(ds, 2));
    sm_dataset_destroy(&ds);
}

Test(dataset, csv_without_header_or_labels)
{
    png("n/x.png", 5);
    char p[TDATA_PATH];
    tdata_text(p, dir, "n/l.CSV", "x.png");
    sm_dataset *ds = open_ok(p);
    cr_assert_eq(sm_dataset_count(ds), 1);
    cr_assert_eq(sm_dataset_n_classes(ds), 0);
    cr_assert_str_eq(sm_dataset_id(ds, 0), "x");
    sm_dataset_destroy(&ds);
}

Test(dataset, csv_errors_name_the_line)
{
    png("e/x.png", 5);
    char p[TDATA_PATH];
    tdata_text(p, dir, "e/missing.csv", "path,label\nx.png,a\ny.png,b\n");
    open_fails(p, "missing.csv:3:");
    open_fails(p, "y.png: No such file");
    tdata_text(p, dir, "e/fields.csv", "x.png,a,extra\n");
    open_fails(p, "fields.csv:1: 3 fields");
    tdata_text(p, dir, "e/quote.csv", "x.png,a\n\"x.png,b\n");
    open_fails(p, "quote.csv:2: unterminated quoted field");
    tdata_text(p, dir, "e/empty.csv", "path,label\n");
    open_fails(p, "no images found");
    tdata_text(p, dir, "e/dup.csv", "x.png,a\n./x.png,b\n");
    open_fails(p, "'x'");
}

Test(dataset, real_mnist_test_split_when_present)
{
    struct stat st;
    if (stat("data/mnist/test", &st) != 0)
        cr_skip_test("data/mnist absent (make data builds it)");
    sm_dataset *ds = open_ok("data/mnist/test");
    cr_assert_eq(sm_dataset_count(ds), 2000);
    cr_assert_eq(sm_dataset_n_classes(ds), 10);
    cr_assert_str_eq(sm_dataset_class_name(ds, 7), "7");
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28);
    float v[784];
    sm_err err = {0};
    cr_assert_eq(sm_dataset_load(ds, 1999, &pp, v, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_dataset_label(ds, 1999), 9);
    float sum = 0;
    for (int i = 0; i < 784; i++) {
        cr_assert(v[i] >= 0.0f && v[i] <= 1.0f);
        sum += v[i];
    }
    cr_assert(sum > 10.0f, "a digit has ink");
    sm_dataset_destroy(&ds);
}
