/* Attention with a mask kind (layers.h): the copy from grouped rows to sequence
 * order that applies RoPE, S = q k^T / sqrt(hd), the softmax over each row's visible
 * keys, O = P v, and the copy back; backward in reverse. Queries go in blocks of
 * ATTN_BLOCK rows; each block's products run through gemm() over only the keys its
 * rows can see (the largest visible prefix in the block), so a causal mask issues
 * about half the square (T = 256: 62.5%) and the rest is never computed. */
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

/* One row of T visible-prefix lengths for every sequence: hi[i] = i + 1 (causal)
 * or T (bidirectional). */
static void mask_one_row(attn_mask_t *mk, int kind, int64_t T)
{
    mk->kind = kind;
    mk->Tq = mk->Tk = T;
    mk->stride = 0;
    mk->hi = xmalloc((size_t)T * sizeof *mk->hi);
    for (int64_t i = 0; i < T; i++)
        mk->hi[i] = kind == MASK_CAUSAL ? i + 1 : T;
}

void attn_mask_causal(attn_mask_t *mk, int64_t T) { mask_one_row(mk, MASK_CAUSAL, T); }

void attn_mask_bidirectional(attn_mask_t *mk, int64_t T) { mask_one_row(mk, MASK_BIDIRECTIONAL, T); }
void attn_mask_spans(attn_mask_t *mk, int64_t T, int max_seqs)
{
    mk->kind = MASK_CAUSAL_SPANS;
    mk->Tq = mk->Tk = T;
    mk->stride = T;
    mk->hi = xmalloc((size_t)(T * max_seqs) * sizeof *mk->hi);
    for (int64_t i = 0; i < T * max_seqs; i++)
        mk->hi[i] = i % T + 1;
}

void attn_mask_set_spans(attn_mask_t *mk, int b, const int32_t *span)
{
    /* a run [i0, i1) of one non-zero id: every row in it sees keys [0, i1) */
    int64_t T = mk->Tq, *hi = mk->hi + (int64_t)b * mk->stride;
    for (int64_t i0 = 0; i0 < T;) {
        int64_t i1 = i0 + 1;
        if (span[i0] != 0)
            while (i1 < T && span[i1] == span[i0])
                i1++;
        for (int64_t i = i0; i < i1; i++)
            hi[i] = span[i0] != 0 ? i1 : i + 1;
        i0 = i1;
    }
}

void attn_mask_free(attn_mask_t *mk)
{
    free(mk->hi);
    mk->hi = NULL;
}

/* Query rows per block: large enough for BLAS to run near its peak, small enough
 * that the causal diagonal blocks waste little. */
#define ATTN_BLOCK 64

/* Keys the rows [r0, r1) see: the largest visible prefix among them. */
static int64_t block_keys(const int64_t *hi, int64_t r0, int64_t r1, int64_t Tk)
{
    int64_t k = 0;
    for (int64_t i = r0; i < r1; i++)
        k = hi[i] > k ? hi[i] : k;
    return k < Tk ? k : Tk;
}

/* Index of (b, h, i) in the attention layout (B, hl, T, hd). */
static inline int64_t at(const attn_geom_t *g, int b, int h, int64_t i)
{
    return (((int64_t)b * g->hl + h) * g->T + i) * g->hd;
}

/* RoPE of position i (inverse: the backward), or a copy without RoPE (cross-attention:
 * the two streams' positions are not on one axis). */
static inline void rotate(const attn_geom_t *g, real *dst, const real *src, int64_t i, int inverse)
{
    int64_t hd = g->hd;
    if (!g->rope) {
        memcpy(dst, src, (size_t)hd * sizeof(real));
        return;
    }
    rope_rotate(dst, src, g->rope->cos + i * hd / 2, g->rope->sin + i * hd / 2, hd, inverse);
}

void attention_forward(const attn_geom_t *g, attn_acts_t *A, attn_scratch_t *S, real *att,
                       const real *q, const real *k, const real *v)
{
    int64_t T = g->T, hd = g->hd, dl = g->dl;
    real scale = (real)(1.0 / sqrt((double)hd));
    for (int b = 0; b < g->B; b++)
        for (int h = 0; h < g->hl; h++) {
            /* grouped rows -> sequence order, RoPE on q and k */
            for (int64_t i = 0; i < T; i++) {
                int64_t src = g->inv[b * T + i] * dl + h * hd, dst = at(g, b, h, i);
                rotate(g, A->qa + dst, q + src, i, 0);
                rotate(g, A->ka + dst, k + src, i, 0);
                memcpy(A->va + dst, v + src, (size_t)hd * sizeof(real));
            }
            real *P = A->p + ((int64_t)b * g->hl + h) * T * T;
            const real *qa = A->qa + at(g, b, h, 0), *ka = A->ka + at(g, b, h, 0),
                       *va = A->va + at(g, b, h, 0);
            const int64_t *hi = g->mask->hi + b * g->mask->stride;
            /* per query block [r0, r1) seeing keys [0, kn): S = q k^T / sqrt(hd): (rows, kn);
             * P = softmax over visible keys;  O = P v: (rows, hd) */
            for (int64_t r0 = 0; r0 < T; r0 += ATTN_BLOCK) {
                int64_t r1 = r0 + ATTN_BLOCK < T ? r0 + ATTN_BLOCK : T, kn = block_keys(hi, r0, r1, T);
                real *Pb = P + r0 * T;
                if (kn > 0)
                    gemm(GEMM_ATTN, false, true, r1 - r0, kn, hd, scale, qa + r0 * hd, hd, ka, hd, 0, Pb, T);
                softmax_rows(Pb, r1 - r0, kn, T, hi + r0);
                if (kn > 0)
                    gemm(GEMM_ATTN, false, false, r1 - r0, hd, kn, 1, Pb, T, va, hd, 0, S->o + r0 * hd, hd);
                else
                    memset(S->o + r0 * hd, 0, (size_t)((r1 - r0) * hd) * sizeof(real));
            }
            for (int64_t i = 0; i < T; i++)
                memcpy(att + g->inv[b * T + i] * dl + h * hd, S->o + i * hd, (size_t)hd * sizeof(real));
        }
}

void attention_backward(const attn_geom_t *g, const attn_acts_t *A, attn_scratch_t *S, real *dq,
                        real *dk, real *dv, const real *datt)
{
    int64_t T = g->T, hd = g->hd, dl = g->dl;
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
            const int64_t *hi = g->mask->hi + b * g->mask->stride;
            /* dk and dv collect every query block's part */
            memset(dka, 0, (size_t)(T * hd) * sizeof(real));
            memset(dva, 0, (size_t)(T * hd) * sizeof(real));
            for (int64_t r0 = 0; r0 < T; r0 += ATTN_BLOCK) {
                int64_t r1 = r0 + ATTN_BLOCK < T ? r0 + ATTN_BLOCK : T, kn = block_keys(hi, r0, r1, T);
                int64_t rows = r1 - r0;
                if (kn == 0) { /* rows that see nothing: zero output, zero gradient */
                    memset(dqa + r0 * hd, 0, (size_t)(rows * hd) * sizeof(real));
                    continue;
                }
                const real *Pb = P + r0 * T, *dO = S->o + r0 * hd;
                real *dS = S->dp + r0 * T;
                /* O = P v:  dP = dO v^T,  dv += P^T dO */
                gemm(GEMM_ATTN, false, true, rows, kn, hd, 1, dO, hd, va, hd, 0, dS, T);
                gemm(GEMM_ATTN, true, false, kn, hd, rows, 1, Pb, T, dO, hd, 1, dva, hd);
                /* P = softmax(S):  dS = P (dP - rowsum(dP P)), zero outside the mask */
                softmax_rows_backward(dS, Pb, rows, kn, T, hi + r0);
                /* S = q k^T scale:  dq = dS k scale,  dk += dS^T q scale */
                gemm(GEMM_ATTN, false, false, rows, hd, kn, scale, dS, T, ka, hd, 0, dqa + r0 * hd, hd);
                gemm(GEMM_ATTN, true, false, kn, hd, rows, scale, dS, T, qa + r0 * hd, hd, 1, dka, hd);
            }
            /* back to grouped rows; RoPE backward is the inverse rotation */
            for (int64_t i = 0; i < T; i++) {
                int64_t dst = g->inv[b * T + i] * dl + h * hd;
                rotate(g, dq + dst, dqa + i * hd, i, 1);
                rotate(g, dk + dst, dka + i * hd, i, 1);
                memcpy(dv + dst, dva + i * hd, (size_t)hd * sizeof(real));
            }
        }
}
