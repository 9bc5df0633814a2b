/* Run configuration: the INI file (parsed with inih) plus `section.key=value`
 * overrides, resolved into one struct, validated before any rank trains. The key
 * table in src/io/config.c is the single source of keys, types, defaults and enum
 * names; docs/config.md documents every one of them. Only the CLI, sweeps and the
 * trainer's top (train.c) see this header: modules get their own parameter structs. */
#ifndef MOTSCALE_CONFIG_H
#define MOTSCALE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "motscale/common.h"
#include "motscale/data.h"
#include "motscale/model.h"
#include "motscale/optim.h"


enum resume_mode { RESUME_NO, RESUME_AUTO, RESUME_CHECKPOINT };

/* The keys as one struct. A module takes only its own part, filled by
 * config_resolve: model (model.h), init, data (data.h, with its synthetic
 * generators), sched and adamw (optim.h). */
typedef struct config {
    /* run */
    char name[CFG_PATH_LEN];
    char experiment[CFG_NAME_LEN];       /* set by sweeps; groups runs in reports */
    char out_dir[CFG_PATH_LEN];
    uint64_t seed;
    /* model: shape (d_model ... tp_backend; n_modalities, n_towers and tower_of
     * resolved), init, and the keys that only choose them */
    model_shape_t model;
    model_init_t init;
    char towers[CFG_PATH_LEN];           /* "text,image | speech" when kind = towers */
    char moe_towers[CFG_PATH_LEN];       /* "text": towers with experts, kind mot|towers */
    char size[16];                       /* xs|s|m|l|xl preset, or "" */
    int t_cap_image_first;               /* diffusion: the generator's t cap (data.synth) */
    int sample_steps;                    /* diffusion: DDIM steps of the final sampling check */
    int patch_dim;                       /* data.patch_dim as written (used under diffusion) */
    /* data: source, path, synthetic generators; names, mix_share, seq_len and seed
     * resolved */
    data_params_t data;
    char modalities[CFG_PATH_LEN];       /* "text,image" as written */
    char mix[CFG_PATH_LEN];              /* "1,1": token share per modality, as written */
    /* train */
    int64_t steps;
    int global_batch, micro_batch;       /* sequences; micro_batch 0 = global/dp */
    lr_schedule_t sched;                 /* lr, lr_min, warmup; steps resolved */
    adamw_hp_t adamw;
    double grad_clip;
    int64_t checkpoint_every;
    int keep_checkpoints;
    int resume;                          /* enum resume_mode */
    char stop_at_loss_of[CFG_PATH_LEN];
    /* parallel (tp_backend lives in model) */
    int tp, dp;                          /* dp 0 = auto: world / tp */
    double bucket_mb;
    int zero;                            /* ZeRO stage, 0 or 1 */
    bool dp_overlap;                     /* DP buckets started non-blocking during backward */
    int blas_threads;                    /* 0: from the environment, else 1 */
    /* log */
    int64_t log_every, eval_every, eval_tokens, flush_every;
    int retrieval_pool;                  /* model.kind = opt: held-out samples per retrieval pool */
    double peak_flops;                   /* per rank; 0 = measure once and cache */
    bool quiet;

    /* Where it came from, for messages and the run record. */
    char file[CFG_PATH_LEN];
    uint64_t set_mask[4];                /* keys given explicitly (bit = table index) */
    int key_origin[256];                 /* per key: file line (> 0), -(override index + 1), 0 default */
} config_t;

/* Fill defaults, parse FILE (NULL: defaults only), apply overrides
 * ("section.key=value"), then resolve and validate. On bad input writes one line
 * "FILE:LINE: section.key: why" (or "override 'x': why") into err and returns
 * false. */
bool config_load(config_t *cfg, const char *file, int n_over, char *const *over,
                 char *err, size_t errlen);

/* Read an INI file that has passed the checks every configuration gets (a regular
 * file, no NUL byte, lines inih can hold, well-formed lines) and hand each key to
 * handler (inih's callback); false with "FILE:LINE: why" on the first problem, why
 * being the handler's own message when it refused a line (the text at `why`). */
typedef int (*config_ini_handler)(void *user, const char *section, const char *name, const char *value);
bool config_read_ini(const char *path, config_ini_handler handler, void *user, const char *why,
                     char *err, size_t errlen);

/* Set one key from text, as an override would; false with a message on error. */
bool config_set(config_t *cfg, const char *section, const char *key, const char *value,
                char *err, size_t errlen);

/* Is section.key a known key? (Sweeps check their keys with this.) */
bool config_has_key(const char *section, const char *key);

/* Derive n_modalities, tower_of, size presets; check combinations. */
bool config_resolve(config_t *cfg, char *err, size_t errlen);

/* Layout checks that need the world size (dp = auto, divisibilities). */
bool config_check_layout(config_t *cfg, int world_size, char *err, size_t errlen);

/* The name of value of enum key section.key ("model", "kind", MODEL_MOT -> "mot"),
 * from the key table: the one place the names are spelled. */
const char *config_enum_name(const char *section, const char *key, int value);

/* The keys whose value in old_ini (a run's resolved config.ini) differs from cfg's
 * and that change the trajectory (all but the documented resume-safe keys), as
 * "section.key OLD -> NEW, ..." into out. Returns how many. */
int config_diff_unsafe(const config_t *cfg, const char *old_ini, char *out, size_t len);

/* The fully resolved configuration as INI text (malloc'd). */
char *config_to_ini(const config_t *cfg);

/* Print every key with its default and description as a Markdown table. */
void config_print_keys_markdown(FILE *out);

#endif
