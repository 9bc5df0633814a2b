/* The report of `motscale report RESULTS_DIR`: every run.h5 under a folder, grouped by
 * experiment, configuration (seeds together) and size; each candidate configuration
 * compared with its dense baseline (compare.c); report.md with tables that carry
 * intervals, checked scaling fits (fit.c), and PNG + SVG figures rendered by gnuplot
 * next to their data. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "motscale/analysis.h"
#include "motscale/common.h"
#include "motscale/runschema.h"
#include "pair.h"
#include "plot.h"

#define REPORT_FIT_MIN_SIZES 3     /* a scaling law needs runs at this many sizes */
#define REPORT_FIT_BUDGETS 24      /* log-spaced budgets sampled on the frontier */
#define REPORT_ND_POINTS 16        /* log-spaced token counts taken from each curve */
#define REPORT_FIT_SKIP 0.1        /* first fraction of each run's FLOPs left out */
#define REPORT_CURVE_SKIP 0.05     /* loss axes fit the curves past this fraction */
#define REPORT_MAX_LABELS 16
#define DEC_BUCKETS RUNREC_BUCKETS  /* sentence-length buckets of the decoding columns */

/* One colour and one dash pattern per configuration label, in order of appearance. */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

/* ---- report state ------------------------------------------------------------------ */

typedef struct rrun_timing {
    double med_compute, med_comm, med_io, mfu;
} rrun_timing_t;

typedef struct report {
    const char *dir, *out;
    const analysis_opts_t *o;
    analysis_runset_t set;
    rrun_timing_t *timing;
    analysis_comparison_t *cmp;        /* training loss */
    analysis_comparison_t *cmp_eval;   /* held-out, where every run has evaluations */
    bool *has_eval;
    size_t n_cmp;
    char labels[REPORT_MAX_LABELS][96];
    int n_labels;
    FILE *md;
    bool gnuplot;
    int n_fig, n_fig_failed;
} report_t;

static const analysis_run_t *grun(const report_t *rep, size_t g)
{
    return &rep->set.runs[rep->set.groups[g].run[0]];
}

static const char *gexp(const report_t *rep, size_t g)
{
    return grun(rep, g)->r.experiment;
}

static int label_index(report_t *rep, const char *label)
{
    for (int i = 0; i < rep->n_labels; i++)
        if (!strcmp(rep->labels[i], label))
            return i;
    if (rep->n_labels == REPORT_MAX_LABELS)
        return REPORT_MAX_LABELS - 1;
    snprintf(rep->labels[rep->n_labels], sizeof rep->labels[0], "%s", label);
    return rep->n_labels++;
}

/* gnuplot style of a configuration label, "lc rgb '#..' dt N": dense black dashed, then
 * one palette colour and dash pattern each. colour alone when dt is NULL. */
static void label_style(report_t *rep, char *out, size_t len, const char *label, bool dashes)
{
    bool dense = !strcmp(label, "dense");
    int i = dense ? 0 : label_index(rep, label);
    const char *colour = dense ? "#222222" : palette[i % 8];
    int dt = dense ? 2 : i % 5 == 0 ? 1 : 2 + i % 5;
    if (dashes)
        sfmt(out, len, "lc rgb '%s' dt %d", colour, dt);
    else
        sfmt(out, len, "lc rgb '%s'", colour);
}

static bool same_size(const runrec_t *a, const runrec_t *b)
{
    return a->d_model == b->d_model && a->n_layers == b->n_layers;
}

/* Distinct sizes of an experiment, smallest first, by d_model x n_layers: rank of g. */
static int size_rank(const report_t *rep, size_t g)
{
    const runrec_t *r = &grun(rep, g)->r;
    long me = (long)r->d_model * r->n_layers;
    int rank = 0;
    long seen[64];
    int ns = 0;
    for (size_t h = 0; h < rep->set.n_groups; h++) {
        const runrec_t *o = &grun(rep, h)->r;
        long v = (long)o->d_model * o->n_layers;
        if (strcmp(o->experiment, r->experiment) || v >= me)
            continue;
        bool dup = false;
        for (int k = 0; k < ns; k++)
            dup = dup || seen[k] == v;
        if (!dup && ns < 64) {
            seen[ns++] = v;
            rank++;
        }
    }
    return rank;
}

/* Medians over logged steps after the first (start-up costs), and MFU: model FLOPs
 * of a step / its wall-clock / (peak per rank x ranks), median over rows. */
static void derive_timing(rrun_timing_t *t, const runrec_t *r)
{
    size_t s = r->n > 1 ? 1 : 0, n = r->n - s;
    t->med_compute = analysis_median(r->compute_time + s, n);
    t->med_comm = analysis_median(r->comm_time + s, n);
    t->med_io = analysis_median(r->io_time + s, n);
    double *mfu = xmalloc((r->n + 1) * sizeof *mfu);
    size_t k = 0;
    double peak = r->peak_flops_per_rank * (double)r->world_size;
    for (size_t i = 1; i < r->n; i++) {
        double dstep = (double)(r->step[i] - r->step[i - 1]);
        if (dstep > 0 && r->step_time[i] > 0 && peak > 0)
            mfu[k++] = (r->flops[i] - r->flops[i - 1]) / dstep / r->step_time[i] / peak;
    }
    t->mfu = analysis_median(mfu, k);
    free(mfu);
}

/* Reference a rendered figure from report.md, or say why it is missing. */
static void figure(report_t *rep, plot_t *p, const char *title)
{
    char err[1024];
    if (!plot_close(p, err, sizeof err)) {
        warnf("%s", err);
        fprintf(rep->md, "\n*Figure %s not rendered: %s*\n", p->name, err);
        rep->n_fig_failed++;
        return;
    }
    rep->n_fig++;
    fprintf(rep->md, "\n![%s](%s.png)\n\n[%s.svg](%s.svg) · data [%s.dat](%s.dat)\n", title,
            p->name, p->name, p->name, p->name, p->name);
}

static bool fig_open(report_t *rep, plot_t *p, const char *name, const char *title,
                     const char *xlabel, const char *ylabel)
{
    if (!rep->gnuplot)
        return false;
    char err[1024];
    if (!plot_open(p, rep->out, name, title, xlabel, ylabel, err, sizeof err)) {
        warnf("%s", err);
        fprintf(rep->md, "\n*Figure %s not rendered: %s*\n", name, err);
        rep->n_fig_failed++;
        return false;
    }
    return true;
}

static void md_num(FILE *md, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(md, fmt, v);
    else
        fputs("-", md);
}

/* "0.512 [0.480, 0.544]" or, as percent, "51.2% [48.0, 54.4]"; "-" for no number. */
static void md_iv(FILE *md, const analysis_interval_t *iv, bool pct, int digits)
{
    double f = pct ? 100 : 1;
    if (!isfinite(iv->value)) {
        fputs("-", md);
        return;
    }
    fprintf(md, "%.*f%s [", digits, f * iv->value, pct ? "%" : "");
    md_num(md, pct ? "%.1f" : digits == 3 ? "%.3f" : "%.4g", f * iv->lo);
    fputs(", ", md);
    if (pct && !isfinite(iv->hi) && isfinite(iv->lo))
        fputs("not reached", md);
    else
        md_num(md, pct ? "%.1f" : digits == 3 ? "%.3f" : "%.4g", f * iv->hi);
    fputs("]", md);
}

/* Series names of an experiment: "overall" and the first run's modalities. */
static int exp_series(const report_t *rep, const char *exp, char names[][ANALYSIS_NAME_LEN])
{
    for (size_t i = 0; i < rep->set.n_runs; i++) {
        const runrec_t *r = &rep->set.runs[i].r;
        if (strcmp(r->experiment, exp))
            continue;
        snprintf(names[0], ANALYSIS_NAME_LEN, "overall");
        for (int m = 0; m < r->n_mod; m++)
            snprintf(names[m + 1], ANALYSIS_NAME_LEN, "%s", r->mod_names[m]);
        return r->n_mod + 1;
    }
    return 0;
}

/* Column of series name in run r: -1 overall, m, or -2 when r lacks it. */
static int series_col(const runrec_t *r, const char *name)
{
    if (!strcmp(name, "overall"))
        return -1;
    for (int m = 0; m < r->n_mod; m++)
        if (!strcmp(r->mod_names[m], name))
            return m;
    return -2;
}

static const char *exp_title(const char *exp)
{
    return exp[0] ? exp : "(no experiment)";
}

static void exp_stem(char *out, size_t len, const char *exp)
{
    snprintf(out, len, "%s", exp[0] ? exp : "runs");
    plot_sanitize(out);
}

/* ---- seed means ---------------------------------------------------------------------- */

/* The smoothed training curve of a group, series col: mean over its seeds at the rows
 * they share (the first seed's step grid, cut to the shortest), with the t interval of
 * that mean (lo = hi = mean with one seed). */
typedef struct mean_curve {
    analysis_series_t s;              /* step, flops, wall of the first seed; loss = mean */
    double *lo, *hi;
    size_t seeds;
} mean_curve_t;

static void mean_curve(mean_curve_t *mc, const report_t *rep, size_t g, int col)
{
    const analysis_group_t *gr = &rep->set.groups[g];
    memset(mc, 0, sizeof *mc);
    analysis_series_t *s = xcalloc(gr->n, sizeof *s);
    size_t n = SIZE_MAX;
    for (size_t i = 0; i < gr->n; i++) {
        analysis_series_build(&s[i], &rep->set.runs[gr->run[i]].r, ANALYSIS_TRAIN, col,
                              rep->o->window);
        n = s[i].n < n ? s[i].n : n;
    }
    mc->s = s[0];
    mc->s.n = n;
    mc->lo = xmalloc((n + 1) * sizeof *mc->lo);
    mc->hi = xmalloc((n + 1) * sizeof *mc->hi);
    mc->seeds = gr->n;
    double *v = xmalloc((gr->n + 1) * sizeof *v);
    for (size_t j = 0; j < n; j++) {
        size_t k = 0;
        for (size_t i = 0; i < gr->n; i++)
            if (s[i].step[j] == s[0].step[j])
                v[k++] = s[i].loss[j];
        analysis_interval_t iv;
        analysis_t_interval(&iv, v, k, ANALYSIS_LEVEL);
        mc->s.loss[j] = iv.value;
        mc->lo[j] = k > 1 ? iv.lo : iv.value;
        mc->hi[j] = k > 1 ? iv.hi : iv.value;
    }
    free(v);
    for (size_t i = 1; i < gr->n; i++)
        analysis_series_free(&s[i]);
    free(s);
}

static void mean_curve_free(mean_curve_t *mc)
{
    analysis_series_free(&mc->s);
    free(mc->lo);
    free(mc->hi);
}

/* ---- sections ---------------------------------------------------------------------- */

static void section_runs(report_t *rep)
{
    FILE *md = rep->md;
    fprintf(md, "\n## Runs\n\nFinal losses are smoothed training losses (debiased EMA, time "
                "constant %g x step; docs/analysis.md), in nats/token. Load: the median "
                "1-minute load average of the host while the run trained, and the mean share "
                "of CPU time stolen by the hypervisor.\n\n",
            rep->o->window);
    fprintf(md, "| run | experiment | configuration | size | seed | params (total / active) | "
                "steps | FLOPs | wall-clock (s) | load (steal) | final loss by modality | file "
                "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < rep->set.n_runs; i++) {
        const analysis_run_t *ar = &rep->set.runs[i];
        const runrec_t *r = &ar->r;
        fprintf(md, "| %s | %s | %s | %s | %s | %lld / %lld | %lld | %.3g | %.1f | ", r->run_name,
                exp_title(r->experiment), ar->label, ar->size, ar->seed,
                (long long)r->params_total, (long long)r->params_active_per_token,
                (long long)r->step[r->n - 1], r->flops[r->n - 1], r->wall_time[r->n - 1]);
        md_num(md, "%.2f", ar->load);
        fputs(" (", md);
        md_num(md, "%.1f%%", 100 * ar->steal);
        fputs(") | ", md);
        for (int col = -1; col < r->n_mod; col++) {
            analysis_series_t s;
            analysis_series_build(&s, r, ANALYSIS_TRAIN, col, rep->o->window);
            fprintf(md, "%s%s ", col < 0 ? "" : ", ", col < 0 ? "overall" : r->mod_names[col]);
            md_num(md, "%.4f", s.n ? s.loss[s.n - 1] : NAN);
            analysis_series_free(&s);
        }
        fprintf(md, " | `%s` |\n", r->path);
    }
}

static void fig_loss_curves(report_t *rep, const char *exp, bool wall)
{
    char names[ANALYSIS_MAX_MOD + 1][ANALYSIS_NAME_LEN], stem[128];
    int ns = exp_series(rep, exp, names);
    exp_stem(stem, sizeof stem, exp);
    for (int k = 0; k < ns; k++) {
        char name[256], title[512];
        sfmt(name, sizeof name, "%s_loss_vs_%s_%s", stem, wall ? "wallclock" : "flops", names[k]);
        sfmt(title, sizeof title, "%s: %s training loss (smoothed; seeds: mean and 95%% band) vs %s",
             exp_title(exp), names[k], wall ? "wall-clock" : "FLOPs");
        plot_t p;
        if (!fig_open(rep, &p, name, title,
                      wall ? "training wall-clock (s)" : "training compute (FLOPs)",
                      "loss (nats/token)"))
            continue;
        int block = 0;
        double ymin = INFINITY, ymax = -INFINITY;
        char *plot = NULL;
        size_t plot_len = 0;
        FILE *cmd = open_memstream(&plot, &plot_len);
        if (!cmd)
            DIE(EXIT_FAULT, "out of memory writing a plot command");
        for (size_t g = 0; g < rep->set.n_groups; g++) {
            const analysis_run_t *r = grun(rep, g);
            int col = series_col(&r->r, names[k]);
            if (strcmp(r->r.experiment, exp) || col == -2)
                continue;
            mean_curve_t mc;
            mean_curve(&mc, rep, g, col);
            char label[256], style[64], colour[48];
            sfmt(label, sizeof label, "%s, %s (%zu seed%s)", r->label, r->size, mc.seeds,
                 mc.seeds == 1 ? "" : "s");
            fprintf(p.dat, "# %s: x, mean, band low, band high\n", label);
            for (size_t j = 0; j < mc.s.n; j++) {
                double x = wall ? mc.s.wall[j] : mc.s.flops[j];
                if (!(x > 0))
                    continue;
                fprintf(p.dat, "%.9g %.9g %.9g %.9g\n", x, mc.s.loss[j], mc.lo[j], mc.hi[j]);
                if (mc.s.step[j] >= REPORT_CURVE_SKIP * mc.s.step[mc.s.n - 1]) {
                    ymin = fmin(ymin, mc.lo[j]);
                    ymax = fmax(ymax, mc.hi[j]);
                }
            }
            fprintf(p.dat, "\n\n");
            /* the band (with seeds) under the mean; colour and dashes by configuration,
             * line width by size */
            label_style(rep, style, sizeof style, r->label, true);
            label_style(rep, colour, sizeof colour, r->label, false);
            if (mc.seeds > 1)
                fprintf(cmd, "%sDAT index %d using 1:3:4 with filledcurves %s fs transparent "
                             "solid 0.2 notitle",
                        block ? ", \\\n     " : "", block, colour);
            fprintf(cmd, "%sDAT index %d using 1:2 with lines lw %d %s title ",
                    block || mc.seeds > 1 ? ", \\\n     " : "", block, 1 + size_rank(rep, g), style);
            plot_str(cmd, label);
            block++;
            mean_curve_free(&mc);
        }
        fclose(cmd);
        if (isfinite(ymin) && ymax > ymin) {
            double pad = 0.03 * (ymax - ymin);
            fprintf(p.gp, "set yrange [%.6g:%.6g]\n", ymin - pad, ymax + pad);
        }
        fprintf(p.gp, "set logscale x\nplot %s\n", plot);
        free(plot);
        figure(rep, &p, title);
    }
}

static void fig_step_matching(report_t *rep, const analysis_comparison_t *c)
{
    const analysis_run_t *b = grun(rep, c->base_group), *k = grun(rep, c->cand_group);
    for (int j = 0; j < c->n_series; j++) {
        const analysis_cmp_series_t *s = &c->series[j];
        if (s->n_matched < 2) {
            fprintf(rep->md, "\n*No step-matching figure for %s: %zu of %zu baseline points "
                             "reached.*\n",
                    s->name, s->n_matched, s->n_base);
            continue;
        }
        char name[512], title[512], stem[128], ylabel[256];
        exp_stem(stem, sizeof stem, b->r.experiment);
        sfmt(name, sizeof name, "%s_stepmatch_%s-%s_vs_%s_%s", stem, k->label, k->size, b->label,
             s->name);
        sfmt(title, sizeof title, "Step matching, %s loss: %s vs %s at %s, %zu seed%s (slope %.3f [%.3f, %.3f])",
             s->name, k->label, b->label, k->size, c->n_pairs, c->n_pairs == 1 ? "" : "s",
             s->v[ANALYSIS_SLOPE_STEP].value, s->v[ANALYSIS_SLOPE_STEP].lo,
             s->v[ANALYSIS_SLOPE_STEP].hi);
        sfmt(ylabel, sizeof ylabel, "%s step reaching the same loss (steps)", k->label);
        plot_t p;
        if (!fig_open(rep, &p, name, title, "dense baseline step (steps)", ylabel))
            continue;
        double xmax = 0, ymax = 0;
        for (size_t q = 0; q < c->n_pairs; q++) {
            const analysis_match_t *m = &c->pairs[q].m[j];
            for (size_t i = 0; i < m->n_matched; i++) {
                xmax = fmax(xmax, m->base_step[i]);
                ymax = fmax(ymax, m->cand_step[i]);
            }
            const analysis_series_t *sb = &c->pairs[q].sb[j];
            for (size_t i = 0; i < sb->n; i++)
                xmax = fmax(xmax, sb->step[i]);
        }
        double slope = s->v[ANALYSIS_SLOPE_STEP].value;
        /* the data and the fitted line as far as the data go (not the line's
         * extrapolation to the last baseline step when few points matched) */
        double top = fmax(ymax, fmin(slope, 1.0) * xmax) * 1.15;
        /* block 0: matched points; block 1: baseline points never reached, drawn at the
         * top edge */
        size_t unmatched = 0;
        for (size_t q = 0; q < c->n_pairs; q++) {
            const analysis_match_t *m = &c->pairs[q].m[j];
            for (size_t i = 0; i < m->n_matched; i++)
                fprintf(p.dat, "%.9g %.9g\n", m->base_step[i], m->cand_step[i]);
        }
        fprintf(p.dat, "\n\n");
        for (size_t q = 0; q < c->n_pairs; q++) {
            const analysis_match_t *m = &c->pairs[q].m[j];
            const analysis_series_t *sb = &c->pairs[q].sb[j];
            for (size_t i = 0; i < sb->n; i++)
                if (!m->matched[i]) {
                    fprintf(p.dat, "%.9g %.9g\n", sb->step[i], top * 0.97);
                    unmatched++;
                }
        }
        if (!unmatched)
            fprintf(p.dat, "NaN NaN\n");
        fprintf(p.gp, "set key inside left top box\nset xrange [0:%g]\nset yrange [0:%g]\n",
                xmax * 1.02, top);
        fprintf(p.gp,
                "plot DAT index 0 using 1:2 with points pt 7 ps 0.6 title 'matched steps (%zu "
                "seed%s)', \\\n"
                "     DAT index 1 using 1:2 with points pt 2 ps 1 lc rgb '#d62728' title "
                "'baseline points never reached (%zu)', \\\n"
                "     %.9g * x with lines lw 2 title 'fit through origin, slope %.3f', \\\n"
                "     x with lines dt 2 lc rgb 'gray40' title 'equal steps (slope 1)'\n",
                c->n_pairs, c->n_pairs == 1 ? "" : "s", unmatched, slope, slope);
        figure(rep, &p, title);
    }
}

static void fig_fractions(report_t *rep, const analysis_comparison_t *c)
{
    const analysis_run_t *b = grun(rep, c->base_group), *k = grun(rep, c->cand_group);
    char name[512], title[512], stem[128];
    exp_stem(stem, sizeof stem, b->r.experiment);
    sfmt(name, sizeof name, "%s_flops_vs_wallclock_%s-%s_vs_%s", stem, k->label, k->size, b->label);
    sfmt(title, sizeof title,
         "FLOPs vs wall-clock fraction to match %s (step-matching slopes, 95%% intervals): %s at %s",
         b->label, k->label, k->size);
    plot_t p;
    if (!fig_open(rep, &p, name, title, "loss series", "fraction of the baseline (1 = equal)"))
        return;
    double top = 1.0;
    for (int j = 0; j < c->n_series; j++) {
        const analysis_interval_t *f = &c->series[j].v[ANALYSIS_SLOPE_FLOPS];
        const analysis_interval_t *w = &c->series[j].v[ANALYSIS_SLOPE_WALL];
        fprintf(p.dat, "\"%s\" %.9g %.9g %.9g %.9g %.9g %.9g\n", c->series[j].name, f->value,
                isfinite(f->lo) ? f->lo : f->value, isfinite(f->hi) ? f->hi : f->value, w->value,
                isfinite(w->lo) ? w->lo : w->value, isfinite(w->hi) ? w->hi : w->value);
        top = fmax(top, fmax(isfinite(f->hi) ? f->hi : f->value, isfinite(w->hi) ? w->hi : w->value));
    }
    fprintf(p.gp, "set xrange [-0.6:%d.6]\nset yrange [0:%g]\n", c->n_series - 1, top * 1.15);
    fprintf(p.gp, "set style data histogram\nset style histogram errorbars gap 1 lw 1\n"
                  "set style fill solid 0.8 border -1\nset boxwidth 0.9\n"
                  "set grid ytics\nset key inside left top box\n"
                  "plot DAT using 2:3:4:xtic(1) title 'FLOPs fraction', "
                  "'' using 5:6:7 title 'wall-clock fraction%s', 1 with lines lw 2 dt 2 "
                  "lc rgb 'gray20' title 'baseline (1)'\n",
            c->load_differs ? " (runs saw different load)" : "");
    figure(rep, &p, title);
}

static void cmp_table(FILE *md, const report_t *rep, const analysis_comparison_t *c, bool eval)
{
    fprintf(md, "\n%s loss:\n\n", eval ? "Held-out" : "Training (smoothed)");
    fprintf(md, "| series | matched | slope steps | slope FLOPs | slope wall-clock | R^2 (steps) "
                "| smooth 0 / W / 2W | target loss | equal loss: steps | FLOPs | wall-clock "
                "|\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int j = 0; j < c->n_series; j++) {
        const analysis_cmp_series_t *s = &c->series[j];
        fprintf(md, "| %s | %zu/%zu | ", s->name, s->n_matched, s->n_base);
        for (int a = ANALYSIS_SLOPE_STEP; a <= ANALYSIS_SLOPE_WALL; a++) {
            md_iv(md, &s->v[a], false, 3);
            fputs(a == ANALYSIS_SLOPE_WALL && c->load_differs ? " (L) | " : " | ", md);
        }
        md_num(md, "%.3f", s->r2[0]);
        fputs(" | ", md);
        if (isfinite(s->sens[0]) || isfinite(s->sens[1]))
            fprintf(md, "%.3f / %.3f / %.3f%s", s->sens[0], s->sens[1], s->sens[2],
                    s->sensitive ? " (!)" : "");
        else
            fputs("-", md);
        fputs(" | ", md);
        md_num(md, "%.4f", s->target_loss);
        if (s->n_reached == 0) {
            fprintf(md, " | not reached | not reached | not reached |\n");
            continue;
        }
        if (s->n_reached < c->n_pairs) {
            fprintf(md, " | reached in %zu of %zu seeds | | |\n", s->n_reached, c->n_pairs);
            continue;
        }
        for (int a = ANALYSIS_FRAC_STEP; a < ANALYSIS_N_STATS; a++) {
            fputs(" | ", md);
            md_iv(md, &s->v[a], true, 1);
        }
        fputs(" |\n", md);
    }
    (void)rep;
}

static void section_pairs(report_t *rep, const char *exp)
{
    FILE *md = rep->md;
    bool any = false;
    for (size_t i = 0; i < rep->n_cmp; i++) {
        const analysis_comparison_t *c = &rep->cmp[i];
        if (strcmp(gexp(rep, c->base_group), exp))
            continue;
        const analysis_run_t *b = grun(rep, c->base_group), *k = grun(rep, c->cand_group);
        if (!any)
            fprintf(md, "\n### Step matching and equal loss\n\nSlopes are least squares "
                        "through the origin of the candidate's matching step (FLOPs, "
                        "wall-clock) against the baseline's; equal-loss fractions are what "
                        "the candidate needs to reach the baseline's final loss. Every number "
                        "has its 95%% interval: with several seeds, t over the paired seeds; "
                        "with one, the moving-block bootstrap of the loss curves "
                        "(docs/analysis.md). (!) marks a slope that moves by more than half "
                        "its interval between smoothing 0, W and 2W; (L) a wall-clock figure "
                        "whose runs saw different load. `motscale compare --dir %s "
                        "--baseline model.kind=dense --json` gives every number.\n",
                    rep->dir);
        any = true;
        fprintf(md, "\n#### %s vs %s at %s (d%d x %d), %zu seed%s (%s)\n\n", k->label, b->label,
                k->size, b->r.d_model, b->r.n_layers, c->n_pairs, c->n_pairs == 1 ? "" : "s",
                c->pairing);
        for (int w = 0; w < c->n_warn; w++)
            fprintf(md, "- warning: %s\n", c->warn[w]);
        if (c->n_series)
            fprintf(md, "- intervals: %s\n", c->series[0].v[ANALYSIS_SLOPE_STEP].method);
        cmp_table(md, rep, c, false);
        if (rep->has_eval[i])
            cmp_table(md, rep, &rep->cmp_eval[i], true);
        fprintf(md, "\n```\n");
        analysis_compare_headlines(md, &rep->set, c, 1, rep->o);
        fprintf(md, "```\n");
        fig_step_matching(rep, c);
        fprintf(md, "\nWall-clock vs FLOPs: the FLOPs fraction beside the wall-clock "
                    "fraction (step-matching slopes with their intervals; equal FLOPs per "
                    "step makes the first the step fraction).\n");
        fig_fractions(rep, c);
    }
    if (!any)
        fprintf(md, "\n*No candidate (mot/towers) with a dense baseline of the same size in "
                    "this experiment: no step matching.*\n");
}

/* The distinct sizes of an experiment's comparisons, smallest first. */
static int cmp_sizes(const report_t *rep, const char *exp, size_t *first_group, int max)
{
    int n = 0;
    for (size_t i = 0; i < rep->n_cmp; i++) {
        size_t g = rep->cmp[i].base_group;
        if (strcmp(gexp(rep, g), exp))
            continue;
        bool seen = false;
        for (int k = 0; k < n; k++)
            seen = seen || same_size(&grun(rep, first_group[k])->r, &grun(rep, g)->r);
        if (!seen && n < max)
            first_group[n++] = g;
    }
    for (int a = 0; a < n; a++) /* by size */
        for (int b = a + 1; b < n; b++)
            if (size_rank(rep, first_group[b]) < size_rank(rep, first_group[a])) {
                size_t t = first_group[a];
                first_group[a] = first_group[b];
                first_group[b] = t;
            }
    return n;
}

/* Per size, the modality x candidate table of step-matching slopes: the paper's
 * per-size slope tables and, with groupings, its leave-one-out table. */
static void section_slope_tables(report_t *rep, const char *exp)
{
    size_t sg[32];
    int nsz = cmp_sizes(rep, exp, sg, 32);
    if (!nsz)
        return;
    char names[ANALYSIS_MAX_MOD + 1][ANALYSIS_NAME_LEN];
    int ns = exp_series(rep, exp, names);
    fprintf(rep->md, "\n### Step-matching slopes by candidate\n\nTraining-loss step slope with "
                     "its 95%% interval; a column per candidate (groupings named by the "
                     "modality that has a tower of its own), a table per size.\n");
    for (int z = 0; z < nsz; z++) {
        const analysis_run_t *zr = grun(rep, sg[z]);
        size_t cols[32];
        int nc = 0;
        for (size_t i = 0; i < rep->n_cmp && nc < 32; i++)
            if (!strcmp(gexp(rep, rep->cmp[i].base_group), exp) &&
                same_size(&grun(rep, rep->cmp[i].base_group)->r, &zr->r))
                cols[nc++] = i;
        fprintf(rep->md, "\n%s (d%d x %d):\n\n| series |", zr->size, zr->r.d_model, zr->r.n_layers);
        for (int c = 0; c < nc; c++)
            fprintf(rep->md, " %s (%zu seed%s) |", grun(rep, rep->cmp[cols[c]].cand_group)->label,
                    rep->cmp[cols[c]].n_pairs, rep->cmp[cols[c]].n_pairs == 1 ? "" : "s");
        fprintf(rep->md, "\n|---|");
        for (int c = 0; c < nc; c++)
            fprintf(rep->md, "---|");
        fputc('\n', rep->md);
        for (int k = 0; k < ns; k++) {
            fprintf(rep->md, "| %s |", names[k]);
            for (int c = 0; c < nc; c++) {
                const analysis_comparison_t *cm = &rep->cmp[cols[c]];
                fputc(' ', rep->md);
                bool found = false;
                for (int j = 0; j < cm->n_series; j++)
                    if (!strcmp(cm->series[j].name, names[k])) {
                        md_iv(rep->md, &cm->series[j].v[ANALYSIS_SLOPE_STEP], false, 3);
                        found = true;
                    }
                fputs(found ? " |" : "- |", rep->md);
            }
            fputc('\n', rep->md);
        }
    }
}

static void section_slope_vs_size(report_t *rep, const char *exp)
{
    size_t sg[32];
    int sizes = cmp_sizes(rep, exp, sg, 32);
    fprintf(rep->md, "\n### Step-matching slope vs model size\n");
    if (sizes < 2) {
        fprintf(rep->md, "\n*Skipped: pairs at %d model size%s; the trend needs at least 2.*\n",
                sizes, sizes == 1 ? "" : "s");
        return;
    }
    char names[ANALYSIS_MAX_MOD + 1][ANALYSIS_NAME_LEN], stem[128], name[256], title[512];
    int ns = exp_series(rep, exp, names);
    exp_stem(stem, sizeof stem, exp);
    sfmt(name, sizeof name, "%s_slope_vs_size", stem);
    sfmt(title, sizeof title, "%s: step-matching slope vs model size (95%% intervals)",
         exp_title(exp));
    plot_t p;
    if (!fig_open(rep, &p, name, title, "dense baseline size (parameters, total)",
                  "step-matching slope (fraction of baseline steps)"))
        return;
    /* one series per candidate label and modality */
    char done[64][96];
    int nd = 0, block = 0;
    double top = 0;
    char *plot = NULL;
    size_t plot_len = 0;
    FILE *cmd = open_memstream(&plot, &plot_len);
    if (!cmd)
        DIE(EXIT_FAULT, "out of memory writing a plot command");
    const char *pts[] = {"7", "5", "9", "11", "13", "3"};
    for (size_t i = 0; i < rep->n_cmp; i++) {
        const char *label = grun(rep, rep->cmp[i].cand_group)->label;
        if (strcmp(gexp(rep, rep->cmp[i].base_group), exp))
            continue;
        bool seen = false;
        for (int d = 0; d < nd; d++)
            seen = seen || !strcmp(done[d], label);
        if (seen || nd == 64)
            continue;
        snprintf(done[nd++], sizeof done[0], "%s", label);
        char style[64];
        label_style(rep, style, sizeof style, label, true);
        for (int k = 0; k < ns; k++) {
            int npt = 0;
            for (size_t j = 0; j < rep->n_cmp; j++) {
                const analysis_comparison_t *c = &rep->cmp[j];
                if (strcmp(gexp(rep, c->base_group), exp) ||
                    strcmp(grun(rep, c->cand_group)->label, label))
                    continue;
                for (int s = 0; s < c->n_series; s++)
                    if (!strcmp(c->series[s].name, names[k])) {
                        const analysis_interval_t *iv = &c->series[s].v[ANALYSIS_SLOPE_STEP];
                        if (!isfinite(iv->value))
                            continue;
                        double lo = isfinite(iv->lo) ? iv->lo : iv->value;
                        double hi = isfinite(iv->hi) ? iv->hi : iv->value;
                        fprintf(p.dat, "%lld %.9g %.9g %.9g\n",
                                (long long)grun(rep, c->base_group)->r.params_total, iv->value, lo,
                                hi);
                        top = fmax(top, hi);
                        npt++;
                    }
            }
            if (!npt)
                continue;
            fprintf(p.dat, "\n\n");
            char t[256];
            sfmt(t, sizeof t, "%s, %s loss", label, names[k]);
            fprintf(cmd, "%sDAT index %d using 1:2:3:4 with yerrorlines lw 2 pt %s %s title ",
                    block ? ", \\\n     " : "", block, pts[k % 6], style);
            plot_str(cmd, t);
            block++;
        }
    }
    fclose(cmd);
    fprintf(p.gp, "set logscale x\nset offsets graph 0.05, graph 0.05, 0, 0\nset yrange [0:%g]\n"
                  "plot %s\n",
            top > 0 ? top * 1.15 : 1.0, plot);
    free(plot);
    figure(rep, &p, title);
}

static void section_timing(report_t *rep, const char *exp)
{
    FILE *md = rep->md;
    fprintf(md, "\n### Step time and MFU\n\nMedians over logged steps after the first. "
                "MFU = model FLOPs of a step / its wall-clock / (peak FLOP/s per rank x "
                "ranks). Load: median 1-minute load average while the run trained; runs "
                "compared on wall-clock should have seen the same (`motscale steptime` "
                "measures a step-time ratio paired, in one process tree).\n\n| run | ranks "
                "(dp x tp) | step (s) | compute (s) | communication (s) | I/O (s) | other (s) | "
                "MFU | load |\n|---|---|---|---|---|---|---|---|---|\n");
    char stem[128], name[256], title[512];
    exp_stem(stem, sizeof stem, exp);
    sfmt(name, sizeof name, "%s_step_time", stem);
    sfmt(title, sizeof title, "%s: step-time breakdown (median per logged step)", exp_title(exp));
    int bars = 0;
    for (size_t i = 0; i < rep->set.n_runs; i++) {
        const analysis_run_t *ar = &rep->set.runs[i];
        const rrun_timing_t *t = &rep->timing[i];
        if (strcmp(ar->r.experiment, exp))
            continue;
        bars++;
        fprintf(md, "| %s | %d (%d x %d) | %.4g | %.4g | %.4g | %.4g | %.4g | ", ar->r.run_name,
                ar->r.world_size, ar->r.dp, ar->r.tp, ar->med_step, t->med_compute, t->med_comm,
                t->med_io, fmax(0, ar->med_step - t->med_compute - t->med_comm - t->med_io));
        md_num(md, "%.1f%%", 100 * t->mfu);
        fputs(" | ", md);
        md_num(md, "%.2f", ar->load);
        fputs(" |\n", md);
    }
    plot_t p;
    if (!fig_open(rep, &p, name, title, "run", "seconds per step (s)"))
        return;
    for (size_t i = 0; i < rep->set.n_runs; i++) {
        const analysis_run_t *ar = &rep->set.runs[i];
        const rrun_timing_t *t = &rep->timing[i];
        if (strcmp(ar->r.experiment, exp))
            continue;
        fprintf(p.dat, "\"%s\" %.9g %.9g %.9g %.9g\n", ar->r.run_name, t->med_compute,
                t->med_comm, t->med_io,
                fmax(0, ar->med_step - t->med_compute - t->med_comm - t->med_io));
    }
    fprintf(p.gp, "set xrange [-0.6:%d.6]\n", bars - 1);
    fprintf(p.gp, "set style data histogram\nset style histogram rowstacked\n"
                  "set style fill solid 0.8 border -1\nset boxwidth 0.6\nset yrange [0:*]\n"
                  "set xtics rotate by -30\n"
                  "plot DAT using 2:xtic(1) title 'compute', '' using 3 title 'communication', "
                  "'' using 4 title 'I/O', '' using 5 title 'other'\n");
    figure(rep, &p, title);
}

/* ---- scaling fits -------------------------------------------------------------------- */

/* The groups of one label in an experiment that have series `name`, optionally all
 * but the largest size; returns how many, and the number of distinct sizes. */
static int label_groups(const report_t *rep, const char *exp, const char *label,
                        const char *name, bool drop_largest, size_t *out, int max, int *n_sizes)
{
    int n = 0, top = -1;
    for (size_t g = 0; g < rep->set.n_groups; g++) {
        const analysis_run_t *r = grun(rep, g);
        if (!strcmp(r->r.experiment, exp) && !strcmp(r->label, label) &&
            series_col(&r->r, name) != -2)
            top = size_rank(rep, g) > top ? size_rank(rep, g) : top;
    }
    long seen[64];
    *n_sizes = 0;
    for (size_t g = 0; g < rep->set.n_groups && n < max; g++) {
        const analysis_run_t *r = grun(rep, g);
        if (strcmp(r->r.experiment, exp) || strcmp(r->label, label) ||
            series_col(&r->r, name) == -2 || (drop_largest && size_rank(rep, g) == top))
            continue;
        out[n++] = g;
        long v = (long)r->r.d_model * r->r.n_layers;
        bool dup = false;
        for (int k = 0; k < *n_sizes; k++)
            dup = dup || seen[k] == v;
        if (!dup && *n_sizes < 64)
            seen[(*n_sizes)++] = v;
    }
    return n;
}

/* Frontier of (FLOPs, smoothed loss) over groups' seed-mean curves: at each of
 * REPORT_FIT_BUDGETS log-spaced budgets C, the lowest loss any of them reached with at
 * most C FLOPs (one that ended before C counts with its final loss), leaving out each
 * curve's first REPORT_FIT_SKIP of FLOPs (warm-up, not a power law). */
static size_t frontier(const report_t *rep, const size_t *groups, int ng, const char *name,
                       double *C, double *L, double *cmax)
{
    double lo = INFINITY, hi = 0;
    mean_curve_t *mc = xcalloc((size_t)ng + 1, sizeof *mc);
    for (int k = 0; k < ng; k++) {
        mean_curve(&mc[k], rep, groups[k], series_col(&grun(rep, groups[k])->r, name));
        if (mc[k].s.n < 2)
            continue;
        double f = mc[k].s.flops[mc[k].s.n - 1];
        lo = fmin(lo, REPORT_FIT_SKIP * f);
        hi = fmax(hi, f);
    }
    *cmax = hi;
    size_t n = 0;
    for (int b = 0; b < REPORT_FIT_BUDGETS && lo > 0 && hi > lo; b++) {
        double c = lo * pow(hi / lo, (double)b / (REPORT_FIT_BUDGETS - 1));
        double best = INFINITY;
        for (int k = 0; k < ng; k++) {
            const analysis_series_t *q = &mc[k].s;
            if (q->n < 2)
                continue;
            double f_end = q->flops[q->n - 1];
            if (c < REPORT_FIT_SKIP * f_end)
                continue;
            if (c >= f_end) {
                best = fmin(best, q->loss[q->n - 1]);
                continue;
            }
            size_t j = 1;
            while (j < q->n - 1 && q->flops[j] < c)
                j++;
            double f0 = q->flops[j - 1], f1 = q->flops[j];
            double l = f1 > f0 ? q->loss[j - 1] + (c - f0) / (f1 - f0) * (q->loss[j] - q->loss[j - 1])
                               : q->loss[j];
            best = fmin(best, l);
        }
        if (isfinite(best)) {
            C[n] = c;
            L[n] = best;
            n++;
        }
    }
    for (int k = 0; k < ng; k++)
        mean_curve_free(&mc[k]);
    free(mc);
    return n;
}

/* Points (N, D, L) for the two-variable fit: REPORT_ND_POINTS log-spaced token counts
 * of each group's seed-mean curve from REPORT_FIT_SKIP of its tokens on; N the total
 * parameters, D the tokens seen (FLOPs / FLOPs per token). */
static size_t nd_points(const report_t *rep, const size_t *groups, int ng, const char *name,
                        double *N, double *D, double *L)
{
    size_t n = 0;
    for (int k = 0; k < ng; k++) {
        const runrec_t *r = &grun(rep, groups[k])->r;
        mean_curve_t mc;
        mean_curve(&mc, rep, groups[k], series_col(r, name));
        const analysis_series_t *q = &mc.s;
        if (q->n >= 2 && r->flops_per_token > 0) {
            double dend = q->flops[q->n - 1] / r->flops_per_token, d0 = REPORT_FIT_SKIP * dend;
            for (int i = 0; i < REPORT_ND_POINTS; i++) {
                double d = d0 * pow(dend / d0, (double)i / (REPORT_ND_POINTS - 1));
                double c = d * r->flops_per_token;
                size_t j = 1;
                while (j < q->n - 1 && q->flops[j] < c)
                    j++;
                double f0 = q->flops[j - 1], f1 = q->flops[j];
                double th = f1 > f0 ? fmin(fmax((c - f0) / (f1 - f0), 0), 1) : 1;
                N[n] = (double)r->params_total;
                D[n] = d;
                L[n] = q->loss[j - 1] + th * (q->loss[j] - q->loss[j - 1]);
                n++;
            }
        }
        mean_curve_free(&mc);
    }
    return n;
}

static void md_fit_row(FILE *md, const char *series, const char *label, const char *form,
                       int sizes, const analysis_fit_t *f)
{
    fprintf(md, "| %s | %s | %s | %d | %zu | ", series, label, form, sizes, f->n);
    if (!f->ok) {
        fprintf(md, "fit failed: %s | | | | | |\n", f->why);
        return;
    }
    for (size_t j = 0; j < 3; j++) {
        md_iv(md, &f->iv[j], false, 4);
        fputs(" | ", md);
    }
    if (f->model == ANALYSIS_FIT_ND) {
        md_iv(md, &f->iv[3], false, 4);
        fputs(", ", md);
        md_iv(md, &f->iv[4], false, 4);
    } else {
        fputs("-", md);
    }
    fprintf(md, " | %.3g | %.2g | %s |\n", f->c0, f->rms,
            f->degenerate ? f->degenerate_why : "no");
}

typedef struct label_fit {
    char label[96];
    int sizes;
    size_t n;
    double C[REPORT_FIT_BUDGETS], L[REPORT_FIT_BUDGETS], cmax;
    analysis_fit_t free_e, fixed_e, nd;
} label_fit_t;

/* Leave the largest size out: fit the smaller ones and predict the largest's final
 * loss, for L(C) at its final FLOPs and for L(N, D) at its parameters and tokens. */
static void leave_largest_out(report_t *rep, const char *exp, const char *label,
                              const char *name)
{
    size_t all[64], small[64];
    int sz_all, sz_small;
    int na = label_groups(rep, exp, label, name, false, all, 64, &sz_all);
    int ns = label_groups(rep, exp, label, name, true, small, 64, &sz_small);
    if (sz_all < REPORT_FIT_MIN_SIZES)
        return;
    /* the largest: the group left out with the most FLOPs */
    size_t big = all[0];
    double bigf = -1;
    for (int k = 0; k < na; k++) {
        bool kept = false;
        for (int j = 0; j < ns; j++)
            kept = kept || small[j] == all[k];
        const runrec_t *r = &grun(rep, all[k])->r;
        if (!kept && r->flops[r->n - 1] > bigf) {
            bigf = r->flops[r->n - 1];
            big = all[k];
        }
    }
    mean_curve_t mc;
    mean_curve(&mc, rep, big, series_col(&grun(rep, big)->r, name));
    double actual = mc.s.n ? mc.s.loss[mc.s.n - 1] : NAN, Cb = mc.s.n ? mc.s.flops[mc.s.n - 1] : NAN;
    mean_curve_free(&mc);
    const runrec_t *br = &grun(rep, big)->r;
    FILE *md = rep->md;
    double C[REPORT_FIT_BUDGETS], L[REPORT_FIT_BUDGETS], cmax;
    size_t n = frontier(rep, small, ns, name, C, L, &cmax);
    analysis_fit_t f;
    analysis_fit_power_law(&f, C, L, n, NAN, ANALYSIS_FIT_RESAMPLES, rep->o->seed);
    fprintf(md, "- %s loss, %s, largest size %s left out: ", name, label, grun(rep, big)->size);
    if (f.ok) {
        double pred = analysis_fit_eval(&f, NULL, Cb, NAN);
        fprintf(md, "L(C) fitted on %d size%s predicts %.4f at its final %.3g FLOPs; it "
                    "reached %.4f: error %+.4f (%+.1f%%)%s",
                sz_small, sz_small == 1 ? "" : "s", pred, Cb, actual, pred - actual,
                100 * (pred - actual) / actual, f.degenerate ? " (the smaller fit is degenerate)" : "");
    } else {
        fprintf(md, "L(C) on the smaller sizes failed: %s", f.why);
    }
    analysis_fit_free(&f);
    if (sz_small >= REPORT_FIT_MIN_SIZES) {
        size_t cap = (size_t)ns * REPORT_ND_POINTS + 1;
        double *N = xmalloc(cap * sizeof *N), *D = xmalloc(cap * sizeof *D), *LL = xmalloc(cap * sizeof *LL);
        size_t m = nd_points(rep, small, ns, name, N, D, LL);
        analysis_fit_t g;
        if (analysis_fit_nd(&g, N, D, LL, m, ANALYSIS_FIT_RESAMPLES, rep->o->seed)) {
            double pred = analysis_fit_eval(&g, NULL, (double)br->params_total,
                                            Cb / br->flops_per_token);
            fprintf(md, "; L(N, D) predicts %.4f: error %+.4f (%+.1f%%)", pred, pred - actual,
                    100 * (pred - actual) / actual);
        }
        analysis_fit_free(&g);
        free(N);
        free(D);
        free(LL);
    } else {
        fprintf(md, "; L(N, D) needs %d sizes besides the largest", REPORT_FIT_MIN_SIZES);
    }
    fputs(".\n", md);
}

static void section_scaling(report_t *rep, const char *exp)
{
    FILE *md = rep->md;
    char names[ANALYSIS_MAX_MOD + 1][ANALYSIS_NAME_LEN], stem[128];
    int ns = exp_series(rep, exp, names);
    exp_stem(stem, sizeof stem, exp);
    fprintf(md, "\n### Scaling fits\n\nL(C) = E + A (C / c0)^-alpha fitted to the compute "
                "frontier of each configuration (the lowest seed-mean smoothed training loss "
                "any of its sizes reached within each of %d log-spaced budgets, leaving out "
                "the first %.0f%% of each run), with E free and with E held at dense's fitted "
                "E (the data's irreducible loss, the same for every model); and L(N, D) = E + "
                "A (N / n0)^-a + B (D / d0)^-b (Chinchilla's approach 3) on %d points of each "
                "curve. Huber loss, several starts, GSL's trust-region least squares; 95%% "
                "intervals from %d bootstrap refits of the points. A fit is degenerate when E "
                "< 0, an exponent < %.2f or an interval is wider than its value: it gives no "
                "compute multiplier. Needs runs at >= %d sizes. For L(N, D) the A and alpha "
                "columns hold A and a, the last B and b.\n\n",
            REPORT_FIT_BUDGETS, 100 * REPORT_FIT_SKIP, REPORT_ND_POINTS, ANALYSIS_FIT_RESAMPLES,
            ANALYSIS_FIT_MIN_EXPONENT, REPORT_FIT_MIN_SIZES);
    fprintf(md, "| series | configuration | form | sizes | points | E | A (at c0) | alpha | B, "
                "beta | c0 | rms | degenerate |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    char labels[REPORT_MAX_LABELS][96];
    int nl = 0;
    for (size_t g = 0; g < rep->set.n_groups && nl < REPORT_MAX_LABELS; g++) {
        const analysis_run_t *r = grun(rep, g);
        bool seen = false;
        for (int i = 0; i < nl; i++)
            seen = seen || !strcmp(labels[i], r->label);
        if (!seen && !strcmp(r->r.experiment, exp))
            snprintf(labels[nl++], sizeof labels[0], "%s", r->label);
    }
    /* dense first: its E is the others' fixed E */
    for (int i = 1; i < nl; i++)
        if (!strcmp(labels[i], "dense")) {
            char t[96];
            memcpy(t, labels[0], sizeof t);
            memcpy(labels[0], labels[i], sizeof t);
            memcpy(labels[i], t, sizeof t);
        }
    label_fit_t *lf = xcalloc((size_t)(ns * nl) + 1, sizeof *lf);
    bool any_fit = false;
    for (int k = 0; k < ns; k++) {
        for (int i = 0; i < nl; i++) {
            label_fit_t *x = &lf[k * nl + i];
            snprintf(x->label, sizeof x->label, "%s", labels[i]);
            size_t groups[64];
            int ng = label_groups(rep, exp, labels[i], names[k], false, groups, 64, &x->sizes);
            if (!ng)
                continue;
            if (x->sizes < REPORT_FIT_MIN_SIZES) {
                fprintf(md, "| %s | %s | - | %d | - | skipped: %d size%s, a scaling law needs "
                            ">= %d | | | | | | |\n",
                        names[k], labels[i], x->sizes, x->sizes, x->sizes == 1 ? "" : "s",
                        REPORT_FIT_MIN_SIZES);
                continue;
            }
            x->n = frontier(rep, groups, ng, names[k], x->C, x->L, &x->cmax);
            analysis_fit_power_law(&x->free_e, x->C, x->L, x->n, NAN, ANALYSIS_FIT_RESAMPLES,
                                   rep->o->seed);
            md_fit_row(md, names[k], labels[i], "L(C), E free", x->sizes, &x->free_e);
            const label_fit_t *dense = &lf[k * nl];
            if (i > 0 && !strcmp(dense->label, "dense") && dense->free_e.ok) {
                analysis_fit_power_law(&x->fixed_e, x->C, x->L, x->n, dense->free_e.par[0],
                                       ANALYSIS_FIT_RESAMPLES, rep->o->seed);
                md_fit_row(md, names[k], labels[i], "L(C), E = dense's", x->sizes, &x->fixed_e);
            }
            size_t cap = (size_t)ng * REPORT_ND_POINTS + 1;
            double *N = xmalloc(cap * sizeof *N), *D = xmalloc(cap * sizeof *D),
                   *L = xmalloc(cap * sizeof *L);
            size_t m = nd_points(rep, groups, ng, names[k], N, D, L);
            analysis_fit_nd(&x->nd, N, D, L, m, ANALYSIS_FIT_RESAMPLES, rep->o->seed);
            md_fit_row(md, names[k], labels[i], "L(N, D)", x->sizes, &x->nd);
            free(N);
            free(D);
            free(L);
            any_fit = any_fit || x->free_e.ok;
        }
    }
    /* compute multipliers at the largest budget both reached: the compute the other
     * configuration's fit needs for dense's fitted loss there (an interpolation inside
     * its data; the reverse would extrapolate dense's fit toward its asymptote) */
    fputc('\n', md);
    for (int k = 0; k < ns && nl > 0 && !strcmp(labels[0], "dense"); k++) {
        const label_fit_t *d = &lf[k * nl];
        for (int i = 1; i < nl; i++) {
            const label_fit_t *x = &lf[k * nl + i];
            if (!d->free_e.ok || !x->free_e.ok)
                continue;
            double cstar = fmin(d->cmax, x->cmax);
            for (int fixed = 0; fixed < 2; fixed++) {
                const analysis_fit_t *fx = fixed ? &x->fixed_e : &x->free_e;
                if (!fx->ok)
                    continue;
                analysis_interval_t iv;
                analysis_compute_multiplier(&iv, fx, &d->free_e, cstar);
                fprintf(md, "- %s loss, %s (%s), at %.3g FLOPs (largest common budget): ", names[k],
                        x->label, fixed ? "E = dense's" : "E free", cstar);
                if (isfinite(iv.value)) {
                    fprintf(md, "reaches dense's fitted loss %.4f with ",
                            analysis_fit_eval(&d->free_e, NULL, cstar, NAN));
                    md_iv(md, &iv, true, 1);
                    fprintf(md, " of the compute; dense needs %.2fx [%.2f, %.2f] (%s).\n",
                            1 / iv.value, 1 / iv.hi, 1 / iv.lo, iv.method);
                } else {
                    fprintf(md, "**warning: no compute multiplier**: %s.\n", iv.method);
                }
            }
        }
    }
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < nl; i++)
            if (lf[k * nl + i].sizes >= REPORT_FIT_MIN_SIZES)
                leave_largest_out(rep, exp, labels[i], names[k]);
    for (int k = 0; k < ns && any_fit; k++) {
        char name[256], title[512];
        sfmt(name, sizeof name, "%s_scaling_%s", stem, names[k]);
        sfmt(title, sizeof title, "%s: %s loss compute frontier and fits E + A (C/c0)^-alpha",
             exp_title(exp), names[k]);
        plot_t p;
        if (!fig_open(rep, &p, name, title, "training compute C (FLOPs)", "loss (nats/token)"))
            continue;
        fprintf(p.gp, "set logscale x\nplot ");
        int block = 0;
        for (int i = 0; i < nl; i++) {
            const label_fit_t *x = &lf[k * nl + i];
            if (!x->free_e.ok)
                continue;
            for (size_t j = 0; j < x->n; j++)
                fprintf(p.dat, "%.9g %.9g\n", x->C[j], x->L[j]);
            fprintf(p.dat, "\n\n");
            char style[64];
            label_style(rep, style, sizeof style, x->label, true);
            const analysis_fit_t *f = &x->free_e;
            fprintf(p.gp, "%sDAT index %d using 1:2 with points pt 7 %s title '%s frontier', "
                          "\\\n     %.9g + %.9g * (x / %.9g)**(-%.9g) with lines lw 2 %s "
                          "title '%s fit, alpha %.3f%s'",
                    block ? ", \\\n     " : "", block, style, x->label, f->par[0], f->par[1],
                    f->c0, f->par[2], style, x->label, f->par[2],
                    f->degenerate ? " (degenerate)" : "");
            block++;
        }
        fputc('\n', p.gp);
        figure(rep, &p, title);
    }
    for (int j = 0; j < ns * nl; j++) {
        analysis_fit_free(&lf[j].free_e);
        analysis_fit_free(&lf[j].fixed_e);
        analysis_fit_free(&lf[j].nd);
    }
    free(lf);
}

/* ---- pairing and the whole report ---------------------------------------------------- */

/* ---- expert load ---------------------------------------------------------------------
 * For each configuration with experts (and size), its runs' /metrics/expert_load summed
 * over the logged steps of the second half of each run and over seeds: per layer with
 * experts and expert, the share of its tokens from each modality, beside the share of
 * each modality among all the tokens those experts took (what an expert that ignored
 * the modality would show). */

/* The summed load of group g's runs, (moe_layers x experts x modalities); false
 * without experts. */
static bool group_load(const report_t *rep, size_t g, double *sum, size_t n)
{
    const analysis_group_t *gr = &rep->set.groups[g];
    memset(sum, 0, n * sizeof *sum);
    bool any = false;
    for (size_t i = 0; i < gr->n; i++) {
        const runrec_t *r = &rep->set.runs[gr->run[i]].r;
        if (!r->n_load || r->n_load != n || !r->n)
            continue;
        int64_t last = r->step[r->n - 1];
        for (size_t row = 0; row < r->n; row++)
            if (2 * r->step[row] > last)
                for (size_t k = 0; k < n; k++)
                    sum[k] += (double)r->expert_load[row * n + k];
        any = true;
    }
    return any;
}

static void section_expert_load(report_t *rep, const char *exp)
{
    bool header = false;
    for (size_t g = 0; g < rep->set.n_groups; g++) {
        const analysis_run_t *a = grun(rep, g);
        const runrec_t *r = &a->r;
        if (strcmp(r->experiment, exp) || !r->n_load)
            continue;
        int K = r->moe_layers, E = r->moe_experts, M = r->n_mod;
        double *sum = xcalloc(r->n_load, sizeof *sum);
        if (!group_load(rep, g, sum, r->n_load)) {
            free(sum);
            continue;
        }
        if (!header) {
            fprintf(rep->md, "\n### Expert load by modality\n\nPer layer with experts, the share "
                             "of each expert's tokens that came from each modality (by the "
                             "token at the row), summed over the second half of every run's "
                             "logged steps and over seeds; the `all` row is the share of each "
                             "modality among every token those experts took. An expert that "
                             "specialises stands apart from `all` (/metrics/expert_load, "
                             "docs/run-record.md).\n");
            header = true;
        }
        fprintf(rep->md, "\n%s at %s (%zu seed%s, held-out routing %s):\n\n| layer | expert |", a->label,
                a->size, rep->set.groups[g].n, rep->set.groups[g].n == 1 ? "" : "s",
                r->moe_eval_routing[0] ? r->moe_eval_routing : "?");
        for (int m = 0; m < M; m++)
            fprintf(rep->md, " %s |", r->mod_names[m]);
        fprintf(rep->md, " tokens |\n|---|---|");
        for (int m = 0; m < M; m++)
            fprintf(rep->md, "---|");
        fprintf(rep->md, "---|\n");
        char name[512], title[512], stem[128];
        exp_stem(stem, sizeof stem, exp);
        sfmt(name, sizeof name, "%s_expert_load_%s-%s", stem, a->label, a->size);
        sfmt(title, sizeof title, "Expert load by modality: %s at %s (share of each expert's tokens)",
             a->label, a->size);
        plot_t p;
        bool fig = fig_open(rep, &p, name, title, "layer / expert", "share of the expert's tokens");
        for (int k = 0; k < K; k++)
            for (int e = -1; e < E; e++) {
                double tot = 0, v[ANALYSIS_MAX_MOD + 1] = {0};
                for (int m = 0; m < M; m++) {
                    for (int x = (e < 0 ? 0 : e); x < (e < 0 ? E : e + 1); x++)
                        v[m] += sum[((size_t)k * E + x) * M + m];
                    tot += v[m];
                }
                char which[16] = "all";
                if (e >= 0)
                    sfmt(which, sizeof which, "%d", e);
                fprintf(rep->md, "| %d | %s |", k, which);
                for (int m = 0; m < M; m++) {
                    fputc(' ', rep->md);
                    md_num(rep->md, "%.1f%%", tot > 0 ? 100 * v[m] / tot : NAN);
                    fputs(" |", rep->md);
                }
                fprintf(rep->md, " %.0f |\n", tot);
                if (fig && e >= 0) {
                    fprintf(p.dat, "\"L%d e%d\"", k, e);
                    for (int m = 0; m < M; m++)
                        fprintf(p.dat, " %.6g", tot > 0 ? v[m] / tot : 0.0);
                    fputc('\n', p.dat);
                }
            }
        if (fig) {
            fprintf(p.gp, "set style data histogram\nset style histogram rowstacked\n"
                          "set style fill solid 0.85 border -1\nset boxwidth 0.8\nset yrange [0:1]\n"
                          "set grid ytics\nset xtics rotate by -45\nplot ");
            for (int m = 0; m < M; m++) {
                fprintf(p.gp, "%sDAT using %d%s title ", m ? ", " : "", m + 2, m ? "" : ":xtic(1)");
                plot_str(p.gp, r->mod_names[m]);
                fprintf(p.gp, " lc rgb '%s'", palette[m % 8]);
            }
            fputc('\n', p.gp);
            figure(rep, &p, title);
        }
        free(sum);
    }
}

/* ---- continuous images ------------------------------------------------------------
 * Per configuration with continuous images (/eval/image_loss_at_t present): the
 * final evaluation's held-out text cross-entropy and image diffusion loss, the image
 * loss at each timestep of the grid, the caption loss given the image and the
 * sampling check, each the mean over seeds (docs/analysis.md, "Continuous images"). */

/* The mean over group g's runs of the last /eval row's value of column col (width
 * w, entry k); NaN when no run has it. */
static double group_final_eval(const report_t *rep, size_t g, const double *(*col)(const runrec_t *), size_t w,
                               size_t k)
{
    const analysis_group_t *gr = &rep->set.groups[g];
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < gr->n; i++) {
        const runrec_t *r = &rep->set.runs[gr->run[i]].r;
        if (!r->n_eval || !isfinite(col(r)[(r->n_eval - 1) * w + k]))
            continue;
        sum += col(r)[(r->n_eval - 1) * w + k];
        n++;
    }
    return n ? sum / n : NAN;
}

static const double *col_lbm(const runrec_t *r) { return r->eval_loss_by_modality; }
static const double *col_grid(const runrec_t *r) { return r->eval_image_loss_at_t; }
static const double *col_caption(const runrec_t *r) { return r->eval_caption_loss; }
static const double *col_smse(const runrec_t *r) { return r->eval_sample_mse; }
static const double *col_nmse(const runrec_t *r) { return r->eval_sample_noise_mse; }
static const double *col_acc(const runrec_t *r) { return r->eval_sample_class_accuracy; }

static void section_images(report_t *rep, const char *exp)
{
    bool header = false;
    for (size_t g = 0; g < rep->set.n_groups; g++) {
        const analysis_run_t *a = grun(rep, g);
        const runrec_t *r = &a->r;
        if (strcmp(r->experiment, exp) || !r->n_grid || !r->n_eval)
            continue;
        int text = -1, img = -1;
        for (int m = 0; m < r->n_mod; m++) {
            text = strcmp(r->mod_names[m], "text") ? text : m;
            img = strcmp(r->mod_names[m], "image") ? img : m;
        }
        if (!header) {
            fprintf(rep->md, "\n### Continuous images\n\nHeld-out, at each configuration's final "
                             "evaluation, mean over seeds: text cross-entropy (nats/token), image "
                             "diffusion loss (MSE of the predicted noise per element; predicting zero "
                             "scores 1), the image loss at each fixed timestep, the caption loss given "
                             "the image, and the DDIM sampling check: the samples' MSE against the true "
                             "images beside the pure noise they start from, and the share of caption "
                             "blobs whose class the nearest prototype gets right (chance 0.25; "
                             "docs/analysis.md).\n\n| configuration | size | lambda | seeds | text CE "
                             "| image MSE |");
            for (size_t k = 0; k < r->n_grid; k++)
                fprintf(rep->md, " at t%zu |", k);
            fprintf(rep->md, " caption CE | sample MSE | noise MSE | blob classes |\n|---|---|---|---|---|---|");
            for (size_t k = 0; k < r->n_grid; k++)
                fprintf(rep->md, "---|");
            fprintf(rep->md, "---|---|---|---|\n");
            header = true;
        }
        char lambda[64];
        runrec_config_get(r, "train", "diffusion_weight", lambda, sizeof lambda);
        fprintf(rep->md, "| %s | %s | %s | %zu | ", a->label, a->size, lambda[0] ? lambda : "5",
                rep->set.groups[g].n);
        md_num(rep->md, "%.4f", text >= 0 ? group_final_eval(rep, g, col_lbm, (size_t)r->n_mod, (size_t)text) : NAN);
        fprintf(rep->md, " | ");
        md_num(rep->md, "%.4f", img >= 0 ? group_final_eval(rep, g, col_lbm, (size_t)r->n_mod, (size_t)img) : NAN);
        for (size_t k = 0; k < r->n_grid; k++) {
            fprintf(rep->md, " | ");
            md_num(rep->md, "%.4f", group_final_eval(rep, g, col_grid, r->n_grid, k));
        }
        const double *(*cols[])(const runrec_t *) = {col_caption, col_smse, col_nmse, col_acc};
        for (int c = 0; c < 4; c++) {
            fprintf(rep->md, " | ");
            md_num(rep->md, c == 0 ? "%.3f" : "%.4f", group_final_eval(rep, g, cols[c], 1, 0));
        }
        fprintf(rep->md, " |\n");
    }
    if (header)
        fprintf(rep->md, "\nThe grid's timesteps are `/model@diffusion_eval_t` (t0 smallest).\n");
}

/* ---- decoding runs: error rates against the aligned fraction (zipper) ---------------- */

enum { DEC_MAX_LABELS = 8, DEC_MAX_FRAC = 16, DEC_MAX_SEEDS = 64 };

/* The runs of exp that decode, by label and aligned fraction: their indices. */
typedef struct dec_cell {
    double fraction;
    size_t run[DEC_MAX_SEEDS];
    int n;
} dec_cell_t;
typedef struct dec_table {
    char label[DEC_MAX_LABELS][96];
    int n_labels;
    double fraction[DEC_MAX_FRAC];
    int n_frac;
    dec_cell_t cell[DEC_MAX_LABELS][DEC_MAX_FRAC];
} dec_table_t;

static int dec_index(char (*names)[96], int *n, int max, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], name))
            return i;
    if (*n == max)
        return -1;
    snprintf(names[*n], 96, "%s", name);
    return (*n)++;
}

static void dec_collect(const report_t *rep, const char *exp, dec_table_t *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < rep->set.n_runs; i++) {
        const analysis_run_t *a = &rep->set.runs[i];
        if (strcmp(a->r.experiment, exp) || !a->r.n_pairs || !a->r.n_eval)
            continue;
        char fs[64];
        runrec_config_get(&a->r, "data", "aligned_fraction", fs, sizeof fs);
        double f = atof(fs);
        int l = dec_index(t->label, &t->n_labels, DEC_MAX_LABELS, a->label), k;
        for (k = 0; k < t->n_frac && t->fraction[k] != f; k++)
            ;
        if (l < 0 || k == DEC_MAX_FRAC)
            continue;
        if (k == t->n_frac)
            t->fraction[t->n_frac++] = f;
        dec_cell_t *c = &t->cell[l][k];
        c->fraction = f;
        if (c->n < DEC_MAX_SEEDS)
            c->run[c->n++] = i;
    }
    /* fractions ascending, each label's cells with them */
    for (int a = 0; a < t->n_frac; a++)
        for (int b = a + 1; b < t->n_frac; b++)
            if (t->fraction[b] < t->fraction[a]) {
                double x = t->fraction[a];
                t->fraction[a] = t->fraction[b];
                t->fraction[b] = x;
                for (int l = 0; l < t->n_labels; l++) {
                    dec_cell_t c = t->cell[l][a];
                    t->cell[l][a] = t->cell[l][b];
                    t->cell[l][b] = c;
                }
            }
}

/* The last evaluation's value of a DEC column (which: 0 ASR WER, 1 TTS UER, 2 text-only
 * loss, 3 the text-only loss of the first evaluation), or of a BUCKET column (b >= 0). */
static double dec_value(const runrec_t *r, int which, int b)
{
    size_t last = r->n_eval - 1;
    if (b >= 0)
        return (which ? r->eval_tts_uer_by_length : r->eval_asr_by_length)[last * r->n_bucket + (size_t)b];
    return which == 0 ? r->eval_asr_wer[last] : which == 1 ? r->eval_tts_uer[last]
         : which == 2 ? r->eval_text_only_loss[last] : r->eval_text_only_loss[0];
}

static void dec_mean(const report_t *rep, const dec_cell_t *c, int which, int b, double *mean, double *sd)
{
    double v[DEC_MAX_SEEDS];
    for (int i = 0; i < c->n; i++)
        v[i] = dec_value(&rep->set.runs[c->run[i]].r, which, b);
    analysis_interval_t iv;
    analysis_t_interval(&iv, v, (size_t)c->n, 0.95);
    *mean = iv.value;
    *sd = c->n > 1 ? (iv.hi - iv.lo) / 2 : NAN;
}

static void fig_error_rates(report_t *rep, const char *exp, const dec_table_t *t, int which)
{
    char name[512], title[256], stem[128];
    exp_stem(stem, sizeof stem, exp);
    sfmt(name, sizeof name, "%s_%s_vs_fraction", stem, which ? "tts_uer" : "asr_wer");
    sfmt(title, sizeof title, "%s against the aligned fraction (final evaluation, mean of seeds, 95%% t band)",
         which ? "TTS unit error rate" : "ASR word error rate");
    plot_t p;
    if (!fig_open(rep, &p, name, title, "aligned fraction (log)", which ? "unit error rate" : "word error rate"))
        return;
    /* room beside the outer fractions for their error bars */
    fprintf(p.gp, "set logscale x\nset xrange [%g:%g]\nset key top right\nset grid\nplot ", t->fraction[0] / 1.5,
            t->fraction[t->n_frac - 1] * 1.5);
    for (int l = 0; l < t->n_labels; l++) {
        fprintf(p.dat, "# %s\n", t->label[l]);
        for (int k = 0; k < t->n_frac; k++) {
            double m, h;
            if (!t->cell[l][k].n)
                continue;
            dec_mean(rep, &t->cell[l][k], which, -1, &m, &h);
            fprintf(p.dat, "%.6g %.6g %.6g\n", t->fraction[k], m, isfinite(h) ? h : 0.0);
        }
        fprintf(p.dat, "\n\n");
        char style[128];
        label_style(rep, style, sizeof style, t->label[l], false);
        fprintf(p.gp, "%sDAT index %d using 1:2:3 with yerrorlines %s title ", l ? ", " : "", l, style);
        plot_str(p.gp, t->label[l]);
    }
    fputc('\n', p.gp);
    figure(rep, &p, title);
}

/* Per-pair error differences of label l against the baseline bl at fraction k, over
 * the seeds both have (matched by run.seed; every run decodes the same pairs). */
static size_t dec_diffs(const report_t *rep, const dec_table_t *t, int l, int bl, int k, int which, double *d)
{
    size_t n = 0;
    const dec_cell_t *a = &t->cell[l][k], *b = &t->cell[bl][k];
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++) {
            const analysis_run_t *x = &rep->set.runs[a->run[i]], *y = &rep->set.runs[b->run[j]];
            if (strcmp(x->seed, y->seed) || x->r.n_pairs != y->r.n_pairs)
                continue;
            size_t P = x->r.n_pairs, lx = x->r.n_eval - 1, ly = y->r.n_eval - 1;
            const int64_t *ex = which ? x->r.eval_tts_errors : x->r.eval_asr_errors;
            const int64_t *ey = which ? y->r.eval_tts_errors : y->r.eval_asr_errors;
            for (size_t q = 0; q < P; q++)
                d[n++] = (double)ex[lx * P + q] - (double)ey[ly * P + q];
        }
    return n;
}

static void section_decoding(report_t *rep, const char *exp)
{
    dec_table_t *t = xcalloc(1, sizeof *t);
    dec_collect(rep, exp, t);
    if (!t->n_labels) {
        free(t);
        return;
    }
    FILE *md = rep->md;
    fprintf(md, "\n### Error rates against the aligned fraction\n\nGreedy decoding of the held-out "
                "aligned pairs at the last evaluation (/eval/asr_wer, /eval/tts_uer; "
                "docs/data.md, \"Evaluation\"): the mean over seeds and its 95%% t half-width; "
                "the text-only held-out loss at the first evaluation (the pretrained towers, before "
                "any fusion step) and the last.\n\n| model | aligned fraction | seeds | ASR WER | TTS UER "
                "| text-only loss before | after |\n|---|---|---|---|---|---|---|\n");
    for (int l = 0; l < t->n_labels; l++)
        for (int k = 0; k < t->n_frac; k++) {
            const dec_cell_t *c = &t->cell[l][k];
            if (!c->n)
                continue;
            fprintf(md, "| %s | %g | %d |", t->label[l], t->fraction[k], c->n);
            for (int w = 0; w < 4; w++) {
                double m, h;
                dec_mean(rep, c, w == 0 ? 0 : w == 1 ? 1 : w == 2 ? 3 : 2, -1, &m, &h);
                fputc(' ', md);
                md_num(md, "%.3f", m);
                if (w < 2 && isfinite(h))
                    fprintf(md, " ± %.3f", h);
                fputs(" |", md);
            }
            fputc('\n', md);
        }
    fig_error_rates(rep, exp, t, 0);
    fig_error_rates(rep, exp, t, 1);
    fprintf(md, "\n### Error rates by sentence length\n\nThe same evaluation, by the held-out "
                "sentence's words (/eval/asr_wer_by_length, /eval/tts_uer_by_length), mean over "
                "seeds.\n\n| model | aligned fraction | ASR 1-2 | ASR 3-5 | ASR 6+ | TTS 1-2 | TTS 3-5 | "
                "TTS 6+ |\n|---|---|---|---|---|---|---|---|\n");
    for (int l = 0; l < t->n_labels; l++)
        for (int k = 0; k < t->n_frac; k++) {
            const dec_cell_t *c = &t->cell[l][k];
            if (!c->n)
                continue;
            fprintf(md, "| %s | %g |", t->label[l], t->fraction[k]);
            for (int w = 0; w < 2; w++)
                for (int b = 0; b < DEC_BUCKETS; b++) {
                    double m, h;
                    dec_mean(rep, c, w, b, &m, &h);
                    fputc(' ', md);
                    md_num(md, "%.3f", m);
                    fputs(" |", md);
                }
            fputc('\n', md);
        }
    int bl = -1;
    for (int l = 0; l < t->n_labels; l++)
        if (!strcmp(t->label[l], "vocab_expansion"))
            bl = l;
    if (bl >= 0) {
        fprintf(md, "\n### Paired per-sentence differences against vocab_expansion\n\nAt each "
                    "aligned fraction, the errors of each held-out sentence (/eval/asr_errors, "
                    "/eval/tts_errors, last evaluation) minus the baseline's for the same sentence "
                    "and seed, pooled over seeds; Wilcoxon signed-rank test, two-sided, by the normal "
                    "approximation (docs/analysis.md, \"Paired per-sentence differences\"). A "
                    "negative mean difference favours the candidate.\n\n| model | aligned fraction "
                    "| task | pairs | nonzero | mean difference | W+ | W- | z | p |\n"
                    "|---|---|---|---|---|---|---|---|---|---|\n");
        double *d = NULL;
        for (int l = 0; l < t->n_labels; l++)
            for (int k = 0; k < t->n_frac && l != bl; k++)
                for (int w = 0; w < 2; w++) {
                    size_t cap = 0;
                    for (int i = 0; i < t->cell[l][k].n; i++)
                        cap += rep->set.runs[t->cell[l][k].run[i]].r.n_pairs * (size_t)t->cell[bl][k].n;
                    d = realloc(d, (cap + 1) * sizeof *d);
                    size_t n = dec_diffs(rep, t, l, bl, k, w, d);
                    if (!n)
                        continue;
                    double mean = 0;
                    for (size_t q = 0; q < n; q++)
                        mean += d[q] / (double)n;
                    analysis_wilcoxon_t wx;
                    analysis_wilcoxon(&wx, d, n);
                    fprintf(md, "| %s | %g | %s | %zu | %zu | %+.3f | ", t->label[l], t->fraction[k],
                            w ? "TTS" : "ASR", n, wx.n, mean);
                    md_num(md, "%.1f", wx.w_plus);
                    fputs(" | ", md);
                    md_num(md, "%.1f", wx.w_minus);
                    fputs(" | ", md);
                    md_num(md, "%.2f", wx.z);
                    fputs(" | ", md);
                    md_num(md, "%.3g", wx.p);
                    fputs(" |\n", md);
                }
        free(d);
    }
    free(t);
}

static void make_comparisons(report_t *rep)
{
    const char *compared[] = {"model.kind", "model.towers", "model.moe_towers", NULL};
    analysis_opts_t o = *rep->o;
    o.compared = compared;
    rep->cmp = xcalloc(rep->set.n_groups + 1, sizeof *rep->cmp);
    rep->cmp_eval = xcalloc(rep->set.n_groups + 1, sizeof *rep->cmp_eval);
    rep->has_eval = xcalloc(rep->set.n_groups + 1, sizeof *rep->has_eval);
    for (size_t g = 0; g < rep->set.n_groups; g++) {
        const analysis_run_t *c = grun(rep, g);
        if (!strcmp(c->r.kind, "dense"))
            continue;
        /* the dense group of the same experiment and size that differs least */
        long best = analysis_closest_baseline(&rep->set, g, "model.kind=dense", compared);
        if (best < 0 || strcmp(grun(rep, (size_t)best)->r.experiment, c->r.experiment) ||
            !same_size(&grun(rep, (size_t)best)->r, &c->r))
            continue;
        size_t i = rep->n_cmp++;
        analysis_compare(&rep->cmp[i], &rep->set, (size_t)best, g, &o);
        bool eval = true;
        for (size_t q = 0; q < rep->cmp[i].n_pairs; q++)
            eval = eval && rep->set.runs[rep->cmp[i].pairs[q].base].r.n_eval > 0 &&
                   rep->set.runs[rep->cmp[i].pairs[q].cand].r.n_eval > 0;
        rep->has_eval[i] = eval && rep->cmp[i].n_pairs > 0;
        if (rep->has_eval[i]) {
            analysis_opts_t oe = o;
            oe.metric = ANALYSIS_EVAL;
            analysis_compare(&rep->cmp_eval[i], &rep->set, (size_t)best, g, &oe);
        }
    }
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

int analysis_report_write(const char *dir, const char *out, const analysis_opts_t *o)
{
    report_t rep = {.dir = dir, .out = out, .o = o};
    char err[4200];
    if (!analysis_runset_load_dir(&rep.set, dir, err, sizeof err)) {
        fprintf(stderr, "motscale report: %s\n", err);
        return EXIT_BADINPUT;
    }
    int status = EXIT_OK;
    if (rep.set.n_runs == 0) {
        fprintf(stderr, "motscale report: no readable run.h5 under %s\n", dir);
        status = EXIT_BADINPUT;
        goto done;
    }
    if (mkdir_p(out) != 0) {
        fprintf(stderr, "motscale report: cannot create %s: %s\n", out, strerror(errno));
        status = EXIT_FAULT;
        goto done;
    }
    rep.timing = xcalloc(rep.set.n_runs, sizeof *rep.timing);
    for (size_t i = 0; i < rep.set.n_runs; i++)
        derive_timing(&rep.timing[i], &rep.set.runs[i].r);
    rep.gnuplot = plot_available();
    if (!rep.gnuplot)
        fprintf(stderr, "motscale report: gnuplot is not on PATH (Debian: apt-get install "
                        "gnuplot-nox; scripts/bootstrap installs it): report.md gets the "
                        "tables, no figures\n");
    make_comparisons(&rep);
    char mdpath[4200];
    snprintf(mdpath, sizeof mdpath, "%s/report.md", out);
    rep.md = fopen(mdpath, "w");
    if (!rep.md) {
        fprintf(stderr, "motscale report: cannot create %s: %s\n", mdpath, strerror(errno));
        status = EXIT_FAULT;
        goto done;
    }
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    fprintf(rep.md, "# motscale report\n\n%zu runs (%zu configurations) under `%s`, %zu "
                    "comparisons; generated %s by motscale %s. Method: docs/analysis.md.\n",
            rep.set.n_runs, rep.set.n_groups, dir, rep.n_cmp, when, MOTSCALE_VERSION);
    if (!rep.gnuplot)
        fprintf(rep.md, "\n**No figures: gnuplot was not found on PATH.**\n");
    for (size_t i = 0; i < rep.set.n_skipped; i++)
        fprintf(rep.md, "%s- skipped: %s\n", i ? "" : "\n", rep.set.skipped[i]);
    section_runs(&rep);
    for (size_t i = 0; i < rep.set.n_runs; i++) {
        const char *exp = rep.set.runs[i].r.experiment;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || !strcmp(rep.set.runs[j].r.experiment, exp);
        if (seen)
            continue;
        fprintf(rep.md, "\n## Experiment: %s\n\n### Loss vs FLOPs and wall-clock\n\nSmoothed "
                        "training loss of every configuration, the mean of its seeds with a "
                        "95%% band (t interval of the mean); one colour and dash pattern per "
                        "configuration (dense black dashed), thicker lines for larger sizes.\n",
                exp_title(exp));
        fig_loss_curves(&rep, exp, false);
        fig_loss_curves(&rep, exp, true);
        section_pairs(&rep, exp);
        section_slope_tables(&rep, exp);
        section_slope_vs_size(&rep, exp);
        section_timing(&rep, exp);
        section_expert_load(&rep, exp);
        section_images(&rep, exp);
        section_decoding(&rep, exp);
        analysis_opt_sections(rep.md, &rep.set, exp);
        section_scaling(&rep, exp);
    }
    bool md_ok = !ferror(rep.md);
    md_ok = fclose(rep.md) == 0 && md_ok;
    if (!md_ok) {
        fprintf(stderr, "motscale report: writing %s failed\n", mdpath);
        status = EXIT_FAULT;
        goto done;
    }
    printf("report: %s (%zu runs, %zu comparisons, %d figures as PNG + SVG)\n", mdpath,
           rep.set.n_runs, rep.n_cmp, rep.n_fig);
    analysis_compare_headlines(stdout, &rep.set, rep.cmp, rep.n_cmp, o);
    if (!rep.gnuplot || rep.n_fig_failed) {
        if (rep.n_fig_failed)
            fprintf(stderr, "motscale report: %d figures failed to render (see report.md)\n",
                    rep.n_fig_failed);
        status = EXIT_FAULT;
    }
done:
    for (size_t i = 0; i < rep.n_cmp; i++) {
        analysis_comparison_free(&rep.cmp[i]);
        if (rep.has_eval[i])
            analysis_comparison_free(&rep.cmp_eval[i]);
    }
    free(rep.cmp);
    free(rep.cmp_eval);
    free(rep.has_eval);
    free(rep.timing);
    analysis_runset_free(&rep.set);
    return status;
}
