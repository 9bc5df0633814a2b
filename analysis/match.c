/* Step matching between a baseline and a candidate run (the MoT paper's method) and
 * the equal-loss point, on the step, FLOPs and wall-clock axes. Method and choices:
 * docs/analysis.md. */
#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

void analysis_series_build(analysis_series_t *s, const runrec_t *run,
                           analysis_metric_t metric, int col, double window)
{
    bool train = metric == ANALYSIS_TRAIN;
    size_t n = train ? run->n : run->n_eval;
    const int64_t *step = train ? run->step : run->eval_step;
    const double *flops = train ? run->flops : run->eval_flops;
    const double *wall = train ? run->wall_time : run->eval_wall_time;
    const double *src = col < 0 ? (train ? run->loss : run->eval_loss)
                                : (train ? run->loss_by_modality : run->eval_loss_by_modality) + col;
    size_t stride = col < 0 ? 1 : (size_t)run->n_mod;
    double **cols[] = {&s->step, &s->flops, &s->wall, &s->raw, &s->loss};
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        *cols[k] = xmalloc((n + 1) * sizeof(double));
    s->n = 0;
    for (size_t i = 0; i < n; i++) {
        /* a row where the modality had no tokens carries no loss of it */
        if (!isfinite(src[i * stride]))
            continue;
        s->step[s->n] = (double)step[i];
        s->flops[s->n] = flops[i];
        s->wall[s->n] = wall[i];
        s->raw[s->n] = src[i * stride];
        s->n++;
    }
    /* The smoother skips a NaN input without moving its clock, so smoothing the
     * finite rows alone is smoothing the column. */
    analysis_series_smooth(s, train ? window : 0);
}

void analysis_series_smooth(analysis_series_t *s, double window)
{
    smooth_ema_t e;
    smooth_ema_init(&e, window);
    for (size_t i = 0; i < s->n; i++)
        s->loss[i] = smooth_ema_update(&e, (int64_t)s->step[i], s->raw[i]);
}

void analysis_series_free(analysis_series_t *s)
{
    free(s->step);
    free(s->flops);
    free(s->wall);
    free(s->raw);
    free(s->loss);
    memset(s, 0, sizeof *s);
}

bool analysis_first_crossing(const double *y, size_t n, double target, double *pos)
{
    if (n == 0 || !isfinite(target))
        return false;
    /* Walk the running minimum env: the candidate "has reached" a loss once any
     * earlier point was at or below it, so noise going back up is ignored. */
    double env = y[0];
    if (env <= target) {
        *pos = 0;
        return true;
    }
    for (size_t j = 1; j < n; j++) {
        if (y[j] <= target) {
            /* env > target >= y[j]: interpolate on the segment from the envelope
             * value at j - 1 down to y[j]. */
            double theta = (env - target) / (env - y[j]);
            *pos = (double)(j - 1) + theta;
            return true;
        }
        if (y[j] < env)
            env = y[j];
    }
    return false;
}

double analysis_at(const double *x, size_t n, double pos)
{
    if (n == 0)
        return NAN;
    if (pos <= 0)
        return x[0];
    size_t j = (size_t)pos;
    if (j + 1 >= n)
        return x[n - 1];
    double theta = pos - (double)j;
    return x[j] + theta * (x[j + 1] - x[j]);
}

void analysis_fit_origin(const double *x, const double *y, size_t n, double *slope, double *r2)
{
    *slope = NAN;
    *r2 = NAN;
    if (n < 2)
        return;
    double c1, cov11, sumsq;
    if (gsl_fit_mul(x, 1, y, 1, n, &c1, &cov11, &sumsq) != 0)
        return;
    *slope = c1;
    double mean = 0, sst = 0;
    for (size_t i = 0; i < n; i++)
        mean += y[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        sst += (y[i] - mean) * (y[i] - mean);
    *r2 = sst > 0 ? 1 - sumsq / sst : NAN;
}

/* The first crossing of target by y, from y's running minimum env (non-increasing):
 * the first row whose envelope is at or below target, found by bisection, is the
 * first row at or below it, and the crossing lies on the segment from env[j - 1]
 * down to y[j] = env[j] (analysis_first_crossing, in O(log n)). */
static bool crossing_on_envelope(const double *y, const double *env, size_t n, double target,
                                 double *pos)
{
    if (n == 0 || !isfinite(target) || !(env[n - 1] <= target))
        return false;
    if (env[0] <= target) {
        *pos = 0;
        return true;
    }
    size_t lo = 0, hi = n - 1; /* env[lo] > target >= env[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (env[mid] <= target)
            hi = mid;
        else
            lo = mid;
    }
    *pos = (double)lo + (env[lo] - target) / (env[lo] - y[hi]);
    return true;
}

void analysis_match(analysis_match_t *m, const analysis_series_t *base,
                    const analysis_series_t *cand)
{
    memset(m, 0, sizeof *m);
    size_t nb = base->n, nc = cand->n;
    m->n_base = nb;
    double **cols[] = {&m->base_step, &m->cand_step, &m->base_flops,
                       &m->cand_flops, &m->base_wall, &m->cand_wall};
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        *cols[k] = xmalloc((nb + 1) * sizeof(double));
    m->matched = xmalloc((nb + 1) * sizeof *m->matched);
    double *env = xmalloc((nc + 1) * sizeof *env);
    for (size_t j = 0; j < nc; j++)
        env[j] = j ? fmin(env[j - 1], cand->loss[j]) : cand->loss[0];
    for (size_t i = 0; i < nb; i++) {
        double pos;
        m->matched[i] = crossing_on_envelope(cand->loss, env, nc, base->loss[i], &pos);
        if (!m->matched[i])
            continue;
        size_t k = m->n_matched++;
        m->base_step[k] = base->step[i];
        m->base_flops[k] = base->flops[i];
        m->base_wall[k] = base->wall[i];
        m->cand_step[k] = analysis_at(cand->step, nc, pos);
        m->cand_flops[k] = analysis_at(cand->flops, nc, pos);
        m->cand_wall[k] = analysis_at(cand->wall, nc, pos);
    }
    size_t k = m->n_matched;
    analysis_fit_origin(m->base_step, m->cand_step, k, &m->slope_step, &m->r2_step);
    analysis_fit_origin(m->base_flops, m->cand_flops, k, &m->slope_flops, &m->r2_flops);
    analysis_fit_origin(m->base_wall, m->cand_wall, k, &m->slope_wall, &m->r2_wall);

    m->target_loss = nb ? base->loss[nb - 1] : NAN;
    m->base_step_final = nb ? base->step[nb - 1] : NAN;
    m->base_flops_final = nb ? base->flops[nb - 1] : NAN;
    m->base_wall_final = nb ? base->wall[nb - 1] : NAN;
    m->at_step = m->at_flops = m->at_wall = NAN;
    m->frac_step = m->frac_flops = m->frac_wall = NAN;
    double pos;
    m->reached = nb > 0 && crossing_on_envelope(cand->loss, env, nc, m->target_loss, &pos);
    if (m->reached) {
        m->at_step = analysis_at(cand->step, nc, pos);
        m->at_flops = analysis_at(cand->flops, nc, pos);
        m->at_wall = analysis_at(cand->wall, nc, pos);
        m->frac_step = m->at_step / m->base_step_final;
        m->frac_flops = m->at_flops / m->base_flops_final;
        m->frac_wall = m->at_wall / m->base_wall_final;
    }
    free(env);
}

void analysis_match_values(const analysis_match_t *m, double v[ANALYSIS_N_STATS])
{
    v[ANALYSIS_SLOPE_STEP] = m->slope_step;
    v[ANALYSIS_SLOPE_FLOPS] = m->slope_flops;
    v[ANALYSIS_SLOPE_WALL] = m->slope_wall;
    v[ANALYSIS_FRAC_STEP] = m->frac_step;
    v[ANALYSIS_FRAC_FLOPS] = m->frac_flops;
    v[ANALYSIS_FRAC_WALL] = m->frac_wall;
}

void analysis_match_free(analysis_match_t *m)
{
    free(m->base_step);
    free(m->cand_step);
    free(m->base_flops);
    free(m->cand_flops);
    free(m->base_wall);
    free(m->cand_wall);
    free(m->matched);
    memset(m, 0, sizeof *m);
}
