#include "data/idx.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Reads exactly n bytes; returns how many came (fewer at the end of the
 * data), or -1 with a message on a read or gzip error. */
static long long read_full(gzFile f, void *buf, size_t n, const char *path,
                           sm_err *err)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (size_t)INT_MAX / 2 + 1)
            want = (size_t)INT_MAX / 2 + 1;
        int r = gzread(f, p + got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *m = gzerror(f, &code);
            return sm_err_set(err, "%s: %s", path,
                              code == Z_ERRNO ? strerror(errno) : m);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    /* zlib reports a cut gzip stream only through gzerror. */
    int code;
    const char *m = gzerror(f, &code);
    if (code != Z_OK)
        return sm_err_set(err, "%s: %s", path,
                          code == Z_BUF_ERROR ? "truncated gzip data" : m);
    return (long long)got;
}

static const char *type_name(int code)
{
    switch (code) {
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

sm_idx *sm_idx_read(const char *path, sm_err *err)
{
    /* gzopen reads non-gzip files unchanged, so both kinds go one way. */
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        sm_err_set(err, "%s: %s", path,
                   errno ? strerror(errno) : "cannot open");
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    sm_idx *idx = calloc(1, sizeof *idx);
    if (!idx) {
        gzclose(f);
        sm_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    unsigned char head[4 + 4 * SM_IDX_MAX_DIMS];
    long long r = read_full(f, head, 4, path, err);
    if (r < 0)
        goto fail;
    if (r < 4 || head[0] != 0 || head[1] != 0) {
        sm_err_set(err, "%s: not an IDX file (bad magic number)", path);
        goto fail;
    }
    if (head[2] != 0x08) {
        sm_err_set(err, "%s: IDX element type 0x%02x (%s) is not supported, "
                   "only 0x08 (unsigned byte)", path, head[2],
                   type_name(head[2]));
        goto fail;
    }
    idx->ndim = head[3];
    if (idx->ndim < 1 || idx->ndim > SM_IDX_MAX_DIMS) {
        sm_err_set(err, "%s: %d dimensions, expected 1 to %d", path,
                   idx->ndim, SM_IDX_MAX_DIMS);
        goto fail;
    }
    r = read_full(f, head + 4, 4 * (size_t)idx->ndim, path, err);
    if (r < 0)
        goto fail;
    if (r < 4 * idx->ndim) {
        sm_err_set(err, "%s: truncated IDX header", path);
        goto fail;
    }
    size_t size = 1;
    for (int d = 0; d < idx->ndim; d++) {
        const unsigned char *b = head + 4 + 4 * d;
        idx->dims[d] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                       (uint32_t)b[2] << 8 | b[3];
        if (idx->dims[d] && size > SM_IDX_MAX_BYTES / idx->dims[d]) {
            sm_err_set(err, "%s: IDX header promises more than the limit "
                       "of %zu bytes", path, SM_IDX_MAX_BYTES);
            goto fail;
        }
        size *= idx->dims[d];
    }
    idx->size = size;
    idx->data = malloc(size ? size : 1);
    if (!idx->data) {
        sm_err_set(err, "%s: out of memory for %zu bytes", path, size);
        goto fail;
    }
    r = read_full(f, idx->data, size, path, err);
    if (r < 0)
        goto fail;
    if ((size_t)r < size) {
        sm_err_set(err, "%s: truncated: the IDX header promises %zu bytes of "
                   "data, the file has %lld", path, size, r);
        goto fail;
    }
    /* Reading past the end also makes zlib check the gzip CRC. */
    unsigned char extra;
    r = read_full(f, &extra, 1, path, err);
    if (r < 0)
        goto fail;
    if (r > 0) {
        sm_err_set(err, "%s: more data than the %zu bytes the IDX header "
                   "promises", path, size);
        goto fail;
    }
    gzclose(f);
    return idx;
fail:
    gzclose(f);
    sm_idx_destroy(&idx);
    return NULL;
}

void sm_idx_destroy(sm_idx **idx)
{
    if (!idx || !*idx)
        return;
    free((*idx)->data);
    free(*idx);
    *idx = NULL;
}
