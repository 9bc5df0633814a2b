/* The report of `motscale report RESULTS_DIR`: every run.h5 under a folder, grouped by experiment,
 * size and kind; each candidate paired with its dense baseline; report.md with
 * tables, and PNG + SVG figures rendered by gnuplot next to their data. */
#include <errno.h>
#include <ftw.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "motscale/analysis.h"
#include "motscale/common.h"
#include "pair.h"
#include "plot.h"

#define REPORT_FIT_MIN_SIZES 3     /* a scaling law needs runs at this many sizes */
#define REPORT_FIT_BUDGETS 24      /* log-spaced budgets sampled on the frontier */
#define REPORT_FIT_SKIP 0.1        /* first fraction of each run's FLOPs left out */

/* snprintf for labels and file names, where cutting a long name short is fine. */
static void sfmt(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* ---- finding and loading runs ------------------------------------------------------ */

typedef struct found {
    char **paths;
    size_t n, cap;
} found_t;

static found_t *found_now; /* nftw has no user pointer */

static int found_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    if (flag != FTW_F || strcmp(path + ftw->base, "run.h5"))
        return 0;
    found_t *f = found_now;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->paths = realloc(f->paths, f->cap * sizeof *f->paths);
        if (!f->paths)
            DIE(EXIT_FAULT, "out of memory listing run files");
    }
    f->paths[f->n] = strdup(path);
    if (!f->paths[f->n])
        DIE(EXIT_FAULT, "out of memory listing run files");
    f->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One run with what the report derives from it. */
typedef struct rrun {
    runrec_t r;
    char seed[64];
    char label[192];          /* "run_name (kind, d64x2)" */
    double med_step, med_compute, med_comm, med_io, mfu;
} rrun_t;

static double median_of(const double *x, size_t n)
{
    if (n == 0)
        return NAN;
    double *c = xmalloc(n * sizeof *c);
    memcpy(c, x, n * sizeof *c);
    gsl_sort(c, 1, n);
    double m = gsl_stats_median_from_sorted_data(c, 1, n);
    free(c);
    return m;
}

/* Medians over logged steps after the first (start-up costs), and MFU: model FLOPs
 * of a step / its wall-clock / (peak per rank x ranks), median over rows. */
static void derive_timing(rrun_t *rr)
{
    const runrec_t *r = &rr->r;
    size_t s = r->n > 1 ? 1 : 0, n = r->n - s;
    rr->med_step = median_of(r->step_time + s, n);
    rr->med_compute = median_of(r->compute_time + s, n);
    rr->med_comm = median_of(r->comm_time + s, n);
    rr->med_io = median_of(r->io_time + s, n);
    double *mfu = xmalloc((r->n + 1) * sizeof *mfu);
    size_t k = 0;
    double peak = r->peak_flops_per_rank * (double)r->world_size;
    for (size_t i = 1; i < r->n; i++) {
        double dstep = (double)(r->step[i] - r->step[i - 1]);
        if (dstep > 0 && r->step_time[i] > 0 && peak > 0)
            mfu[k++] = (r->flops[i] - r->flops[i - 1]) / dstep / r->step_time[i] / peak;
    }
    rr->mfu = median_of(mfu, k);
    free(mfu);
}

static bool same_size(const runrec_t *a, const runrec_t *b)
{
    return a->d_model == b->d_model && a->n_layers == b->n_layers;
}

/* ---- report state ------------------------------------------------------------------ */

typedef struct rpair {
    int base, cand;           /* indices into runs */
    pair_t train, eval;
    bool has_eval;
} rpair_t;

typedef struct report {
    const char *dir, *out;
    rrun_t *runs;
    size_t n_runs;
    rpair_t *pairs;
    size_t n_pairs;
    FILE *md;
    bool gnuplot;
    int n_fig, n_fig_failed;
} report_t;

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

/* Series names of an experiment: "overall" and the first run's modalities. */
static int exp_series(const report_t *rep, const char *exp, char names[][ANALYSIS_NAME_LEN])
{
    for (size_t i = 0; i < rep->n_runs; i++) {
        const runrec_t *r = &rep->runs[i].r;
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

/* 1 + the rank of r's size among the distinct sizes of its experiment, by
 * d_model x n_layers: one colour per size in the loss figures. */
static int size_colour(const report_t *rep, const runrec_t *r)
{
    int rank = 1;
    for (size_t i = 0; i < rep->n_runs; i++) {
        const runrec_t *o = &rep->runs[i].r;
        if (strcmp(o->experiment, r->experiment) || same_size(o, r))
            continue;
        bool first = true; /* count each smaller size once */
        for (size_t j = 0; j < i; j++)
            first = first && !(same_size(&rep->runs[j].r, o) &&
                               !strcmp(rep->runs[j].r.experiment, o->experiment));
        rank += first && (long)o->d_model * o->n_layers < (long)r->d_model * r->n_layers;
    }
    return rank;
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

/* ---- sections ---------------------------------------------------------------------- */

static void section_runs(report_t *rep)
{
    FILE *md = rep->md;
    fprintf(md, "\n## Runs\n\nFinal losses are smoothed training losses (debiased EMA, time "
                "constant %g x step; docs/analysis.md), in nats/token.\n\n",
            SMOOTH_DEFAULT);
    fprintf(md, "| run | experiment | kind | size | params (total / active) | steps | tokens "
                "| FLOPs | wall-clock (s) | final loss by modality | file |\n");
    fprintf(md, "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < rep->n_runs; i++) {
        const runrec_t *r = &rep->runs[i].r;
        fprintf(md, "| %s | %s | %s | d%d x %d | %lld / %lld | %lld | %lld | %.3g | %.1f | ",
                r->run_name, exp_title(r->experiment), r->kind, r->d_model, r->n_layers,
                (long long)r->params_total, (long long)r->params_active_per_token,
                (long long)r->step[r->n - 1], (long long)r->tokens[r->n - 1],
                r->flops[r->n - 1], r->wall_time[r->n - 1]);
        for (int col = -1; col < r->n_mod; col++) {
            analysis_series_t s;
            analysis_series_build(&s, r, ANALYSIS_TRAIN, col, SMOOTH_DEFAULT);
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
        sfmt(name, sizeof name, "%s_loss_vs_%s_%s", stem, wall ? "wallclock" : "flops",
                 names[k]);
        sfmt(title, sizeof title, "%s: %s training loss (smoothed) vs %s",
                 exp_title(exp), names[k], wall ? "wall-clock" : "FLOPs");
        plot_t p;
        if (!fig_open(rep, &p, name, title,
                      wall ? "training wall-clock (s)" : "training compute (FLOPs)",
                      "loss (nats/token)"))
            continue;
        fprintf(p.gp, "set logscale x\nplot ");
        int block = 0;
        for (size_t i = 0; i < rep->n_runs; i++) {
            const runrec_t *r = &rep->runs[i].r;
            int col = series_col(r, names[k]);
            if (strcmp(r->experiment, exp) || col == -2)
                continue;
            analysis_series_t s;
            analysis_series_build(&s, r, ANALYSIS_TRAIN, col, SMOOTH_DEFAULT);
            fprintf(p.dat, "# %s\n", rep->runs[i].label);
            for (size_t j = 0; j < s.n; j++)
                if ((wall ? s.wall[j] : s.flops[j]) > 0)
                    fprintf(p.dat, "%.9g %.9g\n", wall ? s.wall[j] : s.flops[j], s.loss[j]);
            fprintf(p.dat, "\n\n");
            analysis_series_free(&s);
            /* colour by size, dashes by kind: dense dashed, mot solid, towers dotted */
            int dt = !strcmp(r->kind, "dense") ? 2 : !strcmp(r->kind, "mot") ? 1 : 3;
            fprintf(p.gp, "%sDAT index %d using 1:2 with lines lw 2 dt %d lc %d title ",
                    block ? ", \\\n     " : "", block, dt, size_colour(rep, r));
            plot_str(p.gp, rep->runs[i].label);
            block++;
        }
        fputc('\n', p.gp);
        figure(rep, &p, title);
    }
}

static void fig_step_matching(report_t *rep, const rpair_t *rp)
{
    const runrec_t *b = &rep->runs[rp->base].r, *c = &rep->runs[rp->cand].r;
    for (int k = 0; k < rp->train.n_series; k++) {
        const pair_series_t *ps = &rp->train.series[k];
        const analysis_match_t *m = &ps->match;
        if (m->n_matched < 2) {
            fprintf(rep->md, "\n*No step-matching figure for %s: %zu of %zu baseline points "
                             "reached.*\n",
                    ps->name, m->n_matched, m->n_base);
            continue;
        }
        char name[512], title[512];
        sfmt(name, sizeof name, "%s_stepmatch_%s_vs_%s_%s", b->experiment[0] ? b->experiment : "runs",
                 c->run_name, b->run_name, ps->name);
        sfmt(title, sizeof title,
                 "Step matching, %s loss: %s vs %s (slope %.3f, R^2 %.3f)", ps->name,
                 c->run_name, b->run_name, m->slope_step, m->r2_step);
        plot_t p;
        char ylabel[256];
        sfmt(ylabel, sizeof ylabel, "%s step reaching the same loss (steps)", c->kind);
        if (!fig_open(rep, &p, name, title, "dense baseline step (steps)", ylabel))
            continue;
        double xmax = 0;
        for (size_t j = 0; j < m->n_matched; j++) {
            fprintf(p.dat, "%.9g %.9g\n", m->base_step[j], m->cand_step[j]);
            xmax = fmax(xmax, m->base_step[j]);
        }
        fprintf(p.gp, "set key inside left top box\nset xrange [0:%g]\nset yrange [0:%g]\n",
                xmax * 1.02, xmax * 1.02);
        fprintf(p.gp,
                "plot DAT using 1:2 with points pt 7 ps 0.6 title 'matched steps', \\\n"
                "     %.9g * x with lines lw 2 title 'fit through origin, slope %.3f', \\\n"
                "     x with lines dt 2 lc rgb 'gray40' title 'equal steps (slope 1)'\n",
                m->slope_step, m->slope_step);
        figure(rep, &p, title);
    }
}

static void fig_fractions(report_t *rep, const rpair_t *rp)
{
    const runrec_t *b = &rep->runs[rp->base].r, *c = &rep->runs[rp->cand].r;
    char name[512], title[512];
    sfmt(name, sizeof name, "%s_flops_vs_wallclock_%s_vs_%s",
             b->experiment[0] ? b->experiment : "runs", c->run_name, b->run_name);
    sfmt(title, sizeof title,
             "FLOPs vs wall-clock fraction to match %s (step-matching slopes): %s",
             b->run_name, c->run_name);
    plot_t p;
    if (!fig_open(rep, &p, name, title, "loss series", "fraction of the baseline (1 = equal)"))
        return;
    for (int k = 0; k < rp->train.n_series; k++) {
        const analysis_match_t *m = &rp->train.series[k].match;
        fprintf(p.dat, "\"%s\" %.9g %.9g\n", rp->train.series[k].name, m->slope_flops,
                m->slope_wall);
    }
    fprintf(p.gp, "set xrange [-0.6:%d.6]\n", rp->train.n_series - 1);
    fprintf(p.gp, "set style data histogram\nset style histogram clustered gap 1\n"
                  "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                  "set grid ytics\nset key inside left top box\n"
                  "plot DAT using 2:xtic(1) title 'FLOPs fraction', "
                  "'' using 3 title 'wall-clock fraction', 1 with lines dt 2 lc rgb 'gray40' "
                  "title 'baseline (1)'\n");
    figure(rep, &p, title);
}

static void section_pairs(report_t *rep, const char *exp)
{
    FILE *md = rep->md;
    bool any = false;
    for (size_t i = 0; i < rep->n_pairs; i++) {
        const rpair_t *rp = &rep->pairs[i];
        const runrec_t *b = &rep->runs[rp->base].r, *c = &rep->runs[rp->cand].r;
        if (strcmp(b->experiment, exp))
            continue;
        if (!any)
            fprintf(md, "\n### Step matching and equal loss\n\nSlopes are least squares "
                        "through the origin of the candidate's matching step (FLOPs, "
                        "wall-clock) against the baseline's, with R^2; equal-loss fractions "
                        "are what the candidate needs to reach the baseline's final loss. "
                        "`compare` gives the same numbers: `motscale compare %s %s --json`.\n",
                    b->path, c->path);
        any = true;
        fprintf(md, "\n#### %s vs %s (d%d x %d)\n\n", c->run_name, b->run_name, b->d_model,
                b->n_layers);
        for (int w = 0; w < rp->train.n_warn; w++)
            fprintf(md, "- warning: %s\n", rp->train.warn[w]);
        for (int e = 0; e < (rp->has_eval ? 2 : 1); e++) {
            const pair_t *p = e ? &rp->eval : &rp->train;
            fprintf(md, "\n%s loss:\n\n", e ? "Held-out" : "Training (smoothed)");
            fprintf(md, "| series | matched | slope steps (R^2) | slope FLOPs (R^2) | slope "
                        "wall-clock (R^2) | target loss | equal loss: steps | FLOPs | "
                        "wall-clock |\n|---|---|---|---|---|---|---|---|---|\n");
            for (int k = 0; k < p->n_series; k++) {
                const analysis_match_t *m = &p->series[k].match;
                fprintf(md, "| %s | %zu/%zu | ", p->series[k].name, m->n_matched, m->n_base);
                double sl[3][2] = {{m->slope_step, m->r2_step},
                                   {m->slope_flops, m->r2_flops},
                                   {m->slope_wall, m->r2_wall}};
                for (int a = 0; a < 3; a++) {
                    md_num(md, "%.3f", sl[a][0]);
                    fputs(" (", md);
                    md_num(md, "%.3f", sl[a][1]);
                    fputs(") | ", md);
                }
                md_num(md, "%.4f", m->target_loss);
                if (m->reached)
                    fprintf(md, " | %.1f%% | %.1f%% | %.1f%% |\n", 100 * m->frac_step,
                            100 * m->frac_flops, 100 * m->frac_wall);
                else
                    fprintf(md, " | not reached | not reached | not reached |\n");
            }
        }
        fprintf(md, "\n```\n");
        pair_print_headlines(md, &rp->train);
        fprintf(md, "```\n");
        fig_step_matching(rep, rp);
        fprintf(md, "\nWall-clock vs FLOPs: the FLOPs fraction beside the wall-clock "
                    "fraction (step-matching slopes; equal FLOPs per step makes the first the "
                    "step fraction).\n");
        fig_fractions(rep, rp);
    }
    if (!any)
        fprintf(md, "\n*No candidate (mot/towers) with a dense baseline of the same size in "
                    "this experiment: no step matching.*\n");
}

static void section_timing(report_t *rep, const char *exp)
{
    FILE *md = rep->md;
    fprintf(md, "\n### Step time and MFU\n\nMedians over logged steps after the first. "
                "MFU = model FLOPs of a step / its wall-clock / (peak FLOP/s per rank x "
                "ranks).\n\n| run | ranks (dp x tp) | step (s) | compute (s) | communication "
                "(s) | I/O (s) | other (s) | MFU |\n|---|---|---|---|---|---|---|---|\n");
    char stem[128], name[256], title[512];
    exp_stem(stem, sizeof stem, exp);
    sfmt(name, sizeof name, "%s_step_time", stem);
    sfmt(title, sizeof title, "%s: step-time breakdown (median per logged step)",
             exp_title(exp));
    for (size_t i = 0; i < rep->n_runs; i++) {
        const rrun_t *rr = &rep->runs[i];
        if (strcmp(rr->r.experiment, exp))
            continue;
        fprintf(md, "| %s | %d (%d x %d) | %.4g | %.4g | %.4g | %.4g | %.4g | ", rr->r.run_name,
                rr->r.world_size, rr->r.dp, rr->r.tp, rr->med_step, rr->med_compute,
                rr->med_comm, rr->med_io,
                fmax(0, rr->med_step - rr->med_compute - rr->med_comm - rr->med_io));
        if (isfinite(rr->mfu))
            fprintf(md, "%.1f%% |\n", 100 * rr->mfu);
        else
            fprintf(md, "- |\n");
    }
    plot_t p;
    if (!fig_open(rep, &p, name, title, "run", "seconds per step (s)"))
        return;
    int bars = 0;
    for (size_t i = 0; i < rep->n_runs; i++) {
        const rrun_t *rr = &rep->runs[i];
        if (strcmp(rr->r.experiment, exp))
            continue;
        bars++;
        fprintf(p.dat, "\"%s\" %.9g %.9g %.9g %.9g\n", rr->r.run_name, rr->med_compute,
                rr->med_comm, rr->med_io,
                fmax(0, rr->med_step - rr->med_compute - rr->med_comm - rr->med_io));
    }
    fprintf(p.gp, "set xrange [-0.6:%d.6]\n", bars - 1);
    fprintf(p.gp, "set style data histogram\nset style histogram rowstacked\n"
                  "set style fill solid 0.8 border -1\nset boxwidth 0.6\nset yrange [0:*]\n"
                  "set xtics rotate by -20\n"
                  "plot DAT using 2:xtic(1) title 'compute', '' using 3 title 'communication', "
                  "'' using 4 title 'I/O', '' using 5 title 'other'\n");
    figure(rep, &p, title);
}

static void section_slope_vs_size(report_t *rep, const char *exp)
{
    /* baseline sizes among this experiment's pairs */
    int sizes = 0;
    for (size_t i = 0; i < rep->n_pairs; i++) {
        const runrec_t *b = &rep->runs[rep->pairs[i].base].r;
        if (strcmp(b->experiment, exp))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            const runrec_t *o = &rep->runs[rep->pairs[j].base].r;
            seen = seen || (!strcmp(o->experiment, exp) && same_size(o, b));
        }
        sizes += !seen;
    }
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
    sfmt(title, sizeof title, "%s: step-matching slope vs model size", exp_title(exp));
    plot_t p;
    if (!fig_open(rep, &p, name, title, "dense baseline size (parameters, total)",
                  "step-matching slope (fraction of baseline steps)"))
        return;
    fprintf(p.gp, "set logscale x\nset yrange [0:*]\nplot ");
    int block = 0;
    const char *kinds[] = {"mot", "towers"};
    for (int kk = 0; kk < 2; kk++) {
        for (int k = 0; k < ns; k++) {
            int pts = 0;
            for (size_t i = 0; i < rep->n_pairs; i++) {
                const rpair_t *rp = &rep->pairs[i];
                const runrec_t *b = &rep->runs[rp->base].r, *c = &rep->runs[rp->cand].r;
                if (strcmp(b->experiment, exp) || strcmp(c->kind, kinds[kk]))
                    continue;
                for (int s = 0; s < rp->train.n_series; s++)
                    if (!strcmp(rp->train.series[s].name, names[k])) {
                        fprintf(p.dat, "%lld %.9g\n", (long long)b->params_total,
                                rp->train.series[s].match.slope_step);
                        pts++;
                    }
            }
            if (!pts)
                continue;
            fprintf(p.dat, "\n\n");
            char t[160];
            sfmt(t, sizeof t, "%s, %s loss", kinds[kk], names[k]);
            fprintf(p.gp, "%sDAT index %d using 1:2 with linespoints lw 2 pt 7 title ",
                    block ? ", \\\n     " : "", block);
            plot_str(p.gp, t);
            block++;
        }
    }
    fputc('\n', p.gp);
    figure(rep, &p, title);
}

/* Frontier of (FLOPs, smoothed loss) over the runs of one kind: at each of
 * REPORT_FIT_BUDGETS log-spaced budgets C, the lowest loss any run reached with at
 * most C FLOPs (a run that ended before C counts with its final loss), leaving out
 * each run's first REPORT_FIT_SKIP of FLOPs (warm-up, not a power law). */
static size_t frontier(const report_t *rep, const char *exp, const char *kind,
                       const char *series, double *C, double *L, int *n_sizes, double *cmax)
{
    double lo = INFINITY, hi = 0;
    *n_sizes = 0;
    analysis_series_t s[64];
    int ns = 0;
    for (size_t i = 0; i < rep->n_runs && ns < 64; i++) {
        const runrec_t *r = &rep->runs[i].r;
        int col = series_col(r, series);
        if (strcmp(r->experiment, exp) || strcmp(r->kind, kind) || col == -2)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            const runrec_t *o = &rep->runs[j].r;
            seen = seen || (!strcmp(o->experiment, exp) && !strcmp(o->kind, kind) &&
                            same_size(o, r));
        }
        *n_sizes += !seen;
        analysis_series_build(&s[ns], r, ANALYSIS_TRAIN, col, SMOOTH_DEFAULT);
        if (s[ns].n < 2) {
            analysis_series_free(&s[ns]);
            continue;
        }
        double f = s[ns].flops[s[ns].n - 1];
        lo = fmin(lo, REPORT_FIT_SKIP * f);
        hi = fmax(hi, f);
        ns++;
    }
    *cmax = hi;
    size_t n = 0;
    for (int b = 0; b < REPORT_FIT_BUDGETS && ns > 0 && lo > 0 && hi > lo; b++) {
        double c = lo * pow(hi / lo, (double)b / (REPORT_FIT_BUDGETS - 1));
        double best = INFINITY;
        for (int k = 0; k < ns; k++) {
            const analysis_series_t *q = &s[k];
            double f_end = q->flops[q->n - 1];
            if (c < REPORT_FIT_SKIP * f_end)
                continue;
            if (c >= f_end) { /* a run that ended below c got its final loss within c */
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
    for (int k = 0; k < ns; k++)
        analysis_series_free(&s[k]);
    return n;
}

static void section_scaling(report_t *rep, const char *exp)
{
    FILE *md = rep->md;
    const char *kinds[] = {"dense", "mot", "towers"};
    char names[ANALYSIS_MAX_MOD + 1][ANALYSIS_NAME_LEN], stem[128];
    int ns = exp_series(rep, exp, names);
    exp_stem(stem, sizeof stem, exp);
    fprintf(md, "\n### Scaling fits L(C) = E + A (C / c0)^-alpha\n\nFitted to the compute "
                "frontier of each kind (the lowest smoothed training loss any of its runs "
                "reached within each of %d log-spaced budgets, leaving out the first %.0f%% of "
                "each run), by nonlinear least squares with a soft-L1 robust loss; c0 is the "
                "geometric mean budget; errors are one standard error. Needs runs at >= %d "
                "sizes.\n\n",
            REPORT_FIT_BUDGETS, 100 * REPORT_FIT_SKIP, REPORT_FIT_MIN_SIZES);
    fprintf(md, "| series | kind | sizes | points | E | A at c0 | alpha | c0 (FLOPs) | rms "
                "residual |\n|---|---|---|---|---|---|---|---|---|\n");
    analysis_powerlaw_t fits[ANALYSIS_MAX_MOD + 1][3];
    double cmax[ANALYSIS_MAX_MOD + 1][3];
    double C[ANALYSIS_MAX_MOD + 1][3][REPORT_FIT_BUDGETS];
    double L[ANALYSIS_MAX_MOD + 1][3][REPORT_FIT_BUDGETS];
    size_t npts[ANALYSIS_MAX_MOD + 1][3];
    for (int k = 0; k < ns; k++) {
        for (int kk = 0; kk < 3; kk++) {
            int sizes;
            npts[k][kk] = frontier(rep, exp, kinds[kk], names[k], C[k][kk], L[k][kk], &sizes,
                                   &cmax[k][kk]);
            memset(&fits[k][kk], 0, sizeof fits[k][kk]);
            if (sizes == 0)
                continue;
            fprintf(md, "| %s | %s | %d | %zu | ", names[k], kinds[kk], sizes, npts[k][kk]);
            if (sizes < REPORT_FIT_MIN_SIZES) {
                fprintf(md, "skipped: %d size%s, a scaling law needs >= %d | | | | |\n", sizes,
                        sizes == 1 ? "" : "s", REPORT_FIT_MIN_SIZES);
                continue;
            }
            const analysis_powerlaw_t *f = &fits[k][kk];
            if (!analysis_fit_power_law(&fits[k][kk], C[k][kk], L[k][kk], npts[k][kk])) {
                fprintf(md, "fit failed: %s | | | | |\n", f->why);
                continue;
            }
            fprintf(md, "%.4f ± %.2g | %.4f ± %.2g | %.4f ± %.2g | %.3g | %.2g |\n", f->E,
                    f->se_E, f->A, f->se_A, f->alpha, f->se_alpha, f->c0, f->rms);
        }
    }
    /* Compute multiplier at the largest budget both kinds reached: dense's fitted loss
     * there, and the compute the other kind's fit needs for it (inside its data, so
     * an interpolation; the reverse question would extrapolate dense's fit). */
    fputc('\n', md);
    for (int k = 0; k < ns; k++) {
        for (int kk = 1; kk < 3; kk++) {
            if (!fits[k][0].ok || !fits[k][kk].ok)
                continue;
            double cstar = fmin(cmax[k][0], cmax[k][kk]);
            double frac = analysis_compute_multiplier(&fits[k][kk], &fits[k][0], cstar);
            if (isfinite(frac))
                fprintf(md, "- %s loss, at %.3g FLOPs (largest common budget): %s reaches "
                            "dense's fitted loss %.4f with %.1f%% of the compute; dense needs "
                            "%.2fx the compute of %s.\n",
                        names[k], cstar, kinds[kk], analysis_power_law_eval(&fits[k][0], cstar),
                        100 * frac, 1 / frac, kinds[kk]);
            else
                fprintf(md, "- %s loss, at %.3g FLOPs: dense's fitted loss is below %s's "
                            "fitted asymptote E: no finite compute multiplier.\n",
                        names[k], cstar, kinds[kk]);
        }
    }
    for (int k = 0; k < ns; k++) {
        int nfit = 0;
        for (int kk = 0; kk < 3; kk++)
            nfit += fits[k][kk].ok;
        if (!nfit)
            continue;
        char name[256], title[512];
        sfmt(name, sizeof name, "%s_scaling_%s", stem, names[k]);
        sfmt(title, sizeof title, "%s: %s loss compute frontier and fit E + A (C/c0)^-alpha",
             exp_title(exp), names[k]);
        plot_t p;
        if (!fig_open(rep, &p, name, title, "training compute C (FLOPs)", "loss (nats/token)"))
            continue;
        fprintf(p.gp, "set logscale x\nplot ");
        int block = 0;
        for (int kk = 0; kk < 3; kk++) {
            if (!fits[k][kk].ok)
                continue;
            for (size_t j = 0; j < npts[k][kk]; j++)
                fprintf(p.dat, "%.9g %.9g\n", C[k][kk][j], L[k][kk][j]);
            fprintf(p.dat, "\n\n");
            const analysis_powerlaw_t *f = &fits[k][kk];
            fprintf(p.gp, "%sDAT index %d using 1:2 with points pt 7 lc %d title '%s frontier', "
                          "\\\n     %.9g + %.9g * (x / %.9g)**(-%.9g) with lines lw 2 lc %d "
                          "title '%s fit, alpha %.3f'",
                    block ? ", \\\n     " : "", block, kk + 1, kinds[kk], f->E, f->A, f->c0,
                    f->alpha, kk + 1, kinds[kk], f->alpha);
            block++;
        }
        fputc('\n', p.gp);
        figure(rep, &p, title);
    }
}

static void make_pairs(report_t *rep)
{
    rep->pairs = xcalloc(rep->n_runs + 1, sizeof *rep->pairs);
    for (size_t c = 0; c < rep->n_runs; c++) {
        const rrun_t *cr = &rep->runs[c];
        if (!strcmp(cr->r.kind, "dense"))
            continue;
        int best = -1;
        for (size_t b = 0; b < rep->n_runs; b++) {
            const rrun_t *br = &rep->runs[b];
            if (strcmp(br->r.kind, "dense") || strcmp(br->r.experiment, cr->r.experiment) ||
                !same_size(&br->r, &cr->r))
                continue;
            if (best < 0 || (!strcmp(br->seed, cr->seed) && strcmp(rep->runs[best].seed, cr->seed)))
                best = (int)b;
        }
        if (best < 0)
            continue;
        rpair_t *rp = &rep->pairs[rep->n_pairs++];
        rp->base = best;
        rp->cand = (int)c;
        pair_compute(&rp->train, &rep->runs[best].r, &cr->r, ANALYSIS_TRAIN,
                     SMOOTH_DEFAULT);
        rp->has_eval = rep->runs[best].r.n_eval > 0 && cr->r.n_eval > 0;
        if (rp->has_eval)
            pair_compute(&rp->eval, &rep->runs[best].r, &cr->r, ANALYSIS_EVAL, 0);
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

int analysis_report_write(const char *dir, const char *out)
{
    found_t found = {0};
    found_now = &found;
    if (nftw(dir, found_add, 32, FTW_PHYS) != 0) {
        fprintf(stderr, "motscale report: %s: cannot walk the folder: %s\n", dir, strerror(errno));
        return EXIT_BADINPUT;
    }
    if (found.n)
        qsort(found.paths, found.n, sizeof *found.paths, cmp_str);

    report_t rep = {.dir = dir, .out = out};
    rep.runs = xcalloc(found.n + 1, sizeof *rep.runs);
    char (*skipped)[1100] = xcalloc(found.n + 1, sizeof *skipped);
    size_t n_skipped = 0;
    for (size_t i = 0; i < found.n; i++) {
        rrun_t *rr = &rep.runs[rep.n_runs];
        char err[1024];
        if (!runrec_load(found.paths[i], &rr->r, err, sizeof err)) {
            warnf("skipping %s", err);
            snprintf(skipped[n_skipped++], sizeof skipped[0], "%s", err);
            continue;
        }
        runrec_config_get(&rr->r, "run", "seed", rr->seed, sizeof rr->seed);
        sfmt(rr->label, sizeof rr->label, "%s (%s, d%d x %d)", rr->r.run_name, rr->r.kind,
                 rr->r.d_model, rr->r.n_layers);
        derive_timing(rr);
        rep.n_runs++;
    }
    int status = EXIT_OK;
    if (rep.n_runs == 0) {
        fprintf(stderr, "motscale report: no readable run.h5 under %s\n", dir);
        status = EXIT_BADINPUT;
        goto done;
    }
    if (mkdir_p(out) != 0) {
        fprintf(stderr, "motscale report: cannot create %s: %s\n", out, strerror(errno));
        status = EXIT_FAULT;
        goto done;
    }
    rep.gnuplot = plot_available();
    if (!rep.gnuplot)
        fprintf(stderr, "motscale report: gnuplot is not on PATH (Debian: apt-get install "
                        "gnuplot-nox; scripts/bootstrap installs it): report.md gets the "
                        "tables, no figures\n");
    make_pairs(&rep);
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
    fprintf(rep.md, "# motscale report\n\n%zu runs under `%s`, %zu candidate/baseline pairs; "
                    "generated %s by motscale %s. Method: docs/analysis.md.\n",
            rep.n_runs, dir, rep.n_pairs, when, MOTSCALE_VERSION);
    if (!rep.gnuplot)
        fprintf(rep.md, "\n**No figures: gnuplot was not found on PATH.**\n");
    for (size_t i = 0; i < n_skipped; i++)
        fprintf(rep.md, "%s- skipped: %s\n", i ? "" : "\n", skipped[i]);
    section_runs(&rep);
    for (size_t i = 0; i < rep.n_runs; i++) {
        const char *exp = rep.runs[i].r.experiment;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || !strcmp(rep.runs[j].r.experiment, exp);
        if (seen)
            continue;
        fprintf(rep.md, "\n## Experiment: %s\n\n### Loss vs FLOPs and wall-clock\n\nSmoothed "
                        "training loss of every run; one colour per size; dense dashed, mot solid, "
                        "towers dotted.\n",
                exp_title(exp));
        fig_loss_curves(&rep, exp, false);
        fig_loss_curves(&rep, exp, true);
        section_pairs(&rep, exp);
        section_slope_vs_size(&rep, exp);
        section_timing(&rep, exp);
        section_scaling(&rep, exp);
    }
    bool md_ok = !ferror(rep.md);
    md_ok = fclose(rep.md) == 0 && md_ok;
    if (!md_ok) {
        fprintf(stderr, "motscale report: writing %s failed\n", mdpath);
        status = EXIT_FAULT;
        goto done;
    }
    printf("report: %s (%zu runs, %zu pairs, %d figures as PNG + SVG)\n", mdpath, rep.n_runs,
           rep.n_pairs, rep.n_fig);
    for (size_t i = 0; i < rep.n_pairs; i++)
        pair_print_headlines(stdout, &rep.pairs[i].train);
    if (!rep.gnuplot || rep.n_fig_failed) {
        if (rep.n_fig_failed)
            fprintf(stderr, "motscale report: %d figures failed to render (see report.md)\n",
                    rep.n_fig_failed);
        status = EXIT_FAULT;
    }
done:
    for (size_t i = 0; i < rep.n_pairs; i++) {
        pair_free(&rep.pairs[i].train);
        if (rep.pairs[i].has_eval)
            pair_free(&rep.pairs[i].eval);
    }
    free(rep.pairs);
    for (size_t i = 0; i < rep.n_runs; i++)
        runrec_free(&rep.runs[i].r);
    free(rep.runs);
    free(skipped);
    for (size_t i = 0; i < found.n; i++)
        free(found.paths[i]);
    free(found.paths);
    return status;
}
