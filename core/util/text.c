#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sm_text_addf(sm_text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL,
                          t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if (t->s && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return 0;
        }
        size_t nc = (t->cap ? t->cap * 2 : 4096) + (size_t)n + 1;
        char *ns = realloc(t->s, nc);
        if (!ns)
            return -1;
        t->s = ns;
        t->cap = nc;
    }
}

int sm_text_add(sm_text *t, const void *data, size_t n)
{
    if (!t->s || t->cap - t->len < n + 1) {
        size_t nc = (t->cap ? t->cap * 2 : 4096) + n + 1;
        char *ns = realloc(t->s, nc);
        if (!ns)
            return -1;
        t->s = ns;
        t->cap = nc;
    }
    if (n)
        memcpy(t->s + t->len, data, n);
    t->len += n;
    t->s[t->len] = '\0';
    return 0;
}

int sm_text_csv(sm_text *t, const char *s)
{
    if (!strpbrk(s, ",\"\n\r"))
        return sm_text_addf(t, "%s", s);
    if (sm_text_addf(t, "\""))
        return -1;
    for (const char *p = s; *p; p++)
        if (*p == '"' ? sm_text_addf(t, "\"\"") : sm_text_addf(t, "%c", *p))
            return -1;
    return sm_text_addf(t, "\"");
}

int sm_name_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

void sm_text_free(sm_text *t)
{
    free(t->s);
    t->s = NULL;
    t->len = t->cap = 0;
}
