/* AdamW with decoupled weight decay on the tensors the table marks, the learning-rate
 * schedule (linear warm-up, cosine decay to a floor; exact formula in
 * docs/config.md), and the global gradient norm. */
#ifndef MOTSCALE_OPTIM_H
#define MOTSCALE_OPTIM_H

#include <mpi.h>
#include <stdint.h>

#include "motscale/model.h"

typedef struct adamw_hp {
    double beta1, beta2, eps, weight_decay;
} adamw_hp_t;

typedef struct lr_schedule {
    double lr, lr_min;       /* peak and floor */
    int64_t warmup, steps;   /* warm-up steps; steps of the whole run */
} lr_schedule_t;

/* A range of the parameter buffer this rank updates, and where its moments start. */
typedef struct adamw_range {
    size_t offset, count, moff;
} adamw_range_t;

typedef struct adamw {
    real *m, *v;          /* moments of the ranges, one allocation each, range after range */
    size_t n;             /* elements of m (= v) */
    int n_ranges;         /* sorted by offset; unsharded: one, the whole buffer */
    adamw_range_t *ranges;
    MPI_Comm comm;        /* sharded (ZeRO-1): the DP group whose ranks' ranges partition
                           * the buffer; MPI_COMM_NULL when this rank updates all of it */
} adamw_t;

/* Moments for all n elements of the buffer. */
void adamw_init(adamw_t *o, size_t n);
/* ZeRO-1: moments for the n_ranges ranges (offset, count) of the buffer this rank
 * owns, the ranges of the ranks of comm partitioning it. */
void adamw_init_sharded(adamw_t *o, const size_t *offset, const size_t *count, int n_ranges, MPI_Comm comm);
void adamw_free(adamw_t *o);
/* One update at 1-based step t with learning rate lr, using gscale x the gradients
 * (the clipping factor), then zero the gradients for the next step: one pass over
 * parameters, gradients and moments. Sharded: only the owned ranges are updated
 * (the caller all-gathers them) and the whole gradient buffer is zeroed. */
void adamw_step(adamw_t *o, model_t *m, int64_t t, double lr, double gscale, const adamw_hp_t *hp);

/* lr of 0-based step: warm-up from lr/warmup to lr over steps 0 .. warmup-1, then
 * cosine from lr to lr_min over the remaining steps, the last one at lr_min. */
double lr_at(const lr_schedule_t *s, int64_t step);

/* Global L2 norm of the logical gradient: sharded slices are summed over the TP
 * group, replicated tensors counted once; under ZeRO-1 each rank sums its own
 * ranges and the sums are added over o->comm. */
double grad_global_norm(model_t *m, const adamw_t *o);

/* Checkpoints of a sharded optimizer: the buffer range [offset, offset + count)
 * (one tensor; it lies in one bucket, so each rank holds one contiguous piece of
 * it) of the moments mom (o->m or o->v). gather: collective over o->comm, the whole
 * range into full at the group's rank 0. take: this rank's piece from full. */
void adamw_gather_range(const adamw_t *o, const real *mom, size_t offset, size_t count, real *full);
void adamw_take_range(const adamw_t *o, real *mom, size_t offset, size_t count, const real *full);

#endif
