/* The single BLAS entry point: row-major GEMM with FLOP accounting. */
#include <cblas.h>
#include <limits.h>

#include "motscale/gemm.h"

static double issued[GEMM_NTAGS];

static int blas_dim(int64_t v, const char *what)
{
    /* OpenBLAS takes 32-bit sizes; refuse rather than narrow silently. */
    if (v < 0 || v > INT_MAX)
        DIE(EXIT_FAULT, "gemm: %s = %lld does not fit BLAS's 32-bit sizes", what, (long long)v);
    return (int)v;
}

void gemm(enum gemm_tag tag, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
          real alpha, const real *A, int64_t lda, const real *B, int64_t ldb, real beta,
          real *C, int64_t ldc)
{
    if (M == 0 || N == 0)
        return;
    issued[tag] += 2.0 * (double)M * (double)N * (double)K;
#ifdef MOTSCALE_DOUBLE
    cblas_dgemm(
#else
    cblas_sgemm(
#endif
        CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
        blas_dim(M, "M"), blas_dim(N, "N"), blas_dim(K, "K"), alpha, A, blas_dim(lda, "lda"), B,
        blas_dim(ldb, "ldb"), beta, C, blas_dim(ldc, "ldc"));
}

void gemm_flops_add(enum gemm_tag tag, double flops) { issued[tag] += flops; }

double gemm_flops(enum gemm_tag tag) { return issued[tag]; }

void gemm_flops_reset(void)
{
    for (int t = 0; t < GEMM_NTAGS; t++)
        issued[t] = 0;
}

int gemm_set_threads(int n)
{
    int was = openblas_get_num_threads();
    openblas_set_num_threads(n);
    return was;
}
