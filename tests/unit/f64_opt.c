/* OPT in double (issue 16): each new loss against central finite differences (L2
 * regression, classification, the cosine contrastive loss, whose positive's
 * similarity must rise along its negative gradient), the cross-attention layer
 * of the decoders, and the whole model's gradient (the text, region and audio
 * encoders, [CLS], the unimodal and cross-modal blocks with bidirectional attention,
 * shared and MoT, the text and image-code decoders with their cross-attention, and
 * every task head) against finite differences of its objective. Shared and MoT have the
 * same FLOPs, and MoT whose towers hold the shared weights gives the shared loss. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/model.h"
#include "motscale/optdata.h"
/* white-box: the layers and the batch builder are private to src/model, src/train */
#include "../../src/model/layers.h"
#include "../../src/train/optbatch.h"

static double urand(unsigned *s) { return (double)rand_r(s) / RAND_MAX * 2 - 1; }

/* ---- losses: J = the loss sum, against finite differences of its inputs ---------- */

static double mse_sum(const double *pred, const double *tgt, int n, int P)
{
    double ls[1] = {0}, q[64];
    int64_t ct[1] = {0};
    memcpy(q, pred, (size_t)(n * P) * sizeof(double));
    loss_mse(q, tgt, n, P, 0, 0, ls, ct);
    return ls[0];
}

static void test_mse(void **state)
{
    (void)state;
    enum { n = 3, P = 5 };
    unsigned seed = 11;
    double pred[n * P], tgt[n * P], g[n * P], ls[1] = {0};
    int64_t ct[1] = {0};
    for (int i = 0; i < n * P; i++) pred[i] = urand(&seed), tgt[i] = urand(&seed);
    memcpy(g, pred, sizeof g);
    loss_mse(g, tgt, n, P, 0, 1, ls, ct);
    assert_int_equal(ct[0], n);
    /* closed form: (1/P) sum (pred - tgt)^2 per row */
    double want = 0;
    for (int i = 0; i < n * P; i++) want += (pred[i] - tgt[i]) * (pred[i] - tgt[i]) / P;
    assert_close(ls[0], want, TOL_EXACT_REL, 0);
    for (int i = 0; i < n * P; i++) {
        double keep = pred[i];
        pred[i] = keep + FD_STEP;
        double jp = mse_sum(pred, tgt, n, P);
        pred[i] = keep - FD_STEP;
        double jm = mse_sum(pred, tgt, n, P);
        pred[i] = keep;
        assert_close(g[i], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
    }
}

static double classify_sum(const double *z, const int32_t *lab, int n, int C)
{
    double ls[1] = {0}, q[64];
    int64_t ct[1] = {0};
    memcpy(q, z, (size_t)(n * C) * sizeof(double));
    loss_classify(q, n, C, lab, 0, 0, ls, ct, NULL);
    return ls[0];
}

static void test_classify(void **state)
{
    (void)state;
    enum { n = 4, C = 5 };
    unsigned seed = 12;
    const int32_t lab[n] = {0, 4, 2, 2};
    double z[n * C], g[n * C], ls[1] = {0};
    int64_t ct[1] = {0}, ok = 0;
    for (int i = 0; i < n * C; i++) z[i] = 2 * urand(&seed);
    /* make rows 0 and 2 right by a margin, rows 1 and 3 wrong */
    z[0 * C + 0] = 5, z[2 * C + 2] = 5, z[1 * C + 0] = 5, z[3 * C + 1] = 5;
    memcpy(g, z, sizeof g);
    loss_classify(g, n, C, lab, 0, 1, ls, ct, &ok);
    assert_int_equal(ok, 2);
    assert_int_equal(ct[0], n);
    for (int i = 0; i < n * C; i++) {
        double keep = z[i];
        z[i] = keep + FD_STEP;
        double jp = classify_sum(z, lab, n, C);
        z[i] = keep - FD_STEP;
        double jm = classify_sum(z, lab, n, C);
        z[i] = keep;
        assert_close(g[i], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
    }
}

enum { CN = 3, CK = 6, CP = 4 };
static const int64_t CPOS[CN] = {1, 4, 5};

static double contrastive_sum(const double *q, const double *K, double tau, double *sim)
{
    double ls[1] = {0}, qq[CN * CP], work[CN * CP + CK * CP + CN * CK + CN];
    int64_t ct[1] = {0};
    memcpy(qq, q, sizeof qq);
    loss_contrastive(qq, CN, K, CK, CP, CPOS, tau, 0, 0, work, ls, ct, sim);
    return ls[0];
}

/* Finite differences of the InfoNCE loss over cosine similarities at tau 0.1 (the
 * default) and 1, the loss against a direct evaluation, and the sign: a small step
 * along the negative gradient raises every positive's cosine similarity. */
static void test_contrastive(void **state)
{
    (void)state;
    unsigned seed = 13;
    double q[CN * CP], K[CK * CP];
    for (int i = 0; i < CN * CP; i++) q[i] = urand(&seed);
    for (int i = 0; i < CK * CP; i++) K[i] = 3 * urand(&seed);
    const double taus[2] = {0.1, 1.0};
    for (int t = 0; t < 2; t++) {
        double tau = taus[t], g[CN * CP], work[CN * CP + CK * CP + CN * CK + CN], ls[1] = {0}, sim[CN];
        int64_t ct[1] = {0};
        memcpy(g, q, sizeof g);
        loss_contrastive(g, CN, K, CK, CP, CPOS, tau, 0, 1, work, ls, ct, sim);
        assert_int_equal(ct[0], CN);
        /* direct: -log( e^{c_pos/tau} / sum_j e^{c_j/tau} ), c from the definition */
        double want = 0;
        for (int i = 0; i < CN; i++) {
            double nq = 0, z = 0, cpos = 0;
            for (int j = 0; j < CP; j++) nq += q[i * CP + j] * q[i * CP + j];
            for (int k = 0; k < CK; k++) {
                double nk = 0, dot = 0;
                for (int j = 0; j < CP; j++) nk += K[k * CP + j] * K[k * CP + j], dot += q[i * CP + j] * K[k * CP + j];
                double c = dot / sqrt(nq + 1e-12) / sqrt(nk + 1e-12);
                z += exp(c / tau);
                cpos = k == CPOS[i] ? c : cpos;
            }
            want += -(cpos / tau - log(z));
        }
        assert_close(ls[0], want, 1e-12, 0);
        for (int i = 0; i < CN * CP; i++) {
            double keep = q[i];
            q[i] = keep + FD_STEP;
            double jp = contrastive_sum(q, K, tau, NULL);
            q[i] = keep - FD_STEP;
            double jm = contrastive_sum(q, K, tau, NULL);
            q[i] = keep;
            assert_close(g[i], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
        }
        double stepped[CN * CP], after[CN];
        for (int i = 0; i < CN * CP; i++) stepped[i] = q[i] - 0.01 * g[i];
        double l_after = contrastive_sum(stepped, K, tau, after);
        assert_true(l_after < ls[0]);
        for (int i = 0; i < CN; i++)
            if (!(after[i] > sim[i]))
                fail_msg("tau %g: positive %d similarity %.6f did not rise (%.6f)", tau, i, sim[i], after[i]);
    }
}

/* ---- cross-attention: J = sum(c * att), finite differences in q, k, v ------------- */

enum { XB = 2, XH = 2, XTQ = 3, XTK = 4, XHD = 2, XDL = XH * XHD };
/* the key stream's rows in another order than its positions; query rows seeing all
 * keys, a prefix, and none (a zero row) */
static const int64_t XKINV[XB * XTK] = {3, 0, 2, 1, 6, 4, 7, 5};
static const int64_t XHI[XB * XTQ] = {4, 2, 0, 1, 4, 3};

static double xattn_j(const double *q, const double *k, const double *v, const double *c)
{
    double qa[XB * XH * XTQ * XHD], ka[XB * XH * XTK * XHD], va[XB * XH * XTK * XHD], p[XB * XH * XTQ * XTK];
    double o[XTQ * XHD], att[XB * XTQ * XDL], J = 0;
    xattn_geom_t g = {.B = XB, .hl = XH, .Tq = XTQ, .Tk = XTK, .hd = XHD, .dl = XDL, .kinv = XKINV, .hi = XHI};
    xattn_acts_t A = {qa, ka, va, p};
    xattn_scratch_t S = {.o = o};
    xattn_forward(&g, &A, &S, att, q, k, v);
    for (int i = 0; i < XB * XTQ * XDL; i++) J += c[i] * att[i];
    return J;
}

/* The layer the decoders' cross-attention is: each query row's softmax over its
 * visible keys of the other stream (rows reached through kinv), a row that sees
 * nothing is zero with zero gradient; the backward against finite differences of
 * every input element. */
static void test_cross_attention(void **state)
{
    (void)state;
    unsigned seed = 31;
    double q[XB * XTQ * XDL], k[XB * XTK * XDL], v[XB * XTK * XDL], c[XB * XTQ * XDL];
    for (int i = 0; i < XB * XTQ * XDL; i++) q[i] = urand(&seed), c[i] = urand(&seed);
    for (int i = 0; i < XB * XTK * XDL; i++) k[i] = urand(&seed), v[i] = urand(&seed);
    double qa[XB * XH * XTQ * XHD], ka[XB * XH * XTK * XHD], va[XB * XH * XTK * XHD], p[XB * XH * XTQ * XTK];
    double o[XTQ * XHD], dp[XTQ * XTK], dqa[XTQ * XHD], dka[XTK * XHD], dva[XTK * XHD], att[XB * XTQ * XDL];
    double dq[XB * XTQ * XDL], dk[XB * XTK * XDL], dv[XB * XTK * XDL];
    xattn_geom_t g = {.B = XB, .hl = XH, .Tq = XTQ, .Tk = XTK, .hd = XHD, .dl = XDL, .kinv = XKINV, .hi = XHI};
    xattn_acts_t A = {qa, ka, va, p};
    xattn_scratch_t S = {o, dp, dqa, dka, dva};
    xattn_forward(&g, &A, &S, att, q, k, v);
    /* the zero row (sequence 0, query 2) and a row over one key: its value exactly */
    for (int j = 0; j < XDL; j++) {
        assert_true(att[2 * XDL + j] == 0);
        /* sequence 1, query 0 sees key 0 only, at row kinv[4] = 6 */
        assert_close(att[(1 * XTQ + 0) * XDL + j], v[6 * XDL + j], 1e-15, 0);
    }
    xattn_backward(&g, &A, &S, dq, dk, dv, c);
    double *in[3] = {q, k, v}, *an[3] = {dq, dk, dv};
    int n[3] = {XB * XTQ * XDL, XB * XTK * XDL, XB * XTK * XDL};
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < n[t]; i++) {
            double keep = in[t][i];
            in[t][i] = keep + FD_STEP;
            double jp = xattn_j(q, k, v, c);
            in[t][i] = keep - FD_STEP;
            double jm = xattn_j(q, k, v, c);
            in[t][i] = keep;
            assert_close(an[t][i], (jp - jm) / (2 * FD_STEP), TOL_FD_REL, TOL_FD_ABS);
        }
    for (int j = 0; j < XDL; j++) /* the zero row has no gradient */
        assert_true(dq[2 * XDL + j] == 0);
}

/* ---- the whole model ----------------------------------------------------------- */

static const opt_data_params_t DATA = {.seed = 5, .classes = 3, .regions = 2, .region_dim = 4, .frame_dim = 4,
                                       .grid = 2, .whole_masks = true};

static void opt_shape(model_shape_t *s, vocab_t *v, int cross, int unimodal_layers)
{
    opt_dims_t dm;
    opt_dims(&dm, &DATA);
    memset(s, 0, sizeof *s);
    s->kind = MODEL_OPT;
    s->d_model = 8, s->n_layers = 1, s->n_heads = 2, s->d_ff = 12, s->seq_len = 1;
    s->norm_eps = 1e-5;
    s->n_modalities = 3;
    s->n_towers = cross == OPT_CROSS_MOT ? 3 : 1;
    for (int m = 0; m < 3; m++) s->tower_of[m] = cross == OPT_CROSS_MOT ? m : 0;
    s->opt = (opt_shape_t){.text_len = dm.text_len, .vocab = dm.vocab, .regions = dm.regions,
                           .region_dim = dm.region_dim, .classes = dm.classes, .frames = dm.frames,
                           .frame_dim = dm.frame_dim, .codes = dm.codes, .code_book = dm.code_book,
                           .decoder_layers = 1, .unimodal_layers = unimodal_layers, .cross = cross,
                           .temperature = 0.1, .weight = {1, 1, 1, 1, 1, 1, 1, 1}};
    memset(v, 0, sizeof *v);
    v->n_modalities = 3;
    const char *names[3] = {"text", "image", "audio"};
    for (int m = 0; m < 3; m++) {
        snprintf(v->names[m], sizeof v->names[m], "%s", names[m]);
        v->lo[m] = m * 16, v->hi[m] = m * 16 + 16;
    }
    v->size = 48;
}

static double objective(model_t *m, int B)
{
    double ls[MAX_MODALITIES] = {0};
    int64_t ct[MAX_MODALITIES] = {0};
    model_forward(m, NULL, B, 0, ls, ct);
    return ls[0] + ls[1] + ls[2];
}

/* The first sample index from which B draws hold a text and an image masked whole
 * (so both decoders train), and a sample with neither (so matching trains). */
static int64_t batch_with_every_task(int B)
{
    opt_dims_t dm;
    opt_dims(&dm, &DATA);
    opt_draw_t dr;
    opt_draw_alloc(&dr, &dm);
    for (int64_t first = 0;; first++) {
        bool text = false, image = false, none = false;
        for (int b = 0; b < B; b++) {
            opt_draw(&DATA, 0, first + b, &dr);
            text |= dr.whole[OPT_TEXT], image |= dr.whole[OPT_IMAGE];
            none |= !dr.whole[0] && !dr.whole[1] && !dr.whole[2];
        }
        if (text && image && none) {
            opt_draw_free(&dr);
            return first;
        }
    }
}

/* Every parameter of a model with one unimodal, one cross-modal and one decoder
 * layer, on three training samples (token masks, matching swaps and whole-modality
 * masks from the data's draws, chosen so that every task has a target). */
static void gradcheck(int cross)
{
    enum { B = 3 };
    model_shape_t s;
    vocab_t v;
    opt_shape(&s, &v, cross, 1);
    model_t m;
    model_build(&m, &s, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, B);
    model_init_params(&m, 7, &(model_init_t){.std = 0.4});
    /* norms away from one, so their gradients are generic */
    unsigned seed = 21;
    for (int i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].init == INIT_ONES)
            for (size_t j = 0; j < m.tensors[i].numel; j++) m.params[m.tensors[i].offset + j] += 0.2 * urand(&seed);
    opt_batch_t b;
    opt_batch_init(&b, &DATA, B);
    opt_batch_read(&b, 0, batch_with_every_task(B), B);
    opt_bind(&m, &b, NULL);
    model_zero_grads(&m);
    double ls[MAX_MODALITIES] = {0};
    int64_t ct[MAX_MODALITIES] = {0};
    model_forward(&m, NULL, B, 1, ls, ct);
    model_backward(&m);
    assert_close(ls[0] + ls[1] + ls[2], objective(&m, B), TOL_EXACT_REL, 0);
    for (int k = 0; k < OPT_TASKS; k++)
        if (!(m.opt_count[k] > 0))
            fail_msg("task %d has no target in the checked batch", k);
    int checked = 0;
    for (int ti = 0; ti < m.n_tensors; ti++) {
        const tensor_info_t *t = &m.tensors[ti];
        double worst = 0, gmax = 0;
        for (size_t j = 0; j < t->numel; j++) {
            real *p = m.params + t->offset + j, keep = *p;
            *p = keep + FD_STEP;
            double jp = objective(&m, B);
            *p = keep - FD_STEP;
            double jm = objective(&m, B);
            *p = keep;
            double fd = (jp - jm) / (2 * FD_STEP), an = m.grads[t->offset + j];
            if (!close_enough(an, fd, TOL_FD_MODEL_REL, TOL_FD_MODEL_ABS))
                fail_msg("%s[%zu]: analytic %.10g vs finite differences %.10g", t->name, j, an, fd);
            worst = fmax(worst, fabs(an - fd));
            gmax = fmax(gmax, fabs(an));
            checked++;
        }
        /* every tensor takes part (a gradient identically zero would hide a bug);
         * the embedding rows of unused ids are the exception, not whole tensors */
        if (!(gmax > 0))
            fail_msg("%s has an all-zero gradient", t->name);
    }
    print_message("# %s: %d parameters checked in %d tensors\n", cross == OPT_CROSS_MOT ? "mot" : "shared", checked,
                  m.n_tensors);
    opt_batch_free(&b);
    model_free(&m);
}

static void test_model_shared(void **state)
{
    (void)state;
    gradcheck(OPT_CROSS_SHARED);
}

static void test_model_mot(void **state)
{
    (void)state;
    gradcheck(OPT_CROSS_MOT);
}

/* MoT untying changes no shape: equal FLOPs per token of every modality; and a MoT
 * model whose three cross towers all hold the shared model's weights computes the
 * shared model's objective. */
static void test_mot_equals_shared(void **state)
{
    (void)state;
    enum { B = 4 };
    model_shape_t ss, sm;
    vocab_t v;
    opt_shape(&ss, &v, OPT_CROSS_SHARED, 1);
    opt_shape(&sm, &v, OPT_CROSS_MOT, 1);
    flops_report_t fs, fm;
    model_flops(&fs, &ss, v.size);
    model_flops(&fm, &sm, v.size);
    for (int k = 0; k < 3; k++)
        assert_close(fs.train_per_token_of[k], fm.train_per_token_of[k], TOL_EXACT_REL, 0);
    assert_true(fm.params_total > fs.params_total);
    model_t a, c;
    model_build(&a, &ss, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, B);
    model_build(&c, &sm, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, B);
    model_init_params(&a, 9, &(model_init_t){.std = 0.4});
    for (int i = 0; i < c.n_tensors; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", c.tensors[i].name);
        char *tw = strstr(name, "cross.tower");
        if (tw)
            tw[strlen("cross.tower")] = '0';
        const tensor_info_t *src = model_find(&a, name);
        assert_non_null(src);
        assert_int_equal(src->numel, c.tensors[i].numel);
        memcpy(c.params + c.tensors[i].offset, a.params + src->offset, src->numel * sizeof(real));
    }
    opt_batch_t b;
    opt_batch_init(&b, &DATA, B);
    opt_batch_read(&b, 0, 3, B);
    opt_bind(&a, &b, NULL);
    double ja = objective(&a, B);
    opt_bind(&c, &b, NULL);
    double jc = objective(&c, B);
    assert_close(ja, jc, 1e-12, 0);
    opt_batch_free(&b);
    model_free(&a);
    model_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_contrastive),
        cmocka_unit_test(test_cross_attention),
        cmocka_unit_test(test_model_shared),
        cmocka_unit_test(test_model_mot),
        cmocka_unit_test(test_mot_equals_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
