/* Scaling fits, checked: L(C) = E + A (C / c0)^-alpha with E free or held fixed, and
 * Chinchilla's L(N, D) = E + A (N / n0)^-a + B (D / d0)^-b (approach 3); GSL nonlinear
 * least squares (trust region) under a Huber loss by iterative reweighting, from
 * several starts; bootstrap intervals on every parameter; the degeneracy rules that
 * withhold a compute multiplier. Why these choices: docs/analysis.md. */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

#define FIT_MAX_REWEIGHT 30     /* Huber reweighting rounds */
#define FIT_REWEIGHT_TOL 1e-9   /* relative change of the parameters that ends them */
#define FIT_HUBER_K 1.345       /* Huber's tuning constant, in robust sigmas (95% efficiency) */
#define FIT_MAX_ITER 400

/* The data of one fit and the model's pieces: x are the fitted parameters, with the
 * amplitudes as logs (positive, and well scaled). */
typedef struct fit_data {
    int model;
    size_t n;
    const double *u, *v;        /* C / c0 (or N / n0) and D / d0 */
    const double *L;
    const size_t *idx;          /* rows used (a bootstrap resample), n of them */
    double E_fixed;
} fit_data_t;

static size_t model_params(int model)
{
    return model == ANALYSIS_FIT_ND ? 5 : model == ANALYSIS_FIT_POWER ? 3 : 2;
}

/* The model at row i and its gradient g with respect to x. */
static double model_at(const fit_data_t *d, const double *x, size_t i, double *g)
{
    double lu = log(d->u[i]);
    switch (d->model) {
    case ANALYSIS_FIT_POWER: { /* x = E, ln A, alpha */
        double t = exp(x[1] - x[2] * lu);
        if (g) {
            g[0] = 1;
            g[1] = t;
            g[2] = -t * lu;
        }
        return x[0] + t;
    }
    case ANALYSIS_FIT_POWER_EFIXED: { /* x = ln A, alpha */
        double t = exp(x[0] - x[1] * lu);
        if (g) {
            g[0] = t;
            g[1] = -t * lu;
        }
        return d->E_fixed + t;
    }
    default: { /* x = E, ln A, a, ln B, b */
        double lv = log(d->v[i]);
        double t = exp(x[1] - x[2] * lu), s = exp(x[3] - x[4] * lv);
        if (g) {
            g[0] = 1;
            g[1] = t;
            g[2] = -t * lu;
            g[3] = s;
            g[4] = -s * lv;
        }
        return x[0] + t + s;
    }
    }
}

static int fit_f(const gsl_vector *x, void *params, gsl_vector *f)
{
    const fit_data_t *d = params;
    for (size_t k = 0; k < d->n; k++) {
        size_t i = d->idx[k];
        gsl_vector_set(f, k, model_at(d, x->data, i, NULL) - d->L[i]);
    }
    return GSL_SUCCESS;
}

static int fit_df(const gsl_vector *x, void *params, gsl_matrix *J)
{
    const fit_data_t *d = params;
    double g[5];
    size_t p = model_params(d->model);
    for (size_t k = 0; k < d->n; k++) {
        model_at(d, x->data, d->idx[k], g);
        for (size_t j = 0; j < p; j++)
            gsl_matrix_set(J, k, j, g[j]);
    }
    return GSL_SUCCESS;
}

static double huber(double r, double delta)
{
    double a = fabs(r);
    return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

/* Huber-loss fit from x0 by iteratively reweighted nonlinear least squares; delta, when
 * not positive, is set from the first unweighted fit (FIT_HUBER_K robust sigmas,
 * 1.4826 x median |r|). x gets the solution, the return its Huber objective (INFINITY
 * when the solver failed). */
static double robust_fit(const fit_data_t *d, const double *x0, double *x, double *delta)
{
    size_t n = d->n, p = model_params(d->model);
    if (n <= p)
        return INFINITY;
    gsl_multifit_nlinear_fdf fdf = {.f = fit_f, .df = fit_df, .n = n, .p = p, .params = (void *)d};
    gsl_multifit_nlinear_parameters fp = gsl_multifit_nlinear_default_parameters();
    gsl_multifit_nlinear_workspace *w =
        gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &fp, n, p);
    gsl_vector *xv = gsl_vector_alloc(p), *wts = gsl_vector_alloc(n), *r = gsl_vector_alloc(n);
    if (!w || !xv || !wts || !r)
        DIE(EXIT_FAULT, "out of memory allocating a %zu-point fit", n);
    for (size_t j = 0; j < p; j++)
        gsl_vector_set(xv, j, x0[j]);
    gsl_vector_set_all(wts, 1.0);
    double obj = INFINITY;
    bool ok = true;
    for (int round = 0; round < FIT_MAX_REWEIGHT && ok; round++) {
        int info;
        ok = gsl_multifit_nlinear_winit(xv, wts, &fdf, w) == GSL_SUCCESS;
        int st = ok ? gsl_multifit_nlinear_driver(FIT_MAX_ITER, 1e-12, 1e-12, 1e-12, NULL, NULL,
                                                  &info, w)
                    : GSL_FAILURE;
        ok = st == GSL_SUCCESS || st == GSL_EMAXITER;
        if (!ok)
            break;
        const gsl_vector *xs = gsl_multifit_nlinear_position(w);
        double change = 0;
        for (size_t j = 0; j < p; j++) {
            double a = gsl_vector_get(xv, j), b = gsl_vector_get(xs, j);
            change = fmax(change, fabs(a - b) / fmax(fabs(b), 1e-12));
            ok = ok && isfinite(b);
        }
        gsl_vector_memcpy(xv, xs);
        fit_f(xv, (void *)d, r);
        if (!(*delta > 0)) {
            double *a = xmalloc(n * sizeof *a);
            for (size_t i = 0; i < n; i++)
                a[i] = fabs(gsl_vector_get(r, i));
            *delta = FIT_HUBER_K * 1.4826 * analysis_median(a, n);
            free(a);
            if (!(*delta > 0))
                *delta = 1e-12; /* an exact fit: nothing to down-weight */
        }
        for (size_t i = 0; i < n; i++) {
            double ri = fabs(gsl_vector_get(r, i));
            gsl_vector_set(wts, i, ri <= *delta ? 1.0 : *delta / ri);
        }
        if (round > 0 && change < FIT_REWEIGHT_TOL)
            break;
    }
    if (ok) {
        obj = 0;
        for (size_t i = 0; i < n; i++)
            obj += huber(gsl_vector_get(r, i), *delta);
        for (size_t j = 0; j < p; j++)
            x[j] = gsl_vector_get(xv, j);
    }
    gsl_vector_free(r);
    gsl_vector_free(wts);
    gsl_vector_free(xv);
    gsl_multifit_nlinear_free(w);
    return ok && isfinite(obj) ? obj : INFINITY;
}

/* Starts: for E on a grid below min L (or E fixed), a straight-line fit of
 * ln(L - E) against ln u gives ln A and alpha; the two-variable form also crosses a
 * grid of exponents, amplitudes from the same straight line. */
static size_t starts(const fit_data_t *d, double (*x0)[5], size_t max)
{
    double lo = INFINITY;
    for (size_t k = 0; k < d->n; k++)
        lo = fmin(lo, d->L[d->idx[k]]);
    double *lx = xmalloc(d->n * sizeof *lx), *ly = xmalloc(d->n * sizeof *ly);
    size_t ns = 0;
    const double Efrac[] = {0.0, 0.5, 0.8, 0.95, 0.99};
    size_t nE = d->model == ANALYSIS_FIT_POWER_EFIXED ? 1 : sizeof Efrac / sizeof Efrac[0];
    for (size_t e = 0; e < nE && ns < max; e++) {
        double E = d->model == ANALYSIS_FIT_POWER_EFIXED ? d->E_fixed
                   : lo > 0                              ? lo * Efrac[e]
                                                         : lo - 1.0 + Efrac[e];
        bool ok = true;
        for (size_t k = 0; k < d->n && ok; k++) {
            size_t i = d->idx[k];
            ok = d->L[i] - E > 0;
            lx[k] = log(d->u[i]);
            ly[k] = ok ? log(d->L[i] - E) : 0;
        }
        double c0, c1, c00, c01, c11, sumsq;
        if (!ok || gsl_fit_linear(lx, 1, ly, 1, d->n, &c0, &c1, &c00, &c01, &c11, &sumsq))
            continue;
        double alpha = -c1 > 0.01 ? -c1 : 0.3;
        if (d->model == ANALYSIS_FIT_POWER_EFIXED) {
            x0[ns][0] = c0;
            x0[ns++][1] = alpha;
        } else if (d->model == ANALYSIS_FIT_POWER) {
            x0[ns][0] = E;
            x0[ns][1] = c0;
            x0[ns++][2] = alpha;
        } else {
            const double ex[] = {0.2, 0.5, 0.8};
            for (size_t a = 0; a < 3 && ns < max; a++)
                for (size_t b = 0; b < 3 && ns < max; b++) {
                    x0[ns][0] = E;
                    x0[ns][1] = c0 - log(2.0);
                    x0[ns][2] = ex[a];
                    x0[ns][3] = c0 - log(2.0);
                    x0[ns++][4] = ex[b];
                }
        }
    }
    if (ns == 0 && d->model == ANALYSIS_FIT_POWER_EFIXED) {
        /* E held above some of the points: no straight line, start from a mild slope */
        double mean = 0;
        for (size_t k = 0; k < d->n; k++)
            mean += d->L[d->idx[k]] / (double)d->n;
        x0[0][0] = log(fmax(mean - d->E_fixed, 1e-3));
        x0[0][1] = 0.3;
        ns = 1;
    }
    free(lx);
    free(ly);
    return ns;
}

static void unpack(const fit_data_t *d, const double *x, double *par)
{
    /* par: E, A, alpha [, B, beta], amplitudes at the scales */
    if (d->model == ANALYSIS_FIT_POWER_EFIXED) {
        par[0] = d->E_fixed;
        par[1] = exp(x[0]);
        par[2] = x[1];
    } else {
        par[0] = x[0];
        par[1] = exp(x[1]);
        par[2] = x[2];
        if (d->model == ANALYSIS_FIT_ND) {
            par[3] = exp(x[3]);
            par[4] = x[4];
        }
    }
}

static double geomean(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += log(x[i]);
    return exp(s / (double)n);
}

static const char *const par_names[5] = {"E", "A", "alpha", "B", "beta"};

static bool fit_common(analysis_fit_t *f, int model, const double *X, const double *D,
                       const double *L, size_t n, double E_fixed, size_t resamples,
                       unsigned long seed)
{
    memset(f, 0, sizeof *f);
    f->model = model;
    f->n = n;
    f->n_par = model == ANALYSIS_FIT_ND ? 5 : 3;
    for (int j = 0; j < 5; j++)
        f->par[j] = NAN;
    size_t p = model_params(model);
    if (n <= p + 1)
        return errorf(f->why, sizeof f->why, "%zu points; %zu parameters need at least %zu", n,
                      p, p + 2);
    for (size_t i = 0; i < n; i++)
        if (!(X[i] > 0) || (D && !(D[i] > 0)) || !isfinite(L[i]))
            return errorf(f->why, sizeof f->why, "point %zu has a non-positive scale or a "
                                                 "non-finite loss", i);
    f->c0 = geomean(X, n);
    f->d0 = D ? geomean(D, n) : NAN;
    double *u = xmalloc(n * sizeof *u), *v = xmalloc(n * sizeof *v);
    size_t *idx = xmalloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++) {
        u[i] = X[i] / f->c0;
        v[i] = D ? D[i] / f->d0 : 1;
        idx[i] = i;
    }
    fit_data_t d = {model, n, u, v, L, idx, E_fixed};
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    double x0[48][5], best[5], x[5], bobj = INFINITY, delta = 0;
    size_t ns = starts(&d, x0, 48);
    /* delta from the first start's unweighted fit, then held for every start so their
     * objectives compare */
    for (size_t s = 0; s < ns; s++) {
        double obj = robust_fit(&d, x0[s], x, &delta);
        f->starts++;
        if (obj < bobj) {
            bobj = obj;
            memcpy(best, x, sizeof best);
        }
    }
    bool ok = isfinite(bobj);
    if (!ok) {
        errorf(f->why, sizeof f->why, "the nonlinear solver failed from all %zu starts", ns);
    } else {
        unpack(&d, best, f->par);
        double ss = 0;
        for (size_t i = 0; i < n; i++) {
            double r = model_at(&d, best, i, NULL) - L[i];
            ss += r * r;
        }
        f->rms = sqrt(ss / (double)n);
        f->delta = delta;
        /* bootstrap: points resampled with replacement, refitted from the solution */
        f->n_boot = resamples;
        f->boot = xmalloc((resamples + 1) * 5 * sizeof *f->boot);
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng)
            DIE(EXIT_FAULT, "out of memory allocating a random number generator");
        gsl_rng_set(rng, seed);
        for (size_t b = 0; b < resamples; b++) {
            for (size_t i = 0; i < n; i++)
                idx[i] = (size_t)gsl_rng_uniform_int(rng, n);
            double db = delta, xb[5];
            double obj = robust_fit(&d, best, xb, &db);
            double *pb = f->boot + b * 5;
            for (int j = 0; j < 5; j++)
                pb[j] = NAN;
            if (isfinite(obj))
                unpack(&d, xb, pb);
        }
        gsl_rng_free(rng);
        double *col = xmalloc((resamples + 1) * sizeof *col);
        for (size_t j = 0; j < f->n_par; j++) {
            for (size_t b = 0; b < resamples; b++)
                col[b] = f->boot[b * 5 + j];
            double lo, hi;
            size_t fin = analysis_percentile(col, resamples, ANALYSIS_LEVEL, &lo, &hi);
            if (model == ANALYSIS_FIT_POWER_EFIXED && j == 0)
                analysis_interval_set(&f->iv[j], f->par[0], NAN, NAN, "held fixed");
            else
                analysis_interval_set(&f->iv[j], f->par[j], lo, hi,
                                      "bootstrap of the fitted points, %zu resamples (%zu "
                                      "converged), seed %lu, percentile",
                                      resamples, fin, seed);
        }
        free(col);
        /* degeneracy: no compute multiplier from such a fit */
        char *why = f->degenerate_why;
        size_t len = sizeof f->degenerate_why;
        if (model != ANALYSIS_FIT_POWER_EFIXED && f->par[0] < 0)
            snprintf(why, len, "E = %.3g is below zero", f->par[0]);
        else if (f->par[2] < ANALYSIS_FIT_MIN_EXPONENT ||
                 (model == ANALYSIS_FIT_ND && f->par[4] < ANALYSIS_FIT_MIN_EXPONENT))
            snprintf(why, len, "an exponent is below %.2f (alpha = %.3g%s)",
                     ANALYSIS_FIT_MIN_EXPONENT, f->par[2], model == ANALYSIS_FIT_ND ? ", beta too" : "");
        for (size_t j = 0; !why[0] && j < f->n_par; j++) {
            const analysis_interval_t *iv = &f->iv[j];
            if (model == ANALYSIS_FIT_POWER_EFIXED && j == 0)
                continue;
            if (!isfinite(iv->lo) || !isfinite(iv->hi) || iv->hi - iv->lo > fabs(iv->value))
                snprintf(why, len, "the interval of %s [%.3g, %.3g] is wider than its value %.3g",
                         par_names[j], iv->lo, iv->hi, iv->value);
        }
        f->degenerate = why[0] != '\0';
    }
    f->ok = ok;
    gsl_set_error_handler(old);
    free(idx);
    free(u);
    free(v);
    return ok;
}

bool analysis_fit_power_law(analysis_fit_t *f, const double *C, const double *L, size_t n,
                            double E_fixed, size_t resamples, unsigned long seed)
{
    return fit_common(f, isfinite(E_fixed) ? ANALYSIS_FIT_POWER_EFIXED : ANALYSIS_FIT_POWER, C,
                      NULL, L, n, E_fixed, resamples, seed);
}

bool analysis_fit_nd(analysis_fit_t *f, const double *N, const double *D, const double *L,
                     size_t n, size_t resamples, unsigned long seed)
{
    return fit_common(f, ANALYSIS_FIT_ND, N, D, L, n, NAN, resamples, seed);
}

void analysis_fit_free(analysis_fit_t *f)
{
    free(f->boot);
    f->boot = NULL;
}

double analysis_fit_eval(const analysis_fit_t *f, const double *par, double x, double D)
{
    if (!par)
        par = f->par;
    double L = par[0] + par[1] * pow(x / f->c0, -par[2]);
    if (f->model == ANALYSIS_FIT_ND)
        L += par[3] * pow(D / f->d0, -par[4]);
    return L;
}

/* C at which the power law par of f reaches loss target; NaN when below its E. */
static double compute_for(const analysis_fit_t *f, const double *par, double target)
{
    if (!(target > par[0]) || !(par[1] > 0) || !(par[2] > 0))
        return NAN;
    return f->c0 * pow((target - par[0]) / par[1], -1.0 / par[2]);
}

void analysis_compute_multiplier(analysis_interval_t *iv, const analysis_fit_t *ref,
                                 const analysis_fit_t *other, double C)
{
    if (!ref->ok || !other->ok || ref->model == ANALYSIS_FIT_ND || !(C > 0)) {
        analysis_interval_set(iv, NAN, NAN, NAN, "no fit");
        return;
    }
    if (ref->degenerate || other->degenerate) {
        analysis_interval_set(iv, NAN, NAN, NAN, "no multiplier: the %s fit is degenerate (%s)",
                              ref->degenerate ? "reference" : "other",
                              ref->degenerate ? ref->degenerate_why : other->degenerate_why);
        return;
    }
    /* C' / C: the compute at which ref's fit reaches other's fitted loss at C */
    double v = compute_for(ref, ref->par, analysis_fit_eval(other, NULL, C, NAN)) / C;
    size_t nb = ref->n_boot < other->n_boot ? ref->n_boot : other->n_boot;
    double *rep = xmalloc((nb + 1) * sizeof *rep), lo = NAN, hi = NAN;
    for (size_t b = 0; b < nb; b++) {
        const double *pr = ref->boot + b * 5, *po = other->boot + b * 5;
        rep[b] = isfinite(pr[0]) && isfinite(po[0])
                     ? compute_for(ref, pr, analysis_fit_eval(other, po, C, NAN)) / C
                     : NAN;
    }
    size_t fin = nb ? analysis_percentile(rep, nb, ANALYSIS_LEVEL, &lo, &hi) : 0;
    free(rep);
    analysis_interval_set(iv, v, isfinite(v) ? lo : NAN, isfinite(v) ? hi : NAN,
                          "paired bootstrap replicates of both fits, %zu (%zu finite), "
                          "percentile",
                          nb, fin);
}
