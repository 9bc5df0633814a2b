/* AdamW, the learning-rate schedule and gradient-norm clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/mesh.h"
#include "motscale/optim.h"

void adamw_init(adamw_t *o, size_t n)
{
    adamw_init_sharded(o, &(size_t){0}, &n, 1, MPI_COMM_NULL);
}

void adamw_init_sharded(adamw_t *o, const size_t *offset, const size_t *count, int n_ranges, MPI_Comm comm)
{
    o->comm = comm;
    o->n_ranges = n_ranges;
    o->ranges = xcalloc((size_t)(n_ranges > 0 ? n_ranges : 1), sizeof *o->ranges);
    o->n = 0;
    for (int r = 0; r < n_ranges; r++) {
        if (r > 0 && offset[r] < offset[r - 1] + count[r - 1])
            DIE(EXIT_FAULT, "adamw_init_sharded: range %d at %zu overlaps the one before", r, offset[r]);
        o->ranges[r] = (adamw_range_t){offset[r], count[r], o->n};
        o->n += count[r];
    }
    o->m = xcalloc(o->n ? o->n : 1, sizeof(real));
    o->v = xcalloc(o->n ? o->n : 1, sizeof(real));
}

void adamw_free(adamw_t *o)
{
    free(o->m);
    free(o->v);
    free(o->ranges);
    o->m = o->v = NULL;
    o->ranges = NULL;
}

/* A tensor's part inside one of the ranges: buffer offset, length, moment offset. */
typedef struct piece {
    int tensor;
    size_t offset, count, moff;
} piece_t;

/* The pieces in buffer order: tensors and ranges both sorted, merged. *ri, *ti
 * start at 0; false when there are no more. Unsharded, each tensor is one piece. */
static bool next_piece(const adamw_t *o, const model_t *m, int *ri, int *ti, piece_t *p)
{
    while (*ri < o->n_ranges && *ti < m->n_tensors) {
        const adamw_range_t *r = &o->ranges[*ri];
        const tensor_info_t *t = &m->tensors[*ti];
        if (t->frozen) { /* no gradient, no moments (they lie beyond every range anyway) */
            ++*ti;
            continue;
        }
        size_t a = r->offset > t->offset ? r->offset : t->offset;
        size_t b_r = r->offset + r->count, b_t = t->offset + t->numel;
        size_t b = b_r < b_t ? b_r : b_t;
        *p = (piece_t){*ti, a, b > a ? b - a : 0, r->moff + (a - r->offset)};
        if (b_t <= b_r)
            ++*ti;
        else
            ++*ri;
        if (b > a)
            return true;
    }
    return false;
}

void adamw_step(adamw_t *o, model_t *m, int64_t t, double lr, double gscale, const adamw_hp_t *hp)
{
    /* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
     * p -= lr (m / c1) / (sqrt(v / c2) + eps) + lr wd p,  c_i = 1 - b_i^t.
     * Constants folded once so the loop is plain multiply-adds (it vectorises). */
    const real b1 = (real)hp->beta1, b2 = (real)hp->beta2;
    const real a1 = (real)(1 - hp->beta1), a2 = (real)(1 - hp->beta2);
    const real step = (real)(lr / (1 - pow(hp->beta1, (double)t)));
    const real rc2 = (real)(1 / sqrt(1 - pow(hp->beta2, (double)t)));
    const real eps = (real)hp->eps, gs = (real)gscale;
    piece_t pc;
    for (int ri = 0, ti = 0; next_piece(o, m, &ri, &ti, &pc);) {
        const real keep = (real)(1 - (m->tensors[pc.tensor].decay ? lr * hp->weight_decay : 0));
        real *restrict p = m->params + pc.offset;
        real *restrict g = m->grads + pc.offset;
        real *restrict mm = o->m + pc.moff, *restrict vv = o->v + pc.moff;
        for (size_t j = 0; j < pc.count; j++) {
            real gj = gs * g[j];
            g[j] = 0; /* consumed: the next step accumulates from zero */
            real mj = b1 * mm[j] + a1 * gj;
            real vj = b2 * vv[j] + a2 * gj * gj;
            mm[j] = mj;
            vv[j] = vj;
            p[j] = keep * p[j] - step * mj / (REAL_SQRT(vj) * rc2 + eps);
        }
    }
    if (o->comm != MPI_COMM_NULL) /* the other ranks' shards were not consumed here */
        memset(m->grads, 0, m->n_trainable * sizeof *m->grads);
}

double lr_at(const lr_schedule_t *s, int64_t step)
{
    /* docs/config.md, "The learning-rate schedule", step s 0-based, W warm-up, S steps:
     *   s < W:                 lr (s + 1) / W
     *   s >= W, S - W = 1:     lr_min (the one decay step is the last step)
     *   s >= W, S - W >= 2:    lr_min + (lr - lr_min) (1 + cos(pi (s - W) / (S - W - 1))) / 2 */
    if (step < s->warmup)
        return s->lr * (double)(step + 1) / (double)s->warmup;
    int64_t span = s->steps - s->warmup;
    if (span <= 1)
        return s->lr_min;
    double frac = (double)(step - s->warmup) / (double)(span - 1);
    return s->lr_min + 0.5 * (s->lr - s->lr_min) * (1 + cos(M_PI * frac));
}

/* Sum of squares with eight independent double accumulators (no reassociation
 * needed for the compiler to overlap them). */
static double sum_squares(const real *g, size_t n)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)g[j + k] * g[j + k];
    for (; j < n; j++)
        acc[0] += (double)g[j] * g[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double grad_global_norm(model_t *m, const adamw_t *o)
{
    double ss[2] = {0, 0}; /* replicated, sharded over TP */
    piece_t pc;
    for (int ri = 0, ti = 0; next_piece(o, m, &ri, &ti, &pc);)
        ss[m->tensors[pc.tensor].shard != SHARD_NONE] += sum_squares(m->grads + pc.offset, pc.count);
    if (o->comm != MPI_COMM_NULL)
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ss, 2, MPI_DOUBLE, MPI_SUM, o->comm));
    return sqrt(ss[0] + tp_sum_double(&m->tp, ss[1]));
}

/* This rank's piece of [offset, offset + count): its start in the range and length,
 * and its moment offset; count 0 when it owns none of it. */
static void own_piece(const adamw_t *o, size_t offset, size_t count, size_t *lo, size_t *n, size_t *moff)
{
    *lo = *n = *moff = 0;
    for (int r = 0; r < o->n_ranges; r++) {
        const adamw_range_t *g = &o->ranges[r];
        size_t a = g->offset > offset ? g->offset : offset;
        size_t b = g->offset + g->count < offset + count ? g->offset + g->count : offset + count;
        if (b > a) {
            *lo = a - offset;
            *n = b - a;
            *moff = g->moff + (a - g->offset);
            return;
        }
    }
}

void adamw_gather_range(const adamw_t *o, const real *mom, size_t offset, size_t count, real *full)
{
    size_t lo, n, moff;
    own_piece(o, offset, count, &lo, &n, &moff);
    int size, rank, mine[2] = {(int)lo, (int)n};
    MPI_CHECK(MPI_Comm_size(o->comm, &size));
    MPI_CHECK(MPI_Comm_rank(o->comm, &rank));
    int *all = xcalloc(2 * (size_t)size, sizeof *all), *cnt = xcalloc((size_t)size, sizeof *cnt),
        *dsp = xcalloc((size_t)size, sizeof *dsp);
    MPI_CHECK(MPI_Gather(mine, 2, MPI_INT, all, 2, MPI_INT, 0, o->comm));
    for (int r = 0; r < size; r++) {
        dsp[r] = all[2 * r];
        cnt[r] = all[2 * r + 1];
    }
    MPI_CHECK(MPI_Gatherv(mom + moff, (int)n, MPI_REAL_T, full, cnt, dsp, MPI_REAL_T, 0, o->comm));
    free(all);
    free(cnt);
    free(dsp);
}

void adamw_take_range(const adamw_t *o, real *mom, size_t offset, size_t count, const real *full)
{
    size_t lo, n, moff;
    own_piece(o, offset, count, &lo, &n, &moff);
    memcpy(mom + moff, full + lo, n * sizeof *mom);
}

