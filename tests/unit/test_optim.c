/* The learning-rate schedule against its documented formula (docs/config.md), the
 * edge where the decay has one step (warmup = steps - 1: that step runs at lr_min,
 * not at the peak as before), and one AdamW update against its closed form. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#include "motscale/optim.h"

/* The formula of docs/config.md, written out here independently of src/train/optim.c. */
static double schedule(double lr, double lr_min, int64_t W, int64_t S, int64_t s)
{
    if (s < W)
        return lr * (double)(s + 1) / (double)W;
    if (S - W == 1)
        return lr_min;
    return lr_min + (lr - lr_min) * (1 + cos(M_PI * (double)(s - W) / (double)(S - W - 1))) / 2;
}

static void test_schedule(void **state)
{
    (void)state;
    const int64_t cases[][2] = {{20, 300}, {0, 10}, {5, 6}, {9, 10}, {1, 2}, {0, 1}, {3, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lr_schedule_t s = {.lr = 3e-3, .lr_min = 3e-4, .warmup = cases[c][0], .steps = cases[c][1]};
        for (int64_t k = 0; k < s.steps; k++)
            assert_close(lr_at(&s, k), schedule(s.lr, s.lr_min, s.warmup, s.steps, k), TOL_EXACT_REL, 0);
        /* the last step runs at lr_min once there is a decay phase */
        if (s.steps > s.warmup)
            assert_close(lr_at(&s, s.steps - 1), s.lr_min, TOL_EXACT_REL, 0);
        /* the warm-up reaches the peak at its last step */
        if (s.warmup > 0)
            assert_close(lr_at(&s, s.warmup - 1), s.lr, TOL_EXACT_REL, 0);
    }
    /* the edge, spelled out: warmup = steps - 1 = 9 */
    lr_schedule_t e = {.lr = 1.0, .lr_min = 0.1, .warmup = 9, .steps = 10};
    assert_true(lr_at(&e, 8) == 1.0);
    assert_true(lr_at(&e, 9) == 0.1);
}

/* One update of a one-tensor model from zero moments: m = (1 - b1) g,
 * v = (1 - b2) g^2, p' = p (1 - lr wd) - lr (m / (1 - b1)) / (sqrt(v / (1 - b2)) + eps)
 * = p (1 - lr wd) - lr g / (|g| + eps), and the gradients are zeroed. */
static void test_adamw_first_step(void **state)
{
    (void)state;
    enum { n = 5 };
    real p[n] = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f}, g[n] = {0.1f, -0.2f, 0.0f, 4.0f, -1e-3f};
    tensor_info_t t = {.name = "w", .numel = n, .offset = 0, .decay = true};
    model_t m;
    memset(&m, 0, sizeof m);
    m.n_tensors = 1;
    m.tensors = &t;
    m.n_local = n;
    m.params = p;
    m.grads = g;
    real g0[n], p0[n];
    memcpy(g0, g, sizeof g0);
    memcpy(p0, p, sizeof p0);
    adamw_t o;
    adamw_init(&o, n);
    adamw_hp_t hp = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
    double lr = 1e-2, clip = 0.5;
    adamw_step(&o, &m, 1, lr, clip, &hp);
    for (int i = 0; i < n; i++) {
        double gi = clip * g0[i];
        double want = p0[i] * (1 - lr * hp.weight_decay) - lr * gi / (fabs(gi) + hp.eps);
        assert_close(p[i], want, TOL_F32_OP, 0);
        assert_true(g[i] == 0);
        assert_close(o.m[i], (1 - hp.beta1) * gi, TOL_F32_OP, 0);
        assert_close(o.v[i], (1 - hp.beta2) * gi * gi, TOL_F32_OP, 0);
    }
    adamw_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_adamw_first_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
