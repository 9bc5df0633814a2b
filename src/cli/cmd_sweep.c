/* `motscale sweep EXP.ini --list | --count | --index N | --run-dir N`: expand an
 * experiment's [sweep] section (src/io/sweep.c). No MPI: Slurm array tasks and
 * jobs/local call it to find their point. */
#include <stdlib.h>
#include <string.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/sweep.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale sweep EXPERIMENT.ini MODE [section.key=value ...]\n\n"
            "modes:\n"
            "  --list        one line per point: index, run name, the point's overrides (tab-separated)\n"
            "  --count       the number of points\n"
            "  --index N     the resolved configuration of point N (0-based) as INI text that\n"
            "                `motscale train` accepts\n"
            "  --run-dir N   point N's run directory, run.out_dir/run.name\n\n"
            "The [sweep] section crosses lists (`section.key = v1, v2, ...`) as a cartesian product,\n"
            "the last list varying fastest; `zip = k1, k2` pairs the lists of k1 and k2 element-wise.\n"
            "run.name is a template: {section.key} is replaced by the point's value, {index} by N.\n"
            "run.experiment defaults to the file name without .ini. Overrides after MODE apply to\n"
            "every point. Syntax and the experiment files: docs/experiments.md.\n\n"
            "exit status: 0 done, 2 bad input (unknown sweep key, empty list, bad value, clashing\n"
            "run names, no such point)\n");
}

enum mode { MODE_NONE, MODE_LIST, MODE_COUNT, MODE_INDEX, MODE_RUNDIR };

static bool parse_index(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

/* "key=value", quoted when the value holds blanks, for one --list column. */
static void print_override(const char *over)
{
    const char *eq = strchr(over, '=');
    if (eq && strpbrk(eq + 1, " \t"))
        printf("%.*s\"%s\"", (int)(eq - over + 1), over, eq + 1);
    else
        printf("%s", over);
}

int cmd_sweep(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *file = NULL;
    enum mode mode = MODE_NONE;
    int64_t index = 0;
    char **extra = xmalloc((size_t)(argc > 0 ? argc : 1) * sizeof *extra);
    int n_extra = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        enum mode m = MODE_NONE;
        if (!strcmp(a, "--list"))
            m = MODE_LIST;
        else if (!strcmp(a, "--count"))
            m = MODE_COUNT;
        else if (!strcmp(a, "--index"))
            m = MODE_INDEX;
        else if (!strcmp(a, "--run-dir"))
            m = MODE_RUNDIR;
        if (m != MODE_NONE) {
            if (mode != MODE_NONE) {
                fprintf(stderr, "motscale sweep: give one of --list, --count, --index N, --run-dir N\n");
                free(extra);
                return EXIT_BADINPUT;
            }
            mode = m;
            if (m == MODE_INDEX || m == MODE_RUNDIR) {
                if (i + 1 >= argc || !parse_index(argv[i + 1], &index)) {
                    fprintf(stderr, "motscale sweep: %s needs a point number N >= 0, got '%s'\n", a,
                            i + 1 < argc ? argv[i + 1] : "");
                    free(extra);
                    return EXIT_BADINPUT;
                }
                i++;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "motscale sweep: unknown option '%s'\n", a);
            usage(stderr);
            free(extra);
            return EXIT_BADINPUT;
        } else if (!file) {
            file = a;
        } else {
            extra[n_extra++] = argv[i];
        }
    }
    if (!file || mode == MODE_NONE) {
        usage(stderr);
        free(extra);
        return EXIT_BADINPUT;
    }

    sweep_t sw;
    char err[4096];
    int status = EXIT_OK;
    if (!sweep_load(&sw, file, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        free(extra);
        return EXIT_BADINPUT;
    }
    /* every mode checks every point, so a sweep that lists fine also runs */
    config_t cfg;
    if (!sweep_check_all(&sw, n_extra, extra, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        status = EXIT_BADINPUT;
    } else if (mode == MODE_COUNT) {
        printf("%lld\n", (long long)sw.n_points);
    } else if (mode == MODE_LIST) {
        char **over = xmalloc((size_t)(sw.n_keys > 0 ? sw.n_keys : 1) * sizeof *over);
        for (int64_t i = 0; i < sw.n_points; i++) {
            sweep_point_config(&sw, i, n_extra, extra, &cfg, err, sizeof err);
            sweep_point_overrides(&sw, i, over);
            printf("%lld\t%s\t", (long long)i, cfg.name);
            for (int k = 0; k < sw.n_keys; k++) {
                if (k)
                    putchar(' ');
                print_override(over[k]);
            }
            putchar('\n');
            sweep_free_overrides(&sw, over);
        }
        free(over);
    } else if (!sweep_point_config(&sw, index, n_extra, extra, &cfg, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        status = EXIT_BADINPUT;
    } else if (mode == MODE_RUNDIR) {
        printf("%s/%s\n", cfg.out_dir, cfg.name);
    } else {
        char **over = xmalloc((size_t)(sw.n_keys > 0 ? sw.n_keys : 1) * sizeof *over);
        sweep_point_overrides(&sw, index, over);
        printf("; motscale sweep %s --index %lld (of %lld points)\n; point:", file, (long long)index,
               (long long)sw.n_points);
        for (int k = 0; k < sw.n_keys; k++) {
            putchar(' ');
            print_override(over[k]);
        }
        printf("\n\n");
        sweep_free_overrides(&sw, over);
        free(over);
        char *ini = config_to_ini(&cfg);
        fputs(ini, stdout);
        free(ini);
    }
    if (fflush(stdout) != 0) {
        perror("motscale sweep: stdout");
        status = EXIT_FAULT;
    }
    sweep_free(&sw);
    free(extra);
    return status;
}
