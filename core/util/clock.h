/* sm_clock: seconds on a monotonic clock (durations, deadlines, rates). */
#ifndef SM_CLOCK_H
#define SM_CLOCK_H

double sm_clock_now(void);

#endif
