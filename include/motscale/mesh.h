/* The rank grid, defined once: world = dp x tp with TP innermost, so TP peers are
 * neighbours (same node):  tp_rank = rank % tp,  dp_rank = rank / tp. */
#ifndef MOTSCALE_MESH_H
#define MOTSCALE_MESH_H

#include <mpi.h>

typedef struct mesh {
    int world_rank, world_size;
    int tp, dp, tp_rank, dp_rank;
    MPI_Comm world, tp_comm, dp_comm; /* tp_comm: same dp_rank; dp_comm: same tp_rank */
} mesh_t;

/* The geometry equation, pure so tests can check it without MPI. */
static inline void mesh_coords(int rank, int tp, int *tp_rank, int *dp_rank)
{
    *tp_rank = rank % tp;
    *dp_rank = rank / tp;
}

/* Split the world into TP and DP communicators (collective over world). */
void mesh_init(mesh_t *m, MPI_Comm world, int tp, int dp);
void mesh_free(mesh_t *m);

/* Checked MPI call: on failure names the call, file, line and rank, then aborts. */
void mpi_check_at(int rc, const char *call, const char *file, int line);
#define MPI_CHECK(call) mpi_check_at((call), #call, __FILE__, __LINE__)

#endif
