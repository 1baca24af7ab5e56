#include "tdata.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        sm_err err = {{0}};
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
    sm_err err = {{0}};
    cr_assert_eq(sm_vips_init("salmap-tests", &err), 0, "%s", err.msg);
}

int tdata_has(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}
