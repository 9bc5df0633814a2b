/* Cross-attention (layers.h): queries of one stream attend to the keys and values of
 * another, each query row over a visible prefix of the other stream's positions,
 * without RoPE: S = q k^T / sqrt(hd), the softmax over visible keys, O = P v; a row
 * that sees no key gets a zero output and no gradient. Every product through gemm(). */
#include <math.h>
#include <string.h>

#include "layers.h"
#include "motscale/gemm.h"
#include "motscale/kernels.h"

/* (b, h) block of a (B, hl, T, hd) layout */
static inline int64_t blk(const xattn_geom_t *g, int b, int h, int64_t T) { return ((int64_t)b * g->hl + h) * T * g->hd; }

void xattn_forward(const xattn_geom_t *g, xattn_acts_t *A, xattn_scratch_t *S, real *att, const real *q,
                   const real *k, const real *v)
{
    int64_t Tq = g->Tq, Tk = g->Tk, hd = g->hd, dl = g->dl;
    real scale = (real)(1.0 / sqrt((double)hd));
    size_t row = (size_t)hd * sizeof(real);
    for (int b = 0; b < g->B; b++)
        for (int h = 0; h < g->hl; h++) {
            real *qa = A->qa + blk(g, b, h, Tq), *ka = A->ka + blk(g, b, h, Tk), *va = A->va + blk(g, b, h, Tk);
            real *P = A->p + ((int64_t)b * g->hl + h) * Tq * Tk;
            const int64_t *hi = g->hi + (int64_t)b * Tq;
            for (int64_t i = 0; i < Tq; i++)
                memcpy(qa + i * hd, q + ((int64_t)b * Tq + i) * dl + h * hd, row);
            for (int64_t j = 0; j < Tk; j++) {
                int64_t src = g->kinv[(int64_t)b * Tk + j] * dl + h * hd;
                memcpy(ka + j * hd, k + src, row);
                memcpy(va + j * hd, v + src, row);
            }
            /* S = qa ka^T scale: (Tq, Tk);  P = softmax over visible keys;  O = P va: (Tq, hd) */
            gemm(GEMM_ATTN, false, true, Tq, Tk, hd, scale, qa, hd, ka, hd, 0, P, Tk);
            softmax_rows(P, Tq, Tk, Tk, hi);
            gemm(GEMM_ATTN, false, false, Tq, hd, Tk, 1, P, Tk, va, hd, 0, S->o, hd);
            for (int64_t i = 0; i < Tq; i++)
                memcpy(att + ((int64_t)b * Tq + i) * dl + h * hd, S->o + i * hd, row);
        }
}

void xattn_backward(const xattn_geom_t *g, const xattn_acts_t *A, xattn_scratch_t *S, real *dq, real *dk, real *dv,
                    const real *datt)
{
    int64_t Tq = g->Tq, Tk = g->Tk, hd = g->hd, dl = g->dl;
    real scale = (real)(1.0 / sqrt((double)hd));
    size_t row = (size_t)hd * sizeof(real);
    for (int b = 0; b < g->B; b++)
        for (int h = 0; h < g->hl; h++) {
            const real *qa = A->qa + blk(g, b, h, Tq), *ka = A->ka + blk(g, b, h, Tk),
                       *va = A->va + blk(g, b, h, Tk);
            const real *P = A->p + ((int64_t)b * g->hl + h) * Tq * Tk;
            const int64_t *hi = g->hi + (int64_t)b * Tq;
            for (int64_t i = 0; i < Tq; i++)
                memcpy(S->o + i * hd, datt + ((int64_t)b * Tq + i) * dl + h * hd, row);
            /* O = P v:  dP = dO v^T,  dv = P^T dO */
            gemm(GEMM_ATTN, false, true, Tq, Tk, hd, 1, S->o, hd, va, hd, 0, S->dp, Tk);
            gemm(GEMM_ATTN, true, false, Tk, hd, Tq, 1, P, Tk, S->o, hd, 0, S->dva, hd);
            /* P = softmax(S):  dS = P (dP - rowsum(dP P)), zero outside the visible keys */
            softmax_rows_backward(S->dp, P, Tq, Tk, Tk, hi);
            /* S = q k^T scale:  dq = dS k scale,  dk = dS^T q scale */
            gemm(GEMM_ATTN, false, false, Tq, hd, Tk, scale, S->dp, Tk, ka, hd, 0, S->dqa, hd);
            gemm(GEMM_ATTN, true, false, Tk, hd, Tq, scale, S->dp, Tk, qa, hd, 0, S->dka, hd);
            for (int64_t i = 0; i < Tq; i++)
                memcpy(dq + ((int64_t)b * Tq + i) * dl + h * hd, S->dqa + i * hd, row);
            for (int64_t j = 0; j < Tk; j++) {
                int64_t dst = g->kinv[(int64_t)b * Tk + j] * dl + h * hd;
                memcpy(dk + dst, S->dka + j * hd, row);
                memcpy(dv + dst, S->dva + j * hd, row);
            }
        }
}
