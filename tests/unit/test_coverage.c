/* Coverage of the intervals compare prints, on synthetic run files with a known
 * stretch (text 0.55, image 0.30) and realistic noise: per logged row, independent
 * noise of 0.03 nats plus a slowly varying AR(1) component of the same size. Over
 * seeded replicates, written as run files and read back through the same set,
 * pairing and comparison code as `motscale compare`:
 *   - one seed per configuration (the bootstrap of the loss curves), slow component
 *     with a 20-step correlation time (what our own runs' residuals show, 16-32 steps);
 *   - three seeds per configuration (the t interval over seeds), slow component with a
 *     100-step correlation time, which no within-run method can see;
 * the 95% intervals must hold the true slope in at least 90% of replicates, each
 * modality; and without noise the interval must be narrower than 1% of the slope. */
#include "testutil.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/analysis.h"
#include "runfile.h"

#define N_ROWS 200                    /* logged every 10 steps for 2000 steps */
#define LOG_EVERY 10
#define TOKENS_PER_STEP 4096
#define FLOPS_PER_STEP 1e9
#define NOISE_WHITE 0.03              /* nats, independent per logged row */
#define NOISE_SLOW 0.03               /* nats, the AR(1) component's standard deviation */
#define REPLICATES_ONE 120            /* the issue asks for at least 100 */
#define REPLICATES_SEEDS 100
#define SEEDS 3
/* The bar: the 95% intervals hold the truth in at least 90% of replicates.
 * Measured (1000 replicates, other seeds): one seed 92.9%, seeds 95%. */
#define MIN_COVERAGE 0.90
/* Without noise the interval reflects only interpolation and the smoother's
 * discretisation (~1e-3 of the slope): under 1% of the slope (the issue's). */
#define MAX_ZERO_NOISE_WIDTH 0.01

static const double stretch[2] = {0.55, 0.30};  /* text, image */
static const char *const mods[2] = {"text", "image"};
static char tmpdir[256];

static double base_loss(int m, double t)
{
    static const double E[2] = {2.0, 3.5}, A[2] = {40.0, 25.0}, al[2] = {0.55, 0.4};
    return E[m] + A[m] * pow(t + 50.0, -al[m]);
}

/* White plus AR(1) noise of correlation time tau steps (phi per logged row). */
static void noise(gsl_rng *r, double *e, double white, double slow, double tau)
{
    double phi = exp(-LOG_EVERY / tau), z = gsl_ran_gaussian(r, 1);
    for (int i = 0; i < N_ROWS; i++) {
        if (i)
            z = phi * z + sqrt(1 - phi * phi) * gsl_ran_gaussian(r, 1);
        e[i] = gsl_ran_gaussian(r, white) + slow * z;
    }
}

/* One run file: kind dense (stretch 1) or mot (the stretches), seed s. */
static void write_synthetic(const char *path, bool cand, int seed, gsl_rng *r, double white,
                            double slow, double tau)
{
    static int64_t step[N_ROWS], tokens[N_ROWS], tbm[2 * N_ROWS];
    static double flops[N_ROWS], wall[N_ROWS], loss[N_ROWS], lbm[2 * N_ROWS], st[N_ROWS],
        e[2][N_ROWS];
    noise(r, e[0], white, slow, tau);
    noise(r, e[1], white, slow, tau);
    for (int i = 0; i < N_ROWS; i++) {
        double t = (double)(i + 1) * LOG_EVERY;
        step[i] = (int64_t)t;
        tokens[i] = step[i] * TOKENS_PER_STEP;
        flops[i] = t * FLOPS_PER_STEP;
        st[i] = cand ? 1.2 : 1.0;
        wall[i] = t * st[i];
        for (int m = 0; m < 2; m++) {
            lbm[2 * i + m] = base_loss(m, t / (cand ? stretch[m] : 1.0)) + e[m][i];
            tbm[2 * i + m] = TOKENS_PER_STEP / 2;
        }
        loss[i] = 0.5 * (lbm[2 * i] + lbm[2 * i + 1]);
    }
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "[run]\nname = %s-s%d\nseed = %d\n[model]\nkind = %s\n[data]\nsource = synthetic\n"
             "modalities = text,image\n[train]\nsteps = 2000\n",
             cand ? "mot" : "dense", seed, seed, cand ? "mot" : "dense");
    runfile_t rf = {.config = cfg, .experiment = "coverage", .run_name = cand ? "mot" : "dense",
                    .kind = cand ? "mot" : "dense", .n_mod = 2, .mod_names = mods,
                    .rows = N_ROWS, .step = step, .tokens = tokens, .tokens_by_mod = tbm,
                    .flops = flops, .wall = wall, .loss = loss, .loss_by_modality = lbm,
                    .step_time = st, .compute = st, .comm = st, .io = st,
                    .flops_per_token = FLOPS_PER_STEP / TOKENS_PER_STEP};
    runfile_write(path, &rf);
}

typedef struct tally {
    int n, hit[2], frac_hit[2];
    double width[2], value[2];
} tally_t;

/* Write `seeds` dense and `seeds` mot runs, compare them as `motscale compare` does,
 * and count the intervals of the step slope (and the equal-loss step fraction) that
 * hold the stretch. */
static void replicate(tally_t *t, gsl_rng *r, int seeds, double white, double slow, double tau)
{
    char *paths[2 * SEEDS];
    for (int k = 0; k < 2 * seeds; k++) {
        paths[k] = malloc(512);
        snprintf(paths[k], 512, "%s/run%d.h5", tmpdir, k);
        write_synthetic(paths[k], k >= seeds, k % seeds + 1, r, white, slow, tau);
    }
    analysis_runset_t set;
    char err[1024];
    assert_true(analysis_runset_load_files(&set, paths, (size_t)(2 * seeds), err, sizeof err));
    assert_int_equal(set.n_groups, 2);
    const char *compared[] = {"model.kind", "model.towers", NULL};
    analysis_opts_t o = {.metric = ANALYSIS_TRAIN, .window = SMOOTH_DEFAULT,
                         .resamples = ANALYSIS_RESAMPLES, .seed = 1, .compared = compared};
    analysis_comparison_t c;
    analysis_compare(&c, &set, set.group_of[0], set.group_of[seeds], &o);
    assert_int_equal(c.n_pairs, seeds);
    assert_int_equal(c.seeds, seeds > 1);
    assert_int_equal(c.n_warn, 0);
    for (int j = 0; j < c.n_series; j++)
        for (int m = 0; m < 2; m++) {
            if (strcmp(c.series[j].name, mods[m]))
                continue;
            const analysis_interval_t *s = &c.series[j].v[ANALYSIS_SLOPE_STEP];
            const analysis_interval_t *f = &c.series[j].v[ANALYSIS_FRAC_STEP];
            t->hit[m] += s->lo <= stretch[m] && stretch[m] <= s->hi;
            t->frac_hit[m] += f->lo <= stretch[m] && stretch[m] <= f->hi;
            t->width[m] += (s->hi - s->lo) / s->value;
            t->value[m] += s->value;
        }
    t->n++;
    analysis_comparison_free(&c);
    analysis_runset_free(&set);
    for (int k = 0; k < 2 * seeds; k++) {
        unlink(paths[k]);
        free(paths[k]);
    }
}

static void check(const tally_t *t, const char *what)
{
    for (int m = 0; m < 2; m++) {
        double cov = (double)t->hit[m] / t->n, fcov = (double)t->frac_hit[m] / t->n;
        print_message("# %s, %s (stretch %.2f): slope intervals hold it in %d of %d (%.1f%%), "
                      "mean width %.1f%% of the slope; equal-loss fraction in %.1f%%\n",
                      what, mods[m], stretch[m], t->hit[m], t->n, 100 * cov,
                      100 * t->width[m] / t->n, 100 * fcov);
        assert_true(cov >= MIN_COVERAGE);
    }
}

static void check_zero_noise(int seeds)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    tally_t t = {0};
    replicate(&t, r, seeds, 0, 0, 100);
    gsl_rng_free(r);
    for (int m = 0; m < 2; m++) {
        print_message("# no noise, %d seed(s), %s: interval width %.3g%% of the slope\n", seeds,
                      mods[m], 100 * t.width[m]);
        assert_true(t.width[m] < MAX_ZERO_NOISE_WIDTH);
        /* and the slope itself is the stretch, to the method's discretisation */
        assert_close(t.value[m], stretch[m], MAX_ZERO_NOISE_WIDTH, 0);
    }
}

static void test_one_seed_bootstrap_coverage(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20241107);
    tally_t t = {0};
    for (int k = 0; k < REPLICATES_ONE; k++)
        replicate(&t, r, 1, NOISE_WHITE, NOISE_SLOW, 20);
    gsl_rng_free(r);
    check(&t, "one seed, bootstrap");
    check_zero_noise(1);
}

static void test_seed_interval_coverage(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20241108);
    tally_t t = {0};
    for (int k = 0; k < REPLICATES_SEEDS; k++)
        replicate(&t, r, SEEDS, NOISE_WHITE, NOISE_SLOW, 100);
    gsl_rng_free(r);
    check(&t, "3 seeds, t over seeds");
    check_zero_noise(SEEDS);
}

static int make_tmpdir(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/motscale-cov.XXXXXX", t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_seed_bootstrap_coverage),
        cmocka_unit_test(test_seed_interval_coverage),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
