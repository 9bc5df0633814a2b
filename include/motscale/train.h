/* The training loop: data-parallel micro-batches, tensor-parallel model, AdamW,
 * held-out evaluation, the run directory and its record, checkpoints, signals. */
#ifndef MOTSCALE_TRAIN_H
#define MOTSCALE_TRAIN_H

#include "motscale/config.h"
#include "motscale/mesh.h"

/* Run one training job on the mesh (collective). Returns the process exit status
 * (EXIT_OK, EXIT_PREEMPTED after a signal, EXIT_BADINPUT, EXIT_FAULT). */
int train_run(config_t *cfg, const mesh_t *mesh);

/* One-thread SGEMM FLOP/s (C = A B, square, row-major): for n = 512, 1024, 2048 the
 * best of `reps` timed products, into best_by_size[i] unless NULL; returns the best
 * over the sizes. The MFU denominator of peak_flops_per_rank and bench/bench_sgemm. */
#define PEAK_PROBE_SIZES 3
double peak_sgemm_probe(int reps, double best_by_size[PEAK_PROBE_SIZES]);

/* Per-rank peak FLOP/s for MFU: measured once by a one-thread SGEMM probe (best of
 * square sizes 512 to 2048) and cached in CACHE_DIR/.peak_flops-HOST, or taken from
 * the config. source receives how it was obtained. */
double peak_flops_per_rank(const config_t *cfg, const char *cache_dir, char *source, size_t len);

#endif
