/* The diffusion objective's schedule (model.image_objective = diffusion,
 * docs/model.md "Continuous images"): DDPM's cosine schedule over T steps, the
 * noising of clean patches, and the deterministic DDIM step the sampler takes. */
#ifndef MOTSCALE_DIFFUSION_H
#define MOTSCALE_DIFFUSION_H

#include <stdint.h>

/* Held-out image loss is also measured at this many fixed timesteps,
 * t_g = round((g + 1/2) T / DIFFUSION_EVAL_GRID), every image at each. */
#define DIFFUSION_EVAL_GRID 4

typedef struct diffusion_schedule {
    int T;
    double *abar;                  /* [0 .. T]: alpha-bar_t, abar[0] = 1 */
} diffusion_schedule_t;

/* f(t) = cos^2(((t / T) + s) / (1 + s) pi / 2), s = 0.008; beta_t = min(1 - f(t) / f(t - 1),
 * 0.999); abar_t = prod_{u <= t} (1 - beta_u). */
void diffusion_schedule_init(diffusion_schedule_t *s, int T);
void diffusion_schedule_free(diffusion_schedule_t *s);
/* The g-th timestep of the held-out grid. */
int32_t diffusion_grid_t(const diffusion_schedule_t *s, int g);

/* x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for each of n positions with t > 0
 * (P floats each); 0 where t = 0. */
void diffusion_noise(const diffusion_schedule_t *s, float *xt, const float *x0, const float *eps,
                     const int32_t *t, int64_t n, int P);
/* One DDIM step (eta = 0) of n values from t to t_prev < t given the predicted noise
 * e: x0_hat = (x - sqrt(1 - abar_t) e) / sqrt(abar_t), clipped to [-clip, clip] (the
 * data's range, as DDPM's samplers clip to [-1, 1]: near t = T abar_t is ~1e-9 and the
 * division would blow any error in e up), then x = sqrt(abar_prev) x0_hat +
 * sqrt(1 - abar_prev) e', e' = (x - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) the noise
 * the clipped estimate implies (t_prev = 0: x = x0_hat). */
void diffusion_ddim_step(const diffusion_schedule_t *s, float *x, const float *e, int32_t t, int32_t t_prev,
                         int64_t n, double clip);

#endif
