/* Bucketed, overlapped gradient all-reduce over the data-parallel group. */
#include <limits.h>
#include <stdlib.h>

#include "motscale/dp.h"
#include "motscale/mesh.h"

void dp_sync_init(dp_sync_t *s, MPI_Comm comm, int size, real *grads, const dp_segment_t *seg,
                  int n_seg, double bucket_mb)
{
    s->comm = comm;
    s->size = size;
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
}

void dp_sync_free(dp_sync_t *s)
{
    free(s->buckets);
    s->buckets = NULL;
}

void dp_sync_stage(void *ctx, int stage)
{
    dp_sync_t *s = ctx;
    if (!s->armed)
        return;
    double t0 = now_seconds();
    for (int i = 0; i < s->n_buckets; i++) {
        dp_bucket_t *b = &s->buckets[i];
        if (b->started || b->ready_stage > stage)
            continue;
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
    s->armed = true;
}

void dp_sync_finish(dp_sync_t *s)
{
    if (s->size <= 1)
        return;
    dp_sync_stage(s, INT_MAX);
    double t0 = now_seconds();
    for (int i = 0; i < s->n_buckets; i++)
        MPI_CHECK(MPI_Wait(&s->buckets[i].req, MPI_STATUS_IGNORE));
    s->comm_s += now_seconds() - t0;
    s->armed = false;
}
