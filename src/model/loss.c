/* Losses, each adding per-modality sums and counts by the target's modality:
 * softmax cross-entropy (regression, diffusion and contrastive losses join here). */
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
