/* The Wilcoxon signed-rank test against hand computations (issue 15; docs/analysis.md,
 * "Paired per-sentence differences"). */
#include "testutil.h"

#include "motscale/analysis.h"

static void test_no_ties(void **state)
{
    (void)state;
    /* d = 1, -2, 3, 4, 5: ranks of |d| 1..5; W+ = 1 + 3 + 4 + 5 = 13, W- = 2.
     * n = 5: mean 7.5, var 5 6 11 / 24 = 13.75; z = (13 - 7.5 - 0.5) / sqrt(13.75)
     * = 5 / 3.7081 = 1.34840; p = 2 Q(1.34840) = 0.177530 */
    double d[5] = {1, -2, 3, 4, 5};
    analysis_wilcoxon_t w;
    analysis_wilcoxon(&w, d, 5);
    assert_int_equal(w.n, 5);
    assert_true(w.w_plus == 13 && w.w_minus == 2);
    assert_close(w.z, 5 / sqrt(13.75), 1e-12, 0);
    assert_close(w.p, 0.17753, TOL_HAND_P, 0);
}

static void test_zeros_and_ties(void **state)
{
    (void)state;
    /* zeros dropped: n = 6 of 8. |d| = 1, 1, 2, 2, 2, 3 -> ranks 1.5, 1.5, 4, 4, 4, 6.
     * Signs: +1, -1, +2, +2, -2, +3: W+ = 1.5 + 4 + 4 + 6 = 15.5, W- = 1.5 + 4 = 5.5.
     * mean 6 7 / 4 = 10.5; var 6 7 13 / 24 - ((8 - 2) + (27 - 3)) / 48 = 22.75 - 0.625
     * = 22.125; z = (15.5 - 10.5 - 0.5) / sqrt(22.125) = 4.5 / 4.70372 = 0.956690;
     * p = 2 Q(0.956690) = 0.338720 */
    double d[8] = {1, 0, -1, 2, 2, -2, 0, 3};
    analysis_wilcoxon_t w;
    analysis_wilcoxon(&w, d, 8);
    assert_int_equal(w.n, 6);
    assert_true(w.w_plus == 15.5 && w.w_minus == 5.5);
    assert_close(w.z, 4.5 / sqrt(22.125), 1e-12, 0);
    assert_close(w.p, 0.33872, TOL_HAND_P, 0);
    /* negated differences: the same p, z of the other sign */
    for (int i = 0; i < 8; i++)
        d[i] = -d[i];
    analysis_wilcoxon_t m;
    analysis_wilcoxon(&m, d, 8);
    assert_true(m.w_plus == 5.5 && m.w_minus == 15.5);
    assert_close(m.z, -w.z, 1e-12, 0);
    assert_close(m.p, w.p, 1e-12, 0);
}

static void test_degenerate(void **state)
{
    (void)state;
    double zero[3] = {0, 0, 0};
    analysis_wilcoxon_t w;
    analysis_wilcoxon(&w, zero, 3);
    assert_int_equal(w.n, 0);
    assert_true(isnan(w.p) && isnan(w.z));
    /* one nonzero: W+ = 1, mean 0.5, var 0.25; z = (1 - 0.5 - 0.5) / 0.5 = 0, p = 1 */
    double one[2] = {0, 4};
    analysis_wilcoxon(&w, one, 2);
    assert_int_equal(w.n, 1);
    assert_true(w.z == 0 && w.p == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_ties),
        cmocka_unit_test(test_zeros_and_ties),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
