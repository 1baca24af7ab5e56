/* The live status page served at "/": one static HTML page, no external
 * assets, that polls GET /v1/jobs (docs/API.md, "The status page"). */
#ifndef SM_GW_PAGE_H
#define SM_GW_PAGE_H

#include <stddef.h>

/* The page's bytes (static). */
const char *sm_gw_page(size_t *len);

#endif
