/* Analysis of run records (loaded by the reader of runread.h, smoothed by smooth.h):
 * step matching and equal-loss points between two runs, power-law scaling fits, and
 * the compare and report outputs that the CLI verbs print. The method and its
 * choices: docs/analysis.md. */
#ifndef MOTSCALE_ANALYSIS_H
#define MOTSCALE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "motscale/runread.h"
#include "motscale/smooth.h"

#define ANALYSIS_MAX_MOD RUNREC_MAX_MOD
#define ANALYSIS_NAME_LEN RUNREC_NAME_LEN

/* ---- one loss series and step matching ------------------------------------------ */
typedef enum { ANALYSIS_TRAIN, ANALYSIS_EVAL } analysis_metric_t;

/* One loss curve: rows with a finite loss, their step, cumulative FLOPs and
 * wall-clock seconds. */
typedef struct analysis_series {
    size_t n;
    double *step, *flops, *wall, *loss;
} analysis_series_t;

/* Column col of run (-1: overall loss, m: modality m) on metric; training loss is
 * smoothed with `window`, held-out loss never. */
void analysis_series_build(analysis_series_t *s, const runrec_t *run,
                           analysis_metric_t metric, int col, double window);
void analysis_series_free(analysis_series_t *s);

/* The first point of the running-minimum envelope of y[0..n) at or below target,
 * as a fractional row index (row j - 1 + theta, linear in y between rows j - 1 and
 * j). Returns false when the envelope never gets there. */
bool analysis_first_crossing(const double *y, size_t n, double target, double *pos);
/* Column x at fractional row pos (linear between neighbours). */
double analysis_at(const double *x, size_t n, double pos);

/* Least squares line through the origin y = slope * x (gsl_fit_mul); r2 is the
 * centred 1 - SS_res / SS_tot (can be negative). NaN for both when n < 2. */
void analysis_fit_origin(const double *x, const double *y, size_t n, double *slope,
                         double *r2);

/* Step matching of a candidate against a baseline, on three axes. */
typedef struct analysis_match {
    size_t n_base;                    /* baseline points */
    size_t n_matched;                 /* of those, reached by the candidate */
    /* the matched pairs, n_matched each: baseline coordinate, candidate coordinate */
    double *base_step, *cand_step, *base_flops, *cand_flops, *base_wall, *cand_wall;
    double slope_step, r2_step, slope_flops, r2_flops, slope_wall, r2_wall;
    /* equal-loss point: where the candidate reaches the baseline's final loss */
    double target_loss;
    bool reached;
    double at_step, at_flops, at_wall;            /* candidate's, NaN unless reached */
    double base_step_final, base_flops_final, base_wall_final;
    double frac_step, frac_flops, frac_wall;      /* NaN unless reached */
} analysis_match_t;

void analysis_match(analysis_match_t *m, const analysis_series_t *base,
                    const analysis_series_t *cand);
void analysis_match_free(analysis_match_t *m);

/* Why two runs are not comparable (same data config, tokens per step, schedule
 * length, modalities): up to max lines of text; returns how many. */
int analysis_comparability(const runrec_t *a, const runrec_t *b,
                           char lines[][256], int max);

/* ---- scaling fits ---------------------------------------------------------------
 * L(C) = E + A (C / c0)^-alpha, fitted by nonlinear least squares (GSL nlinear,
 * trust region) with soft-L1 robust weights by iterative reweighting. c0 is the
 * geometric mean of the fitted C, where A is well conditioned; A at C = 1 is
 * A * c0^alpha. Standard errors from the weighted Jacobian at the solution. */
typedef struct analysis_powerlaw {
    bool ok;
    char why[160];                    /* when !ok */
    size_t n;
    double c0, E, A, alpha;
    double se_E, se_A, se_alpha;
    double rms;                       /* root mean square residual */
} analysis_powerlaw_t;

bool analysis_fit_power_law(analysis_powerlaw_t *fit, const double *C, const double *L,
                            size_t n);
double analysis_power_law_eval(const analysis_powerlaw_t *fit, double C);
/* Compute multiplier of `other` relative to `ref` at budget C: the C' at which ref's
 * fitted loss equals other's fitted loss at C, divided by C (> 1: ref needs more
 * compute). NaN when ref's fit never reaches that loss. */
double analysis_compute_multiplier(const analysis_powerlaw_t *ref,
                                   const analysis_powerlaw_t *other, double C);

/* ---- what the verbs print ----------------------------------------------------------- */

/* `motscale compare`: comparability warnings on stderr, then the step-matching table
 * (or, with json, every number as JSON) of candidate against base on out. */
void analysis_compare_print(FILE *out, const runrec_t *base, const runrec_t *cand,
                            analysis_metric_t metric, double window, bool json);

/* `motscale report`: every run.h5 under dir into out/report.md and its figures.
 * Returns the exit status (0 done, 1 figures or files could not be written, 2 no
 * readable run file). */
int analysis_report_write(const char *dir, const char *out);

#endif
