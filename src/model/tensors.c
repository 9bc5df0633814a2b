/* The tensor table: slices for both tensor-parallel backends, and the two-pass
 * builder (count, then fill) that lays the flat parameter buffers out in list order. */
#include <stdio.h>
#include <string.h>

#include "layers.h"
#include "motscale/scalapack.h"

void tensor_slice(int shard, int owner, bool grid2d, int backend, int tp_rank, int tp_size, int64_t rows,
                  int64_t cols, int64_t *row0, int64_t *lrows, int64_t *col0, int64_t *lcols)
{
    *row0 = *col0 = 0;
    *lrows = rows;
    *lcols = cols;
    if (shard == SHARD_EXPERT) {
        /* whole on its owner, nothing elsewhere */
        if (owner != tp_rank)
            *lrows = *lcols = 0;
    } else if (grid2d && backend == TP_SCALAPACK) {
        /* 2D: a projection holds this rank's block of the ScaLAPACK grid; init,
         * checkpoints, the optimizer and the DP buckets address it by row0/col0
         * like a Megatron slice, unaware of the backend */
        sl_weight_block(tp_size, tp_rank, rows, cols, row0, lrows, col0, lcols);
    } else if (shard == SHARD_COL) {
        *lcols = cols / tp_size;
        *col0 = tp_rank * *lcols;
    } else if (shard == SHARD_ROW) {
        *lrows = rows / tp_size;
        *row0 = tp_rank * *lrows;
    }
}

int table_add(table_builder_t *b, const tensor_spec_t *spec)
{
    int i = b->n++;
    int64_t row0, lrows, col0, lcols;
    tensor_slice(spec->shard, spec->owner, spec->grid2d, b->backend, b->tp_rank, b->tp_size, spec->rows,
                 spec->cols, &row0, &lrows, &col0, &lcols);
    size_t numel = (size_t)(lrows * lcols);
    size_t offset = b->n_local;
    b->n_local += numel;
    if (!b->tensors)
        return i;
    if (i >= b->cap)
        DIE(EXIT_FAULT, "tensor table overflow (%d): the counting pass disagrees with the fill", b->cap);
    tensor_info_t *t = &b->tensors[i];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", spec->name);
    t->role = spec->role;
    t->tower = spec->tower;
    t->layer = spec->layer;
    t->rows = spec->rows;
    t->cols = spec->cols;
    t->row0 = row0;
    t->col0 = col0;
    t->lrows = lrows;
    t->lcols = lcols;
    t->shard = spec->shard;
    t->owner = spec->owner;
    t->expert = spec->expert;
    t->grid2d = spec->grid2d;
    t->decay = spec->decay;
    t->init = spec->init;
    t->init_div = spec->init_div;
    t->stage = spec->stage;
    t->numel = numel;
    t->offset = offset;
    t->src = -1;
    return i;
}
