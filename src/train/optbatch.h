/* OPT (model.kind = opt) in the trainer: the model reads a data batch, and recall at
 * k of a score matrix for the retrieval evaluation. Private to src/train. */
#ifndef MOTSCALE_TRAIN_OPTBATCH_H
#define MOTSCALE_TRAIN_OPTBATCH_H

#include "motscale/model.h"
#include "motscale/optdata.h"

/* Point the model at the batch's slots; match_logits (NULL: not wanted) receives
 * the matching head's logits, (slots, 5). */
void opt_bind(model_t *m, const opt_batch_t *b, real *match_logits);

/* Recall at k of an n x n score matrix (row: query, column: candidate, the right
 * candidate of query i is i): the share of queries whose right candidate ranks
 * among the top k, rank = candidates scoring higher, plus those tied with it at a
 * lower column. */
double retrieval_recall(const double *score, int n, int k);

#endif
