/* The FFN slot: the dense SwiGLU of every tower, W_2(silu(x W_1) * (x W_3)), as
 * three towered linears around the gate. */
#include "layers.h"
#include "motscale/kernels.h"

void ffn_forward(model_t *m, struct sl_state *sl, const blocks_t *b, const ffn_weights_t *f,
                 ffn_acts_t *A, real *z, const real *x, int64_t d, int64_t fl, int64_t N)
{
    /* u = x W_1, w = x W_3: (N, fl);  s = silu(u) * w;  z = s W_2: (N, d) */
    linear_forward(m, sl, b, f->w1, A->u, fl, x, d);
    linear_forward(m, sl, b, f->w3, A->w, fl, x, d);
    swiglu_forward(A->s, A->u, A->w, N * fl);
    linear_forward(m, sl, b, f->w2, z, d, A->s, fl);
}

void ffn_backward(model_t *m, struct sl_state *sl, const blocks_t *b, const ffn_weights_t *f,
                  const ffn_acts_t *A, ffn_scratch_t *S, real *dx, const real *dz, const real *x,
                  int64_t d, int64_t fl, int64_t N)
{
    /* z = s W_2 (g: identity backward):  ds = dz W_2^T,  dW_2 += s^T dz */
    linear_backward(m, sl, b, f->w2, S->ds, false, dz, d, A->s, fl);
    /* s = silu(u) * w */
    swiglu_backward(S->du, S->dw, S->ds, A->u, A->w, N * fl);
    /* u = x W_1, w = x W_3:  dx = du W_1^T + dw W_3^T */
    linear_backward(m, sl, b, f->w1, dx, false, S->du, fl, x, d);
    linear_backward(m, sl, b, f->w3, dx, true, S->dw, fl, x, d);
}
