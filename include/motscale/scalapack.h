/* 2D tensor parallelism on ScaLAPACK (parallel.tp_backend = scalapack): BLACS grids
 * over the TP communicator and the transformer's linears as PSGEMM on a pr x pc grid.
 * Weights live natively as this rank's block of the grid; activations keep the
 * layouts model.c uses (replicated, or Megatron head slices), redistributed with
 * PSGEMR2D only where a product needs it. Design: docs/parallelism.md. */
#ifndef MOTSCALE_SCALAPACK_H
#define MOTSCALE_SCALAPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"
#include "motscale/tp.h"

/* Y = X W for a logical weight W (in, out), row-major, over n token rows. */
enum sl_kind {
    /* X replicated (n, in); Y the Megatron column slice (n, out/P) of this rank's heads */
    SL_COLUMN_PARALLEL,
    /* X the Megatron slice (n, in/P); Y (n, out) holds this rank's grid block and zeros
     * elsewhere, so the caller's g all-reduce (a sum) gathers it exactly */
    SL_ROW_PARALLEL
};

typedef struct sl_state sl_state_t;

/* The grid for P ranks: the most square pr x pc = P, the longer side down the process
 * rows (pr >= pc: 2 x 1, 2 x 2, 4 x 2). Process rows split the projections' output
 * features, process columns the tokens; splitting features first keeps tp = 2 from
 * moving whole weight matrices (measured: 2 x 1 beats 1 x 2). Pure. */
void sl_grid_shape(int P, int *pr, int *pc);

/* Where TP rank `rank` of P holds its block of a logical weight W (rows = in,
 * cols = out): in the column-major view W^T (out x in) that PSGEMM sees, grid row
 * i = rank / pc owns out-rows [i * out/pr, ...), grid column j = rank % pc owns
 * in-columns [j * in/pc, ...). The block is one rectangle of W, so checkpoints and
 * init address it by row0/col0 like a Megatron slice. Pure. */
void sl_weight_block(int P, int rank, int64_t rows, int64_t cols, int64_t *row0,
                     int64_t *lrows, int64_t *col0, int64_t *lcols);

/* Collective over tp->comm: the BLACS grids and scratch for products of up to
 * max_rows token rows and widths up to max_width. tp must outlive the state; the
 * time spent redistributing is added to tp->comm_s. */
sl_state_t *sl_create(tp_ctx_t *tp, int64_t max_rows, int64_t max_width);
void sl_free(sl_state_t *s);

/* Y = X W   X, Y: row-major as stated by kind; W: this rank's block (sl_weight_block),
 * row-major. Collective over the TP group; every rank passes the same n, in, out. */
void sl_linear_forward(sl_state_t *s, enum sl_kind kind, real *Y, const real *X, const real *W,
                       int64_t n, int64_t in, int64_t out);

/* The backward of sl_linear_forward: dW += X^T dY into this rank's block; and
 *   column-parallel: dX (n, in) (+)= dY W^T as this rank's grid block, zeros elsewhere
 *                    (the caller's f all-reduce sums the blocks);
 *   row-parallel:    dX (n, in/P) (+)= dY W^T, the Megatron slice, complete.
 * accumulate: add into dX instead of overwriting it; for column-parallel, only after
 * a call on the same dX that did not accumulate. */
void sl_linear_backward(sl_state_t *s, enum sl_kind kind, real *dX, real *dW, const real *X,
                        const real *dY, const real *W, int64_t n, int64_t in, int64_t out,
                        bool accumulate);

#endif
