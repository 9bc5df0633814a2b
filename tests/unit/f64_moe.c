/* The mixture-of-experts FFN in double (issue 12): expert choice against a hand count
 * (each expert's tokens for known router probabilities, ties, capacity, groups and
 * top-1), each token's combined output against a direct evaluation of the
 * equations, and the whole model's gradient (router, gate scaling, experts, z-loss)
 * against central finite differences. Expert choice is piecewise constant in the
 * parameters, so the finite differences hold the routing of the analytic pass fixed
 * (model_t.moe_freeze_routing) and say so. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/config.h"
#include "motscale/model.h"
#include "motscale/tower.h"
/* white-box: the layer under test is private to src/model */
#include "../../src/model/layers.h"

/* ---- expert choice by hand ---------------------------------------------------- */

/* Six rows, three experts. Probabilities chosen so the hand count has a tie inside
 * the top k (expert 0: rows 0 and 4 at .5), a tie at the boundary (expert 1: rows 0,
 * 2, 5 at .3 for its second place; the earliest row, 0, wins), rows no expert
 * takes (2 and 5 under capacity 1) and rows two experts take (0 and 4). */
static const double P[6][3] = {
    {.5, .3, .2}, {.1, .6, .3}, {.4, .3, .3}, {.2, .2, .6}, {.5, .1, .4}, {.3, .3, .4},
};

static void route(int n, const int64_t *groups, int n_groups, double capacity, bool top1, int64_t *rows,
                  int64_t *off)
{
    real probs[6 * 3];
    for (int t = 0; t < 6; t++)
        for (int e = 0; e < 3; e++)
            probs[t * 3 + e] = (real)P[t][e];
    moe_geom_t g = {.E = 3, .capacity = capacity, .tp_size = 1};
    int64_t scratch[8];
    moe_route(&g, probs, n, groups, n_groups, top1, rows, off, scratch);
}

static void expect_rows(const int64_t *rows, const int64_t *off, const int *want, const int *want_off)
{
    for (int e = 0; e <= 3; e++)
        assert_int_equal(off[e], want_off[e]);
    for (int i = 0; i < want_off[3]; i++)
        assert_int_equal(rows[i], want[i]);
}

static void test_route_by_hand(void **state)
{
    (void)state;
    int64_t rows[18], off[4], one[2] = {0, 6};
    /* capacity 1: k = 6 / 3 = 2. Expert 0 by p0: .5 (0), .5 (4) -> {0, 4}; expert 1 by
     * p1: .6 (1), then .3 at rows 0, 2, 5 -> row 0 -> {0, 1}; expert 2 by p2: .6 (3),
     * then .4 at rows 4, 5 -> row 4 -> {3, 4}. Rows 2 and 5 are taken by none. */
    route(6, one, 1, 1.0, false, rows, off);
    expect_rows(rows, off, (int[]){0, 4, 0, 1, 3, 4}, (int[]){0, 2, 4, 6});
    /* capacity 0.5: k = ceil(1) = 1: {0}, {1}, {3} */
    route(6, one, 1, 0.5, false, rows, off);
    expect_rows(rows, off, (int[]){0, 1, 3}, (int[]){0, 1, 2, 3});
    /* capacity 2: k = 4: e0 .5 .5 .4 .3 -> {0, 4, 2, 5}; e1 .6 .3 .3 .3 -> {1, 0, 2, 5};
     * e2 .6 .4 .4 .3 (rows 3; 4, 5; then .3 at rows 1, 2 -> 1), each gathered in row order */
    route(6, one, 1, 2.0, false, rows, off);
    expect_rows(rows, off, (int[]){0, 2, 4, 5, 0, 1, 2, 5, 1, 3, 4, 5}, (int[]){0, 4, 8, 12});
    /* two groups (sequences) of 3 rows, capacity 1: k = 1 in each. Group {0,1,2}:
     * e0 -> 0, e1 -> 1, e2 -> 1 (.3 at 1 and 2: row 1). Group {3,4,5}: e0 -> 4,
     * e1 -> 5 (.2 .1 .3), e2 -> 3 */
    int64_t two[3] = {0, 3, 6};
    route(6, two, 2, 1.0, false, rows, off);
    expect_rows(rows, off, (int[]){0, 4, 1, 5, 1, 3}, (int[]){0, 2, 4, 6});
    /* top-1: each row to its most probable expert, the lower expert on a tie:
     * rows 0 -> 0, 1 -> 1, 2 -> 0, 3 -> 2, 4 -> 0, 5 -> 2 */
    route(6, one, 1, 1.0, true, rows, off);
    expect_rows(rows, off, (int[]){0, 2, 4, 1, 3, 5}, (int[]){0, 3, 4, 6});
}

/* ---- each token's combined output, by hand --------------------------------------- */

static void tiny(config_t *cfg, int n_over, char **extra)
{
    char err[512];
    char *over[24] = {"model.d_model=4", "model.n_heads=2", "model.n_layers=1", "model.d_ff=5", "model.seq_len=6",
                      "data.modalities=text,image", "data.mix=1,1"};
    int n = 7;
    for (int i = 0; i < n_over; i++)
        over[n++] = extra[i];
    if (!config_load(cfg, NULL, n, over, err, sizeof err))
        fail_msg("config: %s", err);
}

static void tiny_vocab(vocab_t *v)
{
    memset(v, 0, sizeof *v);
    v->n_modalities = 2;
    snprintf(v->names[0], sizeof v->names[0], "text");
    snprintf(v->names[1], sizeof v->names[1], "image");
    v->lo[0] = 0, v->hi[0] = 7, v->lo[1] = 7, v->hi[1] = 14;
    v->size = 14;
}

static int index_of(const model_t *m, const tensor_info_t *t) { return (int)(t - m->tensors); }

static double silu(double u) { return u / (1 + exp(-u)); }

/* Router probabilities for the combined output, every k-th/(k+1)-th gap >= .05 so
 * rounding cannot move a choice. Capacity 1, k = 2: expert 0 by p0 .7 (0), .45 (3)
 * -> {0, 3}; expert 1 by p1 .8 (1), .5 (3) -> {1, 3}; expert 2 by p2 .55 (4), .5 (2)
 * -> {2, 4}. Row 3 is taken twice, row 5 by none. */
static const double Q[6][3] = {
    {.7, .2, .1}, {.1, .8, .1}, {.2, .3, .5}, {.45, .5, .05}, {.3, .15, .55}, {.15, .45, .4},
};

/* x_t = (log Q[t], 0) and W_r = [I; 0] make the router probabilities exactly Q's rows;
 * each expert's weights are the model's random init. The expected output of row t is
 * the sum over the experts of the hand count above that took t of Q[t][e] x
 * SwiGLU_e(x_t), SwiGLU evaluated here from its definition; row 5 (taken by none) is
 * exactly 0, so the block's output is its residual alone. */
static void test_combine_by_hand(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    tiny(&cfg, 2, (char *[]){"model.kind=moe", "model.moe_experts=3"});
    tiny_vocab(&v);
    model_t m;
    model_build(&m, &cfg.model, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, 1);
    model_init_params(&m, 3, &(model_init_t){.std = 0.5});
    enum { n = 6, d = 4, E = 3, f = 5 };
    const tensor_info_t *wr = tower_expert_tensor(&m, ROLE_ROUTER, 0, 0, 0);
    assert_non_null(wr);
    assert_int_equal(wr->rows, d);
    assert_int_equal(wr->cols, E);
    real *W = m.params + wr->offset;
    for (int i = 0; i < d * E; i++)
        W[i] = (i / E == i % E) ? 1 : 0;
    real x[n * d];
    for (int t = 0; t < n; t++) {
        for (int j = 0; j < 3; j++)
            x[t * d + j] = log(Q[t][j]);
        x[t * d + 3] = 0;
    }
    int w1[E], w3[E], w2[E];
    for (int e = 0; e < E; e++) {
        w1[e] = index_of(&m, tower_expert_tensor(&m, ROLE_W1, 0, 0, e));
        w3[e] = index_of(&m, tower_expert_tensor(&m, ROLE_W3, 0, 0, e));
        w2[e] = index_of(&m, tower_expert_tensor(&m, ROLE_W2, 0, 0, e));
    }
    moe_weights_t mw = {.router = index_of(&m, wr), .w1 = w1, .w3 = w3, .w2 = w2};
    moe_geom_t g = {.E = E, .capacity = 1, .tp_size = 1, .d = d, .fl = f};
    enum { R = 18 };
    real logits[n * E], probs[n * E], xe[R * d], ye[R * d], u[R * f], w[R * f], s[R * f], z[n * d];
    double lse[n];
    int64_t rows[R], off[E + 1], scratch[n], run_off[E + 1];
    int run[E], rw1[E], rw3[E], rw2[E];
    moe_acts_t A = {.logits = logits, .probs = probs, .lse = lse, .rows = rows, .off = off, .scratch = scratch,
                    .run = run, .run_off = run_off, .w1 = rw1, .w3 = rw3, .w2 = rw2, .xe = xe, .ye = ye,
                    .ffn = {u, w, s}};
    int64_t groups[2] = {0, n};
    moe_forward(&m, NULL, &g, &mw, &A, z, x, n, groups, 1, false);
    /* the routing is the hand count's */
    expect_rows(rows, off, (int[]){0, 3, 1, 3, 2, 4}, (int[]){0, 2, 4, 6});
    const int took[6][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}, {0, 0, 1}, {0, 0, 0}};
    for (int t = 0; t < n; t++) {
        for (int e = 0; e < E; e++)
            assert_close(probs[t * E + e], Q[t][e], 1e-12, 0);
        double want[d] = {0};
        for (int e = 0; e < E; e++) {
            if (!took[t][e])
                continue;
            const real *W1 = m.params + m.tensors[w1[e]].offset, *W3 = m.params + m.tensors[w3[e]].offset,
                       *W2 = m.params + m.tensors[w2[e]].offset;
            for (int j = 0; j < d; j++) {
                double acc = 0;
                for (int k = 0; k < f; k++) {
                    double a = 0, b = 0;
                    for (int i = 0; i < d; i++) {
                        a += x[t * d + i] * W1[i * f + k];
                        b += x[t * d + i] * W3[i * f + k];
                    }
                    acc += silu(a) * b * W2[k * d + j];
                }
                want[j] += Q[t][e] * acc;
            }
        }
        for (int j = 0; j < d; j++) {
            if (t == 5)
                assert_true(z[t * d + j] == 0.0); /* taken by none: the residual alone */
            assert_close(z[t * d + j], want[j], 1e-12, 1e-14);
        }
    }
    model_free(&m);
}

/* ---- the model's gradient against finite differences ------------------------------ */

enum { B = 2, T = 6 };

/* The objective the backward differentiates: mean cross-entropy over the B T targets
 * plus moe_zloss x sum of lse^2 over the routed rows and layers, / (B T). A forward
 * with gradient scale (so the z-loss is summed); routing as frozen. */
static double objective(model_t *m, const int32_t *win)
{
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    m->aux_loss_sum = 0;
    model_forward(m, win, B, (real)(1.0 / (B * T)), ls, cnt);
    return (ls[0] + ls[1] + m->aux_loss_sum) / (double)(B * T);
}

static void check_moe(int n_over, char **over)
{
    config_t cfg;
    vocab_t v;
    char *all[16] = {"model.n_layers=2"};
    for (int i = 0; i < n_over; i++)
        all[i + 1] = over[i];
    tiny(&cfg, n_over + 1, all);
    tiny_vocab(&v);
    model_t m;
    model_build(&m, &cfg.model, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, B);
    model_init_params(&m, 5, &(model_init_t){.std = 0.5});
    int32_t win[B * (T + 1)];
    unsigned seed = 13;
    for (int i = 0; i < B * (T + 1); i++)
        win[i] = rand_r(&seed) % 14;
    model_zero_grads(&m);
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    m.aux_loss_sum = 0;
    model_forward(&m, win, B, (real)(1.0 / (B * T)), ls, cnt);
    model_backward(&m);
    assert_true(cfg.model.moe_zloss == 0 || m.aux_loss_sum > 0);
    double *g = malloc(m.n_local * sizeof *g);
    memcpy(g, m.grads, m.n_local * sizeof *g);
    /* the routing of the pass above, from here on */
    m.moe_freeze_routing = true;
    int checked_router = 0, checked_expert = 0;
    for (size_t i = 0; i < m.n_local; i++) {
        double keep = m.params[i];
        m.params[i] = keep + FD_STEP;
        double jp = objective(&m, win);
        m.params[i] = keep - FD_STEP;
        double jm = objective(&m, win);
        m.params[i] = keep;
        double fd = (jp - jm) / (2 * FD_STEP);
        const tensor_info_t *t = NULL;
        for (int k = 0; k < m.n_tensors; k++)
            if (i >= m.tensors[k].offset && i < m.tensors[k].offset + m.tensors[k].numel)
                t = &m.tensors[k];
        if (!close_enough(g[i], fd, TOL_FD_MODEL_REL, TOL_FD_MODEL_ABS))
            fail_msg("%s[%zu] analytic %.10g vs finite difference %.10g", t->name, i - t->offset, g[i], fd);
        checked_router += t->role == ROLE_ROUTER && fabs(g[i]) > 1e-6;
        checked_expert += t->expert >= 0 && fabs(g[i]) > 1e-6;
    }
    /* the router's gradient (gate scaling, softmax, z-loss) and the experts' are not trivially zero */
    assert_true(checked_router > 0);
    assert_true(checked_expert > 0);
    print_message("# %d router and %d expert gradient entries above 1e-6 checked\n", checked_router, checked_expert);
    free(g);
    model_free(&m);
}

static void test_fd_moe(void **s)
{
    (void)s;
    check_moe(2, (char *[]){"model.kind=moe", "model.moe_experts=3"});
}
static void test_fd_moe_zloss_pre(void **s)
{
    (void)s;
    check_moe(4, (char *[]){"model.kind=moe", "model.moe_experts=4", "model.moe_zloss=0.05", "model.norm=pre"});
}
static void test_fd_moe_sequence_capacity(void **s)
{
    (void)s;
    check_moe(5, (char *[]){"model.kind=moe", "model.moe_experts=3", "model.moe_group=sequence",
                            "model.moe_capacity=1.5", "model.moe_zloss=0.01"});
}
static void test_fd_hybrid(void **s)
{
    (void)s;
    check_moe(4, (char *[]){"model.kind=mot", "model.moe_towers=text", "model.moe_experts=2", "model.moe_zloss=0.02"});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_by_hand),  cmocka_unit_test(test_combine_by_hand),
        cmocka_unit_test(test_fd_moe),         cmocka_unit_test(test_fd_moe_zloss_pre),
        cmocka_unit_test(test_fd_moe_sequence_capacity), cmocka_unit_test(test_fd_hybrid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
