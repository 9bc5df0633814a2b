/* Analysis of run records: a reader that loads one run.h5 into memory, the loss
 * smoother shared with the trainer, step matching and equal-loss points between two
 * runs, and power-law scaling fits. The method and its choices: docs/analysis.md. */
#ifndef MOTSCALE_ANALYSIS_H
#define MOTSCALE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANALYSIS_MAX_MOD 8
#define ANALYSIS_NAME_LEN 64

/* Default smoothing window of training loss: the EMA time constant is this fraction
 * of the current step (see analysis_ema_t). 0 turns smoothing off. */
#define ANALYSIS_SMOOTH_DEFAULT 0.1

/* ---- the smoother --------------------------------------------------------------
 * A debiased exponential moving average in continuous step time whose time constant
 * is a fixed fraction of the current step: tau = window * step. Between two logged
 * points the input is taken as linear, and the average is integrated exactly over the
 * interval; the total weight is tracked and divided out (debiasing), so a constant
 * series is returned exactly and the first point is returned as is. A time constant
 * proportional to the step makes the smoother commute with stretching the step axis,
 * so the lag it adds cancels in step matching instead of biasing the slope.
 *
 * Online use (the trainer's train.stop_at_loss_of), one state per modality:
 *     analysis_ema_t e; analysis_ema_init(&e, ANALYSIS_SMOOTH_DEFAULT);
 *     each logged step: double s = analysis_ema_update(&e, step, loss);
 * A NaN input (no tokens of that modality in the step) leaves the state as it was
 * and returns the current smoothed value (NaN until the first finite input). */
typedef struct analysis_ema {
    double window;   /* tau / step */
    double m, w;     /* weighted sum of inputs, sum of weights */
    int64_t prev;    /* step of the last finite input */
    double x_prev;   /* that input */
    bool started;
} analysis_ema_t;

void analysis_ema_init(analysis_ema_t *e, double window);
double analysis_ema_update(analysis_ema_t *e, int64_t step, double x);

/* out[i] = smoothed x[i * stride] over steps step[0..n); out may alias nothing. */
void analysis_smooth(double *out, const int64_t *step, const double *x, size_t stride,
                     size_t n, double window);

/* ---- a run in memory ------------------------------------------------------------ */
typedef struct analysis_run {
    char path[4096];
    char *config;                     /* resolved INI text */
    char experiment[128], run_name[128], kind[16], tp_backend[32];
    int schema_version, world_size, dp, tp;
    double peak_flops_per_rank;
    int d_model, n_layers, n_heads, d_ff, seq_len, vocab_size, n_towers;
    int n_mod;
    char mod_names[ANALYSIS_MAX_MOD][ANALYSIS_NAME_LEN];
    int64_t params_total, params_active_per_token;
    double flops_per_token;
    /* /metrics, n rows */
    size_t n;
    int64_t *step, *tokens;
    double *flops, *wall_time, *loss, *step_time, *compute_time, *comm_time, *io_time;
    double *loss_by_mod;              /* n x n_mod, NaN where a modality had no tokens */
    /* /eval, n_eval rows (0 when the run has no held-out evaluations) */
    size_t n_eval;
    int64_t *eval_step;
    double *eval_flops, *eval_wall_time, *eval_loss, *eval_loss_by_mod;
} analysis_run_t;

/* Load path (read-only, SWMR when the writer is live). Rows are cut to the shortest
 * column, so a file being appended reads consistently. false with err filled
 * ("PATH: /metrics/loss: ...") on a missing or malformed file. */
bool analysis_run_load(const char *path, analysis_run_t *run, char *err, size_t errlen);
void analysis_run_free(analysis_run_t *run);

/* Value of `key` in `[section]` of the run's config text, or "" when absent. */
void analysis_config_get(const analysis_run_t *run, const char *section, const char *key,
                         char *out, size_t outlen);

/* For train.stop_at_loss_of: the final smoothed training loss (window
 * ANALYSIS_SMOOTH_DEFAULT, the same smoother as above) of the run at path, overall
 * and per modality. names[m] receives the modality names; a modality never seen
 * gets NaN. false with err filled on a bad file or an empty run. */
bool analysis_final_losses(const char *path, int *n_mod, char names[][ANALYSIS_NAME_LEN],
                           double *final_loss_by_mod, double *final_loss_overall, char *err,
                           size_t errlen);

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
void analysis_series_build(analysis_series_t *s, const analysis_run_t *run,
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
int analysis_comparability(const analysis_run_t *a, const analysis_run_t *b,
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

#endif
