/* The cost model's pieces against closed forms (docs/performance.md, "The cost
 * model"): the collective formulas (ring, tree, Rabenseifner) at p = 2, 4, 8, 1024 written out here
 * independently; the alpha-beta fit recovering a known link exactly from noise-free
 * times, one regime and three (a protocol switch at 4 KiB, a slower regime above
 * 4 MiB), point-to-point and all-reduce; and the projection's GEMM and TP terms at a
 * given GEMM rate. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#include "motscale/cost.h"

/* Tolerance: noise-free inputs, so the fit is exact up to the rounding of a 2 x 2
 * least-squares solve on values spanning 1 KiB .. 16 MiB: 1e-9 relative. */
#define TOL_FIT 1e-9

static void test_collectives(void **state)
{
    (void)state;
    cost_net_t net = {.n = 1, .upto = {INFINITY}, .alpha = {2e-6}, .beta = {1e-10}};
    const char *algo;
    int ps[] = {2, 4, 8, 1024};
    double ns[] = {64, 65536, 16777216};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            double p = ps[i], n = ns[j], a = 2e-6, b = 1e-10, lg = log2(p);
            double ring = 2 * (p - 1) * a + 2 * (p - 1) / p * n * b, tree = lg * (a + n * b);
            double rab = 2 * lg * a + 2 * (p - 1) / p * n * b, best = fmin(ring, fmin(tree, rab));
            assert_close(cost_allreduce(&net, ps[i], n, &algo), best, 1e-12, 0);
            assert_string_equal(algo, best == tree ? "tree" : best == rab ? "rabenseifner" : "ring");
            double rs = fmin((p - 1) * a, lg * a) + (p - 1) / p * n * b;
            assert_close(cost_reduce_scatter(&net, ps[i], n, &algo), rs, 1e-12, 0);
            assert_close(cost_allgather(&net, ps[i], n, &algo), rs, 1e-12, 0);
        }
    assert_true(cost_allreduce(&net, 1, 1e6, &algo) == 0);
    /* at p = 2 recursive doubling is one exchange: alpha + n beta */
    assert_close(cost_allreduce(&net, 2, 1e6, &algo), 2e-6 + 1e6 * 1e-10, 1e-12, 0);
}

static void sizes(double *bytes, int n)
{
    for (int i = 0; i < n; i++)
        bytes[i] = 1024.0 * pow(2, i);
}

static void test_fit_p2p(void **state)
{
    (void)state;
    enum { n = 15 };
    double bytes[n], t[n], worst;
    sizes(bytes, n);
    /* three regimes: eager up to 2 KiB, rendezvous up to 4 MiB, then a slower one */
    double a[3] = {3e-7, 2.5e-6, 1e-4}, b[3] = {6e-11, 7e-11, 3e-10};
    for (int i = 0; i < n; i++) {
        int k = bytes[i] <= 2048 ? 0 : bytes[i] <= 4194304 ? 1 : 2;
        t[i] = a[k] + bytes[i] * b[k];
    }
    cost_net_t net;
    assert_true(cost_fit_net(&net, 0, 2, bytes, t, n, 3, &worst));
    assert_int_equal(net.n, 3);
    assert_true(worst < TOL_FIT);
    assert_close(net.upto[0], 2048, 0, 0);
    assert_close(net.upto[1], 4194304, 0, 0);
    for (int k = 0; k < 3; k++) {
        assert_close(net.alpha[k], a[k], 1e-6, 0);
        assert_close(net.beta[k], b[k], TOL_FIT * 1e3, 0);
    }
    for (int i = 0; i < n; i++)
        assert_close(cost_p2p(&net, bytes[i]), t[i], TOL_FIT, 0);
    /* one regime allowed: the single line of least relative error, worse than 1% here */
    assert_true(cost_fit_net(&net, 0, 2, bytes, t, n, 1, &worst));
    assert_int_equal(net.n, 1);
    assert_true(worst > 0.01);
    /* four regimes (a protocol switch at 8 KiB inside the second): found when four
     * are allowed, each alpha and beta back; with three the worst error stays above 1% */
    double a4[4] = {3e-7, 4e-6, 2.5e-6, 1e-4}, b4[4] = {6e-11, 2e-10, 7e-11, 3e-10};
    for (int i = 0; i < n; i++) {
        int k = bytes[i] <= 2048 ? 0 : bytes[i] <= 16384 ? 1 : bytes[i] <= 4194304 ? 2 : 3;
        t[i] = a4[k] + bytes[i] * b4[k];
    }
    assert_true(cost_fit_net(&net, 0, 2, bytes, t, n, 4, &worst));
    assert_int_equal(net.n, 4);
    assert_true(worst < TOL_FIT);
    assert_close(net.upto[1], 16384, 0, 0);
    for (int k = 0; k < 4; k++) {
        assert_close(net.alpha[k], a4[k], 1e-6, 0);
        assert_close(net.beta[k], b4[k], TOL_FIT * 1e3, 0);
    }
    assert_true(cost_fit_net(&net, 0, 2, bytes, t, n, 3, &worst));
    assert_true(worst > 0.01);
}

static void test_fit_allreduce(void **state)
{
    (void)state;
    enum { n = 15 };
    double bytes[n], t[n], worst;
    sizes(bytes, n);
    cost_net_t truth = {.n = 1, .upto = {INFINITY}, .alpha = {4e-6}, .beta = {2e-10}};
    const char *algo;
    for (int i = 0; i < n; i++)
        t[i] = cost_allreduce(&truth, 4, bytes[i], &algo); /* tree for small, Rabenseifner for large */
    cost_net_t net;
    assert_true(cost_fit_net(&net, 1, 4, bytes, t, n, 1, &worst));
    assert_close(net.alpha[0], 4e-6, 1e-6, 0);
    assert_close(net.beta[0], 2e-10, 1e-6, 0);
    assert_true(worst < 1e-6);
}

/* At --gemm-rate R the GEMM term is the FLOPs of the step's products over R:
 * linears 3 x 2 N (4 d^2 + 3 d f) per layer, the head 3 x 2 N d V, attention (T = 64,
 * one block of 64 query rows against 64 keys) 6 x 2 x 64 x 64 x hd per head and
 * sequence per layer; the TP term 4 L all-reduces of N d fp32. */
static void test_project_terms(void **state)
{
    (void)state;
    model_shape_t s;
    memset(&s, 0, sizeof s);
    s.kind = MODEL_DENSE;
    s.d_model = 64;
    s.n_layers = 2;
    s.n_heads = 4;
    s.d_ff = 256;
    s.seq_len = 64;
    s.n_modalities = 1;
    s.n_towers = 1;
    s.norm_eps = 1e-5;
    s.rope_theta = 10000;
    int V = 512, B = 4, tp = 2;
    double R = 1e9, share[MAX_MODALITIES] = {1};
    cost_rates_t r = {.gemm_flops = R, .stream_bytes = 1e10, .stream_big = 1e10, .softmax_elems = 1e9, .xent_elems = 1e9};
    cost_net_t net = {.n = 1, .upto = {INFINITY}, .alpha = {1e-5}, .beta = {1e-9}};
    cost_layout_t l = {.tp = tp, .dp = 1, .micro_batch = B, .n_micro = 1, .bucket_mb = 4};
    cost_step_t c;
    char err[256];
    assert_true(cost_project(&c, &s, V, share, &l, &r, &net, err, sizeof err));
    double N = B * 64.0, d = 64, f = 256, hd = 16, H = 4.0 / tp;
    double lin = 2 * (3 * 2 * N * (4 * d * d + 3 * d * f) / tp);
    double att = 2 * B * H * 6 * 2 * 64.0 * 64 * hd, head = 3 * 2 * N * d * V;
    assert_close(c.gemm_s, (lin + att + head) / R, 1e-12, 0);
    double ar = 1e-5 + N * d * 4 * 1e-9; /* p = 2: one exchange */
    assert_close(c.tp_s, 4 * 2 * ar, 1e-12, 0);
    assert_true(c.dp_s == 0 && c.gather_s == 0);
    assert_close(c.step_s, c.gemm_s + c.elem_s + c.tp_s + c.dp_exposed_s + c.gather_s + c.small_s, 1e-12, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collectives),
        cmocka_unit_test(test_fit_p2p),
        cmocka_unit_test(test_fit_allreduce),
        cmocka_unit_test(test_project_terms),
    };
    return cmocka_run_group_tests_name("test_cost", tests, NULL, NULL);
}
