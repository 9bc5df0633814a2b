/* The loss smoother shared by compare, report and the trainer's equal-loss stop: a
 * debiased EMA whose time constant is a fixed fraction of the step (smooth.h). */
#include <math.h>

#include "motscale/smooth.h"

void smooth_ema_init(smooth_ema_t *e, double window)
{
    e->window = window > 0 ? window : 0;
    e->m = 0;
    e->w = 0;
    e->prev = 0;
    e->x_prev = 0;
    e->started = false;
}

double smooth_ema_update(smooth_ema_t *e, int64_t step, double x)
{
    if (!isfinite(x))
        return e->started ? e->m / e->w : NAN;
    /* Over the interval from the previous input (from step 0 for the first) the
     * state follows dm/dt = (x(t) - m) / tau, tau = window * step, with x linear
     * between the two logged points (constant before the first). The exact solution:
     *   m' = beta m + (1 - beta) x + g (beta dt - tau (1 - beta)),  beta = exp(-dt/tau)
     * with g the slope of x over the interval; w follows the same with x = 1, so m / w
     * is the debiased average. Holding x constant instead would lag less for a run
     * logged more densely relative to its progress, and bias step matching. beta = 0
     * without a window or at step <= 0, where tau is 0. Steps in a run record
     * increase; one that does not is taken as one step on. */
    double beta = 0, corr = 0;
    if (e->window > 0 && step > 0) {
        double dt = step > e->prev ? (double)(step - e->prev) : 1.0;
        double tau = e->window * (double)step;
        beta = exp(-dt / tau);
        if (e->started)
            corr = (x - e->x_prev) / dt * (beta * dt - tau * (1 - beta));
    }
    e->m = beta * e->m + (1 - beta) * x + corr;
    e->w = beta * e->w + (1 - beta);
    e->prev = step;
    e->x_prev = x;
    e->started = true;
    return e->m / e->w;
}

void smooth_series(double *out, const int64_t *step, const double *x, size_t stride,
                     size_t n, double window)
{
    smooth_ema_t e;
    smooth_ema_init(&e, window);
    for (size_t i = 0; i < n; i++)
        out[i] = smooth_ema_update(&e, step[i], x[i * stride]);
}
