/* Data parallelism: gradients all-reduced over the DP communicator in flat buckets
 * (contiguous ranges of the gradient buffer), each started non-blocking as soon as
 * backward has finished every segment in it, all completed before the optimizer.
 * It knows gradient segments and backward stages, not the model. */
#ifndef MOTSCALE_DP_H
#define MOTSCALE_DP_H

#include <mpi.h>
#include <stdbool.h>

#include "motscale/common.h"

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
} dp_bucket_t;

typedef struct dp_sync {
    MPI_Comm comm;
    int size;
    real *grads;
    int n_buckets;
    dp_bucket_t *buckets;
    bool armed;
    double comm_s;          /* seconds in start/wait calls, accumulated */
} dp_sync_t;

/* Cut the segments (in buffer order, each starting where the last ended) into
 * buckets of about bucket_mb MiB, on segment boundaries. */
void dp_sync_init(dp_sync_t *s, MPI_Comm comm, int size, real *grads, const dp_segment_t *seg,
                  int n_seg, double bucket_mb);
void dp_sync_free(dp_sync_t *s);
/* Arm for the last micro-batch of a step: from now on dp_sync_stage starts buckets. */
void dp_sync_arm(dp_sync_t *s);
/* The backward hook (ctx: the dp_sync_t): start every armed bucket whose segments
 * are final once `stage` is done. */
void dp_sync_stage(void *ctx, int stage);
/* Start what backward did not, wait for every bucket, disarm. */
void dp_sync_finish(dp_sync_t *s);

#endif
