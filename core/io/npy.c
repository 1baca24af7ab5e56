#include "io/npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/file.h"

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define MAX_HEADER (1 << 20) /* real headers are under 200 bytes */
#define ALIGN 64             /* NumPy pads the header to this */

/* The header is a Python dict literal; this reads the subset NumPy
 * writes: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
typedef struct hdr {
    const char *p, *end;
    char descr[32];
    int fortran, ndim;
    int64_t shape[SM_MAX_DIMS];
    int seen; /* bit per key */
} hdr;

static void ws(hdr *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n'))
        h->p++;
}

static int eat(hdr *h, char c)
{
    ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

/* A quoted string into buf; 0 or -1. */
static int str(hdr *h, char *buf, size_t n)
{
    ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return -1;
    char q = *h->p++;
    size_t len = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || len + 1 >= n)
            return -1;
        buf[len++] = *h->p++;
    }
    if (h->p >= h->end)
        return -1;
    h->p++;
    buf[len] = '\0';
    return 0;
}

static int word(hdr *h, const char *w)
{
    ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return 1;
    }
    return 0;
}

/* (d0, d1, ...) with an optional trailing comma; Python 2 wrote 3L. */
static int shape(hdr *h)
{
    if (!eat(h, '('))
        return -1;
    h->ndim = 0;
    while (!eat(h, ')')) {
        if (h->ndim && !eat(h, ','))
            return -1;
        if (eat(h, ')'))
            break;
        ws(h);
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return -1;
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (*h->p++ - '0');
        }
        if (h->p < h->end && *h->p == 'L')
            h->p++;
        if (h->ndim == SM_MAX_DIMS)
            return -2;
        h->shape[h->ndim++] = v;
    }
    return 0;
}

static int parse_header(hdr *h, const char *path, sm_err *err)
{
    if (!eat(h, '{'))
        return sm_err_set(err, "%s: npy header is not a dict", path);
    while (!eat(h, '}')) {
        if (h->seen && !eat(h, ','))
            return sm_err_set(err, "%s: npy header: expected ',' or '}'",
                              path);
        if (eat(h, '}'))
            break;
        char key[32];
        if (str(h, key, sizeof key) || !eat(h, ':'))
            return sm_err_set(err, "%s: npy header: expected 'key': value",
                              path);
        int bit = strcmp(key, "descr") == 0           ? 1
                  : strcmp(key, "fortran_order") == 0 ? 2
                  : strcmp(key, "shape") == 0         ? 4
                                                      : 0;
        if (!bit)
            return sm_err_set(err, "%s: npy header: unknown key '%s'", path,
                              key);
        if (h->seen & bit)
            return sm_err_set(err, "%s: npy header: key '%s' given twice",
                              path, key);
        h->seen |= bit;
        if (bit == 1 && str(h, h->descr, sizeof h->descr))
            return sm_err_set(err, "%s: npy header: 'descr' is not a simple "
                              "dtype string (structured arrays are not "
                              "supported)", path);
        if (bit == 2) {
            if (word(h, "True"))
                h->fortran = 1;
            else if (!word(h, "False"))
                return sm_err_set(err, "%s: npy header: 'fortran_order' must "
                                  "be True or False", path);
        }
        if (bit == 4) {
            int r = shape(h);
            if (r == -2)
                return sm_err_set(err, "%s: npy shape has more than %d "
                                  "dimensions", path, SM_MAX_DIMS);
            if (r)
                return sm_err_set(err, "%s: npy header: 'shape' must be a "
                                  "tuple of non-negative integers", path);
        }
    }
    ws(h);
    if (h->p != h->end)
        return sm_err_set(err, "%s: npy header: text after the dict", path);
    if (h->seen != 7)
        return sm_err_set(err, "%s: npy header lacks '%s'", path,
                          !(h->seen & 1)   ? "descr"
                          : !(h->seen & 2) ? "fortran_order"
                                           : "shape");
    if (strcmp(h->descr, "<f4") != 0)
        return sm_err_set(err, "%s: dtype '%s' is not supported, only '<f4' "
                          "(little-endian float32)", path, h->descr);
    if (h->fortran)
        return sm_err_set(err, "%s: fortran_order True is not supported, "
                          "only C order", path);
    return 0;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

struct sm_npy_reader {
    FILE *f;
    char *path;
    int ndim;
    int64_t shape[SM_MAX_DIMS];
    int64_t rows, row_floats, next; /* rows of the first dimension */
};

void sm_npy_reader_destroy(sm_npy_reader **rp)
{
    sm_npy_reader *r = *rp;
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r->path);
    free(r);
    *rp = NULL;
}

/* Reads and checks the prefix and header; the file is left at the data.
 * 0, or -1 with a message naming the file. */
static int read_header(sm_npy_reader *r, sm_err *err)
{
    const char *path = r->path;
    FILE *f = r->f;
    struct stat st;
    unsigned char pre[12];
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        return sm_err_set(err, "%s: not a regular file", path);
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, MAGIC, MAGIC_LEN) != 0)
        return sm_err_set(err, "%s: not a .npy file (bad magic string)", path);
    size_t prefix, hlen;
    if (pre[6] == 1 && pre[7] == 0) {
        prefix = 10;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 && pre[7] == 0) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return sm_err_set(err, "%s: truncated npy header", path);
        prefix = 12;
        hlen = le32(pre + 8);
    } else {
        return sm_err_set(err, "%s: npy format version %d.%d is not supported "
                          "(1.0 and 2.0 are)", path, pre[6], pre[7]);
    }
    if (hlen > MAX_HEADER)
        return sm_err_set(err, "%s: npy header of %zu bytes is over the limit",
                          path, hlen);
    char *text = malloc(hlen + 1);
    if (!text)
        return sm_err_set(err, "%s: out of memory", path);
    int rc = 0;
    hdr h = {.p = text, .end = text + hlen};
    if (fread(text, 1, hlen, f) != hlen)
        rc = sm_err_set(err, "%s: truncated npy header", path);
    else
        rc = parse_header(&h, path, err);
    free(text);
    if (rc)
        return -1;
    /* Every dim is checked before the product so that it cannot wrap. */
    size_t bytes = sizeof(float);
    for (int d = 0; d < h.ndim; d++) {
        if (h.shape[d] && bytes > SM_NPY_MAX_BYTES / (uint64_t)h.shape[d])
            return sm_err_set(err, "%s: npy shape is over the limit of %zu "
                              "bytes", path, SM_NPY_MAX_BYTES);
        bytes *= (size_t)h.shape[d];
    }
    if (sm_shape_numel(h.ndim, h.shape) == 0)
        bytes = 0;
    long long left = (long long)st.st_size - (long long)(prefix + hlen);
    size_t have = left > 0 ? (size_t)left : 0;
    if (have != bytes) {
        char sh[128];
        return sm_err_set(err, "%s: %s: the npy header's shape %s needs %zu "
                          "bytes of data, the file has %zu", path,
                          have < bytes ? "truncated" : "size mismatch",
                          sm_shape_str(h.ndim, h.shape, sh, sizeof sh), bytes,
                          have);
    }
    r->ndim = h.ndim;
    memcpy(r->shape, h.shape, sizeof r->shape);
    /* a scalar is one row of one float */
    r->rows = h.ndim ? h.shape[0] : 1;
    r->row_floats = h.ndim ? sm_shape_numel(h.ndim - 1, h.shape + 1) : 1;
    return 0;
}

sm_npy_reader *sm_npy_reader_open(const char *path, sm_err *err)
{
    sm_npy_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        sm_err_set(err, "%s: out of memory", path);
        free(r);
        return NULL;
    }
    if (!(r->f = fopen(path, "rb"))) {
        sm_err_set(err, "%s: %s", path, strerror(errno));
        sm_npy_reader_destroy(&r);
        return NULL;
    }
    if (read_header(r, err))
        sm_npy_reader_destroy(&r);
    return r;
}

int sm_npy_reader_shape(const sm_npy_reader *r, int64_t shape[SM_MAX_DIMS])
{
    memcpy(shape, r->shape, sizeof r->shape);
    return r->ndim;
}

int64_t sm_npy_reader_rows_left(const sm_npy_reader *r)
{
    return r->rows - r->next;
}

int sm_npy_reader_next(sm_npy_reader *r, float *dst, int64_t n, sm_err *err)
{
    if (n < 0 || n > r->rows - r->next)
        return sm_err_set(err, "%s: %lld rows asked for, %lld left", r->path,
                          (long long)n, (long long)(r->rows - r->next));
    size_t bytes = (size_t)n * (size_t)r->row_floats * sizeof(float);
    if (bytes && fread(dst, 1, bytes, r->f) != bytes)
        return sm_err_set(err, "%s: read error: %s", r->path,
                          ferror(r->f) ? strerror(errno) : "the file shrank");
    r->next += n;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    /* The file is little-endian whatever the host is. */
    unsigned char *b = (unsigned char *)dst;
    for (size_t i = 0; i < bytes; i += 4) {
        uint32_t u = le32(b + i);
        memcpy(b + i, &u, 4);
    }
#endif
    return 0;
}

sm_tensor *sm_npy_read(const char *path, sm_err *err)
{
    sm_npy_reader *r = sm_npy_reader_open(path, err);
    if (!r)
        return NULL;
    sm_tensor *t = sm_tensor_new(r->ndim, r->shape);
    if (!t)
        sm_err_set(err, "%s: out of memory for %lld floats", path,
                   (long long)(r->rows * r->row_floats));
    else if (sm_npy_reader_next(r, t->data, r->rows, err))
        sm_tensor_destroy(&t);
    sm_npy_reader_destroy(&r);
    return t;
}

/* Both writers; sync: fsync before the rename (sm_file_write_atomic),
 * else sm_file_replace. */
static int write_npy(const char *path, const sm_tensor *t, int sync, sm_err *err)
{
    if (!t->data || t->ndim < 0 || t->ndim > SM_MAX_DIMS)
        return sm_err_set(err, "%s: not a float tensor of at most %d "
                          "dimensions", path, SM_MAX_DIMS);
    char dict[400];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < t->ndim; d++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld",
                        d ? ", " : "", (long long)t->shape[d]);
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }",
                    t->ndim == 1 ? "," : "");
    /* As NumPy does: spaces then '\n' so that the data starts on a
     * multiple of 64 bytes. */
    size_t hlen = (size_t)len + 1;
    size_t pad = ALIGN - (10 + hlen) % ALIGN;
    hlen += pad;
    size_t numel = (size_t)sm_tensor_numel(t);
    size_t total = 10 + hlen + numel * 4;
    unsigned char *buf = malloc(total);
    if (!buf)
        return sm_err_set(err, "%s: out of memory", path);
    memcpy(buf, MAGIC, MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)len);
    memset(buf + 10 + len, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    unsigned char *o = buf + 10 + hlen;
    for (size_t i = 0; i < numel; i++) {
        uint32_t u;
        memcpy(&u, &t->data[i], 4);
        o[4 * i] = (unsigned char)u;
        o[4 * i + 1] = (unsigned char)(u >> 8);
        o[4 * i + 2] = (unsigned char)(u >> 16);
        o[4 * i + 3] = (unsigned char)(u >> 24);
    }
    int rc = sync ? sm_file_write_atomic(path, buf, total, err)
                  : sm_file_replace(path, buf, total, err);
    free(buf);
    return rc;
}

int sm_npy_write(const char *path, const sm_tensor *t, sm_err *err)
{
    return write_npy(path, t, 1, err);
}

int sm_npy_replace(const char *path, const sm_tensor *t, sm_err *err)
{
    return write_npy(path, t, 0, err);
}
