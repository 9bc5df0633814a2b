/* `motscale compare BASELINE.h5 CANDIDATE.h5`: step matching and equal-loss points
 * of a candidate against a baseline, overall and per modality, as a table or JSON.
 * The pairing and printing here are reused by `motscale report`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"
#include "pair.h"

void pair_compute(pair_t *p, const runrec_t *base, const runrec_t *cand,
                  analysis_metric_t metric, double window)
{
    memset(p, 0, sizeof *p);
    p->base = base;
    p->cand = cand;
    p->metric = metric;
    p->window = window;
    p->n_warn = analysis_comparability(base, cand, p->warn, PAIR_MAX_WARN);
    for (int col = -1; col < base->n_mod; col++) {
        int ccol = -1;
        if (col >= 0) {
            for (int k = 0; k < cand->n_mod; k++)
                if (!strcmp(cand->mod_names[k], base->mod_names[col]))
                    ccol = k;
            if (ccol < 0) {
                if (p->n_warn < PAIR_MAX_WARN)
                    snprintf(p->warn[p->n_warn++], 256,
                             "modality '%s' is not in the candidate: not compared",
                             base->mod_names[col]);
                continue;
            }
        }
        pair_series_t *s = &p->series[p->n_series++];
        snprintf(s->name, sizeof s->name, "%s", col < 0 ? "overall" : base->mod_names[col]);
        analysis_series_build(&s->base, base, metric, col, window);
        analysis_series_build(&s->cand, cand, metric, ccol, window);
        analysis_match(&s->match, &s->base, &s->cand);
    }
}

void pair_free(pair_t *p)
{
    for (int i = 0; i < p->n_series; i++) {
        analysis_series_free(&p->series[i].base);
        analysis_series_free(&p->series[i].cand);
        analysis_match_free(&p->series[i].match);
    }
    p->n_series = 0;
}

const char *pair_metric_name(analysis_metric_t m)
{
    return m == ANALYSIS_TRAIN ? "train" : "eval";
}

/* "41.2%" or "-" for a fraction; "0.412 (0.998)" for a slope and its R^2. */
static void fmt_pct(char *out, size_t len, double v)
{
    if (isfinite(v))
        snprintf(out, len, "%.1f%%", 100 * v);
    else
        snprintf(out, len, "-");
}

static void fmt_slope(char *out, size_t len, double s, double r2)
{
    if (isfinite(s))
        snprintf(out, len, "%.3f (%.3f)", s, r2);
    else
        snprintf(out, len, "-");
}

static void run_line(FILE *out, const char *role, const runrec_t *r)
{
    fprintf(out, "%-10s %s\n           %s '%s', d_model %d x %d layers, %lld params, %lld steps, "
                 "%.3g FLOPs, %.1f s\n",
            role, r->path, r->kind, r->run_name, r->d_model, r->n_layers,
            (long long)r->params_total, (long long)r->step[r->n - 1], r->flops[r->n - 1],
            r->wall_time[r->n - 1]);
}

void pair_print_headlines(FILE *out, const pair_t *p)
{
    for (int i = 0; i < p->n_series; i++) {
        const analysis_match_t *m = &p->series[i].match;
        const char *what = p->metric == ANALYSIS_TRAIN ? "training" : "held-out";
        if (m->reached)
            fprintf(out,
                    "headline: %s reaches %s's final %s %s loss (%.4f) with %.1f%% of the "
                    "FLOPs, %.1f%% of the wall-clock\n",
                    p->cand->kind, p->base->kind, p->series[i].name, what, m->target_loss,
                    100 * m->frac_flops, 100 * m->frac_wall);
        else
            fprintf(out, "headline: %s does not reach %s's final %s %s loss (%.4f)\n",
                    p->cand->kind, p->base->kind, p->series[i].name, what, m->target_loss);
    }
}

void pair_print_table(FILE *out, const pair_t *p)
{
    run_line(out, "baseline:", p->base);
    run_line(out, "candidate:", p->cand);
    if (p->metric == ANALYSIS_TRAIN && p->window > 0)
        fprintf(out, "metric:    training loss, debiased EMA with time constant %g x step\n",
                p->window);
    else
        fprintf(out, "metric:    %s loss, not smoothed\n",
                p->metric == ANALYSIS_TRAIN ? "training" : "held-out");
    for (int i = 0; i < p->n_warn; i++)
        fprintf(out, "warning:   %s\n", p->warn[i]);
    fprintf(out, "\nstep matching: slope through the origin of candidate vs baseline (R^2)\n");
    fprintf(out, "%-10s %9s  %-16s %-16s %-16s\n", "series", "matched", "steps", "FLOPs",
            "wall-clock");
    for (int i = 0; i < p->n_series; i++) {
        const analysis_match_t *m = &p->series[i].match;
        char a[32], b[32], c[32], mt[32];
        fmt_slope(a, sizeof a, m->slope_step, m->r2_step);
        fmt_slope(b, sizeof b, m->slope_flops, m->r2_flops);
        fmt_slope(c, sizeof c, m->slope_wall, m->r2_wall);
        snprintf(mt, sizeof mt, "%zu/%zu", m->n_matched, m->n_base);
        fprintf(out, "%-10s %9s  %-16s %-16s %-16s\n", p->series[i].name, mt, a, b, c);
    }
    fprintf(out, "\nequal loss: what the candidate needs to reach the baseline's final loss, "
                 "as a fraction of the baseline's\n");
    fprintf(out, "%-10s %-12s %-8s %-8s %-10s\n", "series", "target loss", "steps", "FLOPs",
            "wall-clock");
    for (int i = 0; i < p->n_series; i++) {
        const analysis_match_t *m = &p->series[i].match;
        if (!m->reached) {
            fprintf(out, "%-10s %-12.4f not reached\n", p->series[i].name, m->target_loss);
            continue;
        }
        char a[32], b[32], c[32];
        fmt_pct(a, sizeof a, m->frac_step);
        fmt_pct(b, sizeof b, m->frac_flops);
        fmt_pct(c, sizeof c, m->frac_wall);
        fprintf(out, "%-10s %-12.4f %-8s %-8s %-10s\n", p->series[i].name, m->target_loss, a, b,
                c);
    }
    fputc('\n', out);
    pair_print_headlines(out, p);
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

static void json_array(FILE *out, const double *v, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_number(out, v[i]);
    }
    fputc(']', out);
}

static void json_run(FILE *out, const runrec_t *r)
{
    fprintf(out, "{\"path\": ");
    json_string(out, r->path);
    fprintf(out, ", \"run_name\": ");
    json_string(out, r->run_name);
    fprintf(out, ", \"experiment\": ");
    json_string(out, r->experiment);
    fprintf(out, ", \"kind\": ");
    json_string(out, r->kind);
    fprintf(out,
            ", \"d_model\": %d, \"n_layers\": %d, \"params_total\": %lld, \"steps\": %lld, "
            "\"flops\": ",
            r->d_model, r->n_layers, (long long)r->params_total, (long long)r->step[r->n - 1]);
    json_number(out, r->flops[r->n - 1]);
    fprintf(out, ", \"wall_clock_s\": ");
    json_number(out, r->wall_time[r->n - 1]);
    fputc('}', out);
}

static void json_axis(FILE *out, const char *name, double slope, double r2, bool comma)
{
    fprintf(out, "\"%s\": {\"slope\": ", name);
    json_number(out, slope);
    fprintf(out, ", \"r2\": ");
    json_number(out, r2);
    fprintf(out, "}%s", comma ? ", " : "");
}

void pair_print_json(FILE *out, const pair_t *p)
{
    fprintf(out, "{\n  \"baseline\": ");
    json_run(out, p->base);
    fprintf(out, ",\n  \"candidate\": ");
    json_run(out, p->cand);
    fprintf(out, ",\n  \"metric\": \"%s\",\n  \"smooth_window\": ", pair_metric_name(p->metric));
    json_number(out, p->metric == ANALYSIS_TRAIN ? p->window : 0);
    fprintf(out, ",\n  \"warnings\": [");
    for (int i = 0; i < p->n_warn; i++) {
        if (i)
            fputs(", ", out);
        json_string(out, p->warn[i]);
    }
    fprintf(out, "],\n  \"series\": [");
    for (int i = 0; i < p->n_series; i++) {
        const analysis_match_t *m = &p->series[i].match;
        fprintf(out, "%s\n    {\"name\": ", i ? "," : "");
        json_string(out, p->series[i].name);
        fprintf(out, ", \"n_baseline\": %zu, \"n_matched\": %zu,\n     \"step_matching\": {",
                m->n_base, m->n_matched);
        json_axis(out, "steps", m->slope_step, m->r2_step, true);
        json_axis(out, "flops", m->slope_flops, m->r2_flops, true);
        json_axis(out, "wall_clock", m->slope_wall, m->r2_wall, false);
        fprintf(out, "},\n     \"equal_loss\": {\"target_loss\": ");
        json_number(out, m->target_loss);
        fprintf(out, ", \"reached\": %s", m->reached ? "true" : "false");
        const char *k[] = {"steps", "flops", "wall_clock_s", "fraction_steps",
                           "fraction_flops", "fraction_wall_clock", "baseline_steps",
                           "baseline_flops", "baseline_wall_clock_s"};
        double v[] = {m->at_step,         m->at_flops,         m->at_wall,
                      m->frac_step,       m->frac_flops,       m->frac_wall,
                      m->base_step_final, m->base_flops_final, m->base_wall_final};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++) {
            fprintf(out, ", \"%s\": ", k[j]);
            json_number(out, v[j]);
        }
        fprintf(out, "},\n     \"curve\": {\"baseline_step\": ");
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
    fprintf(out, "\n  ]\n}\n");
}

void analysis_compare_print(FILE *out, const runrec_t *base, const runrec_t *cand,
                            analysis_metric_t metric, double window, bool json)
{
    pair_t p;
    pair_compute(&p, base, cand, metric, window);
    for (int i = 0; i < p.n_warn; i++)
        warnf("runs may not be comparable: %s", p.warn[i]);
    if (json)
        pair_print_json(out, &p);
    else
        pair_print_table(out, &p);
    pair_free(&p);
}
