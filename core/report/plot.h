/* Inline SVG plots for the report (report.h): bars with a spread, and
 * lines. Every text is HTML-escaped; each appends to t and returns 0, or
 * -1 when out of memory. */
#ifndef SM_REPORT_PLOT_H
#define SM_REPORT_PLOT_H

#include "util/text.h"

/* The colour of series k (Tableau 10, cycled), "#rrggbb". */
const char *sm_plot_colour(int k);

/* n bars, one per name: bar k of height mean[k] with a whisker from
 * mean[k] - sd[k] to mean[k] + sd[k]; have[k] 0 leaves the slot empty.
 * The axis spans 0 and every whisker. */
int sm_plot_bars(sm_text *t, const char *title, const char *const *names,
                 const double *mean, const double *sd, const int *have, int n);

typedef struct sm_plot_line {
    const char *name;
    const double *x, *y; /* n points, in x order */
    int n;
    int dashed;
    int colour;          /* sm_plot_colour's k */
} sm_plot_line;

/* Lines over [ylo, yhi] (points outside are clamped), x ticks at tick_x
 * labelled tick_label (n_ticks), a legend of the lines' names. */
int sm_plot_lines(sm_text *t, const char *title, const char *ylabel,
                  const sm_plot_line *lines, int n, double ylo, double yhi,
                  const double *tick_x, const char *const *tick_label,
                  int n_ticks);

#endif
