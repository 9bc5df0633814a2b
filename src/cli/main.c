/* motscale: one program, verbs dispatched by name. */
#include <stdio.h>
#include <string.h>

#include "motscale/cli.h"
#include "motscale/common.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *what;
} verbs[] = {
    {"train", cmd_train, "train a model (under mpirun/srun, or alone)"},
    {"flops", cmd_flops, "parameters and FLOPs of a config, without MPI"},
    {"data", cmd_data, "generate, inspect or import token files"},
    {"compare", cmd_compare, "step matching and equal-loss ratios, with intervals"},
    {"report", cmd_report, "tables and figures of every run in a directory"},
    {"sweep", cmd_sweep, "expand an experiment's sweep (Slurm arrays use it)"},
    {"steptime", cmd_steptime, "paired step-time ratio of two configurations"},
    {"probe-net", cmd_probenet, "alpha-beta of this job's network (under mpirun)"},
    {"project", cmd_project, "projected step time, MFU and memory at many rank counts"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: motscale VERB [ARGS]   (motscale VERB --help for each)\n\nverbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(out, "  %-9s %s\n", verbs[i].name, verbs[i].what);
    fprintf(out, "\nmotscale %s; docs/ in the source tree documents keys, files and methods.\n",
            MOTSCALE_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_BADINPUT;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("motscale %s (%s)\n", MOTSCALE_VERSION, MOTSCALE_GIT_COMMIT);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].run(argc - 2, argv + 2);
    fprintf(stderr, "motscale: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_BADINPUT;
}
