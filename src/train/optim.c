/* AdamW, the learning-rate schedule and gradient-norm clipping. */
#include <math.h>
#include <stdlib.h>

#include "motscale/optim.h"

void adamw_init(adamw_t *o, size_t n)
{
    o->n = n;
    o->m = xcalloc(n, sizeof(real));
    o->v = xcalloc(n, sizeof(real));
}

void adamw_free(adamw_t *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void adamw_step(adamw_t *o, model_t *m, int64_t t, double lr, const config_t *cfg)
{
    double b1 = cfg->beta1, b2 = cfg->beta2;
    double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *ti = &m->tensors[i];
        real decay = (real)(ti->decay ? lr * cfg->weight_decay : 0);
        real *p = m->params + ti->offset, *g = m->grads + ti->offset;
        real *mm = o->m + ti->offset, *vv = o->v + ti->offset;
        for (size_t j = 0; j < ti->numel; j++) {
            mm[j] = (real)(b1 * mm[j] + (1 - b1) * g[j]);
            vv[j] = (real)(b2 * vv[j] + (1 - b2) * g[j] * g[j]);
            double mh = mm[j] / c1, vh = vv[j] / c2;
            p[j] -= (real)(lr * mh / (sqrt(vh) + cfg->adam_eps)) + decay * p[j];
        }
    }
}

double lr_at(const config_t *cfg, int64_t step)
{
    if (step < cfg->warmup)
        return cfg->lr * (double)(step + 1) / (double)cfg->warmup;
    int64_t span = cfg->steps - cfg->warmup;
    if (span <= 1)
        return cfg->lr;
    double frac = (double)(step - cfg->warmup) / (double)(span - 1);
    return cfg->lr_min + 0.5 * (cfg->lr - cfg->lr_min) * (1 + cos(M_PI * frac));
}

double grad_global_norm(model_t *m)
{
    double replicated = 0, sharded = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *t = &m->tensors[i];
        const real *g = m->grads + t->offset;
        double ss = 0;
        for (size_t j = 0; j < t->numel; j++)
            ss += (double)g[j] * g[j];
        if (t->shard == SHARD_NONE)
            replicated += ss;
        else
            sharded += ss;
    }
    return sqrt(replicated + tp_sum_double(&m->tp, sharded));
}

void grad_scale(model_t *m, real factor)
{
    for (size_t i = 0; i < m->n_local; i++)
        m->grads[i] *= factor;
}
