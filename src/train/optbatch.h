/* OPT (model.kind = opt) in the trainer: the model reads a data batch, and recall at
 * k of a score matrix for the retrieval evaluation. Private to src/train. */
#ifndef MOTSCALE_TRAIN_OPTBATCH_H
#define MOTSCALE_TRAIN_OPTBATCH_H

#include "motscale/data.h"
#include "motscale/mesh.h"
#include "motscale/model.h"
#include "motscale/optdata.h"

/* Point the model at the batch's slots; match_logits (NULL: not wanted) receives
 * the matching head's logits, (slots, 5). */
void opt_bind(model_t *m, const opt_batch_t *b, real *match_logits);

/* Retrieval over the first `pool` held-out scenes, scored by the matching head, in
 * 5 directions: text -> image, image -> text, text -> audio, audio -> text,
 * text+audio -> image; recall gets R@1, R@5, R@10 of each (15 values, the same on
 * every rank). Queries are dealt over the DP ranks. */
#define OPT_RETRIEVAL_DIRECTIONS 5
void opt_retrieval(model_t *m, data_t *held, int pool, int micro_batch, const mesh_t *mesh, double *recall);

/* Per task, from the model's sums: the mean item loss, and the share predicted
 * right (MLM, region classification, matching; NaN for the regressions and the
 * contrastive loss, and for a task not computed). */
void opt_task_means(const model_t *m, double *loss, double *accuracy);

/* Recall at k of an n x n score matrix (row: query, column: candidate, the right
 * candidate of query i is i): the share of queries whose right candidate ranks
 * among the top k, rank = candidates scoring higher, plus those tied with it at a
 * lower column. */
double retrieval_recall(const double *score, int n, int k);

#endif
