/* The layer library of src/model, private to it: the pieces a model kind composes.
 * Each layer is a forward/backward pair over row blocks (rows of one tower, or later
 * one expert, contiguous), with its shapes stated; backward functions accumulate
 * weight gradients into m->grads and say how they treat the input gradient. Shapes:
 * N rows, d model width, dl / fl this rank's attention / FFN widths (Megatron
 * slices), hl local heads of hd. Every matrix product goes through gemm(). */
#ifndef MOTSCALE_MODEL_LAYERS_H
#define MOTSCALE_MODEL_LAYERS_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/model.h"

struct sl_state; /* ScaLAPACK grids (scalapack.h); NULL under the Megatron backend */

/* ---- the tensor table (tensors.c) --------------------------------------------- */

/* A tensor to add: the kind's role (seeds its init), tower and layer (-1: none),
 * logical shape and how it is sharded, decayed and initialised. */
typedef struct tensor_spec {
    const char *name;              /* full documented name */
    int role, tower, layer;
    int64_t rows, cols;
    int shard;                     /* enum shard_kind */
    int owner, expert;             /* SHARD_EXPERT's TP rank; the expert (-1: none) */
    bool grid2d, decay;
    int init;                      /* enum tensor_init */
    double init_div;
    int stage;
} tensor_spec_t;

/* Tables are built in two passes over one list of specs: count (tensors == NULL),
 * then fill; the offsets of the flat buffers follow the order of the list. */
typedef struct table_builder {
    tensor_info_t *tensors;        /* NULL: counting pass */
    int n, cap;
    size_t n_local;
    int backend, tp_rank, tp_size; /* where this rank's slice is */
} table_builder_t;

/* Add one tensor (or count it); returns its index. */
int table_add(table_builder_t *b, const tensor_spec_t *spec);

/* This rank's slice of a logical (rows x cols) tensor: a Megatron column or row
 * slice, or for a grid2d tensor under the ScaLAPACK backend its 2D block. The one
 * place a slice is decided, for both backends. */
void tensor_slice(int shard, int owner, bool grid2d, int backend, int tp_rank, int tp_size, int64_t rows,
                  int64_t cols, int64_t *row0, int64_t *lrows, int64_t *col0, int64_t *lcols);

/* ---- the activation plan (plan.c) --------------------------------------------- */

/* Activations and scratch live in one allocation laid out by one list: the kind
 * calls plan_take for every buffer twice, first to size (base NULL), then to carve. */
typedef struct plan {
    real *base, *cursor;           /* NULL while sizing */
    size_t total;                  /* elements taken so far */
    size_t kept;                   /* of those, kept from forward for backward */
    size_t union_at, union_max;    /* an open union: where it starts, its largest arm */
} plan_t;

enum plan_use { PLAN_KEPT, PLAN_SCRATCH };
real *plan_take(plan_t *p, size_t n, int use);
/* bytes for other element types (indices, doubles), 8-byte aligned in the one
 * allocation (the alignment is decided by the offset, so both passes agree). */
void *plan_take_bytes(plan_t *p, size_t bytes, int use);
/* Scratch that is never live at the same time shares memory: between begin and end,
 * each arm (the first opened by begin, the next by each plan_union_arm) takes its
 * buffers from the union's start; the union is as large as its largest arm. Only
 * PLAN_SCRATCH buffers inside; no nesting. */
void plan_union_begin(plan_t *p);
void plan_union_arm(plan_t *p);
void plan_union_end(plan_t *p);

/* ---- row blocks ------------------------------------------------------------- */

/* Rows [off[b], off[b + 1]) of a batch belong to block b (its tower). */
typedef struct blocks {
    int n;
    const int64_t *off;
} blocks_t;

static inline int64_t blocks_rows(const blocks_t *b, int k) { return b->off[k + 1] - b->off[k]; }

/* ---- towered linear (linear.c) ---------------------------------------------------
 * One weight per block, w[k] its table index: Y[rows of k] = X[rows of k] W_k with
 * X: (N, in), W_k: this rank's (in, out) slice, Y: (N, out). Under the ScaLAPACK
 * backend the same product runs as PSGEMM on the 2D grid (in, out are then the
 * Megatron widths the activations keep). */
void linear_forward(model_t *m, struct sl_state *sl, const blocks_t *b, const int *w, real *Y,
                    int64_t out, const real *X, int64_t in);
/* dX (+)= dY W_k^T (accumulate chooses), dW_k += X^T dY. */
void linear_backward(model_t *m, struct sl_state *sl, const blocks_t *b, const int *w, real *dX,
                     bool accumulate, const real *dY, int64_t out, const real *X, int64_t in);

/* ---- norms (norm.c) ------------------------------------------------------------- */

/* Y = RMSNorm(X; w_k) row-wise over d, per block; rstd: (N). */
void norm_forward(model_t *m, const blocks_t *b, const int *w, real *Y, real *rstd, const real *X,
                  int64_t d, real eps);
/* dX += backward of the line above; dw_k += its weight gradient. */
void norm_backward(model_t *m, const blocks_t *b, const int *w, real *dX, const real *dY,
                   const real *X, const real *rstd, int64_t d);
/* QK-norm: RMSNorm of each head's hd values of (N, hl * hd), weight slice per head;
 * rstd: (N * hl). */
void qknorm_forward(model_t *m, const blocks_t *b, const int *w, real *Y, real *rstd,
                    const real *X, int hl, int64_t hd, real eps);
void qknorm_backward(model_t *m, const blocks_t *b, const int *w, real *dX, const real *dY,
                     const real *X, const real *rstd, int hl, int64_t hd);

/* ---- rotary embedding (attention.c) --------------------------------------------- */

typedef struct rope {
    int64_t T, hd;
    real *cos, *sin;               /* (T, hd/2): angle i * theta^(-2j/hd) */
} rope_t;

void rope_init(rope_t *r, int64_t T, int64_t hd, double theta);
void rope_free(rope_t *r);

/* ---- attention (attention.c) -----------------------------------------------------
 * Which keys row i of a query sequence sees: keys [0, hi[i]) of the key sequence.
 * One representation covers every kind the model kinds need:
 *   MASK_CAUSAL               hi[i] = i + 1
 *   MASK_CAUSAL_SPANS         hi[i] = the end of i's bidirectional span (an image),
 *                             i + 1 outside spans
 *   MASK_BIDIRECTIONAL        hi[i] = T_k
 *   MASK_CROSS                another stream's keys, sorted by position: hi[i] = how
 *                             many of them come before query i; 0 gives a zero row
 * The kind builds hi per sequence (B x T_q) in attn_mask_build; causal needs none. */
enum mask_kind { MASK_CAUSAL, MASK_CAUSAL_SPANS, MASK_BIDIRECTIONAL, MASK_CROSS };

typedef struct attn_mask {
    int kind;
    int64_t Tq, Tk;
    int64_t *hi;                   /* visible-prefix lengths: sequence b's row i is */
    int64_t stride;                /* hi[b * stride + i]; stride 0: one row for all */
} attn_mask_t;

/* The causal mask of sequences of T: hi[i] = i + 1 for every sequence. */
void attn_mask_causal(attn_mask_t *mk, int64_t T);
/* The bidirectional mask of sequences of T: hi[i] = T for every sequence (with
 * attn_geom_t.rope NULL for positions that carry their own order). */
void attn_mask_bidirectional(attn_mask_t *mk, int64_t T);
/* Causal with bidirectional spans, for up to max_seqs sequences of T; each
 * sequence's rows are set by attn_mask_set_spans. */
void attn_mask_spans(attn_mask_t *mk, int64_t T, int max_seqs);
/* Sequence b's rows from span ids (T): a maximal run of equal non-zero ids is one
 * span, and a row inside it sees up to the span's end; id 0 is causal. */
void attn_mask_set_spans(attn_mask_t *mk, int b, const int32_t *span);
void attn_mask_free(attn_mask_t *mk);

/* Attention of B sequences of T positions (cross-attention: queries of one stream,
 * keys and values of another laid out alike, the mask saying what is visible), hl heads of hd, with rows in grouped
 * order: inv[b T + i] is the grouped row of sequence position i of sequence b. */
typedef struct attn_geom {
    int B, hl;
    int64_t T, hd, dl;             /* dl = hl * hd: the width of q, k, v rows */
    const int64_t *inv;
    const rope_t *rope;            /* NULL: no rotation (cross-attention) */
    const attn_mask_t *mask;
} attn_geom_t;

/* What forward keeps for backward (B, hl, T, hd) / (B, hl, T, T), and scratch. */
typedef struct attn_acts {
    real *qa, *ka, *va;            /* sequence order, RoPE applied to q and k */
    real *p;                       /* softmax probabilities, zero outside the mask */
} attn_acts_t;
typedef struct attn_scratch {
    real *o;                       /* (T, hd) one head's output / its gradient */
    real *dp;                      /* (T, T) */
    real *dqa, *dka, *dva;         /* (B, hl, T, hd) */
} attn_scratch_t;

/* att (N, dl) = softmax(mask(q k^T / sqrt(hd))) v per head, from q, k, v (N, dl)
 * in grouped rows; q, k rotated by RoPE in the copy to sequence order. */
void attention_forward(const attn_geom_t *g, attn_acts_t *A, attn_scratch_t *S, real *att,
                       const real *q, const real *k, const real *v);
/* dq, dk, dv (N, dl), overwritten, from datt (N, dl). */
void attention_backward(const attn_geom_t *g, const attn_acts_t *A, attn_scratch_t *S, real *dq,
                        real *dk, real *dv, const real *datt);

/* ---- cross-attention (xattn.c) ---------------------------------------------------
 * Queries of one stream, B sequences of Tq rows in sequence order (row b Tq + i),
 * attend to another stream's keys and values, B sequences of Tk positions, key j of
 * sequence b at row kinv[b Tk + j] (the other stream's grouped rows); query row
 * b Tq + i sees the keys [0, hi[b Tq + i]) of its sequence (Tk: all of them; 0: a
 * zero row). No RoPE: positions carry their own order. Heads hl of hd, dl = hl hd. */
typedef struct xattn_geom {
    int B, hl;
    int64_t Tq, Tk, hd, dl;
    const int64_t *kinv;           /* (B Tk) */
    const int64_t *hi;             /* (B Tq) */
} xattn_geom_t;
typedef struct xattn_acts {
    real *qa;                      /* (B, hl, Tq, hd) kept */
    real *ka, *va;                 /* (B, hl, Tk, hd) kept */
    real *p;                       /* (B, hl, Tq, Tk) kept: probabilities, zero where not visible */
} xattn_acts_t;
typedef struct xattn_scratch {
    real *o;                       /* (Tq, hd) */
    real *dp;                      /* (Tq, Tk) */
    real *dqa;                     /* (Tq, hd) */
    real *dka, *dva;               /* (Tk, hd) */
} xattn_scratch_t;

/* att (B Tq, dl) = per head softmax(mask(q k^T / sqrt(hd))) v; q (B Tq, dl), k, v rows
 * of the other stream (dl wide). */
void xattn_forward(const xattn_geom_t *g, xattn_acts_t *A, xattn_scratch_t *S, real *att, const real *q,
                   const real *k, const real *v);
/* dq (B Tq, dl) and dk, dv at the key rows (overwritten; other rows untouched) from
 * datt. */
void xattn_backward(const xattn_geom_t *g, const xattn_acts_t *A, xattn_scratch_t *S, real *dq, real *dk, real *dv,
                    const real *datt);

/* ---- the FFN slot (ffn.c) --------------------------------------------------------
 * A block's FFN: for now the dense SwiGLU per tower, z = (silu(x W_1) * (x W_3)) W_2,
 * x: (N, d), u, w, s: (N, fl), z: (N, d) before the caller's g all-reduce. A mixture
 * of experts fills the same slot later (experts as blocks of gathered rows). */
typedef struct ffn_weights {
    const int *w1, *w3, *w2;       /* per block */
} ffn_weights_t;
typedef struct ffn_acts {
    real *u, *w, *s;               /* kept: W_1 out, W_3 out, silu(u) * w */
} ffn_acts_t;
typedef struct ffn_scratch {
    real *du, *dw, *ds;            /* (N, fl) */
} ffn_scratch_t;

void ffn_forward(model_t *m, struct sl_state *sl, const blocks_t *b, const ffn_weights_t *f,
                 ffn_acts_t *A, real *z, const real *x, int64_t d, int64_t fl, int64_t N);
/* dx (N, d) overwritten (this rank's part, before the caller's f all-reduce). */
void ffn_backward(model_t *m, struct sl_state *sl, const blocks_t *b, const ffn_weights_t *f,
                  const ffn_acts_t *A, ffn_scratch_t *S, real *dx, const real *dz, const real *x,
                  int64_t d, int64_t fl, int64_t N);

/* ---- the mixture-of-experts FFN slot (moe.c) ---------------------------------------
 * For one block of n rows (one tower's tokens of a micro-batch): router logits and
 * probabilities (n, E), expert choice per routing group, each chosen row gathered
 * into its expert's rows of xe (rows, d), the experts as FFN blocks over xe, and
 * z[t] = sum over the experts e that took t of p[t, e] FFN_e(x[t]). */
typedef struct moe_geom {
    int E;                         /* experts */
    double capacity;               /* k = ceil(capacity x group rows / E) */
    bool eval_top1;                /* forward without gradient: top-1 token choice */
    bool expert_parallel;          /* whole experts per TP rank */
    int tp_rank, tp_size;
    int64_t d, fl;                 /* model width; this rank's expert FFN width */
} moe_geom_t;

/* Expert e runs on this rank: every expert when sharded, its own under expert
 * parallelism (experts [r E / tp, (r + 1) E / tp) on TP rank r). */
static inline bool moe_runs_here(const moe_geom_t *g, int e)
{
    return !g->expert_parallel || e / (g->E / g->tp_size) == g->tp_rank;
}

typedef struct moe_weights {
    int router;                    /* (d, E), replicated */
    const int *w1, *w3, *w2;       /* per expert; -1 for experts another rank holds */
} moe_weights_t;

/* What forward keeps (capacities: n up to N rows, rows up to the plan's bound). */
typedef struct moe_acts {
    int64_t n;
    real *logits, *probs;          /* (N, E) */
    double *lse;                   /* (N) log-sum-exp of the logits, for the z-loss */
    double zloss_sum;              /* sum over the n rows of lse^2 */
    int64_t *rows, *off;           /* expert e took rows[off[e] .. off[e+1]) (in row order) */
    int64_t *scratch;              /* (max(N, E)) */
    int n_run;                     /* experts run here, their ids, and their blocks in xe */
    int *run;
    int64_t *run_off;
    int *w1, *w3, *w2;             /* the run experts' tensors, for the FFN layer */
    real *xe, *ye;                 /* (rows, d) gathered inputs, expert outputs */
    ffn_acts_t ffn;                /* (rows, fl) */
} moe_acts_t;
typedef struct moe_scratch {
    real *dp;                      /* (N, E) */
    real *dye, *dxe;               /* (rows, d) */
    ffn_scratch_t fs;              /* (rows, fl) */
} moe_scratch_t;

/* k of a routing group of n rows. */
int64_t moe_capacity_rows(const moe_geom_t *g, int64_t n);
/* Routing of n rows with probabilities probs (n, E): expert choice within each group
 * [group_off[q], group_off[q+1]) (ties to the earlier row), or top1 (each row to its
 * most probable expert, ties to the lower expert). rows/off as in moe_acts_t;
 * scratch: max(n, E) values. */
void moe_route(const moe_geom_t *g, const real *probs, int64_t n, const int64_t *group_off,
               int n_groups, bool top1, int64_t *rows, int64_t *off, int64_t *scratch);
/* z (n, d) overwritten with this rank's part (the caller's g all-reduce completes
 * it); eval: a forward without gradient (routing by g->eval_top1). */
void moe_forward(model_t *m, struct sl_state *sl, const moe_geom_t *g, const moe_weights_t *w,
                 moe_acts_t *A, real *z, const real *x, int64_t n, const int64_t *group_off,
                 int n_groups, bool eval);
/* dx (n, d) overwritten with this rank's part (before the caller's f all-reduce);
 * router and expert gradients accumulated. zloss_scale: d(objective)/d(sum lse^2). */
void moe_backward(model_t *m, struct sl_state *sl, const moe_geom_t *g, const moe_weights_t *w,
                  const moe_acts_t *A, moe_scratch_t *S, real *dx, const real *dz, const real *x,
                  real zloss_scale);

/* ---- continuous vectors in and out (patch.c) -------------------------------------
 * One replicated weight W (in, out), rows contiguous: the patch encoder
 * (patch_dim -> d), the patch decoder (d -> patch_dim) and the timestep embedding's
 * linear (its features -> d); OPT's region, box and frame encoders and the heads
 * that predict features. */
/* Y (n, out) (+)= X (n, in) W (accumulate chooses). */
void vec_linear_forward(model_t *m, int w, real *Y, bool accumulate, const real *X, int64_t n, int64_t in,
                        int64_t out);
/* dW += X^T dY; dX = dY W^T (overwritten) unless dX is NULL (inputs that are data). */
void vec_linear_backward(model_t *m, int w, real *dX, const real *dY, const real *X, int64_t n, int64_t in,
                         int64_t out);
/* F (n, dim): the sinusoidal features of integer timesteps, sin then cos of
 * t x 10000^(-j / (dim / 2)), j < dim / 2; the timestep embedding is F W. */
void timestep_features(real *F, const int32_t *t, int64_t n, int64_t dim);

/* ---- losses (loss.c) ---------------------------------------------------------------
 * Each adds per-modality sums and counts, by the modality of the target. */

/* Softmax cross-entropy of logits (N, V) against target[perm[g]] for row g (perm NULL:
 * target[g]): loss_sum[mod] += -log p, count[mod]++; the logits become
 * d(scale * sum of losses)/d logits (scale 0: just the loss). */
void loss_cross_entropy(real *logits, int64_t N, int64_t V, const int32_t *target,
                        const int64_t *perm, const vocab_t *vocab, real scale, double *loss_sum,
                        int64_t *count);
/* The same over the rows with skip[g] == 0 (skip NULL: every row); a skipped row
 * adds nothing and its logits become 0 (no gradient). row_loss (NULL: not wanted)
 * gets each row's loss, 0 for skipped rows. */
void loss_cross_entropy_rows(real *logits, int64_t N, int64_t V, const int32_t *target, const int64_t *perm,
                             const vocab_t *vocab, real scale, const uint8_t *skip, double *row_loss,
                             double *loss_sum, int64_t *count);
/* Mean squared error per row of n rows of P: loss_r = (1/P) sum_j (pred - target)^2,
 * loss_sum[mod] += loss_r, count[mod]++ (one count per row); pred becomes
 * d(scale * sum_r loss_r)/d pred = (2 scale / P)(pred - target) (scale 0: just the
 * loss, pred unchanged). Regression and the diffusion noise objective. */
void loss_mse(real *pred, const real *target, int64_t n, int64_t P, int mod, real scale, double *loss_sum,
              int64_t *count);
/* Softmax cross-entropy of n rows of C logits against label[r], every row counted
 * under modality mod; correct (NULL: not wanted) += rows whose argmax (lower class on
 * a tie) is the label. logits become d(scale * sum of losses)/d logits. */
void loss_classify(real *logits, int64_t n, int64_t C, const int32_t *label, int mod, real scale,
                   double *loss_sum, int64_t *count, int64_t *correct);
/* Contrastive loss with cosine similarity (InfoNCE): prediction q_i (n, P) against
 * the keys K (nk, P), positive pos[i]: loss_i = -log softmax_j(cos(q_i, k_j) / tau)[pos_i],
 * ||x|| = sqrt(sum x^2 + 1e-12). q becomes d(scale * sum of losses)/d q (K is data);
 * sim_pos (NULL: not wanted) gets cos(q_i, k_pos_i). work: n P + nk P + n nk + n. */
void loss_contrastive(real *q, int64_t n, const real *K, int64_t nk, int64_t P, const int64_t *pos, double tau,
                      int mod, real scale, real *work, double *loss_sum, int64_t *count, double *sim_pos);

#endif
