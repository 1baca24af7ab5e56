/* Escaping and encoding for the report (html.h). */
#include "report/html.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* s with each byte of `special` replaced by what put writes for it. */
static int escape(sm_text *t, const char *s, const char *special,
                  int (*put)(sm_text *t, unsigned char c))
{
    for (const char *p = s; *p;) {
        size_t run = strcspn(p, special);
        if (run && sm_text_add(t, p, run))
            return -1;
        p += run;
        if (*p && put(t, (unsigned char)*p++))
            return -1;
    }
    return 0;
}

static int entity(sm_text *t, unsigned char c)
{
    const char *e = c == '&'   ? "&amp;"
                    : c == '<' ? "&lt;"
                    : c == '>' ? "&gt;"
                    : c == '"' ? "&quot;"
                               : "&#39;";
    return sm_text_add(t, e, strlen(e));
}

static int json_escape(sm_text *t, unsigned char c)
{
    return sm_text_addf(t, "\\u%04x", (unsigned)c);
}

int sm_html_esc(sm_text *t, const char *s)
{
    return escape(t, s, "&<>\"'", entity);
}

int sm_html_url(sm_text *t, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("/._~-", *p);
        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        if (plain ? sm_text_add(t, p, 1) : sm_text_add(t, e, 3))
            return -1;
    }
    return 0;
}

int sm_html_script_json(sm_text *t, const char *json)
{
    return escape(t, json, "<>&", json_escape);
}

int sm_html_base64(sm_text *t, const void *data, size_t n)
{
    size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(len);
    if (!b)
        return -1;
    sodium_bin2base64(b, len, data, n, sodium_base64_VARIANT_ORIGINAL);
    int rc = sm_text_add(t, b, len - 1); /* len counts the NUL */
    free(b);
    return rc;
}
