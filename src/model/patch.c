/* Continuous vectors in and out of the residual stream (layers.h): a linear
 * encoder of row vectors (patch_dim -> d), a linear decoder back (d -> patch_dim),
 * and the timestep embedding (sinusoidal features through a learned linear). Their
 * weights are replicated: every tensor-parallel rank computes them whole. */
#include <math.h>

#include "layers.h"
#include "motscale/gemm.h"

void vec_linear_forward(model_t *m, int w, real *Y, bool accumulate, const real *X, int64_t n, int64_t in,
                        int64_t out)
{
    /* Y (n, out) (+)= X (n, in) W (in, out) */
    if (n == 0)
        return;
    gemm(GEMM_PROJ, false, false, n, out, in, 1, X, in, m->params + m->tensors[w].offset, out,
         accumulate ? 1 : 0, Y, out);
}

void vec_linear_backward(model_t *m, int w, real *dX, const real *dY, const real *X, int64_t n, int64_t in,
                         int64_t out)
{
    /* forward Y = X W:  dW += X^T dY,  dX = dY W^T (when wanted) */
    if (n == 0)
        return;
    const tensor_info_t *t = &m->tensors[w];
    gemm(GEMM_PROJ, true, false, in, out, n, 1, X, in, dY, out, 1, m->grads + t->offset, out);
    if (dX)
        gemm(GEMM_PROJ, false, true, n, in, out, 1, dY, out, m->params + t->offset, out, 0, dX, in);
}

void timestep_features(real *F, const int32_t *t, int64_t n, int64_t dim)
{
    /* F[i, j] = sin(t_i w_j), F[i, h + j] = cos(t_i w_j), w_j = 10000^(-j / h), h = dim / 2
     * (an odd dim leaves its last column 0) */
    int64_t h = dim / 2;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < h; j++) {
            double a = (double)t[i] * pow(10000.0, -(double)j / (double)h);
            F[i * dim + j] = (real)sin(a);
            F[i * dim + h + j] = (real)cos(a);
        }
        if (dim % 2)
            F[i * dim + dim - 1] = 0;
    }
}
