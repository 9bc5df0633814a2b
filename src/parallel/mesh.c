/* Communicators of the DP x TP grid, split once from the world. */
#include "motscale/common.h"
#include "motscale/mesh.h"

void mpi_check_at(int rc, const char *call, const char *file, int line)
{
    if (rc == MPI_SUCCESS)
        return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    die_at(file, line, EXIT_FAULT, "%s failed: %s", call, msg);
}

void mesh_init(mesh_t *m, MPI_Comm world, int tp, int dp)
{
    m->world = world;
    MPI_CHECK(MPI_Comm_rank(world, &m->world_rank));
    MPI_CHECK(MPI_Comm_size(world, &m->world_size));
    m->tp = tp;
    m->dp = dp;
    mesh_coords(m->world_rank, tp, &m->tp_rank, &m->dp_rank);
    MPI_CHECK(MPI_Comm_split(world, m->dp_rank, m->tp_rank, &m->tp_comm));
    MPI_CHECK(MPI_Comm_split(world, m->tp_rank, m->dp_rank, &m->dp_comm));
}

void mesh_free(mesh_t *m)
{
    if (m->tp_comm != MPI_COMM_NULL)
        MPI_Comm_free(&m->tp_comm);
    if (m->dp_comm != MPI_COMM_NULL)
        MPI_Comm_free(&m->dp_comm);
}
