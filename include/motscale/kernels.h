/* Element-wise and row-wise kernels of the transformer (everything that is not a
 * matrix product). Outputs first, then inputs, then sizes. Backward kernels
 * accumulate into their gradient outputs. */
#ifndef MOTSCALE_KERNELS_H
#define MOTSCALE_KERNELS_H

#include <stdint.h>

#include "motscale/common.h"

/* y = x / sqrt(mean(x^2) + eps) * w, row-wise.  x, y: (n, d); w: (d); rstd: (n) */
void rmsnorm_forward(real *y, real *rstd, const real *x, const real *w, int64_t n, int64_t d,
                     real eps);
/* dx += d/dx, dw += d/dw of the forward line above.  dy: (n, d) */
void rmsnorm_backward(real *dx, real *dw, const real *dy, const real *x, const real *w,
                      const real *rstd, int64_t n, int64_t d);

/* Rotate pairs (2j, 2j+1) of one head vector by pos * theta^(-2j/hd), using the
 * tables cosv/sinv: (hd/2) for this position. inverse = 1 rotates back, which is
 * the backward of the forward rotation. */
void rope_rotate(real *out, const real *in, const real *cosv, const real *sinv, int64_t hd,
                 int inverse);

/* Softmax over a visible prefix of each row of s (rows x cols) in place: row i
 * over columns [0, hi[i]), the rest set to 0 (hi[i] = 0: an all-zero row). The
 * causal mask is hi[i] = i + 1; attention's other mask kinds are other prefixes. */
void softmax_prefix(real *s, int64_t rows, int64_t cols, const int64_t *hi);
/* ds = p * (dp - rowsum(dp * p)) over each visible prefix, 0 elsewhere; in place on dp. */
void softmax_prefix_backward(real *dp, const real *p, int64_t rows, int64_t cols, const int64_t *hi);

/* s = silu(u) * w (SwiGLU gate).  u, w, s: (n) */
void swiglu_forward(real *s, const real *u, const real *w, int64_t n);
/* du = ds * w * silu'(u), dw = ds * silu(u) (overwrite). */
void swiglu_backward(real *du, real *dw, const real *ds, const real *u, const real *w, int64_t n);

/* Softmax cross-entropy of logits (v) against target: returns -log p[target] and
 * writes dlogits = scale * (softmax - onehot) over the same row (in place allowed:
 * dlogits may equal logits). */
double cross_entropy_row(real *dlogits, const real *logits, int32_t target, int64_t v, real scale);

#endif
