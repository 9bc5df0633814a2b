/* Scaling fits L(C) = E + A (C / c0)^-alpha: GSL nonlinear least squares (trust
 * region) with soft-L1 robust weights by iterative reweighting; standard errors from
 * the weighted Jacobian. Why these choices: docs/analysis.md. */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

#define FIT_P 3                 /* E, log A, alpha */
#define FIT_MAX_REWEIGHT 20     /* robust reweighting rounds */
#define FIT_REWEIGHT_TOL 1e-10  /* relative parameter change that ends them */

typedef struct fit_data {
    const double *u;            /* C / c0 */
    const double *L;
    size_t n;
} fit_data_t;

/* r_i = E + exp(a) u_i^-alpha - L_i */
static int pl_f(const gsl_vector *x, void *params, gsl_vector *f)
{
    const fit_data_t *d = params;
    double E = gsl_vector_get(x, 0), a = gsl_vector_get(x, 1), al = gsl_vector_get(x, 2);
    for (size_t i = 0; i < d->n; i++)
        gsl_vector_set(f, i, E + exp(a - al * log(d->u[i])) - d->L[i]);
    return GSL_SUCCESS;
}

static int pl_df(const gsl_vector *x, void *params, gsl_matrix *J)
{
    const fit_data_t *d = params;
    double a = gsl_vector_get(x, 1), al = gsl_vector_get(x, 2);
    for (size_t i = 0; i < d->n; i++) {
        double lu = log(d->u[i]), t = exp(a - al * lu);
        gsl_matrix_set(J, i, 0, 1.0);
        gsl_matrix_set(J, i, 1, t);
        gsl_matrix_set(J, i, 2, -t * lu);
    }
    return GSL_SUCCESS;
}

/* Start: for E on a grid below min L, a straight-line fit of log(L - E) against
 * log u gives a and alpha; keep the E with the smallest squared error. */
static void initial_guess(const fit_data_t *d, double x0[FIT_P])
{
    double lo = d->L[0];
    for (size_t i = 1; i < d->n; i++)
        lo = fmin(lo, d->L[i]);
    double *lx = xmalloc(d->n * sizeof *lx), *ly = xmalloc(d->n * sizeof *ly);
    double best = INFINITY;
    x0[0] = 0;
    x0[1] = 0;
    x0[2] = 0.1;
    const int grid = 50;
    for (int k = 0; k < grid; k++) {
        /* E from 0 up to just below min L (or a symmetric range when min L <= 0) */
        double E = lo > 0 ? lo * k / grid : lo - fabs(lo) * (grid - k) / grid - 1e-3;
        for (size_t i = 0; i < d->n; i++) {
            lx[i] = log(d->u[i]);
            ly[i] = log(d->L[i] - E);
        }
        double c0, c1, c00, c01, c11, sumsq;
        if (gsl_fit_linear(lx, 1, ly, 1, d->n, &c0, &c1, &c00, &c01, &c11, &sumsq))
            continue;
        double sse = 0;
        for (size_t i = 0; i < d->n; i++) {
            double r = E + exp(c0 + c1 * lx[i]) - d->L[i];
            sse += r * r;
        }
        if (c1 < 0 && sse < best) {
            best = sse;
            x0[0] = E;
            x0[1] = c0;
            x0[2] = -c1;
        }
    }
    free(lx);
    free(ly);
}

static double median_abs(const double *r, size_t n)
{
    double *a = xmalloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = fabs(r[i]);
    gsl_sort(a, 1, n);
    double m = gsl_stats_median_from_sorted_data(a, 1, n);
    free(a);
    return m;
}

bool analysis_fit_power_law(analysis_powerlaw_t *fit, const double *C, const double *L,
                            size_t n)
{
    memset(fit, 0, sizeof *fit);
    fit->n = n;
    fit->E = fit->A = fit->alpha = fit->se_E = fit->se_A = fit->se_alpha = NAN;
    fit->rms = NAN;
    if (n < FIT_P) {
        snprintf(fit->why, sizeof fit->why, "%zu points; 3 parameters need at least 3", n);
        return false;
    }
    double logsum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(C[i] > 0) || !isfinite(L[i])) {
            snprintf(fit->why, sizeof fit->why, "point %zu has C <= 0 or a non-finite loss", i);
            return false;
        }
        logsum += log(C[i]);
    }
    fit->c0 = exp(logsum / (double)n);
    double *u = xmalloc(n * sizeof *u);
    for (size_t i = 0; i < n; i++)
        u[i] = C[i] / fit->c0;
    fit_data_t d = {u, L, n};
    double x0[FIT_P];
    initial_guess(&d, x0);

    /* failures come back as status codes, not through GSL's aborting handler */
    gsl_error_handler_t *old_handler = gsl_set_error_handler_off();
    gsl_multifit_nlinear_fdf fdf = {0};
    fdf.f = pl_f;
    fdf.df = pl_df;
    fdf.n = n;
    fdf.p = FIT_P;
    fdf.params = &d;
    gsl_multifit_nlinear_parameters fp = gsl_multifit_nlinear_default_parameters();
    gsl_multifit_nlinear_workspace *w =
        gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &fp, n, FIT_P);
    gsl_vector *x = gsl_vector_alloc(FIT_P), *wts = gsl_vector_alloc(n);
    gsl_vector *r = gsl_vector_alloc(n);
    gsl_matrix *cov = gsl_matrix_alloc(FIT_P, FIT_P);
    if (!w || !x || !wts || !r || !cov)
        DIE(EXIT_FAULT, "out of memory allocating a %zu-point fit", n);
    for (int k = 0; k < FIT_P; k++)
        gsl_vector_set(x, (size_t)k, x0[k]);
    gsl_vector_set_all(wts, 1.0);

    /* Soft-L1 (pseudo-Huber) loss by reweighting: w_i = 1 / sqrt(1 + (r_i/delta)^2),
     * delta the robust residual scale 1.4826 * MAD of the first, unweighted fit. */
    double delta = 0;
    bool ok = true;
    int status = GSL_SUCCESS;
    for (int round = 0; round < FIT_MAX_REWEIGHT && ok; round++) {
        int info;
        if (gsl_multifit_nlinear_winit(x, wts, &fdf, w) != GSL_SUCCESS) {
            ok = false;
            break;
        }
        status = gsl_multifit_nlinear_driver(500, 1e-12, 1e-12, 1e-12, NULL, NULL, &info, w);
        if (status != GSL_SUCCESS && status != GSL_EMAXITER) {
            ok = false;
            break;
        }
        const gsl_vector *xs = gsl_multifit_nlinear_position(w);
        double change = 0;
        for (size_t k = 0; k < FIT_P; k++) {
            double a = gsl_vector_get(x, k), b = gsl_vector_get(xs, k);
            change = fmax(change, fabs(a - b) / fmax(fabs(b), 1e-12));
        }
        gsl_vector_memcpy(x, xs);
        pl_f(x, &d, r);
        if (round == 0)
            delta = 1.4826 * median_abs(r->data, n);
        if (!(delta > 0))
            break; /* an exact fit: nothing to down-weight */
        for (size_t i = 0; i < n; i++) {
            double z = gsl_vector_get(r, i) / delta;
            gsl_vector_set(wts, i, 1.0 / sqrt(1.0 + z * z));
        }
        if (round > 0 && change < FIT_REWEIGHT_TOL)
            break;
    }
    if (ok) {
        /* Final solve at the final weights, so the Jacobian matches them. */
        int info;
        ok = gsl_multifit_nlinear_winit(x, wts, &fdf, w) == GSL_SUCCESS;
        if (ok)
            status = gsl_multifit_nlinear_driver(500, 1e-12, 1e-12, 1e-12, NULL, NULL, &info, w);
        ok = ok && (status == GSL_SUCCESS || status == GSL_EMAXITER);
    }
    if (ok) {
        gsl_vector_memcpy(x, gsl_multifit_nlinear_position(w));
        fit->E = gsl_vector_get(x, 0);
        fit->A = exp(gsl_vector_get(x, 1));
        fit->alpha = gsl_vector_get(x, 2);
        pl_f(x, &d, r);
        double ss = 0, wss = 0;
        for (size_t i = 0; i < n; i++) {
            double ri = gsl_vector_get(r, i);
            ss += ri * ri;
            wss += gsl_vector_get(wts, i) * ri * ri;
        }
        fit->rms = sqrt(ss / (double)n);
        /* cov = s^2 (J^T W J)^-1, s^2 the weighted residual variance */
        if (n > FIT_P && gsl_multifit_nlinear_covar(gsl_multifit_nlinear_jac(w), 0.0, cov) ==
                             GSL_SUCCESS) {
            double s2 = wss / (double)(n - FIT_P);
            fit->se_E = sqrt(s2 * gsl_matrix_get(cov, 0, 0));
            fit->se_A = fit->A * sqrt(s2 * gsl_matrix_get(cov, 1, 1));
            fit->se_alpha = sqrt(s2 * gsl_matrix_get(cov, 2, 2));
        }
        if (!(fit->alpha > 0) || !isfinite(fit->E) || !isfinite(fit->A)) {
            snprintf(fit->why, sizeof fit->why,
                     "the fit did not give a decreasing power law (alpha = %g)", fit->alpha);
            ok = false;
        }
    } else {
        snprintf(fit->why, sizeof fit->why, "the nonlinear solver failed: %s",
                 gsl_strerror(status));
    }
    fit->ok = ok;
    gsl_set_error_handler(old_handler);
    gsl_matrix_free(cov);
    gsl_vector_free(r);
    gsl_vector_free(wts);
    gsl_vector_free(x);
    gsl_multifit_nlinear_free(w);
    free(u);
    return ok;
}

double analysis_power_law_eval(const analysis_powerlaw_t *fit, double C)
{
    return fit->E + fit->A * pow(C / fit->c0, -fit->alpha);
}

double analysis_compute_multiplier(const analysis_powerlaw_t *ref,
                                   const analysis_powerlaw_t *other, double C)
{
    if (!ref->ok || !other->ok || !(C > 0))
        return NAN;
    double target = analysis_power_law_eval(other, C);
    if (!(target > ref->E))
        return NAN;
    double c = ref->c0 * pow((target - ref->E) / ref->A, -1.0 / ref->alpha);
    return c / C;
}
