/* Helpers for the data, npy and config tests: a private temporary folder
 * per test, files written byte by byte, PNGs written by libvips directly
 * (not through the code under test). */
#ifndef TDATA_H
#define TDATA_H

#include <stddef.h>
#include <stdint.h>

#define TDATA_PATH 4096

/* A new empty folder under $TMPDIR (or /tmp); malloc'd path. */
char *tdata_tmpdir(void);

/* Removes a folder tree and frees the path. */
void tdata_rmtree(char *dir);

/* dir/name into buf (TDATA_PATH bytes); returns buf. */
char *tdata_path(char *buf, const char *dir, const char *name);

/* Writes bytes to dir/name, creating the parent folders; returns the
 * path in buf. */
char *tdata_write(char *buf, const char *dir, const char *name,
                  const void *data, size_t len);

/* A text file (no terminating NUL written). */
char *tdata_text(char *buf, const char *dir, const char *name,
                 const char *text);

/* An 8-bit PNG of w x h x bands interleaved pixels at dir/name. */
char *tdata_png(char *buf, const char *dir, const char *name,
                const uint8_t *px, int w, int h, int bands);

/* Starts libvips inside the test (never in a constructor). */
void tdata_vips(void);

/* 1 when haystack contains needle. */
int tdata_has(const char *haystack, const char *needle);

/* Runs `salmap args...` (args NULL-ended, at most 30) of the same build
 * as the tests, its stdout and stderr into dir/out.txt, read back into msg
 * (TDATA_PATH bytes); returns its exit code. Skips the test when salmap is
 * not built. */
int tdata_salmap(char *msg, const char *dir, const char *const *args);

/* Declares `static char *dir` and the Criterion suite `name` whose every
 * test starts libvips and gets a fresh temporary folder in dir. */
#define TDATA_SUITE(name)                                                      \
    static char *dir;                                                          \
    static void name##_setup(void)                                             \
    {                                                                          \
        tdata_vips();                                                          \
        dir = tdata_tmpdir();                                                  \
    }                                                                          \
    static void name##_teardown(void) { tdata_rmtree(dir); }                   \
    TestSuite(name, .init = name##_setup, .fini = name##_teardown)

#endif
