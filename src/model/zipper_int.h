/* The zipper kind's state (zipper.c), private to src/model and open to the white-box
 * tests: two tower stacks of the tower transformer, each with its input MLP and its
 * gated cross-attention blocks, over the rows of its own stream. */
#ifndef MOTSCALE_MODEL_ZIPPER_INT_H
#define MOTSCALE_MODEL_ZIPPER_INT_H

#include "tower_int.h"

/* Roles of the fusion tensors (init seeds), after the tower transformer's. */
enum zipper_role {
    ZR_MLP_A = ROLE_N, ZR_MLP_B, ZR_MLP_GATE,
    ZR_PROJ, ZR_XNORM, ZR_XQ, ZR_XK, ZR_XV, ZR_XO, ZR_XGATE,
    ZR_FNORM, ZR_FW1, ZR_FW3, ZR_FW2, ZR_FGATE,
};

/* A gated cross-attention block of tower A (queries) over tower B (keys, values):
 * its tensor indices and what forward keeps. */
typedef struct cross_block {
    int proj, norm, wq, wk, wv, wo, gate_a, fnorm, w1, w3, w2, gate_f;
    real *in;                /* (N, dA) the block input: the output of A's layer */
    real *xn, *rs;           /* RMSNorm_x(in), its rstd */
    real *u;                 /* (N, dA) B's block input projected to A's width */
    attn_acts_t keep;        /* qa, ka, va, p */
    real *att;               /* (N, dlA) */
    real *y;                 /* (N, dA) att W_o after the g all-reduce */
    real *h;                 /* in + tanh(gate_a) y */
    real *hn, *rs_h;         /* RMSNorm_f(h) */
    ffn_acts_t ffn;          /* (N, flA) */
    real *z;                 /* (N, dA) the FFN's output after the g all-reduce */
} cross_block_t;

typedef struct ztower {
    model_shape_t s;         /* the tower as a one-tower dense model */
    tower_impl_t t;          /* its stack: t.N = B x seq_len rows, its stream padded */
    vocab_t vocab;           /* local ids [0, V) in the slot of its modality (the loss) */
    int mod;                 /* its modality in the joint vocabulary */
    int32_t lo;              /* the joint id of local id 0 */
    int iv, K;               /* layers between cross blocks; blocks */
    int first, last;         /* its backbone's tensors: [first, last) of the table */
    int mlp_a, mlp_b, mlp_gate;
    cross_block_t *cb;       /* K blocks; block k follows layer (k + 1) iv - 1 */
    int64_t *pos;            /* (N) window position of each row; seq_len for padding */
    int64_t *len;            /* (max_seqs) real rows of each sequence */
    int32_t *tgt;            /* (N) local target: the stream's next token; -1 none */
    int64_t *rows_t;         /* the rows with a target, in order */
    int32_t *tgt_c;          /* their targets */
    int64_t n_t;
    attn_mask_t xmask;       /* MASK_CROSS over the other tower's rows */
    real *e, *ua, *r, *mo;   /* kept: embedding, e W_a, relu, relu W_b (N, d) */
    real *dx, *t1, *t2;      /* backward scratch (N, d) */
    real *act;
} ztower_t;

typedef struct zipper_impl {
    ztower_t z[ZT_N];
    int64_t *rowof;          /* (seq_len) a window position's row in its stream */
} zipper_impl_t;

#endif
