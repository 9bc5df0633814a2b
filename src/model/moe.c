/* The mixture-of-experts FFN slot (docs/model.md, "Mixture of experts"): a router
 * W_r (d x E) in fp32, softmax over experts, expert choice (each expert takes the
 * top-k rows of a routing group by its probability, ties to the earlier row), the
 * experts as SwiGLU FFNs over the rows they took (the FFN slot's layer with experts
 * as row blocks), gate scaling by the router probability, and the router z-loss.
 * Under tensor parallelism the experts are sharded like the dense FFN, or, with
 * expert parallelism, each TP rank runs whole experts of its own; either way every
 * rank holds a partial output that the caller's g all-reduce completes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "motscale/gemm.h"
#include "motscale/kernels.h"
#include "motscale/tp.h"

int64_t moe_capacity_rows(const moe_geom_t *g, int64_t n)
{
    /* k = ceil(capacity x n / E), at most n: exact dense FLOPs when E divides n */
    double k = ceil(g->capacity * (double)n / (double)g->E - 1e-9);
    return k < 1 ? (n > 0) : k > (double)n ? n : (int64_t)k;
}

/* Rows of group [g0, g1) ordered by expert e's probability, highest first, ties
 * to the earlier row: the order expert choice takes them in. */
typedef struct rank_ctx {
    const real *p;
    int E, e;
} rank_ctx_t;

static int by_score(const void *a, const void *b, void *ctx)
{
    const rank_ctx_t *c = ctx;
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    real pi = c->p[i * c->E + c->e], pj = c->p[j * c->E + c->e];
    if (pi != pj)
        return pi > pj ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int by_row(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    return i < j ? -1 : i > j;
}

void moe_route(const moe_geom_t *g, const real *probs, int64_t n, const int64_t *group_off, int n_groups,
               bool top1, int64_t *rows, int64_t *off, int64_t *scratch)
{
    int E = g->E;
    if (top1) {
        /* every row to its most probable expert (the first of equals): causal */
        int64_t *count = scratch;
        memset(count, 0, (size_t)E * sizeof *count);
        for (int64_t t = 0; t < n; t++) {
            int best = 0;
            for (int e = 1; e < E; e++)
                best = probs[t * E + e] > probs[t * E + best] ? e : best;
            count[best]++;
        }
        off[0] = 0;
        for (int e = 0; e < E; e++)
            off[e + 1] = off[e] + count[e];
        memcpy(count, off, (size_t)E * sizeof *count);
        for (int64_t t = 0; t < n; t++) {
            int best = 0;
            for (int e = 1; e < E; e++)
                best = probs[t * E + e] > probs[t * E + best] ? e : best;
            rows[count[best]++] = t;
        }
        return;
    }
    /* expert choice: per group, each expert its top k of the group's rows */
    off[0] = 0;
    for (int e = 0; e < E; e++) {
        int64_t at = off[e];
        for (int q = 0; q < n_groups; q++) {
            int64_t g0 = group_off[q], ng = group_off[q + 1] - g0, k = moe_capacity_rows(g, ng);
            for (int64_t t = 0; t < ng; t++)
                scratch[t] = g0 + t;
            rank_ctx_t c = {probs, E, e};
            qsort_r(scratch, (size_t)ng, sizeof *scratch, by_score, &c);
            qsort(scratch, (size_t)k, sizeof *scratch, by_row); /* gathered in row order */
            memcpy(rows + at, scratch, (size_t)k * sizeof *rows);
            at += k;
        }
        off[e + 1] = at;
    }
}

/* probs = softmax(logits) over E per row; returns sum over rows of lse^2 (z-loss). */
static double router_softmax(real *probs, const real *logits, int64_t n, int E, double *lse_out)
{
    double z2 = 0;
    for (int64_t t = 0; t < n; t++) {
        const real *l = logits + t * E;
        real *p = probs + t * E;
        real mx = l[0];
        for (int e = 1; e < E; e++)
            mx = l[e] > mx ? l[e] : mx;
        double sum = 0;
        for (int e = 0; e < E; e++) {
            p[e] = kernel_exp(l[e] - mx);
            sum += p[e];
        }
        real inv = (real)(1.0 / sum);
        for (int e = 0; e < E; e++)
            p[e] *= inv;
        double lse = log(sum) + (double)mx;
        if (lse_out)
            lse_out[t] = lse;
        z2 += lse * lse;
    }
    return z2;
}

void moe_forward(model_t *m, struct sl_state *sl, const moe_geom_t *g, const moe_weights_t *w,
                 moe_acts_t *A, real *z, const real *x, int64_t n, const int64_t *group_off, int n_groups,
                 bool eval)
{
    int E = g->E;
    int64_t d = g->d, fl = g->fl;
    A->n = n;
    /* logits = x W_r: (n, E), fp32 on every TP rank alike; probs = softmax over experts */
    gemm(GEMM_PROJ, false, false, n, E, d, 1, x, d, m->params + m->tensors[w->router].offset, E, 0,
         A->logits, E);
    A->zloss_sum = router_softmax(A->probs, A->logits, n, E, A->lse);
    if (!m->moe_freeze_routing)
        moe_route(g, A->probs, n, group_off, n_groups, eval && g->eval_top1, A->rows, A->off, A->scratch);
    /* the experts this rank runs: all (sharded) or its own (expert parallel) */
    int64_t at = 0;
    A->n_run = 0;
    for (int e = 0; e < E; e++) {
        if (!moe_runs_here(g, e))
            continue;
        A->run[A->n_run] = e;
        A->run_off[A->n_run] = at;
        for (int64_t i = A->off[e]; i < A->off[e + 1]; i++, at++)
            memcpy(A->xe + at * d, x + A->rows[i] * d, (size_t)d * sizeof(real));
        A->w1[A->n_run] = w->w1[e];
        A->w3[A->n_run] = w->w3[e];
        A->w2[A->n_run] = w->w2[e];
        A->n_run++;
    }
    A->run_off[A->n_run] = at;
    /* ye = FFN_e(xe) over each expert's rows: (rows, d), this rank's part */
    blocks_t b = {A->n_run, A->run_off};
    ffn_weights_t fw = {A->w1, A->w3, A->w2};
    if (at > 0 || sl)
        ffn_forward(m, sl, &b, &fw, &A->ffn, A->ye, A->xe, d, fl, at);
    /* z[t] = sum over the experts that took t of p[t, e] ye; a row no expert took: 0 */
    memset(z, 0, (size_t)(n * d) * sizeof(real));
    for (int r = 0; r < A->n_run; r++) {
        int e = A->run[r];
        int64_t p0 = A->run_off[r];
        for (int64_t i = A->off[e]; i < A->off[e + 1]; i++) {
            int64_t t = A->rows[i];
            real pe = A->probs[t * E + e];
            const real *ye = A->ye + (p0 + i - A->off[e]) * d;
            real *zt = z + t * d;
            for (int64_t j = 0; j < d; j++)
                zt[j] += pe * ye[j];
        }
    }
}

void moe_backward(model_t *m, struct sl_state *sl, const moe_geom_t *g, const moe_weights_t *w,
                  const moe_acts_t *A, moe_scratch_t *S, real *dx, const real *dz, const real *x,
                  real zloss_scale)
{
    int E = g->E;
    int64_t d = g->d, fl = g->fl, n = A->n, rows = A->run_off[A->n_run];
    /* z[t] = sum p[t, e] ye:  dye = p dz,  dp[t, e] = dz[t] . ye (this rank's part) */
    memset(S->dp, 0, (size_t)(n * E) * sizeof(real));
    for (int r = 0; r < A->n_run; r++) {
        int e = A->run[r];
        int64_t p0 = A->run_off[r];
        for (int64_t i = A->off[e]; i < A->off[e + 1]; i++) {
            int64_t t = A->rows[i], q = p0 + i - A->off[e];
            real pe = A->probs[t * E + e];
            const real *dzt = dz + t * d, *ye = A->ye + q * d;
            real *dye = S->dye + q * d;
            double dot = 0;
            for (int64_t j = 0; j < d; j++) {
                dye[j] = pe * dzt[j];
                dot += (double)dzt[j] * ye[j];
            }
            S->dp[t * E + e] += (real)dot;
        }
    }
    /* the full dp: the experts (or their slices) are spread over the TP group */
    tp_g_forward(&m->tp, S->dp, (size_t)(n * E));
    /* ye = FFN(xe):  dxe, then scattered back onto the rows */
    memset(dx, 0, (size_t)(n * d) * sizeof(real));
    blocks_t b = {A->n_run, A->run_off};
    ffn_weights_t fw = {A->w1, A->w3, A->w2};
    if (rows > 0 || sl)
        ffn_backward(m, sl, &b, &fw, &A->ffn, &S->fs, S->dxe, S->dye, A->xe, d, fl, rows);
    for (int r = 0; r < A->n_run; r++) {
        int e = A->run[r];
        int64_t p0 = A->run_off[r];
        for (int64_t i = A->off[e]; i < A->off[e + 1]; i++) {
            const real *src = S->dxe + (p0 + i - A->off[e]) * d;
            real *dst = dx + A->rows[i] * d;
            for (int64_t j = 0; j < d; j++)
                dst[j] += src[j];
        }
    }
    /* p = softmax(logits):  dlogits = p (dp - sum_e dp_e p_e); the z-loss
     * zloss_scale sum_t lse_t^2 adds 2 zloss_scale lse_t p */
    for (int64_t t = 0; t < n; t++) {
        const real *p = A->probs + t * E;
        real *dl = S->dp + t * E;
        double dot = 0;
        for (int e = 0; e < E; e++)
            dot += (double)dl[e] * p[e];
        real zl = (real)(2.0 * zloss_scale * A->lse[t]);
        for (int e = 0; e < E; e++)
            dl[e] = p[e] * (dl[e] - (real)dot) + zl * p[e];
    }
    /* logits = x W_r:  dW_r += x^T dlogits (alike on every TP rank);  dx += dlogits W_r^T,
     * added by TP rank 0 only: the caller's f all-reduce sums dx over the group */
    const tensor_info_t *wr = &m->tensors[w->router];
    gemm(GEMM_PROJ, true, false, d, E, n, 1, x, d, S->dp, E, 1, m->grads + wr->offset, E);
    if (m->tp.rank == 0)
        gemm(GEMM_PROJ, false, true, n, d, E, 1, S->dp, E, m->params + wr->offset, E, 1, dx, d);
}
