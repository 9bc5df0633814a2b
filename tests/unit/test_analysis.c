/* Analysis with known answers: step matching of a curve stretched in steps, wall-clock
 * fractions from step-time ratios, "not reached", the smoother on a constant, a
 * power law recovered from noisy points, and the same through run files written here
 * with the HDF5 C API in the run-record layout. */
#include "testutil.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/analysis.h"

/* TOL_SLOPE_REL, TOL_FIT_REL and TOL_EXACT_REL: tests/tolerances.env */
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
    L[N / 2] *= 1.10; /* one bad point: the robust loss keeps it from pulling */
    gsl_rng_free(rng);
    analysis_powerlaw_t f;
    assert_true(analysis_fit_power_law(&f, C, L, N));
    print_message("# E %.5f +- %.5f, A(c0) %.5f +- %.5f, alpha %.5f +- %.5f, c0 %.3g\n", f.E,
                  f.se_E, f.A, f.se_A, f.alpha, f.se_alpha, f.c0);
    assert_close(f.E, E, TOL_FIT_REL, 0);
    assert_close(f.alpha, alpha, TOL_FIT_REL, 0);
    /* A is reported at c0, where it is well determined (analysis.h) */
    assert_close(f.A, A_raw * pow(f.c0, -alpha), TOL_FIT_REL, 0);
    assert_true(f.se_E > 0 && f.se_A > 0 && f.se_alpha > 0);
    assert_true(f.se_alpha < 0.1 * alpha);
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
    analysis_powerlaw_t fr, fo;
    assert_true(analysis_fit_power_law(&fr, C, Lr, N));
    assert_true(analysis_fit_power_law(&fo, C, Lo, N));
    assert_close(analysis_compute_multiplier(&fr, &fo, 1e16), 3.0, 1e-6, 0);
    /* a loss below ref's asymptote is out of its reach: NaN, never a number */
    analysis_powerlaw_t low = fo;
    low.E = 1.0;
    assert_true(isnan(analysis_compute_multiplier(&fr, &low, 1e16)));
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

#define H5OK(call)                                                                         \
    do {                                                                                   \
        if ((call) < 0)                                                                    \
            fail_msg("HDF5 call failed: %s", #call);                                       \
    } while (0)

static void attr_int(hid_t obj, const char *name, hid_t type, const void *v, hsize_t n)
{
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(a);
    H5OK(H5Awrite(a, type, v));
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5OK(H5Tset_size(t, H5T_VARIABLE));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(a);
    H5OK(H5Awrite(a, t, &v));
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void dset(hid_t g, const char *name, hid_t type, const void *v, hsize_t rows,
                 hsize_t cols)
{
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(d);
    if (rows)
        H5OK(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v));
    H5Dclose(d);
    H5Sclose(sp);
}

/* skip: a /metrics column to leave out (a malformed file), or NULL. */
static void write_run(const char *path, const curve_t *c, const char *kind, const char *skip)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(f);
    int one = 1, v1 = 1;
    double peak = 1e11;
    attr_int(f, "schema_version", H5T_NATIVE_INT, &v1, 0);
    attr_str(f, "config", "[run]\nname = t\nseed = 1\n[data]\nsource = synthetic\n"
                          "modalities = text,image\n[train]\nsteps = 2000\n");
    attr_str(f, "experiment", "unit");
    attr_str(f, "run_name", kind);
    attr_int(f, "world_size", H5T_NATIVE_INT, &one, 0);
    attr_int(f, "dp", H5T_NATIVE_INT, &one, 0);
    attr_int(f, "tp", H5T_NATIVE_INT, &one, 0);
    attr_str(f, "tp_backend", "megatron");
    attr_int(f, "peak_flops_per_rank", H5T_NATIVE_DOUBLE, &peak, 0);
    hid_t m = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(m);
    attr_str(m, "kind", kind);
    int ints[] = {64, 2, 4, 256, 128, 512, 2};
    const char *in[] = {"d_model", "n_layers", "n_heads", "d_ff", "seq_len", "vocab_size",
                        "n_towers"};
    for (int i = 0; i < 7; i++)
        attr_int(m, in[i], H5T_NATIVE_INT, &ints[i], 0);
    const char *names[] = {"text", "image"};
    hid_t vt = H5Tcopy(H5T_C_S1);
    H5OK(H5Tset_size(vt, H5T_VARIABLE));
    attr_int(m, "modality_names", vt, names, 2);
    H5Tclose(vt);
    int32_t tower_of[] = {0, 1};
    attr_int(m, "tower_of", H5T_NATIVE_INT32, tower_of, 2);
    int64_t params = 123456;
    attr_int(m, "params_total", H5T_NATIVE_INT64, &params, 0);
    attr_int(m, "params_active_per_token", H5T_NATIVE_INT64, &params, 0);
    double fpt = FLOPS_PER_STEP / TOKENS_PER_STEP;
    attr_int(m, "flops_per_token", H5T_NATIVE_DOUBLE, &fpt, 0);
    H5Gclose(m);
    hid_t g = H5Gcreate2(f, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(g);
    struct { const char *name; hid_t type; const void *v; hsize_t cols; } cols[] = {
        {"step", H5T_NATIVE_INT64, c->step, 0},
        {"tokens", H5T_NATIVE_INT64, c->tokens, 0},
        {"flops", H5T_NATIVE_DOUBLE, c->flops, 0},
        {"gemm_flops", H5T_NATIVE_DOUBLE, c->flops, 0},
        {"wall_time", H5T_NATIVE_DOUBLE, c->wall, 0},
        {"loss", H5T_NATIVE_DOUBLE, c->loss, 0},
        {"step_time", H5T_NATIVE_DOUBLE, c->step_time, 0},
        {"compute_time", H5T_NATIVE_DOUBLE, c->compute, 0},
        {"comm_time", H5T_NATIVE_DOUBLE, c->comm, 0},
        {"io_time", H5T_NATIVE_DOUBLE, c->io, 0},
        {"loss_by_modality", H5T_NATIVE_DOUBLE, c->loss_by_modality, 2},
        {"tokens_by_modality", H5T_NATIVE_INT64, c->tokens_by_mod, 2}};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (!skip || strcmp(skip, cols[i].name))
            dset(g, cols[i].name, cols[i].type, cols[i].v, N_ROWS, cols[i].cols);
    H5Gclose(g);
    g = H5Gcreate2(f, "eval", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(g);
    dset(g, "step", H5T_NATIVE_INT64, c->step, 0, 0);
    dset(g, "flops", H5T_NATIVE_DOUBLE, c->flops, 0, 0);
    dset(g, "wall_time", H5T_NATIVE_DOUBLE, c->wall, 0, 0);
    dset(g, "loss", H5T_NATIVE_DOUBLE, c->loss, 0, 0);
    dset(g, "loss_by_modality", H5T_NATIVE_DOUBLE, c->loss_by_modality, 0, 2);
    H5Gclose(g);
    H5Fclose(f);
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
    assert_int_equal(analysis_comparability(&b, &c, lines, 8), 0);
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
        cmocka_unit_test(test_compute_multiplier),
        cmocka_unit_test(test_run_files),
        cmocka_unit_test(test_bad_files_name_the_object),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
