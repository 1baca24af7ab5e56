/* CSV tables by header name (csvtab.h). The file is read into one buffer
 * and unquoted in place; fields point into it. */
#include "report/csvtab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

struct sm_csvtab {
    char *buf;
    char **field; /* rows + 1 lines of cols fields, the header first */
    size_t rows;
    int cols;
};

/* One field at *p (in place: unquoted, NUL-terminated) into *f; *p moves
 * past its separator. Returns the separator: ',', '\n' or 0 (end), or -1
 * for an unterminated quote. *line counts line breaks crossed. */
static int next_field(char **p, char *end, char **f, int *line)
{
    char *s = *p, *w = s;
    *f = s;
    if (s < end && *s == '"') {
        char *r = s + 1;
        for (;;) {
            if (r >= end)
                return -1;
            if (*r == '"') {
                if (r + 1 < end && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                    continue;
                }
                r++;
                break;
            }
            if (*r == '\n')
                (*line)++;
            *w++ = *r++;
        }
        s = r;
        /* anything after the closing quote up to the separator is kept */
        while (s < end && *s != ',' && *s != '\n')
            *w++ = *s++;
    } else {
        while (s < end && *s != ',' && *s != '\n')
            s++;
        w = s;
    }
    if (w > *f && w[-1] == '\r' && (s >= end || *s == '\n'))
        w--;
    int sep = s < end ? *s : 0;
    *w = '\0';
    *p = s < end ? s + 1 : end;
    if (sep == '\n')
        (*line)++;
    return sep;
}

static void destroy_partial(sm_csvtab *t)
{
    free(t->buf);
    free(t->field);
    free(t);
}

sm_csvtab *sm_csvtab_load(const char *path, size_t max, sm_err *err)
{
    size_t len;
    unsigned char *raw = sm_file_read(path, max, &len, err);
    if (!raw)
        return NULL;
    sm_csvtab *t = calloc(1, sizeof *t);
    char *buf = raw ? realloc(raw, len + 1) : NULL;
    if (!t || !buf) {
        free(t);
        free(buf ? buf : (char *)raw);
        sm_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    t->buf = buf;
    char *p = buf, *end = buf + len;
    size_t cap = 0, n = 0;
    int line = 1, col = 0;
    while (p < end) {
        int at = line;
        if (col == 0 && *p == '\n') { /* a blank line */
            p++;
            line++;
            continue;
        }
        if (n == cap) {
            size_t c = cap ? 2 * cap : 256;
            char **g = realloc(t->field, c * sizeof *g);
            if (!g) {
                sm_err_set(err, "%s: out of memory", path);
                destroy_partial(t);
                return NULL;
            }
            t->field = g;
            cap = c;
        }
        int sep = next_field(&p, end, &t->field[n], &line);
        if (sep < 0) {
            sm_err_set(err, "%s:%d: unterminated quoted field", path, at);
            destroy_partial(t);
            return NULL;
        }
        n++;
        col++;
        if (sep == ',')
            continue;
        /* the end of a line (or of the file) */
        if (t->cols == 0)
            t->cols = col;
        else if (col > t->cols) {
            sm_err_set(err, "%s:%d: %d fields, the header has %d", path, at,
                       col, t->cols);
            destroy_partial(t);
            return NULL;
        }
        for (; col < t->cols; col++) { /* short row: empty fields */
            if (n == cap) {
                char **g = realloc(t->field, (cap *= 2) * sizeof *g);
                if (!g) {
                    sm_err_set(err, "%s: out of memory", path);
                    destroy_partial(t);
                    return NULL;
                }
                t->field = g;
            }
            t->field[n++] = end; /* the NUL at the end of buf */
        }
        col = 0;
    }
    *end = '\0';
    if (col) { /* the file ends just after a comma */
        sm_err_set(err, "%s:%d: the file ends inside a line", path, line);
        destroy_partial(t);
        return NULL;
    }
    if (t->cols == 0) {
        sm_err_set(err, "%s: empty: no header line", path);
        destroy_partial(t);
        return NULL;
    }
    t->rows = n / (size_t)t->cols - 1;
    return t;
}

void sm_csvtab_destroy(sm_csvtab **tp)
{
    if (*tp)
        destroy_partial(*tp);
    *tp = NULL;
}

size_t sm_csvtab_rows(const sm_csvtab *t)
{
    return t->rows;
}

int sm_csvtab_cols(const sm_csvtab *t)
{
    return t->cols;
}

const char *sm_csvtab_name(const sm_csvtab *t, int col)
{
    return col >= 0 && col < t->cols ? t->field[col] : "";
}

int sm_csvtab_col(const sm_csvtab *t, const char *name)
{
    for (int c = 0; c < t->cols; c++)
        if (!strcmp(t->field[c], name))
            return c;
    return -1;
}

const char *sm_csvtab_get(const sm_csvtab *t, size_t row, int col)
{
    if (col < 0 || col >= t->cols || row >= t->rows)
        return "";
    return t->field[(row + 1) * (size_t)t->cols + (size_t)col];
}

int sm_csvtab_num(const sm_csvtab *t, size_t row, int col, double *v)
{
    const char *s = sm_csvtab_get(t, row, col);
    char *e;
    if (!*s)
        return 0;
    double x = strtod(s, &e);
    if (*e || !isfinite(x))
        return 0;
    *v = x;
    return 1;
}
