/* The FFN slot of the tower transformer: each tower's dense SwiGLU, or, for the
 * towers in model.moe_towers (every tower of model.kind = moe), a mixture of
 * experts with expert-choice routing (moe.c). Its tensors, kept activations,
 * forward, backward and FLOPs, for tower.c to call at the FFN's place. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "tower_int.h"
#include "motscale/tp.h"

/* ---- geometry ------------------------------------------------------------------- */

static bool any_dense(const model_shape_t *s)
{
    for (int tw = 0; tw < s->n_towers; tw++)
        if (!tower_has_experts(s, tw))
            return true;
    return false;
}

static int moe_towers(const model_shape_t *s)
{
    int n = 0;
    for (int tw = 0; tw < s->n_towers; tw++)
        n += tower_has_experts(s, tw);
    return n;
}

/* An expert's FFN width on this rank: a slice when sharded, whole with expert parallelism. */
static int64_t expert_width(const model_shape_t *s, int tp_size)
{
    return s->expert_parallel ? s->d_ff : s->d_ff / tp_size;
}

/* The expert rows one block may gather over every tower with experts: expert e takes
 * k_q = ceil(capacity n_q / E) <= capacity n_q / E + 1 rows of each routing group q
 * (at most n_q), so a tower of n rows in G groups gathers at most capacity n + E G;
 * top-1 gathers each row once. */
static int64_t rows_bound(const model_shape_t *s, int max_seqs)
{
    int64_t N = (int64_t)max_seqs * s->seq_len, E = s->moe_experts;
    int64_t G = s->moe_group == MOE_GROUP_SEQUENCE ? max_seqs : 1;
    int64_t ec = (int64_t)ceil(s->moe_capacity * (double)N) + E * G * moe_towers(s);
    int64_t r = ec > N ? ec : N;
    return r < E * N ? r : E * N;
}

/* ---- the tensor table ------------------------------------------------------------- */

static const struct ffn_role {
    int role;
    const char *name;
    int rows, cols, shard;
    bool out_proj;
} FFN_ROLES[3] = {
    {ROLE_W1, "w1", DIM_D, DIM_F, SHARD_COL, false},
    {ROLE_W3, "w3", DIM_D, DIM_F, SHARD_COL, false},
    {ROLE_W2, "w2", DIM_F, DIM_D, SHARD_ROW, true},
};

void tower_ffn_list(const model_shape_t *s, table_builder_t *b, tower_impl_t *t, int tw, int l, const char *prefix,
                    int seed_tower)
{
    char name[96];
    int L = s->n_layers, E = s->moe_experts;
    bool moe = tower_has_experts(s, tw);
    if (moe) {
        /* W_r (d x E): replicated, like a norm, but a matrix with decay */
        snprintf(name, sizeof name, "%stower%d.layer%d.moe.router", prefix, tw, l);
        tensor_spec_t r = {.name = name, .role = ROLE_ROUTER, .tower = seed_tower + tw, .layer = l, .rows = s->d_model,
                           .cols = E, .shard = SHARD_NONE, .owner = -1, .expert = -1, .decay = true,
                           .init = INIT_NORMAL, .init_div = 1, .stage = L - l};
        int i = table_add(b, &r);
        if (t)
            t->router[tw * L + l] = i;
    }
    for (int e = 0; e < (moe ? E : 1); e++)
        for (int k = 0; k < 3; k++) {
            const struct ffn_role *fr = &FFN_ROLES[k];
            if (moe)
                snprintf(name, sizeof name, "%stower%d.layer%d.moe.expert%d.%s", prefix, tw, l, e, fr->name);
            else
                snprintf(name, sizeof name, "%stower%d.layer%d.ffn.%s", prefix, tw, l, fr->name);
            bool ep = moe && s->expert_parallel;
            tensor_spec_t sp = {.name = name, .role = fr->role, .tower = seed_tower + tw, .layer = l,
                                .rows = fr->rows == DIM_D ? s->d_model : s->d_ff,
                                .cols = fr->cols == DIM_D ? s->d_model : s->d_ff,
                                .shard = ep ? SHARD_EXPERT : fr->shard,
                                .owner = ep ? e / (E / b->tp_size) : -1, .expert = moe ? e : -1,
                                .grid2d = !ep, .decay = true, .init = INIT_NORMAL,
                                .init_div = fr->out_proj ? sqrt(2.0 * L) : 1, .stage = L - l};
            int i = table_add(b, &sp);
            if (!t)
                continue;
            if (moe)
                t->expert[((size_t)(tw * L + l) * (size_t)E + (size_t)e) * 3 + (size_t)k] = i;
            else
                t->index[idx_slot(t, fr->role, tw, l)] = i;
        }
}

const tensor_info_t *tower_expert_tensor(const model_t *m, int role, int tower, int layer, int expert)
{
    const tower_impl_t *t = m->impl;
    if (tower < 0 || tower >= t->P || layer < 0 || layer >= t->L || !tower_has_experts(&m->shape, tower))
        return NULL;
    int E = m->shape.moe_experts;
    int i = -1;
    if (role == ROLE_ROUTER)
        i = t->router[tower * t->L + layer];
    else if ((role == ROLE_W1 || role == ROLE_W3 || role == ROLE_W2) && expert >= 0 && expert < E)
        i = t->expert[((size_t)(tower * t->L + layer) * (size_t)E + (size_t)expert) * 3 +
                      (size_t)(role == ROLE_W1 ? 0 : role == ROLE_W3 ? 1 : 2)];
    return i < 0 ? NULL : &m->tensors[i];
}

/* ---- the activation plan ---------------------------------------------------------- */

/* Kept per layer: the dense towers' u, w, s (N, fl); for the towers with experts one
 * pool the towers carve in turn (probabilities and log-sum-exps by row; the gathered
 * rows, their inputs and outputs and the experts' u, w, s by expert row) and each
 * tower's small routing arrays. */
void tower_ffn_plan(const model_shape_t *s, int tp_size, int max_seqs, plan_t *p, layer_acts_t *A, int l)
{
    (void)l;
    size_t N = (size_t)max_seqs * (size_t)s->seq_len, d = (size_t)s->d_model;
    if (any_dense(s)) {
        size_t fl = (size_t)(s->d_ff / tp_size);
        A->ffn.u = plan_take(p, N * fl, PLAN_KEPT);
        A->ffn.w = plan_take(p, N * fl, PLAN_KEPT);
        A->ffn.s = plan_take(p, N * fl, PLAN_KEPT);
    }
    if (!s->moe_tower_mask)
        return;
    size_t E = (size_t)s->moe_experts, R = (size_t)rows_bound(s, max_seqs);
    size_t fe = (size_t)expert_width(s, tp_size);
    moe_acts_t dummy_pool, *pool = A ? &A->moe_pool : &dummy_pool;
    pool->probs = plan_take(p, N * E, PLAN_KEPT);
    pool->lse = plan_take_bytes(p, N * sizeof(double), PLAN_KEPT);
    pool->rows = plan_take_bytes(p, R * sizeof(int64_t), PLAN_KEPT);
    pool->xe = plan_take(p, R * d, PLAN_KEPT);
    pool->ye = plan_take(p, R * d, PLAN_KEPT);
    pool->ffn.u = plan_take(p, R * fe, PLAN_KEPT);
    pool->ffn.w = plan_take(p, R * fe, PLAN_KEPT);
    pool->ffn.s = plan_take(p, R * fe, PLAN_KEPT);
    for (int tw = 0; tw < s->n_towers; tw++) {
        if (!tower_has_experts(s, tw))
            continue;
        moe_acts_t dummy, *M = A->moe ? &A->moe[tw] : &dummy;
        M->off = plan_take_bytes(p, (E + 1) * sizeof(int64_t), PLAN_KEPT);
        M->run_off = plan_take_bytes(p, (E + 1) * sizeof(int64_t), PLAN_KEPT);
        M->run = plan_take_bytes(p, 4 * E * sizeof(int), PLAN_KEPT);
        if (A->moe) {
            M->w1 = M->run + E;
            M->w3 = M->run + 2 * E;
            M->w2 = M->run + 3 * E;
        }
    }
}

/* Scratch shared by every layer: the router logits, the routing sort and group
 * offsets, and backward's dp, dye, dxe and the experts' du, dw, ds. */
void tower_ffn_scratch_plan(const model_shape_t *s, int tp_size, int max_seqs, plan_t *p, tower_impl_t *t)
{
    if (!s->moe_tower_mask)
        return;
    size_t N = (size_t)max_seqs * (size_t)s->seq_len, d = (size_t)s->d_model, E = (size_t)s->moe_experts;
    size_t R = (size_t)rows_bound(s, max_seqs), fe = (size_t)expert_width(s, tp_size);
    tower_impl_t dummy, *o = t ? t : &dummy;
    o->moe_logits = plan_take(p, N * E, PLAN_SCRATCH);
    o->moe_sort = plan_take_bytes(p, (N > E ? N : E) * sizeof(int64_t), PLAN_SCRATCH);
    o->groups = plan_take_bytes(p, ((size_t)max_seqs + 2) * sizeof(int64_t), PLAN_SCRATCH);
    o->ms.dp = plan_take(p, N * E, PLAN_SCRATCH);
    o->ms.dye = plan_take(p, R * d, PLAN_SCRATCH);
    o->ms.dxe = plan_take(p, R * d, PLAN_SCRATCH);
    o->ms.fs.du = plan_take(p, R * fe, PLAN_SCRATCH);
    o->ms.fs.dw = plan_take(p, R * fe, PLAN_SCRATCH);
    o->ms.fs.ds = plan_take(p, R * fe, PLAN_SCRATCH);
}

void tower_ffn_init(model_t *m, tower_impl_t *t)
{
    const model_shape_t *s = &m->shape;
    t->moe = (moe_geom_t){.E = s->moe_experts, .capacity = s->moe_capacity,
                          .eval_top1 = s->moe_eval == MOE_EVAL_TOP1, .expert_parallel = s->expert_parallel,
                          .tp_rank = m->tp.rank, .tp_size = m->tp.size, .d = s->d_model,
                          .fl = expert_width(s, m->tp.size)};
    t->rows_max = s->moe_tower_mask ? rows_bound(s, m->max_seqs) : 0;
    size_t LP = (size_t)t->L * (size_t)t->P, E = (size_t)(s->moe_experts > 0 ? s->moe_experts : 1);
    t->router = xmalloc(LP * sizeof *t->router);
    t->expert = xmalloc(LP * E * 3 * sizeof *t->expert);
    for (size_t i = 0; i < LP; i++)
        t->router[i] = -1;
    for (size_t i = 0; i < LP * E * 3; i++)
        t->expert[i] = -1;
    t->moe_acts = xcalloc(LP, sizeof *t->moe_acts);
    m->n_load = t->L * moe_towers(s) * s->moe_experts * s->n_modalities;
    m->load = m->n_load ? xcalloc((size_t)m->n_load, sizeof *m->load) : NULL;
}

void tower_ffn_free(model_t *m, tower_impl_t *t)
{
    free(t->router);
    free(t->expert);
    free(t->moe_acts);
    free(m->load);
    m->load = NULL;
    m->n_load = 0;
}

/* ---- forward and backward ------------------------------------------------------------ */

/* A view of the dense FFN's activations from row o on. */
static ffn_acts_t acts_from(const ffn_acts_t *a, int64_t o, int64_t fl)
{
    return (ffn_acts_t){a->u + o * fl, a->w + o * fl, a->s + o * fl};
}

/* The routing groups of tower tw's n rows from o: one group, or one per sequence
 * (the tower's rows of a sequence are consecutive in grouped order). */
static int routing_groups(const model_t *m, tower_impl_t *t, int64_t o, int64_t n)
{
    int64_t *g = t->groups;
    g[0] = 0;
    if (m->shape.moe_group != MOE_GROUP_SEQUENCE) {
        g[1] = n;
        return 1;
    }
    int q = 0;
    int64_t prev = -1;
    for (int64_t r = 0; r < n; r++) {
        int64_t seq = t->perm[o + r] / t->T;
        if (r > 0 && seq != prev)
            g[++q] = r;
        prev = seq;
    }
    g[++q] = n;
    return n > 0 ? q : 0;
}

/* The expert tensors of (tw, l) as moe_weights_t; lists point into t->expert. */
static moe_weights_t expert_weights(const model_t *m, const tower_impl_t *t, int tw, int l, int *w1, int *w3,
                                    int *w2)
{
    int E = m->shape.moe_experts;
    const int *x = t->expert + (size_t)(tw * t->L + l) * (size_t)E * 3;
    for (int e = 0; e < E; e++) {
        w1[e] = x[e * 3];
        w3[e] = x[e * 3 + 1];
        w2[e] = x[e * 3 + 2];
    }
    return (moe_weights_t){.router = t->router[tw * t->L + l], .w1 = w1, .w3 = w3, .w2 = w2};
}

/* Tokens each expert took, by the modality of the token at the row. */
static void count_load(model_t *m, const tower_impl_t *t, const moe_acts_t *A, int j, int64_t o)
{
    int E = m->shape.moe_experts, M = m->shape.n_modalities;
    double *load = m->load + (size_t)j * (size_t)E * (size_t)M;
    for (int e = 0; e < E; e++)
        for (int64_t i = A->off[e]; i < A->off[e + 1]; i++)
            load[e * M + vocab_modality(&m->vocab, t->tok_in[t->perm[o + A->rows[i]]])] += 1;
}

void tower_ffn_forward(model_t *m, tower_impl_t *t, int l, real *z, const real *fin)
{
    layer_acts_t *A = &t->la[l];
    int64_t d = t->d, fl = t->fl;
    const model_shape_t *s = &m->shape;
    if (!s->moe_tower_mask) {
        ffn_weights_t fw = {W(t, ROLE_W1, l), W(t, ROLE_W3, l), W(t, ROLE_W2, l)};
        ffn_forward(m, t->sl, &t->rows, &fw, &A->ffn, z, fin, d, fl, t->N);
        return;
    }
    bool train = t->grad_scale > 0;
    int64_t at = 0; /* expert rows taken by earlier towers of this layer */
    int j = 0;
    for (int tw = 0; tw < t->P; tw++) {
        int64_t o = t->tower_off[tw], n = t->tower_off[tw + 1] - o;
        if (!tower_has_experts(s, tw)) {
            int64_t local[2] = {0, n};
            blocks_t b = {1, local};
            ffn_weights_t fw = {W(t, ROLE_W1, l) + tw, W(t, ROLE_W3, l) + tw, W(t, ROLE_W2, l) + tw};
            ffn_acts_t a = acts_from(&A->ffn, o, fl);
            if (n > 0)
                ffn_forward(m, t->sl, &b, &fw, &a, z + o * d, fin + o * d, d, fl, n);
            continue;
        }
        /* the tower's part of the layer's pool: its rows, then the expert rows after
         * those earlier towers took */
        moe_acts_t *M = &A->moe[tw];
        const moe_acts_t *base = &A->moe_pool;
        int E = s->moe_experts;
        int64_t fe = t->moe.fl;
        M->logits = t->moe_logits;
        M->scratch = t->moe_sort;
        M->probs = base->probs + o * E;
        M->lse = base->lse + o;
        M->rows = base->rows + at;
        M->xe = base->xe + at * d;
        M->ye = base->ye + at * d;
        M->ffn = acts_from(&base->ffn, at, fe);
        M->n = n;
        if (n > 0) {
            int q = routing_groups(m, t, o, n);
            int w1[MOE_MAX_EXPERTS], w3[MOE_MAX_EXPERTS], w2[MOE_MAX_EXPERTS];
            moe_weights_t mw = expert_weights(m, t, tw, l, w1, w3, w2);
            moe_forward(m, t->sl, &t->moe, &mw, M, z + o * d, fin + o * d, n, t->groups, q, !train);
            at += M->off[E];
            if (train) {
                m->aux_loss_sum += s->moe_zloss * M->zloss_sum;
                count_load(m, t, M, j * t->L + l, o);
            }
        }
        j++;
    }
}

void tower_ffn_backward(model_t *m, tower_impl_t *t, int l, real *dfin, const real *dz, const real *fin)
{
    layer_acts_t *A = &t->la[l];
    int64_t d = t->d, fl = t->fl;
    const model_shape_t *s = &m->shape;
    if (!s->moe_tower_mask) {
        ffn_weights_t fw = {W(t, ROLE_W1, l), W(t, ROLE_W3, l), W(t, ROLE_W2, l)};
        ffn_backward(m, t->sl, &t->rows, &fw, &A->ffn, &t->fs, dfin, dz, fin, d, fl, t->N);
        return;
    }
    real zscale = (real)(s->moe_zloss * (double)t->grad_scale);
    for (int tw = 0; tw < t->P; tw++) {
        int64_t o = t->tower_off[tw], n = t->tower_off[tw + 1] - o;
        if (n == 0)
            continue;
        if (!tower_has_experts(s, tw)) {
            int64_t local[2] = {0, n};
            blocks_t b = {1, local};
            ffn_weights_t fw = {W(t, ROLE_W1, l) + tw, W(t, ROLE_W3, l) + tw, W(t, ROLE_W2, l) + tw};
            ffn_acts_t a = acts_from(&A->ffn, o, fl);
            ffn_backward(m, t->sl, &b, &fw, &a, &t->fs, dfin + o * d, dz + o * d, fin + o * d, d, fl, n);
            continue;
        }
        int w1[MOE_MAX_EXPERTS], w3[MOE_MAX_EXPERTS], w2[MOE_MAX_EXPERTS];
        moe_weights_t mw = expert_weights(m, t, tw, l, w1, w3, w2);
        moe_backward(m, t->sl, &t->moe, &mw, &A->moe[tw], &t->ms, dfin + o * d, dz + o * d, fin + o * d, zscale);
    }
}
