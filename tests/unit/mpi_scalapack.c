/* Closed-form tests of the ScaLAPACK backend (src/parallel/scalapack.c), run under
 * `mpirun -np 4` by tests/e2e/scalapack.sh: the grid shape and weight blocks tile
 * every tensor exactly once; and sl_linear_forward / sl_linear_backward, for both
 * kinds, on a 2 x 2 grid (tp = 4) and two 2 x 1 grids (tp = 2), at token counts
 * that leave grid columns empty (n = 1) or uneven (n = 3, 37), give exactly
 * Y = X W, dX = dY W^T and dW += X^T dY of a serial product, with and without
 * accumulation.
 *
 * Tolerance: none. Inputs are small integers, so every product and partial sum is
 * an integer below 2^24, exact in fp32 in any summation order: compare with ==.
 * As in mpi_collectives.c, mismatches are counted locally and summed over the world
 * before any assert, so all ranks pass or fail together; only rank 0 prints TAP. */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "mpitest.h"

#include "motscale/scalapack.h"
#include "motscale/tp.h"


static long world_bad(long bad, const char *first)
{
    if (bad && first[0])
        fprintf(stderr, "mpi_scalapack[rank %d]: %ld mismatches, first: %s\n", world_rank, bad, first);
    long total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return total;
}

/* Count a mismatch; describe the first in buf (len bytes). */
#define MISMATCH(buf, len, ...)                                                            \
    do {                                                                                   \
        if (bad++ == 0 && !(buf)[0])                                                       \
            snprintf((buf), (len), __VA_ARGS__);                                           \
    } while (0)

/* Pure geometry: pr >= pc, pr * pc = P, most square; blocks tile W exactly once. */
static void test_grid_and_blocks(void **state)
{
    (void)state;
    long bad = 0;
    char first[256] = "";
    static const int want[][3] = {{1, 1, 1}, {2, 2, 1}, {3, 3, 1}, {4, 2, 2}, {6, 3, 2},
                                  {8, 4, 2}, {9, 3, 3}, {12, 4, 3}, {16, 4, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int pr, pc;
        sl_grid_shape(want[i][0], &pr, &pc);
        if (pr != want[i][1] || pc != want[i][2])
            MISMATCH(first, sizeof first, "P %d: grid %d x %d, want %d x %d", want[i][0], pr, pc, want[i][1], want[i][2]);
        int64_t rows = 24, cols = 48; /* divisible by every P above */
        int *owner = calloc((size_t)(rows * cols), sizeof *owner);
        for (int r = 0; r < want[i][0]; r++) {
            int64_t r0, lr, c0, lc;
            sl_weight_block(want[i][0], r, rows, cols, &r0, &lr, &c0, &lc);
            for (int64_t a = r0; a < r0 + lr; a++)
                for (int64_t b = c0; b < c0 + lc; b++)
                    owner[a * cols + b]++;
        }
        for (int64_t e = 0; e < rows * cols; e++)
            if (owner[e] != 1)
                MISMATCH(first, sizeof first, "P %d: element %lld owned %d times", want[i][0], (long long)e, owner[e]);
        free(owner);
    }
    assert_int_equal(world_bad(bad, first), 0);
}

/* Small integer entries of the logical matrices. */
static real xv(int64_t i, int64_t j) { return (real)((i * 7 + j * 3) % 5 - 2); }
static real wv(int64_t i, int64_t j) { return (real)((i * 5 + j) % 7 - 3); }
static real gv(int64_t i, int64_t j) { return (real)((i + 2 * j) % 3 - 1); }

/* One kind at tp = P (world split into 4/P groups), n tokens, W (in, out). */
static long check_linear(enum sl_kind kind, int P, int64_t n, int64_t in, int64_t out, char *first,
                         size_t flen)
{
    long bad = 0;
    MPI_Comm comm;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank / P, world_rank, &comm);
    tp_ctx_t tp = {.comm = comm, .rank = world_rank % P, .size = P};
    sl_state_t *s = sl_create(&tp, 64, in > out ? in : out);
    int64_t r0, lr, c0, lc;
    sl_weight_block(P, tp.rank, in, out, &r0, &lr, &c0, &lc);
    real *W = malloc((size_t)(lr * lc) * sizeof(real)), *dW = malloc((size_t)(lr * lc) * sizeof(real));
    for (int64_t a = 0; a < lr; a++)
        for (int64_t b = 0; b < lc; b++) {
            W[a * lc + b] = wv(r0 + a, c0 + b);
            dW[a * lc + b] = 1; /* dW accumulates onto what is there */
        }
    /* serial references in double: Y = X W, dX = dY W^T, dW = X^T dY */
    double *Y = calloc((size_t)(n * out), sizeof *Y), *dX = calloc((size_t)(n * in), sizeof *dX);
    double *gW = calloc((size_t)(in * out), sizeof *gW);
    for (int64_t t = 0; t < n; t++)
        for (int64_t a = 0; a < in; a++)
            for (int64_t b = 0; b < out; b++) {
                Y[t * out + b] += xv(t, a) * wv(a, b);
                dX[t * in + a] += gv(t, b) * wv(a, b);
                gW[a * out + b] += xv(t, a) * gv(t, b);
            }
    bool col = kind == SL_COLUMN_PARALLEL;
    int64_t xw = col ? in : in / P, x0 = col ? 0 : tp.rank * xw;   /* X as the kind has it */
    int64_t yw = col ? out / P : out, y0 = col ? tp.rank * yw : 0; /* Y likewise */
    real *x = malloc((size_t)(n * xw + 1) * sizeof(real)), *y = malloc((size_t)(n * yw + 1) * sizeof(real));
    real *dy = malloc((size_t)(n * yw + 1) * sizeof(real)), *dx = malloc((size_t)(n * xw + 1) * sizeof(real));
    for (int64_t t = 0; t < n; t++) {
        for (int64_t a = 0; a < xw; a++)
            x[t * xw + a] = xv(t, x0 + a);
        for (int64_t b = 0; b < yw; b++)
            dy[t * yw + b] = gv(t, y0 + b);
    }
    const char *kn = col ? "column" : "row";

    /* forward; row-parallel Y is this rank's block, summed over the group as g does */
    sl_linear_forward(s, kind, y, x, W, n, in, out);
    if (!col)
        MPI_Allreduce(MPI_IN_PLACE, y, (int)(n * yw), MPI_REAL_T, MPI_SUM, comm);
    for (int64_t t = 0; t < n; t++)
        for (int64_t b = 0; b < yw; b++)
            if (y[t * yw + b] != (real)Y[t * out + y0 + b])
                MISMATCH(first, flen, "%s tp %d n %lld: Y[%lld][%lld] = %g, want %g", kn, P, (long long)n,
                         (long long)t, (long long)(y0 + b), (double)y[t * yw + b], Y[t * out + y0 + b]);

    /* backward twice: overwrite (dX starts at 1, which must vanish), then accumulate */
    for (int64_t e = 0; e < n * xw; e++)
        dx[e] = 1;
    sl_linear_backward(s, kind, dx, dW, x, dy, W, n, in, out, false);
    if (!col) /* complete (ref); make it 1 + ref so accumulation shows */
        for (int64_t e = 0; e < n * xw; e++)
            dx[e] += 1;
    sl_linear_backward(s, kind, dx, dW, x, dy, W, n, in, out, true);
    if (col) /* this rank's blocks, completed by the f all-reduce */
        MPI_Allreduce(MPI_IN_PLACE, dx, (int)(n * xw), MPI_REAL_T, MPI_SUM, comm);
    for (int64_t t = 0; t < n; t++)
        for (int64_t a = 0; a < xw; a++) {
            double want = (col ? 0 : 1) + 2 * dX[t * in + x0 + a];
            if (dx[t * xw + a] != (real)want)
                MISMATCH(first, flen, "%s tp %d n %lld: dX[%lld][%lld] = %g, want %g", kn, P, (long long)n,
                         (long long)t, (long long)(x0 + a), (double)dx[t * xw + a], want);
        }
    for (int64_t a = 0; a < lr; a++)
        for (int64_t b = 0; b < lc; b++) {
            double want = 1 + 2 * gW[(r0 + a) * out + c0 + b];
            if (dW[a * lc + b] != (real)want)
                MISMATCH(first, flen, "%s tp %d n %lld: dW[%lld][%lld] = %g, want %g", kn, P, (long long)n,
                         (long long)(r0 + a), (long long)(c0 + b), (double)dW[a * lc + b], want);
        }
    free(x), free(y), free(dx), free(dy), free(W), free(dW), free(Y), free(dX), free(gW);
    sl_free(s);
    MPI_Comm_free(&comm);
    return bad;
}

static void run_kind(enum sl_kind kind)
{
    long bad = 0;
    char first[256] = "";
    static const int64_t ns[] = {1, 3, 37, 0};
    for (int P = 4; P >= 2; P /= 2)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            bad += check_linear(kind, P, ns[i], 8, 12, first, sizeof first);
    assert_int_equal(world_bad(bad, first), 0);
}

static void test_column_parallel(void **state)
{
    (void)state;
    run_kind(SL_COLUMN_PARALLEL);
}

static void test_row_parallel(void **state)
{
    (void)state;
    run_kind(SL_ROW_PARALLEL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_and_blocks),
        cmocka_unit_test(test_column_parallel),
        cmocka_unit_test(test_row_parallel),
    };
    return mpitest_main("mpi_scalapack", tests, sizeof tests / sizeof tests[0], argc, argv);
}
