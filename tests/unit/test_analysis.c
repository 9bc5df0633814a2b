/* Analysis with known answers: step matching of a curve stretched in steps, wall-clock
 * fractions from step-time ratios, "not reached", the smoother on a constant, a
 * power law recovered from noisy points, and the same through run files written here
 * with the HDF5 C API in the run-record layout. */
#include "testutil.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/analysis.h"
#include "runfile.h"

/* TOL_SLOPE_REL, TOL_FIT_REL, TOL_FIT_ND_* and TOL_EXACT_REL: tests/tolerances.env */
#define STRETCH 0.4
#define STEP_TIME_BASE 1.0
#define STEP_TIME_CAND 1.5
#define N_STEPS 2000
#define LOG_EVERY 10
#define N_ROWS (N_STEPS / LOG_EVERY)
#define TOKENS_PER_STEP 4096
#define FLOPS_PER_STEP 1e9

/* Baseline loss of modality m (0 text, 1 image) at step t: E + A (t + 50)^-alpha. */
static double base_loss(int m, double t)
{
    static const double E[2] = {2.0, 3.5}, A[2] = {40.0, 25.0}, al[2] = {0.55, 0.4};
    return E[m] + A[m] * pow(t + 50.0, -al[m]);
}

/* A curve in the layout of a run: rows at steps LOG_EVERY .. N_STEPS. */
typedef struct curve {
    int64_t step[N_ROWS], tokens[N_ROWS], tokens_by_mod[N_ROWS * 2];
    double flops[N_ROWS], wall[N_ROWS], loss[N_ROWS], loss_by_modality[N_ROWS * 2];
    double step_time[N_ROWS], compute[N_ROWS], comm[N_ROWS], io[N_ROWS];
} curve_t;

/* stretch: the curve is the baseline's at step t / stretch; offset added to every
 * loss (a candidate that never catches up); the image modality has no tokens in
 * every 7th row (NaN loss), as a sparse modality would. The overall loss is kept the
 * plain mean so that it too is exactly the stretched baseline curve. */
static void make_curve(curve_t *c, double stretch, double offset, double step_time)
{
    for (int i = 0; i < N_ROWS; i++) {
        int64_t t = (int64_t)(i + 1) * LOG_EVERY;
        c->step[i] = t;
        c->tokens[i] = t * TOKENS_PER_STEP;
        c->flops[i] = (double)t * FLOPS_PER_STEP;
        c->wall[i] = (double)t * step_time;
        c->step_time[i] = step_time;
        c->compute[i] = 0.7 * step_time;
        c->comm[i] = 0.2 * step_time;
        c->io[i] = 0.05 * step_time;
        double lt = base_loss(0, (double)t / stretch) + offset;
        double li = base_loss(1, (double)t / stretch) + offset;
        bool no_image = i % 7 == 3;
        c->loss_by_modality[2 * i] = lt;
        c->loss_by_modality[2 * i + 1] = no_image ? NAN : li;
        c->tokens_by_mod[2 * i] = no_image ? TOKENS_PER_STEP : TOKENS_PER_STEP / 2;
        c->tokens_by_mod[2 * i + 1] = no_image ? 0 : TOKENS_PER_STEP / 2;
        c->loss[i] = 0.5 * (lt + li);
    }
}

/* A run in memory pointing at a curve's arrays (nothing to free). */
static void run_from_curve(runrec_t *r, curve_t *c)
{
    memset(r, 0, sizeof *r);
    r->n_mod = 2;
    strcpy(r->mod_names[0], "text");
    strcpy(r->mod_names[1], "image");
    r->n = N_ROWS;
    r->step = c->step;
    r->tokens = c->tokens;
    r->flops = c->flops;
    r->wall_time = c->wall;
    r->loss = c->loss;
    r->loss_by_modality = c->loss_by_modality;
    r->step_time = c->step_time;
}

static void match_runs(analysis_match_t *m, const runrec_t *b, const runrec_t *c,
                       int col)
{
    analysis_series_t sb, sc;
    analysis_series_build(&sb, b, ANALYSIS_TRAIN, col, SMOOTH_DEFAULT);
    analysis_series_build(&sc, c, ANALYSIS_TRAIN, col, SMOOTH_DEFAULT);
    analysis_match(m, &sb, &sc);
    analysis_series_free(&sb);
    analysis_series_free(&sc);
}

static void check_stretched(const runrec_t *b, const runrec_t *c)
{
    for (int col = -1; col < 2; col++) {
        analysis_match_t m;
        match_runs(&m, b, c, col);
        print_message("# col %d: slope %.5f (R^2 %.6f), wall slope %.5f, equal loss at %.5f\n",
                      col, m.slope_step, m.r2_step, m.slope_wall, m.frac_step);
        assert_true(m.n_matched > N_ROWS / 2);
        assert_close(m.slope_step, STRETCH, TOL_SLOPE_REL, 0);
        assert_true(m.r2_step > 0.999);
        /* Same FLOPs per step: the FLOPs axis is the step axis. */
        assert_close(m.slope_flops, m.slope_step, TOL_EXACT_REL, 0);
        /* Wall-clock is linear in steps in both runs: its fraction is the step
         * fraction times the step-time ratio, exactly. */
        assert_close(m.slope_wall, m.slope_step * STEP_TIME_CAND / STEP_TIME_BASE,
                     TOL_EXACT_REL, 0);
        assert_true(m.reached);
        assert_close(m.frac_step, STRETCH, TOL_SLOPE_REL, 0);
        assert_close(m.frac_flops, m.frac_step, TOL_EXACT_REL, 0);
        assert_close(m.frac_wall, m.frac_step * STEP_TIME_CAND / STEP_TIME_BASE,
                     TOL_EXACT_REL, 0);
        analysis_match_free(&m);
    }
}

static void test_stretched_curve_gives_slope(void **state)
{
    (void)state;
    static curve_t cb, cc;
    make_curve(&cb, 1.0, 0, STEP_TIME_BASE);
    make_curve(&cc, STRETCH, 0, STEP_TIME_CAND);
    runrec_t b, c;
    run_from_curve(&b, &cb);
    run_from_curve(&c, &cc);
    check_stretched(&b, &c);
}

static void test_never_reached_is_not_a_number(void **state)
{
    (void)state;
    static curve_t cb, cc;
    make_curve(&cb, 1.0, 0, STEP_TIME_BASE);
    /* stretched (faster) but 0.5 nats worse: reaches the baseline's early losses,
     * never its final one */
    make_curve(&cc, STRETCH, 0.5, STEP_TIME_CAND);
    runrec_t b, c;
    run_from_curve(&b, &cb);
    run_from_curve(&c, &cc);
    for (int col = -1; col < 2; col++) {
        analysis_match_t m;
        match_runs(&m, &b, &c, col);
        assert_false(m.reached);
        assert_true(isnan(m.frac_step) && isnan(m.frac_flops) && isnan(m.frac_wall));
        assert_true(isnan(m.at_step) && isnan(m.at_flops) && isnan(m.at_wall));
        assert_true(m.n_matched < m.n_base);
        analysis_match_free(&m);
    }
}

static void test_crossing_interpolates_on_envelope(void **state)
{
    (void)state;
    /* y goes 5, 3, 4 (noise back up), 1: target 2 is crossed between rows 1 and 3
     * on the envelope (3 -> 1), half way: position 1 + ... the envelope at row 2
     * is 3, so the crossing is on the segment ending at row 3, from 3 down to 1. */
    const double y[] = {5, 3, 4, 1};
    double pos;
    assert_true(analysis_first_crossing(y, 4, 2.0, &pos));
    assert_close(pos, 2.5, TOL_EXACT_REL, 0);
    assert_true(analysis_first_crossing(y, 4, 4.0, &pos));
    assert_close(pos, 0.5, TOL_EXACT_REL, 0);
    assert_true(analysis_first_crossing(y, 4, 9.0, &pos));
    assert_close(pos, 0.0, 0, 0);
    assert_false(analysis_first_crossing(y, 4, 0.5, &pos));
    const double x[] = {10, 20, 30, 40};
    assert_close(analysis_at(x, 4, 2.5), 35.0, TOL_EXACT_REL, 0);
}

static void test_ema_exact_on_constant(void **state)
{
    (void)state;
    const int64_t steps[] = {0, 1, 2, 5, 10, 11, 50, 100, 1000, 1001, 5000};
    const double c = 2.718281828459045;
    for (int wi = 0; wi < 3; wi++) {
        double window = (double[]){0.0, SMOOTH_DEFAULT, 0.5}[wi];
        smooth_ema_t e;
        smooth_ema_init(&e, window);
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
            double s = smooth_ema_update(&e, steps[i], c);
            /* a few roundings in m and w: a few ulps */
            assert_close(s, c, 4 * 2.2e-16, 0);
            /* a modality absent from a step leaves the value where it was */
            assert_close(smooth_ema_update(&e, steps[i], NAN), s, 0, 0);
        }
    }
    /* the first input comes back as is; no input yet is NaN */
    smooth_ema_t e;
    smooth_ema_init(&e, SMOOTH_DEFAULT);
    assert_true(isnan(smooth_ema_update(&e, 10, NAN)));
    assert_close(smooth_ema_update(&e, 20, 7.25), 7.25, 2.2e-16, 0);
    /* Against the ODE it integrates, solved independently by RK4: from step 20 to
     * 30, dm/dt = (x(t) - m) / tau and dw/dt = (1 - w) / tau, tau = window * 30, x
     * linear from 7.25 to 1; from 0 to 20 (tau = window * 20, x = 7.25 held) the
     * closed form m = 7.25 w, w = 1 - exp(-20 / tau). */
    double tau = SMOOTH_DEFAULT * 30.0;
    double w = 1 - exp(-20.0 / (SMOOTH_DEFAULT * 20.0)), m = 7.25 * w;
    const int n_rk = 2000;
    double h = 10.0 / n_rk;
    for (int i = 0; i < n_rk; i++) {
        double t = 20.0 + i * h;
#define X_AT(tt) (7.25 + (1.0 - 7.25) * ((tt) - 20.0) / 10.0)
        double k1 = (X_AT(t) - m) / tau, l1 = (1 - w) / tau;
        double k2 = (X_AT(t + h / 2) - (m + h / 2 * k1)) / tau, l2 = (1 - (w + h / 2 * l1)) / tau;
        double k3 = (X_AT(t + h / 2) - (m + h / 2 * k2)) / tau, l3 = (1 - (w + h / 2 * l2)) / tau;
        double k4 = (X_AT(t + h) - (m + h * k3)) / tau, l4 = (1 - (w + h * l3)) / tau;
#undef X_AT
        m += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
        w += h / 6 * (l1 + 2 * l2 + 2 * l3 + l4);
    }
    /* RK4 at h = 0.005 with tau = 3: truncation error ~ (h / tau)^4 ~ 1e-11 */
    assert_close(smooth_ema_update(&e, 30, 1.0), m / w, 1e-10, 0);
}

static void test_power_law_recovered(void **state)
{
    (void)state;
    const double E = 1.7, A_raw = 3.0e5, alpha = 0.35;
    enum { N = 40 };
    double C[N], L[N];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 20241107);
    for (int i = 0; i < N; i++) {
        C[i] = pow(10.0, 12.0 + 4.0 * i / (N - 1));
        double clean = E + A_raw * pow(C[i], -alpha);
        L[i] = clean * (1 + gsl_ran_gaussian(rng, 0.002));
    }
    L[N / 2] *= 1.10; /* one bad point: the Huber loss keeps it from pulling */
    gsl_rng_free(rng);
    analysis_fit_t f;
    assert_true(analysis_fit_power_law(&f, C, L, N, NAN, ANALYSIS_FIT_RESAMPLES, 1));
    print_message("# E %.5f [%.5f, %.5f], A(c0) %.5f [%.5f, %.5f], alpha %.5f [%.5f, %.5f], "
                  "c0 %.3g, %d starts\n",
                  f.par[0], f.iv[0].lo, f.iv[0].hi, f.par[1], f.iv[1].lo, f.iv[1].hi, f.par[2],
                  f.iv[2].lo, f.iv[2].hi, f.c0, f.starts);
    double truth[3] = {E, A_raw * pow(f.c0, -alpha), alpha}; /* A is reported at c0 */
    for (int j = 0; j < 3; j++) {
        assert_close(f.par[j], truth[j], TOL_FIT_REL, 0);
        /* the bootstrap interval holds the value it was drawn around and is not empty */
        assert_true(f.iv[j].lo < f.par[j] && f.par[j] < f.iv[j].hi);
    }
    assert_true(f.starts > 1);
    assert_false(f.degenerate);
    /* E held at its true value: A and alpha as well */
    analysis_fit_t g;
    assert_true(analysis_fit_power_law(&g, C, L, N, E, ANALYSIS_FIT_RESAMPLES, 1));
    assert_close(g.par[1], A_raw * pow(g.c0, -alpha), TOL_FIT_REL, 0);
    assert_close(g.par[2], alpha, TOL_FIT_REL, 0);
    assert_true(isnan(g.iv[0].lo)); /* E has no interval: it was not fitted */
    analysis_fit_free(&f);
    analysis_fit_free(&g);
}

static void test_two_variable_surface_recovered(void **state)
{
    (void)state;
    /* L(N, D) = E + A N^-a + B D^-b along training curves of four sizes, each seen at 16
     * token counts, with 0.3% noise: Chinchilla's approach 3 on its own kind of data */
    const double E = 1.9, A = 400.0, a = 0.34, B = 900.0, b = 0.28;
    enum { SIZES = 4, PTS = 16, N = SIZES * PTS };
    double Nv[N], Dv[N], L[N];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    for (int s = 0; s < SIZES; s++)
        for (int k = 0; k < PTS; k++) {
            int i = s * PTS + k;
            Nv[i] = 1e5 * pow(4.0, s);
            Dv[i] = 1e7 * pow(100.0, (double)k / (PTS - 1));
            L[i] = (E + A * pow(Nv[i], -a) + B * pow(Dv[i], -b)) * (1 + gsl_ran_gaussian(rng, 0.003));
        }
    gsl_rng_free(rng);
    analysis_fit_t f;
    assert_true(analysis_fit_nd(&f, Nv, Dv, L, N, ANALYSIS_FIT_RESAMPLES, 1));
    print_message("# E %.4f [%.4f, %.4f]  a %.4f [%.4f, %.4f]  b %.4f [%.4f, %.4f]\n", f.par[0],
                  f.iv[0].lo, f.iv[0].hi, f.par[2], f.iv[2].lo, f.iv[2].hi, f.par[4], f.iv[4].lo,
                  f.iv[4].hi);
    assert_close(f.par[0], E, TOL_FIT_ND_E, 0);
    assert_close(f.par[2], a, TOL_FIT_ND_EXP, 0);
    assert_close(f.par[4], b, TOL_FIT_ND_EXP, 0);
    assert_close(f.par[1], A * pow(f.c0, -a), TOL_FIT_ND_AMP, 0);
    assert_close(f.par[3], B * pow(f.d0, -b), TOL_FIT_ND_AMP, 0);
    /* the surface itself, at the largest size's last point, and E inside its interval */
    assert_close(analysis_fit_eval(&f, NULL, Nv[N - 1], Dv[N - 1]),
                 E + A * pow(Nv[N - 1], -a) + B * pow(Dv[N - 1], -b), TOL_FIT_ND_SURFACE, 0);
    assert_true(f.iv[0].lo <= E && E <= f.iv[0].hi);
    for (int j = 0; j < 5; j++)
        assert_true(f.iv[j].lo <= f.par[j] && f.par[j] <= f.iv[j].hi);
    analysis_fit_free(&f);
    /* without noise, exactly */
    for (int i = 0; i < N; i++)
        L[i] = E + A * pow(Nv[i], -a) + B * pow(Dv[i], -b);
    assert_true(analysis_fit_nd(&f, Nv, Dv, L, N, 20, 1));
    assert_close(f.par[0], E, 1e-6, 0);
    assert_close(f.par[2], a, 1e-6, 0);
    assert_close(f.par[4], b, 1e-6, 0);
    analysis_fit_free(&f);
}

static void test_compute_multiplier(void **state)
{
    (void)state;
    /* other(C) = ref(3 C): ref needs 3x the compute for other's loss */
    enum { N = 12 };
    double C[N], Lr[N], Lo[N];
    for (int i = 0; i < N; i++) {
        C[i] = pow(10.0, 13.0 + 3.0 * i / (N - 1));
        Lr[i] = 2.0 + 1e4 * pow(C[i], -0.3);
        Lo[i] = 2.0 + 1e4 * pow(3.0 * C[i], -0.3);
    }
    analysis_fit_t fr, fo;
    assert_true(analysis_fit_power_law(&fr, C, Lr, N, NAN, ANALYSIS_FIT_RESAMPLES, 1));
    assert_true(analysis_fit_power_law(&fo, C, Lo, N, NAN, ANALYSIS_FIT_RESAMPLES, 1));
    analysis_interval_t iv;
    analysis_compute_multiplier(&iv, &fr, &fo, 1e16);
    assert_close(iv.value, 3.0, 1e-6, 0);
    /* exact data: every bootstrap refit lands on the same fits */
    assert_close(iv.lo, 3.0, 1e-6, 0);
    assert_close(iv.hi, 3.0, 1e-6, 0);
    /* a loss below ref's asymptote is out of its reach: NaN, never a number */
    analysis_fit_t low = fo;
    low.par[0] = 1.0;
    low.n_boot = 0;
    analysis_compute_multiplier(&iv, &fr, &low, 1e16);
    assert_true(isnan(iv.value));
    analysis_fit_free(&fr);
    analysis_fit_free(&fo);
}

static void test_degenerate_frontier_gives_no_multiplier(void **state)
{
    (void)state;
    /* an undertrained, nearly flat frontier: the loss barely moves over two decades of
     * compute and the noise is of the size of the trend; the fit wanders (E far below
     * zero, or an exponent near zero, or intervals wider than the values) */
    enum { N = 24 };
    double C[N], Ld[N], Lm[N];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    for (int i = 0; i < N; i++) {
        C[i] = pow(10.0, 13.0 + 2.0 * i / (N - 1));
        Ld[i] = 4.0 - 0.004 * log10(C[i] / 1e13) + gsl_ran_gaussian(rng, 0.01);
        Lm[i] = 3.99 - 0.004 * log10(C[i] / 1e13) + gsl_ran_gaussian(rng, 0.01);
    }
    gsl_rng_free(rng);
    analysis_fit_t fd, fm;
    analysis_fit_power_law(&fd, C, Ld, N, NAN, ANALYSIS_FIT_RESAMPLES, 1);
    analysis_fit_power_law(&fm, C, Lm, N, NAN, ANALYSIS_FIT_RESAMPLES, 1);
    print_message("# dense: %s; mot: %s\n", fd.degenerate_why, fm.degenerate_why);
    assert_true(fd.degenerate || !fd.ok);
    analysis_interval_t iv;
    analysis_compute_multiplier(&iv, &fm, &fd, 1e15);
    print_message("# multiplier: %s\n", iv.method);
    assert_true(isnan(iv.value) && isnan(iv.lo) && isnan(iv.hi));
    assert_non_null(strstr(iv.method, fd.ok ? "degenerate" : "no fit"));
    analysis_fit_free(&fd);
    analysis_fit_free(&fm);
}

static void test_fit_origin_r2(void **state)
{
    (void)state;
    const double x[] = {1, 2, 3, 4}, y[] = {2, 4, 6, 8}, y2[] = {1, 3, 2, 4};
    double s, r2;
    analysis_fit_origin(x, y, 4, &s, &r2);
    assert_close(s, 2.0, TOL_EXACT_REL, 0);
    assert_close(r2, 1.0, TOL_EXACT_REL, 0);
    /* slope sum(xy)/sum(x^2) = 29/30; SS_res and SS_tot (centred) by hand */
    analysis_fit_origin(x, y2, 4, &s, &r2);
    double k = 29.0 / 30.0, ssr = 0, sst = 0;
    for (int i = 0; i < 4; i++) {
        ssr += (y2[i] - k * x[i]) * (y2[i] - k * x[i]);
        sst += (y2[i] - 2.5) * (y2[i] - 2.5);
    }
    assert_close(s, k, TOL_EXACT_REL, 0);
    assert_close(r2, 1 - ssr / sst, TOL_EXACT_REL, 0);
    analysis_fit_origin(x, y, 1, &s, &r2);
    assert_true(isnan(s) && isnan(r2));
}

/* ---- run files, written with the HDF5 C API in the run-record layout ---------- */

/* skip: a /metrics column to leave out (a malformed file), or NULL. */
static void write_run(const char *path, const curve_t *c, const char *kind, const char *skip)
{
    static const char *const names[] = {"text", "image"};
    runfile_t rf = {.config = "[run]\nname = t\nseed = 1\n[data]\nsource = synthetic\n"
                              "modalities = text,image\n[train]\nsteps = 2000\n",
                    .experiment = "unit", .run_name = kind, .kind = kind, .n_mod = 2,
                    .mod_names = names, .rows = N_ROWS, .step = c->step, .tokens = c->tokens,
                    .tokens_by_mod = c->tokens_by_mod, .flops = c->flops, .wall = c->wall,
                    .loss = c->loss, .loss_by_modality = c->loss_by_modality,
                    .step_time = c->step_time, .compute = c->compute, .comm = c->comm,
                    .io = c->io, .flops_per_token = FLOPS_PER_STEP / TOKENS_PER_STEP,
                    .skip = skip};
    runfile_write(path, &rf);
}

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/motscale-ana.XXXXXX", t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    const char *files[] = {"base.h5", "cand.h5", "broken.h5", "junk.h5"};
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    return rmdir(tmpdir);
}

static void test_run_files(void **state)
{
    (void)state;
    static curve_t cb, cc;
    make_curve(&cb, 1.0, 0, STEP_TIME_BASE);
    make_curve(&cc, STRETCH, 0, STEP_TIME_CAND);
    char pb[512], pc[512], err[1024];
    snprintf(pb, sizeof pb, "%s/base.h5", tmpdir);
    snprintf(pc, sizeof pc, "%s/cand.h5", tmpdir);
    write_run(pb, &cb, "dense", NULL);
    write_run(pc, &cc, "mot", NULL);
    runrec_t b, c;
    assert_true(runrec_load(pb, &b, err, sizeof err));
    assert_true(runrec_load(pc, &c, err, sizeof err));
    assert_int_equal(b.n, N_ROWS);
    assert_int_equal(b.n_mod, 2);
    assert_string_equal(b.mod_names[1], "image");
    assert_string_equal(c.kind, "mot");
    assert_int_equal(b.d_model, 64);
    assert_int_equal(b.n_eval, 0);
    assert_int_equal(b.params_total, 123456);
    assert_close(b.loss_by_modality[2 * 5 + 1], cb.loss_by_modality[2 * 5 + 1], 0, 0);
    char v[64];
    runrec_config_get(&b, "train", "steps", v, sizeof v);
    assert_string_equal(v, "2000");
    char lines[8][256];
    const char *compared[] = {"model.kind", "model.towers", NULL};
    assert_int_equal(analysis_comparability(&b, &c, compared, lines, 8), 0);
    check_stretched(&b, &c);

    /* the trainer's view: final smoothed losses, the same smoother */
    int n_mod;
    char names[ANALYSIS_MAX_MOD][ANALYSIS_NAME_LEN];
    double fin[ANALYSIS_MAX_MOD], fin_all;
    assert_true(runrec_final_losses(pb, &n_mod, names, fin, &fin_all, err, sizeof err));
    assert_int_equal(n_mod, 2);
    assert_string_equal(names[0], "text");
    for (int col = -1; col < 2; col++) {
        analysis_series_t s;
        analysis_series_build(&s, &b, ANALYSIS_TRAIN, col, SMOOTH_DEFAULT);
        assert_close(col < 0 ? fin_all : fin[col], s.loss[s.n - 1], 0, 0);
        analysis_series_free(&s);
    }
    runrec_free(&b);
    runrec_free(&c);
}

static void test_bad_files_name_the_object(void **state)
{
    (void)state;
    static curve_t cb;
    make_curve(&cb, 1.0, 0, STEP_TIME_BASE);
    char p[512], err[1024];
    runrec_t r;
    snprintf(p, sizeof p, "%s/broken.h5", tmpdir);
    write_run(p, &cb, "dense", "io_time");
    assert_false(runrec_load(p, &r, err, sizeof err));
    print_message("# %s\n", err);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "/metrics/io_time"));
    snprintf(p, sizeof p, "%s/junk.h5", tmpdir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("not an HDF5 file\n", f);
    fclose(f);
    assert_false(runrec_load(p, &r, err, sizeof err));
    assert_non_null(strstr(err, p));
    snprintf(p, sizeof p, "%s/absent.h5", tmpdir);
    assert_false(runrec_load(p, &r, err, sizeof err));
    assert_non_null(strstr(err, "absent.h5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ema_exact_on_constant),
        cmocka_unit_test(test_crossing_interpolates_on_envelope),
        cmocka_unit_test(test_fit_origin_r2),
        cmocka_unit_test(test_stretched_curve_gives_slope),
        cmocka_unit_test(test_never_reached_is_not_a_number),
        cmocka_unit_test(test_power_law_recovered),
        cmocka_unit_test(test_two_variable_surface_recovered),
        cmocka_unit_test(test_compute_multiplier),
        cmocka_unit_test(test_degenerate_frontier_gives_no_multiplier),
        cmocka_unit_test(test_run_files),
        cmocka_unit_test(test_bad_files_name_the_object),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
