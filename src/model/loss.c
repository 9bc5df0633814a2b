/* Losses, each adding per-modality sums and counts: softmax cross-entropy by the
 * target's modality, the mean squared error (regression, diffusion noise) by the
 * modality the caller names, classification of rows into classes, and the
 * cosine-similarity contrastive loss (InfoNCE). */
#include <math.h>
#include <string.h>

#include "layers.h"
#include "motscale/gemm.h"
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

void loss_classify(real *logits, int64_t n, int64_t C, const int32_t *label, int mod, real scale,
                   double *loss_sum, int64_t *count, int64_t *correct)
{
    /* row r: -log softmax(logits[r])[label[r]]; correct: the argmax (the lower class on
     * a tie) is the label; logits[r] becomes scale * (softmax - onehot) */
    for (int64_t r = 0; r < n; r++) {
        real *z = logits + r * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            best = z[c] > z[best] ? c : best;
        if (correct && best == label[r])
            (*correct)++;
        loss_sum[mod] += cross_entropy_row(z, z, label[r], C, scale);
        count[mod]++;
    }
}

/* ||x|| with a floor: sqrt(sum x^2 + COS_EPS), so an all-zero row has a direction of 0 */
#define COS_EPS 1e-12

static double row_norm(const real *x, int64_t P)
{
    double s = COS_EPS;
    for (int64_t j = 0; j < P; j++)
        s += (double)x[j] * (double)x[j];
    return sqrt(s);
}

void loss_contrastive(real *q, int64_t n, const real *K, int64_t nk, int64_t P, const int64_t *pos, double tau,
                      int mod, real scale, real *work, double *loss_sum, int64_t *count, double *sim_pos)
{
    /* qn_i = q_i / ||q_i||, kn_j = k_j / ||k_j||, c_ij = qn_i . kn_j (one GEMM),
     * loss_i = -log softmax_j(c_ij / tau)[pos_i].  Backward, with g_ij = (p_ij - [j = pos_i]) / tau:
     * dq_i = (sum_j g_ij kn_j - (sum_j g_ij c_ij) qn_i) / ||q_i||  (the second GEMM) */
    real *qn = work, *kn = qn + n * P, *c = kn + nk * P, *qnorm = c + n * nk;
    for (int64_t i = 0; i < n; i++) {
        qnorm[i] = (real)row_norm(q + i * P, P);
        for (int64_t j = 0; j < P; j++)
            qn[i * P + j] = (real)(q[i * P + j] / qnorm[i]);
    }
    for (int64_t k = 0; k < nk; k++) {
        double nrm = row_norm(K + k * P, P);
        for (int64_t j = 0; j < P; j++)
            kn[k * P + j] = (real)(K[k * P + j] / nrm);
    }
    gemm(GEMM_HEAD, false, true, n, nk, P, 1, qn, P, kn, P, 0, c, nk);
    for (int64_t i = 0; i < n; i++) {
        real *row = c + i * nk;
        if (sim_pos)
            sim_pos[i] = row[pos[i]];
        double mx = row[0];
        for (int64_t k = 1; k < nk; k++)
            mx = row[k] > mx ? row[k] : mx;
        double z = 0;
        for (int64_t k = 0; k < nk; k++)
            z += exp((row[k] - mx) / tau);
        loss_sum[mod] += -((row[pos[i]] - mx) / tau - log(z));
        count[mod]++;
        if (scale == 0)
            continue;
        /* row becomes g_ij, then sum_j g_ij c_ij goes with qn_i */
        double gc = 0;
        for (int64_t k = 0; k < nk; k++) {
            double g = (exp((row[k] - mx) / tau) / z - (k == pos[i])) / tau;
            gc += g * row[k];
            row[k] = (real)(g * scale / qnorm[i]);
        }
        for (int64_t j = 0; j < P; j++)
            q[i * P + j] = (real)(-gc * scale / qnorm[i] * qn[i * P + j]);
    }
    if (scale != 0)
        gemm(GEMM_HEAD, false, false, n, P, nk, 1, c, nk, kn, P, 1, q, P);
}
