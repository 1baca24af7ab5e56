#include "tdata.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>

#include "data/image.h"
#include "util/file.h"

char *tdata_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[TDATA_PATH];
    snprintf(tmpl, sizeof tmpl, "%s/salmap-test-XXXXXX",
             base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s failed", tmpl);
    char *dir = strdup(tmpl);
    cr_assert_not_null(dir);
    return dir;
}

void tdata_rmtree(char *dir)
{
    if (!dir)
        return;
    sm_file_remove_tree(dir);
    free(dir);
}

char *tdata_path(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, TDATA_PATH, "%s/%s", dir, name);
    cr_assert(n > 0 && n < TDATA_PATH, "path too long");
    return buf;
}

static void parent_dirs(const char *path)
{
    char d[TDATA_PATH];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (slash) {
        *slash = '\0';
        sm_err err = {0};
        cr_assert_eq(sm_file_mkdirs(d, &err), 0, "%s", err.msg);
    }
}

char *tdata_write(char *buf, const char *dir, const char *name,
                  const void *data, size_t len)
{
    tdata_path(buf, dir, name);
    parent_dirs(buf);
    FILE *f = fopen(buf, "wb");
    cr_assert_not_null(f, "cannot write %s", buf);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    return buf;
}

char *tdata_text(char *buf, const char *dir, const char *name,
                 const char *text)
{
    return tdata_write(buf, dir, name, text, strlen(text));
}

char *tdata_png(char *buf, const char *dir, const char *name,
                const uint8_t *px, int w, int h, int bands)
{
    tdata_path(buf, dir, name);
    parent_dirs(buf);
    VipsImage *im = vips_image_new_from_memory(px, (size_t)w * h * bands, w,
                                               h, bands, VIPS_FORMAT_UCHAR);
    cr_assert_not_null(im);
    cr_assert_eq(vips_pngsave(im, buf, NULL), 0, "pngsave %s: %s", buf,
                 vips_error_buffer());
    g_object_unref(im);
    return buf;
}

void tdata_vips(void)
{
    sm_err err = {0};
    cr_assert_eq(sm_vips_init("salmap-tests", &err), 0, "%s", err.msg);
}

int tdata_has(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

extern char **environ;

int tdata_salmap(char *msg, const char *dir, const char *const *args)
{
    char exe[TDATA_PATH], tool[TDATA_PATH], log[TDATA_PATH];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt(n, 0);
    exe[n] = '\0';
    snprintf(tool, sizeof tool, "%s/bin/salmap", dirname(dirname(exe)));
    if (access(tool, X_OK) != 0)
        cr_skip_test("%s is not built", tool);
    char *argv[32] = {tool};
    int argc = 1;
    for (; argc < 31 && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    tdata_path(log, dir, "out.txt");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, tool, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "salmap %s crashed", args[0] ? args[0] : "");
    FILE *f = fopen(log, "r");
    size_t got = f ? fread(msg, 1, TDATA_PATH - 1, f) : 0;
    msg[got] = '\0';
    if (f)
        fclose(f);
    return WEXITSTATUS(st);
}
