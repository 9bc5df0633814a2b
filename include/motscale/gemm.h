/* Every matrix product goes through gemm(): one row-major BLAS call (sgemm, or
 * dgemm in the gradient-check build) that also counts the FLOPs it issues, by
 * category, so the run record can hold them beside the formula of flops.h. */
#ifndef MOTSCALE_GEMM_H
#define MOTSCALE_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"

enum gemm_tag {
    GEMM_PROJ, /* q, k, v, o and SwiGLU projections */
    GEMM_ATTN, /* QK^T and PV (full squares: the causal half is not skipped) */
    GEMM_HEAD, /* output head */
    GEMM_NTAGS
};

/* C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C; row-major,
 * leading dimensions in elements. Counts 2*M*N*K FLOPs under tag. */
void gemm(enum gemm_tag tag, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
          real alpha, const real *A, int64_t lda, const real *B, int64_t ldb, real beta,
          real *C, int64_t ldc);

/* Count FLOPs issued outside gemm() (this rank's share of a PSGEMM). */
void gemm_flops_add(enum gemm_tag tag, double flops);

/* FLOPs issued since the last reset, per tag. */
double gemm_flops(enum gemm_tag tag);
void gemm_flops_reset(void);

/* Set the BLAS library's thread count to n; returns the count it had. */
int gemm_set_threads(int n);

#endif
