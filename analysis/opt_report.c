/* The report's OPT sections (docs/analysis.md "OPT"): for the model.kind = opt runs
 * of an experiment, per-task equal-loss fractions of the MoT cross-modal encoder
 * against the shared one (step matching of each task's training loss, seed by
 * seed), and the retrieval and ablation table at the last evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"
#include "motscale/runread.h"
#include "motscale/smooth.h"

#define N_TASKS 8
#define N_DIRS 5
static const char *const TASK[N_TASKS] = {"MLM", "region regression", "region class", "frame regression",
                                          "frame contrastive", "matching", "text reconstruction",
                                          "image reconstruction"};
static const char *const DIR[N_DIRS] = {"text->image", "image->text", "text->audio", "audio->text",
                                        "text+audio->image"};

static bool is_opt(const analysis_run_t *a, const char *exp)
{
    return !strcmp(a->r.kind, "opt") && !strcmp(a->r.experiment, exp) && a->r.n_task == N_TASKS;
}

/* What a run trains: its cross-modal encoder and the task levels it drops. */
static void variant(const analysis_run_t *a, char *out, size_t len)
{
    char cross[32], wm[32], wr[32], wc[32], wt[32], wi[32], dl[32];
    runrec_config_get(&a->r, "opt", "cross_towers", cross, sizeof cross);
    runrec_config_get(&a->r, "opt", "w_trec", wt, sizeof wt);
    runrec_config_get(&a->r, "opt", "w_irec", wi, sizeof wi);
    runrec_config_get(&a->r, "opt", "decoder_layers", dl, sizeof dl);
    runrec_config_get(&a->r, "opt", "w_match", wm, sizeof wm);
    runrec_config_get(&a->r, "opt", "w_mrfr", wr, sizeof wr);
    runrec_config_get(&a->r, "opt", "w_mrc", wc, sizeof wc);
    bool no_match = wm[0] && atof(wm) == 0, no_mvm = wr[0] && wc[0] && atof(wr) == 0 && atof(wc) == 0;
    bool no_modality = (dl[0] && atoi(dl) == 0) || (wt[0] && wi[0] && atof(wt) == 0 && atof(wi) == 0);
    snprintf(out, len, "%s%s%s%s", cross[0] ? cross : "shared", no_match ? ", no sample-level" : "",
             no_modality ? ", no modality-level" : "", no_mvm ? ", no MVM" : "");
}

/* Task k's training loss of run r as a smoothed series over its finite rows. */
static void task_series(analysis_series_t *s, const runrec_t *r, int k)
{
    memset(s, 0, sizeof *s);
    s->step = xcalloc(r->n + 1, sizeof(double));
    s->flops = xcalloc(r->n + 1, sizeof(double));
    s->wall = xcalloc(r->n + 1, sizeof(double));
    s->raw = xcalloc(r->n + 1, sizeof(double));
    s->loss = xcalloc(r->n + 1, sizeof(double));
    for (size_t i = 0; i < r->n; i++) {
        double v = r->task_loss[i * r->n_task + (size_t)k];
        if (!isfinite(v))
            continue;
        s->step[s->n] = (double)r->step[i];
        s->flops[s->n] = r->flops[i];
        s->wall[s->n] = r->wall_time[i];
        s->raw[s->n++] = v;
    }
    analysis_series_smooth(s, SMOOTH_DEFAULT);
}

/* Step matching of candidate c against baseline b on task k: for each baseline row
 * past the first tenth of the run, the first candidate step at or below the
 * baseline's smoothed loss; the slope through the origin (NaN: too few matched). */
static double task_slope(const runrec_t *b, const runrec_t *c, int k, size_t *matched, size_t *points)
{
    analysis_series_t sb, sc;
    task_series(&sb, b, k);
    task_series(&sc, c, k);
    double *x = xcalloc(sb.n + 1, sizeof *x), *y = xcalloc(sb.n + 1, sizeof *y);
    size_t n = 0, from = sb.n / 10;
    for (size_t i = from; i < sb.n; i++) {
        double pos;
        if (!analysis_first_crossing(sc.loss, sc.n, sb.loss[i], &pos))
            continue;
        x[n] = sb.step[i];
        y[n++] = analysis_at(sc.step, sc.n, pos);
    }
    double slope = NAN, r2;
    if (n >= 2)
        analysis_fit_origin(x, y, n, &slope, &r2);
    *matched = n;
    *points = sb.n > from ? sb.n - from : 0;
    free(x);
    free(y);
    analysis_series_free(&sb);
    analysis_series_free(&sc);
    return slope;
}

static void equal_loss_table(FILE *md, const analysis_runset_t *set, const char *exp)
{
    bool header = false;
    for (size_t i = 0; i < set->n_runs; i++) {
        const analysis_run_t *b = &set->runs[i];
        char vb[96];
        if (!is_opt(b, exp))
            continue;
        variant(b, vb, sizeof vb);
        if (strcmp(vb, "shared"))
            continue;
        /* the mot run of the same size and seed */
        for (size_t j = 0; j < set->n_runs; j++) {
            const analysis_run_t *c = &set->runs[j];
            char vc[96];
            if (!is_opt(c, exp) || strcmp(c->size, b->size) || strcmp(c->seed, b->seed))
                continue;
            variant(c, vc, sizeof vc);
            if (strcmp(vc, "mot"))
                continue;
            if (!header) {
                fprintf(md, "\n### OPT: MoT cross-modal encoder against shared, per task\n\n"
                            "Steps the MoT run needs to reach the shared run's smoothed training "
                            "loss of each task, as a fraction (the step-matching slope; below 1: "
                            "MoT is ahead). Shared and MoT have equal FLOPs per token, so this is "
                            "also the FLOPs fraction. Matched: baseline points past the first tenth "
                            "of the run that the candidate reached (docs/analysis.md, \"OPT\").\n\n"
                            "| size | seed |");
                for (int k = 0; k < N_TASKS; k++)
                    fprintf(md, " %s |", TASK[k]);
                fprintf(md, "\n|---|---|");
                for (int k = 0; k < N_TASKS; k++)
                    fprintf(md, "---|");
                fputc('\n', md);
                header = true;
            }
            fprintf(md, "| %s | %s |", b->size, b->seed);
            for (int k = 0; k < N_TASKS; k++) {
                size_t got, of;
                double s = task_slope(&b->r, &c->r, k, &got, &of);
                if (isfinite(s))
                    fprintf(md, " %.3f (%zu/%zu) |", s, got, of);
                else
                    fprintf(md, " not reached (%zu/%zu) |", got, of);
            }
            fputc('\n', md);
        }
    }
}

/* Mean and sample standard deviation of v over the group's runs at their last
 * evaluation. */
static void group_stat(const analysis_runset_t *set, size_t g, int col, bool retrieval, double *mean, double *sd)
{
    double s = 0, ss = 0;
    int n = 0;
    for (size_t q = 0; q < set->groups[g].n; q++) {
        const runrec_t *r = &set->runs[set->groups[g].run[q]].r;
        if (r->n_eval == 0)
            continue;
        size_t row = r->n_eval - 1;
        double v = retrieval ? r->eval_retrieval[row * r->n_retr + (size_t)col]
                             : r->eval_task_accuracy[row * r->n_task + (size_t)col];
        if (!isfinite(v))
            continue;
        s += v;
        ss += v * v;
        n++;
    }
    *mean = n ? s / n : NAN;
    *sd = n > 1 ? sqrt(fmax(0, (ss - s * s / n) / (n - 1))) : NAN;
}

static void md_ms(FILE *md, double mean, double sd)
{
    if (!isfinite(mean))
        fprintf(md, " - |");
    else if (isfinite(sd))
        fprintf(md, " %.3f +- %.3f |", mean, sd);
    else
        fprintf(md, " %.3f |", mean);
}

static void retrieval_table(FILE *md, const analysis_runset_t *set, const char *exp)
{
    bool header = false;
    for (size_t g = 0; g < set->n_groups; g++) {
        const analysis_run_t *a = &set->runs[set->groups[g].run[0]];
        if (!is_opt(a, exp) || a->r.n_retr != 3 * N_DIRS || a->r.n_eval == 0)
            continue;
        if (!header) {
            char pool[32];
            runrec_config_get(&a->r, "log", "retrieval_pool", pool, sizeof pool);
            fprintf(md, "\n### OPT: retrieval and the ablations\n\nAt the last held-out evaluation, "
                        "mean +- sample standard deviation over seeds: R@1 of each direction over a "
                        "pool of %s held-out scenes (chance %.3f), the mean over directions of R@5 and "
                        "R@10, and the held-out accuracy of MLM, region classification and matching "
                        "(chance 0.2). Scored by the matching head (docs/analysis.md \"OPT "
                        "retrieval\"): a model trained without the sample-level task has an "
                        "untrained head and ranks at chance by construction.\n\n"
                        "| configuration | size | seeds |",
                    pool[0] ? pool : "?", pool[0] ? 1.0 / atof(pool) : NAN);
            for (int d = 0; d < N_DIRS; d++)
                fprintf(md, " R@1 %s |", DIR[d]);
            fprintf(md, " R@5 | R@10 | acc MLM | acc region class | acc matching | acc text rec. | acc image rec. |\n"
                        "|---|---|---|");
            for (int d = 0; d < N_DIRS + 7; d++)
                fprintf(md, "---|");
            fputc('\n', md);
            header = true;
        }
        char v[96];
        variant(a, v, sizeof v);
        fprintf(md, "| %s | %s | %zu |", v, a->size, set->groups[g].n);
        double mean, sd;
        for (int d = 0; d < N_DIRS; d++) {
            group_stat(set, g, 3 * d, true, &mean, &sd);
            md_ms(md, mean, sd);
        }
        for (int j = 1; j < 3; j++) {
            double m = 0;
            for (int d = 0; d < N_DIRS; d++) {
                group_stat(set, g, 3 * d + j, true, &mean, &sd);
                m += mean / N_DIRS;
            }
            md_ms(md, m, NAN);
        }
        const int acc[5] = {0, 2, 5, 6, 7};
        for (int j = 0; j < 5; j++) {
            group_stat(set, g, acc[j], false, &mean, &sd);
            md_ms(md, mean, sd);
        }
        fputc('\n', md);
    }
}

void analysis_opt_sections(FILE *md, const analysis_runset_t *set, const char *exp)
{
    equal_loss_table(md, set, exp);
    retrieval_table(md, set, exp);
}
