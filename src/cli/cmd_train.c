/* `motscale train CONFIG.ini [section.key=value ...]`: MPI set-up, configuration
 * and layout checks on every rank, then the training loop. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/mesh.h"
#include "motscale/sweep.h"
#include "motscale/train.h"

int cli_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* BLAS threads per rank (parallel.blas_threads; docs/config.md): the key, else
 * OPENBLAS_NUM_THREADS or OMP_NUM_THREADS, else the cores Slurm gave each task
 * (SLURM_CPUS_PER_TASK, from --cpus-per-task), else one: ranks are the parallelism. */
static int blas_threads(int key)
{
    const char *vars[] = {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"};
    if (key > 0)
        return key;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    return 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale train CONFIG.ini [section.key=value ...]\n"
            "       mpirun -np N motscale train CONFIG.ini ...   (or srun --mpi=pmix)\n\n"
            "Trains the model of CONFIG.ini (keys: docs/config.md) and writes the run directory\n"
            "run.out_dir/run.name: run.h5 (docs/run-record.md), config.ini, checkpoints/, status.\n"
            "Overrides use section.key=value, e.g. model.kind=mot train.steps=100 parallel.tp=2.\n"
            "motscale train --keys prints every key with its default (Markdown).\n\n"
            "exit status: 0 done, 1 fault, 2 bad input (config, data, checkpoint, layout),\n"
            "             75 checkpointed after SIGUSR1/SIGTERM (requeue and resume with train.resume=auto)\n");
}

int cmd_train(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc == 1 && !strcmp(argv[0], "--keys")) {
        config_print_keys_markdown(stdout);
        return EXIT_OK;
    }
    if (argc < 1) {
        usage(stderr);
        return EXIT_BADINPUT;
    }
    train_install_signals(); /* before MPI_Init: a signal during start-up still checkpoints */
    MPI_Init(NULL, NULL);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    motscale_rank = rank;

    const char *ntasks = getenv("SLURM_NTASKS");
    if (ntasks && atoi(ntasks) != size) {
        if (rank == 0)
            fprintf(stderr, "motscale: SLURM_NTASKS=%s but MPI sees %d rank(s): the ranks did not join one job. "
                    "Launch with `srun --mpi=pmix` (check `srun --mpi=list`) or mpirun inside the allocation.\n",
                    ntasks, size);
        MPI_Finalize();
        return EXIT_BADINPUT;
    }

    config_t cfg;
    char err[2048];
    /* run.name may be a template ({model.kind}-s{run.seed}), as in experiment files */
    bool ok = config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err) &&
              sweep_expand_name(&cfg, 0, err, sizeof err) &&
              config_check_layout(&cfg, size, err, sizeof err);
    if (!ok) {
        /* every rank reaches the same verdict: rank 0 says it, all leave with 2 */
        if (rank == 0)
            fprintf(stderr, "motscale: %s\n", err);
        MPI_Finalize();
        return EXIT_BADINPUT;
    }
    openblas_set_num_threads(blas_threads(cfg.blas_threads));
    mesh_t mesh;
    mesh_init(&mesh, MPI_COMM_WORLD, cfg.tp, cfg.dp);
    int status = train_run(&cfg, &mesh);
    mesh_free(&mesh);
    MPI_Finalize();
    return status;
}
