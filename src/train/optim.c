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

void adamw_step(adamw_t *o, model_t *m, int64_t t, double lr, double gscale, const adamw_hp_t *hp)
{
    /* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
     * p -= lr (m / c1) / (sqrt(v / c2) + eps) + lr wd p,  c_i = 1 - b_i^t.
     * Constants folded once so the loop is plain multiply-adds (it vectorises). */
    const real b1 = (real)hp->beta1, b2 = (real)hp->beta2;
    const real a1 = (real)(1 - hp->beta1), a2 = (real)(1 - hp->beta2);
    const real step = (real)(lr / (1 - pow(hp->beta1, (double)t)));
    const real rc2 = (real)(1 / sqrt(1 - pow(hp->beta2, (double)t)));
    const real eps = (real)hp->eps, gs = (real)gscale;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *ti = &m->tensors[i];
        if (ti->frozen) /* no gradient, no moments */
            continue;
        const real keep = (real)(1 - (ti->decay ? lr * hp->weight_decay : 0));
        real *restrict p = m->params + ti->offset;
        real *restrict g = m->grads + ti->offset;
        real *restrict mm = o->m + ti->offset, *restrict vv = o->v + ti->offset;
        for (size_t j = 0; j < ti->numel; j++) {
            real gj = gs * g[j];
            g[j] = 0; /* consumed: the next step accumulates from zero */
            real mj = b1 * mm[j] + a1 * gj;
            real vj = b2 * vv[j] + a2 * gj * gj;
            mm[j] = mj;
            vv[j] = vj;
            p[j] = keep * p[j] - step * mj / (REAL_SQRT(vj) * rc2 + eps);
        }
    }
}

double lr_at(const lr_schedule_t *s, int64_t step)
{
    /* docs/config.md, "The learning-rate schedule", step s 0-based, W warm-up, S steps:
     *   s < W:                 lr (s + 1) / W
     *   s >= W, S - W = 1:     lr_min (the one decay step is the last step)
     *   s >= W, S - W >= 2:    lr_min + (lr - lr_min) (1 + cos(pi (s - W) / (S - W - 1))) / 2 */
    if (step < s->warmup)
        return s->lr * (double)(step + 1) / (double)s->warmup;
    int64_t span = s->steps - s->warmup;
    if (span <= 1)
        return s->lr_min;
    double frac = (double)(step - s->warmup) / (double)(span - 1);
    return s->lr_min + 0.5 * (s->lr - s->lr_min) * (1 + cos(M_PI * frac));
}

/* Sum of squares with eight independent double accumulators (no reassociation
 * needed for the compiler to overlap them). */
static double sum_squares(const real *g, size_t n)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)g[j + k] * g[j + k];
    for (; j < n; j++)
        acc[0] += (double)g[j] * g[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double grad_global_norm(model_t *m)
{
    double replicated = 0, sharded = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *t = &m->tensors[i];
        if (t->frozen)
            continue;
        double ss = sum_squares(m->grads + t->offset, t->numel);
        if (t->shard == SHARD_NONE)
            replicated += ss;
        else
            sharded += ss;
    }
    return sqrt(replicated + tp_sum_double(&m->tp, sharded));
}

