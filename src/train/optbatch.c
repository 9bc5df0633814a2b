/* OPT in the trainer (optbatch.h): binding a data batch to the model; recall at k. */
#include "optbatch.h"

void opt_bind(model_t *m, const opt_batch_t *b, real *match_logits)
{
    m->opt_in = (model_opt_batch_t){
        .text_in = b->text_in, .text_tgt = b->text_tgt, .text_masked = b->text_masked,
        .region_in = b->region_in, .region_tgt = b->region_tgt, .geom = b->geom,
        .region_class = b->region_class, .region_masked = b->region_masked,
        .audio_in = b->audio_in, .audio_tgt = b->audio_tgt, .frame_masked = b->frame_masked,
        .match = b->match, .match_logits = match_logits,
    };
}

double retrieval_recall(const double *score, int n, int k)
{
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const double *row = score + (size_t)i * (size_t)n;
        int rank = 0;
        for (int j = 0; j < n; j++)
            rank += row[j] > row[i] || (row[j] == row[i] && j < i);
        hits += rank < k;
    }
    return n > 0 ? (double)hits / n : 0;
}
