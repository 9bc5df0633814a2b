/* OPT in the trainer (optbatch.h): binding a data batch to the model, the retrieval
 * evaluation by the matching head, recall at k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optbatch.h"

void opt_bind(model_t *m, const opt_batch_t *b, real *match_logits)
{
    m->opt_in = (model_opt_batch_t){
        .text_in = b->text_in, .text_tgt = b->text_tgt, .text_masked = b->text_masked,
        .region_in = b->region_in, .region_tgt = b->region_tgt, .geom = b->geom,
        .region_class = b->region_class, .region_masked = b->region_masked,
        .audio_in = b->audio_in, .audio_tgt = b->audio_tgt, .frame_masked = b->frame_masked,
        .match = b->match, .match_logits = match_logits, .codes = b->codes, .whole = b->whole,
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

/* Direction d's sample for query q and candidate c, and the matching class whose
 * probability scores it (docs/analysis.md "OPT retrieval"): the pair's two
 * modalities from their scenes, the third from a distractor scene outside the pool
 * (pool + q) except for text+audio -> image, where the audio is the query's. */
static void direction_sample(int d, int pool, int q, int c, int64_t *it, int64_t *ii, int64_t *ia, int *cls)
{
    int64_t other = (int64_t)pool + q;
    switch (d) {
    case 0: *it = q, *ii = c, *ia = other, *cls = OPT_MATCH_TEXT_IMAGE; break;  /* text -> image */
    case 1: *it = c, *ii = q, *ia = other, *cls = OPT_MATCH_TEXT_IMAGE; break;  /* image -> text */
    case 2: *it = q, *ii = other, *ia = c, *cls = OPT_MATCH_TEXT_AUDIO; break;  /* text -> audio */
    case 3: *it = c, *ii = other, *ia = q, *cls = OPT_MATCH_TEXT_AUDIO; break;  /* audio -> text */
    default: *it = q, *ii = c, *ia = q, *cls = OPT_MATCH_ALL; break;            /* text+audio -> image */
    }
}

void opt_retrieval(model_t *m, data_t *held, int pool, int micro_batch, const mesh_t *mesh, double *recall)
{
    opt_batch_t *b = data_opt_batch(held);
    int n = pool, cap = micro_batch < b->cap ? micro_batch : b->cap;
    double *score = xcalloc((size_t)n * (size_t)n, sizeof *score);
    real *logits = xcalloc((size_t)cap * OPT_MATCH_N, sizeof *logits);
    double ls[MAX_MODALITIES];
    int64_t ct[MAX_MODALITIES];
    for (int d = 0; d < OPT_RETRIEVAL_DIRECTIONS; d++) {
        memset(score, 0, (size_t)n * (size_t)n * sizeof *score);
        /* queries dealt round-robin over DP ranks; the matrix summed after */
        for (int q = mesh->dp_rank; q < n; q += mesh->dp)
            for (int c0 = 0; c0 < n; c0 += cap) {
                int k = n - c0 < cap ? n - c0 : cap, cls = 0;
                for (int s = 0; s < k; s++) {
                    int64_t it, ii, ia;
                    direction_sample(d, pool, q, c0 + s, &it, &ii, &ia, &cls);
                    opt_batch_compose(b, data_split(held), s, it, ii, ia);
                }
                opt_bind(m, b, logits);
                model_forward(m, NULL, k, 0, ls, ct);
                /* score = log softmax(logits)[cls] */
                for (int s = 0; s < k; s++) {
                    const real *z = logits + s * OPT_MATCH_N;
                    double mx = z[0], sum = 0;
                    for (int j = 1; j < OPT_MATCH_N; j++)
                        mx = z[j] > mx ? z[j] : mx;
                    for (int j = 0; j < OPT_MATCH_N; j++)
                        sum += exp(z[j] - mx);
                    score[(size_t)q * (size_t)n + (size_t)(c0 + s)] = z[cls] - mx - log(sum);
                }
            }
        if (mesh->dp > 1)
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, score, n * n, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
        const int ks[3] = {1, 5, 10};
        for (int j = 0; j < 3; j++)
            recall[d * 3 + j] = retrieval_recall(score, n, ks[j]);
    }
    free(score);
    free(logits);
}

void opt_task_means(const model_t *m, double *loss, double *accuracy)
{
    for (int k = 0; k < OPT_TASKS; k++) {
        bool classifies = k == OPT_TASK_MLM || k == OPT_TASK_MRC || k == OPT_TASK_MATCH || k == OPT_TASK_TREC ||
                          k == OPT_TASK_IREC;
        double n = (double)m->opt_count[k];
        loss[k] = n > 0 ? m->opt_loss[k] / n : NAN;
        accuracy[k] = n > 0 && classifies ? (double)m->opt_correct[k] / n : NAN;
    }
}
