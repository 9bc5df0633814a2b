/* The progress reporter: sums over the steps since the last progress line, and the
 * two lines world rank 0 prints (docs/run-record.md, "The progress line"). Private
 * to src/train. */
#ifndef MOTSCALE_TRAIN_REPORTER_H
#define MOTSCALE_TRAIN_REPORTER_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"
#include "step.h"

typedef struct reporter {
    int n_mod;
    const char (*names)[CFG_NAME_LEN];
    int64_t steps;                   /* of the whole run, for the counter and the ETA */
    bool quiet;
    double peak;                     /* per rank, for MFU */
    int world;
    /* the interval since the last line */
    double t0, tokens, flops;
    int64_t n_steps;
    double loss[MAX_MODALITIES + 1]; /* per-modality sums; [n_mod]: sum of step means */
    int64_t cnt[MAX_MODALITIES + 1];
} reporter_t;

void reporter_init(reporter_t *r, int n_mod, const char (*names)[CFG_NAME_LEN], int64_t steps,
                   bool quiet, double peak, int world);
void reporter_add(reporter_t *r, const step_result_t *s, double step_flops);
/* The step line for the interval ending at `step` (rank 0 prints it) from the
 * per-rank (step seconds, communication seconds) pairs of this step. */
void reporter_step_line(const reporter_t *r, int64_t step, const double *rank_times);
/* Start a new interval now. */
void reporter_reset(reporter_t *r);
/* "eval N | held-out loss ... | text ... image ..." */
void reporter_eval_line(const reporter_t *r, int64_t step, double loss, const double *by_mod);

#endif
