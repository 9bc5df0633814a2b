/* INI configuration: one table of keys (type, default, description) drives parsing
 * with inih, command-line overrides, validation, the resolved INI text written into
 * every run record, and the key list in docs/config.md. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "motscale/common.h"
#include "motscale/config.h"

enum ktype { K_INT, K_I64, K_U64, K_DBL, K_STR, K_BOOL, K_ENUM };

typedef struct key {
    const char *section, *name;
    enum ktype type;
    size_t off, size;     /* field offset and (for strings) capacity */
    const char *def;      /* default, as text */
    const char *dom;      /* K_ENUM: "a|b|c", value = index; numbers: the range, "[lo, hi]"
                           * with ( or ) for an open end; NULL: any (strings: up to size) */
    const char *doc;
} key_t_;

#define F(field) offsetof(config_t, field), sizeof(((config_t *)0)->field)
static const key_t_ keys[] = {
    {"run", "name", K_STR, F(name), "run", NULL, "run name; the run directory is out_dir/name"},
    {"run", "experiment", K_STR, F(experiment), "", NULL, "experiment the run belongs to (set by sweeps; groups runs in reports)"},
    {"run", "out_dir", K_STR, F(out_dir), "results", NULL, "directory that holds run directories"},
    {"run", "seed", K_U64, F(seed), "1", "[0, 18446744073709551615]", "seed of initialisation and data"},
    {"model", "kind", K_ENUM, F(model.kind), "dense", "dense|mot|towers|moe|zipper|vocab_expansion|opt", "dense: one tower; mot: one tower per modality; towers: groups from model.towers; moe: one tower whose FFNs are mixtures of experts; zipper: text and speech decoders fused by gated cross-attention (zipper.*); vocab_expansion: a dense decoder started from zipper.text_checkpoint with the speech rows appended; opt: the OPT tri-modal encoder over aligned text, image regions and audio (section [opt])"},
    {"model", "towers", K_STR, F(towers), "", NULL, "with kind=towers: modality groups, e.g. 'text,image | speech'"},
    {"model", "moe_experts", K_INT, F(model.moe_experts), "4", "[1, 64]", "experts per mixture-of-experts FFN (kind=moe, or moe_towers)"},
    {"model", "moe_capacity", K_DBL, F(model.moe_capacity), "1", "(0, 64]", "expert capacity factor: each expert takes ceil(capacity x group / experts) tokens"},
    {"model", "moe_group", K_ENUM, F(model.moe_group), "batch", "batch|sequence", "routing group: the micro-batch's tokens of the tower, or each sequence's"},
    {"model", "moe_zloss", K_DBL, F(model.moe_zloss), "0", "[0, 1]", "weight of the router z-loss: adds weight x (sum over expert layers and tokens of logsumexp(router logits)^2) / (global_batch x seq_len) to the objective"},
    {"model", "moe_eval_routing", K_ENUM, F(model.moe_eval), "ec", "ec|top1", "held-out routing: expert choice as in training (sees later tokens of its group), or each token to its top expert"},
    {"model", "moe_towers", K_STR, F(moe_towers), "", NULL, "with kind=mot|towers: modalities whose tower gets mixture-of-experts FFNs, e.g. 'text'"},
    {"model", "image_objective", K_ENUM, F(model.image_objective), "tokens", "tokens|diffusion", "images as discrete codes under next-token cross-entropy, or continuous patches under a diffusion loss (Transfusion; synthetic data, or a token file with /patches)"},
    {"model", "diffusion_steps", K_INT, F(model.diffusion_steps), "1000", "[2, 1000000]", "image_objective=diffusion: timesteps T of the cosine DDPM schedule"},
    {"model", "diffusion_t_cap_image_first", K_INT, F(t_cap_image_first), "500", "[1, 1000000]", "image_objective=diffusion: largest training timestep of an image that precedes its caption"},
    {"model", "sample_steps", K_INT, F(sample_steps), "0", "[0, 100000]", "image_objective=diffusion: DDIM steps of the sampling check at the final evaluation (held-out images from their captions; synthetic data); 0 = off"},
    {"model", "size", K_STR, F(size), "", NULL, "preset xs|s|m|l|xl for d_model, n_layers, n_heads, d_ff (docs/config.md); empty: use the keys"},
    {"model", "d_model", K_INT, F(model.d_model), "64", "[1, 65536]", "model width"},
    {"model", "n_layers", K_INT, F(model.n_layers), "2", "[1, 1024]", "transformer blocks"},
    {"model", "n_heads", K_INT, F(model.n_heads), "4", "[1, 1024]", "attention heads (head dim = d_model / n_heads, must be even for RoPE)"},
    {"model", "d_ff", K_INT, F(model.d_ff), "256", "[1, 1048576]", "SwiGLU hidden width"},
    {"model", "seq_len", K_INT, F(model.seq_len), "64", "[2, 1048576]", "tokens per training sequence"},
    {"model", "norm", K_ENUM, F(model.norm), "swin", "swin|pre", "norm placement: swin (norm after attention/FFN, Chameleon) or pre"},
    {"model", "qk_norm", K_BOOL, F(model.qk_norm), "false", NULL, "per-tower RMSNorm of queries and keys, per head"},
    {"model", "init_same_towers", K_BOOL, F(init.same_towers), "false", NULL, "start every tower from the same draw (MoT from dense weights)"},
    {"model", "rope_theta", K_DBL, F(model.rope_theta), "10000", "(0, 1e12]", "RoPE base"},
    {"model", "init_std", K_DBL, F(init.std), "0.02", "(0, 10]", "std of the normal init; output projections use init_std/sqrt(2 n_layers)"},
    {"model", "norm_eps", K_DBL, F(model.norm_eps), "1e-5", "[0, 1]", "RMSNorm epsilon"},
    {"opt", "cross_towers", K_ENUM, F(model.opt.cross), "shared", "shared|mot", "the cross-modal encoder: one set of weights for all positions, or untied by modality (MoT: [CLS] and text, regions, frames)"},
    {"opt", "unimodal_layers", K_INT, F(model.opt.unimodal_layers), "1", "[0, 64]", "bidirectional blocks of each unimodal encoder before the cross-modal encoder"},
    {"opt", "temperature", K_DBL, F(model.opt.temperature), "0.1", "(0, 100]", "temperature of the masked-frame contrastive loss (cosine similarity / temperature)"},
    {"opt", "task_mode", K_ENUM, F(model.opt.task_mode), "sum", "sum|sample", "sum: every step's objective is the weighted sum of all tasks; sample: each step trains one task, drawn with probability proportional to its weight"},
    {"opt", "w_mlm", K_DBL, F(model.opt.weight[OPT_TASK_MLM]), "1", "[0, 1000]", "weight of masked language modelling"},
    {"opt", "w_mrfr", K_DBL, F(model.opt.weight[OPT_TASK_MRFR]), "1", "[0, 1000]", "weight of masked region feature regression (L2)"},
    {"opt", "w_mrc", K_DBL, F(model.opt.weight[OPT_TASK_MRC]), "1", "[0, 1000]", "weight of masked region classification"},
    {"opt", "w_mafr", K_DBL, F(model.opt.weight[OPT_TASK_MAFR]), "1", "[0, 1000]", "weight of masked audio frame regression (L2)"},
    {"opt", "w_mac", K_DBL, F(model.opt.weight[OPT_TASK_MAC]), "1", "[0, 1000]", "weight of the masked audio frame contrastive loss"},
    {"opt", "decoder_layers", K_INT, F(model.opt.decoder_layers), "1", "[0, 16]", "blocks of the text decoder and of the image-code decoder (causal, cross-attending to the encoder); 0: no decoders and no modality-level tasks"},
    {"opt", "w_trec", K_DBL, F(model.opt.weight[OPT_TASK_TREC]), "1", "[0, 1000]", "weight of text reconstruction by the text decoder when the text is masked whole (modality level)"},
    {"opt", "w_irec", K_DBL, F(model.opt.weight[OPT_TASK_IREC]), "1", "[0, 1000]", "weight of image-code reconstruction by the image decoder when the image is masked whole (modality level)"},
    {"opt", "w_match", K_DBL, F(model.opt.weight[OPT_TASK_MATCH]), "1", "[0, 1000]", "weight of 5-way matching from [CLS] (the sample-level task)"},
    {"zipper", "text_d_model", K_INT, F(model.zt[0].d_model), "64", "[1, 65536]", "kind=zipper: the text tower's width"},
    {"zipper", "text_n_layers", K_INT, F(model.zt[0].n_layers), "2", "[1, 1024]", "kind=zipper: the text tower's blocks"},
    {"zipper", "text_n_heads", K_INT, F(model.zt[0].n_heads), "4", "[1, 1024]", "kind=zipper: the text tower's heads (its cross-attention's too)"},
    {"zipper", "text_d_ff", K_INT, F(model.zt[0].d_ff), "256", "[1, 1048576]", "kind=zipper: the text tower's SwiGLU width (its cross blocks' too)"},
    {"zipper", "speech_d_model", K_INT, F(model.zt[1].d_model), "64", "[1, 65536]", "kind=zipper: the speech tower's width"},
    {"zipper", "speech_n_layers", K_INT, F(model.zt[1].n_layers), "2", "[1, 1024]", "kind=zipper: the speech tower's blocks"},
    {"zipper", "speech_n_heads", K_INT, F(model.zt[1].n_heads), "4", "[1, 1024]", "kind=zipper: the speech tower's heads"},
    {"zipper", "speech_d_ff", K_INT, F(model.zt[1].d_ff), "256", "[1, 1048576]", "kind=zipper: the speech tower's SwiGLU width"},
    {"zipper", "interval_text", K_INT, F(model.zt[0].interval), "1", "[1, 1024]", "kind=zipper: a gated cross-attention block after every this many text layers"},
    {"zipper", "interval_speech", K_INT, F(model.zt[1].interval), "1", "[1, 1024]", "kind=zipper: the same for the speech tower (both towers get the same number of blocks)"},
    {"zipper", "freeze", K_ENUM, F(model.zipper_freeze), "none", "none|text|speech|both", "kind=zipper: backbones that keep their pretrained weights (no gradient, no AdamW state)"},
    {"zipper", "text_checkpoint", K_STR, F(init.source[0]), "", NULL, "kind=zipper|vocab_expansion: a dense text run's checkpoint the text backbone starts from; empty: the seeded draw"},
    {"zipper", "speech_checkpoint", K_STR, F(init.source[1]), "", NULL, "kind=zipper: a dense speech run's checkpoint the speech backbone starts from (vocab_expansion ignores it); empty: the seeded draw"},
    {"data", "source", K_ENUM, F(data.source), "synthetic", "synthetic|file|aligned", "synthetic generators, an HDF5 token file, or aligned speech and text (data.aligned_*)"},
    {"data", "aligned_stream", K_ENUM, F(data.aligned.stream), "tasks", "tasks|text|speech", "source=aligned: ASR and TTS tasks over the aligned pool, or unimodal text, or speech of unseen random text"},
    {"data", "speech_noise", K_DBL, F(data.aligned.speech_noise), "0.1", "[0, 1]", "source=aligned: probability that a speech frame is replaced by a random unit"},
    {"data", "aligned_fraction", K_DBL, F(data.aligned.fraction), "1", "(0, 1]", "source=aligned: share of the aligned pool the task windows draw from"},
    {"data", "aligned_pool", K_INT, F(data.aligned.pool), "2000", "[1, 100000000]", "source=aligned: (text, speech) pairs in the aligned pool"},
    {"data", "aligned_heldout", K_INT, F(data.aligned.heldout), "32", "[1, 100000]", "source=aligned: held-out pairs (held-out windows, greedy decoding at evaluation)"},
    {"data", "aligned_words", K_INT, F(data.aligned.max_words), "8", "[1, 16]", "source=aligned: most words of a sentence (1 to this, uniform)"},
    {"data", "aligned_seed", K_U64, F(data.aligned.seed), "1", "[0, 18446744073709551615]", "source=aligned: seed of the language, the lexicon and the pairs (run.seed orders the windows)"},
    {"data", "path", K_STR, F(data.path), "", NULL, "token file for source=file (model.kind = opt: a file of OPT triples, docs/data.md)"},
    {"data", "modalities", K_STR, F(modalities), "text,image", NULL, "modalities in vocabulary order, from text, image, speech"},
    {"data", "mix", K_STR, F(mix), "1,1", NULL, "token share per modality, e.g. 6,6,1"},
    {"data", "vocab_text", K_INT, F(data.synth.vocab_text), "96", "[2, 16777216]", "text vocabulary size, boundary tokens included"},
    {"data", "vocab_image", K_INT, F(data.synth.vocab_image), "64", "[2, 16777216]", "image code-book size"},
    {"data", "vocab_speech", K_INT, F(data.synth.vocab_speech), "32", "[2, 16777216]", "speech unit count"},
    {"data", "image_h", K_INT, F(data.synth.image_h), "8", "[1, 1024]", "image grid height (span length = image_h x image_w)"},
    {"data", "image_w", K_INT, F(data.synth.image_w), "8", "[1, 1024]", "image grid width"},
    {"data", "patch_dim", K_INT, F(patch_dim), "8", "[1, 65536]", "model.image_objective=diffusion: floats per image patch"},
    {"data", "caption_first", K_DBL, F(data.synth.caption_first), "0.8", "[0, 1]", "model.image_objective=diffusion: share of images whose caption comes before them"},
    {"data", "text_span", K_INT, F(data.synth.text_span), "24", "[1, 1048576]", "mean text span length"},
    {"data", "speech_span", K_INT, F(data.synth.speech_span), "32", "[1, 1048576]", "mean speech span length"},
    {"data", "ngram", K_INT, F(data.synth.ngram), "3", "[1, 16]", "text n-gram order"},
    {"data", "zipf", K_DBL, F(data.synth.zipf), "1.1", "(0, 100]", "text Zipf exponent"},
    {"data", "opt_regions", K_INT, F(data.opt.regions), "3", "[1, 64]", "model.kind = opt: image regions per sample (the caption has 2 x opt_regions - 1 words)"},
    {"data", "opt_classes", K_INT, F(data.opt.classes), "8", "[2, 4096]", "model.kind = opt: region classes (the words naming them)"},
    {"data", "region_dim", K_INT, F(data.opt.region_dim), "16", "[1, 4096]", "model.kind = opt: features per image region"},
    {"data", "frame_dim", K_INT, F(data.opt.frame_dim), "16", "[1, 4096]", "model.kind = opt: features per audio frame"},
    {"data", "opt_grid", K_INT, F(data.opt.grid), "4", "[1, 64]", "model.kind = opt: the image code grid is opt_grid x opt_grid"},
    {"train", "steps", K_I64, F(steps), "300", "[1, 1099511627776]", "optimizer steps"},
    {"train", "global_batch", K_INT, F(global_batch), "8", "[1, 1048576]", "sequences per step, over all data-parallel ranks"},
    {"train", "micro_batch", K_INT, F(micro_batch), "0", "[0, 1048576]", "sequences per forward/backward; 0 = global_batch / dp"},
    {"train", "lr", K_DBL, F(sched.lr), "3e-3", "(0, 10]", "peak learning rate"},
    {"train", "lr_min", K_DBL, F(sched.lr_min), "3e-4", "[0, 10]", "floor of the cosine decay"},
    {"train", "warmup", K_I64, F(sched.warmup), "20", "[0, 1099511627776]", "linear warm-up steps"},
    {"train", "beta1", K_DBL, F(adamw.beta1), "0.9", "[0, 1)", "AdamW beta1"},
    {"train", "beta2", K_DBL, F(adamw.beta2), "0.95", "[0, 1)", "AdamW beta2"},
    {"train", "adam_eps", K_DBL, F(adamw.eps), "1e-8", "(0, 1]", "AdamW epsilon"},
    {"train", "weight_decay", K_DBL, F(adamw.weight_decay), "0.1", "[0, 100]", "decoupled weight decay, matrices only"},
    {"train", "grad_clip", K_DBL, F(grad_clip), "1.0", "[0, 1e12]", "global gradient-norm clip; 0 = off"},
    {"train", "diffusion_weight", K_DBL, F(model.diffusion_weight), "5", "[0, 1000000]", "model.image_objective=diffusion: lambda in objective = (text cross-entropy sum + lambda x image MSE sum) / (global_batch x seq_len)"},
    {"train", "checkpoint_every", K_I64, F(checkpoint_every), "0", "[0, 1099511627776]", "steps between checkpoints; 0 = only at the end and on signals"},
    {"train", "keep_checkpoints", K_INT, F(keep_checkpoints), "2", "[1, 1000]", "checkpoints kept"},
    {"train", "resume", K_ENUM, F(resume), "no", "no|auto|checkpoint", "auto: continue an unfinished run in the run directory; checkpoint: also when the directory holds checkpoints but no run.h5 (a new record from the checkpoint's step)"},
    {"train", "stop_at_loss_of", K_STR, F(stop_at_loss_of), "", NULL, "baseline run.h5: stop once every modality reaches its final loss"},
    {"parallel", "tp", K_INT, F(tp), "1", "[1, 4096]", "tensor-parallel degree"},
    {"parallel", "dp", K_INT, F(dp), "0", "[0, 1048576]", "data-parallel degree; 0 or auto = world size / tp"},
    {"parallel", "tp_backend", K_ENUM, F(model.tp_backend), "megatron", "megatron|scalapack", "1D Megatron-style or 2D ScaLAPACK tensor parallelism"},
    {"parallel", "expert_parallel", K_BOOL, F(model.expert_parallel), "false", NULL, "whole experts spread over the tensor-parallel group (tp must divide model.moe_experts) instead of sharding each"},
    {"parallel", "bucket_mb", K_DBL, F(bucket_mb), "4", "(0, 65536]", "gradient all-reduce bucket size in MiB"},
    {"parallel", "dp_overlap", K_BOOL, F(dp_overlap), "false", NULL, "start each gradient bucket's all-reduce (zero 1: reduce-scatter) non-blocking as soon as backward finishes it, for an MPI that progresses it during compute; false: every bucket's collective blocking after backward (and the zero 1 all-gather blocking), faster under Open MPI without a progress thread"},
    {"parallel", "zero", K_INT, F(zero), "0", "[0, 1]", "ZeRO stage: 0 = AdamW moments replicated; 1 = moments sharded over the data-parallel group (gradients reduce-scattered in the buckets, parameters all-gathered)"},
    {"parallel", "blas_threads", K_INT, F(blas_threads), "0", "[0, 1024]", "BLAS threads per rank; 0 = OPENBLAS_NUM_THREADS or OMP_NUM_THREADS if set, else SLURM_CPUS_PER_TASK (--cpus-per-task), else 1"},
    {"log", "every", K_I64, F(log_every), "10", "[1, 1099511627776]", "steps between logged rows and progress lines"},
    {"log", "eval_every", K_I64, F(eval_every), "50", "[0, 1099511627776]", "steps between held-out evaluations; 0 = off"},
    {"log", "eval_tokens", K_I64, F(eval_tokens), "4096", "[1, 1099511627776]", "held-out tokens per evaluation"},
    {"log", "retrieval_pool", K_INT, F(retrieval_pool), "100", "[2, 100000]", "model.kind = opt: held-out samples per retrieval evaluation (each query against every candidate of the pool)"},
    {"log", "flush_every", K_I64, F(flush_every), "50", "[1, 1099511627776]", "steps between run-file flushes"},
    {"log", "peak_flops", K_DBL, F(peak_flops), "0", "[0, 1e18]", "per-rank peak FLOP/s for MFU; 0 = measure once and cache"},
    {"log", "quiet", K_BOOL, F(quiet), "false", NULL, "no progress lines"},
};
#undef F
enum { NKEYS = sizeof keys / sizeof keys[0] };
_Static_assert(NKEYS <= 256, "set_mask and key_origin hold 256 keys");

static int key_index(const char *section, const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
            return i;
    return -1;
}

bool config_has_key(const char *section, const char *key) { return key_index(section, key) >= 0; }

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* v within a range "[lo, hi]" (a parenthesis: that end open); else the message. */
static bool in_range(const char *dom, double v, const char *value, char *err, size_t errlen)
{
    char open_lo = dom[0], close_hi = dom[strlen(dom) - 1];
    char *end;
    double lo = strtod(dom + 1, &end);
    double hi = strtod(strchr(dom, ',') + 1, NULL);
    bool ok = (open_lo == '(' ? v > lo : v >= lo) && (close_hi == ')' ? v < hi : v <= hi);
    return ok || errorf(err, errlen, "%s is outside %s", value, dom);
}

static bool parse_key(config_t *cfg, int i, const char *value, char *err, size_t errlen)
{
    const key_t_ *k = &keys[i];
    char *field = (char *)cfg + k->off;
    char *end = NULL;
    errno = 0;
    switch (k->type) {
    case K_INT: {
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || v < -2147483647L || v > 2147483647L)
            return errorf(err, errlen, "not an integer: '%s'", value);
        if (k->dom && !in_range(k->dom, (double)v, value, err, errlen))
            return false;
        *(int *)field = (int)v;
        break;
    }
    case K_I64: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno)
            return errorf(err, errlen, "not an integer: '%s'", value);
        if (k->dom && !in_range(k->dom, (double)v, value, err, errlen))
            return false;
        *(int64_t *)field = v;
        break;
    }
    case K_U64: {
        if (value[0] == '-')
            return errorf(err, errlen, "not a non-negative integer: '%s'", value);
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end || errno)
            return errorf(err, errlen, "not a non-negative integer: '%s'", value);
        *(uint64_t *)field = v;
        break;
    }
    case K_DBL: {
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v))
            return errorf(err, errlen, "not a number: '%s'", value);
        if (k->dom && !in_range(k->dom, v, value, err, errlen))
            return false;
        *(double *)field = v;
        break;
    }
    case K_STR:
        if (strlen(value) >= k->size)
            return errorf(err, errlen, "longer than %zu characters", k->size - 1);
        strcpy(field, value);
        break;
    case K_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
            *(bool *)field = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
            *(bool *)field = false;
        else
            return errorf(err, errlen, "not a boolean (true|false): '%s'", value);
        break;
    case K_ENUM: {
        int idx = 0;
        const char *p = k->dom;
        size_t n = strlen(value);
        while (p && *p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && !strncmp(p, value, n)) {
                *(int *)field = idx;
                return true;
            }
            idx++;
            p = bar ? bar + 1 : NULL;
        }
        return errorf(err, errlen, "'%s' is not one of %s", value, k->dom);
    }
    }
    return true;
}

bool config_set(config_t *cfg, const char *section, const char *key, const char *value,
                char *err, size_t errlen)
{
    int i = key_index(section, key);
    if (i < 0)
        return errorf(err, errlen, "unknown key %s.%s", section, key);
    char why[512];
    const char *v = value;
    /* parallel.dp accepts "auto" as 0 */
    if (!strcmp(section, "parallel") && !strcmp(key, "dp") && !strcmp(value, "auto"))
        v = "0";
    if (!parse_key(cfg, i, v, why, sizeof why))
        return errorf(err, errlen, "%s.%s: %s", section, key, why);
    cfg->set_mask[i / 64] |= 1ull << (i % 64);
    return true;
}

static bool is_set(const config_t *cfg, const char *section, const char *key)
{
    int i = key_index(section, key);
    return i >= 0 && (cfg->set_mask[i / 64] >> (i % 64) & 1);
}

/* ---- reading an INI file -------------------------------------------------------- */

/* Lines inih can hold (INI_MAX_LINE of the Debian build, 200 with the newline). */
#define INI_LINE_MAX 199
#define INI_FILE_MAX (1 << 20)

struct ini_text {
    char *buf;              /* the checked file, one line after another */
    size_t len, at;
    int line;               /* lines handed to inih so far */
};

/* inih's line reader over the checked text; counts lines so each key's origin can be
 * named later. */
static char *ini_next_line(char *str, int num, void *stream)
{
    struct ini_text *t = stream;
    if (t->at >= t->len)
        return NULL;
    size_t end = t->at;
    while (end < t->len && t->buf[end] != '\n')
        end++;
    size_t n = end - t->at + (end < t->len);
    if (n > (size_t)num - 1)
        n = (size_t)num - 1; /* cannot happen: lines were checked */
    memcpy(str, t->buf + t->at, n);
    str[n] = 0;
    t->at += end - t->at + (end < t->len);
    t->line++;
    return str;
}

/* Read PATH whole and check what inih would misread: not a regular file, too large,
 * a NUL byte, a line longer than inih takes (long comment lines are blanked: they
 * carry nothing), a line that is neither blank, comment, [section] nor key = value,
 * or an indented (continuation) line. false with "PATH:LINE: why". */
static bool ini_load(struct ini_text *t, const char *path, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    struct stat st;
    if (stat(path, &st) != 0)
        return errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return errorf(err, errlen, "%s: not a regular file (an INI file is expected; an empty one gives "
                      "every default)", path);
    if (st.st_size > INI_FILE_MAX)
        return errorf(err, errlen, "%s: %lld bytes; a configuration is at most %d", path,
                      (long long)st.st_size, INI_FILE_MAX);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    t->buf = xmalloc((size_t)st.st_size + 1);
    t->len = fread(t->buf, 1, (size_t)st.st_size, f);
    bool bad_read = ferror(f);
    fclose(f);
    if (bad_read) {
        free(t->buf);
        return errorf(err, errlen, "%s: cannot read", path);
    }
    t->buf[t->len] = 0;
    int line = 1;
    for (size_t i = 0; i < t->len; line++) {
        size_t end = i;
        while (end < t->len && t->buf[end] != '\n' && t->buf[end] != 0)
            end++;
        bool ok = true;
        if (end < t->len && t->buf[end] == 0)
            ok = errorf(err, errlen, "%s:%d: a NUL byte at column %zu", path, line, end - i + 1);
        const char *p = t->buf + i;
        size_t n = end - i;
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        size_t lead = 0;
        while (lead < n && (p[lead] == ' ' || p[lead] == '\t'))
            lead++;
        bool comment = lead < n && (p[lead] == ';' || p[lead] == '#');
        if (ok && comment && n > INI_LINE_MAX)
            memset(t->buf + i, ' ', n); /* a long comment: nothing to parse */
        else if (ok && lead > 0 && lead < n)
            ok = errorf(err, errlen, "%s:%d: starts with whitespace; continuation lines are not taken", path, line);
        else if (ok && n > INI_LINE_MAX)
            ok = errorf(err, errlen, "%s:%d: %zu characters; a line holds at most %d (give longer values as "
                        "section.key=value overrides)", path, line, n, INI_LINE_MAX);
        else if (ok && n && !comment && p[0] == '[' && (p[n - 1] != ']' || n < 3))
            ok = errorf(err, errlen, "%s:%d: malformed section header (expected '[section]')", path, line);
        else if (ok && n && !comment && p[0] != '[' && !memchr(p, '=', n))
            ok = errorf(err, errlen, "%s:%d: malformed line (expected 'key = value' or '[section]')", path, line);
        if (!ok) {
            free(t->buf);
            return false;
        }
        i = end + 1;
    }
    return true;
}

/* Feed a checked INI file to handler, as inih does; line numbers in t->line. */
static int ini_run(struct ini_text *t, config_ini_handler handler, void *user)
{
    return ini_parse_stream(ini_next_line, t, handler, user);
}

bool config_read_ini(const char *path, config_ini_handler handler, void *user, const char *why,
                     char *err, size_t errlen)
{
    struct ini_text t;
    if (!ini_load(&t, path, err, errlen))
        return false;
    int line = ini_run(&t, handler, user);
    free(t.buf);
    if (line > 0)
        return errorf(err, errlen, "%s:%d: %s", path, line, why && why[0] ? why : "not taken");
    return true;
}

struct parse_ctx {
    config_t *cfg;
    char *err;
    size_t errlen;
    bool failed;
    struct ini_text *text;
};

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    if (c->failed)
        return 0;
    if (!strcmp(section, "sweep"))  /* expanded by `motscale sweep`, not a run key */
        return 1;
    if (!config_set(c->cfg, section, name, value, c->err, c->errlen)) {
        c->failed = true;
        return 0;
    }
    int i = key_index(section, name);
    if (c->cfg->key_origin[i] > 0) {
        errorf(c->err, c->errlen, "%s.%s: set twice (first on line %d)", section, name, c->cfg->key_origin[i]);
        c->failed = true;
        return 0;
    }
    c->cfg->key_origin[i] = c->text->line;
    return 1;
}

/* "FILE:LINE" or "override 'x'" for the key a resolve message starts with
 * ("section.key: ..."), or just the file when the key was never set. */
static void origin_of(const config_t *cfg, const char *file, const char *why, int n_over,
                      char *const *over, char *out, size_t len)
{
    /* Of the keys the message names, the one the user set last: an override
     * before any file line, else the latest line ("a is not divisible by b" after
     * only b was changed names b). */
    int o = 0;
    for (const char *p = why; *p; p++) {
        char sec[64] = "", key[64] = "";
        if ((p == why || !isalnum((unsigned char)p[-1])) &&
            sscanf(p, "%63[a-z].%63[a-z_0-9]", sec, key) == 2) {
            int i = key_index(sec, key);
            int k = i >= 0 ? cfg->key_origin[i] : 0;
            if ((k < 0 && (o >= 0 || k < o)) || (k > 0 && o >= 0 && k > o))
                o = k;
        }
    }
    if (o > 0)
        snprintf(out, len, "%s:%d", file, o);
    else if (o < 0 && -o - 1 < n_over)
        snprintf(out, len, "override '%s'", over[-o - 1]);
    else
        snprintf(out, len, "%s", file);
}

static void set_defaults(config_t *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < NKEYS; i++)
        if (!parse_key(cfg, i, keys[i].def, err, sizeof err))
            DIE(EXIT_FAULT, "bad built-in default for %s.%s: %s", keys[i].section, keys[i].name, err);
}

bool config_load(config_t *cfg, const char *file, int n_over, char *const *over,
                 char *err, size_t errlen)
{
    set_defaults(cfg);
    if (file) {
        if (strlen(file) >= sizeof cfg->file)
            return errorf(err, errlen, "%s: path too long", file);
        strcpy(cfg->file, file);
        struct ini_text text;
        if (!ini_load(&text, file, err, errlen))
            return false;
        char why[768] = "";
        struct parse_ctx c = {cfg, why, sizeof why, false, &text};
        int line = ini_run(&text, config_ini_line, &c);
        free(text.buf);
        if (line != 0) {
            if (line < 0)
                return errorf(err, errlen, "%s: cannot read", file);
            if (!c.failed)
                return errorf(err, errlen, "%s:%d: malformed line (expected 'key = value' or '[section]')", file, line);
            return errorf(err, errlen, "%s:%d: %s", file, line, why);
        }
    }
    for (int i = 0; i < n_over; i++) {
        char buf[CFG_PATH_LEN + 128];
        if (strlen(over[i]) >= sizeof buf)
            return errorf(err, errlen, "override '%.40s...': too long", over[i]);
        strcpy(buf, over[i]);
        char *eq = strchr(buf, '=');
        char *dot = strchr(buf, '.');
        if (!eq || !dot || dot > eq)
            return errorf(err, errlen, "override '%s': expected section.key=value", over[i]);
        *eq = 0;
        *dot = 0;
        char why[768];
        if (!config_set(cfg, trim(buf), trim(dot + 1), trim(eq + 1), why, sizeof why))
            return errorf(err, errlen, "override '%s': %s", over[i], why);
        cfg->key_origin[key_index(trim(buf), trim(dot + 1))] = -(i + 1);
    }
    char why[768], where[CFG_PATH_LEN + 200];
    if (!config_resolve(cfg, why, sizeof why)) {
        origin_of(cfg, file ? file : "config", why, n_over, over, where, sizeof where);
        return errorf(err, errlen, "%s: %s", where, why);
    }
    return true;
}

static const char *modality_known[] = {"text", "image", "speech"};

/* Split a comma list into trimmed items; returns the count or -1 if too many. */
static int split_list(const char *s, char items[][CFG_NAME_LEN], int max)
{
    char buf[CFG_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return -1;
        t = trim(t);
        snprintf(items[n++], CFG_NAME_LEN, "%s", t);
    }
    return n;
}

/* Size presets: a CPU-scale ladder; l and xl have the widths and depths of the
 * paper's 37M and 94M models (256 x 4 and 512 x 8). */
static const struct { const char *name; int d, L, H, f; } presets[] = {
    {"xs", 64, 2, 4, 256}, {"s", 128, 2, 4, 512}, {"m", 192, 3, 4, 768},
    {"l", 256, 4, 8, 1024}, {"xl", 512, 8, 8, 2048},
};

/* Which towers have mixture-of-experts FFNs, and what expert parallelism needs. */
/* zipper and vocab_expansion: the modalities, each tower's shape, the blocks. */
static bool resolve_zipper(config_t *cfg, char *err, size_t errlen)
{
    model_shape_t *s = &cfg->model;
    if (s->kind != MODEL_ZIPPER && s->kind != MODEL_VOCAB_EXPANSION)
        return true;
    const char *kind = s->kind == MODEL_ZIPPER ? "zipper" : "vocab_expansion";
    if (cfg->data.n_modalities != 2 || strcmp(cfg->data.names[1], "speech"))
        return errorf(err, errlen, "data.modalities: model.kind = %s needs exactly 'text,speech', got '%s'", kind,
                      cfg->modalities);
    if (cfg->data.source == DATA_FILE)
        return errorf(err, errlen, "data.source: model.kind = %s reads the synthetic generators' vocabulary sizes", kind);
    s->zt[ZT_TEXT].vocab = cfg->data.synth.vocab_text;
    s->zt[ZT_SPEECH].vocab = cfg->data.synth.vocab_speech;
    if (s->kind == MODEL_VOCAB_EXPANSION) {
        /* one experiment file serves both kinds: the baseline reads the text run only */
        cfg->init.source[ZT_SPEECH][0] = 0;
        return true;
    }
    if (s->tp_backend != TP_MEGATRON)
        return errorf(err, errlen, "parallel.tp_backend: model.kind = zipper runs under megatron");
    static const char *tw[ZT_N] = {"text", "speech"};
    for (int X = 0; X < ZT_N; X++) {
        const struct zipper_shape *z = &s->zt[X];
        if (z->d_model % z->n_heads || (z->d_model / z->n_heads) % 2)
            return errorf(err, errlen, "zipper.%s_n_heads: %s_d_model %d / %d heads must be a whole, even head dim",
                          tw[X], tw[X], z->d_model, z->n_heads);
        if (z->n_heads % cfg->tp || z->d_ff % cfg->tp)
            return errorf(err, errlen, "parallel.tp: zipper.%s_n_heads = %d and %s_d_ff = %d must be divisible by tp = %d",
                          tw[X], z->n_heads, tw[X], z->d_ff, cfg->tp);
        if (z->n_layers % z->interval)
            return errorf(err, errlen, "zipper.interval_%s: %d does not divide zipper.%s_n_layers = %d", tw[X],
                          z->interval, tw[X], z->n_layers);
    }
    if (s->zt[0].n_layers / s->zt[0].interval != s->zt[1].n_layers / s->zt[1].interval)
        return errorf(err, errlen, "zipper.interval_speech: %d / %d blocks in the speech tower, %d / %d in the text tower; "
                      "both towers need the same number", s->zt[1].n_layers, s->zt[1].interval, s->zt[0].n_layers,
                      s->zt[0].interval);
    return true;
}

static bool resolve_moe(config_t *cfg, char *err, size_t errlen)
{
    model_shape_t *s = &cfg->model;
    s->moe_tower_mask = s->kind == MODEL_MOE ? 1u : 0u;
    if (cfg->moe_towers[0]) {
        if (s->kind != MODEL_MOT && s->kind != MODEL_TOWERS)
            return errorf(err, errlen, "model.moe_towers: only with model.kind = mot or towers (kind = moe "
                          "puts experts in its one tower)");
        char names[MAX_MODALITIES + 1][CFG_NAME_LEN];
        int k = split_list(cfg->moe_towers, names, MAX_MODALITIES);
        if (k <= 0)
            return errorf(err, errlen, "model.moe_towers: expected modality names, got '%s'", cfg->moe_towers);
        for (int j = 0; j < k; j++) {
            int m;
            for (m = 0; m < cfg->data.n_modalities && strcmp(cfg->data.names[m], names[j]); m++)
                ;
            if (m == cfg->data.n_modalities)
                return errorf(err, errlen, "model.moe_towers: '%s' is not in data.modalities", names[j]);
            s->moe_tower_mask |= 1u << s->tower_of[m];
        }
    }
    if (s->expert_parallel) {
        if (!s->moe_tower_mask)
            return errorf(err, errlen, "parallel.expert_parallel: the model has no experts (model.kind = moe or model.moe_towers)");
        if (s->moe_experts % cfg->tp)
            return errorf(err, errlen, "parallel.expert_parallel: model.moe_experts = %d is not divisible by parallel.tp = %d",
                          s->moe_experts, cfg->tp);
        if (s->tp_backend == TP_SCALAPACK)
            return errorf(err, errlen, "parallel.expert_parallel: not with parallel.tp_backend = scalapack");
    }
    return true;
}

/* model.kind = opt: three modalities, the synthetic triples (or a file of them), the model's sample
 * sizes from the data's. */
static bool resolve_opt(config_t *cfg, char *err, size_t errlen)
{
    model_shape_t *s = &cfg->model;
    data_params_t *d = &cfg->data;
    d->opt_triples = s->kind == MODEL_OPT;
    if (!d->opt_triples)
        return true;
    if (d->n_modalities != 3 || strcmp(d->names[1], "image") || strcmp(d->names[2], "speech"))
        return errorf(err, errlen, "data.modalities: model.kind = opt needs text,image,speech (speech: the audio frames), got '%s'",
                      cfg->modalities);
    if (d->source != DATA_SYNTHETIC && d->source != DATA_FILE)
        return errorf(err, errlen, "data.source: model.kind = opt reads the synthetic triples or a file of them (synthetic|file)");
    if (s->tp_backend != TP_MEGATRON)
        return errorf(err, errlen, "parallel.tp_backend: model.kind = opt runs with megatron only");
    if (s->qk_norm)
        return errorf(err, errlen, "model.qk_norm: model.kind = opt's blocks have no QK-norm (docs/model.md \"OPT\")");
    if (s->opt.cross == OPT_CROSS_MOT) {
        s->n_towers = 3;
        for (int m = 0; m < 3; m++)
            s->tower_of[m] = m;
    } else {
        s->n_towers = 1;
        for (int m = 0; m < 3; m++)
            s->tower_of[m] = 0;
    }
    /* without decoders the modality-level tasks are off: their weights do not count */
    if (s->opt.decoder_layers == 0)
        s->opt.weight[OPT_TASK_TREC] = s->opt.weight[OPT_TASK_IREC] = 0;
    double wsum = 0;
    for (int k = 0; k < OPT_TASKS; k++)
        wsum += s->opt.weight[k];
    if (!(wsum > 0))
        return errorf(err, errlen, "opt.w_mlm: the task weights (opt.w_*) are all zero");
    d->opt.seed = cfg->seed;
    opt_dims_t dm;
    opt_dims(&dm, &d->opt);
    s->opt.text_len = dm.text_len, s->opt.vocab = dm.vocab, s->opt.regions = dm.regions;
    s->opt.region_dim = dm.region_dim, s->opt.classes = dm.classes;
    s->opt.frames = dm.frames, s->opt.frame_dim = dm.frame_dim;
    s->opt.codes = dm.codes, s->opt.code_book = dm.code_book;
    d->opt.whole_masks = s->opt.weight[OPT_TASK_TREC] > 0 || s->opt.weight[OPT_TASK_IREC] > 0;
    return true;
}

/* Continuous images: the image modality, and what the generator and the model need. */
static bool resolve_images(config_t *cfg, char *err, size_t errlen)
{
    model_shape_t *s = &cfg->model;
    s->image_modality = -1;
    for (int m = 0; m < cfg->data.n_modalities; m++)
        if (!strcmp(cfg->data.names[m], "image"))
            s->image_modality = m;
    cfg->data.synth.patch_dim = 0;
    if (s->image_objective != IMAGE_DIFFUSION)
        return true;
    if (s->image_modality < 0)
        return errorf(err, errlen, "model.image_objective: diffusion needs 'image' in data.modalities (got '%s')",
                      cfg->modalities);
    if (cfg->data.source != DATA_SYNTHETIC && cfg->sample_steps > 0)
        return errorf(err, errlen, "model.sample_steps: the sampling check scores against the synthetic generator's classes; it needs data.source = synthetic");
    s->patch_dim = cfg->patch_dim;
    s->image_len = cfg->data.synth.image_h * cfg->data.synth.image_w;
    cfg->data.synth.patch_dim = cfg->patch_dim;
    cfg->data.synth.diffusion_steps = s->diffusion_steps;
    cfg->data.synth.t_cap_image_first = cfg->t_cap_image_first;
    return true;
}

bool config_resolve(config_t *cfg, char *err, size_t errlen)
{
    if (cfg->size[0]) {
        size_t i, n = sizeof presets / sizeof presets[0];
        for (i = 0; i < n && strcmp(presets[i].name, cfg->size); i++)
            ;
        if (i == n)
            return errorf(err, errlen, "model.size: '%s' is not one of xs|s|m|l|xl", cfg->size);
        const char *clash[] = {"d_model", "n_layers", "n_heads", "d_ff"};
        for (int c = 0; c < 4; c++)
            if (is_set(cfg, "model", clash[c]))
                return errorf(err, errlen, "model.%s: given together with model.size = %s; set one or the other",
                            clash[c], cfg->size);
        cfg->model.d_model = presets[i].d;
        cfg->model.n_layers = presets[i].L;
        cfg->model.n_heads = presets[i].H;
        cfg->model.d_ff = presets[i].f;
    }
    /* single-key ranges are checked as each key is read (the key table); what
     * follows needs several keys */
    if (!cfg->out_dir[0])
        return errorf(err, errlen, "run.out_dir: must not be empty (the run directory would land at the file system's root)");
    if (!cfg->name[0] || cfg->name[0] == '/' || strstr(cfg->name, "..") || strchr(cfg->name, '\n'))
        return errorf(err, errlen, "run.name: '%s' must be a non-empty relative name without '..'", cfg->name);
    if ((int64_t)cfg->data.synth.image_h * cfg->data.synth.image_w > (1 << 20))
        return errorf(err, errlen, "data.image_h: %d x data.image_w %d = %lld codes per image; at most %d",
                      cfg->data.synth.image_h, cfg->data.synth.image_w,
                      (long long)cfg->data.synth.image_h * cfg->data.synth.image_w, 1 << 20);
    if (cfg->model.d_model % cfg->model.n_heads)
        return errorf(err, errlen, "model.d_model: %d is not divisible by model.n_heads = %d", cfg->model.d_model, cfg->model.n_heads);
    if ((cfg->model.d_model / cfg->model.n_heads) % 2)
        return errorf(err, errlen, "model.n_heads: head dim model.d_model / model.n_heads = %d/%d = %d is odd; RoPE needs it even",
                    cfg->model.d_model, cfg->model.n_heads, cfg->model.d_model / cfg->model.n_heads);
    if (cfg->sched.lr_min < 0 || cfg->sched.lr_min > cfg->sched.lr)
        return errorf(err, errlen, "train.lr_min: must be in [0, lr = %g], got %g", cfg->sched.lr, cfg->sched.lr_min);
    if (cfg->model.n_heads % cfg->tp)
        return errorf(err, errlen, "parallel.tp: model.n_heads = %d is not divisible by tp = %d", cfg->model.n_heads, cfg->tp);
    if (cfg->model.d_ff % cfg->tp)
        return errorf(err, errlen, "parallel.tp: model.d_ff = %d is not divisible by tp = %d", cfg->model.d_ff, cfg->tp);
    if (cfg->data.source == DATA_ALIGNED && strcmp(cfg->modalities, "text,speech"))
        return errorf(err, errlen, "data.modalities: data.source = aligned needs 'text,speech', got '%s'", cfg->modalities);
    if (cfg->data.source == DATA_FILE && !cfg->data.path[0])
        return errorf(err, errlen, "data.path: required when data.source = file");

    /* modalities and mix */
    char items[MAX_MODALITIES + 1][CFG_NAME_LEN];
    int n = split_list(cfg->modalities, items, MAX_MODALITIES);
    if (n <= 0)
        return errorf(err, errlen, "data.modalities: expected 1 to %d of text, image, speech, got '%s'",
                    MAX_MODALITIES, cfg->modalities);
    for (int m = 0; m < n; m++) {
        bool ok = false;
        for (int j = 0; j < 3; j++)
            ok |= !strcmp(items[m], modality_known[j]);
        if (!ok)
            return errorf(err, errlen, "data.modalities: unknown modality '%s' (text, image, speech)", items[m]);
        for (int j = 0; j < m; j++)
            if (!strcmp(items[m], items[j]))
                return errorf(err, errlen, "data.modalities: '%s' listed twice", items[m]);
        memcpy(cfg->data.names[m], items[m], CFG_NAME_LEN);
    }
    if (strcmp(items[0], "text"))
        return errorf(err, errlen, "data.modalities: must start with text (boundary tokens live in the text range)");
    cfg->data.n_modalities = n;
    cfg->model.n_modalities = n;
    char mixs[MAX_MODALITIES + 1][CFG_NAME_LEN];
    int nm = split_list(cfg->mix, mixs, MAX_MODALITIES);
    if (nm != n)
        return errorf(err, errlen, "data.mix: %d values for %d modalities", nm < 0 ? MAX_MODALITIES + 1 : nm, n);
    double tot = 0;
    for (int m = 0; m < n; m++) {
        char *end;
        double v = strtod(mixs[m], &end);
        if (end == mixs[m] || *end || !(v >= 0) || !isfinite(v))
            return errorf(err, errlen, "data.mix: '%s' is not a non-negative number", mixs[m]);
        cfg->data.mix_share[m] = v;
        tot += v;
    }
    if (tot <= 0)
        return errorf(err, errlen, "data.mix: shares sum to zero");
    for (int m = 0; m < n; m++)
        cfg->data.mix_share[m] /= tot;

    /* towers */
    if (cfg->model.kind == MODEL_DENSE || cfg->model.kind == MODEL_MOE || cfg->model.kind == MODEL_ZIPPER ||
        cfg->model.kind == MODEL_VOCAB_EXPANSION) {
        cfg->model.n_towers = 1;
        for (int m = 0; m < n; m++)
            cfg->model.tower_of[m] = 0;
    } else if (cfg->model.kind == MODEL_MOT) {
        cfg->model.n_towers = n;
        for (int m = 0; m < n; m++)
            cfg->model.tower_of[m] = m;
    } else if (cfg->model.kind == MODEL_TOWERS) {
        if (!cfg->towers[0])
            return errorf(err, errlen, "model.towers: required when model.kind = towers");
        for (int m = 0; m < n; m++)
            cfg->model.tower_of[m] = -1;
        char buf[CFG_PATH_LEN];
        snprintf(buf, sizeof buf, "%s", cfg->towers);
        int t = 0;
        char *save = NULL;
        for (char *grp = strtok_r(buf, "|", &save); grp; grp = strtok_r(NULL, "|", &save), t++) {
            char names[MAX_MODALITIES + 1][CFG_NAME_LEN];
            int k = split_list(grp, names, MAX_MODALITIES);
            if (k <= 0 || t >= n)
                return errorf(err, errlen, "model.towers: malformed group '%s'", trim(grp));
            for (int j = 0; j < k; j++) {
                int m;
                for (m = 0; m < n && strcmp(cfg->data.names[m], names[j]); m++)
                    ;
                if (m == n)
                    return errorf(err, errlen, "model.towers: '%s' is not in data.modalities", names[j]);
                if (cfg->model.tower_of[m] >= 0)
                    return errorf(err, errlen, "model.towers: '%s' is in two groups", names[j]);
                cfg->model.tower_of[m] = t;
            }
        }
        cfg->model.n_towers = t;
        for (int m = 0; m < n; m++)
            if (cfg->model.tower_of[m] < 0)
                return errorf(err, errlen, "model.towers: modality '%s' is in no group", cfg->data.names[m]);
    }
    if (!resolve_moe(cfg, err, errlen) || !resolve_zipper(cfg, err, errlen))
        return false;
    if (!resolve_images(cfg, err, errlen))
        return false;
    if (!resolve_opt(cfg, err, errlen))
        return false;
    /* what several modules share */
    cfg->data.seq_len = cfg->model.seq_len;
    cfg->data.seed = cfg->seed;
    cfg->sched.steps = cfg->steps;
    return true;
}

bool config_check_layout(config_t *cfg, int world_size, char *err, size_t errlen)
{
    if (world_size % cfg->tp)
        return errorf(err, errlen, "parallel.tp: world size %d is not divisible by tp = %d", world_size, cfg->tp);
    if (cfg->dp == 0)
        cfg->dp = world_size / cfg->tp;
    if (cfg->dp * cfg->tp != world_size)
        return errorf(err, errlen, "parallel.dp: dp x tp = %d x %d = %d, but the world has %d ranks",
                    cfg->dp, cfg->tp, cfg->dp * cfg->tp, world_size);
    if (cfg->micro_batch == 0) {
        if (cfg->global_batch % cfg->dp)
            return errorf(err, errlen, "train.global_batch: %d is not divisible by dp = %d", cfg->global_batch, cfg->dp);
        cfg->micro_batch = cfg->global_batch / cfg->dp;
    }
    if (cfg->global_batch % (cfg->dp * cfg->micro_batch))
        return errorf(err, errlen, "train.global_batch: %d is not divisible by dp x micro_batch = %d x %d = %d",
                    cfg->global_batch, cfg->dp, cfg->micro_batch, cfg->dp * cfg->micro_batch);
    cfg->data.opt_batch = cfg->micro_batch;
    return true;
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = *cap * 2 + (size_t)(n > 0 ? n : 0);
        char *nb = realloc(*buf, *cap);
        if (!nb)
            DIE(EXIT_FAULT, "out of memory writing the config text");
        *buf = nb;
    }
}

/* The idx-th name of a "a|b|c" list into out (empty when out of range). */
static void enum_item(const char *enums, int idx, char *out, size_t n)
{
    const char *p = enums;
    for (int j = 0; j < idx && p; j++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    const char *bar = p ? strchr(p, '|') : NULL;
    snprintf(out, n, "%.*s", p ? (int)(bar ? (size_t)(bar - p) : strlen(p)) : 0, p ? p : "");
}

const char *config_enum_name(const char *section, const char *key, int value)
{
    /* one slot per enum key, filled on first use: the names live as long as the program */
    static char names[NKEYS][8][CFG_NAME_LEN];
    int i = key_index(section, key);
    if (i < 0 || keys[i].type != K_ENUM || value < 0 || value >= 8)
        DIE(EXIT_FAULT, "config_enum_name: %s.%s is not an enum key with value %d", section, key, value);
    if (!names[i][value][0])
        enum_item(keys[i].dom, value, names[i][value], CFG_NAME_LEN);
    return names[i][value];
}

static void format_value(const config_t *cfg, int i, char *out, size_t n)
{
    const key_t_ *k = &keys[i];
    const char *field = (const char *)cfg + k->off;
    switch (k->type) {
    case K_INT: snprintf(out, n, "%d", *(const int *)field); break;
    case K_I64: snprintf(out, n, "%lld", (long long)*(const int64_t *)field); break;
    case K_U64: snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case K_DBL: snprintf(out, n, "%.17g", *(const double *)field); break;
    case K_STR: snprintf(out, n, "%s", field); break;
    case K_BOOL: snprintf(out, n, "%s", *(const bool *)field ? "true" : "false"); break;
    case K_ENUM: enum_item(k->dom, *(const int *)field, out, n); break;
    }
}

/* Keys a resume may change: they leave the trajectory as it was (layout, logging,
 * checkpoint cadence, what the directory is called and where it lives) or only extend it (train.steps:
 * the schedule is that of the new step count from the resumed step on). Sections
 * ending in ".*" are whole. */
static const char *const resume_safe[] = {
    "run.name", "run.out_dir", "run.experiment", "train.steps", "train.micro_batch", "train.checkpoint_every",
    "train.keep_checkpoints", "train.resume", "train.stop_at_loss_of", "parallel.*", "log.*"};

static bool is_resume_safe(int i)
{
    for (size_t j = 0; j < sizeof resume_safe / sizeof resume_safe[0]; j++) {
        const char *r = resume_safe[j], *dot = strchr(r, '.');
        size_t ls = (size_t)(dot - r);
        if (strlen(keys[i].section) == ls && !strncmp(r, keys[i].section, ls) &&
            (!strcmp(dot + 1, "*") || !strcmp(dot + 1, keys[i].name)))
            return true;
    }
    return false;
}

struct diff_ctx {
    config_t *old;
};

static int diff_line(void *user, const char *section, const char *name, const char *value)
{
    struct diff_ctx *c = user;
    char err[256];
    config_set(c->old, section, name, value, err, sizeof err); /* a key this version lacks: ignored */
    return 1;
}

int config_diff_unsafe(const config_t *cfg, const char *old_ini, char *out, size_t len)
{
    config_t *old = xcalloc(1, sizeof *old);
    set_defaults(old);
    struct diff_ctx c = {old};
    ini_parse_string(old_ini, diff_line, &c);
    int n = 0;
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < NKEYS; i++) {
        char a[CFG_PATH_LEN + 32], b[CFG_PATH_LEN + 32];
        format_value(old, i, a, sizeof a);
        format_value(cfg, i, b, sizeof b);
        if (!strcmp(a, b) || is_resume_safe(i) || !strcmp(keys[i].name, "size"))
            continue;
        n++;
        if (at < len)
            at += (size_t)snprintf(out + at, len - at, "%s%s.%s %s -> %s", n > 1 ? ", " : "", keys[i].section,
                                   keys[i].name, a[0] ? a : "\"\"", b[0] ? b : "\"\"");
    }
    free(old);
    return n;
}

char *config_to_ini(const config_t *cfg)
{
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    buf[0] = 0;
    const char *section = "";
    for (int i = 0; i < NKEYS; i++) {
        if (strcmp(section, keys[i].section)) {
            section = keys[i].section;
            append(&buf, &len, &cap, "%s[%s]\n", len ? "\n" : "", section);
        }
        char v[CFG_PATH_LEN + 32];
        format_value(cfg, i, v, sizeof v);
        /* the size preset has been expanded into the four keys below it */
        if (!strcmp(keys[i].section, "model") && !strcmp(keys[i].name, "size"))
            append(&buf, &len, &cap, "; size = %s (expanded below)\n", v);
        else
            append(&buf, &len, &cap, "%s = %s\n", keys[i].name, v);
    }
    return buf;
}

/* Text inside a Markdown table cell: a bar must be escaped. */
static void md_cell(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputc('\\', out);
        fputc(*p, out);
    }
}

void config_print_keys_markdown(FILE *out)
{
    const char *section = "";
    for (int i = 0; i < NKEYS; i++) {
        if (strcmp(section, keys[i].section)) {
            section = keys[i].section;
            fprintf(out, "\n### [%s]\n\n| key | type | default | meaning |\n|---|---|---|---|\n", section);
        }
        const char *t[] = {"int", "int", "int", "number", "string", "bool", "enum"};
        fprintf(out, "| `%s.%s` | %s", keys[i].section, keys[i].name, t[keys[i].type]);
        if (keys[i].dom) {
            fputs(": ", out);
            md_cell(out, keys[i].dom);
        }
        fprintf(out, " | `%s` | ", keys[i].def[0] ? keys[i].def : "\"\"");
        md_cell(out, keys[i].doc);
        fputs(is_resume_safe(i) ? " (may change on resume)" : "", out);
        fputs(" |\n", out);
    }
}
