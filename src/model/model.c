/* Tower transformer: tensor table, layout-independent init, forward and backward
 * by hand, every matrix product through gemm(). Shapes are stated before each
 * loop; N rows in grouped order, d model width, dl/fl this rank's attention/FFN
 * widths (Megatron column/row slices), hl local heads of size hd. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/gemm.h"
#include "motscale/kernels.h"
#include "motscale/model.h"
#include "motscale/scalapack.h"

/* Named views into the one activation allocation. Per layer l: */
struct layer_acts {
    real *x;            /* (N, d)  block input (residual stream) */
    real *xn, *rs_a;    /* (N, d), (N)  pre: RMSNorm_attn(x) */
    real *q, *k, *v;    /* (N, dl) raw projections */
    real *qn, *kn;      /* (N, dl) QK-normed (aliases q, k without qk_norm) */
    real *rs_q, *rs_k;  /* (N * hl) QK-norm rstd */
    real *qa, *ka, *va; /* (B, hl, T, hd) attention layout, RoPE applied to q, k */
    real *p;            /* (B, hl, T, T) softmax probabilities */
    real *att;          /* (N, dl) attention output, grouped rows */
    real *y, *rs_y;     /* (N, d), (N)  a W_o after the g all-reduce */
    real *h;            /* (N, d)  residual after attention */
    real *hn, *rs_h;    /* (N, d), (N)  pre: RMSNorm_ffn(h) */
    real *u, *w, *s;    /* (N, fl) W_1 out, W_3 out, silu(u) * w */
    real *z, *rs_z;     /* (N, d), (N)  s W_2 after the g all-reduce */
};
struct model_acts {
    struct layer_acts *L;
    real *x_final;      /* (N, d)  output of the last block */
    real *hf, *rs_f;    /* (N, d), (N)  final norm */
    real *logits;       /* (N, V)  logits, then d loss / d logits */
    /* backward scratch */
    real *dres, *dtmp;  /* (N, d) */
    real *dq, *dk, *dv, *dqn, *dkn, *datt; /* (N, dl) */
    real *dqa, *dka, *dva;                 /* (B, hl, T, hd) */
    real *du, *dw, *ds;                    /* (N, fl) */
    real *dp;           /* (T, T) */
    real *o;            /* (T, hd) */
};

/* ---- tensor table ---------------------------------------------------------- */

static int add_tensor(model_t *m, int cap, int role, int tower, int layer, int64_t rows,
                      int64_t cols, int shard, bool decay)
{
    if (m->n_tensors == cap)
        DIE(EXIT_FAULT, "tensor table overflow (%d)", cap);
    tensor_info_t *t = &m->tensors[m->n_tensors];
    static const char *rname[ROLE_N] = {
        "embed", "head", "attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn.w1", "ffn.w3",
        "ffn.w2", "attn_norm", "ffn_norm", "attn.q_norm", "attn.k_norm", "final_norm"};
    if (tower < 0)
        snprintf(t->name, sizeof t->name, "%s", rname[role]);
    else if (layer < 0)
        snprintf(t->name, sizeof t->name, "tower%d.%s", tower, rname[role]);
    else
        snprintf(t->name, sizeof t->name, "tower%d.layer%d.%s", tower, layer, rname[role]);
    t->role = role;
    t->tower = tower;
    t->layer = layer;
    t->rows = rows;
    t->cols = cols;
    t->shard = shard;
    t->decay = decay;
    int R = m->tp.rank, P = m->tp.size;
    t->lrows = rows;
    t->lcols = cols;
    t->row0 = t->col0 = 0;
    if (shard == SHARD_COL) {
        t->lcols = cols / P;
        t->col0 = R * t->lcols;
    } else if (shard == SHARD_ROW) {
        t->lrows = rows / P;
        t->row0 = R * t->lrows;
    }
    t->numel = (size_t)(t->lrows * t->lcols);
    t->offset = m->n_local;
    m->n_local += t->numel;
    return m->n_tensors++;
}

static int *idx_at(const model_t *m, int role, int tower, int layer)
{
    return &m->index[((size_t)tower * (size_t)(m->n_layers + 1) + (size_t)(layer + 1)) * ROLE_N + role];
}

const tensor_info_t *model_tensor(const model_t *m, int role, int tower, int layer)
{
    int i;
    if (role == ROLE_EMBED)
        i = m->embed_idx;
    else if (role == ROLE_HEAD)
        i = m->head_idx;
    else
        i = *idx_at(m, role, tower, layer);
    return i < 0 ? NULL : &m->tensors[i];
}

real *model_param(const model_t *m, int role, int tower, int layer)
{
    const tensor_info_t *t = model_tensor(m, role, tower, layer);
    return t ? m->params + t->offset : NULL;
}

real *model_grad(const model_t *m, int role, int tower, int layer)
{
    const tensor_info_t *t = model_tensor(m, role, tower, layer);
    return t ? m->grads + t->offset : NULL;
}

static void *carve(real **cursor, size_t n)
{
    real *p = *cursor;
    *cursor += n;
    return p;
}

void model_build(model_t *m, const config_t *cfg, const vocab_t *v, tp_ctx_t tp, int max_seqs)
{
    memset(m, 0, sizeof *m);
    m->d = cfg->d_model;
    m->n_layers = cfg->n_layers;
    m->n_heads = cfg->n_heads;
    m->hd = cfg->d_model / cfg->n_heads;
    m->d_ff = cfg->d_ff;
    m->seq_len = cfg->seq_len;
    m->n_towers = cfg->n_towers;
    m->n_modalities = cfg->n_modalities;
    m->vocab = v->size;
    m->vocab_layout = *v;
    m->tp = tp;
    m->hl = cfg->n_heads / tp.size;
    m->dl = m->hl * m->hd;
    m->fl = cfg->d_ff / tp.size;
    m->norm = cfg->norm;
    m->qk_norm = cfg->qk_norm;
    m->eps = (real)cfg->norm_eps;
    for (int i = 0; i < cfg->n_modalities; i++)
        m->tower_of[i] = cfg->tower_of[i];

    /* Table order: embedding, head, then each tower's tensors as one range. */
    int per_tower = m->n_layers * 11 + 1;
    int cap = 2 + m->n_towers * per_tower;
    m->tensors = xcalloc((size_t)cap, sizeof *m->tensors);
    size_t nidx = (size_t)m->n_towers * (size_t)(m->n_layers + 1) * ROLE_N;
    m->index = xmalloc(nidx * sizeof *m->index);
    for (size_t i = 0; i < nidx; i++)
        m->index[i] = -1;
    int64_t d = m->d, f = m->d_ff, V = m->vocab;
    m->embed_idx = add_tensor(m, cap, ROLE_EMBED, -1, -1, V, d, SHARD_NONE, true);
    m->head_idx = add_tensor(m, cap, ROLE_HEAD, -1, -1, V, d, SHARD_NONE, true);
    for (int t = 0; t < m->n_towers; t++) {
        for (int l = 0; l < m->n_layers; l++) {
            *idx_at(m, ROLE_WQ, t, l) = add_tensor(m, cap, ROLE_WQ, t, l, d, d, SHARD_COL, true);
            *idx_at(m, ROLE_WK, t, l) = add_tensor(m, cap, ROLE_WK, t, l, d, d, SHARD_COL, true);
            *idx_at(m, ROLE_WV, t, l) = add_tensor(m, cap, ROLE_WV, t, l, d, d, SHARD_COL, true);
            *idx_at(m, ROLE_WO, t, l) = add_tensor(m, cap, ROLE_WO, t, l, d, d, SHARD_ROW, true);
            *idx_at(m, ROLE_W1, t, l) = add_tensor(m, cap, ROLE_W1, t, l, d, f, SHARD_COL, true);
            *idx_at(m, ROLE_W3, t, l) = add_tensor(m, cap, ROLE_W3, t, l, d, f, SHARD_COL, true);
            *idx_at(m, ROLE_W2, t, l) = add_tensor(m, cap, ROLE_W2, t, l, f, d, SHARD_ROW, true);
            *idx_at(m, ROLE_NORM_ATTN, t, l) =
                add_tensor(m, cap, ROLE_NORM_ATTN, t, l, 1, d, SHARD_NONE, false);
            *idx_at(m, ROLE_NORM_FFN, t, l) =
                add_tensor(m, cap, ROLE_NORM_FFN, t, l, 1, d, SHARD_NONE, false);
            if (m->qk_norm) {
                /* per-head weights: sharded with the heads */
                *idx_at(m, ROLE_QNORM, t, l) = add_tensor(m, cap, ROLE_QNORM, t, l, 1, d, SHARD_COL, false);
                *idx_at(m, ROLE_KNORM, t, l) = add_tensor(m, cap, ROLE_KNORM, t, l, 1, d, SHARD_COL, false);
            }
        }
        *idx_at(m, ROLE_NORM_FINAL, t, -1) = add_tensor(m, cap, ROLE_NORM_FINAL, t, -1, 1, d, SHARD_NONE, false);
    }
    m->tp_backend = cfg->tp_backend;
    if (m->tp_backend == TP_SCALAPACK) {
        /* 2D: each projection matrix holds this rank's block of the ScaLAPACK grid
         * instead of a Megatron slice. Laying the table out again here keeps init,
         * checkpoints, the optimizer and the DP buckets unaware of the backend. */
        m->n_local = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            tensor_info_t *ti = &m->tensors[i];
            if (ti->role >= ROLE_WQ && ti->role <= ROLE_W2)
                sl_weight_block(tp.size, tp.rank, ti->rows, ti->cols, &ti->row0, &ti->lrows,
                                &ti->col0, &ti->lcols);
            ti->numel = (size_t)(ti->lrows * ti->lcols);
            ti->offset = m->n_local;
            m->n_local += ti->numel;
        }
        m->sl = sl_create(&m->tp, (int64_t)max_seqs * m->seq_len, d > f ? d : f);
    }
    m->params = xcalloc(m->n_local, sizeof(real));
    m->grads = xcalloc(m->n_local, sizeof(real));

    /* batch buffers */
    m->max_seqs = max_seqs;
    int64_t T = m->seq_len, N = (int64_t)max_seqs * T, dl = m->dl, fl = m->fl, hl = m->hl;
    m->tok_in = xmalloc((size_t)N * sizeof *m->tok_in);
    m->tok_tgt = xmalloc((size_t)N * sizeof *m->tok_tgt);
    m->perm = xmalloc((size_t)N * sizeof *m->perm);
    m->inv = xmalloc((size_t)N * sizeof *m->inv);
    m->rope_cos = xmalloc((size_t)(T * m->hd / 2) * sizeof(real));
    m->rope_sin = xmalloc((size_t)(T * m->hd / 2) * sizeof(real));
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < m->hd / 2; j++) {
            double ang = (double)i * pow(cfg->rope_theta, -2.0 * (double)j / (double)m->hd);
            m->rope_cos[i * m->hd / 2 + j] = (real)cos(ang);
            m->rope_sin[i * m->hd / 2 + j] = (real)sin(ang);
        }

    size_t per_layer = (size_t)(N * d * 6 + N * 5 + N * dl * 9 + 2 * N * hl + N * hl * T + N * fl * 3);
    size_t total = per_layer * (size_t)m->n_layers + (size_t)(N * d * 4 + N + N * V) +
                   (size_t)(N * dl * 9 + N * fl * 3 + T * T + T * m->hd);
    m->act = xcalloc(total, sizeof(real));
    m->a = xcalloc(1, sizeof *m->a);
    m->a->L = xcalloc((size_t)m->n_layers, sizeof *m->a->L);
    real *c = m->act;
    for (int l = 0; l < m->n_layers; l++) {
        struct layer_acts *A = &m->a->L[l];
        A->x = carve(&c, (size_t)(N * d));
        A->xn = carve(&c, (size_t)(N * d));
        A->rs_a = carve(&c, (size_t)N);
        A->q = carve(&c, (size_t)(N * dl));
        A->k = carve(&c, (size_t)(N * dl));
        A->v = carve(&c, (size_t)(N * dl));
        A->qn = carve(&c, (size_t)(N * dl));
        A->kn = carve(&c, (size_t)(N * dl));
        A->rs_q = carve(&c, (size_t)(N * hl));
        A->rs_k = carve(&c, (size_t)(N * hl));
        A->qa = carve(&c, (size_t)(N * dl));
        A->ka = carve(&c, (size_t)(N * dl));
        A->va = carve(&c, (size_t)(N * dl));
        A->p = carve(&c, (size_t)(N * hl * T));
        A->att = carve(&c, (size_t)(N * dl));
        A->y = carve(&c, (size_t)(N * d));
        A->rs_y = carve(&c, (size_t)N);
        A->h = carve(&c, (size_t)(N * d));
        A->hn = carve(&c, (size_t)(N * d));
        A->rs_h = carve(&c, (size_t)N);
        A->u = carve(&c, (size_t)(N * fl));
        A->w = carve(&c, (size_t)(N * fl));
        A->s = carve(&c, (size_t)(N * fl));
        A->z = carve(&c, (size_t)(N * d));
        A->rs_z = carve(&c, (size_t)N);
        if (!m->qk_norm) {
            A->qn = A->q;
            A->kn = A->k;
        }
    }
    struct model_acts *a = m->a;
    a->x_final = carve(&c, (size_t)(N * d));
    a->hf = carve(&c, (size_t)(N * d));
    a->rs_f = carve(&c, (size_t)N);
    a->logits = carve(&c, (size_t)(N * V));
    a->dres = carve(&c, (size_t)(N * d));
    a->dtmp = carve(&c, (size_t)(N * d));
    a->dq = carve(&c, (size_t)(N * dl));
    a->dk = carve(&c, (size_t)(N * dl));
    a->dv = carve(&c, (size_t)(N * dl));
    a->dqn = carve(&c, (size_t)(N * dl));
    a->dkn = carve(&c, (size_t)(N * dl));
    a->datt = carve(&c, (size_t)(N * dl));
    a->dqa = carve(&c, (size_t)(N * dl));
    a->dka = carve(&c, (size_t)(N * dl));
    a->dva = carve(&c, (size_t)(N * dl));
    a->du = carve(&c, (size_t)(N * fl));
    a->dw = carve(&c, (size_t)(N * fl));
    a->ds = carve(&c, (size_t)(N * fl));
    a->dp = carve(&c, (size_t)(T * T));
    a->o = carve(&c, (size_t)(T * m->hd));
    if ((size_t)(c - m->act) > total)
        DIE(EXIT_FAULT, "activation layout overflow (%zu > %zu)", (size_t)(c - m->act), total);
}

void model_free(model_t *m)
{
    sl_free(m->sl);
    free(m->tensors);
    free(m->index);
    free(m->params);
    free(m->grads);
    free(m->tok_in);
    free(m->tok_tgt);
    free(m->perm);
    free(m->inv);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->act);
    if (m->a)
        free(m->a->L);
    free(m->a);
    memset(m, 0, sizeof *m);
}

/* ---- initialisation ------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void model_init_params(model_t *m, uint64_t seed, bool same_towers, double init_std)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *t = &m->tensors[i];
        real *p = m->params + t->offset;
        if (!t->decay) { /* norm weights start at one */
            for (size_t j = 0; j < t->numel; j++)
                p[j] = 1;
            continue;
        }
        int tower = same_towers && t->tower >= 0 ? 0 : t->tower;
        uint64_t id = ((uint64_t)t->role << 40) ^ ((uint64_t)(tower + 1) << 20) ^ (uint64_t)(t->layer + 1);
        gsl_rng_set(rng, (unsigned long)(splitmix64(seed ^ splitmix64(id)) & 0xffffffffu));
        double std = init_std;
        if (t->role == ROLE_WO || t->role == ROLE_W2)
            std /= sqrt(2.0 * m->n_layers);
        /* Draw the whole logical tensor in row-major order; keep this rank's slice. */
        for (int64_t r = 0; r < t->rows; r++)
            for (int64_t c = 0; c < t->cols; c++) {
                double x = gsl_ran_gaussian_ziggurat(rng, std);
                int64_t lr = r - t->row0, lc = c - t->col0;
                if (lr >= 0 && lr < t->lrows && lc >= 0 && lc < t->lcols)
                    p[lr * t->lcols + lc] = (real)x;
            }
    }
    gsl_rng_free(rng);
}

void model_zero_grads(model_t *m) { memset(m->grads, 0, m->n_local * sizeof(real)); }

/* ---- per-tower building blocks -------------------------------------------- */

#define TOWERS(m, t) for (int t = 0; t < (m)->n_towers; t++)
#define ROWS(m, t) ((m)->tower_off[(t) + 1] - (m)->tower_off[(t)])

/* Y[rows of t] = X[rows of t] W_t   X: (N, in), W_t: (in, out), Y: (N, out) */
static void tower_linear(model_t *m, int role, int l, const real *X, int64_t in, real *Y, int64_t out)
{
    TOWERS(m, t) {
        int64_t o = m->tower_off[t];
        if (m->tp_backend == TP_SCALAPACK) {
            /* same product on the 2D grid; in/out above are the local widths */
            const tensor_info_t *w = model_tensor(m, role, t, l);
            sl_linear_forward(m->sl, w->shard == SHARD_ROW ? SL_ROW_PARALLEL : SL_COLUMN_PARALLEL,
                              Y + o * out, X + o * in, m->params + w->offset, ROWS(m, t), w->rows,
                              w->cols);
            continue;
        }
        gemm(GEMM_PROJ, false, false, ROWS(m, t), out, in, 1, X + o * in, in,
             model_param(m, role, t, l), out, 0, Y + o * out, out);
    }
}

/* dX (+)= dY W_t^T ; dW_t += X^T dY, the backward of tower_linear */
static void tower_linear_backward(model_t *m, int role, int l, const real *X, int64_t in,
                                  const real *dY, int64_t out, real *dX, bool accumulate)
{
    TOWERS(m, t) {
        int64_t o = m->tower_off[t], n = ROWS(m, t);
        if (n == 0)
            continue;
        if (m->tp_backend == TP_SCALAPACK) {
            const tensor_info_t *w = model_tensor(m, role, t, l);
            sl_linear_backward(m->sl, w->shard == SHARD_ROW ? SL_ROW_PARALLEL : SL_COLUMN_PARALLEL,
                               dX + o * in, m->grads + w->offset, X + o * in, dY + o * out,
                               m->params + w->offset, n, w->rows, w->cols, accumulate);
            continue;
        }
        gemm(GEMM_PROJ, true, false, in, out, n, 1, X + o * in, in, dY + o * out, out, 1,
             model_grad(m, role, t, l), out);
        gemm(GEMM_PROJ, false, true, n, in, out, 1, dY + o * out, out, model_param(m, role, t, l),
             out, accumulate ? 1 : 0, dX + o * in, in);
    }
}

static void tower_rmsnorm(model_t *m, int role, int l, real *Y, real *rs, const real *X)
{
    TOWERS(m, t) {
        int64_t o = m->tower_off[t];
        rmsnorm_forward(Y + o * m->d, rs + o, X + o * m->d, model_param(m, role, t, l), ROWS(m, t),
                        m->d, m->eps);
    }
}

static void tower_rmsnorm_backward(model_t *m, int role, int l, real *dX, const real *dY,
                                   const real *X, const real *rs)
{
    TOWERS(m, t) {
        int64_t o = m->tower_off[t];
        rmsnorm_backward(dX + o * m->d, model_grad(m, role, t, l), dY + o * m->d, X + o * m->d,
                         model_param(m, role, t, l), rs + o, ROWS(m, t), m->d);
    }
}

/* Per-head RMSNorm of q or k: rows of hd within (N, dl), weight slice per head. */
static void tower_qknorm(model_t *m, int role, int l, real *Y, real *rs, const real *X)
{
    TOWERS(m, t) {
        const real *w = model_param(m, role, t, l);
        for (int64_t g = m->tower_off[t]; g < m->tower_off[t + 1]; g++)
            for (int h = 0; h < m->hl; h++) {
                int64_t off = g * m->dl + h * m->hd;
                rmsnorm_forward(Y + off, rs + g * m->hl + h, X + off, w + h * m->hd, 1, m->hd, m->eps);
            }
    }
}

static void tower_qknorm_backward(model_t *m, int role, int l, real *dX, const real *dY,
                                  const real *X, const real *rs)
{
    TOWERS(m, t) {
        const real *w = model_param(m, role, t, l);
        real *dw = model_grad(m, role, t, l);
        for (int64_t g = m->tower_off[t]; g < m->tower_off[t + 1]; g++)
            for (int h = 0; h < m->hl; h++) {
                int64_t off = g * m->dl + h * m->hd;
                rmsnorm_backward(dX + off, dw + h * m->hd, dY + off, X + off, w + h * m->hd,
                                 rs + g * m->hl + h, 1, m->hd);
            }
    }
}

/* ---- attention -------------------------------------------------------------- */

/* Index of (b, h, i) in the attention layout (B, hl, T, hd). */
static inline int64_t att_at(const model_t *m, int b, int h, int64_t i)
{
    return (((int64_t)b * m->hl + h) * m->seq_len + i) * m->hd;
}

static void attention_forward(model_t *m, struct layer_acts *A)
{
    int64_t T = m->seq_len, hd = m->hd, dl = m->dl;
    const real *cs = m->rope_cos, *sn = m->rope_sin;
    real scale = (real)(1.0 / sqrt((double)hd));
    for (int b = 0; b < m->B; b++)
        for (int h = 0; h < m->hl; h++) {
            /* grouped rows -> sequence order, RoPE on q and k */
            for (int64_t i = 0; i < T; i++) {
                int64_t g = m->inv[b * T + i], src = g * dl + h * hd, dst = att_at(m, b, h, i);
                rope_rotate(A->qa + dst, A->qn + src, cs + i * hd / 2, sn + i * hd / 2, hd, 0);
                rope_rotate(A->ka + dst, A->kn + src, cs + i * hd / 2, sn + i * hd / 2, hd, 0);
                memcpy(A->va + dst, A->v + src, (size_t)hd * sizeof(real));
            }
            real *P = A->p + ((int64_t)b * m->hl + h) * T * T;
            const real *qa = A->qa + att_at(m, b, h, 0), *ka = A->ka + att_at(m, b, h, 0),
                       *va = A->va + att_at(m, b, h, 0);
            /* S = q k^T / sqrt(hd): (T, T);  P = causal softmax(S);  O = P v: (T, hd) */
            gemm(GEMM_ATTN, false, true, T, T, hd, scale, qa, hd, ka, hd, 0, P, T);
            softmax_causal(P, T);
            gemm(GEMM_ATTN, false, false, T, hd, T, 1, P, T, va, hd, 0, m->a->o, hd);
            for (int64_t i = 0; i < T; i++)
                memcpy(A->att + (int64_t)m->inv[b * T + i] * dl + h * hd, m->a->o + i * hd,
                       (size_t)hd * sizeof(real));
        }
}

/* From datt (N, dl) to dqn, dkn, dv (N, dl), all grouped rows. */
static void attention_backward(model_t *m, struct layer_acts *A)
{
    struct model_acts *a = m->a;
    int64_t T = m->seq_len, hd = m->hd, dl = m->dl;
    const real *cs = m->rope_cos, *sn = m->rope_sin;
    real scale = (real)(1.0 / sqrt((double)hd));
    for (int b = 0; b < m->B; b++)
        for (int h = 0; h < m->hl; h++) {
            for (int64_t i = 0; i < T; i++)
                memcpy(a->o + i * hd, a->datt + (int64_t)m->inv[b * T + i] * dl + h * hd,
                       (size_t)hd * sizeof(real));
            const real *P = A->p + ((int64_t)b * m->hl + h) * T * T;
            const real *qa = A->qa + att_at(m, b, h, 0), *ka = A->ka + att_at(m, b, h, 0),
                       *va = A->va + att_at(m, b, h, 0);
            real *dqa = a->dqa + att_at(m, b, h, 0), *dka = a->dka + att_at(m, b, h, 0),
                 *dva = a->dva + att_at(m, b, h, 0);
            /* O = P v:  dP = dO v^T,  dv = P^T dO */
            gemm(GEMM_ATTN, false, true, T, T, hd, 1, a->o, hd, va, hd, 0, a->dp, T);
            gemm(GEMM_ATTN, true, false, T, hd, T, 1, P, T, a->o, hd, 0, dva, hd);
            /* P = softmax(S):  dS = P (dP - rowsum(dP P)) */
            softmax_causal_backward(a->dp, P, T);
            /* S = q k^T scale:  dq = dS k scale,  dk = dS^T q scale */
            gemm(GEMM_ATTN, false, false, T, hd, T, scale, a->dp, T, ka, hd, 0, dqa, hd);
            gemm(GEMM_ATTN, true, false, T, hd, T, scale, a->dp, T, qa, hd, 0, dka, hd);
            /* back to grouped rows; RoPE backward is the inverse rotation */
            for (int64_t i = 0; i < T; i++) {
                int64_t g = m->inv[b * T + i], dst = g * dl + h * hd;
                rope_rotate(a->dqn + dst, dqa + i * hd, cs + i * hd / 2, sn + i * hd / 2, hd, 1);
                rope_rotate(a->dkn + dst, dka + i * hd, cs + i * hd / 2, sn + i * hd / 2, hd, 1);
                memcpy(a->dv + dst, dva + i * hd, (size_t)hd * sizeof(real));
            }
        }
}

/* ---- forward ------------------------------------------------------------------ */

/* Group positions by tower (stable counting sort), fill perm/inv and tower_off. */
static void group_by_tower(model_t *m)
{
    int64_t count[MAX_MODALITIES + 1] = {0};
    for (int64_t n = 0; n < m->N; n++)
        count[m->tower_of[vocab_modality(&m->vocab_layout, m->tok_in[n])]]++;
    m->tower_off[0] = 0;
    for (int t = 0; t < m->n_towers; t++)
        m->tower_off[t + 1] = m->tower_off[t] + count[t];
    int64_t next[MAX_MODALITIES];
    for (int t = 0; t < m->n_towers; t++)
        next[t] = m->tower_off[t];
    for (int64_t n = 0; n < m->N; n++) {
        int t = m->tower_of[vocab_modality(&m->vocab_layout, m->tok_in[n])];
        int64_t g = next[t]++;
        m->perm[g] = (int)n;
        m->inv[n] = (int)g;
    }
}

/* A->x holds the block input; writes the block output to x_out. */
static void block_forward(model_t *m, int l, real *x_out)
{
    struct layer_acts *A = &m->a->L[l];
    int64_t N = m->N, d = m->d, dl = m->dl, fl = m->fl;
    bool pre = m->norm == NORM_PRE;
    /* attention input: swin x; pre RMSNorm_attn(x).  q, k, v = in W_{q,k,v} (f: identity) */
    const real *ain = A->x;
    if (pre) {
        tower_rmsnorm(m, ROLE_NORM_ATTN, l, A->xn, A->rs_a, A->x);
        ain = A->xn;
    }
    tower_linear(m, ROLE_WQ, l, ain, d, A->q, dl);
    tower_linear(m, ROLE_WK, l, ain, d, A->k, dl);
    tower_linear(m, ROLE_WV, l, ain, d, A->v, dl);
    if (m->qk_norm) {
        tower_qknorm(m, ROLE_QNORM, l, A->qn, A->rs_q, A->q);
        tower_qknorm(m, ROLE_KNORM, l, A->kn, A->rs_k, A->k);
    }
    attention_forward(m, A);
    /* y = att W_o (row-parallel), g: all-reduce */
    tower_linear(m, ROLE_WO, l, A->att, dl, A->y, d);
    tp_g_forward(&m->tp, A->y, (size_t)(N * d));
    /* swin: h = x + RMSNorm_attn(y);  pre: h = x + y */
    if (pre) {
        for (int64_t i = 0; i < N * d; i++)
            A->h[i] = A->x[i] + A->y[i];
    } else {
        tower_rmsnorm(m, ROLE_NORM_ATTN, l, A->h, A->rs_y, A->y);
        for (int64_t i = 0; i < N * d; i++)
            A->h[i] += A->x[i];
    }
    /* FFN input: swin h; pre RMSNorm_ffn(h).  z = (silu(in W_1) * in W_3) W_2, g: all-reduce */
    const real *fin = A->h;
    if (pre) {
        tower_rmsnorm(m, ROLE_NORM_FFN, l, A->hn, A->rs_h, A->h);
        fin = A->hn;
    }
    tower_linear(m, ROLE_W1, l, fin, d, A->u, fl);
    tower_linear(m, ROLE_W3, l, fin, d, A->w, fl);
    swiglu_forward(A->s, A->u, A->w, N * fl);
    tower_linear(m, ROLE_W2, l, A->s, fl, A->z, d);
    tp_g_forward(&m->tp, A->z, (size_t)(N * d));
    /* swin: out = h + RMSNorm_ffn(z);  pre: out = h + z */
    if (pre) {
        for (int64_t i = 0; i < N * d; i++)
            x_out[i] = A->h[i] + A->z[i];
    } else {
        tower_rmsnorm(m, ROLE_NORM_FFN, l, x_out, A->rs_z, A->z);
        for (int64_t i = 0; i < N * d; i++)
            x_out[i] += A->h[i];
    }
}

void model_forward(model_t *m, const int32_t *windows, int B, real grad_scale,
                   double *loss_sum, int64_t *count)
{
    if (B > m->max_seqs)
        DIE(EXIT_FAULT, "micro-batch of %d sequences exceeds the model's capacity %d", B, m->max_seqs);
    int64_t T = m->seq_len, d = m->d, V = m->vocab;
    m->B = B;
    m->N = (int64_t)B * T;
    m->grad_scale = grad_scale;
    for (int b = 0; b < B; b++)
        for (int64_t i = 0; i < T; i++) {
            m->tok_in[b * T + i] = windows[b * (T + 1) + i];
            m->tok_tgt[b * T + i] = windows[b * (T + 1) + i + 1];
        }
    group_by_tower(m);

    /* x0[g] = embed[token at perm[g]] */
    struct model_acts *a = m->a;
    real *x = m->n_layers > 0 ? a->L[0].x : a->x_final;
    const real *E = model_param(m, ROLE_EMBED, -1, -1);
    for (int64_t g = 0; g < m->N; g++)
        memcpy(x + g * d, E + (int64_t)m->tok_in[m->perm[g]] * d, (size_t)d * sizeof(real));
    for (int l = 0; l < m->n_layers; l++)
        block_forward(m, l, l + 1 < m->n_layers ? a->L[l + 1].x : a->x_final);

    /* hf = RMSNorm_final^t(x);  logits = hf head^T: (N, V) */
    TOWERS(m, t) {
        int64_t o = m->tower_off[t];
        rmsnorm_forward(a->hf + o * d, a->rs_f + o, a->x_final + o * d,
                        model_param(m, ROLE_NORM_FINAL, t, -1), ROWS(m, t), d, m->eps);
    }
    gemm(GEMM_HEAD, false, true, m->N, V, d, 1, a->hf, d, model_param(m, ROLE_HEAD, -1, -1), d, 0,
         a->logits, V);
    /* cross-entropy by target modality; logits become d(scale * sum CE)/d logits */
    for (int64_t g = 0; g < m->N; g++) {
        int32_t tgt = m->tok_tgt[m->perm[g]];
        int mod = vocab_modality(&m->vocab_layout, tgt);
        loss_sum[mod] += cross_entropy_row(a->logits + g * V, a->logits + g * V, tgt, V, grad_scale);
        count[mod]++;
    }
}

/* ---- backward ----------------------------------------------------------------- */

/* dres holds d loss / d x_out on entry and d loss / d x_in on exit. */
static void block_backward(model_t *m, int l)
{
    struct layer_acts *A = &m->a->L[l];
    struct model_acts *a = m->a;
    int64_t N = m->N, d = m->d, dl = m->dl, fl = m->fl;
    bool pre = m->norm == NORM_PRE;
    real *dres = a->dres, *dz = a->dtmp;

    /* swin: out = h + RMSNorm_ffn(z)  -> dh = dout, dz = norm backward
     * pre:  out = h + z               -> dh = dout, dz = dout */
    if (pre) {
        memcpy(dz, dres, (size_t)(N * d) * sizeof(real));
    } else {
        memset(dz, 0, (size_t)(N * d) * sizeof(real));
        tower_rmsnorm_backward(m, ROLE_NORM_FFN, l, dz, dres, A->z, A->rs_z);
    }
    /* z = s W_2 (g: identity backward):  ds = dz W_2^T,  dW_2 += s^T dz */
    tower_linear_backward(m, ROLE_W2, l, A->s, fl, dz, d, a->ds, false);
    /* s = silu(u) * w */
    swiglu_backward(a->du, a->dw, a->ds, A->u, A->w, N * fl);
    /* u = in W_1, w = in W_3:  d in = du W_1^T + dw W_3^T, then f: all-reduce */
    const real *fin = pre ? A->hn : A->h;
    real *dfin = dz; /* dz is no longer needed */
    tower_linear_backward(m, ROLE_W1, l, fin, d, a->du, fl, dfin, false);
    tower_linear_backward(m, ROLE_W3, l, fin, d, a->dw, fl, dfin, true);
    tp_f_backward(&m->tp, dfin, (size_t)(N * d));
    if (pre)
        tower_rmsnorm_backward(m, ROLE_NORM_FFN, l, dres, dfin, A->h, A->rs_h);
    else
        for (int64_t i = 0; i < N * d; i++)
            dres[i] += dfin[i];
    /* dres is now dh.  swin: h = x + RMSNorm_attn(y);  pre: h = x + y */
    real *dy = a->dtmp;
    if (pre) {
        memcpy(dy, dres, (size_t)(N * d) * sizeof(real));
    } else {
        memset(dy, 0, (size_t)(N * d) * sizeof(real));
        tower_rmsnorm_backward(m, ROLE_NORM_ATTN, l, dy, dres, A->y, A->rs_y);
    }
    /* y = att W_o:  datt = dy W_o^T,  dW_o += att^T dy */
    tower_linear_backward(m, ROLE_WO, l, A->att, dl, dy, d, a->datt, false);
    attention_backward(m, A);
    /* q = qknorm(q_raw): dq from dqn */
    real *dq = a->dqn, *dk = a->dkn;
    if (m->qk_norm) {
        memset(a->dq, 0, (size_t)(N * dl) * sizeof(real));
        memset(a->dk, 0, (size_t)(N * dl) * sizeof(real));
        tower_qknorm_backward(m, ROLE_QNORM, l, a->dq, a->dqn, A->q, A->rs_q);
        tower_qknorm_backward(m, ROLE_KNORM, l, a->dk, a->dkn, A->k, A->rs_k);
        dq = a->dq;
        dk = a->dk;
    }
    /* q, k, v = in W_{q,k,v}:  d in = sum dq W^T, then f: all-reduce */
    const real *ain = pre ? A->xn : A->x;
    real *dain = a->dtmp; /* dy is no longer needed */
    tower_linear_backward(m, ROLE_WQ, l, ain, d, dq, dl, dain, false);
    tower_linear_backward(m, ROLE_WK, l, ain, d, dk, dl, dain, true);
    tower_linear_backward(m, ROLE_WV, l, ain, d, a->dv, dl, dain, true);
    tp_f_backward(&m->tp, dain, (size_t)(N * d));
    if (pre)
        tower_rmsnorm_backward(m, ROLE_NORM_ATTN, l, dres, dain, A->x, A->rs_a);
    else
        for (int64_t i = 0; i < N * d; i++)
            dres[i] += dain[i];
}

void model_backward(model_t *m)
{
    struct model_acts *a = m->a;
    int64_t d = m->d, V = m->vocab;
    /* logits = hf head^T:  dhead += dlogits^T hf,  dhf = dlogits head */
    gemm(GEMM_HEAD, true, false, V, d, m->N, 1, a->logits, V, a->hf, d, 1,
         model_grad(m, ROLE_HEAD, -1, -1), d);
    gemm(GEMM_HEAD, false, false, m->N, d, V, 1, a->logits, V, model_param(m, ROLE_HEAD, -1, -1), d,
         0, a->dtmp, d);
    /* hf = RMSNorm_final(x) */
    memset(a->dres, 0, (size_t)(m->N * d) * sizeof(real));
    TOWERS(m, t) {
        int64_t o = m->tower_off[t];
        rmsnorm_backward(a->dres + o * d, model_grad(m, ROLE_NORM_FINAL, t, -1), a->dtmp + o * d,
                         a->x_final + o * d, model_param(m, ROLE_NORM_FINAL, t, -1), a->rs_f + o,
                         ROWS(m, t), d);
    }
    if (m->on_stage)
        m->on_stage(m->on_stage_ctx, 0);
    for (int l = m->n_layers - 1; l >= 0; l--) {
        block_backward(m, l);
        if (m->on_stage)
            m->on_stage(m->on_stage_ctx, m->n_layers - l);
    }
    /* x0[g] = embed[token]:  dembed[token] += dx0[g] */
    real *dE = model_grad(m, ROLE_EMBED, -1, -1);
    for (int64_t g = 0; g < m->N; g++) {
        real *row = dE + (int64_t)m->tok_in[m->perm[g]] * d;
        const real *src = a->dres + g * d;
        for (int64_t j = 0; j < d; j++)
            row[j] += src[j];
    }
    if (m->on_stage)
        m->on_stage(m->on_stage_ctx, m->n_layers + 1);
}

int model_tensor_stage(const model_t *m, const tensor_info_t *t)
{
    if (t->role == ROLE_EMBED)
        return m->n_layers + 1;
    if (t->layer < 0) /* head, final norms */
        return 0;
    return m->n_layers - t->layer;
}
