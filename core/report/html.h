/* Text for the pages and the SVG the report writes: HTML/XML escaping,
 * URL paths, JSON safe inside <script>, base64 (data: URLs). Each appends
 * to t and returns 0, or -1 when out of memory. */
#ifndef SM_REPORT_HTML_H
#define SM_REPORT_HTML_H

#include <stddef.h>

#include "util/text.h"

/* s with & < > " ' as entities: safe in element text and quoted
 * attributes of HTML and XML. */
int sm_html_esc(sm_text *t, const char *s);

/* A relative path (an image id, a file name) as a URL path: bytes other
 * than [A-Za-z0-9/._~-] percent-encoded, so '#', '?', '%' and spaces in
 * ids stay part of the path. */
int sm_html_url(sm_text *t, const char *path);

/* JSON text with < > & as \u escapes: inside a <script> element no
 * string of it can end the script or open a comment. */
int sm_html_script_json(sm_text *t, const char *json);

/* n bytes as standard base64 (RFC 4648, padded). */
int sm_html_base64(sm_text *t, const void *data, size_t n);

#endif
