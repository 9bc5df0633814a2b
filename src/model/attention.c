/* Attention with a mask kind (layers.h): the copy from grouped rows to sequence
 * order that applies RoPE, S = q k^T / sqrt(hd), the softmax over each row's visible
 * keys, O = P v, and the copy back; backward in reverse. Every product is a gemm()
 * over full T x T squares (the masked part is zeroed, not skipped). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "motscale/gemm.h"
#include "motscale/kernels.h"

void rope_init(rope_t *r, int64_t T, int64_t hd, double theta)
{
    r->T = T;
    r->hd = hd;
    r->cos = xmalloc((size_t)(T * hd / 2) * sizeof(real));
    r->sin = xmalloc((size_t)(T * hd / 2) * sizeof(real));
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < hd / 2; j++) {
            double ang = (double)i * pow(theta, -2.0 * (double)j / (double)hd);
            r->cos[i * hd / 2 + j] = (real)cos(ang);
            r->sin[i * hd / 2 + j] = (real)sin(ang);
        }
}

void rope_free(rope_t *r)
{
    free(r->cos);
    free(r->sin);
    r->cos = r->sin = NULL;
}

void attn_mask_causal(attn_mask_t *mk, int64_t T)
{
    mk->kind = MASK_CAUSAL;
    mk->Tq = mk->Tk = T;
    mk->stride = 0;
    mk->hi = xmalloc((size_t)T * sizeof *mk->hi);
    for (int64_t i = 0; i < T; i++)
        mk->hi[i] = i + 1;
}

void attn_mask_free(attn_mask_t *mk)
{
    free(mk->hi);
    mk->hi = NULL;
}

/* Index of (b, h, i) in the attention layout (B, hl, T, hd). */
static inline int64_t at(const attn_geom_t *g, int b, int h, int64_t i)
{
    return (((int64_t)b * g->hl + h) * g->T + i) * g->hd;
}

void attention_forward(const attn_geom_t *g, attn_acts_t *A, attn_scratch_t *S, real *att,
                       const real *q, const real *k, const real *v)
{
    int64_t T = g->T, hd = g->hd, dl = g->dl;
    const real *cs = g->rope->cos, *sn = g->rope->sin;
    real scale = (real)(1.0 / sqrt((double)hd));
    for (int b = 0; b < g->B; b++)
        for (int h = 0; h < g->hl; h++) {
            /* grouped rows -> sequence order, RoPE on q and k */
            for (int64_t i = 0; i < T; i++) {
                int64_t src = g->inv[b * T + i] * dl + h * hd, dst = at(g, b, h, i);
                rope_rotate(A->qa + dst, q + src, cs + i * hd / 2, sn + i * hd / 2, hd, 0);
                rope_rotate(A->ka + dst, k + src, cs + i * hd / 2, sn + i * hd / 2, hd, 0);
                memcpy(A->va + dst, v + src, (size_t)hd * sizeof(real));
            }
            real *P = A->p + ((int64_t)b * g->hl + h) * T * T;
            const real *qa = A->qa + at(g, b, h, 0), *ka = A->ka + at(g, b, h, 0),
                       *va = A->va + at(g, b, h, 0);
            /* S = q k^T / sqrt(hd): (T, T);  P = softmax over visible keys;  O = P v: (T, hd) */
            gemm(GEMM_ATTN, false, true, T, T, hd, scale, qa, hd, ka, hd, 0, P, T);
            softmax_prefix(P, T, T, g->mask->hi + b * g->mask->stride);
            gemm(GEMM_ATTN, false, false, T, hd, T, 1, P, T, va, hd, 0, S->o, hd);
            for (int64_t i = 0; i < T; i++)
                memcpy(att + g->inv[b * T + i] * dl + h * hd, S->o + i * hd, (size_t)hd * sizeof(real));
        }
}

void attention_backward(const attn_geom_t *g, const attn_acts_t *A, attn_scratch_t *S, real *dq,
                        real *dk, real *dv, const real *datt)
{
    int64_t T = g->T, hd = g->hd, dl = g->dl;
    const real *cs = g->rope->cos, *sn = g->rope->sin;
    real scale = (real)(1.0 / sqrt((double)hd));
    for (int b = 0; b < g->B; b++)
        for (int h = 0; h < g->hl; h++) {
            for (int64_t i = 0; i < T; i++)
                memcpy(S->o + i * hd, datt + g->inv[b * T + i] * dl + h * hd, (size_t)hd * sizeof(real));
            const real *P = A->p + ((int64_t)b * g->hl + h) * T * T;
            const real *qa = A->qa + at(g, b, h, 0), *ka = A->ka + at(g, b, h, 0),
                       *va = A->va + at(g, b, h, 0);
            real *dqa = S->dqa + at(g, b, h, 0), *dka = S->dka + at(g, b, h, 0),
                 *dva = S->dva + at(g, b, h, 0);
            /* O = P v:  dP = dO v^T,  dv = P^T dO */
            gemm(GEMM_ATTN, false, true, T, T, hd, 1, S->o, hd, va, hd, 0, S->dp, T);
            gemm(GEMM_ATTN, true, false, T, hd, T, 1, P, T, S->o, hd, 0, dva, hd);
            /* P = softmax(S):  dS = P (dP - rowsum(dP P)), zero outside the mask */
            softmax_prefix_backward(S->dp, P, T, T, g->mask->hi + b * g->mask->stride);
            /* S = q k^T scale:  dq = dS k scale,  dk = dS^T q scale */
            gemm(GEMM_ATTN, false, false, T, hd, T, scale, S->dp, T, ka, hd, 0, dqa, hd);
            gemm(GEMM_ATTN, true, false, T, hd, T, scale, S->dp, T, qa, hd, 0, dka, hd);
            /* back to grouped rows; RoPE backward is the inverse rotation */
            for (int64_t i = 0; i < T; i++) {
                int64_t dst = g->inv[b * T + i] * dl + h * hd;
                rope_rotate(dq + dst, dqa + i * hd, cs + i * hd / 2, sn + i * hd / 2, hd, 1);
                rope_rotate(dk + dst, dka + i * hd, cs + i * hd / 2, sn + i * hd / 2, hd, 1);
                memcpy(dv + dst, dva + i * hd, (size_t)hd * sizeof(real));
            }
        }
}
