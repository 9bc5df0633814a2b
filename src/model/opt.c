/* OPT (docs/model.md "OPT"): three unimodal encoders (text: embedding + position;
 * regions: features and box geometry through two linears, summed; audio frames:
 * one linear; each then RMSNorm), opt.unimodal_layers bidirectional blocks per
 * modality, a cross-modal encoder of n_layers bidirectional blocks over
 * [CLS] + text + regions + frames, shared or untied by modality (MoT), and the
 * token- and sample-level task heads. Blocks are pre-norm (attention and SwiGLU)
 * composed from the layer library over row blocks, one per tower. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "layers.h"
#include "motscale/gemm.h"

/* Roles (they seed each tensor's init with its stack): the encoders, the block's,
 * the heads. */
enum opt_role {
    OR_TEXT_EMBED, OR_TEXT_POS, OR_TEXT_NORM, OR_IMG_FEAT, OR_IMG_GEOM, OR_IMG_NORM, OR_AUD_PROJ, OR_AUD_NORM, OR_CLS,
    OR_WQ, OR_WK, OR_WV, OR_WO, OR_W1, OR_W3, OR_W2, OR_NORM_ATTN, OR_NORM_FFN, OR_FINAL_NORM,
    OR_HEAD_MLM, OR_HEAD_RFR, OR_HEAD_RC, OR_HEAD_AFR, OR_HEAD_AC, OR_HEAD_MATCH,
    /* a decoder's: its input embedding and positions, final norm and head, and per block */
    OR_DEC_EMBED, OR_DEC_POS, OR_DEC_FINAL, OR_DEC_HEAD,
    OR_D_WQ, OR_D_WK, OR_D_WV, OR_D_WO, OR_X_WQ, OR_X_WK, OR_X_WV, OR_X_WO, OR_D_W1, OR_D_W3, OR_D_W2,
    OR_D_N1, OR_D_N2, OR_D_N3, OR_N
};
#define DEC_ROLES 14 /* OR_D_WQ .. OR_D_N3 */
enum { DEC_TEXT, DEC_IMAGE, N_DECS };
#define BLOCK_ROLES 9 /* OR_WQ .. OR_NORM_FFN */
#define GEOM 7
#define MATCH_CLASSES 5
enum { ST_TEXT, ST_IMAGE, ST_AUDIO, ST_CROSS, N_STACKS };

enum dim { DIM_ONE, DIM_D, DIM_F };
static const struct block_role {
    int role;
    const char *name;
    int rows, cols, shard;
    bool out_proj, norm;
} BLOCK[BLOCK_ROLES] = {
    {OR_WQ, "attn.wq", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_WK, "attn.wk", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_WV, "attn.wv", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_WO, "attn.wo", DIM_D, DIM_D, SHARD_ROW, true, false},
    {OR_W1, "ffn.w1", DIM_D, DIM_F, SHARD_COL, false, false},
    {OR_W3, "ffn.w3", DIM_D, DIM_F, SHARD_COL, false, false},
    {OR_W2, "ffn.w2", DIM_F, DIM_D, SHARD_ROW, true, false},
    {OR_NORM_ATTN, "attn_norm", DIM_ONE, DIM_D, SHARD_NONE, false, true},
    {OR_NORM_FFN, "ffn_norm", DIM_ONE, DIM_D, SHARD_NONE, false, true},
};

static const struct block_role DEC_BLOCK[DEC_ROLES] = {
    {OR_D_WQ, "self.wq", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_D_WK, "self.wk", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_D_WV, "self.wv", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_D_WO, "self.wo", DIM_D, DIM_D, SHARD_ROW, true, false},
    {OR_X_WQ, "cross.wq", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_X_WK, "cross.wk", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_X_WV, "cross.wv", DIM_D, DIM_D, SHARD_COL, false, false},
    {OR_X_WO, "cross.wo", DIM_D, DIM_D, SHARD_ROW, true, false},
    {OR_D_W1, "ffn.w1", DIM_D, DIM_F, SHARD_COL, false, false},
    {OR_D_W3, "ffn.w3", DIM_D, DIM_F, SHARD_COL, false, false},
    {OR_D_W2, "ffn.w2", DIM_F, DIM_D, SHARD_ROW, true, false},
    {OR_D_N1, "self_norm", DIM_ONE, DIM_D, SHARD_NONE, false, true},
    {OR_D_N2, "cross_norm", DIM_ONE, DIM_D, SHARD_NONE, false, true},
    {OR_D_N3, "ffn_norm", DIM_ONE, DIM_D, SHARD_NONE, false, true},
};

/* A block's activations kept for backward. */
typedef struct blk_acts {
    real *x, *xn, *rs_a;           /* (N, d) input, RMSNorm_attn(x), its rstd (N) */
    attn_acts_t att_keep;
    real *att, *h, *hn, *rs_h;     /* (N, dl) attention output; residual; RMSNorm_ffn(h) */
    ffn_acts_t ffn;
} blk_acts_t;

/* A decoder block's activations kept for backward: self-attention (causal), cross-
 * attention to the encoder's output, FFN, each pre-norm. */
typedef struct dec_acts {
    real *x, *xn, *rs1;            /* (N, d) input, RMSNorm(x; n1), rstd */
    attn_acts_t sa;
    real *att1, *h1, *h1n, *rs2;   /* self-attention output (N, dl); residual; RMSNorm(h1; n2) */
    real *q2, *k2, *v2;            /* cross queries (N, dl); keys, values over the memory (B S, dl) */
    xattn_acts_t xa;
    real *att2, *h2, *h2n, *rs3;
    ffn_acts_t ffn;
} dec_acts_t;

/* A causal decoder over T positions (teacher forcing: [BOS] + the targets but the
 * last) predicting V classes, cross-attending to every encoder position. */
typedef struct decoder {
    int L;
    int64_t T, V;                  /* positions; output classes (BOS = V is an input only) */
    int embed, pos, final, head;
    int *w;                        /* [l * DEC_ROLES + role - OR_D_WQ] */
    int64_t off[2];
    blocks_t rows;
    int64_t *inv, *hi;             /* identity (max_seqs T); every memory key visible (max_seqs T) */
    attn_mask_t mask;
    dec_acts_t *la;
    real *out, *rs_f, *dhf;        /* kept: last block's output, final norm's rstd, d/d its output */
    int32_t *in, *tgt;             /* kept: input ids and targets (max_seqs T) */
    bool active;                   /* this forward has a sample to reconstruct */
} decoder_t;

/* A stack of bidirectional blocks over sequences of T positions with P towers. */
typedef struct stack {
    int L, P;
    int64_t T;
    int *w;                        /* [(l * BLOCK_ROLES + r) * P + tower] */
    int64_t off[MAX_MODALITIES + 1];
    blocks_t rows;
    int64_t *inv;                  /* (max_seqs T) sequence position -> grouped row */
    attn_mask_t mask;
    blk_acts_t *la;                /* L */
    real *out;                     /* (N, d) kept: the last block's output */
} stack_t;

typedef struct opt_impl {
    int64_t d, f, hd, hl, dl, fl, B;
    int64_t Tt, R, Ta, S, Vt, C, Dr, Df;
    int k_text, k_region, k_frame;           /* targets per sample */
    int enc[OR_CLS + 1];                     /* encoder tensors */
    int head[OR_N];                          /* head tensors (by role) */
    int final_norm[MAX_MODALITIES];          /* per cross tower */
    stack_t st[N_STACKS];
    decoder_t dec[N_DECS];
    int64_t Tmax;                            /* longest sequence: S or the code grid */
    real grad_scale;
    /* kept: the encoders' inputs and pre-norm sums, their rstd; the final norm's rstd
     * and the heads' gradient at its output */
    real *tin_pre, *rin, *gin, *ain, *rin_pre, *ain_pre, *rs_enc[3];
    int32_t *tok;
    real *rs_f, *dhf;
    /* scratch */
    real *hf, *xq, *xk, *xv, *dq, *dk, *dv, *datt, *dres, *dtmp, *dmod;
    attn_scratch_t as;
    ffn_scratch_t fs;
    real *hg, *logits, *tgt, *work;          /* heads: gathered rows, outputs, targets */
    int64_t *sel, *pos;
    int32_t *lab;
    real *act;
} opt_impl_t;

static const int *SW(const stack_t *s, int role, int l) { return s->w + (l * BLOCK_ROLES + (role - OR_WQ)) * s->P; }

/* Cross tower of modality m (0 text, with [CLS]; 1 image; 2 audio). */
static int cross_tower(const model_shape_t *s, int m) { return s->opt.cross == OPT_CROSS_MOT ? m : 0; }
static int cross_towers(const model_shape_t *s) { return s->opt.cross == OPT_CROSS_MOT ? 3 : 1; }

/* ---- the tensor table ---------------------------------------------------------- */

static const char *STACK_NAME[N_STACKS] = {"text", "image", "audio", "cross"};

static int add(table_builder_t *b, const char *name, int role, int stack, int tower, int layer, int64_t rows,
               int64_t cols, int shard, bool ones, double div)
{
    tensor_spec_t sp = {.name = name, .role = role + 32 * stack, .tower = tower, .layer = layer, .rows = rows,
                        .cols = cols, .shard = shard, .owner = -1, .expert = -1, .decay = !ones,
                        .init = ones ? INIT_ONES : INIT_NORMAL, .init_div = div, .stage = 0};
    return table_add(b, &sp);
}

/* A decoder's tensors: tdec (text) or idec (image codes). */
static void dec_list(const model_shape_t *s, table_builder_t *b, decoder_t *dc, int which)
{
    const opt_shape_t *o = &s->opt;
    const char *pre = which == DEC_TEXT ? "tdec" : "idec";
    int st = 4 + which, L = o->decoder_layers;
    int64_t d = s->d_model, T = which == DEC_TEXT ? o->text_len : o->codes, V = which == DEC_TEXT ? o->vocab : o->code_book;
    char name[64];
    snprintf(name, sizeof name, "%s.embed", pre);
    int e = add(b, name, OR_DEC_EMBED, st, -1, -1, V + 1, d, SHARD_NONE, false, 1);
    snprintf(name, sizeof name, "%s.pos", pre);
    int p = add(b, name, OR_DEC_POS, st, -1, -1, T, d, SHARD_NONE, false, 1);
    for (int l = 0; l < L; l++)
        for (int r = 0; r < DEC_ROLES; r++) {
            const struct block_role *br = &DEC_BLOCK[r];
            snprintf(name, sizeof name, "%s.layer%d.%s", pre, l, br->name);
            int64_t rows = br->rows == DIM_D ? d : br->rows == DIM_F ? s->d_ff : 1;
            int64_t cols = br->cols == DIM_D ? d : s->d_ff;
            int i = add(b, name, br->role, st, -1, l, rows, cols, br->shard, br->norm, br->out_proj ? sqrt(2.0 * L) : 1);
            if (dc)
                dc->w[l * DEC_ROLES + r] = i;
        }
    snprintf(name, sizeof name, "%s.final_norm", pre);
    int f = add(b, name, OR_DEC_FINAL, st, -1, -1, 1, d, SHARD_NONE, true, 1);
    snprintf(name, sizeof name, "%s.head", pre);
    int h = add(b, name, OR_DEC_HEAD, st, -1, -1, d, V, SHARD_NONE, false, 1);
    if (dc)
        dc->embed = e, dc->pos = p, dc->final = f, dc->head = h;
}

static void opt_list(const model_t *m, table_builder_t *b, void *ctx)
{
    const model_shape_t *s = &m->shape;
    const opt_shape_t *o = &s->opt;
    opt_impl_t *t = b->tensors ? ctx : NULL;
    int64_t d = s->d_model;
    int e[OR_CLS + 1];
    e[OR_TEXT_EMBED] = add(b, "text.embed", OR_TEXT_EMBED, 0, -1, -1, o->vocab, d, SHARD_NONE, false, 1);
    e[OR_TEXT_POS] = add(b, "text.pos", OR_TEXT_POS, 0, -1, -1, o->text_len, d, SHARD_NONE, false, 1);
    e[OR_TEXT_NORM] = add(b, "text.norm", OR_TEXT_NORM, 0, -1, -1, 1, d, SHARD_NONE, true, 1);
    e[OR_IMG_FEAT] = add(b, "image.feat", OR_IMG_FEAT, 1, -1, -1, o->region_dim, d, SHARD_NONE, false, 1);
    e[OR_IMG_GEOM] = add(b, "image.geom", OR_IMG_GEOM, 1, -1, -1, GEOM, d, SHARD_NONE, false, 1);
    e[OR_IMG_NORM] = add(b, "image.norm", OR_IMG_NORM, 1, -1, -1, 1, d, SHARD_NONE, true, 1);
    e[OR_AUD_PROJ] = add(b, "audio.proj", OR_AUD_PROJ, 2, -1, -1, o->frame_dim, d, SHARD_NONE, false, 1);
    e[OR_AUD_NORM] = add(b, "audio.norm", OR_AUD_NORM, 2, -1, -1, 1, d, SHARD_NONE, true, 1);
    e[OR_CLS] = add(b, "cross.cls", OR_CLS, 3, -1, -1, 1, d, SHARD_NONE, false, 1);
    if (t)
        memcpy(t->enc, e, sizeof e);
    char name[64];
    for (int st = 0; st < N_STACKS; st++) {
        int L = st == ST_CROSS ? s->n_layers : o->unimodal_layers, P = st == ST_CROSS ? cross_towers(s) : 1;
        for (int tw = 0; tw < P; tw++)
            for (int l = 0; l < L; l++)
                for (int r = 0; r < BLOCK_ROLES; r++) {
                    const struct block_role *br = &BLOCK[r];
                    if (st == ST_CROSS)
                        snprintf(name, sizeof name, "cross.tower%d.layer%d.%s", tw, l, br->name);
                    else
                        snprintf(name, sizeof name, "%s.layer%d.%s", STACK_NAME[st], l, br->name);
                    int64_t rows = br->rows == DIM_D ? d : br->rows == DIM_F ? s->d_ff : 1;
                    int64_t cols = br->cols == DIM_D ? d : s->d_ff;
                    int i = add(b, name, br->role, st, st == ST_CROSS ? tw : -1, l, rows, cols, br->shard, br->norm,
                                br->out_proj ? sqrt(2.0 * L) : 1);
                    if (t)
                        t->st[st].w[(l * BLOCK_ROLES + r) * P + tw] = i;
                }
    }
    for (int tw = 0; tw < cross_towers(s); tw++) {
        snprintf(name, sizeof name, "cross.tower%d.final_norm", tw);
        int i = add(b, name, OR_FINAL_NORM, 3, tw, -1, 1, d, SHARD_NONE, true, 1);
        if (t)
            t->final_norm[tw] = i;
    }
    static const struct { int role; const char *name; } HEADS[] = {
        {OR_HEAD_MLM, "head.mlm"}, {OR_HEAD_RFR, "head.region_feat"}, {OR_HEAD_RC, "head.region_class"},
        {OR_HEAD_AFR, "head.audio_feat"}, {OR_HEAD_AC, "head.audio_contrast"}, {OR_HEAD_MATCH, "head.match"},
    };
    int64_t out[] = {o->vocab, o->region_dim, o->classes, o->frame_dim, o->frame_dim, MATCH_CLASSES};
    for (int h = 0; h < 6; h++) {
        int i = add(b, HEADS[h].name, HEADS[h].role, 3, -1, -1, d, out[h], SHARD_NONE, false, 1);
        if (t)
            t->head[HEADS[h].role] = i;
    }
    for (int dc = 0; dc < N_DECS && o->decoder_layers > 0; dc++)
        dec_list(s, b, t ? &t->dec[dc] : NULL, dc);
}

/* ---- the activation plan ------------------------------------------------------- */

static int64_t stack_T(const opt_impl_t *t, int st)
{
    return st == ST_TEXT ? t->Tt : st == ST_IMAGE ? t->R : st == ST_AUDIO ? t->Ta : t->S;
}

static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

/* A decoder's kept activations (nothing when it has no layers). */
static void dec_plan(plan_t *p, const opt_impl_t *t, decoder_t *dc, int64_t Bm)
{
    if (dc->L == 0)
        return;
    int64_t N = Bm * dc->T, M = Bm * t->S, d = t->d, dl = t->dl, hl = t->hl, fl = t->fl;
    for (int l = 0; l < dc->L; l++) {
        dec_acts_t *A = &dc->la[l];
        real **nd[] = {&A->x, &A->xn, &A->h1, &A->h1n, &A->h2, &A->h2n};
        for (size_t i = 0; i < sizeof nd / sizeof nd[0]; i++)
            *nd[i] = plan_take(p, N * d, PLAN_KEPT);
        real **ndl[] = {&A->sa.qa, &A->sa.ka, &A->sa.va, &A->att1, &A->q2, &A->xa.qa, &A->att2};
        for (size_t i = 0; i < sizeof ndl / sizeof ndl[0]; i++)
            *ndl[i] = plan_take(p, N * dl, PLAN_KEPT);
        A->rs1 = plan_take(p, N, PLAN_KEPT);
        A->rs2 = plan_take(p, N, PLAN_KEPT);
        A->rs3 = plan_take(p, N, PLAN_KEPT);
        A->sa.p = plan_take(p, N * hl * dc->T, PLAN_KEPT);
        A->k2 = plan_take(p, M * dl, PLAN_KEPT);
        A->v2 = plan_take(p, M * dl, PLAN_KEPT);
        A->xa.ka = plan_take(p, M * dl, PLAN_KEPT);
        A->xa.va = plan_take(p, M * dl, PLAN_KEPT);
        A->xa.p = plan_take(p, N * hl * t->S, PLAN_KEPT);
        A->ffn.u = plan_take(p, N * fl, PLAN_KEPT);
        A->ffn.w = plan_take(p, N * fl, PLAN_KEPT);
        A->ffn.s = plan_take(p, N * fl, PLAN_KEPT);
    }
    dc->out = plan_take(p, N * d, PLAN_KEPT);
    dc->rs_f = plan_take(p, N, PLAN_KEPT);
    dc->dhf = plan_take(p, N * d, PLAN_KEPT);
    dc->in = plan_take_bytes(p, (size_t)N * sizeof(int32_t), PLAN_KEPT);
    dc->tgt = plan_take_bytes(p, (size_t)N * sizeof(int32_t), PLAN_KEPT);
}

static void opt_plan(plan_t *p, opt_impl_t *t, int64_t max_seqs)
{
    int64_t Bm = max_seqs, d = t->d, dl = t->dl, hl = t->hl, fl = t->fl;
    for (int st = 0; st < N_STACKS; st++) {
        stack_t *s = &t->st[st];
        int64_t N = Bm * s->T;
        for (int l = 0; l < s->L; l++) {
            blk_acts_t *A = &s->la[l];
            A->x = plan_take(p, N * d, PLAN_KEPT);
            A->xn = plan_take(p, N * d, PLAN_KEPT);
            A->rs_a = plan_take(p, N, PLAN_KEPT);
            A->att_keep.qa = plan_take(p, N * dl, PLAN_KEPT);
            A->att_keep.ka = plan_take(p, N * dl, PLAN_KEPT);
            A->att_keep.va = plan_take(p, N * dl, PLAN_KEPT);
            A->att_keep.p = plan_take(p, N * hl * s->T, PLAN_KEPT);
            A->att = plan_take(p, N * dl, PLAN_KEPT);
            A->h = plan_take(p, N * d, PLAN_KEPT);
            A->hn = plan_take(p, N * d, PLAN_KEPT);
            A->rs_h = plan_take(p, N, PLAN_KEPT);
            A->ffn.u = plan_take(p, N * fl, PLAN_KEPT);
            A->ffn.w = plan_take(p, N * fl, PLAN_KEPT);
            A->ffn.s = plan_take(p, N * fl, PLAN_KEPT);
        }
        s->out = plan_take(p, N * d, PLAN_KEPT);
    }
    int64_t Nt = Bm * t->Tt, Nr = Bm * t->R, Na = Bm * t->Ta, Nc = Bm * t->S;
    t->tok = plan_take_bytes(p, (size_t)Nt * sizeof(int32_t), PLAN_KEPT);
    t->tin_pre = plan_take(p, Nt * d, PLAN_KEPT);
    t->rin = plan_take(p, Nr * t->Dr, PLAN_KEPT);
    t->gin = plan_take(p, Nr * GEOM, PLAN_KEPT);
    t->rin_pre = plan_take(p, Nr * d, PLAN_KEPT);
    t->ain = plan_take(p, Na * t->Df, PLAN_KEPT);
    t->ain_pre = plan_take(p, Na * d, PLAN_KEPT);
    t->rs_enc[0] = plan_take(p, Nt, PLAN_KEPT);
    t->rs_enc[1] = plan_take(p, Nr, PLAN_KEPT);
    t->rs_enc[2] = plan_take(p, Na, PLAN_KEPT);
    t->rs_f = plan_take(p, Nc, PLAN_KEPT);
    t->dhf = plan_take(p, Nc * d, PLAN_KEPT);
    /* the decoders' memory: the encoder's final-normed output */
    t->hf = plan_take(p, Nc * d, PLAN_KEPT);
    for (int dc = 0; dc < N_DECS; dc++)
        dec_plan(p, t, &t->dec[dc], Bm);
    /* scratch, sized for the longest sequence (the cross stack, or the code grid) */
    int64_t Nx = Bm * t->Tmax;
    t->dres = plan_take(p, Nx * d, PLAN_SCRATCH);
    t->dtmp = plan_take(p, Nx * d, PLAN_SCRATCH);
    t->dmod = plan_take(p, Nx * d, PLAN_SCRATCH);
    real **qkv[] = {&t->xq, &t->xk, &t->xv, &t->dq, &t->dk, &t->dv, &t->datt, &t->as.dqa, &t->as.dka, &t->as.dva};
    for (size_t i = 0; i < sizeof qkv / sizeof qkv[0]; i++)
        *qkv[i] = plan_take(p, Nx * dl, PLAN_SCRATCH);
    t->as.o = plan_take(p, t->Tmax * t->hd, PLAN_SCRATCH);
    t->as.dp = plan_take(p, t->Tmax * t->Tmax, PLAN_SCRATCH);
    t->fs.du = plan_take(p, Nx * fl, PLAN_SCRATCH);
    t->fs.dw = plan_take(p, Nx * fl, PLAN_SCRATCH);
    t->fs.ds = plan_take(p, Nx * fl, PLAN_SCRATCH);
    /* heads: up to one row per position of a modality, [CLS] or a decoder per sample */
    int64_t rows = Bm * imax(imax(imax(t->Tt, t->R), imax(t->Ta, 1)), t->dec[DEC_IMAGE].T);
    int64_t width = imax(imax(imax(t->Vt, t->C), imax(imax(t->Dr, t->Df), MATCH_CLASSES)), t->dec[DEC_IMAGE].V);
    t->hg = plan_take(p, rows * d, PLAN_SCRATCH);
    t->logits = plan_take(p, rows * width, PLAN_SCRATCH);
    t->tgt = plan_take(p, rows * width, PLAN_SCRATCH);
    t->work = plan_take(p, t->Ta * t->Df * 2 + t->Ta * t->Ta + t->Ta, PLAN_SCRATCH);
    t->sel = plan_take_bytes(p, (size_t)rows * sizeof(int64_t), PLAN_SCRATCH);
    t->pos = plan_take_bytes(p, (size_t)rows * sizeof(int64_t), PLAN_SCRATCH);
    t->lab = plan_take_bytes(p, (size_t)rows * sizeof(int32_t), PLAN_SCRATCH);
}

/* ---- build ------------------------------------------------------------------------ */

static void impl_shape(opt_impl_t *t, const model_shape_t *s, int tp_size)
{
    const opt_shape_t *o = &s->opt;
    t->d = s->d_model;
    t->f = s->d_ff;
    t->hd = s->d_model / s->n_heads;
    t->hl = s->n_heads / tp_size;
    t->dl = t->hl * t->hd;
    t->fl = s->d_ff / tp_size;
    t->Tt = o->text_len, t->R = o->regions, t->Ta = o->frames, t->S = 1 + t->Tt + t->R + t->Ta;
    t->Vt = o->vocab, t->C = o->classes, t->Dr = o->region_dim, t->Df = o->frame_dim;
    t->k_text = (int)fmax(1, lround(0.15 * (double)t->Tt));
    t->k_region = (int)fmax(1, lround(0.15 * (double)t->R));
    t->k_frame = (int)fmax(1, lround(0.15 * (double)t->Ta));
    for (int dc = 0; dc < N_DECS; dc++) {
        decoder_t *de = &t->dec[dc];
        de->L = o->decoder_layers;
        de->T = dc == DEC_TEXT ? o->text_len : o->codes;
        de->V = dc == DEC_TEXT ? o->vocab : o->code_book;
    }
    t->Tmax = imax(t->S, o->decoder_layers > 0 ? o->codes : 0);
    for (int st = 0; st < N_STACKS; st++) {
        stack_t *sk = &t->st[st];
        sk->L = st == ST_CROSS ? s->n_layers : o->unimodal_layers;
        sk->P = st == ST_CROSS ? cross_towers(s) : 1;
        sk->T = stack_T(t, st);
    }
}

/* A decoder's index table, layer list and fixed geometry: the identity order, the
 * causal mask over its T positions, every one of the S memory keys visible. */
static void dec_alloc(decoder_t *dc, int max_seqs, int64_t S)
{
    int64_t n = (int64_t)max_seqs * dc->T;
    dc->w = xcalloc((size_t)(imax(dc->L, 1) * DEC_ROLES), sizeof *dc->w);
    dc->la = xcalloc((size_t)imax(dc->L, 1), sizeof *dc->la);
    dc->inv = xcalloc((size_t)n, sizeof *dc->inv);
    dc->hi = xcalloc((size_t)n, sizeof *dc->hi);
    for (int64_t i = 0; i < n; i++)
        dc->inv[i] = i, dc->hi[i] = S;
    attn_mask_causal(&dc->mask, dc->T);
}

static void opt_build(model_t *m)
{
    opt_impl_t *t = xcalloc(1, sizeof *t);
    m->impl = t;
    impl_shape(t, &m->shape, m->tp.size);
    for (int st = 0; st < N_STACKS; st++) {
        stack_t *s = &t->st[st];
        s->w = xcalloc((size_t)(imax(s->L, 1) * BLOCK_ROLES * s->P), sizeof *s->w);
        s->la = xcalloc((size_t)imax(s->L, 1), sizeof *s->la);
        s->inv = xcalloc((size_t)(m->max_seqs * s->T), sizeof *s->inv);
        attn_mask_bidirectional(&s->mask, s->T);
    }
    for (int k = 0; k < N_DECS; k++)
        dec_alloc(&t->dec[k], m->max_seqs, t->S);
    model_table_build(m, opt_list, t);
    plan_t p = {0};
    opt_plan(&p, t, m->max_seqs);
    t->act = xcalloc(p.total, sizeof(real));
    p = (plan_t){.base = t->act, .cursor = t->act};
    opt_plan(&p, t, m->max_seqs);
    m->n_stages = 1;
}

static void opt_free(model_t *m)
{
    opt_impl_t *t = m->impl;
    if (!t)
        return;
    for (int st = 0; st < N_STACKS; st++) {
        free(t->st[st].w);
        free(t->st[st].la);
        free(t->st[st].inv);
        attn_mask_free(&t->st[st].mask);
    }
    for (int k = 0; k < N_DECS; k++) {
        decoder_t *dc = &t->dec[k];
        free(dc->w), free(dc->la), free(dc->inv), free(dc->hi);
        attn_mask_free(&dc->mask);
    }
    free(t->act);
    free(t);
    m->impl = NULL;
}

/* ---- blocks ---------------------------------------------------------------------- */

static attn_geom_t geom_of(const opt_impl_t *t, const stack_t *s)
{
    return (attn_geom_t){.B = (int)t->B, .hl = (int)t->hl, .T = s->T, .hd = t->hd, .dl = t->dl, .inv = s->inv,
                         .rope = NULL, .mask = &s->mask};
}

/* Block l of stack s, pre-norm, from A->x to x_out:
 *   h = x + (Attn(RMSNorm(x; n_attn)) W_o),  out = h + SwiGLU(RMSNorm(h; n_ffn))  */
static void block_forward(model_t *m, opt_impl_t *t, stack_t *s, int l, real *x_out)
{
    blk_acts_t *A = &s->la[l];
    int64_t N = t->B * s->T, d = t->d, dl = t->dl;
    real eps = (real)m->shape.norm_eps;
    norm_forward(m, &s->rows, SW(s, OR_NORM_ATTN, l), A->xn, A->rs_a, A->x, d, eps);
    linear_forward(m, NULL, &s->rows, SW(s, OR_WQ, l), t->xq, dl, A->xn, d);
    linear_forward(m, NULL, &s->rows, SW(s, OR_WK, l), t->xk, dl, A->xn, d);
    linear_forward(m, NULL, &s->rows, SW(s, OR_WV, l), t->xv, dl, A->xn, d);
    attn_geom_t g = geom_of(t, s);
    attention_forward(&g, &A->att_keep, &t->as, A->att, t->xq, t->xk, t->xv);
    linear_forward(m, NULL, &s->rows, SW(s, OR_WO, l), t->dtmp, d, A->att, dl);
    tp_g_forward(&m->tp, t->dtmp, (size_t)(N * d));
    for (int64_t i = 0; i < N * d; i++)
        A->h[i] = A->x[i] + t->dtmp[i];
    norm_forward(m, &s->rows, SW(s, OR_NORM_FFN, l), A->hn, A->rs_h, A->h, d, eps);
    ffn_weights_t fw = {SW(s, OR_W1, l), SW(s, OR_W3, l), SW(s, OR_W2, l)};
    ffn_forward(m, NULL, &s->rows, &fw, &A->ffn, t->dtmp, A->hn, d, t->fl, N);
    tp_g_forward(&m->tp, t->dtmp, (size_t)(N * d));
    for (int64_t i = 0; i < N * d; i++)
        x_out[i] = A->h[i] + t->dtmp[i];
}

/* t->dres holds d/d out on entry, d/d x on exit. */
static void block_backward(model_t *m, opt_impl_t *t, stack_t *s, int l)
{
    blk_acts_t *A = &s->la[l];
    int64_t N = t->B * s->T, d = t->d, dl = t->dl;
    /* out = h + z, z = FFN(hn):  dhn from dz = dout (f: all-reduce), dh = dout + norm backward */
    ffn_weights_t fw = {SW(s, OR_W1, l), SW(s, OR_W3, l), SW(s, OR_W2, l)};
    ffn_backward(m, NULL, &s->rows, &fw, &A->ffn, &t->fs, t->dtmp, t->dres, A->hn, d, t->fl, N);
    tp_f_backward(&m->tp, t->dtmp, (size_t)(N * d));
    norm_backward(m, &s->rows, SW(s, OR_NORM_FFN, l), t->dres, t->dtmp, A->h, A->rs_h, d);
    /* h = x + att W_o:  datt = dh W_o^T;  q, k, v = xn W:  dxn (f: all-reduce);  dx = dh + norm backward */
    linear_backward(m, NULL, &s->rows, SW(s, OR_WO, l), t->datt, false, t->dres, d, A->att, dl);
    attn_geom_t g = geom_of(t, s);
    attention_backward(&g, &A->att_keep, &t->as, t->dq, t->dk, t->dv, t->datt);
    linear_backward(m, NULL, &s->rows, SW(s, OR_WQ, l), t->dtmp, false, t->dq, dl, A->xn, d);
    linear_backward(m, NULL, &s->rows, SW(s, OR_WK, l), t->dtmp, true, t->dk, dl, A->xn, d);
    linear_backward(m, NULL, &s->rows, SW(s, OR_WV, l), t->dtmp, true, t->dv, dl, A->xn, d);
    tp_f_backward(&m->tp, t->dtmp, (size_t)(N * d));
    norm_backward(m, &s->rows, SW(s, OR_NORM_ATTN, l), t->dres, t->dtmp, A->x, A->rs_a, d);
}

/* The stack's input buffer (its first block's x, or its output when it has none). */
static real *stack_in(stack_t *s) { return s->L > 0 ? s->la[0].x : s->out; }

static void stack_forward(model_t *m, opt_impl_t *t, stack_t *s)
{
    for (int l = 0; l < s->L; l++)
        block_forward(m, t, s, l, l + 1 < s->L ? s->la[l + 1].x : s->out);
}

static void stack_backward(model_t *m, opt_impl_t *t, stack_t *s)
{
    for (int l = s->L - 1; l >= 0; l--)
        block_backward(m, t, s, l);
}

/* Row blocks and the grouped order of a micro-batch: a unimodal stack is one block
 * in sequence order; the cross stack groups positions by tower ([CLS] and text,
 * regions, frames), each tower's rows in (sample, position) order. */
static void layout(const model_shape_t *sh, opt_impl_t *t)
{
    for (int st = 0; st < N_STACKS; st++) {
        stack_t *s = &t->st[st];
        int64_t N = t->B * s->T;
        if (st != ST_CROSS) {
            s->off[0] = 0, s->off[1] = N;
            s->rows = (blocks_t){.n = 1, .off = s->off};
            for (int64_t i = 0; i < N; i++)
                s->inv[i] = i;
            continue;
        }
        int64_t len[3] = {1 + t->Tt, t->R, t->Ta}, first[3] = {0, 1 + t->Tt, 1 + t->Tt + t->R};
        int64_t n_in[MAX_MODALITIES] = {0};
        for (int mo = 0; mo < 3; mo++)
            n_in[cross_tower(sh, mo)] += t->B * len[mo];
        s->off[0] = 0;
        for (int tw = 0; tw < s->P; tw++)
            s->off[tw + 1] = s->off[tw] + n_in[tw];
        s->rows = (blocks_t){.n = s->P, .off = s->off};
        int64_t next[MAX_MODALITIES];
        memcpy(next, s->off, sizeof next);
        for (int mo = 0; mo < 3; mo++) {
            int tw = cross_tower(sh, mo);
            if (s->P == 1)
                break;
            for (int64_t b = 0; b < t->B; b++)
                for (int64_t i = 0; i < len[mo]; i++)
                    s->inv[b * t->S + first[mo] + i] = next[tw]++;
        }
        if (s->P == 1)
            for (int64_t i = 0; i < N; i++)
                s->inv[i] = i;
    }
}

/* Row of the cross stack for (sample b, sequence position i). */
static int64_t crow(const opt_impl_t *t, int64_t b, int64_t i) { return t->st[ST_CROSS].inv[b * t->S + i]; }


/* ---- the encoders ---------------------------------------------------------------- */

static void to_real(real *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = (real)src[i];
}

/* text: RMSNorm(E[tok] + pos[i]);  regions: RMSNorm(F W_feat + G W_geom);
 * frames: RMSNorm(A W_proj); each into its unimodal stack's input. */
static void encoders_forward(model_t *m, opt_impl_t *t)
{
    const model_opt_batch_t *in = &m->opt_in;
    int64_t d = t->d, Nt = t->B * t->Tt, Nr = t->B * t->R, Na = t->B * t->Ta;
    real eps = (real)m->shape.norm_eps;
    const real *E = m->params + m->tensors[t->enc[OR_TEXT_EMBED]].offset;
    const real *Pos = m->params + m->tensors[t->enc[OR_TEXT_POS]].offset;
    for (int64_t n = 0; n < Nt; n++) {
        int32_t id = in->text_in[n];
        if (id < 0 || id >= t->Vt)
            DIE(EXIT_FAULT, "OPT text id %d at position %lld outside [0, %lld)", id, (long long)n, (long long)t->Vt);
        t->tok[n] = id;
        for (int64_t j = 0; j < d; j++)
            t->tin_pre[n * d + j] = E[id * d + j] + Pos[(n % t->Tt) * d + j];
    }
    norm_forward(m, &t->st[ST_TEXT].rows, &t->enc[OR_TEXT_NORM], stack_in(&t->st[ST_TEXT]), t->rs_enc[0], t->tin_pre,
                 d, eps);
    to_real(t->rin, in->region_in, Nr * t->Dr);
    to_real(t->gin, in->geom, Nr * GEOM);
    vec_linear_forward(m, t->enc[OR_IMG_FEAT], t->rin_pre, false, t->rin, Nr, t->Dr, d);
    vec_linear_forward(m, t->enc[OR_IMG_GEOM], t->rin_pre, true, t->gin, Nr, GEOM, d);
    norm_forward(m, &t->st[ST_IMAGE].rows, &t->enc[OR_IMG_NORM], stack_in(&t->st[ST_IMAGE]), t->rs_enc[1],
                 t->rin_pre, d, eps);
    to_real(t->ain, in->audio_in, Na * t->Df);
    vec_linear_forward(m, t->enc[OR_AUD_PROJ], t->ain_pre, false, t->ain, Na, t->Df, d);
    norm_forward(m, &t->st[ST_AUDIO].rows, &t->enc[OR_AUD_NORM], stack_in(&t->st[ST_AUDIO]), t->rs_enc[2],
                 t->ain_pre, d, eps);
}

/* dres holds d/d(stack input) of unimodal stack st: back through its encoder. */
static void encoder_backward(model_t *m, opt_impl_t *t, int st)
{
    int64_t d = t->d, n = t->B * t->st[st].T;
    const int norm_role[3] = {OR_TEXT_NORM, OR_IMG_NORM, OR_AUD_NORM};
    const real *pre = st == ST_TEXT ? t->tin_pre : st == ST_IMAGE ? t->rin_pre : t->ain_pre;
    memset(t->dtmp, 0, (size_t)(n * d) * sizeof(real));
    norm_backward(m, &t->st[st].rows, &t->enc[norm_role[st]], t->dtmp, t->dres, pre, t->rs_enc[st], d);
    if (st == ST_TEXT) {
        /* pre = E[tok] + pos[i]:  dE[tok] += dpre,  dpos[i] += dpre */
        real *dE = m->grads + m->tensors[t->enc[OR_TEXT_EMBED]].offset;
        real *dP = m->grads + m->tensors[t->enc[OR_TEXT_POS]].offset;
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < d; j++) {
                dE[t->tok[r] * d + j] += t->dtmp[r * d + j];
                dP[(r % t->Tt) * d + j] += t->dtmp[r * d + j];
            }
    } else if (st == ST_IMAGE) {
        vec_linear_backward(m, t->enc[OR_IMG_FEAT], NULL, t->dtmp, t->rin, n, t->Dr, d);
        vec_linear_backward(m, t->enc[OR_IMG_GEOM], NULL, t->dtmp, t->gin, n, GEOM, d);
    } else {
        vec_linear_backward(m, t->enc[OR_AUD_PROJ], NULL, t->dtmp, t->ain, n, t->Df, d);
    }
}

/* The cross stack's input: [CLS] + text + regions + frames per sample. */
static void cross_assemble(model_t *m, opt_impl_t *t)
{
    int64_t d = t->d;
    real *x = stack_in(&t->st[ST_CROSS]);
    const real *cls = m->params + m->tensors[t->enc[OR_CLS]].offset;
    size_t row = (size_t)d * sizeof(real);
    for (int64_t b = 0; b < t->B; b++) {
        memcpy(x + crow(t, b, 0) * d, cls, row);
        int64_t i = 1;
        for (int st = 0; st < 3; st++) {
            const stack_t *s = &t->st[st];
            for (int64_t k = 0; k < s->T; k++, i++)
                memcpy(x + crow(t, b, i) * d, s->out + (b * s->T + k) * d, row);
        }
    }
}

/* dres holds d/d(cross input): d[CLS] accumulated, each modality's rows into dmod
 * (text, then regions, then frames, each in its stack's row order). */
static void cross_split_backward(model_t *m, opt_impl_t *t)
{
    int64_t d = t->d;
    real *dcls = m->grads + m->tensors[t->enc[OR_CLS]].offset;
    size_t row = (size_t)d * sizeof(real);
    for (int64_t b = 0; b < t->B; b++) {
        const real *g = t->dres + crow(t, b, 0) * d;
        for (int64_t j = 0; j < d; j++)
            dcls[j] += g[j];
        int64_t i = 1, base = 0;
        for (int st = 0; st < 3; st++) {
            const stack_t *s = &t->st[st];
            for (int64_t k = 0; k < s->T; k++, i++)
                memcpy(t->dmod + (base + b * s->T + k) * d, t->dres + crow(t, b, i) * d, row);
            base += t->B * s->T;
        }
    }
}

/* ---- the task heads ----------------------------------------------------------------
 * A head reads the final norm's output at the rows t->sel[0 .. n): logits = hf[sel] W. */

static void head_fwd(model_t *m, opt_impl_t *t, int role, int64_t n, int64_t out)
{
    int64_t d = t->d;
    for (int64_t r = 0; r < n; r++)
        memcpy(t->hg + r * d, t->hf + t->sel[r] * d, (size_t)d * sizeof(real));
    vec_linear_forward(m, t->head[role], t->logits, false, t->hg, n, d, out);
}

/* logits hold d/d logits: dW += hg^T dlogits, dhf[sel] += dlogits W^T. */
static void head_bwd(model_t *m, opt_impl_t *t, int role, int64_t n, int64_t out)
{
    if (t->grad_scale <= 0 || n == 0)
        return;
    int64_t d = t->d;
    vec_linear_backward(m, t->head[role], t->dtmp, t->logits, t->hg, n, d, out);
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++)
            t->dhf[t->sel[r] * d + j] += t->dtmp[r * d + j];
}

/* Rows (and their position within the modality) of the targets of one modality:
 * first: its first cross position, T its positions, masked its flags (B, T). */
static int64_t select_masked(opt_impl_t *t, const uint8_t *masked, int64_t first, int64_t T, int64_t b0, int64_t b1)
{
    int64_t n = 0;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t i = 0; i < T; i++)
            if (masked[b * T + i]) {
                t->sel[n] = crow(t, b, first + i);
                t->pos[n++] = b * T + i;
            }
    return n;
}

/* Task k's gradient scale: the objective weighs each task by its weight over its
 * targets per sample. */
static real task_scale(const model_t *m, const opt_impl_t *t, int k, int per_sample)
{
    return (real)(t->grad_scale * m->shape.opt.weight[k] / per_sample);
}

/* MLM: the text head at masked tokens, cross-entropy against the original token. */
static void mlm_task(model_t *m, opt_impl_t *t, double *ls, int64_t *ct, int64_t *ok)
{
    const model_opt_batch_t *in = &m->opt_in;
    int64_t n = select_masked(t, in->text_masked, 1, t->Tt, 0, t->B);
    for (int64_t r = 0; r < n; r++)
        t->lab[r] = in->text_tgt[t->pos[r]];
    head_fwd(m, t, OR_HEAD_MLM, n, t->Vt);
    loss_classify(t->logits, n, t->Vt, t->lab, OPT_TASK_MLM, task_scale(m, t, OPT_TASK_MLM, t->k_text), ls, ct,
                  &ok[OPT_TASK_MLM]);
    head_bwd(m, t, OR_HEAD_MLM, n, t->Vt);
}

/* Masked regions: feature regression (L2) and classification of the class label. */
static void region_tasks(model_t *m, opt_impl_t *t, double *ls, int64_t *ct, int64_t *ok)
{
    const model_opt_batch_t *in = &m->opt_in;
    const double *w = m->shape.opt.weight;
    int64_t n = select_masked(t, in->region_masked, 1 + t->Tt, t->R, 0, t->B);
    for (int64_t r = 0; r < n; r++) {
        to_real(t->tgt + r * t->Dr, in->region_tgt + t->pos[r] * t->Dr, t->Dr);
        t->lab[r] = in->region_class[t->pos[r]];
    }
    if (w[OPT_TASK_MRFR] > 0) {
        head_fwd(m, t, OR_HEAD_RFR, n, t->Dr);
        loss_mse(t->logits, t->tgt, n, t->Dr, OPT_TASK_MRFR, task_scale(m, t, OPT_TASK_MRFR, t->k_region), ls, ct);
        head_bwd(m, t, OR_HEAD_RFR, n, t->Dr);
    }
    if (w[OPT_TASK_MRC] > 0) {
        head_fwd(m, t, OR_HEAD_RC, n, t->C);
        loss_classify(t->logits, n, t->C, t->lab, OPT_TASK_MRC, task_scale(m, t, OPT_TASK_MRC, t->k_region), ls, ct,
                      &ok[OPT_TASK_MRC]);
        head_bwd(m, t, OR_HEAD_RC, n, t->C);
    }
}

/* Masked frames: feature regression (L2), and contrastive per sample: the positive
 * is the frame's own original feature, the negatives the sample's other frames. */
static void frame_tasks(model_t *m, opt_impl_t *t, double *ls, int64_t *ct)
{
    const model_opt_batch_t *in = &m->opt_in;
    const double *w = m->shape.opt.weight;
    int64_t fa = 1 + t->Tt + t->R;
    if (w[OPT_TASK_MAFR] > 0) {
        int64_t n = select_masked(t, in->frame_masked, fa, t->Ta, 0, t->B);
        for (int64_t r = 0; r < n; r++)
            to_real(t->tgt + r * t->Df, in->audio_tgt + t->pos[r] * t->Df, t->Df);
        head_fwd(m, t, OR_HEAD_AFR, n, t->Df);
        loss_mse(t->logits, t->tgt, n, t->Df, OPT_TASK_MAFR, task_scale(m, t, OPT_TASK_MAFR, t->k_frame), ls, ct);
        head_bwd(m, t, OR_HEAD_AFR, n, t->Df);
    }
    if (!(w[OPT_TASK_MAC] > 0))
        return;
    for (int64_t b = 0; b < t->B; b++) {
        int64_t n = select_masked(t, in->frame_masked, fa, t->Ta, b, b + 1);
        if (n == 0)
            continue;
        for (int64_t r = 0; r < n; r++)
            t->pos[r] -= b * t->Ta;
        to_real(t->tgt, in->audio_tgt + b * t->Ta * t->Df, t->Ta * t->Df);
        head_fwd(m, t, OR_HEAD_AC, n, t->Df);
        loss_contrastive(t->logits, n, t->tgt, t->Ta, t->Df, t->pos, m->shape.opt.temperature, OPT_TASK_MAC,
                         task_scale(m, t, OPT_TASK_MAC, t->k_frame), t->work, ls, ct, NULL);
        head_bwd(m, t, OR_HEAD_AC, n, t->Df);
    }
}

/* The token-level tasks; a task of weight 0 is not computed (opt.task_mode =
 * sample, ablations): it adds no loss, no count and no FLOPs. */
static void token_tasks(model_t *m, opt_impl_t *t, double *ls, int64_t *ct, int64_t *ok)
{
    if (m->shape.opt.weight[OPT_TASK_MLM] > 0)
        mlm_task(m, t, ls, ct, ok);
    region_tasks(m, t, ls, ct, ok);
    frame_tasks(m, t, ls, ct);
}

/* 5-way matching from [CLS], on the samples with a label (the logits of all, for
 * retrieval, even at weight 0). */
static void match_task(model_t *m, opt_impl_t *t, double *ls, int64_t *ct, int64_t *ok)
{
    const model_opt_batch_t *in = &m->opt_in;
    if (!(m->shape.opt.weight[OPT_TASK_MATCH] > 0) && !in->match_logits)
        return;
    for (int64_t b = 0; b < t->B; b++)
        t->sel[b] = crow(t, b, 0);
    head_fwd(m, t, OR_HEAD_MATCH, t->B, MATCH_CLASSES);
    if (in->match_logits)
        memcpy(in->match_logits, t->logits, (size_t)(t->B * MATCH_CLASSES) * sizeof(real));
    real scale = task_scale(m, t, OPT_TASK_MATCH, 1);
    for (int64_t b = 0; b < t->B; b++) {
        real *z = t->logits + b * MATCH_CLASSES;
        int32_t y = in->match && m->shape.opt.weight[OPT_TASK_MATCH] > 0 ? in->match[b] : -1;
        if (y < 0) {
            memset(z, 0, MATCH_CLASSES * sizeof(real));
            continue;
        }
        if (y >= MATCH_CLASSES)
            DIE(EXIT_FAULT, "OPT matching class %d of sample %lld outside [0, 5)", y, (long long)b);
        loss_classify(z, 1, MATCH_CLASSES, &y, OPT_TASK_MATCH, scale, ls, ct, &ok[OPT_TASK_MATCH]);
    }
    head_bwd(m, t, OR_HEAD_MATCH, t->B, MATCH_CLASSES);
}

/* ---- the decoders ------------------------------------------------------------------
 * Text decoder (tdec) and image-code decoder (idec): causal, teacher-forced, each
 * block pre-norm self-attention, cross-attention to the encoder's final-normed
 * output (the memory: every position of the sample), SwiGLU; the loss only on the
 * samples whose modality is masked whole (modality level). */

static const int *DW(const decoder_t *dc, int role, int l) { return dc->w + l * DEC_ROLES + (role - OR_D_WQ); }

static void dec_block_forward(model_t *m, opt_impl_t *t, decoder_t *dc, int l, real *x_out)
{
    dec_acts_t *A = &dc->la[l];
    int64_t N = t->B * dc->T, M = t->B * t->S, d = t->d, dl = t->dl;
    real eps = (real)m->shape.norm_eps;
    const blocks_t *b = &dc->rows;
    int64_t moff[2] = {0, M};
    blocks_t mem = {.n = 1, .off = moff};
    /* h1 = x + SelfAttn_causal(RMSNorm(x; n1)) W_o */
    norm_forward(m, b, DW(dc, OR_D_N1, l), A->xn, A->rs1, A->x, d, eps);
    linear_forward(m, NULL, b, DW(dc, OR_D_WQ, l), t->xq, dl, A->xn, d);
    linear_forward(m, NULL, b, DW(dc, OR_D_WK, l), t->xk, dl, A->xn, d);
    linear_forward(m, NULL, b, DW(dc, OR_D_WV, l), t->xv, dl, A->xn, d);
    attn_geom_t g = {.B = (int)t->B, .hl = (int)t->hl, .T = dc->T, .hd = t->hd, .dl = dl, .inv = dc->inv,
                     .rope = NULL, .mask = &dc->mask};
    attention_forward(&g, &A->sa, &t->as, A->att1, t->xq, t->xk, t->xv);
    linear_forward(m, NULL, b, DW(dc, OR_D_WO, l), t->dtmp, d, A->att1, dl);
    tp_g_forward(&m->tp, t->dtmp, (size_t)(N * d));
    for (int64_t i = 0; i < N * d; i++)
        A->h1[i] = A->x[i] + t->dtmp[i];
    /* h2 = h1 + CrossAttn(RMSNorm(h1; n2) W_q, memory W_k, memory W_v) W_o */
    norm_forward(m, b, DW(dc, OR_D_N2, l), A->h1n, A->rs2, A->h1, d, eps);
    linear_forward(m, NULL, b, DW(dc, OR_X_WQ, l), A->q2, dl, A->h1n, d);
    linear_forward(m, NULL, &mem, DW(dc, OR_X_WK, l), A->k2, dl, t->hf, d);
    linear_forward(m, NULL, &mem, DW(dc, OR_X_WV, l), A->v2, dl, t->hf, d);
    xattn_geom_t xg = {.B = (int)t->B, .hl = (int)t->hl, .Tq = dc->T, .Tk = t->S, .hd = t->hd, .dl = dl,
                       .kinv = t->st[ST_CROSS].inv, .hi = dc->hi};
    xattn_scratch_t xs = {.o = t->as.o};
    xattn_forward(&xg, &A->xa, &xs, A->att2, A->q2, A->k2, A->v2);
    linear_forward(m, NULL, b, DW(dc, OR_X_WO, l), t->dtmp, d, A->att2, dl);
    tp_g_forward(&m->tp, t->dtmp, (size_t)(N * d));
    for (int64_t i = 0; i < N * d; i++)
        A->h2[i] = A->h1[i] + t->dtmp[i];
    /* out = h2 + SwiGLU(RMSNorm(h2; n3)) */
    norm_forward(m, b, DW(dc, OR_D_N3, l), A->h2n, A->rs3, A->h2, d, eps);
    ffn_weights_t fw = {DW(dc, OR_D_W1, l), DW(dc, OR_D_W3, l), DW(dc, OR_D_W2, l)};
    ffn_forward(m, NULL, b, &fw, &A->ffn, t->dtmp, A->h2n, d, t->fl, N);
    tp_g_forward(&m->tp, t->dtmp, (size_t)(N * d));
    for (int64_t i = 0; i < N * d; i++)
        x_out[i] = A->h2[i] + t->dtmp[i];
}

/* t->dres holds d/d out on entry, d/d x on exit; the memory's gradient is added to
 * t->dhf (the encoder's final norm output). */
static void dec_block_backward(model_t *m, opt_impl_t *t, decoder_t *dc, int l)
{
    dec_acts_t *A = &dc->la[l];
    int64_t N = t->B * dc->T, M = t->B * t->S, d = t->d, dl = t->dl;
    const blocks_t *b = &dc->rows;
    int64_t moff[2] = {0, M};
    blocks_t mem = {.n = 1, .off = moff};
    /* out = h2 + FFN(h2n) */
    ffn_weights_t fw = {DW(dc, OR_D_W1, l), DW(dc, OR_D_W3, l), DW(dc, OR_D_W2, l)};
    ffn_backward(m, NULL, b, &fw, &A->ffn, &t->fs, t->dtmp, t->dres, A->h2n, d, t->fl, N);
    tp_f_backward(&m->tp, t->dtmp, (size_t)(N * d));
    norm_backward(m, b, DW(dc, OR_D_N3, l), t->dres, t->dtmp, A->h2, A->rs3, d);
    /* h2 = h1 + att2 W_o:  datt2;  att2 = xattn(q2, k2, v2);  q2 = h1n W_q, k2 = mem W_k, v2 = mem W_v */
    linear_backward(m, NULL, b, DW(dc, OR_X_WO, l), t->datt, false, t->dres, d, A->att2, dl);
    xattn_geom_t xg = {.B = (int)t->B, .hl = (int)t->hl, .Tq = dc->T, .Tk = t->S, .hd = t->hd, .dl = dl,
                       .kinv = t->st[ST_CROSS].inv, .hi = dc->hi};
    xattn_scratch_t xs = {.o = t->as.o, .dp = t->as.dp, .dqa = t->as.dqa, .dka = t->as.dka, .dva = t->as.dva};
    xattn_backward(&xg, &A->xa, &xs, t->dq, t->dk, t->dv, t->datt);
    linear_backward(m, NULL, &mem, DW(dc, OR_X_WK, l), t->dmod, false, t->dk, dl, t->hf, d);
    linear_backward(m, NULL, &mem, DW(dc, OR_X_WV, l), t->dmod, true, t->dv, dl, t->hf, d);
    tp_f_backward(&m->tp, t->dmod, (size_t)(M * d));
    for (int64_t i = 0; i < M * d; i++)
        t->dhf[i] += t->dmod[i];
    linear_backward(m, NULL, b, DW(dc, OR_X_WQ, l), t->dtmp, false, t->dq, dl, A->h1n, d);
    tp_f_backward(&m->tp, t->dtmp, (size_t)(N * d));
    norm_backward(m, b, DW(dc, OR_D_N2, l), t->dres, t->dtmp, A->h1, A->rs2, d);
    /* h1 = x + att1 W_o, att1 = causal self-attention of xn */
    linear_backward(m, NULL, b, DW(dc, OR_D_WO, l), t->datt, false, t->dres, d, A->att1, dl);
    attn_geom_t g = {.B = (int)t->B, .hl = (int)t->hl, .T = dc->T, .hd = t->hd, .dl = dl, .inv = dc->inv,
                     .rope = NULL, .mask = &dc->mask};
    attention_backward(&g, &A->sa, &t->as, t->dq, t->dk, t->dv, t->datt);
    linear_backward(m, NULL, b, DW(dc, OR_D_WQ, l), t->dtmp, false, t->dq, dl, A->xn, d);
    linear_backward(m, NULL, b, DW(dc, OR_D_WK, l), t->dtmp, true, t->dk, dl, A->xn, d);
    linear_backward(m, NULL, b, DW(dc, OR_D_WV, l), t->dtmp, true, t->dv, dl, A->xn, d);
    tp_f_backward(&m->tp, t->dtmp, (size_t)(N * d));
    norm_backward(m, b, DW(dc, OR_D_N1, l), t->dres, t->dtmp, A->x, A->rs1, d);
}

/* Decoder `which`: inputs [BOS] + targets but the last, embedded with positions, its
 * blocks, the final norm and head; cross-entropy against the targets of the samples
 * whose modality is masked whole, the head's backward at once (as the encoder's). */
static void dec_forward(model_t *m, opt_impl_t *t, int which, double *ls, int64_t *ct, int64_t *ok)
{
    decoder_t *dc = &t->dec[which];
    const model_opt_batch_t *in = &m->opt_in;
    int task = which == DEC_TEXT ? OPT_TASK_TREC : OPT_TASK_IREC, mo = which == DEC_TEXT ? 0 : 1;
    /* run in every training and held-out forward (the FLOP count charges it per
     * sample), not for retrieval's composed pairs, which mask nothing whole */
    dc->active = dc->L > 0 && m->shape.opt.weight[task] > 0 && in->whole && !in->match_logits;
    if (!dc->active)
        return;
    int64_t T = dc->T, N = t->B * T, d = t->d;
    const int32_t *tgt = which == DEC_TEXT ? in->text_tgt : in->codes;
    dc->off[0] = 0, dc->off[1] = N;
    dc->rows = (blocks_t){.n = 1, .off = dc->off};
    const real *E = m->params + m->tensors[dc->embed].offset, *P = m->params + m->tensors[dc->pos].offset;
    real *x = dc->L > 0 ? dc->la[0].x : dc->out;
    for (int64_t r = 0; r < N; r++) {
        int64_t i = r % T;
        dc->tgt[r] = tgt[r];
        dc->in[r] = i == 0 ? (int32_t)dc->V : tgt[r - 1];
        if (dc->tgt[r] < 0 || dc->tgt[r] >= dc->V)
            DIE(EXIT_FAULT, "OPT decoder target %d at row %lld outside [0, %lld)", dc->tgt[r], (long long)r,
                (long long)dc->V);
        for (int64_t j = 0; j < d; j++)
            x[r * d + j] = E[dc->in[r] * d + j] + P[i * d + j];
    }
    for (int l = 0; l < dc->L; l++)
        dec_block_forward(m, t, dc, l, l + 1 < dc->L ? dc->la[l + 1].x : dc->out);
    norm_forward(m, &dc->rows, &dc->final, t->hg, dc->rs_f, dc->out, d, (real)m->shape.norm_eps);
    vec_linear_forward(m, dc->head, t->logits, false, t->hg, N, d, dc->V);
    real scale = task_scale(m, t, task, (int)T);
    for (int64_t b = 0; b < t->B; b++) {
        real *z = t->logits + b * T * dc->V;
        if (in->whole[b * 3 + mo])
            loss_classify(z, T, dc->V, dc->tgt + b * T, task, scale, ls, ct, &ok[task]);
        else
            memset(z, 0, (size_t)(T * dc->V) * sizeof(real));
    }
    if (t->grad_scale > 0)
        vec_linear_backward(m, dc->head, dc->dhf, t->logits, t->hg, N, d, dc->V);
}

static void dec_backward(model_t *m, opt_impl_t *t, int which)
{
    decoder_t *dc = &t->dec[which];
    if (!dc->active)
        return;
    int64_t T = dc->T, N = t->B * T, d = t->d;
    memset(t->dres, 0, (size_t)(N * d) * sizeof(real));
    norm_backward(m, &dc->rows, &dc->final, t->dres, dc->dhf, dc->out, dc->rs_f, d);
    for (int l = dc->L - 1; l >= 0; l--)
        dec_block_backward(m, t, dc, l);
    /* x = E[in] + P[i] */
    real *dE = m->grads + m->tensors[dc->embed].offset, *dP = m->grads + m->tensors[dc->pos].offset;
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < d; j++) {
            dE[dc->in[r] * d + j] += t->dres[r * d + j];
            dP[(r % T) * d + j] += t->dres[r * d + j];
        }
}

/* ---- forward and backward --------------------------------------------------------- */

static void opt_forward(model_t *m, const int32_t *windows, int B, real grad_scale, double *loss_sum, int64_t *count)
{
    (void)windows;
    opt_impl_t *t = m->impl;
    t->B = B;
    t->grad_scale = grad_scale;
    layout(&m->shape, t);
    encoders_forward(m, t);
    for (int st = 0; st < 3; st++)
        stack_forward(m, t, &t->st[st]);
    cross_assemble(m, t);
    stack_t *c = &t->st[ST_CROSS];
    stack_forward(m, t, c);
    norm_forward(m, &c->rows, t->final_norm, t->hf, t->rs_f, c->out, t->d, (real)m->shape.norm_eps);
    if (grad_scale > 0) {
        memset(t->dhf, 0, (size_t)(B * t->S * t->d) * sizeof(real));
        m->tokens_in[0] += B * t->Tt; /* [CLS] is charged to the words (opt_flops) */
        m->tokens_in[1] += B * t->R;
        m->tokens_in[2] += B * t->Ta;
    }
    double ls[OPT_TASKS] = {0};
    int64_t ct[OPT_TASKS] = {0}, ok[OPT_TASKS] = {0};
    token_tasks(m, t, ls, ct, ok);
    match_task(m, t, ls, ct, ok);
    for (int k = 0; k < N_DECS; k++)
        dec_forward(m, t, k, ls, ct, ok);
    for (int k = 0; k < OPT_TASKS; k++) {
        m->opt_loss[k] += ls[k];
        m->opt_count[k] += ct[k];
        m->opt_correct[k] += ok[k];
    }
    /* by modality: each modality's share of the objective (its tasks' weighted sums
     * over their targets per sample), counted per sample; matching goes to text */
    const double *w = m->shape.opt.weight;
    loss_sum[0] += w[OPT_TASK_MLM] * ls[OPT_TASK_MLM] / t->k_text + w[OPT_TASK_MATCH] * ls[OPT_TASK_MATCH] +
                   w[OPT_TASK_TREC] * ls[OPT_TASK_TREC] / (double)t->Tt;
    loss_sum[1] += (w[OPT_TASK_MRFR] * ls[OPT_TASK_MRFR] + w[OPT_TASK_MRC] * ls[OPT_TASK_MRC]) / t->k_region +
                   (t->dec[DEC_IMAGE].T ? w[OPT_TASK_IREC] * ls[OPT_TASK_IREC] / (double)t->dec[DEC_IMAGE].T : 0);
    loss_sum[2] += (w[OPT_TASK_MAFR] * ls[OPT_TASK_MAFR] + w[OPT_TASK_MAC] * ls[OPT_TASK_MAC]) / t->k_frame;
    for (int mo = 0; mo < 3; mo++)
        count[mo] += B;
}

static void opt_backward(model_t *m)
{
    opt_impl_t *t = m->impl;
    stack_t *c = &t->st[ST_CROSS];
    int64_t d = t->d;
    /* the decoders add the memory's gradient to dhf */
    for (int k = 0; k < N_DECS; k++)
        dec_backward(m, t, k);
    /* hf = RMSNorm_final(x): the heads' gradient dhf came with the forward */
    memset(t->dres, 0, (size_t)(t->B * t->S * d) * sizeof(real));
    norm_backward(m, &c->rows, t->final_norm, t->dres, t->dhf, c->out, t->rs_f, d);
    stack_backward(m, t, c);
    cross_split_backward(m, t);
    int64_t base = 0;
    for (int st = 0; st < 3; st++) {
        stack_t *s = &t->st[st];
        int64_t n = t->B * s->T;
        memcpy(t->dres, t->dmod + base * d, (size_t)(n * d) * sizeof(real));
        base += n;
        stack_backward(m, t, s);
        encoder_backward(m, t, st);
    }
    if (m->on_stage)
        m->on_stage(m->on_stage_ctx, 0);
}

/* ---- FLOPs and memory ------------------------------------------------------------
 * Derivation (forward, a multiply-add counts 2), per position of a stack over T
 * positions: q, k, v, o 2 * 4 d^2; SwiGLU 2 * 3 d f; bidirectional attention, QK^T
 * and AV over all T keys (the full square), 2 * 2 T d. A sample has Tt text, R
 * region and Ta frame positions in the unimodal stacks (L_u blocks each) and
 * S = 1 + Tt + R + Ta in the cross-modal stack (L blocks). Encoders: 2 d (Dr + 7)
 * per region, 2 d Df per frame (the embedding lookup is not counted). Heads, at
 * their k targets per sample: MLM 2 d Vt, region regression 2 d Dr and
 * classification 2 d C, frame regression and contrastive 2 d Df each plus the
 * contrastive similarities 2 Ta Df, matching 2 d 5 at [CLS]. Training is 3 x
 * forward (the encoders' and the similarities' backward have no input gradient,
 * so this overstates them by a third: under 1% of a sample at the documented sizes).
 * Per token of modality m: its unimodal and cross blocks, its encoder, its heads at
 * k_m / T_m, and text carries [CLS]'s blocks and head over its Tt tokens. A task of
 * weight 0 is not computed and not counted (opt.task_mode = sample counts every
 * task of positive weight each step: the heads are under 1% of a sample). Shared and
 * MoT cross encoders have the same count: untying changes no shape. */
static void opt_flops(flops_report_t *r, const model_shape_t *s, int32_t vocab_size)
{
    (void)vocab_size;
    memset(r, 0, sizeof *r);
    opt_impl_t t = {0};
    impl_shape(&t, s, 1);
    double d = (double)t.d, f = (double)t.f, L = s->n_layers, Lu = s->opt.unimodal_layers;
    double Tt = (double)t.Tt, R = (double)t.R, Ta = (double)t.Ta, S = (double)t.S;
    double lin = 2 * 4 * d * d + 2 * 3 * d * f;
    double blk_params = 4 * d * d + 3 * d * f + 2 * d;
    int P = cross_towers(s);
    flops_add_params(r, "encoders", (double)(t.Vt * t.d + t.Tt * t.d + (t.Dr + GEOM) * t.d + t.Df * t.d + 4 * t.d));
    flops_add_params(r, "unimodal blocks", 3 * Lu * blk_params);
    flops_add_params(r, P > 1 ? "cross-modal blocks (3 towers)" : "cross-modal blocks", P * (L * blk_params + d));
    flops_add_params(r, "task heads", d * (double)(t.Vt + t.Dr + t.C + 2 * t.Df + MATCH_CLASSES));
    if (s->opt.decoder_layers > 0) {
        double dec_blk = 8 * d * d + 3 * d * f + 3 * d, dp = 0;
        for (int k = 0; k < N_DECS; k++)
            dp += (double)(t.dec[k].V + 1 + t.dec[k].T) * d + s->opt.decoder_layers * dec_blk + d + d * (double)t.dec[k].V;
        flops_add_params(r, "decoders", dp);
    }
    for (int i = 0; i < r->n_params; i++)
        r->params_total += (int64_t)r->params[i].value;
    r->params_active_per_token = r->params_total - (int64_t)((P - 1) * (L * blk_params + d));
    /* per sample, forward */
    double uni_lin = Lu * lin * (Tt + R + Ta), uni_att = Lu * 4 * d * (Tt * Tt + R * R + Ta * Ta);
    double cross_lin = L * lin * S, cross_att = L * 4 * d * S * S;
    double enc = 2 * d * ((double)t.Dr + GEOM) * R + 2 * d * (double)t.Df * Ta;
    /* a task of weight 0 is not computed */
    const double *w = s->opt.weight;
    double h_mlm = (w[OPT_TASK_MLM] > 0) * 2 * d * (double)t.Vt * t.k_text,
           h_mrfr = (w[OPT_TASK_MRFR] > 0) * 2 * d * (double)t.Dr * t.k_region,
           h_mrc = (w[OPT_TASK_MRC] > 0) * 2 * d * (double)t.C * t.k_region,
           h_mafr = (w[OPT_TASK_MAFR] > 0) * 2 * d * (double)t.Df * t.k_frame,
           h_mac = (w[OPT_TASK_MAC] > 0) * (2 * d * (double)t.Df + 2 * Ta * (double)t.Df) * t.k_frame,
           h_match = (w[OPT_TASK_MATCH] > 0) * 2 * d * MATCH_CLASSES;
    /* decoders (weight > 0 and layers): per position self q,k,v,o, cross q,o, SwiGLU,
     * causal attention as issued (the full square: a block of 64 rows computes all
     * its keys, then the mask zeroes the later ones), cross attention over S; per
     * sample the memory's keys and values; the head at every position */
    double Ld = s->opt.decoder_layers, dec[N_DECS], h_dec[N_DECS];
    for (int k = 0; k < N_DECS; k++) {
        double T = (double)t.dec[k].T, on = Ld > 0 && w[k == DEC_TEXT ? OPT_TASK_TREC : OPT_TASK_IREC] > 0;
        dec[k] = on * Ld * (T * (2 * 6 * d * d + 2 * 3 * d * f + 4 * T * d + 4 * S * d) + S * 2 * 2 * d * d);
        h_dec[k] = on * T * 2 * d * (double)t.dec[k].V;
    }
    /* the terms are per position, averaged over a sample's 1 + Tt + R + Ta */
    const struct { const char *name; double v; } TERMS[] = {
        {"unimodal q,k,v,o,SwiGLU", uni_lin}, {"unimodal attention", uni_att}, {"cross q,k,v,o,SwiGLU", cross_lin},
        {"cross attention", cross_att}, {"region, audio encoders", enc}, {"text decoder", dec[DEC_TEXT]},
        {"image decoder", dec[DEC_IMAGE]}, {"head MLM", h_mlm}, {"head region regression", h_mrfr},
        {"head region class", h_mrc}, {"head audio regression", h_mafr}, {"head audio contrastive", h_mac},
        {"head matching", h_match}, {"head text reconstruction", h_dec[DEC_TEXT]},
        {"head image reconstruction", h_dec[DEC_IMAGE]},
    };
    for (size_t i = 0; i < sizeof TERMS / sizeof TERMS[0]; i++)
        flops_add_fwd(r, TERMS[i].name, TERMS[i].v / S, true);
    /* per token of each modality */
    double text = Lu * (lin + 4 * d * Tt) + L * (lin + 4 * d * S) +
                  (h_mlm + L * (lin + 4 * d * S) + h_match + dec[DEC_TEXT] + h_dec[DEC_TEXT]) / Tt;
    double region = Lu * (lin + 4 * d * R) + L * (lin + 4 * d * S) + 2 * d * ((double)t.Dr + GEOM) +
                    (h_mrfr + h_mrc + dec[DEC_IMAGE] + h_dec[DEC_IMAGE]) / R;
    double frame = Lu * (lin + 4 * d * Ta) + L * (lin + 4 * d * S) + 2 * d * (double)t.Df + (h_mafr + h_mac) / Ta;
    double of[3] = {text, region, frame};
    r->n_modalities = 3;
    for (int m = 0; m < 3; m++) {
        r->train_per_token_of[m] = 3 * of[m];
        r->fwd_per_token = fmax(r->fwd_per_token, of[m]);
    }
    r->bwd_per_token = 2 * r->fwd_per_token;
    r->train_per_token = 3 * r->fwd_per_token;
    r->train_matrix_per_token = r->train_per_token;
}

static void opt_memory(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size, int max_seqs)
{
    (void)vocab_size;
    model_t m = {.shape = *s, .tp = {.rank = 0, .size = tp_size}, .max_seqs = max_seqs};
    opt_impl_t *t = xcalloc(1, sizeof *t);
    impl_shape(t, s, tp_size);
    for (int st = 0; st < N_STACKS; st++) {
        t->st[st].w = xcalloc((size_t)(imax(t->st[st].L, 1) * BLOCK_ROLES * t->st[st].P), sizeof(int));
        t->st[st].la = xcalloc((size_t)imax(t->st[st].L, 1), sizeof(blk_acts_t));
    }
    for (int k = 0; k < N_DECS; k++)
        t->dec[k].la = xcalloc((size_t)imax(t->dec[k].L, 1), sizeof(dec_acts_t));
    table_builder_t b = {.backend = s->tp_backend, .tp_rank = 0, .tp_size = tp_size};
    opt_list(&m, &b, NULL);
    plan_t p = {0};
    opt_plan(&p, t, max_seqs);
    double elem = (double)sizeof(real);
    r->params = r->grads = elem * (double)b.n_local;
    r->moments = 2 * elem * (double)b.n_local;
    r->activations = elem * (double)p.kept;
    r->scratch = elem * (double)(p.total - p.kept);
    r->analytic_min = r->params + r->grads + r->moments + r->activations;
    for (int st = 0; st < N_STACKS; st++) {
        free(t->st[st].w);
        free(t->st[st].la);
    }
    for (int k = 0; k < N_DECS; k++)
        free(t->dec[k].la);
    free(t);
}

const model_kind_ops_t opt_kind = {
    .name = "OPT tri-modal encoder",
    .build = opt_build,
    .free = opt_free,
    .forward = opt_forward,
    .backward = opt_backward,
    .flops = opt_flops,
    .memory = opt_memory,
};
