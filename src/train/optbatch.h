/* OPT's micro-batches and retrieval evaluation (model.kind = opt): samples built
 * from the data module's scenes and draws into the arrays the model reads
 * (model_opt_batch_t), and recall at k of a score matrix. Private to src/train. */
#ifndef MOTSCALE_TRAIN_OPTBATCH_H
#define MOTSCALE_TRAIN_OPTBATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/model.h"
#include "motscale/optdata.h"

typedef struct opt_batch {
    opt_data_params_t p;
    opt_dims_t dm;
    int cap;                                   /* samples it holds */
    int32_t *text_in, *text_tgt, *region_class, *match;
    uint8_t *text_masked, *region_masked, *frame_masked;
    float *region_in, *region_tgt, *geom, *audio_in, *audio_tgt;
    real *match_logits;                        /* (cap, 5) */
    opt_scene_t scene;                         /* scratch */
    opt_draw_t draw;
    /* what each sample was built from: its draw and, per modality, the scene index */
    int64_t source[OPT_N_MODALITIES];
} opt_batch_t;

void opt_batch_init(opt_batch_t *b, const opt_data_params_t *p, int cap);
void opt_batch_free(opt_batch_t *b);
/* Training samples [first, first + n) of a split into slots 0 .. n-1: token masks
 * (BERT's 80/10/10 on text; masked region features and frames zeroed) and the
 * matching swap of each sample's draw; then the model reads them. */
void opt_batch_read(opt_batch_t *b, int split, int64_t first, int n, model_t *m);
/* Slot `slot` = text of scene it, image of scene ii, audio of scene ia, nothing
 * masked and no matching label; a modality given as -1 is absent (text all [MASK],
 * features and frames zero). For retrieval. */
void opt_batch_compose(opt_batch_t *b, int split, int slot, int64_t it, int64_t ii, int64_t ia);
/* Point the model at slots 0 .. n-1 (after opt_batch_compose). */
void opt_batch_bind(opt_batch_t *b, model_t *m);

/* Recall at k of an n x n score matrix (row: query, column: candidate, the right
 * candidate of query i is i): the share of queries whose right candidate ranks
 * among the top k, rank = candidates scoring higher, plus those tied with it at a
 * lower column. */
double retrieval_recall(const double *score, int n, int k);

#endif
