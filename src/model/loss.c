/* Losses, each adding per-modality sums and counts: softmax cross-entropy by the
 * target's modality, and the mean squared error (regression, diffusion noise) by the
 * modality the caller names (contrastive losses join here). */
#include <string.h>

#include "layers.h"
#include "motscale/kernels.h"

void loss_cross_entropy(real *logits, int64_t N, int64_t V, const int32_t *target,
                        const int64_t *perm, const vocab_t *vocab, real scale, double *loss_sum,
                        int64_t *count)
{
    /* row g: -log softmax(logits[g])[y], y = target[perm[g]]; logits[g] becomes
     * scale * (softmax - onehot(y)) */
    for (int64_t g = 0; g < N; g++) {
        int32_t y = target[perm ? perm[g] : g];
        int mod = vocab_modality(vocab, y);
        loss_sum[mod] += cross_entropy_row(logits + g * V, logits + g * V, y, V, scale);
        count[mod]++;
    }
}

void loss_cross_entropy_rows(real *logits, int64_t N, int64_t V, const int32_t *target, const int64_t *perm,
                             const vocab_t *vocab, real scale, const uint8_t *skip, double *row_loss,
                             double *loss_sum, int64_t *count)
{
    for (int64_t g = 0; g < N; g++) {
        if (skip && skip[g]) {
            memset(logits + g * V, 0, (size_t)V * sizeof(real));
            if (row_loss)
                row_loss[g] = 0;
            continue;
        }
        int32_t y = target[perm ? perm[g] : g];
        int mod = vocab_modality(vocab, y);
        double l = cross_entropy_row(logits + g * V, logits + g * V, y, V, scale);
        loss_sum[mod] += l;
        count[mod]++;
        if (row_loss)
            row_loss[g] = l;
    }
}

void loss_mse(real *pred, const real *target, int64_t n, int64_t P, int mod, real scale, double *loss_sum,
              int64_t *count)
{
    /* loss_r = (1/P) sum_j (pred_rj - target_rj)^2;  d/d pred_rj = (2 scale / P)(pred_rj - target_rj) */
    real f = (real)(2.0 * (double)scale / (double)P);
    for (int64_t r = 0; r < n; r++) {
        double acc = 0;
        for (int64_t j = 0; j < P; j++) {
            double e = (double)pred[r * P + j] - (double)target[r * P + j];
            acc += e * e;
            if (scale != 0)
                pred[r * P + j] = f * (pred[r * P + j] - target[r * P + j]);
        }
        loss_sum[mod] += acc / (double)P;
        count[mod]++;
    }
}
