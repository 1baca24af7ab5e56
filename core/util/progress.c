#include "util/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util/clock.h"

void sm_progress_show(const char *prefix, const char *unit, uint64_t done,
                      uint64_t total, double rate, int final, int bar)
{
    double left = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    char eta[32];
    sm_clock_duration(left, eta, sizeof eta);
    if (bar && isatty(STDERR_FILENO)) {
        int width = 30, fill = total ? (int)(width * done / total) : width;
        fprintf(stderr, "\r[%.*s%*s] %llu/%llu %s, %.1f %s/s, %s left ",
                fill, "==============================", width - fill, "",
                (unsigned long long)done, (unsigned long long)total, unit,
                rate, unit, eta);
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %llu/%llu %s, %.1f %s/s, %s left\n", prefix,
                (unsigned long long)done, (unsigned long long)total, unit,
                rate, unit, eta);
    }
}
