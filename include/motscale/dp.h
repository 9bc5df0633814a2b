/* Data parallelism: gradients all-reduced over the DP communicator in flat buckets
 * (contiguous ranges of the gradient buffer), all completed before the optimizer:
 * by default each with a blocking collective once backward is done; with overlap,
 * each started non-blocking as soon as backward has finished every segment in it.
 * Under ZeRO stage 1 the same buckets are reduce-scattered instead (each rank keeps
 * the sum over its shard of every bucket, for the optimizer to update), and the
 * updated parameter shards are all-gathered after the step. It knows gradient
 * segments and backward stages, not the model. */
#ifndef MOTSCALE_DP_H
#define MOTSCALE_DP_H

#include <mpi.h>
#include <stdbool.h>

#include "motscale/common.h"

/* Zero: reduce-scatters (and all-gathers) in flight at once, at most. */
#define DP_ZERO_IN_FLIGHT 2

/* A contiguous range of the gradient buffer (one tensor) and the backward stage
 * after which it is final. */
typedef struct dp_segment {
    const char *name;       /* for messages */
    size_t offset, count;   /* elements */
    int ready_stage;
} dp_segment_t;

typedef struct dp_bucket {
    size_t offset, count;   /* elements of the gradient buffer */
    int ready_stage;        /* backward stage after which every segment in it is final */
    int started;
    MPI_Request req;
    int *counts, *displs;   /* zero: every rank's shard of it (elements, from offset) */
} dp_bucket_t;

typedef struct dp_sync {
    MPI_Comm comm;
    int size, rank;
    int zero;               /* 1: reduce-scatter and all-gather (ZeRO-1); 0: all-reduce */
    bool overlap;           /* non-blocking collectives started during backward, not blocking ones after */
    real *grads;
    int n_buckets;
    dp_bucket_t *buckets;
    bool armed;
    int *order, n_started, n_done; /* zero: buckets in the order started; how many started, completed */
    double comm_s;          /* seconds in start/wait calls, accumulated */
} dp_sync_t;

/* The shard of a bucket of `count` elements that DP rank `rank` of `size` owns under
 * ZeRO-1: [count * rank / size, count * (rank + 1) / size), floors; pure. */
static inline void dp_shard(size_t count, int rank, int size, size_t *lo, size_t *n)
{
    size_t a = count * (size_t)rank / (size_t)size, b = count * (size_t)(rank + 1) / (size_t)size;
    *lo = a;
    *n = b - a;
}

/* Cut the segments (in buffer order, each starting where the last ended) into
 * buckets of about bucket_mb MiB, on segment boundaries. zero = 1 (and size > 1):
 * the buckets are reduce-scattered and this rank owns dp_shard of each. overlap
 * (parallel.dp_overlap): each bucket's collective starts non-blocking from the
 * backward hook; without it dp_sync_finish runs them blocking, one after another,
 * and dp_sync_gather all-gathers blocking. */
void dp_sync_init(dp_sync_t *s, MPI_Comm comm, int size, real *grads, const dp_segment_t *seg,
                  int n_seg, double bucket_mb, int zero, bool overlap);
void dp_sync_free(dp_sync_t *s);
/* Arm for the last micro-batch of a step: from now on (with overlap) dp_sync_stage
 * starts buckets. */
void dp_sync_arm(dp_sync_t *s);
/* The backward hook (ctx: the dp_sync_t): start every armed bucket whose segments
 * are final once `stage` is done. */
void dp_sync_stage(void *ctx, int stage);
/* Start what backward did not (without overlap: every bucket's collective,
 * blocking), wait for every bucket, disarm. Under zero, each
 * bucket's owned shard then holds the sum at its own place (offset + lo); the rest
 * of the bucket is undefined. */
void dp_sync_finish(dp_sync_t *s);
/* Zero: the ranges of the buffer this rank owns, one per bucket (offsets, counts:
 * n_buckets each, caller's arrays); without zero, the whole of every bucket. */
void dp_sync_owned(const dp_sync_t *s, size_t *offset, size_t *count);
/* Zero: all-gather every bucket's owned shards of params (laid out like the
 * gradients) so every rank holds the whole updated buffer; a no-op otherwise. */
void dp_sync_gather(dp_sync_t *s, real *params);

#endif
