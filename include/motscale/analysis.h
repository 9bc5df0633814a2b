/* Analysis of run records (loaded by the reader of runread.h, smoothed by smooth.h):
 * step matching and equal-loss points between runs, intervals on every number (over
 * seeds, or a bootstrap of one seed's loss curves), sets of runs grouped into
 * configurations, the paired step-time ratio, checked scaling fits, and the compare
 * and report outputs that the CLI verbs print. The method and its choices:
 * docs/analysis.md. */
#ifndef MOTSCALE_ANALYSIS_H
#define MOTSCALE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <gsl/gsl_rng.h>

#include "motscale/runread.h"
#include "motscale/smooth.h"

#define ANALYSIS_MAX_MOD RUNREC_MAX_MOD
#define ANALYSIS_NAME_LEN RUNREC_NAME_LEN

/* ---- one loss series and step matching (analysis/match.c) ------------------------ */
typedef enum { ANALYSIS_TRAIN, ANALYSIS_EVAL } analysis_metric_t;

/* One loss curve: rows with a finite loss, their step, cumulative FLOPs and
 * wall-clock seconds, the logged loss (raw) and the smoothed one (loss). */
typedef struct analysis_series {
    size_t n;
    double *step, *flops, *wall, *raw, *loss;
} analysis_series_t;

/* Column col of run (-1: overall loss, m: modality m) on metric; training loss is
 * smoothed with `window`, held-out loss never. */
void analysis_series_build(analysis_series_t *s, const runrec_t *run,
                           analysis_metric_t metric, int col, double window);
/* loss = raw smoothed with window (smooth.h; 0: a copy). */
void analysis_series_smooth(analysis_series_t *s, double window);
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
    bool *matched;                    /* n_base: baseline point i was reached */
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

/* The numbers of a match that carry intervals, in this order everywhere. */
enum analysis_stat {
    ANALYSIS_SLOPE_STEP, ANALYSIS_SLOPE_FLOPS, ANALYSIS_SLOPE_WALL,
    ANALYSIS_FRAC_STEP, ANALYSIS_FRAC_FLOPS, ANALYSIS_FRAC_WALL,
    ANALYSIS_N_STATS
};
void analysis_match_values(const analysis_match_t *m, double v[ANALYSIS_N_STATS]);

/* ---- the Wilcoxon signed-rank test (analysis/wilcoxon.c) -------------------------- */

/* Of n paired differences d (zeros and non-finite values dropped): n nonzero, the
 * rank sums of the positive and the negative ones (average ranks for ties), and the
 * normal approximation's z (tie-corrected variance, continuity correction 1/2) and
 * two-sided p. NaN where nothing is left (p also when every |d| ties at n = 1). */
typedef struct analysis_wilcoxon {
    size_t n;
    double w_plus, w_minus, z, p;
} analysis_wilcoxon_t;
void analysis_wilcoxon(analysis_wilcoxon_t *w, const double *d, size_t n);

/* ---- intervals (analysis/stats.c, analysis/boot.c) -------------------------------- */
#define ANALYSIS_LEVEL 0.95          /* every interval */
#define ANALYSIS_RESAMPLES 1000      /* one-seed bootstrap replicates by default */
#define ANALYSIS_TREND_KNOTS 8       /* most interior knots of a loss curve's trend */
#define ANALYSIS_POOL_FROM 0.1       /* residuals resampled from this fraction of the run on */
#define ANALYSIS_AR_MAX 8            /* largest order of the prewhitening filter */
#define ANALYSIS_AR_BURN 100         /* rows a recoloured replicate runs in before use */
#define ANALYSIS_METHOD_LEN 256
/* The smoothing sensitivity is flagged when the step slope at smooth 0, W and 2W spans
 * more than half its interval and more than this fraction of the slope. */
#define ANALYSIS_SENS_MIN 0.01

/* A number with its interval; lo/hi NaN where there is none, method says how. */
typedef struct analysis_interval {
    double value, lo, hi;
    char method[ANALYSIS_METHOD_LEN];
} analysis_interval_t;

void analysis_interval_set(analysis_interval_t *iv, double value, double lo, double hi,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Median of the finite values of x[0..n) (NaN when none). */
double analysis_median(const double *x, size_t n);
/* Mean of v[0..n), mean +- t(1 - (1 - level)/2, n - 1) sd / sqrt(n); none for n < 2. */
void analysis_t_interval(analysis_interval_t *iv, const double *v, size_t n, double level);
/* Percentile interval of n replicates (reordered in place); a NaN replicate counts as
 * above every number ("not reached"), so hi is NaN when they pass the upper
 * quantile. Returns the number of finite replicates. */
size_t analysis_percentile(double *rep, size_t n, double level, double *lo, double *hi);
/* Median of v[0..n) (sorted in place) and its distribution-free interval from the
 * sign test: [v_(k), v_(n+1-k)], the largest k whose coverage is >= level. */
void analysis_sign_interval(analysis_interval_t *iv, double *v, size_t n, double level);
/* Moving-block length for x[0..n): Politis & White (2004) with the correction of
 * Patton, Politis & White (2009), in [1, min(3 sqrt(n), n / 3)]. */
size_t analysis_block_length(const double *x, size_t n);
/* out[0..n_out) from blocks of `block` consecutive pool values, each starting at a
 * uniformly drawn position. */
void analysis_block_resample(gsl_rng *rng, double *out, size_t n_out, const double *pool,
                             size_t n_pool, size_t block);
/* Least-squares cubic B-spline of y against ln(step) with equally spaced interior
 * knots, their number (1 .. max_knots) chosen by BIC. Returns it, or -1 when the
 * curve is too short for one knot (seven rows). */
int analysis_trend(double *trend, const double *step, const double *y, size_t n, int max_knots);

/* A loss curve's trend and the residuals the bootstrap resamples. */
typedef struct analysis_noise {
    bool ok;
    int knots;                        /* interior knots of the trend */
    double *trend;                    /* n rows of the series */
    double *pool;                     /* innovations of the centred residuals from
                                       * ANALYSIS_POOL_FROM on, after the AR filter */
    size_t n_pool, block;             /* block: the moving-block length */
    int ar_p;                         /* order of the prewhitening AR filter (0: none) */
    double phi[ANALYSIS_AR_MAX + 1];  /* its coefficients phi[1..ar_p] */
} analysis_noise_t;

bool analysis_noise_fit(analysis_noise_t *nm, const analysis_series_t *s);
void analysis_noise_free(analysis_noise_t *nm);
/* n_rep replicates of the match statistics, rep[r * ANALYSIS_N_STATS + stat]: both
 * curves rebuilt as trend + recoloured block-resampled innovations, smoothed with
 * window and matched; the generator (MT19937) seeded with seed. */
void analysis_pair_bootstrap(double *rep, size_t n_rep, const analysis_series_t *base,
                             const analysis_series_t *cand, const analysis_noise_t *nb,
                             const analysis_noise_t *nc, double window, unsigned long seed);

/* ---- sets of runs (analysis/runset.c) ----------------------------------------------- */

/* Keys that say where a run went and how it was looked after, not what it trained
 * (NULL-terminated): with run.seed, left out of a run's configuration identity. */
extern const char *const analysis_bookkeeping_keys[];

typedef struct analysis_run {
    runrec_t r;
    char seed[32];                    /* run.seed */
    char label[96];                   /* dense, mot, "speech alone", "towers ..." */
    char size[32];                    /* model.size, or d<d_model>x<n_layers> */
    char *identity;                   /* the configuration but bookkeeping and seed */
    double load, steal;               /* median load average, mean CPU steal (NaN: not recorded) */
    double med_step;                  /* median step time after the first logged row */
} analysis_run_t;

/* Runs whose configurations differ only in run.seed (and bookkeeping). */
typedef struct analysis_group {
    size_t n;
    size_t *run;                      /* indices into the set's runs, in load order */
} analysis_group_t;

typedef struct analysis_runset {
    analysis_run_t *runs;
    size_t n_runs, cap;
    analysis_group_t *groups;
    size_t n_groups;
    size_t *group_of;                 /* n_runs: the group of each run */
    char (*skipped)[1100];            /* unreadable files under a folder, with why */
    size_t n_skipped;
} analysis_runset_t;

/* The files given (false with err on the first unreadable one), or every run.h5 under
 * dir, a linked one included (unreadable ones skipped and listed; false only when
 * the folder cannot be walked). Both group the runs. */
bool analysis_runset_load_files(analysis_runset_t *set, char *const *paths, size_t n, char *err,
                                size_t errlen);
bool analysis_runset_load_dir(analysis_runset_t *set, const char *dir, char *err, size_t errlen);
void analysis_runset_group(analysis_runset_t *set);
void analysis_runset_free(analysis_runset_t *set);
/* Does the run's configuration have "section.key=value"? */
bool analysis_run_has(const analysis_run_t *ar, const char *key_value);
/* Among the groups whose configuration has key_value, the one whose configuration
 * differs least from group g's (analysis_comparability); -1 when there is none. */
long analysis_closest_baseline(const analysis_runset_t *set, size_t g, const char *key_value,
                               const char *const *compared);
/* What a model kind and grouping is called: the kind, or for towers the modalities
 * with a tower of their own, "speech alone"; with experts "moe-4x" (kind moe) or
 * "mot + text moe-4x" (model.moe_towers = text); experts NULL or "" reads 4. */
void analysis_label_of(char *out, size_t len, const char *kind, const char *towers, const char *moe_towers,
                       const char *experts);

/* Why two runs are not a fair comparison: experiment, size, any configuration key
 * but bookkeeping, run.seed and the compared keys (NULL-terminated "section.key"
 * list, may be NULL), tokens per step, modalities. Up to max lines; returns how many. */
int analysis_comparability(const runrec_t *a, const runrec_t *b, const char *const *compared,
                           char lines[][256], int max);

/* ---- scaling fits (analysis/fit.c) -------------------------------------------------
 * L(C) = E + A (C / c0)^-alpha with E free or held fixed, and L(N, D) = E + A (N / n0)^-a
 * + B (D / d0)^-b (Chinchilla approach 3; par[2] = a, par[4] = b), c0, n0, d0 the
 * geometric means of the fitted points, where the amplitudes are well conditioned.
 * Huber loss by iterative reweighting of GSL's trust-region least squares, from
 * several starts; percentile intervals from a bootstrap of the fitted points. */
enum { ANALYSIS_FIT_POWER, ANALYSIS_FIT_POWER_EFIXED, ANALYSIS_FIT_ND };
#define ANALYSIS_FIT_RESAMPLES 200     /* bootstrap refits per fit */
#define ANALYSIS_FIT_MIN_EXPONENT 0.05 /* below it a fit is degenerate */

typedef struct analysis_fit {
    bool ok;
    char why[200];                    /* when !ok */
    int model;
    size_t n, n_par;                  /* points; parameters reported (3 or 5) */
    int starts;                       /* starts tried */
    double c0, d0;                    /* scales of C (or N) and of D */
    double par[5];                    /* E, A, alpha [, B, beta] */
    analysis_interval_t iv[5];        /* their intervals */
    double rms, delta;                /* root mean square residual; Huber threshold */
    double *boot;                     /* n_boot x 5 replicate parameters (NaN: failed) */
    size_t n_boot;
    bool degenerate;                  /* E < 0, an exponent < ANALYSIS_FIT_MIN_EXPONENT, or
                                       * an interval wider than its value */
    char degenerate_why[200];
} analysis_fit_t;

/* E_fixed NaN: E is fitted. */
bool analysis_fit_power_law(analysis_fit_t *f, const double *C, const double *L, size_t n,
                            double E_fixed, size_t resamples, unsigned long seed);
bool analysis_fit_nd(analysis_fit_t *f, const double *N, const double *D, const double *L,
                     size_t n, size_t resamples, unsigned long seed);
void analysis_fit_free(analysis_fit_t *f);
/* The fit at x = C (or N) and D, with parameters par (NULL: the fit's). */
double analysis_fit_eval(const analysis_fit_t *f, const double *par, double x, double D);
/* Of two power laws: the compute at which ref's fit reaches other's fitted loss at C,
 * over C (< 1: ref needs less), with the interval of paired bootstrap replicates. NaN,
 * and the reason as the method, when either fit is degenerate or ref never gets there. */
void analysis_compute_multiplier(analysis_interval_t *iv, const analysis_fit_t *ref,
                                 const analysis_fit_t *other, double C);

/* ---- paired step time (analysis/steptime.c; the verb: src/cli/cmd_steptime.c) ------ */

typedef struct analysis_steptime {
    char a[1024], b[1024];            /* the two configuration files */
    char a_label[96], b_label[96];    /* what they are (analysis_label_of) */
    char a_size[32], b_size[32];
    size_t pairs, steps, skip;        /* bursts of each, steps a burst, steps left out */
    double med_a, med_b;              /* median of the per-burst median step times */
    double load;                      /* median load average over all bursts */
    analysis_interval_t ratio;        /* B's step time / A's: median of paired ratios */
} analysis_steptime_t;

/* From per-burst median step times a[i], b[i] (burst pair i): ratios b/a, their
 * median and sign-test interval. */
void analysis_steptime_ratio(analysis_steptime_t *st, const double *a, const double *b,
                             size_t pairs);
/* The result as INI text (`motscale steptime --out`), read back by compare --steptime;
 * as JSON. */
void analysis_steptime_write(FILE *out, const analysis_steptime_t *st);
bool analysis_steptime_read(analysis_steptime_t *st, const char *path, char *err, size_t errlen);
void analysis_steptime_json(FILE *out, const analysis_steptime_t *st);

/* ---- comparisons with intervals (analysis/compare.c) -------------------------------- */

typedef struct analysis_opts {
    analysis_metric_t metric;
    double window;                    /* training-loss smoother (0: off) */
    size_t resamples;                 /* one-seed bootstrap replicates */
    unsigned long seed;               /* of the bootstrap's generator */
    const char *const *compared;      /* keys the comparison varies; NULL-terminated */
    const analysis_steptime_t *steptime; /* a paired step-time ratio, or NULL */
} analysis_opts_t;

#define ANALYSIS_MAX_WARN 24
/* A pair's wall-clock is flagged when the median load averages of its runs differ by
 * more than max(LOAD_ABS, LOAD_REL x the larger), or their mean CPU steal by more than
 * STEAL_ABS: on a shared machine that is enough to move step times by tens of percent. */
#define ANALYSIS_LOAD_ABS 0.5
#define ANALYSIS_LOAD_REL 0.25
#define ANALYSIS_STEAL_ABS 0.02

/* One baseline/candidate run pair, series by series. */
typedef struct analysis_pairrun {
    size_t base, cand;                /* run indices in the set */
    analysis_series_t sb[ANALYSIS_MAX_MOD + 1], sc[ANALYSIS_MAX_MOD + 1];
    analysis_match_t m[ANALYSIS_MAX_MOD + 1];
} analysis_pairrun_t;

typedef struct analysis_cmp_series {
    char name[ANALYSIS_NAME_LEN];     /* "overall" or the modality */
    int col_b, col_c;                 /* its column in baseline and candidate runs */
    analysis_interval_t v[ANALYSIS_N_STATS];
    analysis_interval_t wall_paired;  /* FLOPs slope x paired step-time ratio */
    double r2[3];                     /* R^2 of the step, FLOPs, wall-clock fits (mean) */
    double target_loss;               /* baseline's final loss (mean over pairs) */
    size_t n_base, n_matched;         /* baseline points and those reached (first pair) */
    size_t n_reached;                 /* pairs in which the candidate reached the target */
    double sens_window[3], sens[3];   /* step slope at smooth 0, W, 2W (mean over pairs) */
    bool sensitive;                   /* their spread exceeds the interval's half-width */
    int knots[2], ar[2];              /* one seed: the bootstrap's trend knots, AR orders, */
    size_t block[2];                  /* and block lengths (baseline, candidate) */
} analysis_cmp_series_t;

typedef struct analysis_comparison {
    size_t base_group, cand_group;
    size_t n_pairs;
    analysis_pairrun_t *pairs;
    char pairing[96];                 /* how seeds were paired */
    bool seeds;                       /* intervals over seeds (else the bootstrap) */
    int n_series;
    analysis_cmp_series_t series[ANALYSIS_MAX_MOD + 1];
    bool load_differs;                /* a pair's runs saw different load */
    bool steptime_used;               /* wall_paired holds numbers */
    int n_warn;
    char warn[ANALYSIS_MAX_WARN][256];
} analysis_comparison_t;

/* Candidate group cand against baseline group base of set. */
void analysis_compare(analysis_comparison_t *c, const analysis_runset_t *set, size_t base,
                      size_t cand, const analysis_opts_t *o);
void analysis_comparison_free(analysis_comparison_t *c);
/* "mot, xs (d64 x 2), 3 seeds" */
void analysis_group_title(char *out, size_t len, const analysis_runset_t *set, size_t group);

/* `motscale compare`: the tables (a row per candidate and series), or every number as
 * JSON, and the headline lines. */
void analysis_compare_table(FILE *out, const analysis_runset_t *set,
                            const analysis_comparison_t *c, size_t n, const analysis_opts_t *o);
void analysis_compare_json(FILE *out, const analysis_runset_t *set,
                           const analysis_comparison_t *c, size_t n, const analysis_opts_t *o);
void analysis_compare_headlines(FILE *out, const analysis_runset_t *set,
                                const analysis_comparison_t *c, size_t n,
                                const analysis_opts_t *o);

/* `motscale report`: every run.h5 under dir into out/report.md and its figures.
 * Returns the exit status (0 done, 1 figures or files could not be written, 2 no
 * readable run file). */
int analysis_report_write(const char *dir, const char *out, const analysis_opts_t *o);

/* ---- OPT (analysis/opt_report.c) -----------------------------------------------------
 * The report's OPT tables for experiment exp (runs of model.kind = opt): per-task
 * equal-loss fractions of mot against shared, and retrieval with the ablations. */
void analysis_opt_sections(FILE *md, const analysis_runset_t *set, const char *exp);

#endif
