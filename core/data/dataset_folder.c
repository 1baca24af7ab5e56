/* The ImageFolder dataset format: root/<class>/<...>/<file>, or a root
 * holding unlabelled images directly (data/dataset.h has the rules). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/dataset_format.h"

#define MAX_DEPTH 32 /* also stops symlink loops */

static int has_image_ext(const char *name)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "jpe", "jfif",
                                      "tif", "tiff", "webp", "gif", "heic",
                                      "heif", "avif"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0)
            return 1;
    return 0;
}

/* The sorted names in a folder, without those starting with '.'. */
static char **list_dir(const char *dir, size_t *n, sm_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        sm_err_set(err, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **g = realloc(v, cap * sizeof *g);
            if (!g)
                goto oom;
            v = g;
        }
        if (!(v[*n] = strdup(e->d_name)))
            goto oom;
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(v, *n, sizeof *v, sm_dataset_cmp_str);
    return v ? v : calloc(1, sizeof *v);
oom:
    closedir(d);
    sm_dataset_free_strs(v, *n);
    sm_err_set(err, "%s: out of memory", dir);
    return NULL;
}

/* Adds the image files at and below root/rel (rel may be ""). */
static int walk(sm_dataset *ds, const char *root, const char *rel, int label,
                int depth, sm_err *err)
{
    char *dir = *rel ? sm_dataset_join(root, rel) : strdup(root);
    if (!dir)
        return sm_err_set(err, "%s: out of memory", root);
    if (depth > MAX_DEPTH) {
        sm_err_set(err, "%s: folders nested more than %d deep", dir,
                   MAX_DEPTH);
        free(dir);
        return -1;
    }
    size_t n;
    char **names = list_dir(dir, &n, err);
    int rc = names ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *path = sm_dataset_join(dir, names[i]);
        char *sub = sm_dataset_join(rel, names[i]);
        struct stat st;
        if (!path || !sub)
            rc = sm_err_set(err, "%s: out of memory", dir);
        else if (stat(path, &st) != 0)
            rc = sm_err_set(err, "%s: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = walk(ds, root, sub, label, depth + 1, err);
        else if (S_ISREG(st.st_mode) && has_image_ext(names[i])) {
            rc = sm_dataset_push(ds, sm_dataset_strip_ext(sub), path, label,
                                 err);
            path = NULL;
        }
        free(path);
        free(sub);
    }
    sm_dataset_free_strs(names, n);
    free(dir);
    return rc;
}

static int open_folder(sm_dataset *ds, const char *root, sm_err *err)
{
    size_t n;
    char **names = list_dir(root, &n, err);
    if (!names)
        return -1;
    /* The subfolders are the classes; with none, root holds the images. */
    char **classes = calloc(n ? n : 1, sizeof *classes);
    int nc = 0, rc = 0;
    if (!classes)
        rc = sm_err_set(err, "%s: out of memory", root);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *path = sm_dataset_join(root, names[i]);
        struct stat st;
        if (!path)
            rc = sm_err_set(err, "%s: out of memory", root);
        else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            classes[nc++] = names[i];
            names[i] = NULL;
        }
        free(path);
    }
    sm_dataset_free_strs(names, n);
    if (rc) {
        sm_dataset_free_strs(classes, (size_t)nc);
        return -1;
    }
    ds->classes = classes;
    ds->n_classes = nc;
    if (nc == 0)
        return walk(ds, root, "", -1, 0, err);
    for (int c = 0; c < nc; c++)
        if (walk(ds, root, classes[c], c, 1, err))
            return -1;
    return 0;
}

const sm_dataset_format sm_dataset_folder = {
    .open = open_folder,
    .load = sm_dataset_file_load,
    .raw = sm_dataset_file_raw,
    .files = 1,
};
