/* Inline SVG plots (plot.h). */
#include "report/plot.h"

#include <math.h>

#include "report/html.h"

#define W 420
#define H 230
#define LEFT 56
#define RIGHT 12
#define TOP 26
#define BOTTOM 44

static const char *const tab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                    "#d62728", "#9467bd", "#8c564b",
                                    "#e377c2", "#7f7f7f", "#bcbd22",
                                    "#17becf"};

const char *sm_plot_colour(int k)
{
    return tab10[(k < 0 ? -k : k) % 10];
}

static double y_of(double v, double lo, double hi)
{
    double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return TOP + (1 - t) * (H - TOP - BOTTOM);
}

/* The frame: title, y axis with its ends (and 0 when inside). */
static int frame(sm_text *t, const char *title, const char *ylabel,
                 double lo, double hi)
{
    int rc = sm_text_addf(t, "<svg class=\"plot\" width=\"%d\" height=\"%d\" "
                             "viewBox=\"0 0 %d %d\" role=\"img\">"
                             "<text x=\"%d\" y=\"16\" class=\"pt\">",
                          W, H, W, H, LEFT) ||
             sm_html_esc(t, title) || sm_text_addf(t, "</text>");
    if (ylabel)
        rc = rc ||
             sm_text_addf(t, "<text x=\"12\" y=\"%d\" class=\"pa\" "
                             "transform=\"rotate(-90 12 %d)\" "
                             "text-anchor=\"middle\">",
                          (H - BOTTOM + TOP) / 2, (H - BOTTOM + TOP) / 2) ||
             sm_html_esc(t, ylabel) || sm_text_addf(t, "</text>");
    double ticks[3] = {lo, hi, 0};
    int nt = lo < 0 && hi > 0 ? 3 : 2;
    for (int k = 0; k < nt && rc == 0; k++) {
        double y = y_of(ticks[k], lo, hi);
        rc = sm_text_addf(t, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                             "class=\"%s\"/><text x=\"%d\" y=\"%.1f\" "
                             "class=\"pa\" text-anchor=\"end\">%.3g</text>",
                          LEFT, W - RIGHT, y, y, k == 2 ? "zero" : "gl",
                          LEFT - 4, y + 4, ticks[k]);
    }
    return rc || sm_text_addf(t, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" "
                                 "y2=\"%d\" class=\"axis\"/>",
                              LEFT, LEFT, TOP, H - BOTTOM);
}

int sm_plot_bars(sm_text *t, const char *title, const char *const *names,
                 const double *mean, const double *sd, const int *have, int n)
{
    double lo = 0, hi = 0;
    for (int k = 0; k < n; k++) {
        if (!have[k])
            continue;
        double s = isfinite(sd[k]) ? sd[k] : 0;
        lo = fmin(lo, mean[k] - s);
        hi = fmax(hi, mean[k] + s);
    }
    if (hi == lo)
        hi = lo + 1;
    int rc = frame(t, title, NULL, lo, hi);
    double slot = n ? (double)(W - LEFT - RIGHT) / n : 1;
    for (int k = 0; k < n && rc == 0; k++) {
        double x = LEFT + slot * k, bw = slot * 0.6, cx = x + slot / 2;
        rc = sm_text_addf(t, "<text x=\"%.1f\" y=\"%d\" class=\"pa\" "
                             "text-anchor=\"middle\">",
                          cx, H - BOTTOM + 14) ||
             sm_html_esc(t, names[k]) || sm_text_addf(t, "</text>");
        if (rc || !have[k])
            continue;
        double y0 = y_of(0, lo, hi), y1 = y_of(mean[k], lo, hi);
        rc = sm_text_addf(t, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                             "height=\"%.1f\" fill=\"%s\"><title>",
                          cx - bw / 2, fmin(y0, y1), bw, fabs(y0 - y1),
                          sm_plot_colour(k)) ||
             sm_html_esc(t, names[k]) ||
             sm_text_addf(t, ": %.4g \xc2\xb1 %.4g</title></rect>", mean[k],
                          isfinite(sd[k]) ? sd[k] : 0);
        if (rc == 0 && isfinite(sd[k]) && sd[k] > 0) {
            double ya = y_of(mean[k] - sd[k], lo, hi),
                   yb = y_of(mean[k] + sd[k], lo, hi);
            rc = sm_text_addf(t, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fh%.1f"
                                 "M%.1f %.1fh%.1f\" class=\"whisker\"/>",
                              cx, ya, yb, cx - 5, ya, 10.0, cx - 5, yb, 10.0);
        }
    }
    return rc || sm_text_addf(t, "</svg>\n");
}

int sm_plot_lines(sm_text *t, const char *title, const char *ylabel,
                  const sm_plot_line *lines, int n, double ylo, double yhi,
                  const double *tick_x, const char *const *tick_label,
                  int n_ticks)
{
    double xlo = 0, xhi = 0;
    int any = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < lines[k].n; i++) {
            double x = lines[k].x[i];
            xlo = any ? fmin(xlo, x) : x;
            xhi = any ? fmax(xhi, x) : x;
            any = 1;
        }
    if (xhi == xlo)
        xhi = xlo + 1;
    int plot_w = W - LEFT - RIGHT - 90; /* the legend on the right */
#define X_OF(v) (LEFT + 8 + ((v) - xlo) / (xhi - xlo) * (plot_w - 16))
    int rc = frame(t, title, ylabel, ylo, yhi);
    for (int k = 0; k < n_ticks && rc == 0; k++)
        rc = sm_text_addf(t, "<text x=\"%.1f\" y=\"%d\" class=\"pa\" "
                             "text-anchor=\"end\" transform=\"rotate(-30 "
                             "%.1f %d)\">",
                          X_OF(tick_x[k]), H - BOTTOM + 14, X_OF(tick_x[k]),
                          H - BOTTOM + 14) ||
             sm_html_esc(t, tick_label[k]) || sm_text_addf(t, "</text>");
    for (int k = 0; k < n && rc == 0; k++) {
        const sm_plot_line *l = &lines[k];
        const char *c = sm_plot_colour(l->colour);
        rc = sm_text_addf(t, "<polyline fill=\"none\" stroke=\"%s\" "
                             "stroke-width=\"2\"%s points=\"",
                          c, l->dashed ? " stroke-dasharray=\"5 3\"" : "");
        for (int i = 0; i < l->n && rc == 0; i++)
            rc = sm_text_addf(t, "%.1f,%.1f ", X_OF(l->x[i]),
                              y_of(l->y[i], ylo, yhi));
        rc = rc || sm_text_addf(t, "\"/>");
        for (int i = 0; i < l->n && rc == 0; i++)
            rc = sm_text_addf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                                 "fill=\"%s\"/>",
                              X_OF(l->x[i]), y_of(l->y[i], ylo, yhi), c);
        int ly = TOP + 6 + 14 * k;
        rc = rc ||
             sm_text_addf(t, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" "
                             "stroke=\"%s\" stroke-width=\"2\"%s/>"
                             "<text x=\"%d\" y=\"%d\" class=\"pa\">",
                          W - RIGHT - 84, W - RIGHT - 66, ly, ly, c,
                          l->dashed ? " stroke-dasharray=\"5 3\"" : "",
                          W - RIGHT - 62, ly + 4) ||
             sm_html_esc(t, l->name) || sm_text_addf(t, "</text>");
    }
#undef X_OF
    return rc || sm_text_addf(t, "</svg>\n");
}
