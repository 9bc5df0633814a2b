/* `motscale compare BASELINE.h5 CANDIDATE.h5`: the arguments, the two run records,
 * then the analysis's table or JSON (analysis_compare_print). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/runread.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale compare BASELINE.h5 CANDIDATE.h5 [--metric train|eval]\n"
            "                        [--smooth WINDOW] [--json]\n\n"
            "Step matching and equal-loss points of CANDIDATE against BASELINE (run.h5\n"
            "files), overall and per modality (docs/analysis.md).\n\n"
            "  --metric train|eval  training loss (default) or held-out loss (never smoothed)\n"
            "  --smooth WINDOW      training-loss smoother: debiased EMA with time constant\n"
            "                       WINDOW x step (default %g; 0 turns it off)\n"
            "  --json               every number as JSON on stdout instead of the table\n\n"
            "Exit status: 0 done, 2 bad arguments or a missing or malformed run file.\n",
            SMOOTH_DEFAULT);
}

int cmd_compare(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *paths[2] = {NULL, NULL};
    int npaths = 0;
    analysis_metric_t metric = ANALYSIS_TRAIN;
    double window = SMOOTH_DEFAULT;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--metric") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "train"))
                metric = ANALYSIS_TRAIN;
            else if (!strcmp(v, "eval"))
                metric = ANALYSIS_EVAL;
            else {
                fprintf(stderr, "motscale compare: --metric is train or eval, not '%s'\n", v);
                return EXIT_BADINPUT;
            }
        } else if (!strcmp(argv[i], "--smooth") && i + 1 < argc) {
            char *end;
            window = strtod(argv[++i], &end);
            if (*end || !(window >= 0) || !isfinite(window)) {
                fprintf(stderr, "motscale compare: --smooth takes a number >= 0, not '%s'\n",
                        argv[i]);
                return EXIT_BADINPUT;
            }
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "motscale compare: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_BADINPUT;
        } else if (npaths < 2) {
            paths[npaths++] = argv[i];
        } else {
            fprintf(stderr, "motscale compare: one baseline and one candidate, not more\n");
            return EXIT_BADINPUT;
        }
    }
    if (npaths != 2) {
        usage(stderr);
        return EXIT_BADINPUT;
    }
    runrec_t runs[2];
    char err[1024];
    for (int k = 0; k < 2; k++) {
        if (!runrec_load(paths[k], &runs[k], err, sizeof err)) {
            fprintf(stderr, "motscale compare: %s\n", err);
            if (k)
                runrec_free(&runs[0]);
            return EXIT_BADINPUT;
        }
    }
    int status = EXIT_OK;
    if (metric == ANALYSIS_EVAL && (runs[0].n_eval == 0 || runs[1].n_eval == 0)) {
        fprintf(stderr, "motscale compare: --metric eval needs held-out evaluations, and %s "
                        "has none (log.eval_every)\n",
                runs[0].n_eval == 0 ? paths[0] : paths[1]);
        status = EXIT_BADINPUT;
    } else {
        analysis_compare_print(stdout, &runs[0], &runs[1], metric, window, json);
    }
    runrec_free(&runs[0]);
    runrec_free(&runs[1]);
    return status;
}
