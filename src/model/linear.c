/* The towered linear: one GEMM per row block (tower), each with its own weight
 * slice; under the ScaLAPACK backend the same product as PSGEMM on the 2D grid. */
#include "layers.h"
#include "motscale/gemm.h"
#include "motscale/scalapack.h"

static enum sl_kind sl_kind_of(const tensor_info_t *t)
{
    return t->shard == SHARD_ROW ? SL_ROW_PARALLEL : SL_COLUMN_PARALLEL;
}

void linear_forward(model_t *m, struct sl_state *sl, const blocks_t *b, const int *w, real *Y,
                    int64_t out, const real *X, int64_t in)
{
    /* Y[rows of k] = X[rows of k] W_k   X: (N, in), W_k: (in, out), Y: (N, out) */
    for (int k = 0; k < b->n; k++) {
        int64_t o = b->off[k];
        if (blocks_rows(b, k) == 0)
            continue;
        const tensor_info_t *t = &m->tensors[w[k]];
        if (sl) {
            /* in/out above are the local widths; the grid needs the logical ones */
            sl_linear_forward(sl, sl_kind_of(t), Y + o * out, X + o * in, m->params + t->offset,
                              blocks_rows(b, k), t->rows, t->cols);
            continue;
        }
        gemm(GEMM_PROJ, false, false, blocks_rows(b, k), out, in, 1, X + o * in, in,
             m->params + t->offset, out, 0, Y + o * out, out);
    }
}

void linear_backward(model_t *m, struct sl_state *sl, const blocks_t *b, const int *w, real *dX,
                     bool accumulate, const real *dY, int64_t out, const real *X, int64_t in)
{
    /* forward Y = X W_k:  dW_k += X^T dY,  dX (+)= dY W_k^T */
    for (int k = 0; k < b->n; k++) {
        int64_t o = b->off[k], n = blocks_rows(b, k);
        if (n == 0)
            continue;
        const tensor_info_t *t = &m->tensors[w[k]];
        if (sl) { /* zipper, the one kind with frozen tensors, runs under Megatron */
            sl_linear_backward(sl, sl_kind_of(t), dX + o * in, m->grads + t->offset, X + o * in,
                               dY + o * out, m->params + t->offset, n, t->rows, t->cols, accumulate);
            continue;
        }
        if (!t->frozen) /* a frozen weight gets no gradient; dX still does */
            gemm(GEMM_PROJ, true, false, in, out, n, 1, X + o * in, in, dY + o * out, out, 1,
                 m->grads + t->offset, out);
        gemm(GEMM_PROJ, false, true, n, in, out, 1, dY + o * out, out, m->params + t->offset, out,
             accumulate ? 1 : 0, dX + o * in, in);
    }
}
