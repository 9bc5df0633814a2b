/* Gradient checks in double: each kernel's backward, then the whole model's
 * gradient for dense (swin, pre), MoT with 2 and 3 modalities (QK-norm on), and a
 * batch where one modality is absent, against central finite differences. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/config.h"
#include "motscale/kernels.h"
#include "motscale/model.h"

static double urand(unsigned *s) { return (double)rand_r(s) / RAND_MAX * 2 - 1; }

/* ---- kernels: objective J = sum(c * y) with fixed random c -------------- */

static void test_rmsnorm(void **state)
{
    (void)state;
    enum { n = 3, d = 7 };
    unsigned seed = 1;
    double x[n * d], w[d], c[n * d], y[n * d], rs[n], dx[n * d] = {0}, dw[d] = {0};
    for (int i = 0; i < n * d; i++) x[i] = urand(&seed), c[i] = urand(&seed);
    for (int i = 0; i < d; i++) w[i] = 1 + 0.3 * urand(&seed);
    rmsnorm_forward(y, rs, x, w, n, d, 1e-5);
    rmsnorm_backward(dx, dw, c, x, w, rs, n, d);
    for (int i = 0; i < n * d + d; i++) {
        double *p = i < n * d ? &x[i] : &w[i - n * d], keep = *p, jp = 0, jm = 0;
        *p = keep + FD_STEP;
        rmsnorm_forward(y, rs, x, w, n, d, 1e-5);
        for (int k = 0; k < n * d; k++) jp += c[k] * y[k];
        *p = keep - FD_STEP;
        rmsnorm_forward(y, rs, x, w, n, d, 1e-5);
        for (int k = 0; k < n * d; k++) jm += c[k] * y[k];
        *p = keep;
        double fd = (jp - jm) / (2 * FD_STEP), an = i < n * d ? dx[i] : dw[i - n * d];
        assert_close(an, fd, TOL_FD_REL, TOL_FD_ABS);
    }
}

static void test_rope(void **state)
{
    (void)state;
    enum { hd = 8 };
    unsigned seed = 2;
    double x[hd], c[hd], y[hd], cs[hd / 2], sn[hd / 2], back[hd];
    for (int i = 0; i < hd; i++) x[i] = urand(&seed), c[i] = urand(&seed);
    for (int j = 0; j < hd / 2; j++) cs[j] = cos(0.7 * (j + 1)), sn[j] = sin(0.7 * (j + 1));
    /* backward of y = R x is R^T c = inverse rotation of c */
    rope_rotate(back, c, cs, sn, hd, 1);
    for (int i = 0; i < hd; i++) {
        double keep = x[i], jp = 0, jm = 0;
        x[i] = keep + FD_STEP;
        rope_rotate(y, x, cs, sn, hd, 0);
        for (int k = 0; k < hd; k++) jp += c[k] * y[k];
        x[i] = keep - FD_STEP;
        rope_rotate(y, x, cs, sn, hd, 0);
        for (int k = 0; k < hd; k++) jm += c[k] * y[k];
        x[i] = keep;
        assert_close(back[i], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
    }
}

/* The masked softmax over visible prefixes: every mask kind of attention is one
 * (causal i + 1, a bidirectional span's end, all keys, a cross-attention count,
 * none at all); masked entries are 0 and get no gradient. */
static void test_softmax(void **state)
{
    (void)state;
    enum { t = 5 };
    const int64_t hi[t] = {1, 0, 3, 5, 2};
    unsigned seed = 3;
    double s[t * t], c[t * t], p[t * t], ds[t * t];
    for (int i = 0; i < t * t; i++) s[i] = 2 * urand(&seed), c[i] = urand(&seed);
    memcpy(p, s, sizeof p);
    softmax_prefix(p, t, t, hi);
    memcpy(ds, c, sizeof ds);
    softmax_prefix_backward(ds, p, t, t, hi);
    for (int i = 0; i < t; i++) {
        double rowsum = 0;
        for (int j = 0; j < t; j++) {
            if (j >= hi[i]) {
                assert_true(p[i * t + j] == 0 && ds[i * t + j] == 0);
                continue;
            }
            rowsum += p[i * t + j];
            double keep = s[i * t + j], jp = 0, jm = 0, q[t * t];
            s[i * t + j] = keep + FD_STEP;
            memcpy(q, s, sizeof q);
            softmax_prefix(q, t, t, hi);
            for (int k = 0; k < t * t; k++) jp += c[k] * q[k];
            s[i * t + j] = keep - FD_STEP;
            memcpy(q, s, sizeof q);
            softmax_prefix(q, t, t, hi);
            for (int k = 0; k < t * t; k++) jm += c[k] * q[k];
            s[i * t + j] = keep;
            assert_close(ds[i * t + j], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
        }
        if (hi[i] > 0)
            assert_close(rowsum, 1.0, 1e-12, 0);
    }
}

static void test_swiglu(void **state)
{
    (void)state;
    enum { n = 9 };
    unsigned seed = 4;
    double u[n], w[n], c[n], s[n], du[n], dw[n];
    for (int i = 0; i < n; i++) u[i] = 2 * urand(&seed), w[i] = urand(&seed), c[i] = urand(&seed);
    swiglu_backward(du, dw, c, u, w, n);
    for (int i = 0; i < 2 * n; i++) {
        double *p = i < n ? &u[i] : &w[i - n], keep = *p, jp = 0, jm = 0;
        *p = keep + FD_STEP;
        swiglu_forward(s, u, w, n);
        for (int k = 0; k < n; k++) jp += c[k] * s[k];
        *p = keep - FD_STEP;
        swiglu_forward(s, u, w, n);
        for (int k = 0; k < n; k++) jm += c[k] * s[k];
        *p = keep;
        assert_close(i < n ? du[i] : dw[i - n], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
    }
}

static void test_cross_entropy(void **state)
{
    (void)state;
    enum { v = 11 };
    unsigned seed = 5;
    double z[v], dz[v];
    for (int i = 0; i < v; i++) z[i] = 3 * urand(&seed);
    double loss = cross_entropy_row(dz, z, 4, v, 1.0);
    /* closed form: -log softmax(z)[4] */
    double mx = z[0], sum = 0;
    for (int i = 1; i < v; i++) mx = z[i] > mx ? z[i] : mx;
    for (int i = 0; i < v; i++) sum += exp(z[i] - mx);
    assert_close(loss, log(sum) + mx - z[4], 1e-12, 1e-12);
    for (int i = 0; i < v; i++) {
        double keep = z[i], tmp[v];
        z[i] = keep + FD_STEP;
        double lp = cross_entropy_row(tmp, z, 4, v, 1.0);
        z[i] = keep - FD_STEP;
        double lm = cross_entropy_row(tmp, z, 4, v, 1.0);
        z[i] = keep;
        assert_close(dz[i], (lp - lm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
    }
}

/* ---- the whole model -------------------------------------------------------- */

/* B sequences of T positions; one test raises T past one attention block (64 query
 * rows) so the blocked path is checked too. */
enum { B = 2, T_MAX = 70 };
static int T = 6;

static void tiny_config(config_t *cfg, const char *kind, int nmod, int norm, bool qk)
{
    char err[512];
    char mods[64], mix[32];
    snprintf(mods, sizeof mods, "%s", nmod == 1 ? "text" : nmod == 2 ? "text,image" : "text,image,speech");
    snprintf(mix, sizeof mix, "%s", nmod == 1 ? "1" : nmod == 2 ? "1,1" : "1,1,1");
    char o1[80], o2[80], o3[80], o4[80], o5[80];
    snprintf(o5, sizeof o5, "model.seq_len=%d", T);
    snprintf(o1, sizeof o1, "model.kind=%s", kind);
    snprintf(o2, sizeof o2, "data.modalities=%s", mods);
    snprintf(o3, sizeof o3, "data.mix=%s", mix);
    snprintf(o4, sizeof o4, "model.norm=%s", norm == NORM_PRE ? "pre" : "swin");
    char *over[] = {o1, o2, o3, o4, "model.d_model=8", "model.n_heads=2", "model.n_layers=2",
                    "model.d_ff=12", o5, qk ? "model.qk_norm=true" : "model.qk_norm=false"};
    if (!config_load(cfg, NULL, 10, over, err, sizeof err))
        fail_msg("config: %s", err);
}

static void tiny_vocab(vocab_t *v, int nmod)
{
    memset(v, 0, sizeof *v);
    const char *names[] = {"text", "image", "speech"};
    v->n_modalities = nmod;
    for (int m = 0; m < nmod; m++) {
        snprintf(v->names[m], sizeof v->names[m], "%s", names[m]);
        v->lo[m] = 7 * m;
        v->hi[m] = 7 * m + 7;
    }
    v->size = 7 * nmod;
}

static double total_loss(model_t *m, const int32_t *win, int nmod)
{
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    model_forward(m, win, B, 0, ls, cnt);
    double s = 0;
    for (int k = 0; k < nmod; k++) s += ls[k];
    return s / (double)(B * T);
}

/* Check every parameter's gradient; returns the number compared. skip_mod >= 0
 * keeps that modality out of the tokens and checks its tower's gradient is zero. */
static void check_model(const char *kind, int nmod, int norm, bool qk, int skip_mod)
{
    config_t cfg;
    vocab_t v;
    tiny_config(&cfg, kind, nmod, norm, qk);
    tiny_vocab(&v, nmod);
    model_t m;
    tp_ctx_t tp = {.comm = 0, .rank = 0, .size = 1};
    model_build(&m, &cfg.model, &v, tp, B);
    model_init_params(&m, 7, &(model_init_t){.std = 0.5}); /* large init: gradients well above rounding */
    int32_t win[B * (T_MAX + 1)];
    unsigned seed = 11;
    for (int i = 0; i < B * (T + 1); i++) {
        int mod;
        do mod = rand_r(&seed) % nmod; while (mod == skip_mod);
        win[i] = v.lo[mod] + rand_r(&seed) % 7;
    }
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    model_zero_grads(&m);
    model_forward(&m, win, B, 1.0 / (B * T), ls, cnt);
    model_backward(&m);
    double *g = malloc(m.n_local * sizeof *g);
    memcpy(g, m.grads, m.n_local * sizeof *g);
    for (size_t i = 0; i < m.n_local; i++) {
        double keep = m.params[i];
        m.params[i] = keep + FD_STEP;
        double lp = total_loss(&m, win, nmod);
        m.params[i] = keep - FD_STEP;
        double lm = total_loss(&m, win, nmod);
        m.params[i] = keep;
        double fd = (lp - lm) / (2 * FD_STEP);
        if (!close_enough(g[i], fd, TOL_FD_MODEL_REL, TOL_FD_MODEL_ABS)) {
            const char *name = "?";
            for (int k = 0; k < m.n_tensors; k++)
                if (i >= m.tensors[k].offset && i < m.tensors[k].offset + m.tensors[k].numel)
                    name = m.tensors[k].name;
            fail_msg("%s/%d mod: %s[%zu] analytic %.10g vs finite difference %.10g", kind, nmod,
                     name, i, g[i], fd);
        }
    }
    if (skip_mod >= 0) {
        int t = cfg.model.tower_of[skip_mod];
        for (int k = 0; k < m.n_tensors; k++)
            if (m.tensors[k].tower == t)
                for (size_t j = 0; j < m.tensors[k].numel; j++)
                    assert_true(g[m.tensors[k].offset + j] == 0.0);
    }
    free(g);
    model_free(&m);
}

/* FD in double through two layers: tolerance 1e-5 relative (the composition of
 * many O(1) terms loses more digits than one kernel), 1e-9 absolute. */
static void test_dense_swin(void **s) { (void)s; check_model("dense", 2, NORM_SWIN, false, -1); }
static void test_dense_pre(void **s) { (void)s; check_model("dense", 2, NORM_PRE, false, -1); }
static void test_mot2(void **s) { (void)s; check_model("mot", 2, NORM_SWIN, false, -1); }
static void test_mot3_qk(void **s) { (void)s; check_model("mot", 3, NORM_SWIN, true, -1); }
static void test_mot3_pre(void **s) { (void)s; check_model("mot", 3, NORM_PRE, true, -1); }
static void test_mot3_absent(void **s) { (void)s; check_model("mot", 3, NORM_SWIN, false, 1); }
/* T = 70: query blocks of 64 and 6 rows seeing 64 and 70 keys */
static void test_mot2_blocks(void **s)
{
    (void)s;
    T = 70;
    check_model("mot", 2, NORM_SWIN, false, -1);
    T = 6;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),     cmocka_unit_test(test_rope),
        cmocka_unit_test(test_softmax),     cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_cross_entropy), cmocka_unit_test(test_dense_swin),
        cmocka_unit_test(test_dense_pre),   cmocka_unit_test(test_mot2),
        cmocka_unit_test(test_mot3_qk),     cmocka_unit_test(test_mot3_pre),
        cmocka_unit_test(test_mot3_absent), cmocka_unit_test(test_mot2_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
