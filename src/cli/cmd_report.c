/* `motscale report RESULTS_DIR [--out OUTDIR]`: the arguments, then the analysis's
 * report (analysis_report_write) with the default smoothing and bootstrap. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "motscale/analysis.h"
#include "motscale/cli.h"
#include "motscale/common.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale report RESULTS_DIR [--out OUTDIR]\n\n"
            "Finds every run.h5 under RESULTS_DIR, groups runs by experiment and configuration\n"
            "(runs that differ only in run.seed are its seeds), compares each mot/towers\n"
            "configuration with the dense one of the same experiment and size (seeds paired,\n"
            "every number with a 95%% interval), fits scaling laws, and writes OUTDIR/report.md\n"
            "with PNG and SVG figures rendered by gnuplot (method: docs/analysis.md).\n\n"
            "  --out OUTDIR, -o OUTDIR  where the report goes (default RESULTS_DIR/report)\n\n"
            "Exit status: 0 done, 1 figures could not be rendered (no gnuplot, or it failed),\n"
            "2 bad arguments or no readable run file.\n");
}

int cmd_report(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *dir = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o")) && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "motscale report: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_BADINPUT;
        } else if (!dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "motscale report: one RESULTS_DIR, not '%s' as well\n", argv[i]);
            return EXIT_BADINPUT;
        }
    }
    if (!dir) {
        usage(stderr);
        return EXIT_BADINPUT;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "motscale report: %s: not a folder\n", dir);
        return EXIT_BADINPUT;
    }
    char outbuf[4096];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "%s/report", dir);
        out = outbuf;
    }
    analysis_opts_t o = {.metric = ANALYSIS_TRAIN, .window = SMOOTH_DEFAULT,
                         .resamples = ANALYSIS_RESAMPLES, .seed = 1};
    return analysis_report_write(dir, out, &o);
}
