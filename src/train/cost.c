/* The step cost model (cost.h): GEMM shapes of the tower transformer at measured
 * rates, counted elementwise traffic, alpha-beta collectives. Formulas and their
 * derivation: docs/performance.md, "The cost model". */
#include <gsl/gsl_multifit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/cost.h"
#include "motscale/gemm.h"
#include "motscale/kernels.h"

/* ---- collectives ------------------------------------------------------------------ */

static double log2_ceil(int p)
{
    int k = 0;
    while ((1 << k) < p)
        k++;
    return k;
}

/* alpha and beta of the regime that holds messages of n bytes */
static void regime(const cost_net_t *net, double n, double *a, double *b)
{
    int k = 0;
    while (k < net->n - 1 && n > net->upto[k])
        k++;
    *a = net->alpha[k];
    *b = net->beta[k];
}

double cost_p2p(const cost_net_t *net, double n)
{
    double a, b;
    regime(net, n, &a, &b);
    return a + n * b;
}

double cost_allreduce(const cost_net_t *net, int p, double n, const char **algo)
{
    if (p <= 1) {
        *algo = "none";
        return 0;
    }
    double a, b;
    regime(net, n, &a, &b);
    /* ring: reduce-scatter then all-gather, 2 (p - 1) steps of n / p bytes;
     * recursive doubling (tree): log2 p exchanges of the whole message;
     * Rabenseifner: recursive-halving reduce-scatter, recursive-doubling all-gather */
    double ring = 2 * (p - 1) * a + 2.0 * (p - 1) / p * n * b;
    double tree = log2_ceil(p) * (a + n * b);
    double rab = 2 * log2_ceil(p) * a + 2.0 * (p - 1) / p * n * b;
    double best = fmin(ring, fmin(tree, rab));
    *algo = best == tree ? "tree" : best == rab ? "rabenseifner" : "ring";
    return best;
}

double cost_reduce_scatter(const cost_net_t *net, int p, double n, const char **algo)
{
    if (p <= 1) {
        *algo = "none";
        return 0;
    }
    double a, b;
    regime(net, n, &a, &b);
    /* ring: p - 1 steps of n / p bytes; recursive halving: log2 p steps, halving */
    double ring = (p - 1) * a + (double)(p - 1) / p * n * b;
    double tree = log2_ceil(p) * a + (double)(p - 1) / p * n * b;
    *algo = ring <= tree ? "ring" : "tree";
    return ring <= tree ? ring : tree;
}

double cost_allgather(const cost_net_t *net, int p, double n, const char **algo)
{
    /* the mirror image of the reduce-scatter: the same formulas */
    return cost_reduce_scatter(net, p, n, algo);
}

/* The coefficients (a, b) of alpha and n beta in the formula cost_allreduce picks
 * with one regime (alpha, beta) at (p, n): t = a alpha + b n beta. */
static void allreduce_coef(double alpha, double beta, int p, double n, double *a, double *b)
{
    const char *algo;
    cost_net_t one = {.n = 1, .alpha = {alpha}, .beta = {beta}};
    cost_allreduce(&one, p, n, &algo);
    if (!strcmp(algo, "ring")) {
        *a = 2.0 * (p - 1);
        *b = 2.0 * (p - 1) / p;
    } else if (!strcmp(algo, "rabenseifner")) {
        *a = 2 * log2_ceil(p);
        *b = 2.0 * (p - 1) / p;
    } else {
        *a = *b = log2_ceil(p);
    }
}

/* One regime over points [i0, i1): alpha, beta and the worst relative error. */
static bool fit_one(int kind, int p, const double *bytes, const double *secs, int i0, int i1, double *alpha,
                    double *beta, double *worst)
{
    int n = i1 - i0;
    gsl_matrix *X = gsl_matrix_alloc((size_t)n, 2), *cov = gsl_matrix_alloc(2, 2);
    gsl_vector *y = gsl_vector_alloc((size_t)n), *w = gsl_vector_alloc((size_t)n), *c = gsl_vector_alloc(2);
    gsl_multifit_linear_workspace *ws = gsl_multifit_linear_alloc((size_t)n, 2);
    double al = 1e-6, be = 1e-10;
    bool ok = true;
    for (int round = 0; round < (kind ? 3 : 1) && ok; round++) {
        for (int i = 0; i < n; i++) {
            double a = 1, b = 1;
            if (kind)
                allreduce_coef(al, be, p, bytes[i0 + i], &a, &b);
            gsl_matrix_set(X, (size_t)i, 0, a);
            gsl_matrix_set(X, (size_t)i, 1, b * bytes[i0 + i]);
            gsl_vector_set(y, (size_t)i, secs[i0 + i]);
            gsl_vector_set(w, (size_t)i, 1 / (secs[i0 + i] * secs[i0 + i]));
        }
        double chisq;
        ok = gsl_multifit_wlinear(X, w, y, c, cov, &chisq, ws) == 0;
        al = gsl_vector_get(c, 0);
        be = gsl_vector_get(c, 1);
        if (ok && al < 0) {
            /* a latency cannot be negative: the regime is bandwidth alone, t = b n beta,
             * weighted least squares through the origin */
            double sxy = 0, sxx = 0;
            for (int i = 0; i < n; i++) {
                double x = gsl_matrix_get(X, (size_t)i, 1), wi = gsl_vector_get(w, (size_t)i);
                sxy += wi * x * gsl_vector_get(y, (size_t)i);
                sxx += wi * x * x;
            }
            al = 0;
            be = sxy / sxx;
        }
    }
    *worst = 0;
    for (int i = i0; ok && i < i1; i++) {
        double a = 1, b = 1;
        if (kind)
            allreduce_coef(al, be, p, bytes[i], &a, &b);
        *worst = fmax(*worst, fabs(a * al + b * bytes[i] * be - secs[i]) / secs[i]);
    }
    gsl_multifit_linear_free(ws);
    gsl_matrix_free(X);
    gsl_matrix_free(cov);
    gsl_vector_free(y);
    gsl_vector_free(w);
    gsl_vector_free(c);
    *alpha = al;
    *beta = be;
    return ok;
}

#define FIT_MIN_POINTS 2

bool cost_fit_net(cost_net_t *out, int kind, int p, const double *bytes, const double *secs, int n,
                  int max_regimes, double *worst)
{
    if (n < FIT_MIN_POINTS)
        return false;
    for (int i = 0; i < n; i++)
        if (!(secs[i] > 0))
            return false;
    max_regimes = max_regimes < 1 ? 1 : max_regimes > COST_REGIMES ? COST_REGIMES : max_regimes;
    *worst = INFINITY;
    out->n = COST_REGIMES + 1;
    /* cut points c1 <= c2 <= c3 (c == n: no cut); each regime at least FIT_MIN_POINTS */
    for (int c1 = FIT_MIN_POINTS; c1 <= n; c1++)
        for (int c2 = c1; c2 <= n; c2++)
            for (int c3 = c2; c3 <= n; c3++) {
                int cuts[COST_REGIMES + 1] = {0, c1, c2, c3, n}, k = 0;
                cost_net_t cand = {0};
                double w = 0;
                bool ok = true;
                for (int r = 0; r < COST_REGIMES && ok; r++) {
                    if (cuts[r + 1] == cuts[r])
                        continue;
                    double e = 0;
                    ok = cuts[r + 1] - cuts[r] >= FIT_MIN_POINTS && k < max_regimes &&
                         fit_one(kind, p, bytes, secs, cuts[r], cuts[r + 1], &cand.alpha[k], &cand.beta[k], &e) &&
                         cand.alpha[k] >= 0 && cand.beta[k] > 0; /* a link: latency and time per byte */
                    cand.upto[k] = bytes[cuts[r + 1] - 1];
                    w = fmax(w, e);
                    k++;
                }
                cand.n = k;
                if (ok && (w < *worst * 0.999 || (w <= *worst && k < out->n))) {
                    *out = cand;
                    *worst = w;
                }
            }
    return isfinite(*worst);
}

/* ---- measured rates --------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define GEMM_CACHE 512
typedef struct gemm_timed {
    int64_t m, n, k;
    double s;
} gemm_timed_t;
static gemm_timed_t gemm_cache[GEMM_CACHE];
static int gemm_cached;

double cost_gemm_time(int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0 || K <= 0)
        return 0;
    for (int i = 0; i < gemm_cached; i++)
        if (gemm_cache[i].m == M && gemm_cache[i].n == N && gemm_cache[i].k == K)
            return gemm_cache[i].s;
    double s = cost_gemm_probe(M, N, K);
    if (gemm_cached < GEMM_CACHE)
        gemm_cache[gemm_cached++] = (gemm_timed_t){M, N, K, s};
    return s;
}

double cost_gemm_probe(int64_t M, int64_t N, int64_t K)
{
    /* one core's rate: OpenBLAS would otherwise use every core of the machine (a
     * projection run without OPENBLAS_NUM_THREADS=1 once timed GEMMs 1.3 x faster
     * than the one-thread peak) */
    int threads = gemm_set_threads(1);
    /* In a training step a GEMM's operands were last touched many products ago: the
     * probe rotates through enough copies of them (up to 32 MiB in all, what a last
     * level cache here holds) that none is cache-hot when its turn comes. */
    size_t sa = (size_t)(M * K), sb = (size_t)(K * N), sc = (size_t)(M * N);
    double one = (double)(sa + sb + sc) * sizeof(real);
    int copies = (int)fmin(64, fmax(1, ceil(32.0 * 1048576 / one)));
    real *a = xmalloc((size_t)copies * sa * sizeof *a), *b = xmalloc((size_t)copies * sb * sizeof *b),
         *c = xcalloc((size_t)copies * sc, sizeof *c);
    for (size_t i = 0; i < (size_t)copies * sa; i++)
        a[i] = (real)((int)(i % 7) - 3) * 0.125f;
    for (size_t i = 0; i < (size_t)copies * sb; i++)
        b[i] = (real)((int)(i % 5) - 2) * 0.25f;
    /* one pass over the copies to warm up, then the median of 5 rounds of at least
     * 2 ms and one pass each */
    for (int j = 0; j < copies; j++)
        gemm(GEMM_PROJ, false, false, M, N, K, 1, a + j * sa, K, b + j * sb, N, 0, c + j * sc, N);
    double t[5];
    for (int r = 0; r < 5; r++) {
        int calls = 0;
        double t0 = now_seconds(), dt;
        do {
            int j = calls % copies;
            gemm(GEMM_PROJ, false, false, M, N, K, 1, a + j * sa, K, b + j * sb, N, 0, c + j * sc, N);
            calls++;
        } while ((dt = now_seconds() - t0) < 2e-3 || calls < copies);
        t[r] = dt / calls;
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    free(a);
    free(b);
    free(c);
    gemm_set_threads(threads);
    return t[2];
}

/* Median seconds of fn over 5 rounds of at least 5 ms each. */
static double time_median(void (*fn)(void *), void *ctx)
{
    double t[5];
    fn(ctx);
    for (int r = 0; r < 5; r++) {
        int calls = 0;
        double t0 = now_seconds(), dt;
        do {
            fn(ctx);
            calls++;
        } while ((dt = now_seconds() - t0) < 5e-3);
        t[r] = dt / calls;
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    return t[2];
}

typedef struct probe_buf {
    real *x, *y, *z;
    int64_t n, rows, cols;
    int64_t *hi;
} probe_buf_t;

static void triad(void *ctx)
{
    probe_buf_t *p = ctx;
    for (int64_t i = 0; i < p->n; i++)
        p->z[i] = p->x[i] + (real)0.5 * p->y[i];
}

static void softmax_fb(void *ctx)
{
    probe_buf_t *p = ctx;
    softmax_prefix(p->x, p->rows, p->cols, p->hi);
    memcpy(p->y, p->x, (size_t)(p->rows * p->cols) * sizeof *p->y);
    softmax_prefix_backward(p->y, p->x, p->rows, p->cols, p->hi);
}

static void xent(void *ctx)
{
    probe_buf_t *p = ctx;
    for (int64_t r = 0; r < p->rows; r++)
        cross_entropy_row(p->y + r * p->cols, p->x + r * p->cols, (int32_t)(r % p->cols), p->cols, 1);
}

void cost_probe_rates(cost_rates_t *r)
{
    /* streaming: three buffers of 1 MiB each, the size of a layer's activations at
     * the benchmark shapes (cache-resident, as the layer kernels run) */
    probe_buf_t p = {.n = 262144};
    p.x = xcalloc((size_t)p.n, sizeof(real));
    p.y = xcalloc((size_t)p.n, sizeof(real));
    p.z = xcalloc((size_t)p.n, sizeof(real));
    r->stream_bytes = 3.0 * sizeof(real) * (double)p.n / time_median(triad, &p);
    /* and over three buffers of 16 MiB, as AdamW streams parameters, gradients and
     * moments that no cache holds */
    probe_buf_t big = {.n = 4194304};
    big.x = xcalloc((size_t)big.n, sizeof(real));
    big.y = xcalloc((size_t)big.n, sizeof(real));
    big.z = xcalloc((size_t)big.n, sizeof(real));
    r->stream_big = 3.0 * sizeof(real) * (double)big.n / time_median(triad, &big);
    free(big.x);
    free(big.y);
    free(big.z);
    /* softmax over a causal 256 x 256 block, forward and backward */
    p.rows = p.cols = 256;
    p.hi = xcalloc((size_t)p.rows, sizeof *p.hi);
    for (int64_t i = 0; i < p.rows; i++) {
        p.hi[i] = i + 1;
        for (int64_t j = 0; j < p.cols; j++)
            p.x[i * p.cols + j] = (real)((i * 7 + j * 3) % 11) * 0.1f;
    }
    r->softmax_elems = (double)(p.rows * (p.rows + 1) / 2) / time_median(softmax_fb, &p);
    /* cross-entropy rows of 4096 logits */
    p.rows = 32;
    p.cols = 4096;
    for (int64_t i = 0; i < p.rows * p.cols; i++)
        p.x[i] = (real)(i % 13) * 0.05f;
    r->xent_elems = (double)(p.rows * p.cols) / time_median(xent, &p);
    free(p.x);
    free(p.y);
    free(p.z);
    free(p.hi);
}

/* ---- the step ----------------------------------------------------------------------- */

/* GEMM seconds of one linear (n rows, in -> out): forward Y = X W, backward
 * dW += X^T dY and dX = dY W^T. */
static double linear_s(const cost_rates_t *r, int64_t n, int64_t in, int64_t out)
{
    if (n <= 0)
        return 0;
    if (r->gemm_flops > 0)
        return 3 * 2.0 * (double)n * (double)in * (double)out / r->gemm_flops;
    return cost_gemm_time(n, out, in) + cost_gemm_time(in, out, n) + cost_gemm_time(n, in, out);
}

/* GEMM seconds of causal attention of one sequence and one head (attention.c): query
 * blocks of 64 rows against the keys up to the block's end; forward QK^T and PV,
 * backward four products of the same shapes. */
static double attention_s(const cost_rates_t *r, int64_t T, int64_t hd)
{
    double s = 0;
    for (int64_t r0 = 0; r0 < T; r0 += 64) {
        int64_t rows = T - r0 < 64 ? T - r0 : 64, kn = r0 + rows;
        if (r->gemm_flops > 0)
            s += 6 * 2.0 * (double)rows * (double)kn * (double)hd / r->gemm_flops;
        else
            s += cost_gemm_time(rows, kn, hd) + cost_gemm_time(rows, hd, kn) + cost_gemm_time(rows, kn, hd) +
                 cost_gemm_time(kn, hd, rows) + cost_gemm_time(rows, hd, kn) + cost_gemm_time(kn, hd, rows);
    }
    return s;
}

/* One micro-batch of B sequences on one rank: GEMM and elementwise seconds. */
static void micro_s(const model_shape_t *s, int32_t V, const double *share, const cost_layout_t *l,
                    const cost_rates_t *r, double *gemm_s, double *elem_s)
{
    int64_t B = l->micro_batch, T = s->seq_len, N = B * T, d = s->d_model;
    int64_t h = d / l->tp, fl = s->d_ff / l->tp, hd = d / s->n_heads, H = s->n_heads / l->tp;
    double g = 0;
    for (int t = 0; t < s->n_towers; t++) {
        int64_t n = (int64_t)llround(share[t] * (double)N);
        g += 3 * linear_s(r, n, d, h) + linear_s(r, n, h, d) + 2 * linear_s(r, n, d, fl) + linear_s(r, n, fl, d);
    }
    g = g * s->n_layers + (double)(B * H * s->n_layers) * attention_s(r, T, hd) + linear_s(r, N, d, V);
    *gemm_s = g;
    /* streaming passes of 4-byte elements per layer (forward + backward): two
     * RMSNorms 12 N d, two residual adds and their gradients 10 N d, tower row
     * gathers and scatters 4 N d, RoPE on q and k 8 N h, QK-norm 12 N h, SwiGLU
     * 8 N fl; then the final norm 6 N d and the embedding 5 N d */
    double passes = (double)s->n_layers * (26.0 * N * d + (8.0 + (s->qk_norm ? 12 : 0)) * N * h + 8.0 * N * fl) +
                    11.0 * N * d;
    double e = passes * sizeof(real) / r->stream_bytes;
    /* causal softmax over the visible keys of every block row, and the head's loss */
    double soft = 0;
    for (int64_t r0 = 0; r0 < T; r0 += 64) {
        int64_t rows = T - r0 < 64 ? T - r0 : 64;
        soft += (double)rows * (double)(r0 + rows);
    }
    e += (double)(B * H * s->n_layers) * soft / r->softmax_elems + (double)N * V / r->xent_elems;
    *elem_s = e;
}

bool cost_project(cost_step_t *o, const model_shape_t *s, int32_t V, const double *share, const cost_layout_t *l,
                  const cost_rates_t *r, const cost_net_t *net, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    if (s->moe_tower_mask || (s->kind != MODEL_DENSE && s->kind != MODEL_MOT && s->kind != MODEL_TOWERS))
        return errorf(err, errlen, "the cost model covers the tower transformer without experts "
                      "(model.kind dense, mot or towers)");
    if (s->image_objective == IMAGE_DIFFUSION)
        return errorf(err, errlen, "the cost model covers token images only (model.image_objective = tokens), "
                      "not the diffusion objective's patch encoder and decoder");
    if (s->tp_backend != TP_MEGATRON)
        return errorf(err, errlen, "the cost model covers parallel.tp_backend = megatron only");
    double mg, me;
    micro_s(s, V, share, l, r, &mg, &me);
    o->gemm_s = l->n_micro * mg;
    o->elem_s = l->n_micro * me;
    model_memory_t mm;
    model_memory(&mm, s, V, l->tp, l->micro_batch);
    double n_local = mm.params / sizeof(real), shard = l->zero && l->dp > 1 ? ceil(n_local / l->dp) : n_local;
    /* AdamW reads and writes p, g, m, v (32 bytes an element it updates), the norm
     * reads g; under zero also the gradient buffer zeroed and the shards moved */
    double opt_bytes = 36.0 * shard + (l->zero && l->dp > 1 ? 4.0 * n_local + 8.0 * shard : 0);
    o->elem_s += opt_bytes / r->stream_big;
    /* TP: per layer and micro-batch two all-reduces forward (g) and two backward (f)
     * of (N, d) fp32, blocking */
    double act = (double)l->micro_batch * s->seq_len * s->d_model * sizeof(real);
    o->tp_s = l->n_micro * 4.0 * s->n_layers * cost_allreduce(net, l->tp, act, &o->tp_algo);
    /* DP: the gradient buffer in buckets of bucket_mb, each reduced over dp */
    double bytes = mm.grads, cap = l->bucket_mb * 1048576.0;
    int nb = (int)ceil(bytes / cap);
    nb = nb < 1 ? 1 : nb;
    double per = bytes / nb, one;
    one = l->zero ? cost_reduce_scatter(net, l->dp, per, &o->dp_algo) : cost_allreduce(net, l->dp, per, &o->dp_algo);
    o->dp_s = nb * one;
    /* overlap: bucket b is ready after (b + 1) / nb of the last micro-batch's backward
     * (two thirds of its GEMM and elementwise time); the buckets go one after another;
     * a share `overlap` of the reduction may run under backward, the rest waits */
    double tb = 2.0 / 3.0 * (mg + me), end = 0;
    for (int b = 0; b < nb; b++)
        end = fmax(end, tb * (b + 1) / nb) + one;
    o->dp_exposed_s = (1 - l->overlap) * o->dp_s + l->overlap * fmax(0, end - tb);
    const char *ignore;
    if (l->zero && l->dp > 1)
        o->gather_s = nb * cost_allgather(net, l->dp, per, &ignore);
    /* loss sums and token counts over dp (three small all-reduces; a fourth for the
     * sharded norm), the TP norm sum */
    o->small_s = (3 + (l->zero ? 1 : 0)) * cost_allreduce(net, l->dp, 64, &ignore) +
                 cost_allreduce(net, l->tp, 8, &ignore);
    o->step_s = o->gemm_s + o->elem_s + o->tp_s + o->dp_exposed_s + o->gather_s + o->small_s;
    flops_report_t fr;
    model_flops(&fr, s, V);
    o->model_flops = fr.train_per_token * (double)l->dp * l->n_micro * l->micro_batch * s->seq_len;
    o->memory = mm.params + mm.grads + (l->zero && l->dp > 1 ? mm.moments / l->dp : mm.moments) + mm.activations;
    return true;
}
