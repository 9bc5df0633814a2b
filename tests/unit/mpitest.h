/* The main of a cmocka test binary run under `mpirun -np 4`: MPI set up with
 * MPI_ERRORS_RETURN, TAP printed by world rank 0 only. Include after testutil.h. */
#ifndef MOTSCALE_MPITEST_H
#define MOTSCALE_MPITEST_H

#include <mpi.h>
#include <stdio.h>

#include "motscale/common.h"

static int world_rank, world_size;

static int mpitest_main(const char *name, const struct CMUnitTest *tests, size_t n, int argc,
                        char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    motscale_rank = world_rank;
    if (world_size != 4) {
        if (world_rank == 0)
            fprintf(stderr, "%s: run with mpirun -np 4 (got %d ranks)\n", name, world_size);
        MPI_Finalize();
        return 1;
    }
    /* one copy of the TAP output */
    if (world_rank != 0 && !freopen("/dev/null", "w", stdout))
        return 1;
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    MPI_Finalize();
    return failed ? 1 : 0;
}

#endif
