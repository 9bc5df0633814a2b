/* Bucketed gradient all-reduce over the data-parallel group, blocking after backward
 * or (overlap) started during it; under ZeRO-1 the same buckets reduce-scattered
 * instead, and the parameter shards all-gathered after the update. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/dp.h"
#include "motscale/mesh.h"

void dp_sync_init(dp_sync_t *s, MPI_Comm comm, int size, real *grads, const dp_segment_t *seg,
                  int n_seg, double bucket_mb, int zero, bool overlap)
{
    s->comm = comm;
    s->size = size;
    s->rank = 0;
    if (size > 1)
        MPI_CHECK(MPI_Comm_rank(comm, &s->rank));
    s->zero = zero && size > 1;
    s->overlap = overlap;
    s->grads = grads;
    s->comm_s = 0;
    s->armed = false;
    size_t cap = (size_t)(bucket_mb * 1048576.0 / sizeof(real));
    if (cap < 1)
        cap = 1;
    s->buckets = xcalloc((size_t)(n_seg > 0 ? n_seg : 1), sizeof *s->buckets);
    s->n_buckets = 0;
    for (int i = 0; i < n_seg; i++) {
        const dp_segment_t *g = &seg[i];
        dp_bucket_t *b = s->n_buckets ? &s->buckets[s->n_buckets - 1] : NULL;
        if (!b || b->count + g->count > cap) {
            b = &s->buckets[s->n_buckets++];
            b->offset = g->offset;
            b->count = 0;
            b->ready_stage = 0;
        }
        b->count += g->count;
        if (g->ready_stage > b->ready_stage)
            b->ready_stage = g->ready_stage;
        if (b->count > INT_MAX)
            DIE(EXIT_FAULT, "gradient segment %s has %zu elements, more than one MPI call can reduce",
                g->name, g->count);
    }
    s->order = s->zero ? xcalloc((size_t)s->n_buckets, sizeof *s->order) : NULL;
    for (int i = 0; s->zero && i < s->n_buckets; i++) {
        dp_bucket_t *b = &s->buckets[i];
        b->counts = xcalloc((size_t)size, sizeof *b->counts);
        b->displs = xcalloc((size_t)size, sizeof *b->displs);
        for (int r = 0; r < size; r++) {
            size_t lo, n;
            dp_shard(b->count, r, size, &lo, &n);
            b->displs[r] = (int)lo;
            b->counts[r] = (int)n;
        }
    }
}

void dp_sync_free(dp_sync_t *s)
{
    for (int i = 0; s->zero && i < s->n_buckets; i++) {
        free(s->buckets[i].counts);
        free(s->buckets[i].displs);
    }
    free(s->buckets);
    free(s->order);
    s->buckets = NULL;
    s->order = NULL;
}

/* Zero, after a bucket's in-place reduce-scatter: move this rank's shard of the sum
 * from the bucket's start to its own place. */
static void shard_to_place(dp_sync_t *s, const dp_bucket_t *b)
{
    real *at = s->grads + b->offset;
    memmove(at + b->displs[s->rank], at, (size_t)b->counts[s->rank] * sizeof *at);
}

/* Zero: wait for the reduce-scatter started n-th and put its shard in place. */
static void zero_complete(dp_sync_t *s, int n)
{
    dp_bucket_t *b = &s->buckets[s->order[n]];
    MPI_CHECK(MPI_Wait(&b->req, MPI_STATUS_IGNORE));
    shard_to_place(s, b);
}

void dp_sync_stage(void *ctx, int stage)
{
    dp_sync_t *s = ctx;
    /* without overlap: Open MPI without a progress thread moves a non-blocking
     * collective only inside MPI calls, none of which come during a DP backward, and
     * its non-blocking all-reduce was measured at half the speed of the blocking one
     * (docs/parallelism.md); dp_sync_finish does them all, blocking */
    if (!s->armed || !s->overlap)
        return;
    double t0 = now_seconds();
    for (int i = 0; i < s->n_buckets; i++) {
        dp_bucket_t *b = &s->buckets[i];
        if (b->started || b->ready_stage > stage)
            continue;
        if (s->zero) {
            /* Open MPI's non-blocking reduce-scatter reduces to one rank, which holds
             * a temporary of the bucket's size until it completes: at most
             * DP_ZERO_IN_FLIGHT of them, or that rank would hold a second copy of
             * the gradients and lose what sharding the moments saves */
            if (s->n_started - s->n_done >= DP_ZERO_IN_FLIGHT)
                zero_complete(s, s->n_done++);
            s->order[s->n_started++] = i;
            /* in place: the sum of this rank's shard lands at the bucket's start */
            MPI_CHECK(MPI_Ireduce_scatter(MPI_IN_PLACE, s->grads + b->offset, b->counts, MPI_REAL_T, MPI_SUM,
                                          s->comm, &b->req));
        } else
            MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, s->grads + b->offset, (int)b->count, MPI_REAL_T,
                                     MPI_SUM, s->comm, &b->req));
        b->started = 1;
    }
    s->comm_s += now_seconds() - t0;
}

void dp_sync_arm(dp_sync_t *s)
{
    if (s->size <= 1)
        return;
    for (int i = 0; i < s->n_buckets; i++)
        s->buckets[i].started = 0;
    s->n_started = s->n_done = 0;
    s->armed = true;
}

void dp_sync_finish(dp_sync_t *s)
{
    if (s->size <= 1)
        return;
    if (!s->overlap) {
        double t0 = now_seconds();
        for (int i = 0; i < s->n_buckets; i++) {
            dp_bucket_t *b = &s->buckets[i];
            real *at = s->grads + b->offset;
            if (s->zero) {
                /* in place: the sum of this rank's shard lands at the bucket's start */
                MPI_CHECK(MPI_Reduce_scatter(MPI_IN_PLACE, at, b->counts, MPI_REAL_T, MPI_SUM, s->comm));
                shard_to_place(s, b);
            } else
                MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, at, (int)b->count, MPI_REAL_T, MPI_SUM, s->comm));
        }
        s->comm_s += now_seconds() - t0;
        s->armed = false;
        return;
    }
    dp_sync_stage(s, INT_MAX);
    double t0 = now_seconds();
    if (s->zero)
        while (s->n_done < s->n_started)
            zero_complete(s, s->n_done++);
    else
        for (int i = 0; i < s->n_buckets; i++)
            MPI_CHECK(MPI_Wait(&s->buckets[i].req, MPI_STATUS_IGNORE));
    s->comm_s += now_seconds() - t0;
    s->armed = false;
}

void dp_sync_owned(const dp_sync_t *s, size_t *offset, size_t *count)
{
    for (int i = 0; i < s->n_buckets; i++) {
        const dp_bucket_t *b = &s->buckets[i];
        offset[i] = b->offset + (s->zero ? (size_t)b->displs[s->rank] : 0);
        count[i] = s->zero ? (size_t)b->counts[s->rank] : b->count;
    }
}

void dp_sync_gather(dp_sync_t *s, real *params)
{
    if (!s->zero)
        return;
    double t0 = now_seconds();
    if (!s->overlap) {
        for (int i = 0; i < s->n_buckets; i++) {
            dp_bucket_t *b = &s->buckets[i];
            MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params + b->offset, b->counts, b->displs,
                                     MPI_REAL_T, s->comm));
        }
        s->comm_s += now_seconds() - t0;
        return;
    }
    /* DP_ZERO_IN_FLIGHT at a time, like the reduce-scatters */
    for (int i = 0; i < s->n_buckets + DP_ZERO_IN_FLIGHT; i++) {
        if (i >= DP_ZERO_IN_FLIGHT)
            MPI_CHECK(MPI_Wait(&s->buckets[i - DP_ZERO_IN_FLIGHT].req, MPI_STATUS_IGNORE));
        if (i >= s->n_buckets)
            continue;
        dp_bucket_t *b = &s->buckets[i];
        MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params + b->offset, b->counts, b->displs,
                                  MPI_REAL_T, s->comm, &b->req));
    }
    s->comm_s += now_seconds() - t0;
}
