#include "util/confine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int sm_confine_root(const char *root, const char *key, char **resolved,
                    sm_err *err)
{
    struct stat st;
    char *r = realpath(root, NULL);
    if (!r)
        return sm_err_set(err, "%s: '%.200s': %s", key, root, strerror(errno));
    if (stat(r, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(r);
        return sm_err_set(err, "%s: '%.200s': not a folder", key, root);
    }
    *resolved = r;
    return 0;
}

static int inside(const char *p, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return 1;
    return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* realpath of path, or of its nearest existing ancestor when may_be_missing
 * (the missing part checked as the header says). NULL with a message. */
static char *resolve(const char *path, int may_be_missing, const char *what,
                     sm_err *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        sm_err_set(err, "%s '%.200s': %s", what, path,
                   n ? "path too long" : "empty path");
        return NULL;
    }
    memcpy(buf, path, n + 1);
    for (;;) {
        char *r = realpath(buf, NULL);
        if (r)
            return r;
        int e = errno;
        struct stat st;
        if (!may_be_missing || e != ENOENT) {
            sm_err_set(err, "%s '%.200s': %s", what, path, strerror(e));
            return NULL;
        }
        if (lstat(buf, &st) == 0) {
            /* it exists but does not resolve: a symlink to nothing, whose
             * target mkdir would make wherever it points */
            sm_err_set(err, "%s '%.200s': '%.200s' is a symlink to nothing",
                       what, path, buf);
            return NULL;
        }
        /* drop the last component (and the slashes before it) */
        while (n > 1 && buf[n - 1] == '/')
            buf[--n] = '\0';
        char *slash = strrchr(buf, '/');
        const char *last = slash ? slash + 1 : buf;
        if (strcmp(last, "..") == 0) {
            sm_err_set(err, "%s '%.200s': '..' in a part that does not exist "
                       "yet", what, path);
            return NULL;
        }
        if (!slash)
            strcpy(buf, ".");
        else if (slash == buf)
            buf[1] = '\0'; /* "/x" -> "/" */
        else
            *slash = '\0';
        n = strlen(buf);
    }
}

int sm_confine_check(const char *path, char *const *roots, size_t n,
                     int may_be_missing, const char *what, const char *key,
                     sm_err *err)
{
    char *r = resolve(path, may_be_missing, what, err);
    if (!r)
        return -1;
    for (size_t k = 0; k < n; k++)
        if (inside(r, roots[k])) {
            free(r);
            return 0;
        }
    char list[512] = "";
    for (size_t k = 0, at = 0; k < n && at < sizeof list; k++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
                               k ? ", " : "", roots[k]);
    sm_err_set(err, "%s '%.200s' resolves to %.200s, outside %s (%s)", what,
               path, r, key, list);
    free(r);
    return -1;
}
