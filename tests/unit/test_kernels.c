/* The fp32 kernels against double references: kernel_exp over its whole range (its
 * stated accuracy), the one-pass cross-entropy (loss and gradient), and the masked
 * softmax with a row stride. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/kernels.h"

static void test_exp(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    for (double x = -87; x <= 88; x += 1.0 / 4096) {
        float xf = (float)x;
        double want = exp((double)xf), r = fabs((double)kernel_exp(xf) - want) / want;
        if (r > worst) {
            worst = r;
            at = xf;
        }
    }
    print_message("# kernel_exp: max relative error %.3g at %g over [-87, 88]\n", worst, at);
    assert_true(worst <= TOL_EXP_REL);
    /* clamped outside: finite, positive, monotone at the ends */
    assert_true(kernel_exp(-1000.0f) > 0 && kernel_exp(-1000.0f) <= kernel_exp(-87.0f) * 1.0000001f);
    assert_true(isfinite(kernel_exp(1000.0f)));
}

static void test_cross_entropy(void **state)
{
    (void)state;
    enum { V = 1000 };
    unsigned seed = 9;
    float z[V], dz[V];
    for (int j = 0; j < V; j++)
        z[j] = 8.0f * ((float)rand_r(&seed) / RAND_MAX - 0.5f);
    int t = 123;
    float scale = 0.25f;
    double loss = cross_entropy_row(dz, z, t, V, scale);
    double mx = z[0], sum = 0;
    for (int j = 1; j < V; j++)
        mx = z[j] > mx ? z[j] : mx;
    for (int j = 0; j < V; j++)
        sum += exp((double)z[j] - mx);
    double want = log(sum) + mx - z[t];
    assert_close(loss, want, TOL_F32_OP, 0);
    for (int j = 0; j < V; j++) {
        double g = scale * (exp((double)z[j] - mx) / sum - (j == t));
        assert_close(dz[j], g, TOL_F32_OP, 0);
    }
    /* in place, as the model calls it */
    double again = cross_entropy_row(z, z, t, V, scale);
    assert_true(again == loss && memcmp(z, dz, sizeof z) == 0);
}

static void test_softmax_stride(void **state)
{
    (void)state;
    enum { R = 3, C = 5, LD = 9 };
    const int64_t hi[R] = {2, 7, 0};
    float s[R * LD];
    for (int i = 0; i < R * LD; i++)
        s[i] = (float)(i % 7) * 0.3f - 1.0f;
    float keep[R * LD];
    memcpy(keep, s, sizeof s);
    softmax_rows(s, R, C, LD, hi);
    for (int i = 0; i < R; i++) {
        int64_t n = hi[i] < C ? hi[i] : C;
        double mx = -1e30, sum = 0;
        for (int j = 0; j < n; j++)
            mx = keep[i * LD + j] > mx ? keep[i * LD + j] : mx;
        for (int j = 0; j < n; j++)
            sum += exp(keep[i * LD + j] - mx);
        for (int j = 0; j < C; j++)
            assert_close(s[i * LD + j], j < n ? exp(keep[i * LD + j] - mx) / sum : 0.0, TOL_F32_OP, 0);
        for (int j = C; j < LD; j++) /* beyond cols: untouched */
            assert_true(s[i * LD + j] == keep[i * LD + j]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_softmax_stride),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
