/* Continuous vectors into and out of the residual stream: one replicated weight
 * over contiguous rows (layers.h), through gemm(). */
#include "layers.h"
#include "motscale/gemm.h"

void vec_linear_forward(model_t *m, int w, real *Y, bool accumulate, const real *X, int64_t n, int64_t in,
                        int64_t out)
{
    /* Y (n, out) (+)= X (n, in) W (in, out) */
    if (n == 0)
        return;
    gemm(GEMM_PROJ, false, false, n, out, in, 1, X, in, m->params + m->tensors[w].offset, out, accumulate ? 1 : 0,
         Y, out);
}

void vec_linear_backward(model_t *m, int w, real *dX, const real *dY, const real *X, int64_t n, int64_t in,
                         int64_t out)
{
    /* forward Y = X W:  dW += X^T dY,  dX = dY W^T */
    if (n == 0)
        return;
    const tensor_info_t *t = &m->tensors[w];
    gemm(GEMM_PROJ, true, false, in, out, n, 1, X, in, dY, out, 1, m->grads + t->offset, out);
    if (dX)
        gemm(GEMM_PROJ, false, true, n, in, out, 1, dY, out, m->params + t->offset, out, 0, dX, in);
}
