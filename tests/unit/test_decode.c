/* Edit distance, repeat collapsing, length buckets and error rates against hand
 * counts (issue 15; decode.h). */
#include <string.h>

#include "testutil.h"

#include "motscale/decode.h"

static int64_t ed(const char *a, const char *b)
{
    int32_t x[32], y[32];
    int64_t na = (int64_t)strlen(a), nb = (int64_t)strlen(b);
    for (int64_t i = 0; i < na; i++)
        x[i] = a[i];
    for (int64_t i = 0; i < nb; i++)
        y[i] = b[i];
    return edit_distance(x, na, y, nb);
}

static void test_edit_distance(void **state)
{
    (void)state;
    /* kitten -> sitting: k->s, e->i, + g */
    assert_int_equal(ed("kitten", "sitting"), 3);
    assert_int_equal(ed("sitting", "kitten"), 3);
    /* flaw -> lawn: - f, + n */
    assert_int_equal(ed("flaw", "lawn"), 2);
    /* a transposition is two edits */
    assert_int_equal(ed("abc", "acb"), 2);
    assert_int_equal(ed("", "abc"), 3);
    assert_int_equal(ed("abc", ""), 3);
    assert_int_equal(ed("", ""), 0);
    assert_int_equal(ed("same", "same"), 0);
    /* intention -> execution: 5 (the textbook case) */
    assert_int_equal(ed("intention", "execution"), 5);
}

static void test_collapse(void **state)
{
    (void)state;
    int32_t x[] = {1, 1, 2, 2, 2, 1, 3, 3};
    assert_int_equal(collapse_repeats(x, 8), 4);
    assert_int_equal(x[0], 1);
    assert_int_equal(x[1], 2);
    assert_int_equal(x[2], 1);
    assert_int_equal(x[3], 3);
    int32_t y[] = {7};
    assert_int_equal(collapse_repeats(y, 1), 1);
    assert_int_equal(collapse_repeats(y, 0), 0);
}

static void test_rates(void **state)
{
    (void)state;
    assert_int_equal(decode_bucket(1), 0);
    assert_int_equal(decode_bucket(2), 0);
    assert_int_equal(decode_bucket(3), 1);
    assert_int_equal(decode_bucket(5), 1);
    assert_int_equal(decode_bucket(6), 2);
    assert_int_equal(decode_bucket(16), 2);
    /* four sentences of 2, 4, 5 and 7 words with 1, 0, 3 and 7 errors (an error
     * count may exceed the reference: insertions):
     *   overall (1 + 0 + 3 + 7) / (2 + 4 + 5 + 7) = 11 / 18
     *   1-2 words: 1 / 2;  3-5: (0 + 3) / (4 + 5) = 1 / 3;  6+: 7 / 7 = 1 */
    int64_t edits[4] = {1, 0, 3, 7}, ref[4] = {2, 4, 5, 7};
    int words[4] = {2, 4, 5, 7};
    double by[DECODE_BUCKETS];
    assert_true(decode_rates(4, edits, ref, words, by) == 11.0 / 18.0);
    assert_true(by[0] == 0.5);
    assert_true(by[1] == 1.0 / 3.0);
    assert_true(by[2] == 1.0);
    /* TTS: the reference is units, the bucket still the sentence's words */
    int64_t ue[2] = {4, 2}, ur[2] = {8, 3};
    int uw[2] = {1, 2};
    assert_true(decode_rates(2, ue, ur, uw, by) == 6.0 / 11.0);
    assert_true(by[0] == 6.0 / 11.0);
    assert_true(isnan(by[1]) && isnan(by[2]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_collapse),
        cmocka_unit_test(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
