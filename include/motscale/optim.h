/* AdamW with decoupled weight decay on the tensors the table marks, the learning-rate
 * schedule (linear warm-up, cosine decay to a floor; exact formula in
 * docs/config.md), and the global gradient norm. */
#ifndef MOTSCALE_OPTIM_H
#define MOTSCALE_OPTIM_H

#include <stdint.h>

#include "motscale/model.h"

typedef struct adamw_hp {
    double beta1, beta2, eps, weight_decay;
} adamw_hp_t;

typedef struct lr_schedule {
    double lr, lr_min;       /* peak and floor */
    int64_t warmup, steps;   /* warm-up steps; steps of the whole run */
} lr_schedule_t;

typedef struct adamw {
    real *m, *v;          /* moments, one allocation each, laid out like the params */
    size_t n;
} adamw_t;

void adamw_init(adamw_t *o, size_t n);
void adamw_free(adamw_t *o);
/* One update at 1-based step t with learning rate lr, using gscale x the gradients
 * (the clipping factor), then zero the gradients for the next step: one pass over
 * parameters, gradients and moments. */
void adamw_step(adamw_t *o, model_t *m, int64_t t, double lr, double gscale, const adamw_hp_t *hp);

/* lr of 0-based step: warm-up from lr/warmup to lr over steps 0 .. warmup-1, then
 * cosine from lr to lr_min over the remaining steps, the last one at lr_min. */
double lr_at(const lr_schedule_t *s, int64_t step);

/* Global L2 norm of the logical gradient: sharded slices are summed over the TP
 * group, replicated tensors counted once. */
double grad_global_norm(model_t *m);

#endif
