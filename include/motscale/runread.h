/* The run-record reader: one run.h5 (docs/run-record.md) into memory, its columns
 * from the schema list of runschema.h, the attributes of / and /model. Used by the
 * analysis (compare, report) and by the trainer's equal-loss stop. Opens a live file
 * as a SWMR reader without taking the writer's lock. */
#ifndef MOTSCALE_RUNREAD_H
#define MOTSCALE_RUNREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "motscale/runschema.h"

#define RUNREC_MAX_MOD 8
#define RUNREC_NAME_LEN 64

typedef struct runrec {
    char path[4096];
    char *config;                     /* resolved INI text */
    char experiment[128], run_name[128], kind[16], tp_backend[32];
    int schema_version, world_size, dp, tp;
    double peak_flops_per_rank;
    int d_model, n_layers, n_heads, d_ff, seq_len, vocab_size, n_towers;
    int n_mod;
    char mod_names[RUNREC_MAX_MOD][RUNREC_NAME_LEN];
    int64_t params_total, params_active_per_token;
    double flops_per_token;
    int moe_experts, moe_layers;      /* 0 without experts */
    char moe_eval_routing[16];
    /* n rows of /metrics and /ranks, n_eval rows of /eval (0 without evaluations);
     * n_ranks columns of /ranks. Arrays are rows x width, row-major; a column
     * missing from an older record reads NaN (float) or 0 (integer). */
    size_t n, n_eval, n_ranks;
    size_t n_load;                    /* expert_load columns: moe_layers x moe_experts x n_mod */
    size_t n_task, n_retr;            /* OPT: task columns, retrieval columns (0: none) */
    size_t n_grid;                    /* image_loss_at_t columns (0: token images) */
    size_t n_bucket, n_pairs;         /* decoding: length buckets and held-out pairs (0: none) */
    RUNREC_METRICS(RUNREC_READ_FIELD)
    RUNREC_EVAL(RUNREC_READ_FIELD)
} runrec_t;

/* Load path (read-only, SWMR when the writer is live). Rows are cut to the shortest
 * column, so a file being appended reads consistently. false with err filled
 * ("PATH: /metrics/loss: ...") on a missing or malformed file or an empty run. */
bool runrec_load(const char *path, runrec_t *run, char *err, size_t errlen);
void runrec_free(runrec_t *run);

/* Value of `key` in `[section]` of the run's config text, or "" when absent. */
void runrec_config_get(const runrec_t *run, const char *section, const char *key, char *out,
                       size_t outlen);

/* The final smoothed training loss of the record at path (smooth.h, window
 * SMOOTH_DEFAULT), overall and per modality; names[m] gets the modality names and a
 * modality never seen gets NaN. For train.stop_at_loss_of. */
bool runrec_final_losses(const char *path, int *n_mod, char names[][RUNREC_NAME_LEN],
                         double *final_loss_by_mod, double *final_loss_overall, char *err,
                         size_t errlen);

#endif
