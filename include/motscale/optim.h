/* AdamW with decoupled weight decay on matrices only, the learning-rate schedule
 * (linear warm-up, cosine decay to a floor), and the global gradient norm. */
#ifndef MOTSCALE_OPTIM_H
#define MOTSCALE_OPTIM_H

#include <stdint.h>

#include "motscale/config.h"
#include "motscale/model.h"

typedef struct adamw {
    real *m, *v;          /* moments, one allocation each, laid out like the params */
    size_t n;
} adamw_t;

void adamw_init(adamw_t *o, size_t n);
void adamw_free(adamw_t *o);
/* One update at 1-based step t with learning rate lr, using gscale x the gradients
 * (the clipping factor), then zero the gradients for the next step: one pass over
 * parameters, gradients and moments. */
void adamw_step(adamw_t *o, model_t *m, int64_t t, double lr, double gscale, const config_t *cfg);

/* lr at 0-based step: warm-up from lr/warmup to lr, then cosine to lr_min at the end. */
double lr_at(const config_t *cfg, int64_t step);

/* Global L2 norm of the logical gradient: sharded slices are summed over the TP
 * group, replicated tensors counted once. */
double grad_global_norm(model_t *m);

#endif
