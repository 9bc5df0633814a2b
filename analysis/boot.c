/* The one-seed interval of a baseline/candidate pair: each loss curve split into a
 * smooth trend and residuals, the residuals resampled in moving blocks onto the
 * trend, the replicate curves smoothed and step-matched as the originals are; the
 * percentile interval of the replicates. Why on the curves and not on the matched
 * points: docs/analysis.md ("Intervals"). */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

/* Yule-Walker AR(p) of x[0..n) (centred) by the Levinson-Durbin recursion for
 * p = 1 .. pmax, keeping the order with the smallest AIC n ln(sigma_p^2) + 2 p
 * (p = 0, white, unless an order beats it). phi[1..p]; returns p. */
static int ar_fit(const double *x, size_t n, int pmax, double *phi)
{
    double g[ANALYSIS_AR_MAX + 1], cur[ANALYSIS_AR_MAX + 1] = {0}, tmp[ANALYSIS_AR_MAX + 1];
    for (int k = 0; k <= pmax; k++) {
        double s = 0;
        for (size_t i = 0; i + (size_t)k < n; i++)
            s += x[i] * x[i + (size_t)k];
        g[k] = s / (double)n;
    }
    if (!(g[0] > 0))
        return 0;
    double v = g[0], best = (double)n * log(v);
    int order = 0;
    for (int p = 1; p <= pmax; p++) {
        double acc = g[p];
        for (int j = 1; j < p; j++)
            acc -= cur[j] * g[p - j];
        double k = acc / v;
        for (int j = 1; j < p; j++)
            tmp[j] = cur[j] - k * cur[p - j];
        for (int j = 1; j < p; j++)
            cur[j] = tmp[j];
        cur[p] = k;
        v *= 1 - k * k;
        if (!(v > 0))
            break;
        double aic = (double)n * log(v) + 2.0 * p;
        if (aic < best) {
            best = aic;
            order = p;
            for (int j = 1; j <= p; j++)
                phi[j] = cur[j];
        }
    }
    return order;
}

bool analysis_noise_fit(analysis_noise_t *nm, const analysis_series_t *s)
{
    memset(nm, 0, sizeof *nm);
    size_t n = s->n;
    nm->trend = xmalloc((n + 1) * sizeof *nm->trend);
    nm->pool = xmalloc((n + 1) * sizeof *nm->pool);
    nm->knots = analysis_trend(nm->trend, s->step, s->raw, n, ANALYSIS_TREND_KNOTS);
    if (nm->knots < 0)
        return false;
    /* residuals from the part of the run past its start, where the loss falls fastest
     * and the knots (equal in ln step) crowd */
    double from = ANALYSIS_POOL_FROM * s->step[n - 1], mean = 0;
    for (size_t i = 0; i < n; i++)
        if (s->step[i] >= from)
            mean += nm->pool[nm->n_pool++] = s->raw[i] - nm->trend[i];
    if (nm->n_pool < 8)
        return false;
    mean /= (double)nm->n_pool;
    for (size_t i = 0; i < nm->n_pool; i++)
        nm->pool[i] -= mean;
    /* Prewhitening: an AR(p) filter takes out the correlation it can model, and the
     * blocks are drawn from its innovations, then recoloured by the same filter. */
    int pmax = (int)fmin(ANALYSIS_AR_MAX, floor(10 * log10((double)nm->n_pool)));
    nm->ar_p = pmax > 0 ? ar_fit(nm->pool, nm->n_pool, pmax, nm->phi) : 0;
    size_t p = (size_t)nm->ar_p, k = 0;
    for (size_t t = p; t < nm->n_pool; t++) {
        double u = nm->pool[t];
        for (size_t j = 1; j <= p; j++)
            u -= nm->phi[j] * nm->pool[t - j];
        nm->pool[k++] = u;
    }
    nm->n_pool = k;
    nm->block = analysis_block_length(nm->pool, nm->n_pool);
    nm->ok = true;
    return true;
}

void analysis_noise_free(analysis_noise_t *nm)
{
    free(nm->trend);
    free(nm->pool);
    memset(nm, 0, sizeof *nm);
}

/* A replicate of s: its trend plus resampled residuals, smoothed with window. */
static void replicate(analysis_series_t *rep, const analysis_series_t *s,
                      const analysis_noise_t *nm, gsl_rng *rng, double window)
{
    /* innovations for a burn-in of ANALYSIS_AR_BURN rows and the curve, recoloured */
    size_t p = (size_t)nm->ar_p, burn = p ? ANALYSIS_AR_BURN : 0, n = s->n + burn;
    double *e = xmalloc(n * sizeof *e);
    analysis_block_resample(rng, e, n, nm->pool, nm->n_pool, nm->block);
    for (size_t t = p; t < n; t++)
        for (size_t j = 1; j <= p; j++)
            e[t] += nm->phi[j] * e[t - j];
    for (size_t i = 0; i < s->n; i++)
        rep->raw[i] = nm->trend[i] + e[burn + i];
    free(e);
    analysis_series_smooth(rep, window);
}

void analysis_pair_bootstrap(double *rep, size_t n_rep, const analysis_series_t *base,
                             const analysis_series_t *cand, const analysis_noise_t *nb,
                             const analysis_noise_t *nc, double window, unsigned long seed)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng)
        DIE(EXIT_FAULT, "out of memory allocating a random number generator");
    gsl_rng_set(rng, seed);
    /* the replicates share the originals' step, FLOPs and wall-clock columns */
    analysis_series_t rb = *base, rc = *cand;
    rb.raw = xmalloc((base->n + 1) * sizeof(double));
    rb.loss = xmalloc((base->n + 1) * sizeof(double));
    rc.raw = xmalloc((cand->n + 1) * sizeof(double));
    rc.loss = xmalloc((cand->n + 1) * sizeof(double));
    for (size_t r = 0; r < n_rep; r++) {
        replicate(&rb, base, nb, rng, window);
        replicate(&rc, cand, nc, rng, window);
        analysis_match_t m;
        analysis_match(&m, &rb, &rc);
        analysis_match_values(&m, rep + r * ANALYSIS_N_STATS);
        analysis_match_free(&m);
    }
    free(rb.raw);
    free(rb.loss);
    free(rc.raw);
    free(rc.loss);
    gsl_rng_free(rng);
}
