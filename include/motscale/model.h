/* The model as the rest of the program sees it: a tensor table over one parameter
 * and one gradient allocation, forward and backward of a micro-batch, per-modality
 * loss sums, and the FLOP and memory counts. What the model is comes from its kind
 * (model.kind -> one entry of the kind table, src/model/kinds.c); the trainer, the
 * optimizer, data parallelism, checkpoints and the run record see only this header.
 * The layer library the kinds are built from is private to src/model (layers.h);
 * docs/architecture.md draws the folders. */
#ifndef MOTSCALE_MODEL_H
#define MOTSCALE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"
#include "motscale/flops.h"
#include "motscale/tp.h"
#include "motscale/vocab.h"

/* Values of model.kind, model.norm and parallel.tp_backend, in the order of their
 * names in the config key table (config_enum_name spells them). */
enum model_kind { MODEL_DENSE, MODEL_MOT, MODEL_TOWERS, MODEL_MOE, MODEL_ZIPPER, MODEL_VOCAB_EXPANSION,
                  MODEL_OPT };
/* zipper.freeze: which pretrained backbones keep their weights */
enum zipper_freeze { FREEZE_NONE, FREEZE_TEXT, FREEZE_SPEECH, FREEZE_BOTH };
/* The two towers of model.kind = zipper, and the checkpoints they start from. */
enum zipper_tower { ZT_TEXT, ZT_SPEECH, ZT_N };
/* Most experts of a mixture-of-experts FFN (model.moe_experts). */
#define MOE_MAX_EXPERTS 64
enum moe_group { MOE_GROUP_BATCH, MOE_GROUP_SEQUENCE };
enum moe_eval { MOE_EVAL_EC, MOE_EVAL_TOP1 };
enum norm_place { NORM_SWIN, NORM_PRE };
enum image_objective { IMAGE_TOKENS, IMAGE_DIFFUSION };
enum tp_backend { TP_MEGATRON, TP_SCALAPACK };

/* OPT (model.kind = opt, docs/model.md "OPT"): a tri-modal encoder. Its cross-modal
 * encoder is shared by the modalities or untied by modality (MoT); its tasks, in the
 * order of their weights and logged losses. */
enum opt_cross { OPT_CROSS_SHARED, OPT_CROSS_MOT };
enum opt_task_mode { OPT_TASKS_SUM, OPT_TASKS_SAMPLE };
enum opt_task { OPT_TASK_MLM, OPT_TASK_MRFR, OPT_TASK_MRC, OPT_TASK_MAFR, OPT_TASK_MAC, OPT_TASK_MATCH,
                OPT_TASK_TREC, OPT_TASK_IREC, OPT_TASKS };
typedef struct opt_shape {
    int text_len, vocab;                /* caption tokens Tt; text ids Vt ([MASK] is 0) */
    int regions, region_dim, classes;   /* R regions of region_dim features; C classes */
    int frames, frame_dim;              /* Ta audio frames of frame_dim */
    int codes, code_book;               /* Tc image codes in [0, code_book) */
    int decoder_layers;                 /* of the text and the image-code decoder; 0: none */
    int unimodal_layers;                /* per modality, before the cross-modal encoder */
    int cross;                          /* enum opt_cross */
    int task_mode;                      /* enum opt_task_mode: for the trainer */
    double temperature;                 /* of the audio contrastive loss */
    double weight[OPT_TASKS];           /* each task's weight in the objective */
} opt_shape_t;

/* Everything that fixes the model's tensors and arithmetic, filled by config_resolve. */
typedef struct model_shape {
    int kind;                           /* enum model_kind */
    int d_model, n_layers, n_heads, d_ff, seq_len;
    int norm;                           /* enum norm_place */
    bool qk_norm;
    double rope_theta, norm_eps;
    int n_modalities, n_towers;
    int tower_of[MAX_MODALITIES];       /* modality -> parameter tower */
    int tp_backend;                     /* enum tp_backend */
    /* mixture of experts: the FFN of the towers in moe_tower_mask (bit t: tower t) */
    uint32_t moe_tower_mask;            /* 0: no experts anywhere */
    int moe_experts;                    /* E */
    double moe_capacity;                /* k = ceil(capacity x group / E) */
    int moe_group;                      /* enum moe_group */
    double moe_zloss;                   /* weight of the router z-loss */
    int moe_eval;                       /* enum moe_eval: routing without gradient */
    bool expert_parallel;               /* whole experts per TP rank */
    /* continuous images (image_objective = diffusion, docs/model.md): the image
     * modality's positions are patches of patch_dim floats, encoded into the
     * residual stream with a timestep embedding and decoded into predicted noise */
    int image_objective;                /* enum image_objective */
    int image_modality;                 /* the modality called image; -1: none */
    int patch_dim;
    int image_len;                      /* patches per image (image_h x image_w), for FLOPs */
    int diffusion_steps;                /* T of the schedule: timesteps 1 .. T */
    double diffusion_weight;            /* lambda: objective = text CE + lambda x image MSE */
    /* zipper: each tower's own shape (zipper.text_*, zipper.speech_*), the layers
     * between cross-attention blocks in each, and the frozen backbones */
    struct zipper_shape {
        int d_model, n_layers, n_heads, d_ff;
        int interval;
        int32_t vocab;                  /* its modality's range of the joint vocabulary */
    } zt[ZT_N];
    int zipper_freeze;                  /* enum zipper_freeze */
    opt_shape_t opt;                    /* model.kind = opt */
} model_shape_t;

/* The continuous inputs of the next forward (image_objective = diffusion), for its
 * B windows, per window position (seq_len + 1 of them; input position i reads
 * entry i): the noised patch x_t and the noise eps it holds (patch_dim floats), the
 * image's timestep t, and the position's enum pos_kind (common.h). pred, when not
 * NULL, receives the predicted noise at every patch position. */
typedef struct model_images {
    const float *xt, *eps;
    const int32_t *t;
    const uint8_t *kind;
    float *pred;
} model_images_t;

/* OPT's inputs for the next forward, B samples (model.kind = opt; the windows of
 * model_forward are not read): what the encoders read (masked and swapped), the
 * targets, which positions are targets, and the matching class. match_logits, when
 * not NULL, receives the matching head's logits (B, 5): retrieval scores by them. */
typedef struct model_opt_batch {
    const int32_t *text_in, *text_tgt;          /* (B, Tt) */
    const uint8_t *text_masked;                 /* (B, Tt) 1: an MLM target */
    const float *region_in, *region_tgt;        /* (B, R, region_dim) */
    const float *geom;                          /* (B, R, 7) */
    const int32_t *region_class;                /* (B, R) */
    const uint8_t *region_masked;               /* (B, R) */
    const float *audio_in, *audio_tgt;          /* (B, Ta, frame_dim) */
    const uint8_t *frame_masked;                /* (B, Ta) */
    const int32_t *match;                       /* (B) enum opt_match; -1: no matching loss */
    const int32_t *codes;                       /* (B, Tc) the image's codes */
    const uint8_t *whole;                       /* (B, 3) modality masked whole: reconstruct it */
    real *match_logits;                         /* (B, 5) or NULL */
} model_opt_batch_t;

/* Initialisation: normal(0, std) matrices (output projections scaled, see the
 * table), norm weights one; same_towers draws every tower from tower 0's seed. */
typedef struct model_init {
    double std;
    bool same_towers;
    /* checkpoints the tensors with a source start from (zipper.text_checkpoint,
     * zipper.speech_checkpoint; vocab_expansion reads the text one); "" none */
    char source[ZT_N][CFG_PATH_LEN];
} model_init_t;

/* SHARD_EXPERT: whole on one TP rank (its owner), nothing on the others (expert
 * parallelism); the group's sum is the tensor, like a slice. */
enum shard_kind { SHARD_NONE, SHARD_COL, SHARD_ROW, SHARD_EXPERT };
enum tensor_init { INIT_NORMAL, INIT_ONES, INIT_ZERO };

typedef struct tensor_info {
    char name[64];                 /* documented name, e.g. tower1.layer0.attn.wq */
    int role, tower, layer;        /* the kind's role; tower/layer -1 where not applicable */
    int64_t rows, cols;            /* logical shape, row-major (norms: 1 x d) */
    int64_t lrows, lcols;          /* this rank's slice */
    int64_t row0, col0;            /* where the slice starts in the logical tensor */
    int shard;                     /* enum shard_kind: how 1D tensor parallelism slices it */
    int owner;                     /* SHARD_EXPERT: the TP rank that holds it whole; -1 */
    int expert;                    /* the expert it belongs to (seeds its init); -1 */
    bool grid2d;                   /* a projection: the ScaLAPACK backend keeps a 2D block */
    bool decay;                    /* weight decay applies (matrices, not norms) */
    int init;                      /* enum tensor_init */
    double init_div;               /* INIT_NORMAL: std = model_init.std / init_div */
    int stage;                     /* backward stage after which its gradient is final */
    size_t offset, numel;          /* local slice in the flat buffers, elements */
    /* A frozen tensor gets no gradient and no optimizer state: it lies after every
     * trainable one, beyond m->n_trainable, and the gradient buffer stops there. */
    bool frozen;
    /* Where its initial value comes from: model_init.source[src] (-1: the seeded
     * draw), dataset params/src_name; rows [0, src_rows) of this tensor are rows
     * [src_row0, src_row0 + src_rows) of that one, the others keep the draw. */
    int src;
    char src_name[64];
    int64_t src_row0, src_rows;
} tensor_info_t;

struct model_kind_ops;

typedef struct model {
    const struct model_kind_ops *ops;  /* the kind's entry */
    void *impl;                        /* the kind's own state (activations, scratch) */
    model_shape_t shape;
    vocab_t vocab;
    tp_ctx_t tp;
    int max_seqs;

    /* parameters: one table, one allocation each for values and gradients */
    int n_tensors;
    tensor_info_t *tensors;
    size_t n_local;                    /* elements of params on this rank */
    size_t n_trainable;                /* of those, trainable (the first ones): grads' size */
    real *params, *grads;

    /* Backward progress, for overlapping the data-parallel all-reduce: called with
     * each stage 0 .. n_stages - 1 as soon as every tensor of that stage (table
     * field `stage`) has its final gradient. NULL: no calls. */
    int n_stages;
    void (*on_stage)(void *ctx, int stage);
    void *on_stage_ctx;

    /* What a step may add beside the loss, summed over the forwards with gradient
     * since the trainer last reset them: auxiliary losses (the router z-loss, as
     * its weight x sum of lse^2 over tokens) and the tokens each expert took by
     * modality ([n_load] = [moe layers][experts][modalities]). */
    double aux_loss_sum;
    int n_load;
    double *load;
    /* input tokens by their modality over the same forwards: the FLOP count charges
     * a position to the tower its input token chose */
    int64_t tokens_in[MAX_MODALITIES];
    /* OPT: the caller's batch for the next forward, and per task the sums of the item
     * losses, the items, and the items predicted right (MLM, MRC, matching) over
     * every forward since the caller last reset them. */
    model_opt_batch_t opt_in;
    double opt_loss[OPT_TASKS];
    int64_t opt_count[OPT_TASKS], opt_correct[OPT_TASKS];
    /* Continuous images: what the caller sets before each forward (model_images_t);
     * the weight of each modality's loss sum in the objective (1, and
     * diffusion_weight for the image modality's MSE under diffusion); and the
     * cross-entropy of caption tokens that follow their image (every forward, with
     * gradient or not, adds to these; the caller resets them). */
    model_images_t images;
    double loss_weight[MAX_MODALITIES];
    double caption_loss_sum;
    int64_t caption_count;
    /* Tests only: forwards reuse the routing of the last forward (the expert choice
     * is piecewise constant in the parameters, so finite differences hold it fixed). */
    bool moe_freeze_routing;
} model_t;

/* Build the tensor table and allocate parameters, gradients and activations for
 * micro-batches of up to max_seqs sequences. tp: the tensor-parallel group. */
void model_build(model_t *m, const model_shape_t *shape, const vocab_t *v, tp_ctx_t tp,
                 int max_seqs);
void model_free(model_t *m);

/* Layout-independent init: each tensor is drawn whole from a GSL generator seeded
 * by (seed, role, tower, layer) and this rank keeps its slice. */
void model_init_params(model_t *m, uint64_t seed, const model_init_t *init);

/* Forward over B windows of seq_len + 1 tokens. Adds per-modality sums of the
 * loss (by target token) and target counts into loss_sum / count.
 * grad_scale > 0 also keeps d(grad_scale * sum of losses)/d outputs for
 * model_backward, and may already accumulate the gradients of the last layers (the
 * tower transformer's head: its backward runs while the logits' gradient is at
 * hand, so the logits are not kept). */
void model_forward(model_t *m, const int32_t *windows, int B, real grad_scale,
                   double *loss_sum, int64_t *count);
/* Greedy decoding's step: the logits of the next token of modality mod after
 * tokens[0 .. n) (1 <= n <= seq_len), one sequence, no gradient; out (vocabulary
 * size) holds them on mod's id range and -inf elsewhere. A tower kind reads the
 * last position; zipper the last position of mod's tower. */
void model_next_logits(model_t *m, const int32_t *tokens, int64_t n, int mod, real *out);

/* Backward of the last forward; accumulates into m->grads. */
void model_backward(model_t *m);
void model_zero_grads(model_t *m);

/* The tensor called name, or NULL. */
const tensor_info_t *model_find(const model_t *m, const char *name);

/* Model FLOPs and parameters of a shape, without building it (flops.h). */
void model_flops(flops_report_t *r, const model_shape_t *s, int32_t vocab_size);

/* Memory of one rank, from the tensor table and the activation plan, without
 * building: parameters, gradients and AdamW moments (fp32), activations kept for
 * backward, and backward scratch, in bytes. */
typedef struct model_memory {
    double params, grads, moments, activations, scratch;
    double analytic_min;               /* params + grads + moments + activations */
} model_memory_t;
void model_memory(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size,
                  int max_seqs);

/* Bytes one rank needs (the analytic minimum plus backward scratch), without an
 * integer product that could overflow: a configuration too large to lay out at all
 * gives +inf. *activations_dominate tells whether the micro-batch (and sequence)
 * or the model's size is what makes it large. */
double model_bytes_per_rank(const model_shape_t *s, int32_t vocab_size, int tp_size, int max_seqs,
                            bool *activations_dominate);

/* The share of a machine's physical memory a run may plan to use: above it,
 * `motscale train` and `motscale flops` refuse (exit 2) before allocating. */
#define MODEL_MEMORY_SHARE 0.9

/* Does a run of `ranks_here` ranks on this machine fit in MODEL_MEMORY_SHARE of its
 * physical memory? false with one line naming the keys that make it too large. */
bool model_fits_machine(const model_shape_t *s, int32_t vocab_size, int tp_size, int micro_batch,
                        int ranks_here, char *err, size_t errlen);

#endif
