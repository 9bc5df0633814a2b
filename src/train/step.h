/* One optimizer step and one held-out evaluation, over the mesh. Private to
 * src/train. */
#ifndef MOTSCALE_TRAIN_STEP_H
#define MOTSCALE_TRAIN_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/data.h"
#include "motscale/diffusion.h"
#include "motscale/dp.h"
#include "motscale/mesh.h"
#include "motscale/model.h"
#include "motscale/optim.h"

typedef struct step_params {
    int global_batch, micro_batch, seq_len;
    double grad_clip;               /* 0: off */
    lr_schedule_t sched;
    adamw_hp_t adamw;
    /* model.kind = opt with opt.task_mode = sample: each step trains one task, drawn
     * with probability weight / sum of weights from a stream of (seed, step) */
    bool opt_sample;
    uint64_t seed;
} step_params_t;

/* A micro-batch's inputs: the windows and, with continuous images
 * (model.image_objective = diffusion), the data's patches, noise, timesteps and
 * position kinds, and the x_t the model reads, noised with the schedule. */
typedef struct batch {
    int32_t *windows;                 /* micro_batch x (seq_len + 1) */
    int window, P;                    /* seq_len + 1; patch_dim (0: token images) */
    data_images_t im;
    float *xt, *pred;                 /* (micro_batch, window, P) */
    const diffusion_schedule_t *sched;
} batch_t;

/* Buffers for micro_batch windows; P = 0 and sched NULL for token images. */
void batch_init(batch_t *b, int micro_batch, int seq_len, int P, const diffusion_schedule_t *sched);
void batch_free(batch_t *b);
/* Windows [first, first + n) of d; with images also noised (x_t from x0, eps, t) and
 * handed to the model (m->images). */
void batch_read(batch_t *b, data_t *d, int64_t first, int n, model_t *m);
/* Point the model at the batch's images again after changing t or xt. */
void batch_renoise(batch_t *b, int n, model_t *m);

typedef struct step_result {
    double loss_sum[MAX_MODALITIES];  /* summed over the data-parallel group */
    int64_t count[MAX_MODALITIES];
    int64_t tokens;
    int64_t tokens_in[MAX_MODALITIES]; /* input tokens by modality (summed over DP): FLOPs */
    double loss, grad_norm, lr;       /* loss: mean over every target of the global batch */
    bool finite;                      /* loss and gradient norm; false: no update was made */
    double aux_loss;                  /* the router z-loss term, per target token (0 without) */
    double expert_rows;               /* rows every expert of every layer took; -1 without experts
                                       * (m->load holds them by layer, expert and modality) */
    double io_s, comm_s;              /* data reads; TP, DP and loss-reduction waits */
    /* model.kind = opt: per task the item-loss sums, items and items right (summed
     * over DP), and the task trained (opt.task_mode = sample; -1: all) */
    double opt_loss[OPT_TASKS];
    int64_t opt_count[OPT_TASKS], opt_correct[OPT_TASKS];
    int opt_task;
} step_result_t;

/* Step `step` (0-based): this DP rank's micro-batches of windows
 *   step * global_batch + dp_rank * (global_batch / dp) + i * micro_batch + j,
 * gradients all-reduced in buckets overlapped with the last backward, the global
 * norm clipped to grad_clip, AdamW at lr_at(step); under ZeRO-1 (dps->zero) the
 * buckets are reduce-scattered, each rank updates its shards and the parameters are
 * all-gathered. windows holds micro_batch windows.
 * A non-finite loss or norm returns with r->finite false before the update. With
 * experts, m->load and m->aux_loss_sum hold the step's sums over the DP group. */
void train_step(model_t *m, adamw_t *opt, dp_sync_t *dps, data_t *train, batch_t *batch,
                const step_params_t *p, const mesh_t *mesh, int64_t step, step_result_t *r);

/* The per-task sums of an OPT model: zeroed, and summed over the DP group. */
void opt_sums_reset(model_t *m);
void opt_sums_reduce(model_t *m, const mesh_t *mesh);

/* Held-out loss over the first ceil(eval_tokens / seq_len) windows of the held-out
 * split, windows dealt in contiguous runs over DP ranks. Sums by modality into
 * loss_sum / count (reduced over DP). With continuous images, m->caption_loss_sum
 * and caption_count hold the caption cross-entropy of the same windows (reduced),
 * and t_grid >= 1 evaluates every image at that timestep instead of its drawn one.
 * model.kind = opt: a window is a sample, and m->opt_loss, opt_count, opt_correct
 * hold the held-out sums per task (reduced). */
void train_evaluate(model_t *m, data_t *held, int64_t eval_tokens, int seq_len, int micro_batch,
                    const mesh_t *mesh, batch_t *batch, int32_t t_grid, double *loss_sum, int64_t *count);

/* The sampling check (model.sample_steps > 0): DDIM from pure noise over `steps`
 * evenly spaced timesteps for every image of the evaluation windows, starting from
 * the held-out noise eps of each patch (a pure function of the window), the rest of
 * each window as the data has it; scored on the images whose caption comes first
 * and lies whole in the window. Sums over DP of: images, squared error of the sample
 * and of the starting noise against the true image (per element), blobs and blobs
 * the nearest prototype classifies right. */
typedef struct sample_score {
    double images, elements, sample_se, noise_se, blobs, blobs_right;
} sample_score_t;
void train_sample_check(model_t *m, data_t *held, int64_t eval_tokens, int seq_len, int micro_batch,
                        const mesh_t *mesh, batch_t *batch, int steps, int image_len, sample_score_t *sc);

#endif
