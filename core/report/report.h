/* sm_report_write: OUT/report/, static HTML pages about a job's output
 * folder (docs/OUTPUTS.md), readable without a network or a server:
 *
 *   OUT/report/index.html        the job (job.json), the figure
 *                                (../figure.png when written), per method
 *                                the mean and standard deviation of each
 *                                numeric column of index.csv with bar
 *                                plots, the sanity check's plot (when
 *                                OUT/sanity.csv is there), and a table of
 *                                the images (sorted, filtered and paged by
 *                                inline JS from an inline data array)
 *   OUT/report/images/<id>.html  an image's maps side by side (the PNGs
 *                                of maps/<id>/ when rendered) and each
 *                                method's record
 *
 * CSS and JS are inline; the pages refer only to files inside OUT, by
 * relative path. Everything read from OUT is HTML-escaped (and, inside
 * the script, JSON with < > & escaped). */
#ifndef SM_REPORT_REPORT_H
#define SM_REPORT_REPORT_H

#include "util/err.h"

/* Images a page of the index's image table shows. */
#define SM_REPORT_PAGE_ROWS 50
/* Bytes of a record printed on an image page at most (the rest is
 * elided; the record's file is linked). */
#define SM_REPORT_RECORD_BYTES ((size_t)64 << 10)

/* Writes OUT/report/. -1 with a message: OUT missing or not an output
 * folder (no index.csv, no rows), a bad job.json or sanity.csv, a file
 * that cannot be written. */
int sm_report_write(const char *out, sm_err *err);

#endif
