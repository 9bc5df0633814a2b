/* Megatron-style 1D tensor parallelism: the two conjugate communication operators.
 * Both are no-ops when the TP group has one rank. Time spent is added to *comm_s. */
#ifndef MOTSCALE_TP_H
#define MOTSCALE_TP_H

#include <mpi.h>
#include <stddef.h>

#include "motscale/common.h"

typedef struct tp_ctx {
    MPI_Comm comm; /* MPI_COMM_NULL or a one-rank group: no communication */
    int rank, size;
    double comm_s; /* seconds spent in TP collectives, accumulated */
} tp_ctx_t;

/* f: identity forward; backward all-reduces the input gradient (before column-parallel linears). */
void tp_f_backward(tp_ctx_t *tp, real *dx, size_t n);
/* g: all-reduce forward (after row-parallel linears); identity backward. */
void tp_g_forward(tp_ctx_t *tp, real *y, size_t n);
/* Sum of a double over the group (gradient-norm pieces of sharded tensors). */
double tp_sum_double(tp_ctx_t *tp, double v);

#endif
