/* The conjugate operators of 1D tensor parallelism (f and g), in place. */
#include "motscale/mesh.h"
#include "motscale/tp.h"

static void allreduce_sum(tp_ctx_t *tp, real *buf, size_t n)
{
    if (tp->size <= 1 || n == 0)
        return;
    double t0 = now_seconds();
    /* MPI counts are int: reduce in chunks rather than narrow a large count. */
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        size_t c = n - off < chunk ? n - off : chunk;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)c, MPI_REAL_T, MPI_SUM, tp->comm));
    }
    tp->comm_s += now_seconds() - t0;
}

void tp_f_backward(tp_ctx_t *tp, real *dx, size_t n) { allreduce_sum(tp, dx, n); }

void tp_g_forward(tp_ctx_t *tp, real *y, size_t n) { allreduce_sum(tp, y, n); }

double tp_sum_double(tp_ctx_t *tp, double v)
{
    if (tp->size <= 1)
        return v;
    double t0 = now_seconds();
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, tp->comm));
    tp->comm_s += now_seconds() - t0;
    return v;
}
