/* Checkpoints: one HDF5 file per checkpoint, written collectively with parallel
 * HDF5 (MPI-IO). Every parameter and AdamW moment is stored as the full logical
 * tensor under its documented name, each TP rank writing its hyperslab, so a
 * checkpoint taken at one layout resumes at another. Written under a temporary
 * name, then renamed; the last `keep` are kept. Layout: docs/run-record.md. */
#ifndef MOTSCALE_CHECKPOINT_H
#define MOTSCALE_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/mesh.h"
#include "motscale/model.h"
#include "motscale/optim.h"

typedef struct train_progress {
    int64_t step;           /* steps completed; the data cursor is this step's first window */
    int64_t tokens;         /* target tokens trained on, cumulative */
    double flops;           /* model FLOPs (flops.h), cumulative */
    double gemm_flops;      /* FLOPs issued to BLAS, cumulative */
    double wall_time;       /* seconds of training, cumulative across restarts */
} train_progress_t;

/* The model's identity for validation: a hash of its shape and vocabulary layout.
 * A checkpoint from a different model is refused. */
uint64_t checkpoint_fingerprint(const model_t *m);

/* Collective over the world. Writes DIR/ckpt-STEP.h5 (via DIR/.ckpt-STEP.h5.tmp)
 * and removes all but the newest `keep`. false with err on any rank's failure
 * (the result is agreed over the world). */
bool checkpoint_write(const char *dir, const model_t *m, const adamw_t *opt,
                      const train_progress_t *p, uint64_t fingerprint, const mesh_t *mesh,
                      int keep, double *seconds, double *bytes, char *err, size_t errlen);

/* Collective. Loads the newest checkpoint in DIR that opens and validates, falling
 * back to older ones with a warning. Returns 1 when one was loaded, 0 when DIR has
 * none, -1 with err when every candidate failed validation (bad input). */
int checkpoint_load_latest(const char *dir, model_t *m, adamw_t *opt, train_progress_t *p,
                           uint64_t fingerprint, const mesh_t *mesh, char *err, size_t errlen);

/* Collective. The starting values of the tensors with a source (tensor_info_t.src):
 * from source[src]'s /params, by the tensor's src_name and rows; sources given as ""
 * are skipped (the seeded draw stays). false with err naming the file and dataset. */
bool checkpoint_load_sources(model_t *m, const char source[][CFG_PATH_LEN], int n_sources, const mesh_t *mesh,
                             char *err, size_t errlen);

#endif
