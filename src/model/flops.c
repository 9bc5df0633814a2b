/* Model FLOPs and parameters.
 *
 * Derivation (per token, forward; a multiply-add counts 2):
 *   q, k, v, o projections   4 matmuls of (1 x d)(d x d)          2 * 4 d^2
 *   SwiGLU                    W_1, W_3: (1 x d)(d x f); W_2 (f x d)  2 * 3 d f
 *   attention                 QK^T and AV: position i attends to i+1 keys, 2 * 2 * d * (i+1);
 *                             averaged over a sequence of s positions ~ 2 * s * d ("half the square")
 *   head                      (1 x d)(d x V)                        2 * d V
 * Backward costs two forward matmuls per forward matmul (input and weight
 * gradients), so training is 3 x forward. Excluded, and said so in docs/model.md:
 * norms, RoPE, softmax, the SwiGLU gate, embedding lookup and the optimizer.
 * Every tower has the same shapes, so MoT and dense of one width have the same
 * FLOPs per token; the count is still taken per modality's tower. */
#include "motscale/flops.h"

void flops_compute(flops_report_t *r, const config_t *cfg, int32_t vocab_size)
{
    double d = cfg->d_model, f = cfg->d_ff, s = cfg->seq_len, V = vocab_size, L = cfg->n_layers;
    int64_t di = cfg->d_model, fi = cfg->d_ff;
    int64_t per_layer = 4 * di * di + 3 * di * fi + 2 * di + (cfg->qk_norm ? 2 * di : 0);
    r->params_embedding = 2 * (int64_t)vocab_size * di;
    r->params_per_tower = cfg->n_layers * per_layer + di; /* + final norm */
    r->params_nonembedding = cfg->n_towers * r->params_per_tower;
    r->params_total = r->params_embedding + r->params_nonembedding;
    r->params_active_per_token = r->params_embedding + r->params_per_tower;

    r->fwd_qkvo = L * 2 * 4 * d * d;
    r->fwd_ffn = L * 2 * 3 * d * f;
    r->fwd_attn = L * 2 * s * d;
    r->fwd_head = 2 * d * V;
    r->fwd_per_token = r->fwd_qkvo + r->fwd_ffn + r->fwd_attn + r->fwd_head;
    r->bwd_per_token = 2 * r->fwd_per_token;
    r->train_per_token = 3 * r->fwd_per_token;
    r->train_matrix_per_token = 3 * (r->fwd_qkvo + r->fwd_ffn + r->fwd_head);
}

double flops_train_step(const flops_report_t *r, const config_t *cfg, const int64_t *tokens_by_modality)
{
    double total = 0;
    for (int m = 0; m < cfg->n_modalities; m++)
        total += (double)tokens_by_modality[m] * r->train_per_token; /* tower_of[m]: same shapes */
    return total;
}
