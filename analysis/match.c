/* Step matching between a baseline and a candidate run (the MoT paper's method) and
 * the equal-loss point, on the step, FLOPs and wall-clock axes; the comparability
 * check of two runs. Method and choices: docs/analysis.md. */
#include <gsl/gsl_fit.h>
#include <ini.h>
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
    double *sm = xmalloc((n + 1) * sizeof *sm);
    smooth_series(sm, step, src, stride, n, train ? window : 0);
    s->step = xmalloc((n + 1) * sizeof *s->step);
    s->flops = xmalloc((n + 1) * sizeof *s->flops);
    s->wall = xmalloc((n + 1) * sizeof *s->wall);
    s->loss = xmalloc((n + 1) * sizeof *s->loss);
    s->n = 0;
    for (size_t i = 0; i < n; i++) {
        /* a row where the modality had no tokens carries no loss of it */
        if (!isfinite(src[i * stride]) || !isfinite(sm[i]))
            continue;
        s->step[s->n] = (double)step[i];
        s->flops[s->n] = flops[i];
        s->wall[s->n] = wall[i];
        s->loss[s->n] = sm[i];
        s->n++;
    }
    free(sm);
}

void analysis_series_free(analysis_series_t *s)
{
    free(s->step);
    free(s->flops);
    free(s->wall);
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

void analysis_match(analysis_match_t *m, const analysis_series_t *base,
                    const analysis_series_t *cand)
{
    memset(m, 0, sizeof *m);
    size_t nb = base->n;
    m->n_base = nb;
    double **cols[] = {&m->base_step, &m->cand_step, &m->base_flops,
                       &m->cand_flops, &m->base_wall, &m->cand_wall};
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        *cols[k] = xmalloc((nb + 1) * sizeof(double));
    for (size_t i = 0; i < nb; i++) {
        double pos;
        if (!analysis_first_crossing(cand->loss, cand->n, base->loss[i], &pos))
            continue;
        size_t k = m->n_matched++;
        m->base_step[k] = base->step[i];
        m->base_flops[k] = base->flops[i];
        m->base_wall[k] = base->wall[i];
        m->cand_step[k] = analysis_at(cand->step, cand->n, pos);
        m->cand_flops[k] = analysis_at(cand->flops, cand->n, pos);
        m->cand_wall[k] = analysis_at(cand->wall, cand->n, pos);
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
    m->reached = nb > 0 && analysis_first_crossing(cand->loss, cand->n, m->target_loss, &pos);
    if (m->reached) {
        m->at_step = analysis_at(cand->step, cand->n, pos);
        m->at_flops = analysis_at(cand->flops, cand->n, pos);
        m->at_wall = analysis_at(cand->wall, cand->n, pos);
        m->frac_step = m->at_step / m->base_step_final;
        m->frac_flops = m->at_flops / m->base_flops_final;
        m->frac_wall = m->at_wall / m->base_wall_final;
    }
}

void analysis_match_free(analysis_match_t *m)
{
    free(m->base_step);
    free(m->cand_step);
    free(m->base_flops);
    free(m->cand_flops);
    free(m->base_wall);
    free(m->cand_wall);
    memset(m, 0, sizeof *m);
}

/* Tokens per step from the metrics: the last row's cumulative tokens over its step
 * (the first row may be step 0 with no tokens). */
static double tokens_per_step(const runrec_t *r)
{
    for (size_t i = r->n; i-- > 0;)
        if (r->step[i] > 0)
            return (double)r->tokens[i] / (double)r->step[i];
    return NAN;
}

typedef struct kv {
    char key[64];
    char value[192];
} kv_t;

typedef struct kv_list {
    const char *section;
    kv_t items[64];
    int n;
} kv_list_t;

static int collect_section(void *user, const char *section, const char *name, const char *value)
{
    kv_list_t *l = user;
    if (strcmp(section, l->section) || l->n >= 64)
        return 1;
    snprintf(l->items[l->n].key, sizeof l->items[l->n].key, "%s", name);
    snprintf(l->items[l->n].value, sizeof l->items[l->n].value, "%s", value);
    l->n++;
    return 1;
}

static const char *kv_find(const kv_list_t *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key))
            return l->items[i].value;
    return NULL;
}

int analysis_comparability(const runrec_t *a, const runrec_t *b,
                           char lines[][256], int max)
{
    int n = 0;
#define ADD(...)                                                                           \
    do {                                                                                   \
        if (n < max)                                                                       \
            snprintf(lines[n++], 256, __VA_ARGS__);                                        \
    } while (0)
    /* the data the runs saw: every key of [data] */
    kv_list_t da = {.section = "data"}, db = {.section = "data"};
    if (a->config)
        ini_parse_string(a->config, collect_section, &da);
    if (b->config)
        ini_parse_string(b->config, collect_section, &db);
    for (int i = 0; i < da.n; i++) {
        const char *vb = kv_find(&db, da.items[i].key);
        if (!vb || strcmp(vb, da.items[i].value))
            ADD("data.%s differs: '%s' vs '%s'", da.items[i].key, da.items[i].value,
                vb ? vb : "(unset)");
    }
    for (int i = 0; i < db.n; i++)
        if (!kv_find(&da, db.items[i].key))
            ADD("data.%s differs: '(unset)' vs '%s'", db.items[i].key, db.items[i].value);
    char sa[64], sb[64];
    double ta = tokens_per_step(a), tb = tokens_per_step(b);
    if (!(ta == tb))
        ADD("tokens per step differ: %.0f vs %.0f", ta, tb);
    runrec_config_get(a, "train", "steps", sa, sizeof sa);
    runrec_config_get(b, "train", "steps", sb, sizeof sb);
    if (strcmp(sa, sb))
        ADD("schedule length train.steps differs: '%s' vs '%s'", sa, sb);
    bool same_mod = a->n_mod == b->n_mod;
    for (int m = 0; same_mod && m < a->n_mod; m++)
        same_mod = !strcmp(a->mod_names[m], b->mod_names[m]);
    if (!same_mod)
        ADD("modalities differ: %d vs %d, or in name or order", a->n_mod, b->n_mod);
#undef ADD
    return n;
}
