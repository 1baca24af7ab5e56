#include "data/digits_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

/* A strict reader for exactly this shape of JSON: no general JSON
 * library is among the project's dependencies, and the shape is fixed. */
typedef struct cursor {
    const char *s, *end, *path;
    sm_err *err;
} cursor;

static int fail_at(cursor *c, const char *p, const char *what)
{
    int line = 1, col = 1;
    for (const char *q = c->s; q < p && q < c->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else
            col++;
    }
    return sm_err_set(c->err, "%s:%d:%d: %s%s", c->path, line, col,
                      p >= c->end ? "unexpected end of file, " : "", what);
}

static const char *skip_ws(const cursor *c, const char *p)
{
    while (p < c->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A JSON number per RFC 8259's grammar, converted by hand so that the
 * process locale cannot change the decimal point. */
static const char *number(cursor *c, const char *p, double *v)
{
    const char *q = p;
    int neg = 0;
    if (q < c->end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= c->end || *q < '0' || *q > '9')
        return fail_at(c, p, "expected a number"), NULL;
    if (*q == '0' && q + 1 < c->end && q[1] >= '0' && q[1] <= '9')
        return fail_at(c, p, "number with a leading zero"), NULL;
    double mant = 0;
    int exp10 = 0;
    while (q < c->end && *q >= '0' && *q <= '9')
        mant = mant * 10 + (*q++ - '0');
    if (q < c->end && *q == '.') {
        q++;
        if (q >= c->end || *q < '0' || *q > '9')
            return fail_at(c, q, "expected a digit after '.'"), NULL;
        while (q < c->end && *q >= '0' && *q <= '9') {
            if (mant < 1e17) { /* beyond, digits no longer matter */
                mant = mant * 10 + (*q - '0');
                exp10--;
            }
            q++;
        }
    }
    if (q < c->end && (*q == 'e' || *q == 'E')) {
        q++;
        int eneg = 0, e = 0;
        if (q < c->end && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q >= c->end || *q < '0' || *q > '9')
            return fail_at(c, q, "expected a digit in the exponent"), NULL;
        while (q < c->end && *q >= '0' && *q <= '9') {
            if (e < 10000)
                e = e * 10 + (*q - '0');
            q++;
        }
        exp10 += eneg ? -e : e;
    }
    /* mant and 10^k are exact for the short decimals in these files, so
     * the division rounds once, like strtod. */
    double x = exp10 < 0 ? mant / pow(10, -exp10) : mant * pow(10, exp10);
    *v = neg ? -x : x;
    return q;
}

/* Parses the "data" array into *out (grown as needed). */
static const char *data_array(cursor *c, const char *p, uint8_t **out,
                              size_t *n)
{
    size_t cap = 0;
    p = skip_ws(c, p);
    if (p >= c->end || *p != '[')
        return fail_at(c, p, "\"data\" must be an array"), NULL;
    p = skip_ws(c, p + 1);
    if (p < c->end && *p == ']')
        return p + 1;
    for (;;) {
        double v;
        const char *at = skip_ws(c, p);
        p = number(c, at, &v);
        if (!p)
            return NULL;
        if (!(v >= 0 && v <= 1))
            return fail_at(c, at, "pixel value outside [0, 1]"), NULL;
        if (*n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *g = realloc(*out, cap);
            if (!g)
                return fail_at(c, at, "out of memory"), NULL;
            *out = g;
        }
        (*out)[(*n)++] = (uint8_t)lround(255.0 * v);
        p = skip_ws(c, p);
        if (p < c->end && *p == ',') {
            p++;
            continue;
        }
        if (p < c->end && *p == ']')
            return p + 1;
        return fail_at(c, p, "expected ',' or ']' in \"data\""), NULL;
    }
}

uint8_t *sm_digits_json_read(const char *path, size_t *n, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_file_read(path, SM_DIGITS_MAX_FILE, &len, err);
    if (!buf)
        return NULL;
    cursor c = {(const char *)buf, (const char *)buf + len, path, err};
    uint8_t *pix = NULL;
    size_t count = 0;
    int seen = 0;
    const char *p = skip_ws(&c, c.s);
    if (p >= c.end || *p != '{') {
        fail_at(&c, p, "expected '{'");
        goto fail;
    }
    p = skip_ws(&c, p + 1);
    while (p < c.end && *p != '}') {
        static const char key[] = "\"data\"";
        if ((size_t)(c.end - p) < sizeof key - 1 ||
            memcmp(p, key, sizeof key - 1) != 0) {
            fail_at(&c, p, *p == '"' ? "unexpected key (only \"data\")"
                                     : "expected a key");
            goto fail;
        }
        if (seen) {
            fail_at(&c, p, "\"data\" given twice");
            goto fail;
        }
        seen = 1;
        p = skip_ws(&c, p + sizeof key - 1);
        if (p >= c.end || *p != ':') {
            fail_at(&c, p, "expected ':'");
            goto fail;
        }
        p = data_array(&c, p + 1, &pix, &count);
        if (!p)
            goto fail;
        p = skip_ws(&c, p);
        if (p < c.end && *p == ',') {
            /* a key must follow: no trailing comma */
            p = skip_ws(&c, p + 1);
            if (p >= c.end || *p == '}') {
                fail_at(&c, p, "expected a key after ','");
                goto fail;
            }
        } else if (p >= c.end || *p != '}') {
            fail_at(&c, p, "expected ',' or '}'");
            goto fail;
        }
    }
    if (p >= c.end) {
        fail_at(&c, p, "unexpected end of file");
        goto fail;
    }
    p = skip_ws(&c, p + 1);
    if (p != c.end) {
        fail_at(&c, p, "data after the closing '}'");
        goto fail;
    }
    if (!seen || count == 0 || count % SM_DIGITS_PIXELS) {
        sm_err_set(err, "%s: %zu pixel values, expected a positive multiple "
                   "of %d", path, count, SM_DIGITS_PIXELS);
        goto fail;
    }
    free(buf);
    *n = count / SM_DIGITS_PIXELS;
    return pix;
fail:
    free(buf);
    free(pix);
    return NULL;
}
