/* Parameter and FLOP counts: the one place they are defined (DESIGN.md §3). Used
 * by training, the run record and `motscale flops`. */
#ifndef MOTSCALE_FLOPS_H
#define MOTSCALE_FLOPS_H

#include <stdint.h>

#include "motscale/config.h"

#define FLOPS_FORMULA_VERSION "1 (3 x forward; 2 per multiply-add; causal attention 2*s*d)"

typedef struct flops_report {
    int64_t params_embedding;      /* embedding table + output head */
    int64_t params_per_tower;      /* every non-embedding tensor of one tower */
    int64_t params_nonembedding;   /* n_towers x params_per_tower */
    int64_t params_total;
    int64_t params_active_per_token; /* embedding + head + one tower */
    /* forward FLOPs per token, by term */
    double fwd_qkvo, fwd_ffn, fwd_attn, fwd_head;
    double fwd_per_token, bwd_per_token, train_per_token;
    /* the matrix terms that gemm() issues with the same shapes (q,k,v,o, SwiGLU,
     * head), per token for training: what the GEMM counter is compared against */
    double train_matrix_per_token;
} flops_report_t;

void flops_compute(flops_report_t *r, const config_t *cfg, int32_t vocab_size);

/* Training FLOPs of a step from per-modality target-token counts:
 * sum_m tokens_m x train FLOPs per token of tower_of[m]. */
double flops_train_step(const flops_report_t *r, const config_t *cfg, const int64_t *tokens_by_modality);

#endif
