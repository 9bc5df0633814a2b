/* 2D tensor parallelism on ScaLAPACK: BLACS grids over the TP communicator, array
 * descriptors, and the linears of the transformer as PSGEMM with PSGEMR2D
 * redistribution to and from the Megatron layouts of the rest of the model.
 *
 * Everything here is in the column-major view PBLAS uses: a row-major (n, k) buffer
 * of model.c is the column-major (k x n) matrix with leading dimension k, so
 * Y = X W is computed as Y^T (out x n) = W^T (out x in) X^T (in x n), features down
 * the rows and the n tokens across the columns. Three distributions appear:
 *   grid:  on the pr x pc grid, blocks (rows/pr) x ceil(n/pc), one block per rank
 *          (block-cyclic with a single cycle), weights (out/pr) x (in/pc);
 *   heads: on a P x 1 grid, blocks (rows/P) x n: exactly the Megatron column slice
 *          (n, rows/P) that rank p holds for its heads;
 *   a replicated (k x n) buffer, every rank holding all of it, serves as a grid
 *          operand in place: with one block per rank, a rank's block is a
 *          sub-rectangle of the full buffer, addressed with the full leading
 *          dimension, so no copy and no communication. */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/gemm.h"
#include "motscale/mesh.h"
#include "motscale/scalapack.h"

/* Debian's libscalapack-openmpi ships no C header for these. BLACS's C interface
 * takes values; PBLAS, REDIST and the TOOLS take every argument by reference
 * (Fortran convention), integers being 32-bit in this build. */
void Cblacs_pinfo(int *mypnum, int *nprocs);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
#ifdef MOTSCALE_DOUBLE
#define PGEMM pdgemm_
#define PGEMR2D pdgemr2d_
#else
#define PGEMM psgemm_
#define PGEMR2D psgemr2d_
#endif
void PGEMM(const char *transa, const char *transb, const int *m, const int *n, const int *k,
           const real *alpha, const real *a, const int *ia, const int *ja, const int *desca,
           const real *b, const int *ib, const int *jb, const int *descb, const real *beta,
           real *c, const int *ic, const int *jc, const int *descc);
void PGEMR2D(const int *m, const int *n, const real *a, const int *ia, const int *ja,
             const int *desca, real *b, const int *ib, const int *jb, const int *descb,
             const int *ictxt);

struct sl_state {
    tp_ctx_t *tp;            /* the model's TP group; comm_s gets redistribution time */
    int P, rank;
    int pr, pc, myrow, mycol; /* this rank on the grid */
    int sys;                 /* BLACS system handle of the TP communicator */
    int ctx_grid;            /* pr x pc: PSGEMM */
    int ctx_heads;           /* P x 1: Megatron head slices */
    int ctx_line;            /* 1 x P: the all-process context PSGEMR2D wants */
    real *buf[2];            /* scratch: a grid operand, a heads slice */
};

/* One distributed operand: this rank's local array and its descriptor. */
typedef struct dmat {
    real *p;
    int desc[9];
} dmat_t;

static const int ONE = 1, ZERO = 0;

static int sl_int(int64_t v, const char *what)
{
    if (v < 0 || v > INT_MAX)
        DIE(EXIT_FAULT, "scalapack: %s = %lld does not fit BLACS's 32-bit integers", what,
            (long long)v);
    return (int)v;
}

void sl_grid_shape(int P, int *pr, int *pc)
{
    int r = 1;
    for (int i = 1; (int64_t)i * i <= P; i++)
        if (P % i == 0)
            r = i;
    *pc = r;
    *pr = P / r;
}

void sl_weight_block(int P, int rank, int64_t rows, int64_t cols, int64_t *row0,
                     int64_t *lrows, int64_t *col0, int64_t *lcols)
{
    int pr, pc;
    sl_grid_shape(P, &pr, &pc);
    /* W^T is (cols x rows): grid rows split W's columns, grid columns W's rows */
    *lrows = rows / pc;
    *row0 = (int64_t)(rank % pc) * *lrows;
    *lcols = cols / pr;
    *col0 = (int64_t)(rank / pc) * *lcols;
}

static void desc_set(dmat_t *a, real *p, int64_t M, int64_t N, int64_t mb, int64_t nb, int ctxt,
                     int64_t lld, const char *what)
{
    int m = sl_int(M, what), n = sl_int(N, what), imb = sl_int(mb, what), inb = sl_int(nb, what);
    int ild = sl_int(lld, what), info = 0;
    descinit_(a->desc, &m, &n, &imb, &inb, &ZERO, &ZERO, &ctxt, &ild, &info);
    if (info != 0)
        DIE(EXIT_FAULT, "scalapack: descinit of %s (%lld x %lld, blocks %lld x %lld, lld %lld) "
            "failed, info %d", what, (long long)M, (long long)N, (long long)mb, (long long)nb,
            (long long)lld, info);
    a->p = p;
}

/* Tokens per grid column: the n columns are cut into pc blocks (the last may be short). */
static int64_t tok_block(const sl_state_t *s, int64_t n) { return (n + s->pc - 1) / s->pc; }

/* A (M x n) replicated buffer used in place as a grid operand (see the file comment). */
static dmat_t grid_inplace(const sl_state_t *s, const real *full, int64_t M, int64_t n,
                           const char *what)
{
    dmat_t a;
    int64_t nb = tok_block(s, n), c0 = (int64_t)s->mycol * nb;
    const real *p = full;
    if (c0 < n) /* a rank without tokens keeps the base pointer; PBLAS reads nothing */
        p = full + c0 * M + (int64_t)s->myrow * (M / s->pr);
    desc_set(&a, (real *)p, M, n, M / s->pr, nb, s->ctx_grid, M, what);
    return a;
}

/* A (M x n) grid operand held in scratch buffer b. */
static dmat_t grid_scratch(const sl_state_t *s, int b, int64_t M, int64_t n, const char *what)
{
    dmat_t a;
    int64_t mb = M / s->pr;
    desc_set(&a, s->buf[b], M, n, mb, tok_block(s, n), s->ctx_grid, mb > 1 ? mb : 1, what);
    return a;
}

/* A (M x n) matrix in Megatron head slices: this rank's (M/P x n) at p, lld M/P. */
static dmat_t heads(const sl_state_t *s, const real *p, int64_t M, int64_t n, const char *what)
{
    dmat_t a;
    int64_t mb = M / s->P;
    desc_set(&a, (real *)p, M, n, mb, n, s->ctx_heads, mb > 1 ? mb : 1, what);
    return a;
}

/* The weight W (in, out) as W^T (out x in) on the grid; W is this rank's block. */
static dmat_t weight(const sl_state_t *s, const real *W, int64_t in, int64_t out, const char *what)
{
    dmat_t a;
    int64_t mb = out / s->pr;
    desc_set(&a, (real *)W, out, in, mb, in / s->pc, s->ctx_grid, mb, what);
    return a;
}

/* C (M x N) = alpha op(A) op(B) + beta C on the grid. */
static void pgemm(const sl_state_t *s, char ta, char tb, int64_t M, int64_t N, int64_t K, real alpha, const dmat_t *A,
                  const dmat_t *B, real beta, dmat_t *C)
{
    int m = sl_int(M, "M"), n = sl_int(N, "N"), k = sl_int(K, "K");
    /* the grid splits the product evenly: this rank's share of 2MNK */
    gemm_flops_add(GEMM_PROJ, 2.0 * (double)M * (double)N * (double)K / (double)s->P);
    PGEMM(&ta, &tb, &m, &n, &k, &alpha, A->p, &ONE, &ONE, A->desc, B->p, &ONE, &ONE, B->desc,
          &beta, C->p, &ONE, &ONE, C->desc);
}

/* to = from, both (M x n), between the grid and heads distributions; counted as TP
 * communication. On a P x 1 grid (pc = 1) the two coincide: a local copy. */
static void redistribute(sl_state_t *s, int64_t M, int64_t n, const dmat_t *from, dmat_t *to)
{
    if (s->pc == 1) {
        int64_t ml = M / s->P; /* both: (M/P x n), leading dimension M/P */
        memcpy(to->p, from->p, (size_t)(ml * n) * sizeof(real));
        return;
    }
    double t0 = now_seconds();
    int m = sl_int(M, "M"), nn = sl_int(n, "n");
    PGEMR2D(&m, &nn, from->p, &ONE, &ONE, from->desc, to->p, &ONE, &ONE, to->desc, &s->ctx_line);
    s->tp->comm_s += now_seconds() - t0;
}

static int grid_at(int sys, int nprow, int npcol, int *myrow, int *mycol)
{
    int ctxt = sys, r, c;
    Cblacs_gridinit(&ctxt, "Row", nprow, npcol);
    Cblacs_gridinfo(ctxt, &r, &c, myrow, mycol);
    if (ctxt < 0 || r != nprow || c != npcol)
        DIE(EXIT_FAULT, "scalapack: Cblacs_gridinit of a %d x %d grid gave context %d of %d x %d",
            nprow, npcol, ctxt, r, c);
    return ctxt;
}

sl_state_t *sl_create(tp_ctx_t *tp, int64_t max_rows, int64_t max_width)
{
    sl_state_t *s = xcalloc(1, sizeof *s);
    s->tp = tp;
    s->P = tp->size;
    s->rank = tp->rank;
    sl_grid_shape(s->P, &s->pr, &s->pc);
    MPI_Comm comm = tp->comm == MPI_COMM_NULL ? MPI_COMM_SELF : tp->comm;
    int size, rank;
    MPI_CHECK(MPI_Comm_size(comm, &size));
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    if (size != s->P || rank != s->rank)
        DIE(EXIT_FAULT, "scalapack: TP communicator has rank %d of %d, the mesh says %d of %d",
            rank, size, s->rank, s->P);
    if (max_width % s->P)
        DIE(EXIT_BADINPUT, "scalapack: width %lld is not divisible by tp = %d",
            (long long)max_width, s->P);
    int me, np, hr, hc, lr, lc;
    Cblacs_pinfo(&me, &np);
    s->sys = Csys2blacs_handle(comm);
    /* BLACS numbers processes by their rank in comm, which is the TP rank; "Row"
     * order puts rank r at (r / pc, r % pc), as sl_weight_block assumes. */
    s->ctx_grid = grid_at(s->sys, s->pr, s->pc, &s->myrow, &s->mycol);
    s->ctx_heads = grid_at(s->sys, s->P, 1, &hr, &hc);
    s->ctx_line = grid_at(s->sys, 1, s->P, &lr, &lc);
    if (s->myrow != s->rank / s->pc || s->mycol != s->rank % s->pc || hr != s->rank)
        DIE(EXIT_FAULT, "scalapack: TP rank %d sits at (%d, %d) of the %d x %d grid and row %d "
            "of the heads grid; expected (%d, %d) and %d", s->rank, s->myrow, s->mycol, s->pr,
            s->pc, hr, s->rank / s->pc, s->rank % s->pc, s->rank);
    int64_t nb = (max_rows + s->pc - 1) / s->pc;
    int64_t grid_n = ((max_width + s->pr - 1) / s->pr) * (nb > 0 ? nb : 1);
    int64_t heads_n = (max_width / s->P) * (max_rows > 0 ? max_rows : 1);
    s->buf[0] = xmalloc((size_t)grid_n * sizeof(real));
    s->buf[1] = xmalloc((size_t)heads_n * sizeof(real));
    return s;
}

void sl_free(sl_state_t *s)
{
    if (!s)
        return;
    Cblacs_gridexit(s->ctx_line);
    Cblacs_gridexit(s->ctx_heads);
    Cblacs_gridexit(s->ctx_grid);
    Cfree_blacs_system_handle(s->sys);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
}

void sl_linear_forward(sl_state_t *s, enum sl_kind kind, real *Y, const real *X, const real *W,
                       int64_t n, int64_t in, int64_t out)
{
    if (n == 0)
        return;
    dmat_t w = weight(s, W, in, out, "W");
    if (kind == SL_COLUMN_PARALLEL) {
        /* Y^T (out x n) = W^T X^T with X^T (in x n) replicated, then to head slices */
        dmat_t x = grid_inplace(s, X, in, n, "X (replicated)");
        dmat_t y = grid_scratch(s, 0, out, n, "Y (grid)");
        pgemm(s, 'N', 'N', out, n, in, 1, &w, &x, 0, &y);
        dmat_t yh = heads(s, Y, out, n, "Y (heads)");
        redistribute(s, out, n, &y, &yh);
    } else {
        /* X^T (in x n) from head slices to the grid; Y^T (out x n) = W^T X^T, each
         * rank writing its block of the zeroed replicated Y */
        dmat_t xh = heads(s, X, in, n, "X (heads)");
        dmat_t x = grid_scratch(s, 0, in, n, "X (grid)");
        redistribute(s, in, n, &xh, &x);
        memset(Y, 0, (size_t)(n * out) * sizeof(real));
        dmat_t y = grid_inplace(s, Y, out, n, "Y (replicated)");
        pgemm(s, 'N', 'N', out, n, in, 1, &w, &x, 0, &y);
    }
}

void sl_linear_backward(sl_state_t *s, enum sl_kind kind, real *dX, real *dW, const real *X,
                        const real *dY, const real *W, int64_t n, int64_t in, int64_t out,
                        bool accumulate)
{
    if (n == 0)
        return;
    dmat_t w = weight(s, W, in, out, "W"), dw = weight(s, dW, in, out, "dW");
    /* Y = X W:  dX^T (in x n) = W dY^T, i.e. (W^T)^T dY^T;  dW^T (out x in) += dY^T X */
    if (kind == SL_COLUMN_PARALLEL) {
        dmat_t dyh = heads(s, dY, out, n, "dY (heads)");
        dmat_t dy = grid_scratch(s, 0, out, n, "dY (grid)");
        redistribute(s, out, n, &dyh, &dy);
        if (!accumulate)
            memset(dX, 0, (size_t)(n * in) * sizeof(real));
        dmat_t dx = grid_inplace(s, dX, in, n, "dX (replicated)");
        pgemm(s, 'T', 'N', in, n, out, 1, &w, &dy, accumulate ? 1 : 0, &dx);
        dmat_t x = grid_inplace(s, X, in, n, "X (replicated)");
        pgemm(s, 'N', 'T', out, in, n, 1, &dy, &x, 1, &dw);
    } else {
        int64_t il = in / s->P;
        dmat_t dy = grid_inplace(s, dY, out, n, "dY (replicated)");
        dmat_t dx = grid_scratch(s, 0, in, n, "dX (grid)");
        pgemm(s, 'T', 'N', in, n, out, 1, &w, &dy, 0, &dx);
        dmat_t dxh = heads(s, accumulate ? s->buf[1] : dX, in, n, "dX (heads)");
        redistribute(s, in, n, &dx, &dxh);
        if (accumulate)
            for (int64_t i = 0; i < n * il; i++)
                dX[i] += s->buf[1][i];
        dmat_t xh = heads(s, X, in, n, "X (heads)");
        dmat_t x = grid_scratch(s, 0, in, n, "X (grid)");
        redistribute(s, in, n, &xh, &x);
        pgemm(s, 'N', 'T', out, in, n, 1, &dy, &x, 1, &dw);
    }
}
