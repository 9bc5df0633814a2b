/* The zipper kind in double (issue 15): the whole model's gradient against central
 * finite differences, with every gate at 0 (only the gates move the loss at first
 * order there) and away from it (the cross-attention, its projections between the
 * widths, the gated FFNs and the input MLPs), under swin and under pre norms with
 * QK-norm; with both backbones frozen, the trainable tensors still match (the
 * gradient flows through the frozen towers) and the frozen ones have none. Also the
 * float file's checks again in double (zipper_cases.h). */
#include "zipper_cases.h"

/* The objective the backward differentiates: the mean cross-entropy over every
 * target of both towers. */
static double objective(model_t *m, const int32_t *win, int64_t n_targets)
{
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    model_forward(m, win, ZB, (real)(1.0 / (double)n_targets), ls, cnt);
    return (ls[0] + ls[1]) / (double)n_targets;
}

static const tensor_info_t *tensor_at(const model_t *m, size_t i)
{
    for (int k = 0; k < m->n_tensors; k++)
        if (i >= m->tensors[k].offset && i < m->tensors[k].offset + m->tensors[k].numel)
            return &m->tensors[k];
    return NULL;
}

/* FD over every parameter; counts the entries above 1e-6 by fusion role. */
static void check_fd(int n_extra, char **extra, double gate, int *by_role)
{
    config_t cfg;
    vocab_t v;
    zipper_config(&cfg, &v, n_extra, extra);
    model_t m;
    model_build(&m, &cfg.model, &v, ONE_RANK, ZB);
    model_init_params(&m, 5, &(model_init_t){.std = 0.5});
    set_gates(&m, (real)gate);
    int32_t win[ZB * (ZT + 1)];
    mask_windows(win);
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    model_forward(&m, win, ZB, 0, ls, cnt);
    int64_t n_targets = cnt[0] + cnt[1];
    /* every position but each stream's last in a window has a target */
    assert_true(n_targets >= ZB * ZT - 2 * ZB);
    model_zero_grads(&m);
    objective(&m, win, n_targets);
    model_backward(&m);
    double *g = calloc(m.n_local, sizeof *g);
    memcpy(g, m.grads, m.n_trainable * sizeof *g);
    for (size_t i = 0; i < m.n_local; i++) {
        const tensor_info_t *t = tensor_at(&m, i);
        if (t->frozen) /* beyond the gradient buffer: it has none */
            continue;
        double keep = m.params[i];
        m.params[i] = keep + FD_STEP;
        double jp = objective(&m, win, n_targets);
        m.params[i] = keep - FD_STEP;
        double jm = objective(&m, win, n_targets);
        m.params[i] = keep;
        double fd = (jp - jm) / (2 * FD_STEP);
        if (!close_enough(g[i], fd, TOL_FD_MODEL_REL, TOL_FD_MODEL_ABS))
            fail_msg("%s[%zu] analytic %.10g vs finite difference %.10g", t->name, i - t->offset, g[i], fd);
        if (t->role >= ROLE_N && fabs(g[i]) > 1e-6)
            by_role[t->role - ROLE_N]++;
    }
    free(g);
    model_free(&m);
}

static int count(const int *by_role, int role) { return by_role[role - ROLE_N]; }

static void test_fd_gates_zero(void **s)
{
    (void)s;
    int by[ZR_FGATE - ROLE_N + 1] = {0};
    check_fd(0, NULL, 0.0, by);
    /* at 0 the gates carry the gradient; the gated branches' weights have none */
    assert_true(count(by, ZR_MLP_GATE) == 2 && count(by, ZR_XGATE) == 4 && count(by, ZR_FGATE) == 4);
    assert_int_equal(count(by, ZR_XQ) + count(by, ZR_PROJ) + count(by, ZR_MLP_A), 0);
}

static void expect_all_roles(const int *by)
{
    for (int r = ZR_MLP_A; r <= ZR_FGATE; r++)
        if (count(by, r) == 0)
            fail_msg("fusion role %d: no gradient entry above 1e-6 checked", r);
}

static void test_fd_gates_open(void **s)
{
    (void)s;
    int by[ZR_FGATE - ROLE_N + 1] = {0};
    check_fd(0, NULL, 0.6, by);
    expect_all_roles(by);
    print_message("# projections %d, cross q %d, input MLP %d entries checked\n", count(by, ZR_PROJ),
                  count(by, ZR_XQ), count(by, ZR_MLP_A));
}

static void test_fd_pre_qknorm(void **s)
{
    (void)s;
    int by[ZR_FGATE - ROLE_N + 1] = {0};
    check_fd(2, (char *[]){"model.norm=pre", "model.qk_norm=true"}, -0.4, by);
    expect_all_roles(by);
}

static void test_fd_frozen(void **s)
{
    (void)s;
    int by[ZR_FGATE - ROLE_N + 1] = {0};
    check_fd(1, (char *[]){"zipper.freeze=both"}, 0.6, by);
    expect_all_roles(by);
    /* the table: every backbone tensor frozen and after every trainable one */
    config_t cfg;
    vocab_t v;
    zipper_config(&cfg, &v, 1, (char *[]){"zipper.freeze=text"});
    model_t m;
    model_build(&m, &cfg.model, &v, ONE_RANK, ZB);
    size_t frozen = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const tensor_info_t *t = &m.tensors[i];
        bool backbone = t->role < ROLE_N && !strncmp(t->name, "text.", 5);
        assert_int_equal(t->frozen, backbone);
        if (t->frozen) {
            assert_true(t->offset >= m.n_trainable);
            frozen += t->numel;
        } else {
            assert_true(t->offset + t->numel <= m.n_trainable);
        }
    }
    assert_int_equal(frozen + m.n_trainable, m.n_local);
    assert_true(frozen > 0);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gates_zero_is_dense), cmocka_unit_test(test_cross_mask),
        cmocka_unit_test(test_fd_gates_zero),       cmocka_unit_test(test_fd_gates_open),
        cmocka_unit_test(test_fd_pre_qknorm),       cmocka_unit_test(test_fd_frozen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
