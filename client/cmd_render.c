/* salmap render: the PNGs of an output folder (render/render_out.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "data/image.h"
#include "render/image.h"
#include "render/render_out.h"

static const char usage[] =
    "usage: salmap render OUT [--scale map|job] [--zoom N] [--tiles N]\n"
    "                         [--threads N]\n"
    "\n"
    "Draws the PNGs of the output folder OUT of `salmap explain` beside its\n"
    "maps (docs/OUTPUTS.md): OUT/maps/<id>/input.png, <method>.png (the map\n"
    "on its colour scale: viridis, or blue-white-red for signed methods),\n"
    "<method>.overlay.png (the map over the input in grey), anchor.kept.png,\n"
    "lore.rule.png, abele.exemplars.png and abele.counter_exemplars.png.\n"
    "It reads OUT/job.json for the input size, the dataset (to show the\n"
    "inputs: without it, the maps alone) and which maps are signed. Started\n"
    "again with the same options, it keeps the PNGs newer than their maps.\n"
    "A map with NaN or inf gets no PNG: it is reported and the exit status\n"
    "is 3.\n"
    "\n"
    "options:\n"
    "  --scale map    each map on its own scale, [min, max] (or [-m, m] when\n"
    "                 signed): its record's \"scale\" (default)\n"
    "  --scale job    each method on one scale over all of OUT's maps, so\n"
    "                 that maps compare; the scales go to OUT/scales.csv\n"
    "  --zoom N       each map pixel an N x N block (default: the smallest N\n"
    "                 making the longer side >= 224 pixels; 8 for 28 x 28)\n"
    "  --tiles N      exemplars shown in abele's strips at most (default 10)\n"
    "  --threads N    images drawn at once (default: the cores)\n"
    "  --help         this text\n";

static void print_line(const char *line, void *u)
{
    (void)u;
    fprintf(stderr, "salmap render: %s\n", line);
}

/* optarg as an integer 1..max into *v; -1 (told) when it is not one. */
static int int_opt(const char *opt, long max, int *v)
{
    long n = sm_cli_positive(optarg);
    char what[48];
    if (n >= 1 && n <= max) {
        *v = (int)n;
        return 0;
    }
    snprintf(what, sizeof what, "an integer 1..%ld", max);
    sm_cli_bad("render", opt, optarg, what);
    return -1;
}

int sm_cli_render(int argc, char **argv)
{
    static const struct option longs[] = {
        {"scale", required_argument, 0, 's'},
        {"zoom", required_argument, 0, 'z'},
        {"tiles", required_argument, 0, 't'},
        {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sm_render_opts o;
    sm_render_opts_init(&o);
    o.threads = sm_cli_threads();
    o.report = print_line;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            if (sm_render_scale_parse(optarg, &o.scale))
                return sm_cli_bad("render", "--scale", optarg, "map or job");
            break;
        case 'z':
            if (int_opt("--zoom", SM_RENDER_MAX_ZOOM, &o.zoom))
                return 2;
            break;
        case 't':
            if (int_opt("--tiles", 100000, &o.tiles))
                return 2;
            break;
        case 'j':
            if (int_opt("--threads", 64, &o.threads))
                return 2;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        sm_cli_fail("render", optind < argc ? "one output folder, not more "
                    "(see --help)" : "needs the output folder OUT (see "
                    "--help)");
        return 2;
    }
    const char *out = argv[optind];
    struct stat sb;
    char job[4096];
    if (stat(out, &sb) || !S_ISDIR(sb.st_mode))
        return sm_cli_fail("render", "%s: no such folder", out);
    snprintf(job, sizeof job, "%s/job.json", out);
    if (stat(job, &sb))
        return sm_cli_fail("render", "%s: no job.json: not the output folder "
                           "of a job (salmap explain --out %s writes it)",
                           out, out);
    sm_err err = {0};
    if (sm_vips_init(argv[0], &err))
        return sm_cli_fail("render", "%s", err.msg);
    sm_render_stats st;
    if (sm_render_out(out, &o, &st, &err))
        return sm_cli_fail("render", "%s", err.msg);
    printf("salmap render: %s: %zu images, %zu maps: %zu PNGs written, %zu "
           "up to date (zoom %d, %s scales)%s in %.2f s\n", out, st.images,
           st.maps, st.written, st.skipped, st.zoom,
           sm_render_scale_name(o.scale),
           st.no_dataset ? ", maps alone (no dataset)" : "",
           st.seconds);
    if (st.bad || st.failed) {
        fprintf(stderr, "salmap render: %zu maps with NaN or inf and %zu "
                "others could not be drawn (above)\n", st.bad, st.failed);
        return 3;
    }
    return 0;
}
