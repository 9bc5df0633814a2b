/* Continuous images (issue 14, docs/model.md "Continuous images") in double: the MSE
 * loss, the timestep features and the span mask against hand counts and closed
 * forms; attention under the span mask, and the whole model with the diffusion
 * objective (patch encoder, timestep embedding, decoder, mask, both losses) against
 * central finite differences; the mask's reach through the whole model: a later
 * patch of an image changes an earlier patch's output, nothing after an image changes
 * anything before it, and text stays strictly causal. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/config.h"
#include "motscale/diffusion.h"
#include "motscale/model.h"
#include "motscale/tower.h"
/* white-box: the layers under test and the tower's activations are private to src/model */
#include "../../src/model/layers.h"
#include "../../src/model/tower_int.h"

static double urand(unsigned *s) { return (double)rand_r(s) / RAND_MAX * 2 - 1; }

/* ---- the layers by hand ------------------------------------------------------------ */

/* loss_r = mean_j (p - y)^2 by hand; gradient (2 scale / P)(p - y) against central
 * differences of scale x sum_r loss_r. */
static void test_mse(void **state)
{
    (void)state;
    enum { n = 3, P = 4 };
    real p[n * P], y[n * P], g[n * P];
    unsigned s = 3;
    for (int i = 0; i < n * P; i++) {
        p[i] = urand(&s);
        y[i] = urand(&s);
    }
    double sum[MAX_MODALITIES] = {0}, want = 0;
    int64_t cnt[MAX_MODALITIES] = {0};
    for (int r = 0; r < n; r++) {
        double a = 0;
        for (int j = 0; j < P; j++)
            a += (p[r * P + j] - y[r * P + j]) * (p[r * P + j] - y[r * P + j]);
        want += a / P;
    }
    memcpy(g, p, sizeof g);
    loss_mse(g, y, n, P, 1, 0.7, sum, cnt);
    assert_close(sum[1], want, TOL_EXACT_REL, 0);
    assert_int_equal(cnt[1], n);
    assert_true(sum[0] == 0 && cnt[0] == 0);
    for (int i = 0; i < n * P; i++) {
        real keep = p[i], q[n * P];
        double lp[MAX_MODALITIES] = {0}, lm[MAX_MODALITIES] = {0};
        int64_t c[MAX_MODALITIES] = {0};
        p[i] = keep + FD_STEP;
        memcpy(q, p, sizeof q);
        loss_mse(q, y, n, P, 0, 0, lp, c);
        p[i] = keep - FD_STEP;
        memcpy(q, p, sizeof q);
        loss_mse(q, y, n, P, 0, 0, lm, c);
        p[i] = keep;
        assert_close(g[i], 0.7 * (lp[0] - lm[0]) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
    }
}

/* F[i, j] = sin(t w_j), F[i, h + j] = cos(t w_j), w_j = 10000^(-j/h) */
static void test_timestep_features(void **state)
{
    (void)state;
    enum { dim = 6 };
    int32_t t[2] = {1, 500};
    real F[2 * dim];
    timestep_features(F, t, 2, dim);
    double w[3] = {1, pow(10000, -1.0 / 3), pow(10000, -2.0 / 3)};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            assert_close(F[i * dim + j], sin(t[i] * w[j]), TOL_EXACT_REL, TOL_EXACT_REL);
            assert_close(F[i * dim + 3 + j], cos(t[i] * w[j]), TOL_EXACT_REL, TOL_EXACT_REL);
        }
}

/* Span ids 0 0 1 1 1 0 2 2 0 3: rows inside a run see to its end, others i + 1. */
static void test_span_mask(void **state)
{
    (void)state;
    attn_mask_t mk;
    attn_mask_spans(&mk, 10, 2);
    int32_t span[10] = {0, 0, 1, 1, 1, 0, 2, 2, 0, 3};
    attn_mask_set_spans(&mk, 1, span);
    const int64_t want[10] = {1, 2, 5, 5, 5, 6, 8, 8, 9, 10};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(mk.hi[10 + i], want[i]);
        assert_int_equal(mk.hi[i], i + 1); /* sequence 0 untouched: causal */
    }
    attn_mask_free(&mk);
}

/* The cosine schedule against its closed form, and DDIM given the exact noise at
 * every step (e = (x - sqrt(abar_t) x0) / sqrt(1 - abar_t)) lands on x0. */
static void test_schedule_ddim(void **state)
{
    (void)state;
    diffusion_schedule_t sc;
    diffusion_schedule_init(&sc, 1000);
    /* before beta's clip binds, abar_t = f(t) / f(0) exactly (the product telescopes) */
    for (int t = 1; t <= 900; t += 97) {
        double f = cos((t / 1000.0 + 0.008) / 1.008 * M_PI / 2), f0 = cos(0.008 / 1.008 * M_PI / 2);
        assert_close(sc.abar[t], f * f / (f0 * f0), TOL_EXACT_REL, 0);
    }
    enum { n = 5 };
    float x0[n] = {0.3f, -1.2f, 0.0f, 2.0f, -0.7f}, eps[n] = {1.1f, -0.4f, 0.9f, -1.5f, 0.2f}, x[n], e[n];
    int32_t t[n] = {961, 961, 961, 961, 961};
    diffusion_noise(&sc, x, x0, eps, t, n, 1);
    for (int i = 0; i < n; i++)
        assert_close(x[i], sqrt(sc.abar[961]) * x0[i] + sqrt(1 - sc.abar[961]) * eps[i], TOL_F32_OP, TOL_F32_OP);
    for (int32_t ts = 961; ts > 0; ts -= 40) {
        for (int i = 0; i < n; i++)
            e[i] = (float)((x[i] - sqrt(sc.abar[ts]) * x0[i]) / sqrt(1 - sc.abar[ts]));
        diffusion_ddim_step(&sc, x, e, ts, ts - 40 > 0 ? ts - 40 : 0, n, 5.0);
    }
    for (int i = 0; i < n; i++)
        assert_close(x[i], x0[i], TOL_DDIM_F32, TOL_DDIM_F32);
    diffusion_schedule_free(&sc);
}

/* ---- attention under the span mask against finite differences --------------------- */

enum { AB = 2, AH = 2, AT = 9, AD = 4 };

static double attn_objective(const attn_geom_t *g, const real *q, const real *k, const real *v, const real *R,
                             real *att, attn_acts_t *A, attn_scratch_t *S)
{
    attention_forward(g, A, S, att, q, k, v);
    double j = 0;
    for (int i = 0; i < AB * AT * AH * AD; i++)
        j += att[i] * R[i];
    return j;
}

static void test_attention_spans_fd(void **state)
{
    (void)state;
    enum { N = AB * AT, dl = AH * AD };
    rope_t rope;
    rope_init(&rope, AT, AD, 10000);
    attn_mask_t mk;
    attn_mask_spans(&mk, AT, AB);
    int32_t sp0[AT] = {0, 1, 1, 1, 0, 0, 2, 2, 0}, sp1[AT] = {5, 5, 0, 0, 0, 1, 1, 1, 1};
    attn_mask_set_spans(&mk, 0, sp0);
    attn_mask_set_spans(&mk, 1, sp1);
    int64_t inv[N];
    for (int i = 0; i < N; i++)
        inv[i] = (i * 5) % N; /* a permutation (5 and 18 coprime): grouped rows out of order */
    attn_geom_t g = {.B = AB, .hl = AH, .T = AT, .hd = AD, .dl = dl, .inv = inv, .rope = &rope, .mask = &mk};
    static real q[N * dl], k[N * dl], v[N * dl], R[N * dl], att[N * dl], dq[N * dl], dk[N * dl], dv[N * dl];
    static real qa[N * dl], ka[N * dl], va[N * dl], p[AB * AH * AT * AT], o[AT * AD], dp[AT * AT], dqa[N * dl],
        dka[N * dl], dva[N * dl];
    attn_acts_t A = {qa, ka, va, p};
    attn_scratch_t S = {.o = o, .dp = dp, .dqa = dqa, .dka = dka, .dva = dva};
    unsigned s = 11;
    for (int i = 0; i < N * dl; i++) {
        q[i] = urand(&s);
        k[i] = urand(&s);
        v[i] = urand(&s);
        R[i] = urand(&s);
    }
    attention_forward(&g, &A, &S, att, q, k, v);
    /* a row inside a span puts weight on a later key of its span: P[b=0, h, i=1, j=3] > 0 */
    assert_true(p[1 * AT + 3] > 0);
    assert_true(p[0 * AT + 1] == 0); /* row 0 (outside spans) sees only key 0 */
    attention_backward(&g, &A, &S, dq, dk, dv, R);
    real *ins[3] = {q, k, v}, *grads[3] = {dq, dk, dv};
    for (int w = 0; w < 3; w++)
        for (int i = 0; i < N * dl; i++) {
            real keep = ins[w][i];
            ins[w][i] = keep + FD_STEP;
            double jp = attn_objective(&g, q, k, v, R, att, &A, &S);
            ins[w][i] = keep - FD_STEP;
            double jm = attn_objective(&g, q, k, v, R, att, &A, &S);
            ins[w][i] = keep;
            double fd = (jp - jm) / (2 * FD_STEP);
            if (!close_enough(grads[w][i], fd, TOL_FD_REL, TOL_FD_ABS))
                fail_msg("d%c[%d]: analytic %.10g vs finite difference %.10g", "qkv"[w], i, grads[w][i], fd);
        }
    rope_free(&rope);
    attn_mask_free(&mk);
}

/* ---- the whole model with the diffusion objective ---------------------------------- */

enum { B = 2, T = 12, P = 3, WL = T + 1 };

static void tiny(config_t *cfg, int n_over, char **extra)
{
    char err[512];
    char *over[24] = {"model.d_model=8", "model.n_heads=2", "model.n_layers=2", "model.d_ff=6", "model.seq_len=12",
                      "data.modalities=text,image", "data.mix=1,1", "model.image_objective=diffusion",
                      "data.patch_dim=3", "model.diffusion_steps=100", "train.diffusion_weight=2.5"};
    int n = 11;
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

/* Two windows of 13 positions. Window 0: text 0..2, an image at 3..6 (its caption
 * after it: kind POS_CAPTION_AFTER at 8, 9), text 7..9, an image cut by the window
 * end at 10..12. Window 1: an image cut at the start (0..1), text, an image at 5..8. */
static const int32_t WIN[B * WL] = {
    1, 2, 3, 7, 7, 7, 7, 4, 5, 6, 7, 7, 7,
    7, 7, 2, 3, 1, 8, 8, 8, 8, 5, 6, 2, 1,
};

typedef struct imgs {
    float xt[B * WL * P], eps[B * WL * P], pred[B * WL * P];
    int32_t t[B * WL];
    uint8_t kind[B * WL];
} imgs_t;

static void fill_images(imgs_t *im, const int32_t *win)
{
    unsigned s = 29;
    memset(im, 0, sizeof *im);
    for (int i = 0; i < B * WL; i++) {
        bool patch = win[i] >= 7;
        im->t[i] = patch ? 1 + (int32_t)(i * 7 % 100) : 0;
        im->kind[i] = patch ? POS_PATCH_CAPTION_FIRST : POS_OTHER;
        for (int j = 0; j < P; j++) {
            im->xt[i * P + j] = patch ? (float)urand(&s) : 0;
            im->eps[i * P + j] = patch ? (float)urand(&s) : 0;
        }
    }
    im->kind[8] = im->kind[9] = POS_CAPTION_AFTER;
}

static void point(model_t *m, imgs_t *im)
{
    m->images = (model_images_t){.xt = im->xt, .eps = im->eps, .t = im->t, .kind = im->kind, .pred = im->pred};
}

/* The objective the backward differentiates: (sum CE + lambda sum MSE) / (B T). */
static double objective(model_t *m, const int32_t *win)
{
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    model_forward(m, win, B, (real)(1.0 / (B * T)), ls, cnt);
    return (ls[0] + m->loss_weight[1] * ls[1]) / (double)(B * T);
}

static void check_model(int n_over, char **over)
{
    config_t cfg;
    vocab_t v;
    tiny(&cfg, n_over, over);
    tiny_vocab(&v);
    assert_int_equal(cfg.model.image_objective, IMAGE_DIFFUSION);
    model_t m;
    model_build(&m, &cfg.model, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, B);
    model_init_params(&m, 5, &(model_init_t){.std = 0.5});
    assert_close(m.loss_weight[1], 2.5, 0, 0);
    imgs_t im;
    fill_images(&im, WIN);
    point(&m, &im);
    model_zero_grads(&m);
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    m.caption_loss_sum = 0;
    m.caption_count = 0;
    model_forward(&m, WIN, B, (real)(1.0 / (B * T)), ls, cnt);
    model_backward(&m);
    /* hand counts: the patch inputs (positions < T) carry the MSE: window 0 3..6 and
     * 10, 11; window 1 0, 1 and 5..8. Cross-entropy on rows whose input and target are
     * text: window 0 rows 0, 1, 7, 8 (2 and 9 have a patch target); window 1 rows 2,
     * 3, 9, 10, 11 (4 has a patch target) */
    assert_int_equal(cnt[1], 4 + 2 + 2 + 4);
    assert_int_equal(cnt[0], 4 + 5);
    /* captions after their image: targets at 8 and 9, i.e. rows 7 and 8 */
    assert_int_equal(m.caption_count, 2);
    double *g = malloc(m.n_local * sizeof *g);
    memcpy(g, m.grads, m.n_local * sizeof *g);
    int checked[3] = {0, 0, 0};
    for (size_t i = 0; i < m.n_local; i++) {
        double keep = m.params[i];
        m.params[i] = keep + FD_STEP;
        double jp = objective(&m, WIN);
        m.params[i] = keep - FD_STEP;
        double jm = objective(&m, WIN);
        m.params[i] = keep;
        double fd = (jp - jm) / (2 * FD_STEP);
        const tensor_info_t *t = NULL;
        for (int k = 0; k < m.n_tensors; k++)
            if (i >= m.tensors[k].offset && i < m.tensors[k].offset + m.tensors[k].numel)
                t = &m.tensors[k];
        if (!close_enough(g[i], fd, TOL_FD_MODEL_REL, TOL_FD_MODEL_ABS))
            fail_msg("%s[%zu] analytic %.10g vs finite difference %.10g", t->name, i - t->offset, g[i], fd);
        if (fabs(g[i]) > 1e-6)
            checked[0] += t->role == ROLE_PATCH_IN, checked[1] += t->role == ROLE_TIME_EMBED,
                checked[2] += t->role == ROLE_PATCH_OUT;
    }
    for (int k = 0; k < 3; k++)
        assert_true(checked[k] > 0);
    print_message("# patch_in %d, time_embed %d, patch_out %d gradient entries above 1e-6 checked\n", checked[0],
                  checked[1], checked[2]);
    free(g);
    model_free(&m);
}

static void test_fd_dense(void **s)
{
    (void)s;
    check_model(0, NULL);
}
static void test_fd_mot_pre(void **s)
{
    (void)s;
    check_model(3, (char *[]){"model.kind=mot", "model.norm=pre", "model.qk_norm=true"});
}

/* ---- how far the mask reaches, through the whole model ----------------------------- */

/* The final norm's output at sequence position (b, i). */
static const real *out_at(const model_t *m, int b, int i)
{
    const tower_impl_t *t = m->impl;
    return t->hf + t->inv[b * T + i] * t->d;
}

static void forward_outputs(model_t *m, const int32_t *win, imgs_t *im, real *out)
{
    double ls[MAX_MODALITIES] = {0};
    int64_t cnt[MAX_MODALITIES] = {0};
    point(m, im);
    model_forward(m, win, B, 0, ls, cnt);
    const tower_impl_t *t = m->impl;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            memcpy(out + (b * T + i) * t->d, out_at(m, b, i), (size_t)t->d * sizeof(real));
}

static bool row_same(const real *a, const real *b, int i, int d)
{
    return memcmp(a + i * d, b + i * d, (size_t)d * sizeof(real)) == 0;
}

static void test_mask_reach(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    tiny(&cfg, 1, (char *[]){"model.kind=mot"});
    tiny_vocab(&v);
    model_t m;
    model_build(&m, &cfg.model, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, B);
    model_init_params(&m, 9, &(model_init_t){.std = 0.5});
    enum { d = 8 };
    static real base[B * T * d], now[B * T * d];
    static imgs_t im0, im;
    fill_images(&im0, WIN);
    im = im0;
    forward_outputs(&m, WIN, &im, base);
    /* the last patch of window 0's first image (position 6) reaches its first (3),
     * and nothing before the image (0 .. 2) */
    im.xt[6 * P] += 0.5f;
    forward_outputs(&m, WIN, &im, now);
    for (int i = 3; i <= 6; i++)
        assert_false(row_same(base, now, i, d));
    for (int i = 0; i < 3; i++)
        assert_true(row_same(base, now, i, d));
    /* window 1's image at 5..8: its last patch's timestep reaches its first patch */
    im = im0;
    im.t[WL + 8] += 3;
    forward_outputs(&m, WIN, &im, now);
    assert_false(row_same(base, now, T + 5, d));
    for (int i = 0; i < 5; i++)
        assert_true(row_same(base, now, T + i, d));
    /* anything after window 0's first image (tokens 7 .., the later image's patches)
     * never changes a position at or before its end (0 .. 6) */
    int32_t win[B * WL];
    memcpy(win, WIN, sizeof win);
    im = im0;
    win[7] = 6;
    win[9] = 2;
    im.xt[11 * P + 1] -= 1.0f;
    forward_outputs(&m, win, &im, now);
    for (int i = 0; i <= 6; i++)
        assert_true(row_same(base, now, i, d));
    assert_false(row_same(base, now, 7, d));
    /* text stays strictly causal: changing text token j changes rows >= j only */
    for (int j = 0; j < 3; j++) {
        memcpy(win, WIN, sizeof win);
        win[j] = (win[j] + 3) % 7;
        forward_outputs(&m, win, &im0, now);
        for (int i = 0; i < T; i++)
            assert_true(row_same(base, now, i, d) == (i < j));
    }
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mse),           cmocka_unit_test(test_timestep_features),
        cmocka_unit_test(test_span_mask),     cmocka_unit_test(test_schedule_ddim),
        cmocka_unit_test(test_attention_spans_fd),
        cmocka_unit_test(test_fd_dense),      cmocka_unit_test(test_fd_mot_pre),
        cmocka_unit_test(test_mask_reach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
