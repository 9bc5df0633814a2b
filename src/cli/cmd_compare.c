/* `motscale compare BASELINE.h5 CANDIDATE.h5...` and `motscale compare --dir DIR
 * --baseline KEY=VALUE`: the arguments, the run records grouped into configurations
 * (seeds together), each candidate configuration against its baseline, then the
 * analysis's table or JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/cli.h"
#include "motscale/common.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale compare BASELINE.h5 CANDIDATE.h5 [CANDIDATE.h5 ...] [options]\n"
            "       motscale compare --dir DIR --baseline section.key=value [options]\n\n"
            "Step matching and equal-loss points of every candidate against the baseline,\n"
            "overall and per modality, each number with a 95%% interval (docs/analysis.md).\n"
            "Runs whose configurations differ only in run.seed are seeds of one configuration:\n"
            "with several, intervals are over the paired seeds; with one, a moving-block\n"
            "bootstrap of the loss curves. Given files, those with the first file's\n"
            "configuration are baseline seeds, the others candidates. With --dir, every run.h5\n"
            "under DIR; configurations with the --baseline key are baselines, each other one\n"
            "is compared with the baseline that differs from it least.\n\n"
            "  --metric train|eval   training loss (default) or held-out loss (never smoothed)\n"
            "  --smooth WINDOW       training-loss smoother: debiased EMA with time constant\n"
            "                        WINDOW x step (default %g; 0 turns it off)\n"
            "  --resamples N         one-seed bootstrap replicates (default %d)\n"
            "  --bootstrap-seed N    seed of the bootstrap's generator (default 1)\n"
            "  --steptime FILE       a `motscale steptime --out` result: adds the wall-clock\n"
            "                        fraction as FLOPs slope x paired step-time ratio\n"
            "  --json                every number as JSON on stdout instead of the tables\n\n"
            "Exit status: 0 done, 2 bad arguments, a missing or malformed run file, or no\n"
            "candidate with a baseline.\n",
            SMOOTH_DEFAULT, ANALYSIS_RESAMPLES);
}

static bool parse_number(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v);
}

/* Candidates of --dir: every group without the baseline key, against the baseline
 * group (with it) whose configuration differs least. */
static size_t pair_dir(const analysis_runset_t *set, const char *key_value,
                       const char *const *compared, size_t (*out)[2])
{
    size_t n = 0;
    for (size_t g = 0; g < set->n_groups; g++) {
        const analysis_run_t *c = &set->runs[set->groups[g].run[0]];
        if (analysis_run_has(c, key_value))
            continue;
        long best = analysis_closest_baseline(set, g, key_value, compared);
        if (best >= 0) {
            out[n][0] = (size_t)best;
            out[n++][1] = g;
        }
    }
    return n;
}

int cmd_compare(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    char **paths = xmalloc((size_t)(argc + 1) * sizeof *paths);
    size_t npaths = 0;
    const char *dir = NULL, *baseline = NULL, *steptime = NULL;
    analysis_opts_t o = {.metric = ANALYSIS_TRAIN, .window = SMOOTH_DEFAULT,
                         .resamples = ANALYSIS_RESAMPLES, .seed = 1};
    bool json = false;
    int status = EXIT_BADINPUT;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--metric") && v) {
            i++;
            if (!strcmp(v, "train") || !strcmp(v, "eval")) {
                o.metric = !strcmp(v, "train") ? ANALYSIS_TRAIN : ANALYSIS_EVAL;
            } else {
                fprintf(stderr, "motscale compare: --metric is train or eval, not '%s'\n", v);
                goto done;
            }
        } else if (!strcmp(a, "--smooth") && v) {
            i++;
            if (!parse_number(v, &o.window) || o.window < 0) {
                fprintf(stderr, "motscale compare: --smooth takes a number >= 0, not '%s'\n", v);
                goto done;
            }
        } else if ((!strcmp(a, "--resamples") || !strcmp(a, "--bootstrap-seed")) && v) {
            i++;
            if (!parse_number(v, &x) || x < 0 || x != floor(x) || x > 1e9) {
                fprintf(stderr, "motscale compare: %s takes a whole number >= 0, not '%s'\n", a, v);
                goto done;
            }
            if (a[2] == 'r')
                o.resamples = (size_t)x;
            else
                o.seed = (unsigned long)x;
        } else if (!strcmp(a, "--dir") && v) {
            dir = argv[++i];
        } else if (!strcmp(a, "--baseline") && v) {
            baseline = argv[++i];
            if (!strchr(baseline, '=') || !strchr(baseline, '.')) {
                fprintf(stderr, "motscale compare: --baseline takes section.key=value, e.g. "
                                "model.kind=dense, not '%s'\n",
                        baseline);
                goto done;
            }
        } else if (!strcmp(a, "--steptime") && v) {
            steptime = argv[++i];
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "motscale compare: unknown or incomplete option '%s' (see --help)\n", a);
            goto done;
        } else {
            paths[npaths++] = argv[i];
        }
    }
    if (dir ? (npaths > 0 || !baseline) : (npaths < 2 || baseline)) {
        fprintf(stderr, "motscale compare: give BASELINE.h5 and at least one CANDIDATE.h5, or "
                        "--dir DIR with --baseline section.key=value (see --help)\n");
        goto done;
    }
    analysis_steptime_t st;
    char err[4096];
    if (steptime) {
        if (!analysis_steptime_read(&st, steptime, err, sizeof err)) {
            fprintf(stderr, "motscale compare: %s\n", err);
            goto done;
        }
        o.steptime = &st;
    }
    analysis_runset_t set;
    bool loaded = dir ? analysis_runset_load_dir(&set, dir, err, sizeof err)
                      : analysis_runset_load_files(&set, paths, npaths, err, sizeof err);
    if (!loaded) {
        fprintf(stderr, "motscale compare: %s\n", err);
        goto done;
    }
    /* the keys a comparison varies: the kind (and so its grouping), and --baseline's */
    char bkey[128] = "";
    if (baseline)
        snprintf(bkey, sizeof bkey, "%.*s", (int)(strchr(baseline, '=') - baseline), baseline);
    const char *compared[] = {"model.kind", "model.towers", "model.moe_towers", bkey[0] ? bkey : NULL, NULL};
    o.compared = compared;
    size_t (*pairs)[2] = xcalloc(set.n_groups + 1, sizeof *pairs), npairs = 0;
    if (dir) {
        npairs = pair_dir(&set, baseline, compared, pairs);
    } else {
        for (size_t g = 0; g < set.n_groups; g++)
            if (g != set.group_of[0]) {
                pairs[npairs][0] = set.group_of[0];
                pairs[npairs++][1] = g;
            }
    }
    const char *no_eval = NULL;
    for (size_t r = 0; o.metric == ANALYSIS_EVAL && r < set.n_runs; r++)
        if (set.runs[r].r.n_eval == 0)
            no_eval = set.runs[r].r.path;
    if (npairs == 0) {
        fprintf(stderr, "motscale compare: no candidate: %s\n",
                dir ? "no configuration without the --baseline key has one with it under DIR"
                    : "every file has the baseline's configuration (runs that differ only in "
                      "run.seed are its seeds)");
    } else if (no_eval) {
        fprintf(stderr, "motscale compare: --metric eval needs held-out evaluations, and %s "
                        "has none (log.eval_every)\n",
                no_eval);
    } else {
        analysis_comparison_t *c = xcalloc(npairs, sizeof *c);
        for (size_t k = 0; k < npairs; k++) {
            analysis_compare(&c[k], &set, pairs[k][0], pairs[k][1], &o);
            char title[256];
            analysis_group_title(title, sizeof title, &set, pairs[k][1]);
            for (int w = 0; w < c[k].n_warn; w++)
                warnf("%s: %s", title, c[k].warn[w]);
        }
        if (json)
            analysis_compare_json(stdout, &set, c, npairs, &o);
        else
            analysis_compare_table(stdout, &set, c, npairs, &o);
        for (size_t k = 0; k < npairs; k++)
            analysis_comparison_free(&c[k]);
        free(c);
        status = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAULT;
    }
    free(pairs);
    analysis_runset_free(&set);
done:
    free(paths);
    return status;
}
