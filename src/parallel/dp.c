/* Bucketed, overlapped gradient all-reduce over the data-parallel group. */
#include <limits.h>
#include <stdlib.h>

#include "motscale/dp.h"
#include "motscale/mesh.h"

void dp_sync_init(dp_sync_t *s, MPI_Comm comm, int size, const model_t *m, double bucket_mb)
{
    s->comm = comm;
    s->size = size;
    s->grads = m->grads;
    s->comm_s = 0;
    size_t cap = (size_t)(bucket_mb * 1048576.0 / sizeof(real));
    if (cap < 1)
        cap = 1;
    s->buckets = xcalloc((size_t)m->n_tensors, sizeof *s->buckets);
    s->n_buckets = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *t = &m->tensors[i];
        dp_bucket_t *b = s->n_buckets ? &s->buckets[s->n_buckets - 1] : NULL;
        if (!b || b->count + t->numel > cap) {
            b = &s->buckets[s->n_buckets++];
            b->offset = t->offset;
            b->count = 0;
            b->ready_stage = 0;
        }
        b->count += t->numel;
        int st = model_tensor_stage(m, t);
        if (st > b->ready_stage)
            b->ready_stage = st;
        if (b->count > INT_MAX)
            DIE(EXIT_FAULT, "tensor %s has %zu elements, more than one MPI call can reduce", t->name, t->numel);
    }
}

void dp_sync_free(dp_sync_t *s)
{
    free(s->buckets);
    s->buckets = NULL;
}

static void start_ready(void *ctx, int stage)
{
    dp_sync_t *s = ctx;
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

void dp_sync_arm(dp_sync_t *s, model_t *m)
{
    if (s->size <= 1)
        return;
    for (int i = 0; i < s->n_buckets; i++)
        s->buckets[i].started = 0;
    m->on_stage = start_ready;
    m->on_stage_ctx = s;
}

void dp_sync_finish(dp_sync_t *s, model_t *m)
{
    if (s->size <= 1)
        return;
    start_ready(s, INT_MAX);
    double t0 = now_seconds();
    for (int i = 0; i < s->n_buckets; i++)
        MPI_CHECK(MPI_Wait(&s->buckets[i].req, MPI_STATUS_IGNORE));
    s->comm_s += now_seconds() - t0;
    m->on_stage = NULL;
    m->on_stage_ctx = NULL;
}
