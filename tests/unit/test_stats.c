/* The interval tools against closed forms: the t interval, percentiles with
 * not-reached replicates, the sign-test interval and its binomial coverage, the
 * automatic block length on white and on correlated noise, the moving-block
 * resampling, the B-spline trend, the bisection on the envelope against the plain
 * first-crossing walk, and the names of tower groupings. */
#include "testutil.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"

/* TOL_EXACT_REL: tests/tolerances.env */

static void test_t_interval(void **state)
{
    (void)state;
    const double v[] = {0.50, 0.55, 0.62};
    analysis_interval_t iv;
    analysis_t_interval(&iv, v, 3, 0.95);
    double mean = (0.50 + 0.55 + 0.62) / 3, ss = 0;
    for (int i = 0; i < 3; i++)
        ss += (v[i] - mean) * (v[i] - mean);
    /* t(0.975, 2) = 4.302652729911275 (tables); sd with n - 1 */
    double h = 4.302652729911275 * sqrt(ss / 2) / sqrt(3.0);
    assert_close(iv.value, mean, TOL_EXACT_REL, 0);
    assert_close(iv.lo, mean - h, 1e-9, 0);
    assert_close(iv.hi, mean + h, 1e-9, 0);
    assert_non_null(strstr(iv.method, "3 paired seeds"));
    analysis_t_interval(&iv, v, 1, 0.95);
    assert_true(isnan(iv.lo) && isnan(iv.hi));
}

static void test_percentile_counts_not_reached_as_above(void **state)
{
    (void)state;
    /* 0..98 and one NaN: the 2.5% and 97.5% quantiles of 100 values at positions 2.475
     * and 96.525 of the sorted list, whose last entry is "not reached" */
    double rep[100];
    for (int i = 0; i < 99; i++)
        rep[i] = 98 - i;
    rep[99] = NAN;
    double lo, hi;
    assert_int_equal(analysis_percentile(rep, 100, 0.95, &lo, &hi), 99);
    assert_close(lo, 2.475, TOL_EXACT_REL, 0);
    assert_close(hi, 96.525, TOL_EXACT_REL, 0);
    /* five of 100 not reached: the upper bound is among them */
    for (int i = 0; i < 95; i++)
        rep[i] = i;
    for (int i = 95; i < 100; i++)
        rep[i] = NAN;
    analysis_percentile(rep, 100, 0.95, &lo, &hi);
    assert_close(lo, 2.475, TOL_EXACT_REL, 0);
    assert_true(isnan(hi));
}

static void test_sign_interval_coverage(void **state)
{
    (void)state;
    /* n = 10: [v(2), v(9)] covers the median with 1 - 2 P(B <= 1) = 1 - 22/1024 */
    double v[10];
    for (int i = 0; i < 10; i++)
        v[i] = 10 - i;
    analysis_interval_t iv;
    analysis_sign_interval(&iv, v, 10, 0.95);
    assert_close(iv.value, 5.5, TOL_EXACT_REL, 0);
    assert_close(iv.lo, 2, 0, 0);
    assert_close(iv.hi, 9, 0, 0);
    assert_non_null(strstr(iv.method, "97.9%"));
    /* n = 6: [min, max], 1 - 2/64 = 96.9%; n = 5 is too few for 95% */
    double w[6] = {3, 1, 2, 6, 5, 4};
    analysis_sign_interval(&iv, w, 6, 0.95);
    assert_close(iv.lo, 1, 0, 0);
    assert_close(iv.hi, 6, 0, 0);
    assert_non_null(strstr(iv.method, "96.9%"));
    analysis_sign_interval(&iv, w, 5, 0.95);
    assert_true(isnan(iv.lo) && isnan(iv.hi));
}

static void test_block_length_follows_correlation(void **state)
{
    (void)state;
    enum { N = 400 };
    double white[N], ar[N];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    double z = 0;
    for (int i = 0; i < N; i++) {
        white[i] = gsl_ran_gaussian(r, 1);
        z = 0.9 * z + gsl_ran_gaussian(r, 1);
        ar[i] = z;
    }
    size_t bw = analysis_block_length(white, N), ba = analysis_block_length(ar, N);
    print_message("# block length: white %zu, AR(1) 0.9 %zu\n", bw, ba);
    /* white noise needs no blocks; AR(1) with phi = 0.9 has a correlation time of ten
     * rows, and the optimal block for its mean is a few times that (Politis & White) */
    assert_true(bw <= 3);
    assert_true(ba >= 10 && ba <= 60);
    /* blocks are copied whole from the pool */
    double out[25], pool[10];
    for (int i = 0; i < 10; i++)
        pool[i] = i;
    analysis_block_resample(r, out, 25, pool, 10, 5);
    for (int i = 0; i < 25; i++)
        if (i % 5)
            assert_close(out[i], out[i - 1] + 1, 0, 0);
    gsl_rng_free(r);
}

static void test_trend_is_exact_on_a_spline_and_smooth_on_noise(void **state)
{
    (void)state;
    enum { N = 120 };
    double step[N], y[N], t[N];
    for (int i = 0; i < N; i++) {
        step[i] = 10.0 * (i + 1);
        y[i] = 2.0 + 0.3 * log(step[i]) - 0.01 * pow(log(step[i]), 3); /* cubic in ln step */
    }
    int k = analysis_trend(t, step, y, N, ANALYSIS_TREND_KNOTS);
    assert_true(k >= 1);
    for (int i = 0; i < N; i++)
        assert_close(t[i], y[i], 1e-9, 0);
    assert_int_equal(analysis_trend(t, step, y, 6, ANALYSIS_TREND_KNOTS), -1);
}

static void test_envelope_bisection_equals_the_walk(void **state)
{
    (void)state;
    /* noisy decreasing curves: every matched step through analysis_match equals the
     * first-crossing walk of the reference implementation */
    enum { N = 300 };
    analysis_series_t b = {0}, c = {0};
    double *cols[2][5];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 5; k++)
            cols[s][k] = malloc(N * sizeof(double));
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    for (int i = 0; i < N; i++)
        for (int s = 0; s < 2; s++) {
            double t = 10.0 * (i + 1);
            cols[s][0][i] = t;
            cols[s][1][i] = t * 1e9;
            cols[s][2][i] = t * (s ? 1.3 : 1.0);
            cols[s][3][i] = cols[s][4][i] =
                3.0 + 20.0 * pow(t / (s ? 0.5 : 1.0) + 30, -0.5) + gsl_ran_gaussian(r, 0.03);
        }
    gsl_rng_free(r);
    analysis_series_t *ss[2] = {&b, &c};
    for (int s = 0; s < 2; s++) {
        ss[s]->n = N;
        ss[s]->step = cols[s][0];
        ss[s]->flops = cols[s][1];
        ss[s]->wall = cols[s][2];
        ss[s]->raw = cols[s][3];
        ss[s]->loss = cols[s][4];
    }
    analysis_match_t m;
    analysis_match(&m, &b, &c);
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        double pos;
        bool hit = analysis_first_crossing(c.loss, N, b.loss[i], &pos);
        assert_int_equal(hit, m.matched[i]);
        if (hit) {
            assert_close(m.cand_step[k], analysis_at(c.step, N, pos), TOL_EXACT_REL, 0);
            k++;
        }
    }
    assert_int_equal(k, m.n_matched);
    assert_true(k > N / 2);
    analysis_match_free(&m);
    analysis_series_free(&b);
    analysis_series_free(&c);
}

static void test_grouping_labels(void **state)
{
    (void)state;
    char l[96];
    analysis_label_of(l, sizeof l, "towers", "text,image | speech", "", NULL);
    assert_string_equal(l, "speech alone");
    analysis_label_of(l, sizeof l, "towers", " image , speech|text ", "", NULL);
    assert_string_equal(l, "text alone");
    analysis_label_of(l, sizeof l, "towers", "text | image | speech", "", NULL);
    assert_string_equal(l, "towers text | image | speech");
    analysis_label_of(l, sizeof l, "mot", "", "", NULL);
    assert_string_equal(l, "mot");
    /* experts: kind moe names its expert count; experts in some towers are a suffix */
    analysis_label_of(l, sizeof l, "moe", "", "", "4");
    assert_string_equal(l, "moe-4x");
    analysis_label_of(l, sizeof l, "mot", "", "text", "8");
    assert_string_equal(l, "mot + text moe-8x");
    analysis_label_of(l, sizeof l, "towers", "text,image | speech", "speech", "");
    assert_string_equal(l, "speech alone + speech moe-4x");
    analysis_label_of(l, sizeof l, "dense", "", "", NULL);
    assert_string_equal(l, "dense");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_t_interval),
        cmocka_unit_test(test_percentile_counts_not_reached_as_above),
        cmocka_unit_test(test_sign_interval_coverage),
        cmocka_unit_test(test_block_length_follows_correlation),
        cmocka_unit_test(test_trend_is_exact_on_a_spline_and_smooth_on_noise),
        cmocka_unit_test(test_envelope_bisection_equals_the_walk),
        cmocka_unit_test(test_grouping_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
