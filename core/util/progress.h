/* sm_progress: the progress line of salmap's long commands (explain,
 * wait, sanity): done of total units at rate units/s and the time left. */
#ifndef SM_PROGRESS_H
#define SM_PROGRESS_H

#include <stdint.h>

/* With bar and stderr a terminal: a bar redrawn in place (carriage return;
 * a line break after it when final). Else the line
 * "<prefix>: done/total units, rate units/s, 3m07s left". */
void sm_progress_show(const char *prefix, const char *unit, uint64_t done,
                      uint64_t total, double rate, int final, int bar);

#endif
