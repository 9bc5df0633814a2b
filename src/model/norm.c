/* RMSNorm per row block (one weight per tower), and QK-norm: RMSNorm of each head's
 * slice of q or k, its weight sharded with the heads. */
#include "layers.h"
#include "motscale/kernels.h"

void norm_forward(model_t *m, const blocks_t *b, const int *w, real *Y, real *rstd, const real *X,
                  int64_t d, real eps)
{
    /* Y = X / sqrt(mean(X^2) + eps) * w_k   X, Y: (N, d), rstd: (N) */
    for (int k = 0; k < b->n; k++) {
        int64_t o = b->off[k];
        rmsnorm_forward(Y + o * d, rstd + o, X + o * d, m->params + m->tensors[w[k]].offset,
                        blocks_rows(b, k), d, eps);
    }
}

/* A frozen weight (tensor_info_t.frozen) gets no gradient; dX still does. */
void norm_backward(model_t *m, const blocks_t *b, const int *w, real *dX, const real *dY,
                   const real *X, const real *rstd, int64_t d)
{
    for (int k = 0; k < b->n; k++) {
        int64_t o = b->off[k];
        const tensor_info_t *t = &m->tensors[w[k]];
        rmsnorm_backward(dX + o * d, t->frozen ? NULL : m->grads + t->offset, dY + o * d, X + o * d,
                         m->params + t->offset, rstd + o, blocks_rows(b, k), d);
    }
}

void qknorm_forward(model_t *m, const blocks_t *b, const int *w, real *Y, real *rstd,
                    const real *X, int hl, int64_t hd, real eps)
{
    /* per head h of row g: Y[g, h] = RMSNorm(X[g, h]; w_k[h])   X, Y: (N, hl hd) */
    int64_t dl = hl * hd;
    for (int k = 0; k < b->n; k++) {
        const real *wk = m->params + m->tensors[w[k]].offset;
        for (int64_t g = b->off[k]; g < b->off[k + 1]; g++)
            for (int h = 0; h < hl; h++) {
                int64_t off = g * dl + h * hd;
                rmsnorm_forward(Y + off, rstd + g * hl + h, X + off, wk + h * hd, 1, hd, eps);
            }
    }
}

void qknorm_backward(model_t *m, const blocks_t *b, const int *w, real *dX, const real *dY,
                     const real *X, const real *rstd, int hl, int64_t hd)
{
    int64_t dl = hl * hd;
    for (int k = 0; k < b->n; k++) {
        const tensor_info_t *t = &m->tensors[w[k]];
        const real *wk = m->params + t->offset;
        real *dw = t->frozen ? NULL : m->grads + t->offset;
        for (int64_t g = b->off[k]; g < b->off[k + 1]; g++)
            for (int h = 0; h < hl; h++) {
                int64_t off = g * dl + h * hd;
                rmsnorm_backward(dX + off, dw ? dw + h * hd : NULL, dY + off, X + off, wk + h * hd,
                                 rstd + g * hl + h, 1, hd);
            }
    }
}
