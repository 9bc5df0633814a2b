/* model.kind = zipper (Zipper, arXiv 2405.18669; docs/model.md, "Zipper"): two
 * decoder towers, text and speech, each a one-tower dense transformer with its own
 * width, depth, heads and vocabulary (its modality's range), started from a unimodal
 * dense run's checkpoint, with a gated ReLU input MLP after its embedding and, after
 * every `interval` of its layers, a gated cross-attention block (Flamingo: tanh gates
 * at 0, then a gated SwiGLU) over the other tower's rows that come earlier in the
 * interleaved window. Each tower runs over the rows of its own stream, padded to
 * seq_len per sequence; frozen backbones get no gradient but pass one on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "layers.h"
#include "zipper_int.h"
#include "motscale/gemm.h"
#include "motscale/kernels.h"
#include "motscale/tower.h"

static const char *PREFIX[ZT_N] = {"text.", "speech."};

/* The modality of tower X in data.modalities: text is first, speech is named. */
static int tower_modality(const vocab_t *v, int X)
{
    if (X == ZT_TEXT)
        return 0;
    for (int k = 0; k < v->n_modalities; k++)
        if (!strcmp(v->names[k], "speech"))
            return k;
    DIE(EXIT_FAULT, "zipper: data.modalities has no speech");
}

/* Tower X's shape as a one-tower dense model: zipper.{text,speech}_* over the
 * shared norm placement, QK-norm, RoPE and sequence length. */
static void ztower_shape(model_shape_t *out, const model_shape_t *s, int X)
{
    *out = *s;
    out->kind = MODEL_DENSE;
    out->d_model = s->zt[X].d_model;
    out->n_layers = s->zt[X].n_layers;
    out->n_heads = s->zt[X].n_heads;
    out->d_ff = s->zt[X].d_ff;
    out->n_towers = 1;
    for (int k = 0; k < MAX_MODALITIES; k++)
        out->tower_of[k] = 0;
    out->moe_tower_mask = 0;
}

/* ---- the tensor table ---------------------------------------------------------- */

static int add(table_builder_t *b, int X, int layer, int role, const char *what, int64_t rows, int64_t cols,
               int shard, int init)
{
    char name[64];
    if (layer < 0)
        snprintf(name, sizeof name, "%s%s", PREFIX[X], what);
    else
        snprintf(name, sizeof name, "%scross%d.%s", PREFIX[X], layer, what);
    tensor_spec_t sp = {.name = name, .role = role, .tower = X, .layer = layer, .rows = rows, .cols = cols,
                        .shard = shard, .owner = -1, .expert = -1, .decay = init == INIT_NORMAL,
                        .init = init, .init_div = 1, .stage = 0};
    return table_add(b, &sp);
}

/* Tower X's fusion tensors: the input MLP, then its cross blocks (queries X, keys
 * and values from the other tower, projected from its width dY). */
static void fusion_list(table_builder_t *b, ztower_t *z, int X, int dY)
{
    bool fill = b->tensors != NULL;
    int64_t d = z->s.d_model, f = z->s.d_ff;
    int a = add(b, X, -1, ZR_MLP_A, "input_mlp.w_a", d, d, SHARD_NONE, INIT_NORMAL);
    int c = add(b, X, -1, ZR_MLP_B, "input_mlp.w_b", d, d, SHARD_NONE, INIT_NORMAL);
    int g = add(b, X, -1, ZR_MLP_GATE, "input_mlp.gate", 1, 1, SHARD_NONE, INIT_ZERO);
    if (fill) {
        z->mlp_a = a;
        z->mlp_b = c;
        z->mlp_gate = g;
    }
    for (int k = 0; k < z->K; k++) {
        cross_block_t cb = {
            .proj = add(b, X, k, ZR_PROJ, "proj", dY, d, SHARD_NONE, INIT_NORMAL),
            .norm = add(b, X, k, ZR_XNORM, "attn_norm", 1, d, SHARD_NONE, INIT_ONES),
            .wq = add(b, X, k, ZR_XQ, "attn.wq", d, d, SHARD_COL, INIT_NORMAL),
            .wk = add(b, X, k, ZR_XK, "attn.wk", d, d, SHARD_COL, INIT_NORMAL),
            .wv = add(b, X, k, ZR_XV, "attn.wv", d, d, SHARD_COL, INIT_NORMAL),
            .wo = add(b, X, k, ZR_XO, "attn.wo", d, d, SHARD_ROW, INIT_NORMAL),
            .gate_a = add(b, X, k, ZR_XGATE, "attn_gate", 1, 1, SHARD_NONE, INIT_ZERO),
            .fnorm = add(b, X, k, ZR_FNORM, "ffn_norm", 1, d, SHARD_NONE, INIT_ONES),
            .w1 = add(b, X, k, ZR_FW1, "ffn.w1", d, f, SHARD_COL, INIT_NORMAL),
            .w3 = add(b, X, k, ZR_FW3, "ffn.w3", d, f, SHARD_COL, INIT_NORMAL),
            .w2 = add(b, X, k, ZR_FW2, "ffn.w2", f, d, SHARD_ROW, INIT_NORMAL),
            .gate_f = add(b, X, k, ZR_FGATE, "ffn_gate", 1, 1, SHARD_NONE, INIT_ZERO),
        };
        if (fill) /* the table comes before the plan carves the block's buffers */
            z->cb[k] = cb;
    }
}

/* Both backbones first (each as the dense run names its tensors, prefixed), then
 * the fusion tensors of each tower. */
static void zipper_list(const model_t *m, table_builder_t *b, void *ctx)
{
    zipper_impl_t *Z = ctx;
    bool fill = b->tensors != NULL;
    for (int X = 0; X < ZT_N; X++) {
        ztower_t *z = &Z->z[X];
        int first = b->n;
        tower_list(&z->s, (int32_t)z->t.V, b, fill ? &z->t : NULL, PREFIX[X], X);
        z->first = first;
        z->last = b->n;
    }
    for (int X = 0; X < ZT_N; X++)
        fusion_list(b, &Z->z[X], X, m->shape.zt[1 - X].d_model);
}

/* ---- the activation plan ---------------------------------------------------------- */

static void ztower_plan(const ztower_t *zc, int tp_size, int max_seqs, plan_t *p, ztower_t *z)
{
    size_t N = (size_t)max_seqs * (size_t)zc->s.seq_len, T = (size_t)zc->s.seq_len, d = (size_t)zc->s.d_model;
    size_t hl = (size_t)(zc->s.n_heads / tp_size), dl = hl * (d / (size_t)zc->s.n_heads);
    size_t fl = (size_t)(zc->s.d_ff / tp_size);
    ztower_t dummy;
    cross_block_t cdummy;
    ztower_t *o = z ? z : &dummy;
    o->e = plan_take(p, N * d, PLAN_KEPT);
    o->ua = plan_take(p, N * d, PLAN_KEPT);
    o->r = plan_take(p, N * d, PLAN_KEPT);
    o->mo = plan_take(p, N * d, PLAN_KEPT);
    for (int k = 0; k < zc->K; k++) {
        cross_block_t *c = z ? &z->cb[k] : &cdummy;
        c->in = plan_take(p, N * d, PLAN_KEPT);
        c->xn = plan_take(p, N * d, PLAN_KEPT);
        c->rs = plan_take(p, N, PLAN_KEPT);
        c->u = plan_take(p, N * d, PLAN_KEPT);
        c->keep.qa = plan_take(p, N * dl, PLAN_KEPT);
        c->keep.ka = plan_take(p, N * dl, PLAN_KEPT);
        c->keep.va = plan_take(p, N * dl, PLAN_KEPT);
        c->keep.p = plan_take(p, N * hl * T, PLAN_KEPT);
        c->att = plan_take(p, N * dl, PLAN_KEPT);
        c->y = plan_take(p, N * d, PLAN_KEPT);
        c->h = plan_take(p, N * d, PLAN_KEPT);
        c->hn = plan_take(p, N * d, PLAN_KEPT);
        c->rs_h = plan_take(p, N, PLAN_KEPT);
        c->ffn.u = plan_take(p, N * fl, PLAN_KEPT);
        c->ffn.w = plan_take(p, N * fl, PLAN_KEPT);
        c->ffn.s = plan_take(p, N * fl, PLAN_KEPT);
        c->z = plan_take(p, N * d, PLAN_KEPT);
    }
    o->dx = plan_take(p, N * d, PLAN_SCRATCH);
    o->t1 = plan_take(p, N * d, PLAN_SCRATCH);
    o->t2 = plan_take(p, N * d, PLAN_SCRATCH);
}

/* ---- build ------------------------------------------------------------------------ */

/* Tower X's geometry before the table: its shape, vocabulary, blocks. */
static void ztower_begin(model_t *m, ztower_t *z, const model_shape_t *s, const vocab_t *v, int X)
{
    ztower_shape(&z->s, s, X);
    z->mod = tower_modality(v, X);
    z->lo = v->lo[z->mod];
    memset(&z->vocab, 0, sizeof z->vocab);
    z->vocab.n_modalities = v->n_modalities;
    for (int k = 0; k < v->n_modalities; k++)
        memcpy(z->vocab.names[k], v->names[k], CFG_NAME_LEN);
    z->vocab.hi[z->mod] = v->hi[z->mod] - v->lo[z->mod];
    z->vocab.size = z->vocab.hi[z->mod];
    z->iv = s->zt[X].interval;
    z->K = z->s.n_layers / z->iv;
    z->cb = xcalloc((size_t)z->K, sizeof *z->cb);
    if (m)
        tower_impl_begin(m, &z->t, &z->s, z->vocab.size);
}

static void zipper_build(model_t *m)
{
    zipper_impl_t *Z = xcalloc(1, sizeof *Z);
    m->impl = Z;
    for (int X = 0; X < ZT_N; X++)
        ztower_begin(m, &Z->z[X], &m->shape, &m->vocab, X);
    model_table_build(m, zipper_list, Z);
    int fr = m->shape.zipper_freeze;
    size_t N = (size_t)m->max_seqs * (size_t)m->shape.seq_len;
    for (int X = 0; X < ZT_N; X++) {
        ztower_t *z = &Z->z[X];
        bool frozen = fr == FREEZE_BOTH || (X == ZT_TEXT && fr == FREEZE_TEXT) ||
                      (X == ZT_SPEECH && fr == FREEZE_SPEECH);
        /* the backbone starts from zipper.{text,speech}_checkpoint: the dense run's
         * tensor of the same name without the prefix, its modality's vocabulary rows
         * for the embedding and the head */
        for (int i = z->first; i < z->last; i++) {
            tensor_info_t *ti = &m->tensors[i];
            ti->frozen = frozen;
            ti->src = X;
            snprintf(ti->src_name, sizeof ti->src_name, "%s", ti->name + strlen(PREFIX[X]));
            bool vocab_rows = ti->role == ROLE_EMBED || ti->role == ROLE_HEAD;
            ti->src_row0 = vocab_rows ? z->lo : 0;
            ti->src_rows = ti->rows;
        }
        tower_impl_finish(m, &z->t, &z->s);
        z->t.tower_off[0] = 0;
        for (size_t g = 0; g < N; g++)
            z->t.perm[g] = z->t.inv[g] = (int64_t)g;
        z->pos = xmalloc(N * sizeof *z->pos);
        z->len = xmalloc((size_t)m->max_seqs * sizeof *z->len);
        z->tgt = xmalloc(N * sizeof *z->tgt);
        z->rows_t = xmalloc(N * sizeof *z->rows_t);
        z->tgt_c = xmalloc(N * sizeof *z->tgt_c);
        z->xmask = (attn_mask_t){.kind = MASK_CROSS, .Tq = m->shape.seq_len, .Tk = m->shape.seq_len,
                                 .hi = xmalloc(N * sizeof(int64_t)), .stride = m->shape.seq_len};
        plan_t p = {0};
        ztower_plan(z, m->tp.size, m->max_seqs, &p, NULL);
        z->act = xcalloc(p.total, sizeof(real));
        plan_t carve = {.base = z->act, .cursor = z->act};
        ztower_plan(z, m->tp.size, m->max_seqs, &carve, z);
    }
    Z->rowof = xmalloc((size_t)m->shape.seq_len * sizeof *Z->rowof);
    model_table_freeze_last(m);
    m->n_stages = 1;
}

static void zipper_free(model_t *m)
{
    zipper_impl_t *Z = m->impl;
    if (!Z)
        return;
    for (int X = 0; X < ZT_N; X++) {
        ztower_t *z = &Z->z[X];
        tower_impl_release(m, &z->t);
        free(z->cb);
        free(z->pos);
        free(z->len);
        free(z->tgt);
        free(z->rows_t);
        free(z->tgt_c);
        attn_mask_free(&z->xmask);
        free(z->act);
    }
    free(Z->rowof);
    free(Z);
    m->impl = NULL;
}

/* ---- forward ------------------------------------------------------------------ */

static inline real P1(const model_t *m, int i) { return m->params[m->tensors[i].offset]; }

/* The windows' streams: each tower's rows of sequence b are b T .. b T + len - 1 in
 * window order, then padding (local id 0, no target); a row's target is the next
 * token of its own stream in the window (the window's last token included), none
 * for the stream's last. The cross masks: row i of X sees the other tower's rows of
 * its sequence at earlier window positions, a prefix of them (padding: none). */
static void split_streams(model_t *m, zipper_impl_t *Z, const int32_t *windows, int B)
{
    int64_t T = m->shape.seq_len;
    for (int X = 0; X < ZT_N; X++) {
        tower_impl_t *t = &Z->z[X].t;
        t->B = B;
        t->N = (int64_t)B * T;
        t->tower_off[1] = t->N;
        Z->z[X].n_t = 0;
    }
    for (int b = 0; b < B; b++) {
        const int32_t *w = windows + (int64_t)b * (T + 1);
        int64_t n[ZT_N] = {0, 0};
        for (int64_t p = 0; p < T; p++) {
            int X = vocab_modality(&m->vocab, w[p]) == Z->z[ZT_TEXT].mod ? ZT_TEXT : ZT_SPEECH;
            ztower_t *z = &Z->z[X];
            int64_t row = b * T + n[X]++;
            z->t.tok_in[row] = w[p] - z->lo;
            z->pos[row] = p;
            Z->rowof[p] = row;
        }
        int32_t next[ZT_N] = {-1, -1};
        int Xl = vocab_modality(&m->vocab, w[T]) == Z->z[ZT_TEXT].mod ? ZT_TEXT : ZT_SPEECH;
        next[Xl] = w[T] - Z->z[Xl].lo;
        for (int64_t p = T - 1; p >= 0; p--) {
            int X = vocab_modality(&m->vocab, w[p]) == Z->z[ZT_TEXT].mod ? ZT_TEXT : ZT_SPEECH;
            Z->z[X].tgt[Z->rowof[p]] = next[X];
            next[X] = w[p] - Z->z[X].lo;
        }
        for (int X = 0; X < ZT_N; X++) {
            ztower_t *z = &Z->z[X];
            z->len[b] = n[X];
            for (int64_t i = n[X]; i < T; i++) {
                z->t.tok_in[b * T + i] = 0;
                z->pos[b * T + i] = T;
                z->tgt[b * T + i] = -1;
            }
        }
        for (int X = 0; X < ZT_N; X++) {
            ztower_t *z = &Z->z[X], *o = &Z->z[1 - X];
            int64_t j = 0;
            for (int64_t i = 0; i < T; i++) {
                while (j < o->len[b] && o->pos[b * T + j] < z->pos[b * T + i])
                    j++;
                z->xmask.hi[b * T + i] = i < z->len[b] ? j : 0;
            }
        }
    }
    for (int X = 0; X < ZT_N; X++) {
        ztower_t *z = &Z->z[X];
        for (int64_t r = 0; r < z->t.N; r++)
            if (z->tgt[r] >= 0) {
                z->rows_t[z->n_t] = r;
                z->tgt_c[z->n_t++] = z->tgt[r];
            }
    }
}

/* x0 = e + tanh(gate) relu(e W_a) W_b, e = embed[token]: into the first block's input. */
static void input_forward(model_t *m, ztower_t *z)
{
    tower_impl_t *t = &z->t;
    int64_t N = t->N, d = t->d;
    const real *E = m->params + m->tensors[t->embed].offset;
    for (int64_t g = 0; g < N; g++)
        memcpy(z->e + g * d, E + (int64_t)t->tok_in[g] * d, (size_t)d * sizeof(real));
    linear_forward(m, NULL, &t->rows, &z->mlp_a, z->ua, d, z->e, d);
    for (int64_t i = 0; i < N * d; i++)
        z->r[i] = z->ua[i] > 0 ? z->ua[i] : 0;
    linear_forward(m, NULL, &t->rows, &z->mlp_b, z->mo, d, z->r, d);
    real g = (real)tanh((double)P1(m, z->mlp_gate));
    real *x0 = t->la[0].x;
    for (int64_t i = 0; i < N * d; i++)
        x0[i] = z->e[i] + g * z->mo[i];
}

static attn_geom_t cross_geom(const ztower_t *z)
{
    const tower_impl_t *t = &z->t;
    return (attn_geom_t){.B = t->B, .hl = t->hl, .T = t->T, .hd = t->hd, .dl = t->dl, .inv = t->inv,
                         .rope = NULL, .mask = &z->xmask};
}

/* Block k of tower a over tower o: from c->in (and o's c->in) to out. */
static void cross_forward(model_t *m, ztower_t *a, const ztower_t *o, int k, real *out)
{
    cross_block_t *c = &a->cb[k];
    tower_impl_t *t = &a->t;
    int64_t N = t->N, d = t->d, dl = t->dl;
    real eps = (real)m->shape.norm_eps;
    const blocks_t *b = &t->rows;
    /* xn = RMSNorm_x(in);  u = in_o P: (N, d);  q = xn W_q, k = u W_k, v = u W_v (f: identity) */
    norm_forward(m, b, &c->norm, c->xn, c->rs, c->in, d, eps);
    linear_forward(m, NULL, b, &c->proj, c->u, d, o->cb[k].in, o->t.d);
    linear_forward(m, NULL, b, &c->wq, t->xq, dl, c->xn, d);
    linear_forward(m, NULL, b, &c->wk, t->xk, dl, c->u, d);
    linear_forward(m, NULL, b, &c->wv, t->xv, dl, c->u, d);
    attn_geom_t g = cross_geom(a);
    attention_forward(&g, &c->keep, &t->as, c->att, t->xq, t->xk, t->xv);
    /* y = att W_o, g: all-reduce;  h = in + tanh(gate_a) y */
    linear_forward(m, NULL, b, &c->wo, c->y, d, c->att, dl);
    tp_g_forward(&m->tp, c->y, (size_t)(N * d));
    real ga = (real)tanh((double)P1(m, c->gate_a)), gf = (real)tanh((double)P1(m, c->gate_f));
    for (int64_t i = 0; i < N * d; i++)
        c->h[i] = c->in[i] + ga * c->y[i];
    /* z = SwiGLU(RMSNorm_f(h)), g: all-reduce;  out = h + tanh(gate_f) z */
    norm_forward(m, b, &c->fnorm, c->hn, c->rs_h, c->h, d, eps);
    ffn_weights_t fw = {&c->w1, &c->w3, &c->w2};
    ffn_forward(m, NULL, b, &fw, &c->ffn, c->z, c->hn, d, t->fl, N);
    tp_g_forward(&m->tp, c->z, (size_t)(N * d));
    for (int64_t i = 0; i < N * d; i++)
        out[i] = c->h[i] + gf * c->z[i];
}

/* The final norm, the head over the rows with a target, the loss; with gradient the
 * head's backward at once (as the tower transformer does), leaving dhf (N, d). */
static void head_forward(model_t *m, ztower_t *z, real grad_scale, double *loss_sum, int64_t *count)
{
    tower_impl_t *t = &z->t;
    int64_t d = t->d, V = t->V, n = z->n_t;
    norm_forward(m, &t->rows, W(t, ROLE_NORM_FINAL, -1), t->hf, t->rs_f, t->x_final, d,
                 (real)m->shape.norm_eps);
    /* rows with a target, in place (rows_t ascends, so row j moves down or stays) */
    for (int64_t j = 0; j < n; j++)
        if (z->rows_t[j] != j)
            memcpy(t->hf + j * d, t->hf + z->rows_t[j] * d, (size_t)d * sizeof(real));
    const tensor_info_t *head = &m->tensors[t->head];
    if (n > 0)
        gemm(GEMM_HEAD, false, true, n, V, d, 1, t->hf, d, m->params + head->offset, d, 0, t->logits, V);
    loss_cross_entropy(t->logits, n, V, z->tgt_c, NULL, &z->vocab, grad_scale, loss_sum, count);
    if (grad_scale <= 0)
        return;
    /* logits = hf head^T:  dhead += dlogits^T hf,  dhf = dlogits head, scattered to its rows */
    memset(t->dhf, 0, (size_t)(t->N * d) * sizeof(real));
    if (n == 0)
        return;
    if (!head->frozen)
        gemm(GEMM_HEAD, true, false, V, d, n, 1, t->logits, V, t->hf, d, 1, m->grads + head->offset, d);
    gemm(GEMM_HEAD, false, false, n, d, V, 1, t->logits, V, m->params + head->offset, d, 0, t->dtmp, d);
    for (int64_t j = 0; j < n; j++)
        memcpy(t->dhf + z->rows_t[j] * d, t->dtmp + j * d, (size_t)d * sizeof(real));
}

/* Both towers from the windows to their last blocks' outputs (x_final). */
static void zipper_trunk(model_t *m, const int32_t *windows, int B, real grad_scale)
{
    zipper_impl_t *Z = m->impl;
    split_streams(m, Z, windows, B);
    for (int X = 0; X < ZT_N; X++) {
        ztower_t *z = &Z->z[X];
        z->t.grad_scale = grad_scale;
        if (grad_scale > 0)
            for (int b = 0; b < B; b++)
                m->tokens_in[z->mod] += z->len[b];
        input_forward(m, z);
    }
    /* level k: each tower's layers up to its block k, then both blocks, each over
     * the other's block input */
    for (int k = 0; k < Z->z[0].K; k++) {
        for (int X = 0; X < ZT_N; X++) {
            ztower_t *z = &Z->z[X];
            for (int l = k * z->iv; l < (k + 1) * z->iv; l++) {
                attn_half_forward(m, &z->t, l);
                ffn_half_forward(m, &z->t, l, l + 1 < (k + 1) * z->iv ? z->t.la[l + 1].x : z->cb[k].in);
            }
        }
        for (int X = 0; X < ZT_N; X++) {
            ztower_t *z = &Z->z[X];
            int next = (k + 1) * z->iv;
            cross_forward(m, z, &Z->z[1 - X], k, next < z->t.L ? z->t.la[next].x : z->t.x_final);
        }
    }
}

static void zipper_forward(model_t *m, const int32_t *windows, int B, real grad_scale, double *loss_sum,
                           int64_t *count)
{
    zipper_impl_t *Z = m->impl;
    zipper_trunk(m, windows, B, grad_scale);
    for (int X = 0; X < ZT_N; X++)
        head_forward(m, &Z->z[X], grad_scale, loss_sum, count);
}

/* The next token of modality mod: the head of its tower at the tower's last row of
 * the first n positions (a tower without a row there says nothing: logits 0). */
static void zipper_next_logits(model_t *m, const int32_t *window, int64_t n, int mod, real *out)
{
    zipper_impl_t *Z = m->impl;
    zipper_trunk(m, window, 1, 0);
    ztower_t *z = &Z->z[mod == Z->z[ZT_TEXT].mod ? ZT_TEXT : ZT_SPEECH];
    tower_impl_t *t = &z->t;
    int64_t r = -1, d = t->d;
    for (int64_t i = 0; i < z->len[0]; i++)
        if (z->pos[i] < n)
            r = i;
    if (r < 0) {
        for (int32_t j = 0; j < t->V; j++)
            out[z->lo + j] = 0;
        return;
    }
    real rs;
    const tensor_info_t *nf = &m->tensors[W(t, ROLE_NORM_FINAL, -1)[0]], *head = &m->tensors[t->head];
    rmsnorm_forward(t->hf, &rs, t->x_final + r * d, m->params + nf->offset, 1, d, (real)m->shape.norm_eps);
    gemm(GEMM_HEAD, false, true, 1, t->V, d, 1, t->hf, d, m->params + head->offset, d, 0, t->logits, t->V);
    for (int32_t j = 0; j < t->V; j++)
        out[z->lo + j] = t->logits[j];
}

/* ---- backward ----------------------------------------------------------------- */

/* y = x + tanh(a) v over n values:  da += (1 - tanh(a)^2) sum dy v. */
static void gate_backward(model_t *m, int gate, real g, const real *dy, const real *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)dy[i] * v[i];
    m->grads[m->tensors[gate].offset] += (real)((1 - (double)g * g) * s);
}

/* Block k of tower a over tower o: a->t.dres holds d loss / d out; adds d loss / d in
 * into a->dx and d loss / d (o's block input) into o->dx. */
static void cross_backward(model_t *m, ztower_t *a, ztower_t *o, int k)
{
    cross_block_t *c = &a->cb[k];
    tower_impl_t *t = &a->t;
    int64_t N = t->N, d = t->d, dl = t->dl, nd = N * d;
    const blocks_t *b = &t->rows;
    const real *dout = t->dres;
    real ga = (real)tanh((double)P1(m, c->gate_a)), gf = (real)tanh((double)P1(m, c->gate_f));
    /* out = h + tanh(gate_f) z */
    gate_backward(m, c->gate_f, gf, dout, c->z, nd);
    for (int64_t i = 0; i < nd; i++)
        a->t1[i] = gf * dout[i];
    /* z = SwiGLU(hn) (g: identity backward): dhn, then f: all-reduce; hn = RMSNorm_f(h) */
    ffn_weights_t fw = {&c->w1, &c->w3, &c->w2};
    ffn_backward(m, NULL, b, &fw, &c->ffn, &t->fs, a->t2, a->t1, c->hn, d, t->fl, N);
    tp_f_backward(&m->tp, a->t2, (size_t)nd);
    real *dh = a->t1;
    memcpy(dh, dout, (size_t)nd * sizeof(real));
    norm_backward(m, b, &c->fnorm, dh, a->t2, c->h, c->rs_h, d);
    /* h = in + tanh(gate_a) y */
    gate_backward(m, c->gate_a, ga, dh, c->y, nd);
    for (int64_t i = 0; i < nd; i++) {
        a->dx[i] += dh[i];
        a->t2[i] = ga * dh[i];
    }
    /* y = att W_o:  datt = dy W_o^T, dW_o += att^T dy; then the attention */
    linear_backward(m, NULL, b, &c->wo, t->datt, false, a->t2, d, c->att, dl);
    attn_geom_t g = cross_geom(a);
    attention_backward(&g, &c->keep, &t->as, t->dq, t->dk, t->dv, t->datt);
    /* q = xn W_q: dxn (f: all-reduce), xn = RMSNorm_x(in) */
    linear_backward(m, NULL, b, &c->wq, a->t2, false, t->dq, dl, c->xn, d);
    tp_f_backward(&m->tp, a->t2, (size_t)nd);
    norm_backward(m, b, &c->norm, a->dx, a->t2, c->in, c->rs, d);
    /* k = u W_k, v = u W_v: du (f: all-reduce); u = in_o P: d in_o += du P^T */
    linear_backward(m, NULL, b, &c->wk, a->t1, false, t->dk, dl, c->u, d);
    linear_backward(m, NULL, b, &c->wv, a->t1, true, t->dv, dl, c->u, d);
    tp_f_backward(&m->tp, a->t1, (size_t)nd);
    linear_backward(m, NULL, &o->t.rows, &c->proj, o->dx, true, a->t1, d, o->cb[k].in, o->t.d);
}

/* x0 = e + tanh(gate) relu(e W_a) W_b: t.dres holds d loss / d x0. */
static void input_backward(model_t *m, ztower_t *z)
{
    tower_impl_t *t = &z->t;
    int64_t N = t->N, d = t->d, nd = N * d;
    const real *dx0 = t->dres;
    real g = (real)tanh((double)P1(m, z->mlp_gate));
    gate_backward(m, z->mlp_gate, g, dx0, z->mo, nd);
    for (int64_t i = 0; i < nd; i++)
        z->t1[i] = g * dx0[i];
    /* mo = r W_b;  r = relu(ua);  ua = e W_a;  de = dx0 + dua W_a^T */
    linear_backward(m, NULL, &t->rows, &z->mlp_b, z->t2, false, z->t1, d, z->r, d);
    for (int64_t i = 0; i < nd; i++)
        z->t2[i] = z->ua[i] > 0 ? z->t2[i] : 0;
    memcpy(z->t1, dx0, (size_t)nd * sizeof(real));
    linear_backward(m, NULL, &t->rows, &z->mlp_a, z->t1, true, z->t2, d, z->e, d);
    const tensor_info_t *E = &m->tensors[t->embed];
    if (E->frozen)
        return;
    /* e = embed[token]:  dembed[token] += de, over the stream's rows (padding has none) */
    real *dE = m->grads + E->offset;
    for (int b = 0; b < t->B; b++)
        for (int64_t i = 0; i < z->len[b]; i++) {
            int64_t g = (int64_t)b * t->T + i;
            real *row = dE + (int64_t)t->tok_in[g] * d;
            for (int64_t j = 0; j < d; j++)
                row[j] += z->t1[g * d + j];
        }
}

static void zipper_backward(model_t *m)
{
    zipper_impl_t *Z = m->impl;
    for (int X = 0; X < ZT_N; X++) {
        tower_impl_t *t = &Z->z[X].t;
        memset(t->dres, 0, (size_t)(t->N * t->d) * sizeof(real));
        norm_backward(m, &t->rows, W(t, ROLE_NORM_FINAL, -1), t->dres, t->dhf, t->x_final, t->rs_f, t->d);
    }
    for (int k = Z->z[0].K - 1; k >= 0; k--) {
        for (int X = 0; X < ZT_N; X++)
            memset(Z->z[X].dx, 0, (size_t)(Z->z[X].t.N * Z->z[X].t.d) * sizeof(real));
        for (int X = 0; X < ZT_N; X++)
            cross_backward(m, &Z->z[X], &Z->z[1 - X], k);
        for (int X = 0; X < ZT_N; X++) {
            ztower_t *z = &Z->z[X];
            memcpy(z->t.dres, z->dx, (size_t)(z->t.N * z->t.d) * sizeof(real));
            for (int l = (k + 1) * z->iv - 1; l >= k * z->iv; l--) {
                ffn_half_backward(m, &z->t, l);
                attn_half_backward(m, &z->t, l);
            }
        }
    }
    for (int X = 0; X < ZT_N; X++)
        input_backward(m, &Z->z[X]);
    if (m->on_stage)
        m->on_stage(m->on_stage_ctx, 0);
}

/* ---- FLOPs and memory ------------------------------------------------------------
 * Per token of tower X (forward; width d, FFN f, depth L, vocabulary V, K blocks;
 * the other tower Y of width e), a multiply-add counting 2:
 *   its layers                 L (2 * 4 d^2 + 2 * 3 d f)            (as the tower transformer)
 *   its attention              L 2 s d; its cross-attention K 2 s d (the whole window's s)
 *   its input MLP              2 * 2 d^2
 *   its cross blocks           K (2 * 2 d^2 [q, o] + 2 * 3 d f)
 *   Y's blocks on its rows     K (2 e d [the projection to e] + 2 * 2 e^2 [k, v])
 *   its head                   2 d V
 * Training is 3 x forward. A tower's stream is padded to s rows per sequence, so the
 * GEMMs issue more than these model FLOPs (docs/model.md). */
static void tower_terms(const model_shape_t *s, int X, double *matrix, double *attn, double *head)
{
    double d = s->zt[X].d_model, f = s->zt[X].d_ff, L = s->zt[X].n_layers, T = s->seq_len;
    double e = s->zt[1 - X].d_model, K = L / s->zt[X].interval;
    *matrix = L * (8 * d * d + 6 * d * f) + 4 * d * d + K * (4 * d * d + 6 * d * f) + K * (2 * e * d + 4 * e * e);
    *attn = (L + K) * 2 * T * d;
    *head = 2 * d * s->zt[X].vocab;
}

static void zipper_flops(flops_report_t *r, const model_shape_t *s, int32_t vocab_size)
{
    (void)vocab_size;
    memset(r, 0, sizeof *r);
    static const char *name[ZT_N] = {"text", "speech"};
    double params = 0;
    double fwd[ZT_N], mat[ZT_N];
    for (int X = 0; X < ZT_N; X++) {
        double d = s->zt[X].d_model, f = s->zt[X].d_ff, L = s->zt[X].n_layers, V = s->zt[X].vocab;
        double e = s->zt[1 - X].d_model, K = L / s->zt[X].interval, qk = s->qk_norm ? 2 * d : 0;
        double backbone = 2 * V * d + L * (4 * d * d + 3 * d * f + 2 * d + qk) + d;
        double fusion = 2 * d * d + 1 + K * (e * d + 4 * d * d + 3 * d * f + 2 * d + 2);
        char label[40];
        snprintf(label, sizeof label, "%s backbone", name[X]);
        flops_add_params(r, label, backbone);
        snprintf(label, sizeof label, "%s fusion", name[X]);
        flops_add_params(r, label, fusion);
        params += backbone + fusion;
        double matrix, attn, head;
        tower_terms(s, X, &matrix, &attn, &head);
        snprintf(label, sizeof label, "%s layers + fusion", name[X]);
        flops_add_fwd(r, label, matrix, true);
        snprintf(label, sizeof label, "%s attention", name[X]);
        flops_add_fwd(r, label, attn, false);
        snprintf(label, sizeof label, "%s head", name[X]);
        flops_add_fwd(r, label, head, true);
        fwd[X] = matrix + attn + head;
        mat[X] = matrix + head;
    }
    r->params_total = (int64_t)params;
    flops_finish(r, s->n_modalities, 0);
    /* a token pays its own tower's terms, not the other's */
    r->fwd_per_token = r->train_matrix_per_token = 0;
    for (int k = 0; k < s->n_modalities; k++) {
        int X = k == 0 ? ZT_TEXT : ZT_SPEECH;
        r->train_per_token_of[k] = 3 * fwd[X];
        if (fwd[X] > r->fwd_per_token) {
            r->fwd_per_token = fwd[X];
            r->train_matrix_per_token = 3 * mat[X];
            int64_t active = 0;
            for (int i = 0; i < r->n_params; i++)
                if (!strncmp(r->params[i].name, name[X], strlen(name[X])))
                    active += (int64_t)r->params[i].value;
            r->params_active_per_token = active;
        }
    }
    r->bwd_per_token = 2 * r->fwd_per_token;
    r->train_per_token = 3 * r->fwd_per_token;
}

static void zipper_memory(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size,
                          int max_seqs)
{
    (void)vocab_size;
    table_builder_t b = {.backend = s->tp_backend, .tp_rank = 0, .tp_size = tp_size};
    double kept = 0, total = 0;
    size_t frozen = 0;
    for (int X = 0; X < ZT_N; X++) {
        ztower_t z;
        memset(&z, 0, sizeof z);
        ztower_shape(&z.s, s, X);
        z.iv = s->zt[X].interval;
        z.K = z.s.n_layers / z.iv;
        size_t before = b.n_local;
        tower_list(&z.s, s->zt[X].vocab, &b, NULL, PREFIX[X], X);
        int fr = s->zipper_freeze;
        if (fr == FREEZE_BOTH || (X == ZT_TEXT && fr == FREEZE_TEXT) || (X == ZT_SPEECH && fr == FREEZE_SPEECH))
            frozen += b.n_local - before;
        fusion_list(&b, &z, X, s->zt[1 - X].d_model);
        plan_t p = {0};
        tower_plan(&z.s, s->zt[X].vocab, tp_size, max_seqs, &p, NULL);
        ztower_plan(&z, tp_size, max_seqs, &p, NULL);
        kept += (double)p.kept;
        total += (double)p.total;
    }
    double elem = (double)sizeof(real);
    r->params = elem * (double)b.n_local;
    r->grads = elem * (double)(b.n_local - frozen);
    r->moments = 2 * r->grads;
    r->activations = elem * kept;
    r->scratch = elem * (total - kept);
    r->analytic_min = r->params + r->grads + r->moments + r->activations;
}

const model_kind_ops_t zipper_kind = {
    .name = "zipper",
    .build = zipper_build,
    .free = zipper_free,
    .forward = zipper_forward,
    .backward = zipper_backward,
    .next_logits = zipper_next_logits,
    .flops = zipper_flops,
    .memory = zipper_memory,
};
