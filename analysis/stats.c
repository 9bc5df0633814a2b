/* Intervals and resampling: the t interval over seeds, percentile intervals of
 * bootstrap replicates, the sign-test interval of a median, the automatic block
 * length of a moving-block bootstrap and its resampling, and the B-spline trend of a
 * loss curve whose residuals the bootstrap resamples. Method: docs/analysis.md. */
#include <gsl/gsl_bspline.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

void analysis_interval_set(analysis_interval_t *iv, double value, double lo, double hi,
                           const char *fmt, ...)
{
    iv->value = value;
    iv->lo = lo;
    iv->hi = hi;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(iv->method, sizeof iv->method, fmt, ap);
    va_end(ap);
}

double analysis_median(const double *x, size_t n)
{
    double *c = xmalloc((n + 1) * sizeof *c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            c[k++] = x[i];
    double m = NAN;
    if (k) {
        gsl_sort(c, 1, k);
        m = gsl_stats_median_from_sorted_data(c, 1, k);
    }
    free(c);
    return m;
}

void analysis_t_interval(analysis_interval_t *iv, const double *v, size_t n, double level)
{
    if (n < 2) {
        analysis_interval_set(iv, n ? v[0] : NAN, NAN, NAN, "one value: no interval");
        return;
    }
    double mean = gsl_stats_mean(v, 1, n), sd = gsl_stats_sd_m(v, 1, n, mean);
    double q = gsl_cdf_tdist_Pinv(1 - (1 - level) / 2, (double)(n - 1));
    double h = q * sd / sqrt((double)n);
    analysis_interval_set(iv, mean, mean - h, mean + h,
                          "seeds: mean +- t(%.3f, %zu) sd/sqrt(%zu) over %zu paired seeds",
                          1 - (1 - level) / 2, n - 1, n, n);
}

size_t analysis_percentile(double *rep, size_t n, double level, double *lo, double *hi)
{
    /* NaN replicates (not reached) sort last: they count as above every number, so an
     * upper bound that falls among them is "not reached" (NaN). */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(rep[i]))
            rep[k++] = rep[i];
    size_t finite = k;
    for (; k < n; k++)
        rep[k] = NAN;
    *lo = *hi = NAN;
    if (finite < 2)
        return finite;
    gsl_sort(rep, 1, finite);
    /* The quantile at fraction f of all n replicates sits at index f (n - 1) of the
     * sorted list, whose first `finite` entries are the numbers. */
    double a = (1 - level) / 2, top = (double)(finite - 1);
    double ilo = a * (double)(n - 1), ihi = (1 - a) * (double)(n - 1);
    if (ilo <= top)
        *lo = gsl_stats_quantile_from_sorted_data(rep, 1, finite, ilo / top);
    if (ihi <= top)
        *hi = gsl_stats_quantile_from_sorted_data(rep, 1, finite, ihi / top);
    return finite;
}

void analysis_sign_interval(analysis_interval_t *iv, double *v, size_t n, double level)
{
    if (n == 0) {
        analysis_interval_set(iv, NAN, NAN, NAN, "no values");
        return;
    }
    gsl_sort(v, 1, n);
    double med = gsl_stats_median_from_sorted_data(v, 1, n);
    /* [v_(k), v_(n+1-k)] covers the median with probability 1 - 2 P(B <= k - 1),
     * B ~ Binomial(n, 1/2): the largest k that keeps that at or above level. */
    size_t k = 0;
    while (k + 1 <= n / 2 && 1 - 2 * gsl_cdf_binomial_P((unsigned)k, 0.5, (unsigned)n) >= level)
        k++;
    if (k == 0) {
        analysis_interval_set(iv, med, NAN, NAN,
                              "median of %zu paired ratios; too few for a %.0f%% sign-test "
                              "interval (needs 6)",
                              n, 100 * level);
        return;
    }
    double cover = 1 - 2 * gsl_cdf_binomial_P((unsigned)(k - 1), 0.5, (unsigned)n);
    analysis_interval_set(iv, med, v[k - 1], v[n - k],
                          "median of %zu paired ratios, sign-test interval [r(%zu), r(%zu)] "
                          "(coverage %.1f%%)",
                          n, k, n + 1 - k, 100 * cover);
}

/* Flat-top lag window of Politis and Romano: 1 up to half, then linear to 0. */
static double flat_top(double t)
{
    t = fabs(t);
    return t <= 0.5 ? 1.0 : t <= 1.0 ? 2.0 * (1.0 - t) : 0.0;
}

size_t analysis_block_length(const double *x, size_t n)
{
    if (n < 8)
        return 1;
    /* Politis & White (2004) with the correction of Patton, Politis & White (2009),
     * moving-block form: b = (2 G^2 / D)^(1/3) n^(1/3), D = 4/3 g(0)^2. */
    double ln = log10((double)n);
    size_t kn = (size_t)fmax(5, ceil(sqrt(ln)));
    size_t mmax = (size_t)ceil(sqrt((double)n)) + kn;
    if (mmax + 1 > n)
        mmax = n - 1;
    double mean = gsl_stats_mean(x, 1, n);
    double *R = xmalloc((mmax + 1) * sizeof *R);
    for (size_t k = 0; k <= mmax; k++) {
        double s = 0;
        for (size_t i = 0; i + k < n; i++)
            s += (x[i] - mean) * (x[i + k] - mean);
        R[k] = s / (double)n;
    }
    size_t b = 1;
    if (R[0] > 0) {
        double c = 2.0 * sqrt(ln / (double)n);
        size_t mhat = mmax;
        for (size_t m = 1; m + kn <= mmax; m++) {
            bool small = true;
            for (size_t j = 1; j <= kn && small; j++)
                small = fabs(R[m + j] / R[0]) < c;
            if (small) {
                mhat = m;
                break;
            }
        }
        size_t M = 2 * mhat < mmax ? 2 * mhat : mmax;
        double G = 0, g0 = R[0];
        for (size_t k = 1; k <= M; k++) {
            double l = flat_top((double)k / (double)M);
            G += 2 * l * (double)k * R[k];
            g0 += 2 * l * R[k];
        }
        double D = 4.0 / 3.0 * g0 * g0;
        if (D > 0 && G != 0)
            b = (size_t)ceil(cbrt(2 * G * G / D) * cbrt((double)n));
    }
    free(R);
    size_t bmax = (size_t)ceil(fmin(3 * sqrt((double)n), (double)n / 3));
    return b < 1 ? 1 : b > bmax ? bmax : b;
}

void analysis_block_resample(gsl_rng *rng, double *out, size_t n_out, const double *pool,
                             size_t n_pool, size_t block)
{
    if (block > n_pool)
        block = n_pool;
    size_t starts = n_pool - block + 1;
    for (size_t i = 0; i < n_out;) {
        size_t s = (size_t)gsl_rng_uniform_int(rng, starts);
        for (size_t j = 0; j < block && i < n_out; j++)
            out[i++] = pool[s + j];
    }
}

/* Least-squares cubic B-spline of y against ln(step) with k interior knots; rss
 * gets the residual sum of squares. */
static bool bspline_fit(double *trend, double *rss, const double *step, const double *y,
                        size_t n, int k)
{
    size_t ncoef = (size_t)k + 4;
    double u0 = log(fmax(step[0], 0.5)), u1 = log(fmax(step[n - 1], 0.5));
    if (n < ncoef + 2 || !(u1 > u0))
        return false;
    gsl_bspline_workspace *bw = gsl_bspline_alloc(4, (size_t)k + 2);
    gsl_vector *B = gsl_vector_alloc(ncoef), *yv = gsl_vector_alloc(n), *c = gsl_vector_alloc(ncoef);
    gsl_matrix *X = gsl_matrix_alloc(n, ncoef), *cov = gsl_matrix_alloc(ncoef, ncoef);
    gsl_multifit_linear_workspace *mw = gsl_multifit_linear_alloc(n, ncoef);
    if (!bw || !B || !yv || !c || !X || !cov || !mw)
        DIE(EXIT_FAULT, "out of memory fitting a %zu-row trend", n);
    bool ok = gsl_bspline_knots_uniform(u0, u1, bw) == GSL_SUCCESS;
    for (size_t i = 0; ok && i < n; i++) {
        double u = fmin(fmax(log(fmax(step[i], 0.5)), u0), u1);
        ok = gsl_bspline_eval(u, B, bw) == GSL_SUCCESS;
        for (size_t j = 0; ok && j < ncoef; j++)
            gsl_matrix_set(X, i, j, gsl_vector_get(B, j));
        gsl_vector_set(yv, i, y[i]);
    }
    ok = ok && gsl_multifit_linear(X, yv, c, cov, rss, mw) == GSL_SUCCESS;
    for (size_t i = 0; ok && i < n; i++) {
        double t = 0;
        for (size_t j = 0; j < ncoef; j++)
            t += gsl_matrix_get(X, i, j) * gsl_vector_get(c, j);
        trend[i] = t;
    }
    gsl_multifit_linear_free(mw);
    gsl_matrix_free(cov);
    gsl_matrix_free(X);
    gsl_vector_free(c);
    gsl_vector_free(yv);
    gsl_vector_free(B);
    gsl_bspline_free(bw);
    return ok;
}

int analysis_trend(double *trend, const double *step, const double *y, size_t n, int max_knots)
{
    /* The number of interior knots, 1 .. max_knots, by BIC n ln(RSS / n) + (k + 4) ln n:
     * as few as the curve's shape needs, since every coefficient also absorbs the
     * slow part of the noise that the bootstrap should resample. */
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    double *t = xmalloc((n + 1) * sizeof *t), best = INFINITY;
    int chosen = -1;
    for (int k = 1; k <= max_knots; k++) {
        double rss;
        if (!bspline_fit(t, &rss, step, y, n, k))
            break;
        double bic = (double)n * log(fmax(rss, 1e-300) / (double)n) + (double)(k + 4) * log((double)n);
        if (bic < best) {
            best = bic;
            chosen = k;
            memcpy(trend, t, n * sizeof *t);
        }
    }
    free(t);
    gsl_set_error_handler(old);
    return chosen;
}
