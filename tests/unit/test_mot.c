/* Towers against dense (DESIGN.md §9, issue 8): MoT with one modality and `towers`
 * with every modality in one group are the dense model, bit for bit, over several
 * forward/backward/update steps on the same synthetic windows; a MoT whose towers
 * all start from the same weights gives the dense loss and gradients to rounding
 * (each dense tower gradient = the sum of the MoT towers' gradients). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/model.h"
#include "motscale/tower.h"

/* Small but not trivial: two blocks, several heads, both modalities' tokens in
 * every batch (text spans of ~8 tokens, 4 x 4 images inside 32-token windows). */
enum { B = 4, T = 32, STEPS = 3 };
#define SGD_LR 0.05f

static void load(config_t *cfg, int n, char **over)
{
    char err[1024];
    char *base[16] = {"model.d_model=32", "model.n_heads=4", "model.n_layers=2", "model.d_ff=64",
                      "model.seq_len=32", "data.text_span=8", "data.image_h=4", "data.image_w=4",
                      "data.speech_span=8", "run.seed=5"};
    int nb = 10;
    for (int i = 0; i < n; i++)
        base[nb++] = over[i];
    if (!config_load(cfg, NULL, nb, base, err, sizeof err))
        fail_msg("config_load: %s", err);
}

/* The first STEPS x B training windows of cfg's synthetic stream. */
static int32_t *windows_of(const config_t *cfg, vocab_t *v)
{
    char err[1024];
    if (!data_vocab(v, &cfg->data, err, sizeof err))
        fail_msg("vocab_from_config: %s", err);
    data_t *d = data_open(&cfg->data, v, SPLIT_TRAIN, err, sizeof err);
    if (!d)
        fail_msg("data_open: %s", err);
    int32_t *w = malloc(sizeof *w * STEPS * B * (T + 1));
    data_read(d, 0, STEPS * B, w);
    data_close(d);
    return w;
}

static void build(model_t *m, const config_t *cfg, const vocab_t *v)
{
    tp_ctx_t tp = {.comm = MPI_COMM_NULL, .rank = 0, .size = 1};
    model_build(m, &cfg->model, v, tp, B);
    model_init_params(m, cfg->seed, &cfg->init);
}

/* One step: zero, forward (mean CE over the batch), backward. */
static void step(model_t *m, const int32_t *win, double *ls, int64_t *cnt)
{
    memset(ls, 0, sizeof(double) * MAX_MODALITIES);
    memset(cnt, 0, sizeof(int64_t) * MAX_MODALITIES);
    model_zero_grads(m);
    model_forward(m, win, B, (real)(1.0 / (B * T)), ls, cnt);
    model_backward(m);
}

static void sgd(model_t *m)
{
    for (size_t i = 0; i < m->n_local; i++)
        m->params[i] -= SGD_LR * m->grads[i];
}

/* dense and the candidate, built from the same windows, must agree bit for bit in
 * the tensor table, the initial weights, every step's per-modality loss sums and
 * counts, and every gradient, while both take identical SGD steps. */
static void check_bit_identical(int n_dense, char **dense_over, int n_cand, char **cand_over)
{
    config_t cd, cc;
    vocab_t vd, vc;
    load(&cd, n_dense, dense_over);
    load(&cc, n_cand, cand_over);
    assert_int_equal(cc.model.n_towers, 1);
    int32_t *wd = windows_of(&cd, &vd), *wc = windows_of(&cc, &vc);
    assert_int_equal(vd.size, vc.size);
    assert_memory_equal(wd, wc, sizeof *wd * STEPS * B * (T + 1));

    model_t md, mc;
    build(&md, &cd, &vd);
    build(&mc, &cc, &vc);
    assert_int_equal(md.n_tensors, mc.n_tensors);
    assert_int_equal(md.n_local, mc.n_local);
    for (int k = 0; k < md.n_tensors; k++) {
        assert_string_equal(md.tensors[k].name, mc.tensors[k].name);
        assert_int_equal(md.tensors[k].offset, mc.tensors[k].offset);
    }
    assert_memory_equal(md.params, mc.params, md.n_local * sizeof(real));

    for (int s = 0; s < STEPS; s++) {
        double ld[MAX_MODALITIES], lc[MAX_MODALITIES];
        int64_t nd[MAX_MODALITIES], nc[MAX_MODALITIES];
        const int32_t *win = wd + (size_t)s * B * (T + 1);
        step(&md, win, ld, nd);
        step(&mc, win, lc, nc);
        int64_t total = 0;
        for (int mod = 0; mod < cd.data.n_modalities; mod++) {
            assert_int_equal(nd[mod], nc[mod]);
            total += nd[mod];
            if (memcmp(&ld[mod], &lc[mod], sizeof ld[mod]))
                fail_msg("step %d modality %d: loss sum dense %.17g vs candidate %.17g", s, mod,
                         ld[mod], lc[mod]);
        }
        assert_int_equal(total, B * T);
        for (size_t i = 0; i < md.n_local; i++)
            if (memcmp(&md.grads[i], &mc.grads[i], sizeof(real)))
                fail_msg("step %d: gradient element %zu: dense %.9g vs candidate %.9g", s, i,
                         (double)md.grads[i], (double)mc.grads[i]);
        sgd(&md);
        sgd(&mc);
    }
    model_free(&md);
    model_free(&mc);
    free(wd);
    free(wc);
}

static void test_mot_one_modality_is_dense(void **state)
{
    (void)state;
    char *dense[] = {"model.kind=dense", "data.modalities=text", "data.mix=1"};
    char *mot[] = {"model.kind=mot", "data.modalities=text", "data.mix=1"};
    check_bit_identical(3, dense, 3, mot);
}

static void test_towers_one_group_is_dense(void **state)
{
    (void)state;
    char *dense[] = {"model.kind=dense", "data.modalities=text,image", "data.mix=1,1"};
    char *towers[] = {"model.kind=towers", "model.towers=text,image", "data.modalities=text,image",
                      "data.mix=1,1"};
    check_bit_identical(3, dense, 4, towers);
}

static void test_towers_one_group_three_modalities_is_dense(void **state)
{
    (void)state;
    char *dense[] = {"model.kind=dense", "data.modalities=text,image,speech", "data.mix=1,1,1",
                     "model.qk_norm=true", "model.norm=pre"};
    char *towers[] = {"model.kind=towers", "model.towers=speech, text,image",
                      "data.modalities=text,image,speech", "data.mix=1,1,1", "model.qk_norm=true",
                      "model.norm=pre"};
    check_bit_identical(5, dense, 6, towers);
}

/* ---- identical towers --------------------------------------------------------- */

/* ||a - b|| / ||a|| over n floats, in double. */
static double rel_l2(const real *a, const real *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        num += (x - y) * (x - y);
        den += x * x;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void check_same_towers(int nmod, bool qk, int norm)
{
    char mods[64], mix[16], qks[32], norms[32];
    snprintf(mods, sizeof mods, "data.modalities=%s", nmod == 2 ? "text,image" : "text,image,speech");
    snprintf(mix, sizeof mix, "data.mix=%s", nmod == 2 ? "1,1" : "1,1,1");
    snprintf(qks, sizeof qks, "model.qk_norm=%s", qk ? "true" : "false");
    snprintf(norms, sizeof norms, "model.norm=%s", norm == NORM_PRE ? "pre" : "swin");
    char *dense_over[] = {"model.kind=dense", mods, mix, qks, norms};
    char *mot_over[] = {"model.kind=mot", "model.init_same_towers=true", mods, mix, qks, norms};
    config_t cd, cm;
    vocab_t vd, vm;
    load(&cd, 5, dense_over);
    load(&cm, 6, mot_over);
    assert_int_equal(cm.model.n_towers, nmod);
    int32_t *win = windows_of(&cd, &vd), *wm = windows_of(&cm, &vm);
    assert_memory_equal(win, wm, sizeof *win * B * (T + 1));

    model_t md, mm;
    build(&md, &cd, &vd);
    build(&mm, &cm, &vm);

    /* The first batch must exercise every tower, or the comparison says nothing. */
    int64_t seen[MAX_MODALITIES] = {0};
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            seen[vocab_modality(&vd, win[b * (T + 1) + i])]++;
    for (int mod = 0; mod < nmod; mod++)
        if (seen[mod] == 0)
            fail_msg("modality %d has no input token in the first batch", mod);

    /* Every MoT tensor starts equal (bitwise) to its dense counterpart. */
    for (int k = 0; k < mm.n_tensors; k++) {
        const tensor_info_t *t = &mm.tensors[k];
        const tensor_info_t *u = tower_tensor(&md, t->role, t->tower < 0 ? -1 : 0, t->layer);
        assert_non_null(u);
        assert_int_equal(t->numel, u->numel);
        assert_memory_equal(mm.params + t->offset, md.params + u->offset, t->numel * sizeof(real));
    }

    double ld[MAX_MODALITIES], lm[MAX_MODALITIES];
    int64_t nd[MAX_MODALITIES], nm[MAX_MODALITIES];
    step(&md, win, ld, nd);
    step(&mm, win, lm, nm);
    double worst_loss = 0, worst_grad = 0;
    const char *worst_name = "";
    for (int mod = 0; mod < nmod; mod++) {
        assert_int_equal(nd[mod], nm[mod]);
        assert_close(lm[mod], ld[mod], TOL_F32_REORDER, 0);
        double r = fabs(lm[mod] - ld[mod]) / fabs(ld[mod]);
        worst_loss = r > worst_loss ? r : worst_loss;
    }

    /* Dense gradient of a tower tensor = sum over MoT towers of that tensor's
     * gradient (each token's contribution goes to exactly one tower); the shared
     * embedding and head gradients are equal. Compared per tensor, norm-wise. */
    real *sum = malloc(md.n_local * sizeof *sum);
    for (int k = 0; k < md.n_tensors; k++) {
        const tensor_info_t *u = &md.tensors[k];
        for (size_t j = 0; j < u->numel; j++) {
            double acc = 0;
            for (int t = 0; t < (u->tower < 0 ? 1 : nmod); t++) {
                const tensor_info_t *v = tower_tensor(&mm, u->role, u->tower < 0 ? -1 : t, u->layer);
                acc += mm.grads[v->offset + j];
            }
            sum[u->offset + j] = (real)acc;
        }
        double r = rel_l2(md.grads + u->offset, sum + u->offset, u->numel);
        if (r > worst_grad) {
            worst_grad = r;
            worst_name = u->name;
        }
        if (!(r <= TOL_F32_GRAD_REORDER))
            fail_msg("%s: |g_dense - sum_t g_mot| / |g_dense| = %.3g > %.3g", u->name, r,
                     TOL_F32_GRAD_REORDER);
    }
    /* and the MoT towers really differ from each other (each saw only its own
     * tokens), so the sum above is not trivially n x one tower */
    const tensor_info_t *w0 = tower_tensor(&mm, ROLE_W1, 0, 0), *w1 = tower_tensor(&mm, ROLE_W1, 1, 0);
    assert_true(rel_l2(mm.grads + w0->offset, mm.grads + w1->offset, w0->numel) > 0.1);
    print_message("# %d modalities%s%s: worst loss rel diff %.3g, worst grad rel L2 diff %.3g (%s)\n",
                  nmod, qk ? ", qk_norm" : "", norm == NORM_PRE ? ", pre" : "", worst_loss,
                  worst_grad, worst_name);
    free(sum);
    free(win);
    free(wm);
    model_free(&md);
    model_free(&mm);
}

static void test_same_towers_mot2(void **s) { (void)s; check_same_towers(2, false, NORM_SWIN); }
static void test_same_towers_mot3(void **s) { (void)s; check_same_towers(3, true, NORM_PRE); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mot_one_modality_is_dense),
        cmocka_unit_test(test_towers_one_group_is_dense),
        cmocka_unit_test(test_towers_one_group_three_modalities_is_dense),
        cmocka_unit_test(test_same_towers_mot2),
        cmocka_unit_test(test_same_towers_mot3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
