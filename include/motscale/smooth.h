/* The loss smoother of the run-record contract: the smoothed training loss that
 * `motscale compare` step-matches on and that the trainer's equal-loss stop
 * (train.stop_at_loss_of) compares against, so both agree on "the final loss of a
 * run". Method: docs/analysis.md.
 *
 * A debiased exponential moving average in continuous step time whose time constant
 * is a fixed fraction of the current step: tau = window * step. Between two logged
 * points the input is taken as linear, and the average is integrated exactly over the
 * interval; the total weight is tracked and divided out (debiasing), so a constant
 * series is returned exactly and the first point is returned as is. A time constant
 * proportional to the step makes the smoother commute with stretching the step axis,
 * so the lag it adds cancels in step matching instead of biasing the slope.
 *
 * Online use, one state per modality:
 *     smooth_ema_t e; smooth_ema_init(&e, SMOOTH_DEFAULT);
 *     each logged step: double s = smooth_ema_update(&e, step, loss);
 * A NaN input (no tokens of that modality in the step) leaves the state as it was
 * and returns the current smoothed value (NaN until the first finite input). */
#ifndef MOTSCALE_SMOOTH_H
#define MOTSCALE_SMOOTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default smoothing window of training loss: the EMA time constant is this fraction
 * of the current step. 0 turns smoothing off. */
#define SMOOTH_DEFAULT 0.1

typedef struct smooth_ema {
    double window;   /* tau / step */
    double m, w;     /* weighted sum of inputs, sum of weights */
    int64_t prev;    /* step of the last finite input */
    double x_prev;   /* that input */
    bool started;
} smooth_ema_t;

void smooth_ema_init(smooth_ema_t *e, double window);
double smooth_ema_update(smooth_ema_t *e, int64_t step, double x);

/* out[i] = smoothed x[i * stride] over steps step[0..n). */
void smooth_series(double *out, const int64_t *step, const double *x, size_t stride, size_t n,
                   double window);

#endif
