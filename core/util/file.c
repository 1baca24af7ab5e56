/* nftw needs the X/Open API, syncfs the GNU one (which includes it). */
#define _GNU_SOURCE

#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned char *sm_file_read(const char *path, size_t max, size_t *len,
                            sm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sm_err_set(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        sm_err_set(err, "%s: not a regular file", path);
        return NULL;
    }
    if ((size_t)st.st_size > max) {
        fclose(f);
        sm_err_set(err, "%s: %lld bytes is more than the limit of %zu",
                   path, (long long)st.st_size, max);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        sm_err_set(err, "%s: out of memory reading %zu bytes", path, n);
        return NULL;
    }
    if (fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        sm_err_set(err, "%s: read error", path);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Both atomic writes; sync: fsync before the rename. */
static int write_replace(const char *path, const void *buf, size_t len,
                         int sync, sm_err *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return sm_err_set(err, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sm_err_set_sys(err, errno, "%s: cannot create a temporary file: %s", path,
                       strerror(errno));
        free(tmp);
        return -1;
    }
    const unsigned char *p = buf;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            sm_err_set_sys(err, errno, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    /* mkstemp makes 0600; outputs are ordinary files. */
    /* every step tried in turn, the descriptor closed whatever failed */
    int rc = fchmod(fd, 0644) != 0 || (sync && fsync(fd) != 0) ? -1 : 0;
    int e = errno;
    if (close(fd) != 0 && rc == 0)
        rc = -1, e = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1, e = errno;
    if (rc) {
        sm_err_set_sys(err, e, "%s: cannot finish writing: %s", path, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int sm_file_write_atomic(const char *path, const void *buf, size_t len,
                         sm_err *err)
{
    return write_replace(path, buf, len, 1, err);
}

int sm_file_replace(const char *path, const void *buf, size_t len,
                    sm_err *err)
{
    return write_replace(path, buf, len, 0, err);
}

int sm_file_sync_fs(const char *dir, sm_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return sm_err_set_sys(err, e, "%s: cannot make the files written "
                              "durable: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

char *sm_file_sibling(const char *file, const char *rel)
{
    const char *slash = strrchr(file, '/');
    size_t dir = slash && rel[0] != '/' ? (size_t)(slash - file) + 1 : 0;
    size_t n = dir + strlen(rel) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%.*s%s", (int)dir, file, rel);
    return p;
}

int sm_file_mkdirs(const char *path, sm_err *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return sm_err_set(err, "%s: path too long", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return sm_err_set_sys(err, errno, "%s: cannot create folder: %s", buf,
                                      strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void sm_file_remove_tree(const char *path)
{
    /* FTW_PHYS: a symlink is removed, never followed. */
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
