/* DDPM's cosine schedule, noising and the DDIM step (diffusion.h). Double
 * precision throughout; the products are stored as float like the data. */
#include <math.h>
#include <stdlib.h>

#include "motscale/common.h"
#include "motscale/diffusion.h"

static double cosine_f(double t, double T)
{
    const double s = 0.008;
    double c = cos((t / T + s) / (1 + s) * M_PI / 2);
    return c * c;
}

void diffusion_schedule_init(diffusion_schedule_t *s, int T)
{
    s->T = T;
    s->abar = xmalloc((size_t)(T + 1) * sizeof *s->abar);
    s->abar[0] = 1;
    for (int t = 1; t <= T; t++) {
        double beta = 1 - cosine_f(t, T) / cosine_f(t - 1, T);
        beta = beta < 0.999 ? beta : 0.999;
        s->abar[t] = s->abar[t - 1] * (1 - beta);
    }
}

void diffusion_schedule_free(diffusion_schedule_t *s)
{
    free(s->abar);
    s->abar = NULL;
}

int32_t diffusion_grid_t(const diffusion_schedule_t *s, int g)
{
    int32_t t = (int32_t)lround((g + 0.5) * s->T / DIFFUSION_EVAL_GRID);
    return t < 1 ? 1 : t > s->T ? s->T : t;
}

void diffusion_noise(const diffusion_schedule_t *s, float *xt, const float *x0, const float *eps,
                     const int32_t *t, int64_t n, int P)
{
    for (int64_t i = 0; i < n; i++) {
        double a = t[i] > 0 ? sqrt(s->abar[t[i]]) : 0, b = t[i] > 0 ? sqrt(1 - s->abar[t[i]]) : 0;
        for (int j = 0; j < P; j++)
            xt[i * P + j] = (float)(a * x0[i * P + j] + b * eps[i * P + j]);
    }
}

void diffusion_ddim_step(const diffusion_schedule_t *s, float *x, const float *e, int32_t t, int32_t t_prev,
                         int64_t n, double clip)
{
    double at = s->abar[t], ap = s->abar[t_prev];
    for (int64_t i = 0; i < n; i++) {
        double x0 = ((double)x[i] - sqrt(1 - at) * e[i]) / sqrt(at);
        x0 = x0 < -clip ? -clip : x0 > clip ? clip : x0;
        double ee = ((double)x[i] - sqrt(at) * x0) / sqrt(1 - at);
        x[i] = (float)(t_prev == 0 ? x0 : sqrt(ap) * x0 + sqrt(1 - ap) * ee);
    }
}
