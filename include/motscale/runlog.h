/* The run-record writer: one HDF5 file per run (run.h5), written by world rank 0
 * only, latest-format bounds, every object created up front from the column list of
 * runschema.h, then SWMR appends so a reader can follow the run live. Layout and
 * units: docs/run-record.md. */
#ifndef MOTSCALE_RUNLOG_H
#define MOTSCALE_RUNLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"
#include "motscale/runschema.h"

#define RUNLOG_SCHEMA_VERSION RUNREC_SCHEMA_VERSION

/* What goes into the root and /model attributes (filled by the trainer). */
typedef struct runlog_meta {
    const char *config_text;        /* resolved INI text */
    const char *experiment, *run_name;
    int world_size, dp, tp;
    int load_width;                 /* /metrics/expert_load columns; 0: no experts */
    int task_width;                 /* OPT: the task columns (/metrics/task_loss ...); 0: none */
    int decode_pairs;               /* held-out pairs decoded at evaluation; 0: none */
    int moe_layers, moe_experts;    /* its shape: [moe_layers][moe_experts][modality] */
    const int32_t *moe_layer_tower, *moe_layer_index; /* per moe layer: its tower and layer */
    const char *moe_eval_routing;   /* "ec" | "top1" (with experts) */
    const char *moe_group;          /* "batch" | "sequence" (with experts) */
    /* continuous images: /eval/image_loss_at_t columns (0: token images), their
     * timesteps, and what /model says of the objective */
    const char *image_objective;    /* "tokens" | "diffusion" */
    int image_grid;
    const int32_t *image_grid_t;
    int diffusion_steps, patch_dim, sample_steps;
    double diffusion_weight;
    double moe_capacity, moe_zloss;
    const char *tp_backend;         /* megatron | scalapack */
    const char *hostnames;          /* comma-separated, one per distinct host */
    const char *mpi_library_version;
    const char *blas;               /* e.g. "OpenBLAS 0.3.21 (1 thread)" */
    double peak_flops_per_rank;
    const char *peak_flops_source;  /* "measured (sgemm probe, cached in ...)" or "config" */
    /* /model */
    const char *kind;               /* model.kind */
    int d_model, n_layers, n_heads, d_ff, seq_len, n_towers;
    int n_modalities;
    const char *modality_names[MAX_MODALITIES];
    int32_t tower_of[MAX_MODALITIES];
    int64_t params_total, params_active_per_token;
    double flops_per_token;         /* training FLOPs per token (3 x forward) */
    int32_t vocab_size;
} runlog_meta_t;

typedef struct runlog runlog_t;

/* Create path (failing if it exists), write every attribute, create every
 * dataset empty, start SWMR. NULL with err filled on failure. */
runlog_t *runlog_create(const char *path, const runlog_meta_t *meta, char *err, size_t errlen);
/* Reopen an existing run file for appending after a resume: clears a crashed
 * writer's SWMR flags, drops rows with step > last_step (metrics, ranks, eval),
 * updates the Slurm attributes, the layout (world_size, dp, tp: the resumed job's;
 * /ranks widens to the largest world, NaN where a rank did not exist) and /@config,
 * appends this start's /restarts row, restarts SWMR. */
runlog_t *runlog_reopen(const char *path, int64_t last_step, int world_size, int dp, int tp,
                        const char *config_text, char *err, size_t errlen);
/* One row per column of runschema.h; by-modality values have M entries, per-rank
 * values world_size entries. */
bool runlog_append(runlog_t *r, const runlog_row_t *row);
bool runlog_append_eval(runlog_t *r, const runlog_eval_t *ev);
/* Record the equal-loss stop (train.stop_at_loss_of) as attributes of /. */
bool runlog_set_attr_double(runlog_t *r, const char *name, double v);
bool runlog_set_attr_string(runlog_t *r, const char *name, const char *v);
bool runlog_flush(runlog_t *r);
/* The first failure of an append, flush or attribute since the file was opened (one
 * line, "PATH: OBJECT: what (HDF5: why)"), or NULL; after one, appends and flushes
 * refuse at once, so a full disk gives one message. */
const char *runlog_error(const runlog_t *r);
void runlog_close(runlog_t *r);

#endif
