/* The tower transformer (DESIGN.md §2, docs/model.md): dense, MoT and every grouping
 * in between as one model kind. Its tensor table comes from one role list; its
 * activations from one plan; forward and backward compose the layer library over
 * per-tower row blocks, with one permutation per micro-batch from sequence order to
 * grouped order (tower by tower) that attention reads through. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "layers.h"
#include "tower_int.h"
#include "motscale/gemm.h"
#include "motscale/scalapack.h"
#include "motscale/tower.h"

/* ---- the tensor table ---------------------------------------------------------- */

/* One line per tensor of a block, in table order; the FFN's three (or a router and
 * experts) come from tower_ffn_list at W_1's place. Output projections (W_o, W_2)
 * start at init_std / sqrt(2 n_layers); norms at one, without decay. QK-norm
 * weights are per (head, dim), sharded with the heads. */
static const struct layer_role {
    int role;
    const char *name;
    int rows, cols, shard;
    bool grid2d, decay, out_proj, qk;
} LAYER_ROLES[] = {
    {ROLE_WQ, "attn.wq", DIM_D, DIM_D, SHARD_COL, true, true, false, false},
    {ROLE_WK, "attn.wk", DIM_D, DIM_D, SHARD_COL, true, true, false, false},
    {ROLE_WV, "attn.wv", DIM_D, DIM_D, SHARD_COL, true, true, false, false},
    {ROLE_WO, "attn.wo", DIM_D, DIM_D, SHARD_ROW, true, true, true, false},
    {ROLE_W1, "ffn.w1", DIM_D, DIM_F, SHARD_COL, true, true, false, false},
    {ROLE_W3, "ffn.w3", DIM_D, DIM_F, SHARD_COL, true, true, false, false},
    {ROLE_W2, "ffn.w2", DIM_F, DIM_D, SHARD_ROW, true, true, true, false},
    {ROLE_NORM_ATTN, "attn_norm", DIM_ONE, DIM_D, SHARD_NONE, false, false, false, false},
    {ROLE_NORM_FFN, "ffn_norm", DIM_ONE, DIM_D, SHARD_NONE, false, false, false, false},
    {ROLE_QNORM, "attn.q_norm", DIM_ONE, DIM_D, SHARD_COL, false, false, false, true},
    {ROLE_KNORM, "attn.k_norm", DIM_ONE, DIM_D, SHARD_COL, false, false, false, true},
};
enum { N_LAYER_ROLES = sizeof LAYER_ROLES / sizeof LAYER_ROLES[0] };


const tensor_info_t *tower_tensor(const model_t *m, int role, int tower, int layer)
{
    const tower_impl_t *t = m->impl;
    int i = role == ROLE_EMBED ? t->embed : role == ROLE_HEAD ? t->head
            : role == ROLE_PATCH_IN ? (t->diffusion ? t->patch_in : -1)
            : role == ROLE_TIME_EMBED ? (t->diffusion ? t->time_embed : -1)
            : role == ROLE_PATCH_OUT ? (t->diffusion ? t->patch_out : -1)
                                     : t->index[idx_slot(t, role, tower, layer)];
    return i < 0 ? NULL : &m->tensors[i];
}

static int64_t dim_of(const model_shape_t *s, int32_t V, int dim)
{
    return dim == DIM_D ? s->d_model : dim == DIM_F ? s->d_ff : dim == DIM_V ? V : 1;
}

void tower_list(const model_shape_t *s, int32_t V, table_builder_t *b, tower_impl_t *t, const char *prefix,
                int seed_tower)
{
    char name[64];
    int L = s->n_layers;
    tensor_spec_t sp = {.name = name, .tower = seed_tower - 1, .layer = -1, .rows = V, .cols = s->d_model,
                        .owner = -1, .expert = -1,
                        .decay = true, .init = INIT_NORMAL, .init_div = 1, .stage = L + 1};
    snprintf(name, sizeof name, "%sembed", prefix);
    sp.role = ROLE_EMBED;
    int e = table_add(b, &sp);
    snprintf(name, sizeof name, "%shead", prefix);
    sp.role = ROLE_HEAD;
    sp.stage = 0;
    int h = table_add(b, &sp);
    if (t) {
        t->embed = e;
        t->head = h;
    }
    tower_image_list(s, b, t);
    for (int tw = 0; tw < s->n_towers; tw++) {
        for (int l = 0; l < L; l++)
            for (int r = 0; r < N_LAYER_ROLES; r++) {
                const struct layer_role *lr = &LAYER_ROLES[r];
                if (lr->qk && !s->qk_norm)
                    continue;
                if (lr->role == ROLE_W3 || lr->role == ROLE_W2)
                    continue;
                if (lr->role == ROLE_W1) {
                    tower_ffn_list(s, b, t, tw, l, prefix, seed_tower);
                    continue;
                }
                snprintf(name, sizeof name, "%stower%d.layer%d.%s", prefix, tw, l, lr->name);
                tensor_spec_t ls = {.name = name, .role = lr->role, .tower = seed_tower + tw, .layer = l,
                                    .rows = dim_of(s, V, lr->rows), .cols = dim_of(s, V, lr->cols),
                                    .shard = lr->shard, .owner = -1, .expert = -1, .grid2d = lr->grid2d, .decay = lr->decay,
                                    .init = lr->decay ? INIT_NORMAL : INIT_ONES,
                                    .init_div = lr->out_proj ? sqrt(2.0 * L) : 1,
                                    .stage = L - l};
                int i = table_add(b, &ls);
                if (t)
                    t->index[idx_slot(t, lr->role, tw, l)] = i;
            }
        snprintf(name, sizeof name, "%stower%d.final_norm", prefix, tw);
        tensor_spec_t fn = {.name = name, .role = ROLE_NORM_FINAL, .tower = seed_tower + tw, .layer = -1, .rows = 1,
                            .owner = -1, .expert = -1,
                            .cols = s->d_model, .init = INIT_ONES, .init_div = 1, .stage = 0};
        int i = table_add(b, &fn);
        if (t)
            t->index[idx_slot(t, ROLE_NORM_FINAL, tw, -1)] = i;
    }
}

/* ---- the activation plan ------------------------------------------------------- */

void tower_plan(const model_shape_t *s, int32_t V, int tp_size, int max_seqs, plan_t *p,
                       tower_impl_t *t)
{
    size_t T = (size_t)s->seq_len, N = (size_t)max_seqs * T, d = (size_t)s->d_model;
    size_t hl = (size_t)(s->n_heads / tp_size), dl = hl * (size_t)(s->d_model / s->n_heads);
    size_t hd = (size_t)(s->d_model / s->n_heads);
    bool pre = s->norm == NORM_PRE, qk = s->qk_norm;
    layer_acts_t dummy;
    for (int l = 0; l < s->n_layers; l++) {
        layer_acts_t *A = t ? &t->la[l] : &dummy;
        memset(A, 0, sizeof *A);
        A->moe = t && t->moe_acts ? t->moe_acts + (size_t)l * (size_t)s->n_towers : NULL;
        A->x = plan_take(p, N * d, PLAN_KEPT);
        if (pre) {
            A->xn = plan_take(p, N * d, PLAN_KEPT);
            A->rs_a = plan_take(p, N, PLAN_KEPT);
        }
        if (qk) {
            A->q = plan_take(p, N * dl, PLAN_KEPT);
            A->k = plan_take(p, N * dl, PLAN_KEPT);
            A->rs_q = plan_take(p, N * hl, PLAN_KEPT);
            A->rs_k = plan_take(p, N * hl, PLAN_KEPT);
        }
        A->att_keep.qa = plan_take(p, N * dl, PLAN_KEPT);
        A->att_keep.ka = plan_take(p, N * dl, PLAN_KEPT);
        A->att_keep.va = plan_take(p, N * dl, PLAN_KEPT);
        A->att_keep.p = plan_take(p, N * hl * T, PLAN_KEPT);
        A->att = plan_take(p, N * dl, PLAN_KEPT);
        A->h = plan_take(p, N * d, PLAN_KEPT);
        if (pre) {
            A->hn = plan_take(p, N * d, PLAN_KEPT);
            A->rs_h = plan_take(p, N, PLAN_KEPT);
        } else {
            A->y = plan_take(p, N * d, PLAN_KEPT);
            A->rs_y = plan_take(p, N, PLAN_KEPT);
            A->z = plan_take(p, N * d, PLAN_KEPT);
            A->rs_z = plan_take(p, N, PLAN_KEPT);
        }
        tower_ffn_plan(s, tp_size, max_seqs, p, A, l);
    }
    tower_impl_t sc;
    tower_impl_t *o = t ? t : &sc;
    o->x_final = plan_take(p, N * d, PLAN_KEPT);
    o->rs_f = plan_take(p, N, PLAN_KEPT);
    o->dhf = plan_take(p, N * d, PLAN_KEPT);
    tower_image_plan(s, max_seqs, p, o);
    /* scratch live across halves: the residual's gradient and a temporary (also y,
     * z under pre), attention's per-block products */
    o->dres = plan_take(p, N * d, PLAN_SCRATCH);
    o->dtmp = plan_take(p, N * d, PLAN_SCRATCH);
    o->as.dp = plan_take(p, T * T, PLAN_SCRATCH);
    o->as.o = plan_take(p, T * hd, PLAN_SCRATCH);
    /* the rest is live in one place each, so it shares memory: forward's q, k, v
     * before the copy to attention order; the attention half's backward; the FFN
     * half's backward (dense or experts) */
    plan_union_begin(p);
    o->xq = plan_take(p, N * dl, PLAN_SCRATCH);
    o->xk = plan_take(p, N * dl, PLAN_SCRATCH);
    o->xv = plan_take(p, N * dl, PLAN_SCRATCH);
    plan_union_arm(p);
    o->dq = plan_take(p, N * dl, PLAN_SCRATCH);
    o->dk = plan_take(p, N * dl, PLAN_SCRATCH);
    o->dv = plan_take(p, N * dl, PLAN_SCRATCH);
    o->dqn = plan_take(p, N * dl, PLAN_SCRATCH);
    o->dkn = plan_take(p, N * dl, PLAN_SCRATCH);
    o->datt = plan_take(p, N * dl, PLAN_SCRATCH);
    o->as.dqa = plan_take(p, N * dl, PLAN_SCRATCH);
    o->as.dka = plan_take(p, N * dl, PLAN_SCRATCH);
    o->as.dva = plan_take(p, N * dl, PLAN_SCRATCH);
    plan_union_arm(p);
    /* the head: the final norm's output and one block's logits (HEAD_ROWS rows), whose
     * gradient the forward turns into the head's gradients and dhf at once */
    o->hf = plan_take(p, N * d, PLAN_SCRATCH);
    o->logits = plan_take(p, (N < HEAD_ROWS ? N : HEAD_ROWS) * (size_t)V, PLAN_SCRATCH);
    plan_union_arm(p);
    size_t fl = (size_t)(s->d_ff / tp_size);
    o->fs.du = plan_take(p, N * fl, PLAN_SCRATCH);
    o->fs.dw = plan_take(p, N * fl, PLAN_SCRATCH);
    o->fs.ds = plan_take(p, N * fl, PLAN_SCRATCH);
    tower_ffn_scratch_plan(s, tp_size, max_seqs, p, t);
    plan_union_end(p);
}

/* ---- build ------------------------------------------------------------------------ */

static void tower_list_cb(const model_t *m, table_builder_t *b, void *ctx)
{
    tower_list(&m->shape, m->vocab.size, b, b->tensors ? ctx : NULL, "", 0);
}

void tower_impl_begin(model_t *m, tower_impl_t *t, const model_shape_t *s, int32_t V)
{
    t->d = s->d_model;
    t->L = s->n_layers;
    t->H = s->n_heads;
    t->hd = s->d_model / s->n_heads;
    t->f = s->d_ff;
    t->T = s->seq_len;
    t->P = s->n_towers;
    t->hl = s->n_heads / m->tp.size;
    t->dl = t->hl * t->hd;
    t->fl = s->d_ff / m->tp.size;
    t->V = V;
    t->diffusion = s->image_objective == IMAGE_DIFFUSION;
    t->pd = s->patch_dim;
    size_t nidx = (size_t)t->P * (size_t)(t->L + 1) * ROLE_N;
    t->index = xmalloc(nidx * sizeof *t->index);
    for (size_t i = 0; i < nidx; i++)
        t->index[i] = -1;
    tower_ffn_init(m, t);
}

void tower_impl_finish(model_t *m, tower_impl_t *t, const model_shape_t *s)
{
    /* per-layer weight lists for the layer calls: w[(l * ROLE_N + role) * P + tower] */
    t->w = xcalloc((size_t)(t->L + 1) * ROLE_N * (size_t)t->P, sizeof *t->w);
    for (int l = -1; l < t->L; l++)
        for (int r = 0; r < ROLE_N; r++)
            for (int tw = 0; tw < t->P; tw++)
                t->w[((size_t)(l + 1) * ROLE_N + r) * (size_t)t->P + tw] = t->index[idx_slot(t, r, tw, l)];
    size_t N = (size_t)m->max_seqs * (size_t)t->T;
    if (s->tp_backend == TP_SCALAPACK)
        t->sl = sl_create(&m->tp, t->rows_max > (int64_t)N ? t->rows_max : (int64_t)N, t->d > t->f ? t->d : t->f);
    t->tok_in = xmalloc(N * sizeof *t->tok_in);
    t->tok_tgt = xmalloc(N * sizeof *t->tok_tgt);
    t->perm = xmalloc(N * sizeof *t->perm);
    t->inv = xmalloc(N * sizeof *t->inv);
    rope_init(&t->rope, t->T, t->hd, s->rope_theta);
    if (t->diffusion)
        attn_mask_spans(&t->mask, t->T, m->max_seqs);
    else
        attn_mask_causal(&t->mask, t->T);
    t->la = xcalloc((size_t)t->L, sizeof *t->la);
    plan_t p = {0};
    tower_plan(s, (int32_t)t->V, m->tp.size, m->max_seqs, &p, NULL);
    t->act = xcalloc(p.total, sizeof(real));
    plan_t carve = {.base = t->act, .cursor = t->act};
    tower_plan(s, (int32_t)t->V, m->tp.size, m->max_seqs, &carve, t);
    t->rows.n = t->P;
    t->rows.off = t->tower_off;
}

static void tower_build(model_t *m)
{
    tower_impl_t *t = xcalloc(1, sizeof *t);
    m->impl = t;
    tower_impl_begin(m, t, &m->shape, m->vocab.size);
    model_table_build(m, tower_list_cb, t);
    tower_impl_finish(m, t, &m->shape);
    m->n_stages = t->L + 2;
}

void tower_impl_release(model_t *m, tower_impl_t *t)
{
    sl_free(t->sl);
    tower_ffn_free(m, t);
    free(t->index);
    free(t->w);
    free(t->tok_in);
    free(t->tok_tgt);
    free(t->perm);
    free(t->inv);
    rope_free(&t->rope);
    attn_mask_free(&t->mask);
    free(t->act);
    free(t->la);
}

static void tower_free(model_t *m)
{
    tower_impl_t *t = m->impl;
    if (!t)
        return;
    tower_impl_release(m, t);
    free(t);
    m->impl = NULL;
}


/* ---- forward ------------------------------------------------------------------ */

/* Group positions by tower (stable counting sort), fill perm/inv and tower_off. */
static void group_by_tower(model_t *m, tower_impl_t *t)
{
    int64_t count[MAX_MODALITIES + 1] = {0};
    const int *tower_of = m->shape.tower_of;
    for (int64_t n = 0; n < t->N; n++)
        count[tower_of[vocab_modality(&m->vocab, t->tok_in[n])]]++;
    t->tower_off[0] = 0;
    for (int k = 0; k < t->P; k++)
        t->tower_off[k + 1] = t->tower_off[k] + count[k];
    int64_t next[MAX_MODALITIES];
    for (int k = 0; k < t->P; k++)
        next[k] = t->tower_off[k];
    for (int64_t n = 0; n < t->N; n++) {
        int64_t g = next[tower_of[vocab_modality(&m->vocab, t->tok_in[n])]]++;
        t->perm[g] = n;
        t->inv[n] = g;
    }
}

static attn_geom_t geom(const tower_impl_t *t)
{
    return (attn_geom_t){.B = t->B, .hl = t->hl, .T = t->T, .hd = t->hd, .dl = t->dl,
                         .inv = t->inv, .rope = &t->rope, .mask = &t->mask};
}

/* The attention half of block l: from A->x to A->h. */
void attn_half_forward(model_t *m, tower_impl_t *t, int l)
{
    layer_acts_t *A = &t->la[l];
    int64_t N = t->N, d = t->d, dl = t->dl;
    bool pre = m->shape.norm == NORM_PRE;
    real eps = (real)m->shape.norm_eps;
    const blocks_t *b = &t->rows;
    /* attention input: swin x; pre RMSNorm_attn(x).  q, k, v = in W_{q,k,v} (f: identity) */
    const real *ain = A->x;
    if (pre) {
        norm_forward(m, b, W(t, ROLE_NORM_ATTN, l), A->xn, A->rs_a, A->x, d, eps);
        ain = A->xn;
    }
    real *q = m->shape.qk_norm ? A->q : t->xq, *k = m->shape.qk_norm ? A->k : t->xk;
    linear_forward(m, t->sl, b, W(t, ROLE_WQ, l), q, dl, ain, d);
    linear_forward(m, t->sl, b, W(t, ROLE_WK, l), k, dl, ain, d);
    linear_forward(m, t->sl, b, W(t, ROLE_WV, l), t->xv, dl, ain, d);
    if (m->shape.qk_norm) {
        qknorm_forward(m, b, W(t, ROLE_QNORM, l), t->xq, A->rs_q, A->q, t->hl, t->hd, eps);
        qknorm_forward(m, b, W(t, ROLE_KNORM, l), t->xk, A->rs_k, A->k, t->hl, t->hd, eps);
    }
    attn_geom_t g = geom(t);
    attention_forward(&g, &A->att_keep, &t->as, A->att, t->xq, t->xk, t->xv);
    /* y = att W_o (row-parallel), g: all-reduce;  swin: h = x + RMSNorm_attn(y);  pre: h = x + y */
    real *y = pre ? t->dtmp : A->y;
    linear_forward(m, t->sl, b, W(t, ROLE_WO, l), y, d, A->att, dl);
    tp_g_forward(&m->tp, y, (size_t)(N * d));
    if (pre) {
        for (int64_t i = 0; i < N * d; i++)
            A->h[i] = A->x[i] + y[i];
    } else {
        norm_forward(m, b, W(t, ROLE_NORM_ATTN, l), A->h, A->rs_y, y, d, eps);
        for (int64_t i = 0; i < N * d; i++)
            A->h[i] += A->x[i];
    }
}

/* The FFN half of block l: from A->h to x_out. */
void ffn_half_forward(model_t *m, tower_impl_t *t, int l, real *x_out)
{
    layer_acts_t *A = &t->la[l];
    int64_t N = t->N, d = t->d;
    bool pre = m->shape.norm == NORM_PRE;
    real eps = (real)m->shape.norm_eps;
    const blocks_t *b = &t->rows;
    /* FFN input: swin h; pre RMSNorm_ffn(h).  z = FFN(in), g: all-reduce */
    const real *fin = A->h;
    if (pre) {
        norm_forward(m, b, W(t, ROLE_NORM_FFN, l), A->hn, A->rs_h, A->h, d, eps);
        fin = A->hn;
    }
    real *z = pre ? t->dtmp : A->z;
    tower_ffn_forward(m, t, l, z, fin);
    tp_g_forward(&m->tp, z, (size_t)(N * d));
    /* swin: out = h + RMSNorm_ffn(z);  pre: out = h + z */
    if (pre) {
        for (int64_t i = 0; i < N * d; i++)
            x_out[i] = A->h[i] + z[i];
    } else {
        norm_forward(m, b, W(t, ROLE_NORM_FFN, l), x_out, A->rs_z, z, d, eps);
        for (int64_t i = 0; i < N * d; i++)
            x_out[i] += A->h[i];
    }
}

/* Embedding, blocks and final norm (hf, (N, d)) of B windows. */
static void tower_trunk(model_t *m, const int32_t *windows, int B, real grad_scale)
{
    tower_impl_t *t = m->impl;
    int64_t T = t->T, d = t->d;
    t->B = B;
    t->N = (int64_t)B * T;
    t->grad_scale = grad_scale;
    for (int b = 0; b < B; b++)
        for (int64_t i = 0; i < T; i++) {
            t->tok_in[b * T + i] = windows[b * (T + 1) + i];
            t->tok_tgt[b * T + i] = windows[b * (T + 1) + i + 1];
        }
    group_by_tower(m, t);
    tower_image_prepare(m, t);
    if (grad_scale > 0)
        for (int64_t n = 0; n < t->N; n++)
            m->tokens_in[vocab_modality(&m->vocab, t->tok_in[n])]++;
    /* x0[g] = embed[token at perm[g]] */
    real *x = t->L > 0 ? t->la[0].x : t->x_final;
    const real *E = m->params + m->tensors[t->embed].offset;
    for (int64_t g = 0; g < t->N; g++)
        memcpy(x + g * d, E + (int64_t)t->tok_in[t->perm[g]] * d, (size_t)d * sizeof(real));
    tower_image_embed(m, t, x);
    for (int l = 0; l < t->L; l++) {
        attn_half_forward(m, t, l);
        ffn_half_forward(m, t, l, l + 1 < t->L ? t->la[l + 1].x : t->x_final);
    }
    /* hf = RMSNorm_final^t(x); the logits come block by block (head_logits) */
    norm_forward(m, &t->rows, W(t, ROLE_NORM_FINAL, -1), t->hf, t->rs_f, t->x_final, d,
                 (real)m->shape.norm_eps);
}

/* The logits of the head block that starts at row g0 (a multiple of HEAD_ROWS):
 * logits = hf[g0 .. g0 + nb) head^T, (nb, V); returns nb (HEAD_ROWS, or the rest). */
static int64_t head_logits(model_t *m, tower_impl_t *t, int64_t g0)
{
    int64_t nb = t->N - g0 < HEAD_ROWS ? t->N - g0 : HEAD_ROWS;
    gemm(GEMM_HEAD, false, true, nb, t->V, t->d, 1, t->hf + g0 * t->d, t->d,
         m->params + m->tensors[t->head].offset, t->d, 0, t->logits, t->V);
    return nb;
}

static void tower_forward(model_t *m, const int32_t *windows, int B, real grad_scale,
                          double *loss_sum, int64_t *count)
{
    tower_impl_t *t = m->impl;
    int64_t d = t->d, V = t->V;
    tower_trunk(m, windows, B, grad_scale);
    const tensor_info_t *head = &m->tensors[t->head];
    /* The head in blocks of HEAD_ROWS rows, so that only one block's (nb, V) logits
     * are held: cross-entropy by target modality turns them into d(scale * sum CE)/d
     * logits, and with a gradient the head's backward follows at once,
     * dhead += dlogits^T hf (block after block, in row order), dhf = dlogits head. */
    for (int64_t g0 = 0; g0 < t->N; g0 += HEAD_ROWS) {
        int64_t nb = head_logits(m, t, g0);
        if (t->diffusion)
            loss_cross_entropy_rows(t->logits, nb, V, t->tok_tgt, t->perm + g0, &m->vocab, grad_scale,
                                    t->ce_skip + g0, t->row_ce + g0, loss_sum, count);
        else
            loss_cross_entropy(t->logits, nb, V, t->tok_tgt, t->perm + g0, &m->vocab, grad_scale, loss_sum,
                               count);
        if (grad_scale > 0) {
            gemm(GEMM_HEAD, true, false, V, d, nb, 1, t->logits, V, t->hf + g0 * d, d, 1,
                 m->grads + head->offset, d);
            gemm(GEMM_HEAD, false, false, nb, d, V, 1, t->logits, V, m->params + head->offset, d, 0,
                 t->dhf + g0 * d, d);
        }
    }
    tower_image_loss(m, t, loss_sum, count);
}

/* The logits of position n - 1 on mod's range (one window, no gradient). */
static void tower_next_logits(model_t *m, const int32_t *window, int64_t n, int mod, real *out)
{
    tower_impl_t *t = m->impl;
    tower_trunk(m, window, 1, 0);
    /* the block the training forward would compute this row in, so its bits agree */
    int64_t g = t->inv[n - 1], g0 = g / HEAD_ROWS * HEAD_ROWS;
    head_logits(m, t, g0);
    const real *row = t->logits + (g - g0) * t->V;
    for (int32_t j = m->vocab.lo[mod]; j < m->vocab.hi[mod]; j++)
        out[j] = row[j];
}

/* ---- backward ----------------------------------------------------------------- */

/* Into a residual branch's output: swin out = h + RMSNorm(z; n) gives dz the norm's
 * backward of dout; pre out = h + z gives dz = dout. */
static void branch_out_backward(model_t *m, tower_impl_t *t, int role, int l, real *dz, const real *z,
                                const real *rs)
{
    size_t n = (size_t)(t->N * t->d);
    if (m->shape.norm == NORM_PRE) {
        memcpy(dz, t->dres, n * sizeof(real));
    } else {
        memset(dz, 0, n * sizeof(real));
        norm_backward(m, &t->rows, W(t, role, l), dz, t->dres, z, rs, t->d);
    }
}

/* Out of a branch's input: swin in = h adds din to dres; pre in = RMSNorm(h; n) adds
 * the norm's backward of din. */
static void branch_in_backward(model_t *m, tower_impl_t *t, int role, int l, const real *din, const real *h,
                               const real *rs)
{
    if (m->shape.norm == NORM_PRE)
        norm_backward(m, &t->rows, W(t, role, l), t->dres, din, h, rs, t->d);
    else
        for (int64_t i = 0; i < t->N * t->d; i++)
            t->dres[i] += din[i];
}

/* The FFN half of block l: dres holds d loss / d x_out on entry, d loss / d h on exit. */
void ffn_half_backward(model_t *m, tower_impl_t *t, int l)
{
    layer_acts_t *A = &t->la[l];
    int64_t N = t->N, d = t->d;
    bool pre = m->shape.norm == NORM_PRE;
    real *dz = t->dtmp;
    /* out = h + branch(z) */
    branch_out_backward(m, t, ROLE_NORM_FFN, l, dz, A->z, A->rs_z);
    /* z = FFN(in) (g: identity backward); d in, then f: all-reduce */
    const real *fin = pre ? A->hn : A->h;
    real *dfin = dz; /* the FFN reads dz before it writes d in */
    tower_ffn_backward(m, t, l, dfin, dz, fin);
    tp_f_backward(&m->tp, dfin, (size_t)(N * d));
    branch_in_backward(m, t, ROLE_NORM_FFN, l, dfin, A->h, A->rs_h);
}

/* The attention half of block l: dres holds d loss / d h on entry, d loss / d x on exit. */
void attn_half_backward(model_t *m, tower_impl_t *t, int l)
{
    layer_acts_t *A = &t->la[l];
    int64_t N = t->N, d = t->d, dl = t->dl;
    bool pre = m->shape.norm == NORM_PRE;
    const blocks_t *b = &t->rows;
    real *dy = t->dtmp;
    /* h = x + branch(y) */
    branch_out_backward(m, t, ROLE_NORM_ATTN, l, dy, A->y, A->rs_y);
    /* y = att W_o:  datt = dy W_o^T,  dW_o += att^T dy */
    linear_backward(m, t->sl, b, W(t, ROLE_WO, l), t->datt, false, dy, d, A->att, dl);
    attn_geom_t g = geom(t);
    attention_backward(&g, &A->att_keep, &t->as, t->dqn, t->dkn, t->dv, t->datt);
    /* q = qknorm(q_raw): dq from dqn */
    real *dq = t->dqn, *dk = t->dkn;
    if (m->shape.qk_norm) {
        memset(t->dq, 0, (size_t)(N * dl) * sizeof(real));
        memset(t->dk, 0, (size_t)(N * dl) * sizeof(real));
        qknorm_backward(m, b, W(t, ROLE_QNORM, l), t->dq, t->dqn, A->q, A->rs_q, t->hl, t->hd);
        qknorm_backward(m, b, W(t, ROLE_KNORM, l), t->dk, t->dkn, A->k, A->rs_k, t->hl, t->hd);
        dq = t->dq;
        dk = t->dk;
    }
    /* q, k, v = in W_{q,k,v}:  d in = sum dq W^T, then f: all-reduce */
    const real *ain = pre ? A->xn : A->x;
    real *dain = t->dtmp; /* dy is no longer needed */
    linear_backward(m, t->sl, b, W(t, ROLE_WQ, l), dain, false, dq, dl, ain, d);
    linear_backward(m, t->sl, b, W(t, ROLE_WK, l), dain, true, dk, dl, ain, d);
    linear_backward(m, t->sl, b, W(t, ROLE_WV, l), dain, true, t->dv, dl, ain, d);
    tp_f_backward(&m->tp, dain, (size_t)(N * d));
    branch_in_backward(m, t, ROLE_NORM_ATTN, l, dain, A->x, A->rs_a);
}

static void stage_done(model_t *m, int stage)
{
    if (m->on_stage)
        m->on_stage(m->on_stage_ctx, stage);
}

static void tower_backward(model_t *m)
{
    tower_impl_t *t = m->impl;
    int64_t d = t->d;
    /* the head's gradients and dhf came with the forward; hf = RMSNorm_final(x) */
    memset(t->dres, 0, (size_t)(t->N * d) * sizeof(real));
    norm_backward(m, &t->rows, W(t, ROLE_NORM_FINAL, -1), t->dres, t->dhf, t->x_final, t->rs_f, d);
    stage_done(m, 0);
    for (int l = t->L - 1; l >= 0; l--) {
        ffn_half_backward(m, t, l);
        attn_half_backward(m, t, l);
        stage_done(m, t->L - l);
    }
    /* x0[g] = embed[token]:  dembed[token] += dx0[g] */
    real *dE = m->grads + m->tensors[t->embed].offset;
    for (int64_t g = 0; g < t->N; g++) {
        if (t->diffusion && t->row_img[g])
            continue; /* a patch: its input came through the encoder */
        real *row = dE + (int64_t)t->tok_in[t->perm[g]] * d;
        const real *src = t->dres + g * d;
        for (int64_t j = 0; j < d; j++)
            row[j] += src[j];
    }
    tower_image_embed_backward(m, t, t->dres);
    stage_done(m, t->L + 1);
}

/* ---- FLOPs and memory ------------------------------------------------------------
 * Derivation (per token, forward; a multiply-add counts 2):
 *   q, k, v, o projections   4 matmuls of (1 x d)(d x d)          2 * 4 d^2
 *   SwiGLU                    W_1, W_3: (1 x d)(d x f); W_2 (f x d)  2 * 3 d f
 *   attention                 QK^T and AV: position i attends to i+1 keys, 2 * 2 * d * (i+1);
 *                             averaged over a sequence of s positions ~ 2 * s * d ("half the square")
 *   head                      (1 x d)(d x V)                        2 * d V
 * A tower with experts replaces SwiGLU by its router, (1 x d)(d x E): 2 d E, and the
 * experts at their capacity c (each token is, on average, taken c times): c 2 * 3 d f.
 * Backward costs two forward matmuls per forward matmul, so training is 3 x forward.
 * Excluded, and said so in docs/model.md: norms, RoPE, softmax, the SwiGLU gate,
 * routing, gate scaling, embedding lookup and the optimizer. Every dense tower has
 * the same shapes, so MoT and dense of one width have the same FLOPs per token. */
static void tower_flops(flops_report_t *r, const model_shape_t *s, int32_t vocab_size)
{
    memset(r, 0, sizeof *r);
    double d = s->d_model, f = s->d_ff, T = s->seq_len, V = vocab_size, L = s->n_layers;
    double E = s->moe_experts, c = s->moe_capacity;
    int64_t di = s->d_model, fi = s->d_ff, Ei = s->moe_experts;
    int64_t attn = 4 * di * di + 2 * di + (s->qk_norm ? 2 * di : 0), ffn = 3 * di * fi;
    int64_t dense_layer = attn + ffn, moe_layer = attn + Ei * ffn + di * Ei;
    int64_t embedding = 2 * (int64_t)vocab_size * di;
    /* + final norm */
    int64_t dense_tower = s->n_layers * dense_layer + di, moe_tower = s->n_layers * moe_layer + di;
    int n_moe = 0;
    for (int tw = 0; tw < s->n_towers; tw++)
        n_moe += (s->moe_tower_mask >> tw) & 1u;
    int n_dense = s->n_towers - n_moe;
    flops_add_params(r, "embedding + head", (double)embedding);
    if (n_dense)
        flops_add_params(r, n_moe ? "per tower without experts" : "per tower", (double)dense_tower);
    if (n_moe) {
        flops_add_params(r, n_dense ? "per tower with experts" : "per tower", (double)moe_tower);
        flops_add_params(r, "  of which routers", (double)(s->n_layers * di * Ei));
        flops_add_params(r, "  of which experts", (double)(s->n_layers * Ei * ffn));
    }
    int64_t non_embedding = n_dense * dense_tower + n_moe * moe_tower;
    flops_add_params(r, "non-embedding", (double)non_embedding);
    r->params_total = embedding + non_embedding;
    /* a token of a tower with experts meets the router and, on average, c experts:
     * exact when E divides c x the routing group (moe_capacity_rows) */
    int64_t moe_active = s->n_layers * (attn + di * Ei + (int64_t)llround(c * (double)ffn)) + di;
    r->params_active_per_token = embedding + (n_moe ? (moe_active > dense_tower || !n_dense ? moe_active : dense_tower)
                                                    : dense_tower);
    flops_add_fwd(r, "q,k,v,o", L * 2 * 4 * d * d, true);
    /* a hybrid's FFN terms apply to some tokens only: said in their names */
    bool hybrid = n_dense && n_moe;
    if (n_dense)
        flops_add_fwd_scoped(r, hybrid ? "SwiGLU [dense towers]" : "SwiGLU", L * 2 * 3 * d * f, true,
                             hybrid ? FLOPS_DENSE_FFN : FLOPS_ALL);
    if (n_moe) {
        flops_add_fwd_scoped(r, hybrid ? "router [expert towers]" : "router", L * 2 * d * E, true,
                             hybrid ? FLOPS_EXPERTS : FLOPS_ALL);
        flops_add_fwd_scoped(r, hybrid ? "experts [expert towers]" : "experts", L * c * 2 * 3 * d * f, true,
                             hybrid ? FLOPS_EXPERTS : FLOPS_ALL);
    }
    flops_add_fwd(r, "attention", L * 2 * T * d, false);
    flops_add_fwd(r, "head", 2 * d * V, true);
    if (s->image_objective == IMAGE_DIFFUSION) {
        /* per patch: the encoder (1 x P)(P x d), the timestep embedding's linear
         * (1 x d)(d x d), the decoder (1 x d)(d x P); and attention over the rest of
         * its image: a patch at offset j of an image of n sees n - 1 - j keys more than
         * causal, (n - 1) / 2 on average, at 2 x 2 d FLOPs per key */
        double P = s->patch_dim, n = s->image_len;
        int64_t pi = s->patch_dim;
        flops_add_params(r, "patch encoder, decoder, timestep", (double)(2 * pi * di + di * di));
        r->params_total += 2 * pi * di + di * di;
        r->params_active_per_token += 2 * pi * di + di * di;
        flops_add_fwd_scoped(r, "patch, timestep [image]", 2 * P * d + 2 * d * d + 2 * d * P, true,
                             FLOPS_IMAGE);
        flops_add_fwd_scoped(r, "image attention [image]", L * 2 * d * (n - 1), false, FLOPS_IMAGE);
        r->image_modality = s->image_modality;
    } else {
        r->image_modality = -1;
    }
    uint32_t expert_modalities = 0;
    for (int m = 0; m < s->n_modalities; m++)
        if ((s->moe_tower_mask >> s->tower_of[m]) & 1u)
            expert_modalities |= 1u << m;
    flops_finish(r, s->n_modalities, expert_modalities);
    r->expert_row_train = n_moe ? 3 * 2 * 3 * d * f : 0;
    for (int m = 0; m < s->n_modalities; m++)
        r->expert_train_of[m] = (expert_modalities >> m & 1u) ? 3 * L * c * 2 * 3 * d * f : 0;
}

static void tower_memory(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size,
                         int max_seqs)
{
    table_builder_t b = {.backend = s->tp_backend, .tp_rank = 0, .tp_size = tp_size};
    tower_list(s, vocab_size, &b, NULL, "", 0);
    plan_t p = {0};
    tower_plan(s, vocab_size, tp_size, max_seqs, &p, NULL);
    double elem = (double)sizeof(real);
    r->params = r->grads = elem * (double)b.n_local;
    r->moments = 2 * elem * (double)b.n_local;
    r->activations = elem * (double)p.kept;
    r->scratch = elem * (double)(p.total - p.kept);
    r->analytic_min = r->params + r->grads + r->moments + r->activations;
}

const model_kind_ops_t tower_kind = {
    .name = "tower transformer",
    .build = tower_build,
    .free = tower_free,
    .forward = tower_forward,
    .backward = tower_backward,
    .next_logits = tower_next_logits,
    .flops = tower_flops,
    .memory = tower_memory,
};
