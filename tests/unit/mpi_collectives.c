/* Closed-form tests of the collectives, run under `mpirun -np 4` by
 * tests/e2e/collectives.sh: rank-valued inputs through the two conjugate TP operators,
 * tp_sum_double and the bucketed DP gradient all-reduce give exact sums, so do the
 * ZeRO-1 reduce-scatter (each rank's shard) and parameter all-gather, and the mesh
 * (rank geometry and communicators) matches its equation for every rank.
 *
 * Every rank runs every test. A test first counts mismatches locally (no assert
 * before a collective, so a failing rank cannot leave the others blocked), then
 * reduces the count over the world and asserts on the total, so all ranks pass or
 * fail together. Only world rank 0 prints (the TAP lines); the others write to
 * /dev/null except for the first mismatch they found, which goes to stderr. */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "mpitest.h"

#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/dp.h"
#include "motscale/mesh.h"
#include "motscale/model.h"
#include "motscale/tp.h"

/* Tolerance: none. Inputs are small integers (rank + 1 times a factor below 64, at
 * most 4 ranks) or dyadic doubles, so every partial sum is exact in fp32 (integers
 * below 2^24) in any summation order: expected sums are compared with ==. */

static int layouts[][2] = {{1, 4}, {2, 2}, {4, 1}}; /* (tp, dp) at world size 4 */
#define N_LAYOUTS ((int)(sizeof layouts / sizeof layouts[0]))

/* Sum of the local mismatch counts over the world; prints this rank's first one. */
static long world_bad(long bad, const char *first)
{
    if (bad && first[0])
        fprintf(stderr, "mpi_collectives[rank %d]: %ld mismatches, first: %s\n", world_rank, bad, first);
    long total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return total;
}

#define MISMATCH(buf, ...)                                                                 \
    do {                                                                                   \
        if (bad++ == 0)                                                                    \
            snprintf((buf), sizeof(buf), __VA_ARGS__);                                     \
    } while (0)

/* ---- the mesh --------------------------------------------------------------------- */

/* mesh_coords inverted by enumeration: rank = dp_rank * tp + tp_rank, TP innermost. */
static void test_mesh_coords(void **state)
{
    (void)state;
    long bad = 0;
    char first[256] = "";
    int tps[] = {1, 2, 3, 4, 8};
    int worlds[] = {1, 2, 4, 6, 8, 12, 16, 24};
    for (size_t a = 0; a < sizeof tps / sizeof tps[0]; a++)
        for (size_t b = 0; b < sizeof worlds / sizeof worlds[0]; b++) {
            int tp = tps[a], world = worlds[b];
            if (world % tp)
                continue;
            int dp = world / tp, seen = 0;
            for (int d = 0; d < dp; d++)
                for (int t = 0; t < tp; t++) {
                    int rank = d * tp + t, tr = -1, dr = -1;
                    mesh_coords(rank, tp, &tr, &dr);
                    if (tr != t || dr != d)
                        MISMATCH(first, "tp %d world %d rank %d: (tp_rank, dp_rank) = (%d, %d), want (%d, %d)",
                                 tp, world, rank, tr, dr, t, d);
                    seen++;
                }
            if (seen != world)
                MISMATCH(first, "tp %d world %d: enumerated %d ranks", tp, world, seen);
        }
    assert_int_equal(world_bad(bad, first), 0);
}

/* Members of a communicator, as world ranks in communicator-rank order. */
static void members(MPI_Comm c, int *out)
{
    MPI_Allgather(&world_rank, 1, MPI_INT, out, 1, MPI_INT, c);
}

static void test_mesh_communicators(void **state)
{
    (void)state;
    long bad = 0;
    char first[256] = "";
    for (int l = 0; l < N_LAYOUTS; l++) {
        int tp = layouts[l][0], dp = layouts[l][1];
        mesh_t m;
        mesh_init(&m, MPI_COMM_WORLD, tp, dp);
        int want_t = world_rank % tp, want_d = world_rank / tp;
        if (m.world_rank != world_rank || m.world_size != world_size || m.tp != tp || m.dp != dp ||
            m.tp_rank != want_t || m.dp_rank != want_d)
            MISMATCH(first, "(tp %d, dp %d): mesh fields rank %d size %d tp_rank %d dp_rank %d", tp, dp,
                     m.world_rank, m.world_size, m.tp_rank, m.dp_rank);
        int ts = -1, tr = -1, ds = -1, dr = -1;
        MPI_Comm_size(m.tp_comm, &ts);
        MPI_Comm_rank(m.tp_comm, &tr);
        MPI_Comm_size(m.dp_comm, &ds);
        MPI_Comm_rank(m.dp_comm, &dr);
        if (ts != tp || tr != want_t || ds != dp || dr != want_d)
            MISMATCH(first, "(tp %d, dp %d): tp_comm size/rank %d/%d (want %d/%d), dp_comm %d/%d (want %d/%d)",
                     tp, dp, ts, tr, tp, want_t, ds, dr, dp, want_d);
        if (ts == tp && ds == dp) {
            int got[16];
            members(m.tp_comm, got);
            for (int t = 0; t < tp; t++)
                if (got[t] != want_d * tp + t)
                    MISMATCH(first, "(tp %d, dp %d): tp_comm member %d is world rank %d, want %d", tp, dp, t,
                             got[t], want_d * tp + t);
            members(m.dp_comm, got);
            for (int d = 0; d < dp; d++)
                if (got[d] != d * tp + want_t)
                    MISMATCH(first, "(tp %d, dp %d): dp_comm member %d is world rank %d, want %d", tp, dp, d,
                             got[d], d * tp + want_t);
        }
        mesh_free(&m);
    }
    assert_int_equal(world_bad(bad, first), 0);
}

/* ---- tensor parallel: f and g ------------------------------------------------------ */

typedef void (*tp_op)(tp_ctx_t *, real *, size_t);

/* y[i] = (tp_rank + 1) * (i % 61 + 1) on every rank of the group; after the all-reduce
 * every rank holds (i % 61 + 1) * tp (tp + 1) / 2. */
static long check_op(tp_op op, const char *name, char *first, size_t firstlen)
{
    long bad = 0;
    char buf[256] = "";
    for (int l = 0; l < N_LAYOUTS; l++) {
        int tp = layouts[l][0], dp = layouts[l][1];
        mesh_t m;
        mesh_init(&m, MPI_COMM_WORLD, tp, dp);
        tp_ctx_t ctx = {.comm = m.tp_comm, .rank = m.tp_rank, .size = m.tp, .comm_s = 0};
        const size_t n = 1000;
        real *y = xmalloc(n * sizeof *y);
        for (size_t i = 0; i < n; i++)
            y[i] = (real)((m.tp_rank + 1) * (int)(i % 61 + 1));
        op(&ctx, y, n);
        for (size_t i = 0; i < n; i++) {
            double want = (double)(i % 61 + 1) * tp * (tp + 1) / 2;
            if ((double)y[i] != want)
                MISMATCH(buf, "%s at tp %d: y[%zu] = %.9g, want %.9g", name, tp, i, (double)y[i], want);
        }
        if (ctx.comm_s < 0)
            MISMATCH(buf, "%s at tp %d: comm_s %g < 0", name, tp, ctx.comm_s);
        free(y);
        mesh_free(&m);
    }
    /* a one-rank group without a communicator: no communication, input unchanged */
    tp_ctx_t one = {.comm = MPI_COMM_NULL, .rank = 0, .size = 1, .comm_s = 0};
    real z[5] = {1, -2, 3.5f, 0, 7};
    op(&one, z, 5);
    if (z[0] != 1 || z[1] != -2 || z[2] != 3.5f || z[3] != 0 || z[4] != 7)
        MISMATCH(buf, "%s with tp = 1 changed its input", name);
    if (bad)
        snprintf(first, firstlen, "%s", buf);
    return bad;
}

static void test_tp_g_forward(void **state)
{
    (void)state;
    char first[256] = "";
    long bad = check_op(tp_g_forward, "tp_g_forward", first, sizeof first);
    assert_int_equal(world_bad(bad, first), 0);
}

static void test_tp_f_backward(void **state)
{
    (void)state;
    char first[256] = "";
    long bad = check_op(tp_f_backward, "tp_f_backward", first, sizeof first);
    assert_int_equal(world_bad(bad, first), 0);
}

static void test_tp_sum_double(void **state)
{
    (void)state;
    long bad = 0;
    char first[256] = "";
    for (int l = 0; l < N_LAYOUTS; l++) {
        int tp = layouts[l][0], dp = layouts[l][1];
        mesh_t m;
        mesh_init(&m, MPI_COMM_WORLD, tp, dp);
        tp_ctx_t ctx = {.comm = m.tp_comm, .rank = m.tp_rank, .size = m.tp, .comm_s = 0};
        /* v = 0.25 * (tp_rank + 1) + 1000 * dp_rank: the dp_rank term checks that only
         * the own TP group is summed; dyadic values, exact in double */
        double v = 0.25 * (m.tp_rank + 1) + 1000.0 * m.dp_rank;
        double got = tp_sum_double(&ctx, v);
        double want = 0.25 * tp * (tp + 1) / 2 + 1000.0 * m.dp_rank * tp;
        if (got != want)
            MISMATCH(first, "tp_sum_double at tp %d, dp_rank %d: %.17g, want %.17g", tp, m.dp_rank, got, want);
        mesh_free(&m);
    }
    tp_ctx_t one = {.comm = MPI_COMM_NULL, .rank = 0, .size = 1, .comm_s = 0};
    if (tp_sum_double(&one, 3.75) != 3.75)
        MISMATCH(first, "tp_sum_double with tp = 1 is not the identity");
    assert_int_equal(world_bad(bad, first), 0);
}

/* ---- data parallel: bucketed all-reduce ------------------------------------------- */

/* A tiny model (3 towers, 3 layers) at the given TP degree; only its tensor table and
 * gradient buffer are used. */
static void build_model(model_t *model, config_t *cfg, vocab_t *v, const mesh_t *m)
{
    char err[512];
    char *over[] = {"model.kind=mot", "data.modalities=text,image,speech", "data.mix=1,1,1",
                    "model.d_model=32", "model.n_heads=4", "model.d_ff=64", "model.n_layers=3",
                    "model.seq_len=8", "train.global_batch=4"};
    if (!config_load(cfg, NULL, (int)(sizeof over / sizeof over[0]), over, err, sizeof err))
        fail_msg("config: %s", err);
    char tpv[32];
    snprintf(tpv, sizeof tpv, "%d", m->tp);
    if (!config_set(cfg, "parallel", "tp", tpv, err, sizeof err) ||
        !config_check_layout(cfg, m->world_size, err, sizeof err))
        fail_msg("layout: %s", err);
    if (!data_vocab(v, &cfg->data, err, sizeof err))
        fail_msg("vocab: %s", err);
    tp_ctx_t tp = {.comm = m->tp_comm, .rank = m->tp_rank, .size = m->tp, .comm_s = 0};
    model_build(model, &cfg->model, v, tp, cfg->micro_batch);
}

/* DP over the model's gradient segments, as the trainer sets it up: one segment per
 * tensor with the stage the table gives it. */
static void sync_init(dp_sync_t *s, const mesh_t *m, const model_t *model, double bucket_mb, bool overlap)
{
    dp_segment_t *seg = calloc((size_t)model->n_tensors, sizeof *seg);
    for (int i = 0; i < model->n_tensors; i++) {
        const tensor_info_t *t = &model->tensors[i];
        seg[i] = (dp_segment_t){t->name, t->offset, t->numel, t->stage};
    }
    dp_sync_init(s, m->dp_comm, m->dp, model->grads, seg, model->n_tensors, bucket_mb, 0, overlap);
    free(seg);
}

/* overlap: buckets start from the backward hook (MPI_Iallreduce); without it none
 * starts before dp_sync_finish, which all-reduces them blocking. Both sum exactly. */
static void test_dp_buckets(void **state)
{
    bool overlap = *(const bool *)*state;
    long bad = 0;
    char first[512] = "";
    for (int l = 0; l < N_LAYOUTS; l++) {
        int tp = layouts[l][0], dp = layouts[l][1];
        if (dp < 2)
            continue; /* dp = 1: nothing to reduce (checked below that nothing changes) */
        mesh_t m;
        mesh_init(&m, MPI_COMM_WORLD, tp, dp);
        config_t cfg;
        vocab_t v;
        model_t model;
        build_model(&model, &cfg, &v, &m);
        /* a few thousand fp32 per bucket: several buckets per layer */
        double bucket_mb = 16384.0 / 1048576.0;
        dp_sync_t s;
        sync_init(&s, &m, &model, bucket_mb, overlap);

        /* buckets: several, contiguous, covering the buffer, none ready before its
         * tensors are final */
        if (s.n_buckets < 4)
            MISMATCH(first, "(tp %d, dp %d): only %d buckets for %zu elements at %.4g MiB", tp, dp,
                     s.n_buckets, model.n_local, bucket_mb);
        size_t next = 0;
        for (int b = 0; b < s.n_buckets; b++) {
            if (s.buckets[b].offset != next || s.buckets[b].count == 0)
                MISMATCH(first, "(tp %d, dp %d): bucket %d at %zu (+%zu), expected to start at %zu", tp, dp,
                         b, s.buckets[b].offset, s.buckets[b].count, next);
            next = s.buckets[b].offset + s.buckets[b].count;
        }
        if (next != model.n_local)
            MISMATCH(first, "(tp %d, dp %d): buckets end at %zu, gradient buffer has %zu", tp, dp, next,
                     model.n_local);
        int max_stage = 0;
        for (int i = 0; i < model.n_tensors; i++) {
            const tensor_info_t *t = &model.tensors[i];
            int st = t->stage;
            max_stage = st > max_stage ? st : max_stage;
            for (int b = 0; b < s.n_buckets; b++) {
                const dp_bucket_t *k = &s.buckets[b];
                bool overlaps = t->offset < k->offset + k->count && k->offset < t->offset + t->numel;
                if (overlaps && k->ready_stage < st)
                    MISMATCH(first, "(tp %d, dp %d): bucket %d ready at stage %d holds %s, final at stage %d",
                             tp, dp, b, k->ready_stage, t->name, st);
            }
        }

        /* rank-valued gradients: g[i] = (world_rank + 1) * (i % 37 + 1); the DP group
         * of this rank is {d * tp + tp_rank}, so the sum is (i % 37 + 1) * sum_d (d tp + tp_rank + 1) */
        for (size_t i = 0; i < model.n_local; i++)
            model.grads[i] = (real)((world_rank + 1) * (int)(i % 37 + 1));
        double rsum = 0;
        for (int d = 0; d < dp; d++)
            rsum += d * tp + m.tp_rank + 1;

        /* backward's stage calls, in order; after each, exactly the buckets whose
         * tensors are final have started (with overlap; none without) */
        dp_sync_arm(&s);
        if (!s.armed)
            MISMATCH(first, "(tp %d, dp %d): dp_sync_arm did not arm", tp, dp);
        for (int stage = 0; stage <= max_stage; stage++) {
            dp_sync_stage(&s, stage);
            for (int b = 0; b < s.n_buckets; b++)
                if (s.buckets[b].started != (overlap && s.buckets[b].ready_stage <= stage))
                    MISMATCH(first, "(tp %d, dp %d): after stage %d bucket %d (ready at %d) started = %d", tp,
                             dp, stage, b, s.buckets[b].ready_stage, s.buckets[b].started);
        }
        dp_sync_finish(&s);
        if (s.armed)
            MISMATCH(first, "(tp %d, dp %d): dp_sync_finish left the hook armed", tp, dp);
        for (size_t i = 0; i < model.n_local; i++) {
            double want = (double)(i % 37 + 1) * rsum;
            if ((double)model.grads[i] != want)
                MISMATCH(first, "(tp %d, dp %d): grad[%zu] = %.9g, want %.9g", tp, dp, i,
                         (double)model.grads[i], want);
        }

        /* finish without any stage call (backward that never reported): still exact */
        for (size_t i = 0; i < model.n_local; i++)
            model.grads[i] = (real)((world_rank + 1) * (int)(i % 37 + 1));
        dp_sync_arm(&s);
        dp_sync_finish(&s);
        for (size_t i = 0; i < model.n_local; i++) {
            double want = (double)(i % 37 + 1) * rsum;
            if ((double)model.grads[i] != want) {
                MISMATCH(first, "(tp %d, dp %d), no stage calls: grad[%zu] = %.9g, want %.9g", tp, dp, i,
                         (double)model.grads[i], want);
                break;
            }
        }
        dp_sync_free(&s);
        model_free(&model);
        mesh_free(&m);
    }

    /* dp = 1 (tp 4): arm/finish leave the gradients alone */
    mesh_t m;
    mesh_init(&m, MPI_COMM_WORLD, 4, 1);
    config_t cfg;
    vocab_t v;
    model_t model;
    build_model(&model, &cfg, &v, &m);
    dp_sync_t s;
    sync_init(&s, &m, &model, 16384.0 / 1048576.0, overlap);
    for (size_t i = 0; i < model.n_local; i++)
        model.grads[i] = (real)(world_rank + 1);
    dp_sync_arm(&s);
    dp_sync_finish(&s);
    for (size_t i = 0; i < model.n_local; i++)
        if (model.grads[i] != (real)(world_rank + 1)) {
            MISMATCH(first, "dp = 1: grad[%zu] changed to %.9g", i, (double)model.grads[i]);
            break;
        }
    dp_sync_free(&s);
    model_free(&model);
    mesh_free(&m);
    assert_int_equal(world_bad(bad, first), 0);
}



/* ---- data parallel under ZeRO-1: reduce-scatter and all-gather -------------------- */

/* dp_shard partitions [0, count) into size contiguous pieces in rank order, sizes
 * differing by at most one, including count < size (some pieces empty). */
static void test_dp_shard(void **state)
{
    (void)state;
    long bad = 0;
    char first[256] = "";
    size_t counts[] = {0, 1, 3, 4, 5, 37, 1000, 4096, 4097};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (int size = 1; size <= 8; size++) {
            size_t next = 0, lo, n, nmin = counts[c], nmax = 0;
            for (int r = 0; r < size; r++) {
                dp_shard(counts[c], r, size, &lo, &n);
                if (lo != next)
                    MISMATCH(first, "dp_shard(%zu, %d, %d) starts at %zu, want %zu", counts[c], r, size, lo, next);
                next = lo + n;
                nmin = n < nmin ? n : nmin;
                nmax = n > nmax ? n : nmax;
            }
            if (next != counts[c] || nmax - nmin > 1)
                MISMATCH(first, "dp_shard(%zu, *, %d): covers %zu, sizes %zu..%zu", counts[c], size, next, nmin, nmax);
        }
    assert_int_equal(world_bad(bad, first), 0);
}

/* Rank-valued gradients reduce-scattered in the buckets: each rank's owned shard of
 * every bucket (dp_shard) holds the exact sum over its DP group, at its own place;
 * then rank-valued parameters on the owned shards only are all-gathered: every
 * element holds its owner's value on every rank. */
static void test_dp_zero(void **state)
{
    bool overlap = *(const bool *)*state;
    long bad = 0;
    char first[512] = "";
    for (int l = 0; l < N_LAYOUTS; l++) {
        int tp = layouts[l][0], dp = layouts[l][1];
        if (dp < 2)
            continue;
        mesh_t m;
        mesh_init(&m, MPI_COMM_WORLD, tp, dp);
        config_t cfg;
        vocab_t v;
        model_t model;
        build_model(&model, &cfg, &v, &m);
        dp_segment_t *seg = calloc((size_t)model.n_tensors, sizeof *seg);
        int max_stage = 0;
        for (int i = 0; i < model.n_tensors; i++) {
            const tensor_info_t *t = &model.tensors[i];
            seg[i] = (dp_segment_t){t->name, t->offset, t->numel, t->stage};
            max_stage = t->stage > max_stage ? t->stage : max_stage;
        }
        dp_sync_t s;
        dp_sync_init(&s, m.dp_comm, m.dp, model.grads, seg, model.n_tensors, 16384.0 / 1048576.0, 1, overlap);
        free(seg);
        if (!s.zero || s.n_buckets < 4)
            MISMATCH(first, "(tp %d, dp %d): zero %d, %d buckets", tp, dp, s.zero, s.n_buckets);
        size_t *off = calloc((size_t)s.n_buckets, sizeof *off), *cnt = calloc((size_t)s.n_buckets, sizeof *cnt);
        dp_sync_owned(&s, off, cnt);
        /* owner[i]: the DP rank whose shard holds element i, from dp_shard alone */
        int *owner = calloc(model.n_local, sizeof *owner);
        for (int b = 0; b < s.n_buckets; b++)
            for (int r = 0; r < dp; r++) {
                size_t lo, n;
                dp_shard(s.buckets[b].count, r, dp, &lo, &n);
                for (size_t j = 0; j < n; j++)
                    owner[s.buckets[b].offset + lo + j] = r;
                if (r == m.dp_rank && (off[b] != s.buckets[b].offset + lo || cnt[b] != n))
                    MISMATCH(first, "(tp %d, dp %d): bucket %d owned at %zu (+%zu), dp_shard says %zu (+%zu)", tp,
                             dp, b, off[b], cnt[b], s.buckets[b].offset + lo, n);
            }

        for (size_t i = 0; i < model.n_local; i++)
            model.grads[i] = (real)((world_rank + 1) * (int)(i % 37 + 1));
        double rsum = 0;
        for (int d = 0; d < dp; d++)
            rsum += d * tp + m.tp_rank + 1;
        dp_sync_arm(&s);
        for (int stage = 0; stage <= max_stage; stage++)
            dp_sync_stage(&s, stage);
        dp_sync_finish(&s);
        size_t owned = 0;
        for (int b = 0; b < s.n_buckets; b++)
            for (size_t j = 0; j < cnt[b]; j++) {
                size_t i = off[b] + j;
                double want = (double)(i % 37 + 1) * rsum;
                owned++;
                if ((double)model.grads[i] != want)
                    MISMATCH(first, "(tp %d, dp %d): owned grad[%zu] = %.9g, want %.9g", tp, dp, i,
                             (double)model.grads[i], want);
            }
        /* the shards partition the buffer: their sizes add up over the DP group */
        long total = (long)owned, all = 0;
        MPI_Allreduce(&total, &all, 1, MPI_LONG, MPI_SUM, m.dp_comm);
        if (all != (long)model.n_local)
            MISMATCH(first, "(tp %d, dp %d): shards hold %ld elements, the buffer %zu", tp, dp, all, model.n_local);

        /* all-gather: owned elements carry (dp_rank + 1) (i % 37 + 1), the rest -1 */
        for (size_t i = 0; i < model.n_local; i++)
            model.params[i] = -1;
        for (int b = 0; b < s.n_buckets; b++)
            for (size_t j = 0; j < cnt[b]; j++)
                model.params[off[b] + j] = (real)((m.dp_rank + 1) * (int)((off[b] + j) % 37 + 1));
        dp_sync_gather(&s, model.params);
        for (size_t i = 0; i < model.n_local; i++) {
            real want = (real)((owner[i] + 1) * (int)(i % 37 + 1));
            if (model.params[i] != want) {
                MISMATCH(first, "(tp %d, dp %d): gathered param[%zu] = %.9g, want %.9g (owner %d)", tp, dp, i,
                         (double)model.params[i], (double)want, owner[i]);
                break;
            }
        }
        free(owner);
        free(off);
        free(cnt);
        dp_sync_free(&s);
        model_free(&model);
        mesh_free(&m);
    }
    assert_int_equal(world_bad(bad, first), 0);
}

/* the DP tests run both ways (state: parallel.dp_overlap): collectives started from
 * the backward hook, or blocking in dp_sync_finish and dp_sync_gather */
static bool blocking = false, overlapped = true;

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh_coords),
        cmocka_unit_test(test_mesh_communicators),
        cmocka_unit_test(test_tp_g_forward),
        cmocka_unit_test(test_tp_f_backward),
        cmocka_unit_test(test_tp_sum_double),
        {"test_dp_buckets, blocking", test_dp_buckets, NULL, NULL, &blocking},
        {"test_dp_buckets, overlap", test_dp_buckets, NULL, NULL, &overlapped},
        cmocka_unit_test(test_dp_shard),
        {"test_dp_zero, blocking", test_dp_zero, NULL, NULL, &blocking},
        {"test_dp_zero, overlap", test_dp_zero, NULL, NULL, &overlapped},
    };
    return mpitest_main("mpi_collectives", tests, sizeof tests / sizeof tests[0], argc, argv);
}
