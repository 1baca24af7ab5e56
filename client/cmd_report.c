/* salmap report: an output folder's HTML pages (report/report.h). */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "report/report.h"

static const char usage[] =
    "usage: salmap report OUT\n"
    "\n"
    "Writes OUT/report/index.html, a static page about the job whose output\n"
    "folder OUT is (its settings, the figure, per-method metrics with plots,\n"
    "the sanity check when OUT/sanity.csv exists, a table of the images),\n"
    "and OUT/report/images/<id>.html, a page per image with its maps and\n"
    "records. The pages need no network or server: open index.html in a\n"
    "browser. See docs/OUTPUTS.md.\n"
    "\n"
    "options:\n"
    "  --help   this text\n";

int sm_cli_report(int argc, char **argv)
{
    static const struct option longs[] = {{"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        fputs(usage, stderr);
        return 2;
    }
    if (sm_cli_one_folder("report", argc, optind))
        return 2;
    sm_err err = {0};
    if (sm_report_write(argv[optind], &err))
        return sm_cli_fail("report", "%s", err.msg);
    printf("%s/report/index.html\n", argv[optind]);
    return 0;
}
