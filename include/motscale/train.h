/* The training loop: data-parallel micro-batches, tensor-parallel model, AdamW,
 * held-out evaluation, the run directory and its record, checkpoints, signals. */
#ifndef MOTSCALE_TRAIN_H
#define MOTSCALE_TRAIN_H

#include "motscale/config.h"
#include "motscale/mesh.h"

/* Run one training job on the mesh (collective). Returns the process exit status
 * (EXIT_OK, EXIT_PREEMPTED after a signal, EXIT_BADINPUT, EXIT_FAULT). */
int train_run(config_t *cfg, const mesh_t *mesh);

/* SIGUSR1, SIGTERM (and SIGINT on a terminal) only request a checkpoint and exit 75
 * at the next step boundary; install as early as possible. */
void train_install_signals(void);

#endif
