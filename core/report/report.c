/* OUT/report/ (report.h). Pages are built in one sm_text through the P
 * (formatted) and E (escaped) macros, which remember a failed append, so
 * the writing reads top to bottom and is checked once at the end. */
#include "report/report.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "report/csvtab.h"
#include "report/html.h"
#include "report/outdir.h"
#include "report/plot.h"
#include "util/file.h"
#include "util/text.h"

#define SANITY_MAX ((size_t)64 << 20)
#define RECORD_READ_MAX ((size_t)256 << 20)

typedef struct rep {
    const char *out;
    sm_outdir *od;
    int *num;     /* index.csv's numeric columns */
    int n_num;
    sm_text t;    /* the page being written */
    int failed;   /* an append ran out of memory */
} rep;

#define P(...) (r->failed |= sm_text_addf(&r->t, __VA_ARGS__) != 0)
#define E(s) (r->failed |= sm_html_esc(&r->t, (s)) != 0)
#define U(s) (r->failed |= sm_html_url(&r->t, (s)) != 0)

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;"
    "padding:0 16px 40px;color:#222}"
    "h1{margin:16px 0 4px}h2{border-bottom:1px solid #ccc;margin-top:28px}"
    "table{border-collapse:collapse;margin:6px 0}"
    "th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;"
    "vertical-align:top}th{background:#f3f3f3}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "code,pre{font:12px/1.35 ui-monospace,monospace}"
    "pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:480px}"
    ".grid{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}"
    ".card{border:1px solid #ddd;padding:6px 10px;border-radius:4px}"
    "figure{margin:0;text-align:center}figcaption{font-size:12px;color:#555}"
    "img.map{image-rendering:pixelated;width:168px;height:auto}"
    "img.strip{image-rendering:pixelated;max-width:100%;height:auto}"
    "#figure{max-width:100%;height:auto}"
    ".plot text.pt{font-size:13px;font-weight:600}"
    ".plot text.pa{font-size:11px;fill:#444}"
    ".plot .gl{stroke:#e4e4e4}.plot .zero{stroke:#999}"
    ".plot .axis{stroke:#666}.plot .whisker{stroke:#222;stroke-width:1.5;"
    "fill:none}"
    "th.sort{cursor:pointer;user-select:none}th.sort:hover{background:#e6e6e6}"
    ".muted{color:#777}.bad{color:#b00}"
    "#pager button{margin-right:6px}.kv{margin-right:10px;white-space:nowrap;"
    "display:inline-block}";

/* The page's head, with a policy that lets it load nothing from a
 * network: images from files beside it, inline style and script. */
static void head(rep *r, const char *title)
{
    P("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
      "'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
      "script-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width\">\n<title>");
    E(title);
    P("</title>\n<style>%s</style></head>\n<body>\n", css);
}

/* Atomic, without an fsync a page: sm_report_write makes the pages of
 * thousands of images durable with one barrier at the end. */
static int write_page(rep *r, const char *path, sm_err *err)
{
    int rc;
    if (r->failed)
        rc = sm_err_set(err, "%s: out of memory", path);
    else
        rc = sm_file_replace(path, r->t.s, r->t.len, err);
    sm_text_free(&r->t);
    r->failed = 0;
    return rc;
}

static void when(rep *r, double t)
{
    if (t <= 0) {
        P("<span class=\"muted\">&#8212;</span>");
        return;
    }
    time_t s = (time_t)t;
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    P("%s", buf);
}

static void kv(rep *r, const char *key, const char *value)
{
    P("<tr><th>%s</th><td>", key);
    if (value)
        E(value);
    else
        P("<span class=\"muted\">&#8212;</span>");
    P("</td></tr>\n");
}

/* A JSON text pretty-printed (indent 2) into <pre>, escaped; at most
 * SM_REPORT_RECORD_BYTES of it. */
static void pretty(rep *r, const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
    if (!s) {
        r->failed = 1;
        return;
    }
    size_t n = strlen(s);
    if (n > SM_REPORT_RECORD_BYTES) {
        /* cut on a UTF-8 boundary */
        size_t k = SM_REPORT_RECORD_BYTES;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        s[k] = '\0';
    }
    P("<pre>");
    E(s);
    if (n > SM_REPORT_RECORD_BYTES)
        P("\n&#8230; (%zu more bytes)", n - strlen(s));
    P("</pre>\n");
    free(s);
}

/* --- the job -------------------------------------------------------- */

static void scalar(rep *r, const json_t *v);

/* A method's parameters as "name value" pairs that wrap. */
static void params(rep *r, const char *json)
{
    json_t *o = json_loads(json ? json : "{}", 0, NULL);
    const char *k;
    json_t *v;
    if (!json_is_object(o) || !json_object_size(o))
        P("<span class=\"muted\">(none)</span>");
    json_object_foreach(o, k, v) {
        P("<span class=\"kv\"><b>");
        E(k);
        P("</b>&#160;");
        if (json_is_real(v))
            P("%.6g", json_real_value(v));
        else
            scalar(r, v);
        P("</span> ");
    }
    json_decref(o);
}

static void job_section(rep *r)
{
    const sm_jobinfo *j = r->od->job;
    P("<section id=\"job\"><h2>Job</h2>\n");
    if (!j) {
        P("<p class=\"muted\">No job.json in this folder: only index.csv "
          "is described.</p></section>\n");
        return;
    }
    char buf[128];
    P("<table class=\"job\">\n");
    kv(r, "id", j->id);
    kv(r, "name", j->name);
    kv(r, "state", j->state);
    kv(r, "model", j->model);
    kv(r, "model hash", j->model_hash);
    if (j->config && strchr(j->config, '\n')) { /* the config's text */
        P("<tr><th>config</th><td><details><summary>the model's config"
          "</summary><pre>");
        E(j->config);
        P("</pre></details></td></tr>\n");
    } else
        kv(r, "config", j->config);
    kv(r, "dataset", j->dataset);
    snprintf(buf, sizeof buf, "%d \xc3\x97 %d \xc3\x97 %d (channels, height, "
                              "width)", j->channels, j->height, j->width);
    kv(r, "input", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)j->seed);
    kv(r, "seed", buf);
    kv(r, "target", j->target);
    kv(r, "score", j->score);
    kv(r, "metrics", j->metrics ? "deletion and insertion computed"
                                : "not computed (--no-metrics)");
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)j->images);
    kv(r, "images", buf);
    snprintf(buf, sizeof buf, "%llu written, %llu failed",
             (unsigned long long)j->maps, (unsigned long long)j->failed);
    kv(r, "maps", buf);
    P("<tr><th>started</th><td>");
    when(r, j->started);
    P("</td></tr>\n<tr><th>finished</th><td>");
    when(r, j->finished);
    P("</td></tr>\n");
    if (j->finished > 0) {
        snprintf(buf, sizeof buf, "%.1f s", j->finished - j->started);
        kv(r, "time", buf);
    }
    P("<tr><th>workers</th><td>");
    for (int k = 0; k < j->n_workers; k++) {
        P("%s", k ? ", " : "");
        E(j->workers[k]);
    }
    P("</td></tr>\n</table>\n");
    if (j->n_failures) { /* what a user must look at: named, not counted */
        P("<h3>Failed maps</h3>\n<table class=\"failures\" id=\"failures\">"
          "<tr><th>image</th><th>method</th><th>why</th></tr>\n");
        for (int k = 0; k < j->n_failures; k++) {
            P("<tr><td>");
            E(j->failures[k].id);
            P("</td><td>");
            E(j->failures[k].method);
            P("</td><td>");
            E(j->failures[k].error ? j->failures[k].error : "");
            P("</td></tr>\n");
        }
        P("</table>\n");
        if (j->failed > (uint64_t)j->n_failures)
            P("<p class=\"muted\">%llu more not named here.</p>\n",
              (unsigned long long)(j->failed - (uint64_t)j->n_failures));
    }
    P("<h3>Methods</h3>\n<table class=\"methods\">"
      "<tr><th>method</th><th>map</th><th>parameters</th></tr>\n");
    for (int m = 0; m < j->n_methods; m++) {
        P("<tr><td>");
        E(j->methods[m].name);
        P("</td><td>%s</td><td class=\"params\">",
          j->methods[m].signed_map ? "signed (diverging)" : "unsigned");
        params(r, j->methods[m].params);
        P("</td></tr>\n");
    }
    P("</table></section>\n");
}

static void figure_section(rep *r)
{
    char path[SM_OUTDIR_PATH];
    snprintf(path, sizeof path, "%s/figure.png", r->out);
    P("<section id=\"figure-section\"><h2>Figure</h2>\n");
    if (sm_outdir_exists(path))
        P("<p><a href=\"../figure.svg\"><img id=\"figure\" "
          "src=\"../figure.png\" alt=\"the maps of the chosen images, a "
          "column per method\"></a></p>\n<p class=\"muted\">A row per "
          "image, a column per method, one colour scale a column (its bar "
          "underneath). <a href=\"../figure.svg\">SVG</a>.</p>\n");
    else
        P("<p class=\"muted\">No figure.png yet (<code>salmap figure "
          "OUT</code> writes it).</p>\n");
    P("</section>\n");
}

/* --- metrics -------------------------------------------------------- */

typedef struct stat_cell {
    long n;
    double mean, sd; /* sd: sample standard deviation, NAN for n < 2 */
    double lo, hi;   /* equal values have sd 0, not a rounding residue */
} stat_cell;

/* stats[m * n_num + k]: method m, numeric column k (two passes: the
 * mean, then the squared deviations from it). */
static stat_cell *compute_stats(const rep *r)
{
    const sm_outdir *od = r->od;
    size_t cells = (size_t)od->n_methods * (size_t)r->n_num;
    stat_cell *s = calloc(cells ? cells : 1, sizeof *s);
    double *ss = calloc(cells ? cells : 1, sizeof *ss);
    if (!s || !ss) {
        free(s);
        free(ss);
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < od->n_images; i++)
            for (int m = 0; m < od->n_methods; m++) {
                size_t row = sm_outdir_row(od, i, m);
                for (int k = 0; row != SM_OUTDIR_NONE && k < r->n_num; k++) {
                    double v;
                    stat_cell *c = &s[(size_t)m * r->n_num + k];
                    if (!sm_csvtab_num(od->index, row, r->num[k], &v))
                        continue;
                    if (pass == 0) {
                        c->lo = c->n ? fmin(c->lo, v) : v;
                        c->hi = c->n ? fmax(c->hi, v) : v;
                        c->n++;
                        c->mean += v;
                    }
                    else
                        ss[(size_t)m * r->n_num + k] += (v - c->mean) * (v - c->mean);
                }
            }
        for (size_t c = 0; c < cells; c++)
            if (pass == 0 && s[c].n)
                s[c].mean = s[c].lo == s[c].hi ? s[c].lo
                                               : s[c].mean / (double)s[c].n;
            else if (pass == 1)
                s[c].sd = s[c].n < 2            ? NAN
                          : s[c].lo == s[c].hi ? 0
                                               : sqrt(ss[c] / (double)(s[c].n - 1));
    }
    free(ss);
    return s;
}

static void num_cell(rep *r, double v)
{
    if (isfinite(v))
        P("<td class=\"n\">%.4g</td>", v);
    else
        P("<td class=\"n muted\">&#8212;</td>");
}

static void metrics_section(rep *r, const stat_cell *s)
{
    const sm_outdir *od = r->od;
    P("<section id=\"metrics\"><h2>Metrics</h2>\n<p class=\"muted\">Per "
      "method, the mean and sample standard deviation of each numeric "
      "column of index.csv over the images that have it (docs/EXPLAIN.md "
      "says what each means: lower deletion AUC and higher insertion AUC "
      "are better).</p>\n<div class=\"grid\">\n");
    for (int m = 0; m < od->n_methods; m++) {
        P("<div class=\"card\"><h3>");
        E(od->methods[m].name);
        P("</h3><table class=\"metrics\" data-method=\"");
        E(od->methods[m].name);
        P("\"><tr><th>column</th><th>n</th><th>mean</th><th>sd</th></tr>\n");
        for (int k = 0; k < r->n_num; k++) {
            const stat_cell *c = &s[(size_t)m * r->n_num + k];
            if (!c->n)
                continue;
            P("<tr><td>");
            E(sm_csvtab_name(od->index, r->num[k]));
            P("</td><td class=\"n\">%ld</td>", c->n);
            num_cell(r, c->mean);
            num_cell(r, c->sd);
            P("</tr>\n");
        }
        P("</table></div>\n");
    }
    P("</div>\n<div class=\"grid\">\n");
    const char **names = calloc((size_t)od->n_methods + 1, sizeof *names);
    double *mean = calloc((size_t)od->n_methods + 1, sizeof *mean),
           *sd = calloc((size_t)od->n_methods + 1, sizeof *sd);
    int *have = calloc((size_t)od->n_methods + 1, sizeof *have);
    if (!names || !mean || !sd || !have)
        r->failed = 1;
    for (int k = 0; k < r->n_num && !r->failed; k++) {
        int any = 0;
        for (int m = 0; m < od->n_methods; m++) {
            const stat_cell *c = &s[(size_t)m * r->n_num + k];
            names[m] = od->methods[m].name;
            mean[m] = c->mean;
            sd[m] = c->sd;
            have[m] = c->n > 0;
            any |= have[m];
        }
        if (any)
            r->failed |= sm_plot_bars(&r->t, sm_csvtab_name(od->index, r->num[k]),
                                      names, mean, sd, have, od->n_methods) != 0;
    }
    free(names);
    free(mean);
    free(sd);
    free(have);
    P("</div></section>\n");
}

/* --- sanity --------------------------------------------------------- */

static int sanity_section(rep *r, sm_err *err)
{
    char path[SM_OUTDIR_PATH];
    snprintf(path, sizeof path, "%s/sanity.csv", r->out);
    if (!sm_outdir_exists(path))
        return 0;
    sm_csvtab *t = sm_csvtab_load(path, SANITY_MAX, err);
    if (!t)
        return -1;
    int cm = sm_csvtab_col(t, "method"), cs = sm_csvtab_col(t, "step"),
        cl = sm_csvtab_col(t, "layer"), cr = sm_csvtab_col(t, "spearman"),
        ca = sm_csvtab_col(t, "spearman_abs");
    if (cm < 0 || cs < 0 || cr < 0) {
        sm_err_set(err, "%s: no '%s' column in its header", path,
                   cm < 0 ? "method" : cs < 0 ? "step" : "spearman");
        sm_csvtab_destroy(&t);
        return -1;
    }
    size_t n = sm_csvtab_rows(t);
    /* a line (and a dashed |spearman| line) per method, in order of
     * first appearance; x is the step, the ticks name its layer */
    sm_plot_line *lines = calloc(2 * n + 1, sizeof *lines);
    double *xs = calloc(2 * n + 1, sizeof *xs), *ys = calloc(2 * n + 1, sizeof *ys);
    double *tx = calloc(n + 1, sizeof *tx);
    const char **tl = calloc(n + 1, sizeof *tl);
    int nl = 0, nt = 0, rc = 0;
    size_t used = 0;
    if (!lines || !xs || !ys || !tx || !tl)
        rc = sm_err_set(err, "%s: out of memory", path);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *m = sm_csvtab_get(t, i, cm);
        int seen = 0;
        for (int k = 0; k < nl && !seen; k++)
            seen = !strcmp(lines[k].name, m);
        if (seen)
            continue;
        for (int pass = 0; pass < (ca >= 0 ? 2 : 1); pass++) {
            sm_plot_line *l = &lines[nl++];
            l->name = pass ? "|spearman|" : m;
            l->x = xs + used;
            l->y = ys + used;
            l->dashed = pass;
            l->colour = (nl - 1) / (ca >= 0 ? 2 : 1);
            for (size_t j = i; j < n; j++) {
                double x, y;
                if (strcmp(sm_csvtab_get(t, j, cm), m) ||
                    !sm_csvtab_num(t, j, cs, &x) ||
                    !sm_csvtab_num(t, j, pass ? ca : cr, &y))
                    continue;
                xs[used] = x;
                ys[used++] = y;
                l->n++;
                int tick = 0;
                for (int q = 0; q < nt && !tick; q++)
                    tick = tx[q] == x;
                if (!tick && nt < (int)n) {
                    tx[nt] = x;
                    tl[nt++] = cl >= 0 && *sm_csvtab_get(t, j, cl)
                                   ? sm_csvtab_get(t, j, cl)
                                   : sm_csvtab_get(t, j, cs);
                }
            }
        }
    }
    if (rc == 0) {
        /* the dashed lines share a legend entry per method's colour, so
         * name them after it */
        char (*names)[96] = calloc((size_t)nl + 1, sizeof *names);
        for (int k = 0; names && k < nl; k++)
            if (lines[k].dashed) {
                snprintf(names[k], sizeof names[k], "%s |\xcf\x81|",
                         lines[k - 1].name);
                lines[k].name = names[k];
            }
        P("<section id=\"sanity\"><h2>Sanity check</h2>\n<p class=\"muted\">"
          "Spearman rank correlation between each method's maps on the "
          "trained model and on the model with its layers randomised step "
          "by step (OUT/sanity.csv; solid: signed maps, dashed: absolute "
          "values). A method whose maps depend on the model falls towards "
          "0.</p>\n");
        r->failed |= sm_plot_lines(&r->t, "Spearman vs randomisation step",
                                   "Spearman", lines, nl, -1, 1, tx, tl,
                                   nt) != 0;
        P("<details><summary>sanity.csv</summary><table class=\"sanity\"><tr>");
        for (int c = 0; c < sm_csvtab_cols(t); c++) {
            P("<th>");
            E(sm_csvtab_name(t, c));
            P("</th>");
        }
        P("</tr>\n");
        for (size_t i = 0; i < n; i++) {
            P("<tr>");
            for (int c = 0; c < sm_csvtab_cols(t); c++) {
                P("<td>");
                E(sm_csvtab_get(t, i, c));
                P("</td>");
            }
            P("</tr>\n");
        }
        P("</table></details></section>\n");
        free(names);
    }
    free(lines);
    free(xs);
    free(ys);
    free(tx);
    free(tl);
    sm_csvtab_destroy(&t);
    return rc;
}

/* --- the image table ------------------------------------------------ */

/* {"methods": [...], "metrics": [...], "images": [[id, label, predicted,
 * target], ...], "values": [per metric: a flat images x methods array,
 * null where missing]} */
static void table_data(rep *r)
{
    const sm_outdir *od = r->od;
    json_t *d = json_object(), *ms = json_array(), *ks = json_array(),
           *im = json_array(), *vs = json_array();
    for (int m = 0; m < od->n_methods; m++)
        json_array_append_new(ms, json_string(od->methods[m].name));
    for (int k = 0; k < r->n_num; k++)
        json_array_append_new(ks, json_string(sm_csvtab_name(od->index,
                                                             r->num[k])));
    for (size_t i = 0; i < od->n_images; i++) {
        const sm_outdir_image *x = &od->images[i];
        json_array_append_new(im, json_pack("[s,s,s,s]", x->id, x->label,
                                            x->predicted, x->target));
    }
    for (int k = 0; k < r->n_num; k++) {
        json_t *col = json_array();
        for (size_t i = 0; i < od->n_images; i++)
            for (int m = 0; m < od->n_methods; m++) {
                size_t row = sm_outdir_row(od, i, m);
                double v;
                json_array_append_new(
                    col, row != SM_OUTDIR_NONE &&
                                 sm_csvtab_num(od->index, row, r->num[k], &v)
                             ? json_real(v)
                             : json_null());
            }
        json_array_append_new(vs, col);
    }
    json_object_set_new(d, "methods", ms);
    json_object_set_new(d, "metrics", ks);
    json_object_set_new(d, "images", im);
    json_object_set_new(d, "values", vs);
    char *s = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(6));
    json_decref(d);
    if (!s) {
        r->failed = 1;
        return;
    }
    P("<script id=\"data\" type=\"application/json\">");
    r->failed |= sm_html_script_json(&r->t, s) != 0;
    P("</script>\n");
    free(s);
}

/* Sorting, filtering and paging the image table; text goes in through
 * textContent only. */
static const char table_js[] =
    "(function(){\n"
    "var D=JSON.parse(document.getElementById('data').textContent);\n"
    "var M=D.methods,K=D.metrics,I=D.images,PAGE=%d;\n"
    "var metric=0,col=0,dir=1,page=0,rows=[];\n"
    "var tbl=document.getElementById('images'),filt=document.getElementById"
    "('filter'),sel=document.getElementById('metric'),pager=document."
    "getElementById('pager');\n"
    "function val(i,c){if(c<4)return I[i][c];if(!K.length)return null;"
    "return D.values[metric][i*M.length+c-4];}\n"
    "function num(s){return typeof s==='string'&&s!==''&&isFinite(s)?"
    "Number(s):null;}\n"
    "function cmp(a,b){var x=val(a,col),y=val(b,col);"
    "if(x===null||x==='')return(y===null||y==='')?a-b:1;"
    "if(y===null||y==='')return -1;"
    "var nx=typeof x==='number'?x:num(x),ny=typeof y==='number'?y:num(y);"
    "var c=(nx!==null&&ny!==null)?nx-ny:(x<y?-1:x>y?1:0);"
    "return c?c*dir:a-b;}\n"
    "function href(id){return 'images/'+id.split('/').map("
    "encodeURIComponent).join('/')+'.html';}\n"
    "function refilter(){var f=filt.value.toLowerCase();rows=[];"
    "for(var i=0;i<I.length;i++){if(!f||I[i].join(' ').toLowerCase()."
    "indexOf(f)>=0)rows.push(i);}rows.sort(cmp);page=0;draw();}\n"
    "function cell(tr,text,cls){var td=document.createElement('td');"
    "td.textContent=text;if(cls)td.className=cls;tr.appendChild(td);"
    "return td;}\n"
    "function draw(){var th=tbl.tHead.rows[0];th.textContent='';"
    "var heads=['id','label','predicted','target'].concat(M);"
    "heads.forEach(function(h,c){var e=document.createElement('th');"
    "e.className='sort';e.textContent=h+(c===col?(dir>0?' \\u25b2':"
    "' \\u25bc'):'');e.onclick=function(){if(col===c)dir=-dir;else{col=c;"
    "dir=1;}rows.sort(cmp);draw();};th.appendChild(e);});\n"
    "var tb=tbl.tBodies[0];tb.textContent='';"
    "var n=Math.max(1,Math.ceil(rows.length/PAGE));if(page>=n)page=n-1;"
    "rows.slice(page*PAGE,page*PAGE+PAGE).forEach(function(i){"
    "var tr=document.createElement('tr');var a=document.createElement('a');"
    "a.href=href(I[i][0]);a.textContent=I[i][0];cell(tr,'').appendChild(a);"
    "for(var c=1;c<4;c++)cell(tr,I[i][c],c===2&&I[i][1]!==''&&I[i][1]!=="
    "I[i][2]?'bad':'');"
    "for(var m=0;m<M.length;m++){var v=val(i,4+m);cell(tr,v===null?"
    "'\\u2014':Number(v).toPrecision(4),'n');}tb.appendChild(tr);});\n"
    "pager.textContent='';var p=document.createElement('button');"
    "p.textContent='previous';p.disabled=page===0;p.onclick=function(){"
    "page--;draw();};var q=document.createElement('button');"
    "q.textContent='next';q.disabled=page>=n-1;q.onclick=function(){"
    "page++;draw();};pager.appendChild(p);pager.appendChild(q);"
    "pager.appendChild(document.createTextNode('page '+(page+1)+' of '+n+"
    "', '+rows.length+' of '+I.length+' images'));}\n"
    "K.forEach(function(k,j){var o=document.createElement('option');"
    "o.value=j;o.textContent=k;sel.appendChild(o);});"
    "var d=K.indexOf('deletion_auc');if(d>=0){metric=d;sel.value=d;}\n"
    "sel.onchange=function(){metric=Number(sel.value);rows.sort(cmp);draw();};"
    "filt.oninput=refilter;\n"
    /* index.html#filter=TEXT opens filtered (a link to a subset) */
    "var h=location.hash.match(/^#filter=(.*)$/);"
    "if(h)filt.value=decodeURIComponent(h[1]);refilter();\n"
    "})();\n";

static void images_section(rep *r)
{
    P("<section id=\"images-section\"><h2>Images</h2>\n<p>"
      "<label>filter <input id=\"filter\" type=\"search\" "
      "placeholder=\"id, label, class\"></label> "
      "<label>per method: <select id=\"metric\"></select></label></p>\n"
      "<table id=\"images\" data-images=\"%zu\"><thead><tr></tr></thead>"
      "<tbody></tbody></table>\n<p id=\"pager\"></p>\n"
      "<noscript><p>The table needs JavaScript; every image has a page "
      "under images/.</p></noscript>\n",
      r->od->n_images);
    table_data(r);
    P("<script>");
    P(table_js, SM_REPORT_PAGE_ROWS);
    P("</script></section>\n");
}

static int write_index(rep *r, sm_err *err)
{
    stat_cell *s = compute_stats(r);
    if (!s)
        return sm_err_set(err, "%s/report: out of memory", r->out);
    const sm_jobinfo *j = r->od->job;
    head(r, j && j->name ? j->name : "salmap report");
    P("<header><h1>salmap report</h1><p class=\"muted\">");
    E(r->out);
    if (j && j->name) {
        P(" &#8212; ");
        E(j->name);
    }
    P(" &#8212; %zu images, %d methods</p>\n<nav><a href=\"#job\">job</a> "
      "&#183; <a href=\"#figure-section\">figure</a> &#183; <a "
      "href=\"#metrics\">metrics</a> &#183; <a href=\"#images-section\">"
      "images</a></nav></header>\n",
      r->od->n_images, r->od->n_methods);
    job_section(r);
    figure_section(r);
    metrics_section(r, s);
    free(s);
    int rc = sanity_section(r, err);
    if (rc) {
        sm_text_free(&r->t);
        return rc;
    }
    images_section(r);
    P("</body></html>\n");
    char path[SM_OUTDIR_PATH];
    snprintf(path, sizeof path, "%s/report/index.html", r->out);
    return write_page(r, path, err);
}

/* --- an image's page ------------------------------------------------ */

/* "../" n times */
static void up(rep *r, int n)
{
    for (int k = 0; k < n; k++)
        P("../");
}

/* A premise of a rule: {superpixel, shown} or {dim, gt, le}, else JSON. */
static void premise(rep *r, const json_t *p)
{
    const json_t *sp = json_object_get(p, "superpixel"),
                 *dim = json_object_get(p, "dim");
    if (json_is_integer(sp)) {
        P("superpixel %lld %s", (long long)json_integer_value(sp),
          json_is_true(json_object_get(p, "shown")) ? "shown" : "hidden");
        return;
    }
    if (json_is_integer(dim)) {
        const json_t *gt = json_object_get(p, "gt"), *le = json_object_get(p, "le");
        if (json_is_number(gt))
            P("%.4g &lt; ", json_number_value(gt));
        P("z<sub>%lld</sub>", (long long)json_integer_value(dim));
        if (json_is_number(le))
            P(" &#8804; %.4g", json_number_value(le));
        return;
    }
    char *s = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
    P("<code>");
    E(s ? s : "?");
    P("</code>");
    free(s);
}

static void premises(rep *r, const json_t *ps)
{
    size_t k;
    const json_t *p;
    if (!json_array_size(ps)) {
        P("(always)");
        return;
    }
    json_array_foreach(ps, k, p) {
        P("%s", k ? " <b>and</b> " : "");
        premise(r, p);
    }
}

/* A JSON scalar as text (strings unquoted), escaped. */
static void scalar(rep *r, const json_t *v)
{
    if (json_is_string(v)) {
        E(json_string_value(v));
        return;
    }
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    E(s ? s : "?");
    free(s);
}

/* What a person reads first of a record: an anchor, a rule and its
 * counterfactuals (lore's and abele's), by the keys they have. */
static void record_view(rep *r, const json_t *rec)
{
    const json_t *anchor = json_object_get(rec, "anchor"),
                 *rule = json_object_get(rec, "rule"),
                 *cf = json_object_get(rec, "counterfactuals");
    if (json_is_array(anchor)) {
        size_t k;
        const json_t *v;
        P("<p><b>Anchor</b>: superpixels ");
        json_array_foreach(anchor, k, v) {
            P("%s", k ? ", " : "");
            scalar(r, v);
        }
        if (!json_array_size(anchor))
            P("(none: the empty anchor)");
        P(" &#8212; precision ");
        scalar(r, json_object_get(rec, "precision"));
        P(", coverage ");
        scalar(r, json_object_get(rec, "coverage"));
        if (json_is_false(json_object_get(rec, "found")))
            P(" <span class=\"bad\">(no anchor reached the threshold: the "
              "best found)</span>");
        P("</p>\n");
    }
    if (json_is_object(rule)) {
        P("<p><b>Rule</b>: if ");
        premises(r, json_object_get(rule, "premises"));
        P(" then <b>");
        scalar(r, json_object_get(rule, "label"));
        P("</b>");
        if (json_object_get(rec, "fidelity")) {
            P(" (fidelity ");
            scalar(r, json_object_get(rec, "fidelity"));
            P(")");
        }
        P("</p>\n");
    }
    if (json_is_array(cf)) {
        size_t k;
        const json_t *c;
        P("<p><b>Counterfactuals</b> (%zu):</p><ol class=\"cf\">\n",
          json_array_size(cf));
        json_array_foreach(cf, k, c) {
            P("<li>if ");
            premises(r, json_object_get(c, "premises"));
            P(" then <b>");
            scalar(r, json_object_get(c, "label"));
            P("</b> (the model: ");
            scalar(r, json_object_get(c, "model_label"));
            P(", cost ");
            scalar(r, json_object_get(c, "cost"));
            P(")</li>\n");
        }
        P("</ol>\n");
    }
}

/* The names N of maps/<id>/<method>.N.png (not "overlay"), sorted. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **extra_pngs(const rep *r, const char *id, const char *method,
                         int *n)
{
    char dir[SM_OUTDIR_PATH];
    *n = 0;
    if (snprintf(dir, sizeof dir, "%s/maps/%s", r->out, id) >= (int)sizeof dir)
        return NULL;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    size_t ml = strlen(method);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= ml + 5 || strncmp(e->d_name, method, ml) ||
            e->d_name[ml] != '.' || strcmp(e->d_name + l - 4, ".png") ||
            !strcmp(e->d_name + ml, ".overlay.png"))
            continue;
        char **g = realloc(v, (size_t)(*n + 1) * sizeof *g);
        if (!g)
            break;
        v = g;
        if ((v[*n] = strndup(e->d_name + ml + 1, l - ml - 5)))
            (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(v, (size_t)*n, sizeof *v, cmp_str);
    return v;
}

/* <figure> of maps/<id>/<file> when it exists. */
static int map_img(rep *r, int depth, const char *id, const char *file,
                   const char *caption, const char *cls)
{
    char path[SM_OUTDIR_PATH];
    if (sm_outdir_path(r->od, path, id, file) || !sm_outdir_exists(path))
        return 0;
    P("<figure><img class=\"%s\" src=\"", cls);
    up(r, depth);
    P("maps/");
    U(id);
    P("/");
    U(file);
    P("\" alt=\"");
    E(caption);
    P("\"><figcaption>");
    E(caption);
    P("</figcaption></figure>\n");
    return 1;
}

static json_t *load_record(const rep *r, const char *id, const char *method,
                           int *absent)
{
    char path[SM_OUTDIR_PATH], file[128];
    size_t len;
    snprintf(file, sizeof file, "%s.json", method);
    *absent = sm_outdir_path(r->od, path, id, file) || !sm_outdir_exists(path);
    if (*absent)
        return NULL;
    unsigned char *buf = sm_file_read(path, RECORD_READ_MAX, &len, NULL);
    json_t *v = buf ? json_loadb((const char *)buf, len, 0, NULL) : NULL;
    free(buf);
    return v;
}

static void method_block(rep *r, size_t i, int m, int depth)
{
    const sm_outdir *od = r->od;
    const char *id = od->images[i].id, *name = od->methods[m].name;
    size_t row = sm_outdir_row(od, i, m);
    P("<section class=\"method\" id=\"m-");
    E(name);
    P("\"><h2>");
    E(name);
    P("</h2>\n");
    if (row == SM_OUTDIR_NONE) {
        P("<p class=\"bad\">No map: this (image, method) failed or was not "
          "computed.</p></section>\n");
        return;
    }
    P("<table class=\"row\">");
    for (int k = 0; k < r->n_num; k++) {
        const char *v = sm_csvtab_get(od->index, row, r->num[k]);
        if (!*v)
            continue;
        P("<tr><th>");
        E(sm_csvtab_name(od->index, r->num[k]));
        P("</th><td class=\"n\">");
        E(v);
        P("</td></tr>");
    }
    P("</table>\n");
    int n = 0, absent;
    char **extra = extra_pngs(r, id, name, &n);
    json_t *rec = load_record(r, id, name, &absent);
    if (rec)
        record_view(r, rec);
    if (n) {
        P("<div class=\"grid\">");
        for (int k = 0; k < n; k++) {
            char file[300], cap[300];
            snprintf(file, sizeof file, "%s.%s.png", name, extra[k]);
            snprintf(cap, sizeof cap, "%s: %s", name, extra[k]);
            map_img(r, depth, id, file, cap, "strip");
        }
        P("</div>\n");
    }
    for (int k = 0; k < n; k++)
        free(extra[k]);
    free(extra);
    if (absent)
        P("<p class=\"muted\">No record.</p>\n");
    else if (!rec)
        P("<p class=\"bad\">The record does not parse as JSON.</p>\n");
    else {
        P("<details%s><summary>record (", json_object_get(rec, "rule") ||
                                                  json_object_get(rec, "anchor")
                                              ? ""
                                              : " open");
        E(name);
        P(".json)</summary>\n");
        pretty(r, rec);
        P("</details>\n");
    }
    json_decref(rec);
    P("</section>\n");
}

static int write_image(rep *r, size_t i, sm_err *err)
{
    const sm_outdir *od = r->od;
    const sm_outdir_image *im = &od->images[i];
    int depth = 2; /* report/images/ */
    for (const char *p = im->id; *p; p++)
        depth += *p == '/';
    head(r, im->id);
    P("<nav><a href=\"");
    up(r, depth - 1);
    P("index.html\">report</a>");
    for (int k = -1; k <= 1; k += 2) {
        if ((k < 0 && i == 0) || (k > 0 && i + 1 >= od->n_images))
            continue;
        P(" &#183; <a href=\"");
        up(r, depth - 1);
        P("images/");
        U(od->images[i + k].id);
        P(".html\">%s</a>", k < 0 ? "previous" : "next");
    }
    P("</nav>\n<h1>");
    E(im->id);
    P("</h1>\n<p>label <b>");
    E(*im->label ? im->label : "(none)");
    P("</b> &#183; predicted <b%s>", *im->label && strcmp(im->label,
                                                           im->predicted)
                                         ? " class=\"bad\""
                                         : "");
    E(im->predicted);
    P("</b> &#183; explained class <b>");
    E(im->target);
    P("</b></p>\n<div class=\"grid maps\">\n");
    int shown = map_img(r, depth, im->id, "input.png", "input", "map");
    for (int m = 0; m < od->n_methods; m++) {
        char file[128], cap[128];
        const char *name = od->methods[m].name;
        snprintf(file, sizeof file, "%s.png", name);
        shown += map_img(r, depth, im->id, file, name, "map");
        snprintf(file, sizeof file, "%s.overlay.png", name);
        snprintf(cap, sizeof cap, "%s over the input", name);
        shown += map_img(r, depth, im->id, file, cap, "map");
    }
    P("</div>\n");
    if (!shown)
        P("<p class=\"muted\">No PNGs in maps/ for this image (the render "
          "pass writes them; the maps are the .npy files).</p>\n");
    for (int m = 0; m < od->n_methods; m++)
        method_block(r, i, m, depth);
    P("</body></html>\n");
    char path[SM_OUTDIR_PATH], *slash;
    if (snprintf(path, sizeof path, "%s/report/images/%s.html", r->out,
                 im->id) >= (int)sizeof path) {
        sm_text_free(&r->t);
        return sm_err_set(err, "%s: image '%s': path too long", r->out, im->id);
    }
    slash = strrchr(path, '/');
    *slash = '\0';
    int rc = sm_file_mkdirs(path, err);
    *slash = '/';
    if (rc) {
        sm_text_free(&r->t);
        return -1;
    }
    return write_page(r, path, err);
}

static int is_cost(const char *column)
{
    return !strcmp(column, "score") || !strcmp(column, "seconds") ||
           !strcmp(column, "evals");
}

int sm_report_write(const char *out, sm_err *err)
{
    rep r = {.out = out};
    char dir[SM_OUTDIR_PATH];
    int rc = (r.od = sm_outdir_open(out, err)) ? 0 : -1;
    if (rc == 0) {
        int cols = sm_csvtab_cols(r.od->index);
        r.num = calloc((size_t)cols, sizeof *r.num);
        if (!r.num)
            rc = sm_err_set(err, "%s: out of memory", out);
        /* the metrics first, then what a map cost and the score */
        for (int pass = 0; pass < 2; pass++)
            for (int c = 0; rc == 0 && c < cols; c++)
                if (is_cost(sm_csvtab_name(r.od->index, c)) == pass &&
                    sm_outdir_numeric(r.od, c))
                    r.num[r.n_num++] = c;
    }
    if (rc == 0 && snprintf(dir, sizeof dir, "%s/report/images", out) >=
                       (int)sizeof dir)
        rc = sm_err_set(err, "%s: path too long", out);
    if (rc == 0)
        rc = sm_file_mkdirs(dir, err);
    if (rc == 0)
        rc = write_index(&r, err);
    for (size_t i = 0; rc == 0 && i < r.od->n_images; i++)
        rc = write_image(&r, i, err);
    if (rc == 0)
        rc = sm_file_sync_fs(out, err);
    sm_text_free(&r.t);
    free(r.num);
    sm_outdir_destroy(&r.od);
    return rc;
}
