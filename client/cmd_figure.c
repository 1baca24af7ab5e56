/* salmap figure: the comparison figure of an output folder
 * (report/figure.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data/image.h"
#include "report/figure.h"

static const char usage[] =
    "usage: salmap figure OUT [--ids A,B | --per-class K | --first N]\n"
    "                         [--methods M1,M2]\n"
    "\n"
    "Writes OUT/figure.png and OUT/figure.svg: a row per chosen image (its\n"
    "input, titled with its label and the model's prediction), a column per\n"
    "method, each map on its method's colour map with one scale a column\n"
    "(a colour bar under it gives its ends). OUT is a folder salmap explain\n"
    "or salmap fetch wrote (docs/OUTPUTS.md).\n"
    "\n"
    "options:\n"
    "  --ids A,B        these images (ids as in OUT/index.csv), in this order\n"
    "  --per-class K    the first K images of each label\n"
    "  --first N        the first N images\n"
    "                   (default: one image per class, for the first 20\n"
    "                   classes, when the images have labels; else the\n"
    "                   first 10; at most 100 rows)\n"
    "  --methods M1,M2  these methods as columns, in this order (default:\n"
    "                   every method of the job that has maps)\n"
    "  --help           this text\n";

int sm_cli_figure(int argc, char **argv)
{
    static const struct option longs[] = {
        {"ids", required_argument, 0, 'i'},
        {"per-class", required_argument, 0, 'k'},
        {"first", required_argument, 0, 'f'},
        {"methods", required_argument, 0, 'm'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sm_figure_opts o = {0};
    int chosen = 0, c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'i': o.ids = optarg; chosen++; break;
        case 'k':
        case 'f':
            if ((v = sm_cli_positive(optarg)) < 0 || v > 100000)
                return sm_cli_bad("figure", c == 'k' ? "--per-class" : "--first",
                                  optarg, "a positive integer");
            *(c == 'k' ? &o.per_class : &o.first) = (int)v;
            chosen++;
            break;
        case 'm': o.methods = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (sm_cli_one_folder("figure", argc, optind))
        return 2;
    if (chosen > 1) {
        sm_cli_fail("figure", "--ids, --per-class and --first choose the "
                              "images: give one of them");
        return 2;
    }
    sm_err err = {0};
    if (sm_vips_init(argv[0], &err) ||
        sm_report_figure(argv[optind], &o, &err))
        return sm_cli_fail("figure", "%s", err.msg);
    printf("%s/figure.png\n%s/figure.svg\n", argv[optind], argv[optind]);
    return 0;
}
