/* Element-wise and row-wise kernels of the transformer (everything that is not a
 * matrix product). Outputs first, then inputs, then sizes. Backward kernels
 * accumulate into their gradient outputs. */
#ifndef MOTSCALE_KERNELS_H
#define MOTSCALE_KERNELS_H

#include <math.h>
#include <stdint.h>

#include "motscale/common.h"

/* exp in the model's precision. fp32: x = k ln2 + r (|r| <= ln2/2, Cody-Waite split of
 * ln2), exp(r) by its degree-7 Taylor polynomial in Horner form with fma, 2^k from
 * the exponent bits; x is clamped to [-87, 88] first (so no inf, no denormals: below
 * -87 it returns exp(-87) ~ 1.6e-38 instead of a smaller number). Written without
 * branches or calls so loops over it vectorise; maximum relative error 7.7e-8 (1.3
 * ulp) over [-87, 88] against double exp (tests/unit/test_kernels.c). The
 * gradient-check build (double) uses libm's exp. */
#ifdef MOTSCALE_DOUBLE
static inline double kernel_exp(double x) { return exp(x); }
#else
static inline float kernel_exp(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shift = 12582912.0f; /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
    float k = (x * 1.44269504088896341f + shift) - shift;
    float r = __builtin_fmaf(k, -0.693145751953125f, x);    /* ln2, high part: k * it is exact */
    r = __builtin_fmaf(k, -1.428606765330187e-06f, r);      /* ln2, low part */
    float p = 1.0f / 5040;
    p = __builtin_fmaf(p, r, 1.0f / 720);
    p = __builtin_fmaf(p, r, 1.0f / 120);
    p = __builtin_fmaf(p, r, 1.0f / 24);
    p = __builtin_fmaf(p, r, 1.0f / 6);
    p = __builtin_fmaf(p, r, 0.5f);
    p = __builtin_fmaf(p, r, 1.0f);
    p = __builtin_fmaf(p, r, 1.0f);
    /* 2^k from its exponent bits, shifted unsigned: a NaN x (a diverged run) makes k
     * NaN and the integer meaningless, and p carries the NaN out either way */
    union { uint32_t u; float f; } two_k = {.u = (uint32_t)((int32_t)k + 127) << 23};
    return p * two_k.f;
}
#endif

/* y = x / sqrt(mean(x^2) + eps) * w, row-wise.  x, y: (n, d); w: (d); rstd: (n) */
void rmsnorm_forward(real *y, real *rstd, const real *x, const real *w, int64_t n, int64_t d,
                     real eps);
/* dx += d/dx, dw += d/dw (dw NULL: not wanted) of the forward line above.  dy: (n, d) */
void rmsnorm_backward(real *dx, real *dw, const real *dy, const real *x, const real *w,
                      const real *rstd, int64_t n, int64_t d);

/* Rotate pairs (2j, 2j+1) of one head vector by pos * theta^(-2j/hd), using the
 * tables cosv/sinv: (hd/2) for this position. inverse = 1 rotates back, which is
 * the backward of the forward rotation. */
void rope_rotate(real *out, const real *in, const real *cosv, const real *sinv, int64_t hd,
                 int inverse);

/* Softmax over a visible prefix of each row of s (rows x cols, row stride ld) in place:
 * row i over columns [0, min(hi[i], cols)), columns up to cols set to 0. */
void softmax_rows(real *s, int64_t rows, int64_t cols, int64_t ld, const int64_t *hi);
void softmax_rows_backward(real *dp, const real *p, int64_t rows, int64_t cols, int64_t ld,
                           const int64_t *hi);
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
