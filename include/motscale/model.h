/* The transformer with parameter towers (DESIGN.md §2): dense is one tower, MoT one
 * tower per modality, `towers` any grouping. Parameters, gradients and activations
 * each live in one allocation laid out from the tensor table; a tower's tensors are
 * one contiguous range. Per-token work runs on contiguous per-tower row blocks
 * ("grouped order", one GEMM per tower); attention reads sequence order through
 * the per-batch permutation. Tensor-parallel (Megatron 1D) slices are local. */
#ifndef MOTSCALE_MODEL_H
#define MOTSCALE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/tp.h"

enum tensor_role {
    ROLE_EMBED, ROLE_HEAD,                            /* shared by all towers */
    ROLE_WQ, ROLE_WK, ROLE_WV, ROLE_WO, ROLE_W1, ROLE_W3, ROLE_W2,
    ROLE_NORM_ATTN, ROLE_NORM_FFN, ROLE_QNORM, ROLE_KNORM,
    ROLE_NORM_FINAL,
    ROLE_N
};
enum shard_kind { SHARD_NONE, SHARD_COL, SHARD_ROW };

typedef struct tensor_info {
    char name[64];                 /* documented name, e.g. tower1.layer0.attn.wq */
    int role, tower, layer;        /* tower/layer -1 where not applicable */
    int64_t rows, cols;            /* logical shape, row-major (norms: 1 x d) */
    int64_t lrows, lcols;          /* this rank's slice */
    int64_t row0, col0;            /* where the slice starts in the logical tensor */
    int shard;                     /* enum shard_kind */
    bool decay;                    /* matrices get weight decay, norms do not */
    size_t offset, numel;          /* local slice in the flat buffers, elements */
} tensor_info_t;

typedef struct model {
    /* dimensions */
    int d, n_layers, n_heads, hd, d_ff, seq_len, n_towers, n_modalities;
    int32_t vocab;
    int hl, dl, fl;                /* local heads, local attention width, local ffn width */
    int norm;                      /* enum norm_place */
    bool qk_norm;
    real eps;
    int tower_of[MAX_MODALITIES];
    vocab_t vocab_layout;
    tp_ctx_t tp;
    int tp_backend;                /* enum tp_backend; scalapack: projection matrices hold
                                    * 2D grid blocks (scalapack.h), not Megatron slices */
    struct sl_state *sl;           /* ScaLAPACK grids and scratch; NULL for megatron */

    /* parameters */
    int n_tensors;
    tensor_info_t *tensors;
    int *index;                    /* [(tower * n_layers + layer) * ROLE_N + role]; towerless roles below */
    int embed_idx, head_idx;
    size_t n_local;                /* elements of params (= grads) on this rank */
    real *params, *grads;

    /* batch state (grouped order g; sequence order n = b * seq_len + i) */
    int max_seqs, B;
    int64_t N;
    int32_t *tok_in, *tok_tgt;     /* (N) in sequence order */
    int *perm, *inv;               /* perm[g] = n, inv[n] = g */
    int64_t tower_off[MAX_MODALITIES + 1];
    real *rope_cos, *rope_sin;     /* (seq_len, hd/2) */
    real *act;                     /* every activation and scratch buffer, one allocation */
    struct model_acts *a;          /* named views into act */
    real grad_scale;               /* d loss / d (sum of CE) of the last forward */

    /* Backward progress, for overlapping the data-parallel all-reduce: called with
     * stage 0 once the head and final norms are done, n_layers - l after block l,
     * and n_layers + 1 after the embedding. NULL: no calls. */
    void (*on_stage)(void *ctx, int stage);
    void *on_stage_ctx;
} model_t;

/* The backward stage after which tensor t's gradient is final (see on_stage). */
int model_tensor_stage(const model_t *m, const tensor_info_t *t);

/* Build the tensor table and allocate parameters, gradients and activations for
 * micro-batches of up to max_seqs sequences. tp: the tensor-parallel group. */
void model_build(model_t *m, const config_t *cfg, const vocab_t *v, tp_ctx_t tp, int max_seqs);
void model_free(model_t *m);

/* Layout-independent init: each tensor is drawn whole from a GSL generator seeded
 * by (seed, role, tower, layer) and this rank keeps its slice. */
void model_init_params(model_t *m, uint64_t seed, bool same_towers, double init_std);

/* Forward over B windows of seq_len + 1 tokens. Adds per-modality sums of the
 * cross-entropy (by target token) and target counts into loss_sum / count.
 * grad_scale > 0 also leaves d(grad_scale * sum CE)/d logits for model_backward. */
void model_forward(model_t *m, const int32_t *windows, int B, real grad_scale,
                   double *loss_sum, int64_t *count);
/* Backward of the last forward; accumulates into m->grads. */
void model_backward(model_t *m);
void model_zero_grads(model_t *m);

/* Parameter pointer of (role, tower, layer); NULL if the model has no such tensor. */
real *model_param(const model_t *m, int role, int tower, int layer);
real *model_grad(const model_t *m, int role, int tower, int layer);
const tensor_info_t *model_tensor(const model_t *m, int role, int tower, int layer);

#endif
