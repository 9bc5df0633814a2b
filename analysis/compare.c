/* A candidate configuration against a baseline configuration: seeds paired, each pair
 * step-matched series by series (overall, then each modality), every number with its
 * interval (over seeds, or the one-seed bootstrap of boot.c), the smoothing
 * sensitivity, the load the runs saw; and the table, JSON and headline output of
 * `motscale compare`, reused by `motscale report`. Method: docs/analysis.md. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"
#include "pair.h"

static const char *const stat_names[ANALYSIS_N_STATS] = {
    "steps", "flops", "wall_clock", "fraction_steps", "fraction_flops", "fraction_wall_clock"};

void sfmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

static void WARN(analysis_comparison_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void WARN(analysis_comparison_t *c, const char *fmt, ...)
{
    if (c->n_warn >= ANALYSIS_MAX_WARN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->warn[c->n_warn++], sizeof c->warn[0], fmt, ap);
    va_end(ap);
}

/* Pairs of runs: by equal run.seed where the groups share seeds; else one run of a side
 * with every run of the other; else in order. */
static void pair_seeds(analysis_comparison_t *c, const analysis_runset_t *set)
{
    const analysis_group_t *b = &set->groups[c->base_group], *k = &set->groups[c->cand_group];
    c->pairs = xcalloc(b->n + k->n + 1, sizeof *c->pairs);
    for (size_t j = 0; j < k->n; j++)
        for (size_t i = 0; i < b->n; i++)
            if (!strcmp(set->runs[b->run[i]].seed, set->runs[k->run[j]].seed)) {
                c->pairs[c->n_pairs].base = b->run[i];
                c->pairs[c->n_pairs++].cand = k->run[j];
                break;
            }
    if (c->n_pairs) {
        sfmt(c->pairing, sizeof c->pairing, "paired by run.seed");
        return;
    }
    size_t n = b->n == 1 ? k->n : k->n == 1 ? b->n : (b->n < k->n ? b->n : k->n);
    for (size_t p = 0; p < n; p++) {
        c->pairs[p].base = b->run[b->n == 1 ? 0 : p];
        c->pairs[p].cand = k->run[k->n == 1 ? 0 : p];
    }
    c->n_pairs = n;
    sfmt(c->pairing, sizeof c->pairing, "%s",
             b->n == 1 && k->n > 1   ? "no common seeds: one baseline run for every candidate seed"
             : k->n == 1 && b->n > 1 ? "no common seeds: one candidate run for every baseline seed"
             : n > 1                 ? "no common seeds: paired in order"
                                     : "one run each");
}

/* The wall-clock of a pair is suspect when its runs saw different load. */
static bool load_differs(const analysis_run_t *a, const analysis_run_t *b)
{
    double la = a->load, lb = b->load;
    bool load = isfinite(la) && isfinite(lb) &&
                fabs(la - lb) > fmax(ANALYSIS_LOAD_ABS, ANALYSIS_LOAD_REL * fmax(la, lb));
    bool steal = isfinite(a->steal) && isfinite(b->steal) &&
                 fabs(a->steal - b->steal) > ANALYSIS_STEAL_ABS;
    return load || steal;
}

static void series_of_pairs(analysis_comparison_t *c, const analysis_runset_t *set,
                            const analysis_opts_t *o)
{
    const runrec_t *b0 = &set->runs[c->pairs[0].base].r, *c0 = &set->runs[c->pairs[0].cand].r;
    for (int col = -1; col < b0->n_mod; col++) {
        int ccol = -1;
        if (col >= 0) {
            for (int k = 0; k < c0->n_mod; k++)
                if (!strcmp(c0->mod_names[k], b0->mod_names[col]))
                    ccol = k;
            if (ccol < 0) {
                WARN(c, "modality '%s' is not in the candidate: not compared", b0->mod_names[col]);
                continue;
            }
        }
        analysis_cmp_series_t *s = &c->series[c->n_series];
        sfmt(s->name, sizeof s->name, "%s", col < 0 ? "overall" : b0->mod_names[col]);
        s->col_b = col;
        s->col_c = ccol;
        for (size_t p = 0; p < c->n_pairs; p++) {
            analysis_pairrun_t *pr = &c->pairs[p];
            analysis_series_build(&pr->sb[c->n_series], &set->runs[pr->base].r, o->metric, col,
                                  o->window);
            analysis_series_build(&pr->sc[c->n_series], &set->runs[pr->cand].r, o->metric, ccol,
                                  o->window);
            analysis_match(&pr->m[c->n_series], &pr->sb[c->n_series], &pr->sc[c->n_series]);
        }
        c->n_series++;
    }
}

/* The one-seed interval of series k: the bootstrap's percentile intervals. */
static void bootstrap_series(analysis_comparison_t *c, int k, const analysis_opts_t *o,
                             const double *point)
{
    analysis_cmp_series_t *s = &c->series[k];
    const analysis_pairrun_t *pr = &c->pairs[0];
    analysis_noise_t nb, nc;
    bool ok = analysis_noise_fit(&nb, &pr->sb[k]) && analysis_noise_fit(&nc, &pr->sc[k]);
    if (!ok || o->resamples < 2) {
        for (int j = 0; j < ANALYSIS_N_STATS; j++)
            analysis_interval_set(&s->v[j], point[j], NAN, NAN,
                                  "one seed, and too few logged points (or resamples) for the "
                                  "bootstrap: no interval");
        analysis_noise_free(&nb);
        analysis_noise_free(&nc);
        return;
    }
    s->knots[0] = nb.knots;
    s->knots[1] = nc.knots;
    s->ar[0] = nb.ar_p;
    s->ar[1] = nc.ar_p;
    s->block[0] = nb.block;
    s->block[1] = nc.block;
    size_t R = o->resamples;
    double *rep = xmalloc(R * ANALYSIS_N_STATS * sizeof *rep), *col = xmalloc(R * sizeof *col);
    analysis_pair_bootstrap(rep, R, &pr->sb[k], &pr->sc[k], &nb, &nc,
                            o->metric == ANALYSIS_TRAIN ? o->window : 0, o->seed);
    for (int j = 0; j < ANALYSIS_N_STATS; j++) {
        for (size_t r = 0; r < R; r++)
            col[r] = rep[r * ANALYSIS_N_STATS + j];
        double lo, hi;
        size_t fin = analysis_percentile(col, R, ANALYSIS_LEVEL, &lo, &hi);
        analysis_interval_set(&s->v[j], point[j], isfinite(point[j]) ? lo : NAN,
                              isfinite(point[j]) ? hi : NAN,
                              "one seed: moving-block bootstrap of the loss residuals about a "
                              "B-spline trend (knots %d/%d, AR(%d)/AR(%d) prewhitened, blocks "
                              "%zu/%zu rows), %zu resamples (%zu finite), seed %lu, percentile",
                              nb.knots, nc.knots, nb.ar_p, nc.ar_p, nb.block, nc.block, R, fin,
                              o->seed);
    }
    free(col);
    free(rep);
    analysis_noise_free(&nb);
    analysis_noise_free(&nc);
}

static void seeds_series(analysis_comparison_t *c, int k)
{
    analysis_cmp_series_t *s = &c->series[k];
    double *v = xmalloc((c->n_pairs + 1) * sizeof *v);
    for (int j = 0; j < ANALYSIS_N_STATS; j++) {
        size_t n = 0;
        for (size_t p = 0; p < c->n_pairs; p++) {
            double val[ANALYSIS_N_STATS];
            analysis_match_values(&c->pairs[p].m[k], val);
            if (isfinite(val[j]))
                v[n++] = val[j];
        }
        if (n == c->n_pairs)
            analysis_t_interval(&s->v[j], v, n, ANALYSIS_LEVEL);
        else
            analysis_interval_set(&s->v[j], NAN, NAN, NAN, "%s in %zu of %zu seeds: none over seeds",
                                  j >= ANALYSIS_FRAC_STEP ? "reached" : "defined", n,
                                  c->n_pairs);
    }
    free(v);
}

/* Step slope at smooth 0, W and 2W (W the chosen window, or the default when that is 0),
 * mean over pairs; training loss only. */
static void sensitivity(analysis_comparison_t *c, const analysis_runset_t *set, int k,
                        const analysis_opts_t *o)
{
    analysis_cmp_series_t *s = &c->series[k];
    double w = o->window > 0 ? o->window : SMOOTH_DEFAULT;
    double ws[3] = {0, w, 2 * w};
    for (int i = 0; i < 3; i++) {
        s->sens_window[i] = ws[i];
        s->sens[i] = NAN;
        if (o->metric != ANALYSIS_TRAIN)
            continue;
        double sum = 0;
        size_t n = 0;
        for (size_t p = 0; p < c->n_pairs; p++) {
            analysis_series_t sb, sc;
            analysis_match_t m;
            analysis_series_build(&sb, &set->runs[c->pairs[p].base].r, o->metric, s->col_b, ws[i]);
            analysis_series_build(&sc, &set->runs[c->pairs[p].cand].r, o->metric, s->col_c, ws[i]);
            analysis_match(&m, &sb, &sc);
            if (isfinite(m.slope_step)) {
                sum += m.slope_step;
                n++;
            }
            analysis_match_free(&m);
            analysis_series_free(&sb);
            analysis_series_free(&sc);
        }
        s->sens[i] = n == c->n_pairs && n ? sum / (double)n : NAN;
    }
    const analysis_interval_t *iv = &s->v[ANALYSIS_SLOPE_STEP];
    double lo = fmin(fmin(s->sens[0], s->sens[1]), s->sens[2]);
    double hi = fmax(fmax(s->sens[0], s->sens[1]), s->sens[2]);
    s->sensitive = isfinite(iv->lo) && isfinite(iv->hi) && isfinite(lo) &&
                   hi - lo > fmax((iv->hi - iv->lo) / 2, ANALYSIS_SENS_MIN * fabs(iv->value));
}

static bool steptime_applies(const analysis_steptime_t *st, const analysis_run_t *b,
                             const analysis_run_t *k)
{
    return st && !strcmp(st->a_label, b->label) && !strcmp(st->b_label, k->label) &&
           !strcmp(st->a_size, b->size) && !strcmp(st->b_size, k->size);
}

/* wall-clock = FLOPs slope x paired step-time ratio; the two intervals combined in
 * log space as independent. */
static void paired_wall(analysis_cmp_series_t *s, const analysis_steptime_t *st)
{
    const analysis_interval_t *f = &s->v[ANALYSIS_SLOPE_FLOPS], *r = &st->ratio;
    double v = f->value * r->value, lo = NAN, hi = NAN;
    if (f->value > 0 && r->value > 0 && f->lo > 0 && r->lo > 0 && isfinite(f->hi) &&
        isfinite(r->hi)) {
        double dl = hypot(log(f->value / f->lo), log(r->value / r->lo));
        double dh = hypot(log(f->hi / f->value), log(r->hi / r->value));
        lo = v * exp(-dl);
        hi = v * exp(dh);
    }
    analysis_interval_set(&s->wall_paired, v, lo, hi,
                          "FLOPs slope x paired step-time ratio %.4f [%.4f, %.4f] (motscale "
                          "steptime, %zu burst pairs); intervals combined in log space",
                          r->value, r->lo, r->hi, st->pairs);
}

void analysis_compare(analysis_comparison_t *c, const analysis_runset_t *set, size_t base,
                      size_t cand, const analysis_opts_t *o)
{
    memset(c, 0, sizeof *c);
    c->base_group = base;
    c->cand_group = cand;
    pair_seeds(c, set);
    if (!c->n_pairs)
        return;
    const analysis_run_t *b0 = &set->runs[c->pairs[0].base], *k0 = &set->runs[c->pairs[0].cand];
    char lines[ANALYSIS_MAX_WARN][256];
    int nl = analysis_comparability(&b0->r, &k0->r, o->compared, lines, ANALYSIS_MAX_WARN);
    for (int i = 0; i < nl; i++)
        WARN(c, "%s", lines[i]);
    for (size_t p = 0; p < c->n_pairs; p++) {
        const analysis_run_t *a = &set->runs[c->pairs[p].base], *b = &set->runs[c->pairs[p].cand];
        if (load_differs(a, b)) {
            if (!c->load_differs)
                WARN(c, "wall-clock: %s ran at load %.2f (median 1-minute load average; CPU "
                        "steal %.1f%%), %s at %.2f (%.1f%%): its wall-clock fraction reflects "
                        "the machine as well as the model (motscale steptime measures the "
                        "ratio paired)",
                     a->r.run_name, a->load, 100 * a->steal, b->r.run_name, b->load,
                     100 * b->steal);
            c->load_differs = true;
        }
    }
    series_of_pairs(c, set, o);
    c->seeds = c->n_pairs >= 2;
    bool st = steptime_applies(o->steptime, b0, k0);
    if (o->steptime && !st)
        WARN(c, "steptime measured %s (%s) vs %s (%s), not this pair: not applied",
             o->steptime->a_label, o->steptime->a_size, o->steptime->b_label,
             o->steptime->b_size);
    c->steptime_used = st;
    for (int k = 0; k < c->n_series; k++) {
        analysis_cmp_series_t *s = &c->series[k];
        const analysis_match_t *m0 = &c->pairs[0].m[k];
        s->n_base = m0->n_base;
        s->n_matched = m0->n_matched;
        double r2[3] = {0, 0, 0}, target = 0;
        for (size_t p = 0; p < c->n_pairs; p++) {
            const analysis_match_t *m = &c->pairs[p].m[k];
            r2[0] += m->r2_step / (double)c->n_pairs;
            r2[1] += m->r2_flops / (double)c->n_pairs;
            r2[2] += m->r2_wall / (double)c->n_pairs;
            target += m->target_loss / (double)c->n_pairs;
            s->n_reached += m->reached;
        }
        memcpy(s->r2, r2, sizeof r2);
        s->target_loss = target;
        if (c->seeds) {
            seeds_series(c, k);
        } else {
            double point[ANALYSIS_N_STATS];
            analysis_match_values(m0, point);
            bootstrap_series(c, k, o, point);
        }
        sensitivity(c, set, k, o);
        if (st)
            paired_wall(s, o->steptime);
        else
            analysis_interval_set(&s->wall_paired, NAN, NAN, NAN, "no paired step time given");
    }
}

void analysis_comparison_free(analysis_comparison_t *c)
{
    for (size_t p = 0; p < c->n_pairs; p++)
        for (int k = 0; k < c->n_series; k++) {
            analysis_series_free(&c->pairs[p].sb[k]);
            analysis_series_free(&c->pairs[p].sc[k]);
            analysis_match_free(&c->pairs[p].m[k]);
        }
    free(c->pairs);
    memset(c, 0, sizeof *c);
}

void analysis_group_title(char *out, size_t len, const analysis_runset_t *set, size_t group)
{
    const analysis_group_t *g = &set->groups[group];
    const analysis_run_t *r = &set->runs[g->run[0]];
    sfmt(out, len, "%s, %s (d%d x %d), %zu seed%s", r->label, r->size, r->r.d_model,
             r->r.n_layers, g->n, g->n == 1 ? "" : "s");
}

/* ---- the table ------------------------------------------------------------------ */

/* "0.512 [0.480, 0.544]" (pct: "51.2% [48.0, 54.4]"); "-" for no number; a missing
 * bound is "-" (an upper bound beyond reach: "not reached"). */
static void fmt_iv(char *out, size_t len, const analysis_interval_t *iv, bool pct)
{
    double f = pct ? 100 : 1;
    const char *fmt = pct ? "%.1f" : "%.3f";
    if (!isfinite(iv->value)) {
        sfmt(out, len, "-");
        return;
    }
    char v[32], lo[32], hi[32];
    sfmt(v, sizeof v, fmt, f * iv->value);
    if (isfinite(iv->lo))
        sfmt(lo, sizeof lo, fmt, f * iv->lo);
    else
        sfmt(lo, sizeof lo, "-");
    if (isfinite(iv->hi))
        sfmt(hi, sizeof hi, fmt, f * iv->hi);
    else
        sfmt(hi, sizeof hi, pct && isfinite(iv->lo) ? "not reached" : "-");
    sfmt(out, len, "%s%s [%s, %s]", v, pct ? "%" : "", lo, hi);
}

static void fmt_sens(char *out, size_t len, const analysis_cmp_series_t *s)
{
    if (!isfinite(s->sens[0]) && !isfinite(s->sens[1]) && !isfinite(s->sens[2])) {
        sfmt(out, len, "-");
        return;
    }
    sfmt(out, len, "%.3f/%.3f/%.3f%s", s->sens[0], s->sens[1], s->sens[2],
             s->sensitive ? " (!)" : "");
}

static void runs_line(FILE *out, const char *role, const analysis_runset_t *set, size_t group)
{
    char title[256];
    analysis_group_title(title, sizeof title, set, group);
    const analysis_group_t *g = &set->groups[group];
    const runrec_t *r = &set->runs[g->run[0]].r;
    fprintf(out, "%-10s %s, experiment '%s', %lld params, %lld steps\n", role, title,
            r->experiment, (long long)r->params_total, (long long)r->step[r->n - 1]);
    for (size_t i = 0; i < g->n; i++)
        fprintf(out, "           seed %s: %s\n", set->runs[g->run[i]].seed, set->runs[g->run[i]].r.path);
}

void analysis_compare_table(FILE *out, const analysis_runset_t *set,
                            const analysis_comparison_t *c, size_t n, const analysis_opts_t *o)
{
    size_t shown_base = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (c[i].base_group != shown_base)
            runs_line(out, "baseline:", set, c[i].base_group);
        shown_base = c[i].base_group;
    }
    for (size_t i = 0; i < n; i++)
        runs_line(out, "candidate:", set, c[i].cand_group);
    if (o->metric == ANALYSIS_TRAIN && o->window > 0)
        fprintf(out, "metric:    training loss, debiased EMA with time constant %g x step\n",
                o->window);
    else
        fprintf(out, "metric:    %s loss, not smoothed\n",
                o->metric == ANALYSIS_TRAIN ? "training" : "held-out");
    fprintf(out, "intervals: %.0f%%; with several seeds t over the paired seeds, with one a "
                 "moving-block bootstrap of the loss curves (%zu resamples, seed %lu); the "
                 "method of each number is in --json (docs/analysis.md)\n",
            100 * ANALYSIS_LEVEL, o->resamples, o->seed);
    for (size_t i = 0; i < n; i++) {
        char title[256];
        analysis_group_title(title, sizeof title, set, c[i].cand_group);
        for (int w = 0; w < c[i].n_warn; w++)
            fprintf(out, "warning:   %s: %s\n", title, c[i].warn[w]);
    }
    bool paired = false;
    for (size_t i = 0; i < n; i++)
        paired = paired || c[i].steptime_used;
    fprintf(out, "\nstep matching: slope through the origin of the candidate's matching step "
                 "against the baseline's [95%% interval]; R^2 of the step fit; the step slope "
                 "at smoothing 0, W, 2W ((!): it moves by more than half the interval and 1%%)%s\n",
            paired ? "; wall-clock (paired): FLOPs slope x paired step-time ratio" : "");
    fprintf(out, "%-14s %-6s %-5s %-9s %-9s %-22s %-22s %-24s %-6s %s%s\n", "candidate", "size",
            "seeds", "series", "matched", "steps", "FLOPs", "wall-clock", "R^2",
            "smooth 0/W/2W", paired ? "  wall-clock (paired)" : "");
    for (size_t i = 0; i < n; i++) {
        const analysis_run_t *k = &set->runs[set->groups[c[i].cand_group].run[0]];
        for (int j = 0; j < c[i].n_series; j++) {
            const analysis_cmp_series_t *s = &c[i].series[j];
            char a[64], b[64], w[80], mt[32], r2[16], sens[48], pw[64] = "";
            fmt_iv(a, sizeof a, &s->v[ANALYSIS_SLOPE_STEP], false);
            fmt_iv(b, sizeof b, &s->v[ANALYSIS_SLOPE_FLOPS], false);
            fmt_iv(w, sizeof w, &s->v[ANALYSIS_SLOPE_WALL], false);
            if (c[i].load_differs && isfinite(s->v[ANALYSIS_SLOPE_WALL].value))
                strcat(w, " (L)");
            sfmt(mt, sizeof mt, "%zu/%zu", s->n_matched, s->n_base);
            if (isfinite(s->r2[0]))
                sfmt(r2, sizeof r2, "%.3f", s->r2[0]);
            else
                sfmt(r2, sizeof r2, "-");
            fmt_sens(sens, sizeof sens, s);
            if (paired)
                fmt_iv(pw, sizeof pw, &s->wall_paired, false);
            fprintf(out, "%-14s %-6s %-5zu %-9s %-9s %-22s %-22s %-24s %-6s %-*s%s%s\n", k->label,
                    k->size, c[i].n_pairs, s->name, mt, a, b, w, r2, paired ? 20 : 0, sens,
                    paired ? " " : "", pw);
        }
    }
    fprintf(out, "\nequal loss: what the candidate needs to reach the baseline's final loss, as "
                 "a fraction of the baseline's [95%% interval]%s\n",
            paired ? "" : "");
    fprintf(out, "%-14s %-6s %-5s %-9s %-9s %-24s %-24s %s\n", "candidate", "size", "seeds",
            "series", "target", "steps", "FLOPs", "wall-clock");
    for (size_t i = 0; i < n; i++) {
        const analysis_run_t *k = &set->runs[set->groups[c[i].cand_group].run[0]];
        for (int j = 0; j < c[i].n_series; j++) {
            const analysis_cmp_series_t *s = &c[i].series[j];
            char t[32], a[64], b[64], w[80];
            sfmt(t, sizeof t, "%.4f", s->target_loss);
            if (s->n_reached == 0) {
                fprintf(out, "%-14s %-6s %-5zu %-9s %-9s not reached\n", k->label, k->size,
                        c[i].n_pairs, s->name, t);
                continue;
            }
            fmt_iv(a, sizeof a, &s->v[ANALYSIS_FRAC_STEP], true);
            fmt_iv(b, sizeof b, &s->v[ANALYSIS_FRAC_FLOPS], true);
            fmt_iv(w, sizeof w, &s->v[ANALYSIS_FRAC_WALL], true);
            if (s->n_reached < c[i].n_pairs)
                sfmt(a, sizeof a, "reached in %zu of %zu seeds", s->n_reached, c[i].n_pairs);
            if (c[i].load_differs && s->n_reached == c[i].n_pairs)
                strcat(w, " (L)");
            fprintf(out, "%-14s %-6s %-5zu %-9s %-9s %-24s %-24s %s\n", k->label, k->size,
                    c[i].n_pairs, s->name, t, a, s->n_reached < c[i].n_pairs ? "" : b,
                    s->n_reached < c[i].n_pairs ? "" : w);
        }
    }
    bool any_load = false;
    for (size_t i = 0; i < n; i++)
        any_load = any_load || c[i].load_differs;
    if (any_load)
        fprintf(out, "\n(L): the runs of this wall-clock figure saw different load (warning "
                     "above)\n");
    fputc('\n', out);
    analysis_compare_headlines(out, set, c, n, o);
}

void analysis_compare_headlines(FILE *out, const analysis_runset_t *set,
                                const analysis_comparison_t *c, size_t n,
                                const analysis_opts_t *o)
{
    const char *what = o->metric == ANALYSIS_TRAIN ? "training" : "held-out";
    for (size_t i = 0; i < n; i++) {
        const analysis_run_t *b = &set->runs[c[i].pairs ? c[i].pairs[0].base : 0];
        const analysis_run_t *k = &set->runs[set->groups[c[i].cand_group].run[0]];
        char method[160];
        if (c[i].seeds)
            sfmt(method, sizeof method, "95%% intervals, t over %zu paired seeds",
                     c[i].n_pairs);
        else
            sfmt(method, sizeof method,
                     "95%% intervals, one-seed bootstrap of the loss curves, %zu resamples",
                     o->resamples);
        for (int j = 0; j < c[i].n_series; j++) {
            const analysis_cmp_series_t *s = &c[i].series[j];
            fprintf(out, "headline: %s vs %s, %s, %zu seed%s: ", k->label, b->label, k->size,
                    c[i].n_pairs, c[i].n_pairs == 1 ? "" : "s");
            if (s->n_reached == 0) {
                fprintf(out, "%s does not reach %s's final %s %s loss (%.4f)\n", k->label,
                        b->label, s->name, what, s->target_loss);
                continue;
            }
            if (s->n_reached < c[i].n_pairs) {
                fprintf(out, "%s reaches %s's final %s %s loss (%.4f) in %zu of %zu seeds\n",
                        k->label, b->label, s->name, what, s->target_loss, s->n_reached,
                        c[i].n_pairs);
                continue;
            }
            char f[64], w[64];
            fmt_iv(f, sizeof f, &s->v[ANALYSIS_FRAC_FLOPS], true);
            fmt_iv(w, sizeof w, &s->v[ANALYSIS_FRAC_WALL], true);
            fprintf(out, "%s reaches %s's final %s %s loss (%.4f) with %s of the FLOPs, %s of "
                         "the wall-clock (%s)%s\n",
                    k->label, b->label, s->name, what, s->target_loss, f, w, method,
                    c[i].load_differs ? "; wall-clock flagged: the runs saw different load" : "");
        }
    }
}

/* ---- JSON ------------------------------------------------------------------------ */

void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

/* A number, or null where it is not one (not reached, too few points). */
void json_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.17g", v);
    else
        fputs("null", out);
}

void json_array(FILE *out, const double *v, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_number(out, v[i]);
    }
    fputc(']', out);
}

void json_kv_str(FILE *out, bool first, const char *key, const char *value)
{
    fprintf(out, "%s\"%s\": ", first ? "" : ", ", key);
    json_string(out, value);
}

void json_kv_num(FILE *out, bool first, const char *key, double value)
{
    fprintf(out, "%s\"%s\": ", first ? "" : ", ", key);
    json_number(out, value);
}

/* {"value": .., "lo": .., "hi": .., "method": ".."} without the closing brace. */
void json_interval_fields(FILE *out, const analysis_interval_t *iv)
{
    fputc('{', out);
    json_kv_num(out, true, "value", iv->value);
    json_kv_num(out, false, "lo", iv->lo);
    json_kv_num(out, false, "hi", iv->hi);
    json_kv_str(out, false, "method", iv->method);
}

void json_interval(FILE *out, const analysis_interval_t *iv)
{
    json_interval_fields(out, iv);
    fputc('}', out);
}

static void json_group(FILE *out, const analysis_runset_t *set, size_t group)
{
    const analysis_group_t *g = &set->groups[group];
    const analysis_run_t *r = &set->runs[g->run[0]];
    fputc('{', out);
    json_kv_str(out, true, "label", r->label);
    json_kv_str(out, false, "kind", r->r.kind);
    json_kv_str(out, false, "size", r->size);
    json_kv_str(out, false, "experiment", r->r.experiment);
    fprintf(out, ", \"d_model\": %d, \"n_layers\": %d, \"params_total\": %lld, \"runs\": [",
            r->r.d_model, r->r.n_layers, (long long)r->r.params_total);
    for (size_t i = 0; i < g->n; i++) {
        const analysis_run_t *x = &set->runs[g->run[i]];
        fprintf(out, "%s{", i ? ", " : "");
        json_kv_str(out, true, "path", x->r.path);
        json_kv_str(out, false, "run_name", x->r.run_name);
        json_kv_str(out, false, "seed", x->seed);
        json_kv_num(out, false, "steps", (double)x->r.step[x->r.n - 1]);
        json_kv_num(out, false, "flops", x->r.flops[x->r.n - 1]);
        json_kv_num(out, false, "wall_clock_s", x->r.wall_time[x->r.n - 1]);
        json_kv_num(out, false, "load_avg", x->load);
        json_kv_num(out, false, "cpu_steal", x->steal);
        json_kv_num(out, false, "median_step_time_s", x->med_step);
        fputc('}', out);
    }
    fprintf(out, "]}");
}

static void json_series(FILE *out, const analysis_comparison_t *c, int k)
{
    const analysis_cmp_series_t *s = &c->series[k];
    fprintf(out, "\n       {\"name\": ");
    json_string(out, s->name);
    fprintf(out, ", \"n_baseline\": %zu, \"n_matched\": %zu,\n        \"step_matching\": {",
            s->n_base, s->n_matched);
    for (int a = 0; a < 3; a++) {
        fprintf(out, "%s\"%s\": ", a ? ", " : "", stat_names[a]);
        json_interval_fields(out, &s->v[a]);
        fprintf(out, ", \"r2\": ");
        json_number(out, s->r2[a]);
        fputc('}', out);
    }
    fprintf(out, ", \"wall_clock_paired\": ");
    json_interval(out, &s->wall_paired);
    fprintf(out, ", \"load_differs\": %s},\n        \"equal_loss\": {\"target_loss\": ",
            c->load_differs ? "true" : "false");
    json_number(out, s->target_loss);
    fprintf(out, ", \"reached\": %s, \"reached_in\": %zu", s->n_reached == c->n_pairs ? "true" : "false",
            s->n_reached);
    for (int a = ANALYSIS_FRAC_STEP; a < ANALYSIS_N_STATS; a++) {
        fprintf(out, ", \"%s\": ", stat_names[a]);
        json_interval(out, &s->v[a]);
    }
    fprintf(out, "},\n        \"smoothing_sensitivity\": {\"windows\": ");
    json_array(out, s->sens_window, 3);
    fprintf(out, ", \"slope_steps\": ");
    json_array(out, s->sens, 3);
    fprintf(out, ", \"sensitive\": %s},\n        \"pairs\": [", s->sensitive ? "true" : "false");
    for (size_t p = 0; p < c->n_pairs; p++) {
        const analysis_match_t *m = &c->pairs[p].m[k];
        double v[ANALYSIS_N_STATS];
        analysis_match_values(m, v);
        fprintf(out, "%s\n         {", p ? "," : "");
        for (int a = 0; a < ANALYSIS_N_STATS; a++) {
            fprintf(out, "%s\"%s\": ", a ? ", " : "", stat_names[a]);
            json_number(out, v[a]);
        }
        fprintf(out, ", \"reached\": %s, \"curve\": {\"baseline_step\": ", m->reached ? "true" : "false");
        json_array(out, m->base_step, m->n_matched);
        fprintf(out, ", \"candidate_step\": ");
        json_array(out, m->cand_step, m->n_matched);
        fprintf(out, ", \"baseline_flops\": ");
        json_array(out, m->base_flops, m->n_matched);
        fprintf(out, ", \"candidate_flops\": ");
        json_array(out, m->cand_flops, m->n_matched);
        fprintf(out, ", \"baseline_wall_clock_s\": ");
        json_array(out, m->base_wall, m->n_matched);
        fprintf(out, ", \"candidate_wall_clock_s\": ");
        json_array(out, m->cand_wall, m->n_matched);
        fprintf(out, "}}");
    }
    fprintf(out, "]}");
}

void analysis_compare_json(FILE *out, const analysis_runset_t *set,
                           const analysis_comparison_t *c, size_t n, const analysis_opts_t *o)
{
    fprintf(out, "{\n  \"metric\": \"%s\",\n  \"smooth_window\": ",
            o->metric == ANALYSIS_TRAIN ? "train" : "eval");
    json_number(out, o->metric == ANALYSIS_TRAIN ? o->window : 0);
    fprintf(out, ",\n  \"level\": %g,\n  \"resamples\": %zu,\n  \"bootstrap_seed\": %lu,\n  "
                 "\"comparisons\": [",
            ANALYSIS_LEVEL, o->resamples, o->seed);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s\n    {\"baseline\": ", i ? "," : "");
        json_group(out, set, c[i].base_group);
        fprintf(out, ",\n     \"candidate\": ");
        json_group(out, set, c[i].cand_group);
        fprintf(out, ",\n     \"n_seeds\": %zu, \"pairing\": ", c[i].n_pairs);
        json_string(out, c[i].pairing);
        fprintf(out, ", \"intervals\": \"%s\",\n     \"warnings\": [",
                c[i].seeds ? "seeds" : "bootstrap");
        for (int w = 0; w < c[i].n_warn; w++) {
            if (w)
                fputs(", ", out);
            json_string(out, c[i].warn[w]);
        }
        fprintf(out, "],\n     \"series\": [");
        for (int k = 0; k < c[i].n_series; k++) {
            if (k)
                fputc(',', out);
            json_series(out, &c[i], k);
        }
        fprintf(out, "]}");
    }
    fprintf(out, "\n  ]\n}\n");
}
