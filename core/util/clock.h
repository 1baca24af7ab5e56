/* sm_clock: seconds on a monotonic clock (durations, deadlines, rates). */
#ifndef SM_CLOCK_H
#define SM_CLOCK_H

#include <stddef.h>

double sm_clock_now(void);

/* A duration for people: "42s", "3m07s", "2h05m" (rounded to seconds;
 * negative as 0). Returns buf (cap bytes). */
const char *sm_clock_duration(double seconds, char *buf, size_t cap);

#endif
