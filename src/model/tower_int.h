/* The tower transformer's state, shared by tower.c (the table, the plan, attention
 * and the block) and tower_ffn.c (the FFN slot of each tower: dense or experts).
 * Private to src/model. */
#ifndef MOTSCALE_MODEL_TOWER_INT_H
#define MOTSCALE_MODEL_TOWER_INT_H

#include "layers.h"
#include "motscale/tower.h"

/* Rows of the head per block: the (HEAD_ROWS, V) logits of one block are all that is
 * held of them (4 MiB at V = 4096). */
#define HEAD_ROWS 256

enum dim { DIM_ONE, DIM_D, DIM_F, DIM_V };

/* A block's activations: what forward keeps for backward, by layer. */
typedef struct layer_acts {
    real *x;                 /* (N, d)  block input (residual stream) */
    real *xn, *rs_a;         /* pre: RMSNorm_attn(x) and its rstd */
    real *q, *k, *rs_q, *rs_k; /* qk_norm: raw q, k (N, dl) and rstd (N hl) */
    attn_acts_t att_keep;    /* qa, ka, va, p */
    real *att;               /* (N, dl) attention output, grouped rows */
    real *y, *rs_y;          /* swin: a W_o after the g all-reduce, its norm's rstd */
    real *h;                 /* (N, d) residual after attention */
    real *hn, *rs_h;         /* pre: RMSNorm_ffn(h) */
    ffn_acts_t ffn;          /* dense towers' u, w, s (N, fl) */
    moe_acts_t *moe;         /* per tower, for towers with experts (else unused) */
    moe_acts_t moe_pool;     /* the layer's arrays the towers with experts carve */
    real *z, *rs_z;          /* swin: s W_2 after the g all-reduce, its norm's rstd */
} layer_acts_t;

typedef struct tower_impl {
    int d, L, H, hd, f, T, P;          /* shape; P towers */
    int hl, dl, fl;                    /* local heads, attention width, FFN width */
    int64_t V, N;                      /* vocabulary; rows of the current micro-batch */
    int B;
    int *index;                        /* [(tower * (L + 1) + layer + 1) * ROLE_N + role] */
    int embed, head;
    struct sl_state *sl;               /* ScaLAPACK grids; NULL for Megatron */
    int32_t *tok_in, *tok_tgt;         /* (N) sequence order */
    int64_t *perm, *inv;               /* perm[g] = n, inv[n] = g */
    int64_t tower_off[MAX_MODALITIES + 1];
    blocks_t rows;                     /* the towers' row blocks of this micro-batch */
    rope_t rope;
    attn_mask_t mask;
    real grad_scale;
    real *act;                         /* the plan's one allocation */
    layer_acts_t *la;
    real *x_final, *rs_f, *dhf;        /* kept: last block's output, its final norm's rstd,
                                        * the loss's gradient at the final norm's output */
    real *hf, *logits;                 /* forward scratch: the final norm's output, the
                                        * logits of one block of HEAD_ROWS rows */
    /* backward scratch */
    real *dres, *dtmp, *xq, *xk, *xv, *dq, *dk, *dv, *dqn, *dkn, *datt;
    attn_scratch_t as;
    ffn_scratch_t fs;
    /* mixture of experts: the geometry, the expert tensors, and backward's scratch */
    moe_geom_t moe;
    int *router;                       /* [(tower * L + layer)], -1 without experts */
    int *expert;                       /* [((tower * L + layer) * E + e) * 3 + {w1, w3, w2}] */
    int64_t rows_max;                  /* expert rows a block may gather */
    moe_acts_t *moe_acts;              /* [layer * P + tower] */
    moe_scratch_t ms;
    real *moe_logits;                  /* (N, E) router logits, forward scratch */
    int64_t *moe_sort;                 /* (max(N, E)) routing sort */
    int64_t *groups;                   /* (max_seqs + 2) routing group offsets */
    /* continuous images (model.image_objective = diffusion; tower_image.c): the
     * patch encoder, timestep embedding and decoder tensors; this micro-batch's
     * patch rows (grouped order, ascending) and where each reads the images arrays */
    bool diffusion;
    int pd;                            /* patch_dim */
    int patch_in, time_embed, patch_out;
    int64_t n_img;
    int64_t *img_row, *img_src;        /* (N) */
    uint8_t *row_img, *ce_skip;        /* (N) grouped row is a patch / has no cross-entropy */
    int32_t *span;                     /* (T) span ids of one sequence, for the mask */
    double *row_ce;                    /* (N) each row's cross-entropy (captions) */
    real *img_xt, *img_f;              /* kept: (n_img, pd) x_t, (n_img, d) timestep features */
    real *img_h, *img_pred, *img_eps;  /* forward scratch: (n_img, d) final-norm rows, (n_img, pd) */
    /* per-tower tensor indices of one layer, for the layer calls */
    int *w;                            /* [(layer * ROLE_N + role) * P + tower] */
} tower_impl_t;

static inline int idx_slot(const tower_impl_t *t, int role, int tower, int layer)
{
    return ((tower * (t->L + 1)) + layer + 1) * ROLE_N + role;
}

/* The per-tower tensor indices of (role, layer), one per row block. */
static inline const int *W(const tower_impl_t *t, int role, int layer)
{
    return t->w + ((size_t)(layer + 1) * ROLE_N + (size_t)role) * (size_t)t->P;
}

/* Tower tw has mixture-of-experts FFNs. */
static inline bool tower_has_experts(const model_shape_t *s, int tw) { return s->moe_tower_mask >> tw & 1u; }

/* ---- the tower transformer's pieces, for the kinds that compose towers (zipper) ---- */

/* The tensor list of shape s over vocabulary V, in table order, names prefixed
 * (""), init seeds from tower seed_tower on; t (NULL while only counting) gets the
 * indices. */
void tower_list(const model_shape_t *s, int32_t V, table_builder_t *b, tower_impl_t *t, const char *prefix,
                int seed_tower);
/* Every buffer, in one list: sized when p->base is NULL, carved otherwise. */
void tower_plan(const model_shape_t *s, int32_t V, int tp_size, int max_seqs, plan_t *p, tower_impl_t *t);
/* A tower stack of shape s over vocabulary V in two halves around the table's
 * build (begin: dimensions and index tables; finish: weight lists, row buffers,
 * RoPE, causal mask, the activation plan), and its release (t itself stays). */
void tower_impl_begin(model_t *m, tower_impl_t *t, const model_shape_t *s, int32_t V);
void tower_impl_finish(model_t *m, tower_impl_t *t, const model_shape_t *s);
void tower_impl_release(model_t *m, tower_impl_t *t);
/* Block l's halves over t's rows (t->N, t->B set; the block input in la[l].x):
 * attention from la[l].x to la[l].h, the FFN from la[l].h to x_out; backward with
 * t->dres holding d loss / d x_out on entry and d loss / d la[l].x on exit. */
void attn_half_forward(model_t *m, tower_impl_t *t, int l);
void ffn_half_forward(model_t *m, tower_impl_t *t, int l, real *x_out);
void ffn_half_backward(model_t *m, tower_impl_t *t, int l);
void attn_half_backward(model_t *m, tower_impl_t *t, int l);

/* The FFN tensors of (tower tw, layer l), at the FFN's place in the table: dense
 * W_1, W_3, W_2, or the router and each expert's three; names and seeds as in
 * tower_list. t NULL: counting. */
void tower_ffn_list(const model_shape_t *s, table_builder_t *b, tower_impl_t *t, int tw, int l, const char *prefix,
                    int seed_tower);
/* The FFN's kept activations of layer l (into A), and (layer < 0) its scratch. */
void tower_ffn_plan(const model_shape_t *s, int tp_size, int max_seqs, plan_t *p, layer_acts_t *A, int l);
void tower_ffn_scratch_plan(const model_shape_t *s, int tp_size, int max_seqs, plan_t *p, tower_impl_t *t);
/* The FFN slot's geometry and index tables (after the shape and TP are known, before
 * the table is built), and their release. */
void tower_ffn_init(model_t *m, tower_impl_t *t);
void tower_ffn_free(model_t *m, tower_impl_t *t);
/* z (N, d) = FFN(fin) of block l over every tower, this rank's part (before g). */
void tower_ffn_forward(model_t *m, tower_impl_t *t, int l, real *z, const real *fin);
/* dfin (N, d) from dz, this rank's part (before f). dz and dfin may be one buffer. */
void tower_ffn_backward(model_t *m, tower_impl_t *t, int l, real *dfin, const real *dz, const real *fin);
/* The FFN's forward FLOPs per token and parameters of one tower's layer. */
double tower_ffn_flops(const model_shape_t *s, int tw, double *params);

/* Continuous images (tower_image.c), each a no-op without diffusion. */
/* The shared tensors patch_in (pd x d), time_embed (d x d), patch_out (d x pd),
 * after the head; t NULL: counting. */
void tower_image_list(const model_shape_t *s, table_builder_t *b, tower_impl_t *t);
/* Their buffers, sized or carved with the rest of the plan. */
void tower_image_plan(const model_shape_t *s, int max_seqs, plan_t *p, tower_impl_t *o);
/* After grouping: the patch rows, the rows without cross-entropy, the mask's spans
 * (bidirectional inside each image), and the encoder's inputs. */
void tower_image_prepare(model_t *m, tower_impl_t *t);
/* x0 rows of patches = x_t patch_in + features(t) time_embed. */
void tower_image_embed(model_t *m, tower_impl_t *t, real *x0);
/* After the head and its backward: the decoder's predicted noise, the MSE against
 * eps (by the image modality), and with gradient its backward into dhf; the
 * caption cross-entropy sums. */
void tower_image_loss(model_t *m, tower_impl_t *t, double *loss_sum, int64_t *count);
/* dx0 (N, d) into the encoder's and embedding's weight gradients. */
void tower_image_embed_backward(model_t *m, tower_impl_t *t, const real *dx0);

#endif
