/* Parameter and FLOP counts (DESIGN.md §3): what each model kind reports about
 * itself (model_flops), in one shape for `motscale flops`, the run record and the
 * trainer's FLOP column. A multiply-add counts 2; training is 3 x forward. The
 * tower transformer's derivation is in src/model/tower.c and docs/model.md. */
#ifndef MOTSCALE_FLOPS_H
#define MOTSCALE_FLOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"

#define FLOPS_FORMULA_VERSION "1 (3 x forward; 2 per multiply-add; causal attention 2*s*d)"
#define FLOPS_MAX_TERMS 16

/* Which tokens a forward term applies to: every token, the tokens of towers
 * without experts, the tokens of towers with experts, or the image modality's
 * (continuous patches, report field image_modality). */
enum flops_scope { FLOPS_ALL, FLOPS_DENSE_FFN, FLOPS_EXPERTS, FLOPS_IMAGE };

/* One line of the count: a parameter group, or a forward FLOP term per token. */
typedef struct flops_term {
    char name[40];
    double value;
    bool matrix;                   /* FLOP terms: issued by gemm() with these shapes */
    int scope;                     /* FLOP terms: enum flops_scope */
} flops_term_t;

typedef struct flops_report {
    int n_params, n_fwd;
    flops_term_t params[FLOPS_MAX_TERMS];   /* parameter groups, in print order */
    flops_term_t fwd[FLOPS_MAX_TERMS];      /* forward FLOPs per token, by term */
    int64_t params_total;
    int64_t params_active_per_token;
    double fwd_per_token, bwd_per_token, train_per_token;
    /* the matrix terms that gemm() issues with the same shapes, per token for
     * training: what the GEMM counter is compared against */
    double train_matrix_per_token;
    /* training FLOPs per token of each modality's tower (equal for the tower
     * transformer's dense towers, which share shapes; a tower with experts adds its
     * router and its experts at their capacity) */
    int n_modalities;
    double train_per_token_of[MAX_MODALITIES];
    /* experts: training FLOPs of one expert row of one layer (3 x 2 x 3 d f), and the
     * part of train_per_token_of that is experts at their nominal capacity */
    double expert_row_train;
    double expert_train_of[MAX_MODALITIES];
    /* the modality FLOPS_IMAGE terms apply to; -1: none (set before flops_finish) */
    int image_modality;
} flops_report_t;

/* Add a parameter group or a forward term; the totals follow in flops_finish. */
void flops_add_params(flops_report_t *r, const char *name, double count);
void flops_add_fwd(flops_report_t *r, const char *name, double per_token, bool matrix);
void flops_add_fwd_scoped(flops_report_t *r, const char *name, double per_token, bool matrix, int scope);
/* Forward, backward (2 x forward) and training totals from the forward terms, per
 * modality: modality m counts the FLOPS_ALL terms and the FLOPS_EXPERTS terms when
 * bit m of expert_modalities is set, else the FLOPS_DENSE_FFN terms. The headline
 * fwd/bwd/train_per_token are the costliest modality's. */
void flops_finish(flops_report_t *r, int n_modalities, uint32_t expert_modalities);
/* The value of the term called name (params or fwd), NaN when absent. */
double flops_term(const flops_report_t *r, const char *name);

/* Training FLOPs of a step from per-modality input-token counts (a position costs
 * what the tower of its input token costs): sum_m tokens_m x train FLOPs per token of modality m; with expert_rows >= 0 (the
 * rows every expert of every layer took in the step) the experts are counted at
 * those rows x expert_row_train instead of at their nominal capacity. */
double flops_train_step(const flops_report_t *r, const int64_t *tokens_by_modality, double expert_rows);

#endif
