/* Data parallelism: gradients all-reduced over the DP communicator in flat buckets
 * (contiguous ranges of the gradient buffer), each started non-blocking as soon as
 * backward has finished every tensor in it, all completed before the optimizer. */
#ifndef MOTSCALE_DP_H
#define MOTSCALE_DP_H

#include <mpi.h>

#include "motscale/model.h"

typedef struct dp_bucket {
    size_t offset, count;   /* elements of the gradient buffer */
    int ready_stage;        /* backward stage after which every tensor in it is final */
    int started;
    MPI_Request req;
} dp_bucket_t;

typedef struct dp_sync {
    MPI_Comm comm;
    int size;
    real *grads;
    int n_buckets;
    dp_bucket_t *buckets;
    double comm_s;          /* seconds in start/wait calls, accumulated */
} dp_sync_t;

/* Cut the model's gradient buffer into buckets of about bucket_mb MiB, on tensor
 * boundaries. */
void dp_sync_init(dp_sync_t *s, MPI_Comm comm, int size, const model_t *m, double bucket_mb);
void dp_sync_free(dp_sync_t *s);
/* Arm for the last micro-batch of a step: m->on_stage then starts buckets. */
void dp_sync_arm(dp_sync_t *s, model_t *m);
/* Start what backward did not, wait for every bucket, disarm. */
void dp_sync_finish(dp_sync_t *s, model_t *m);

#endif
