/* Row-wise and element-wise kernels: RMSNorm, RoPE, masked softmax, SwiGLU gate,
 * cross-entropy. Accumulations that decide the loss are done in double, with eight
 * independent accumulators so the loops vectorise without reassociation (no
 * -ffast-math); exponentials go through kernel_exp (kernels.h). */
#include <math.h>
#include <string.h>

#include "motscale/kernels.h"

/* Sum of n values in double: eight accumulators, combined pairwise. */
static double sum8(const real *x, int64_t n)
{
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[j + k];
    for (; j < n; j++)
        acc[0] += (double)x[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum_j a_j b_j in double, as sum8. */
static double dot8(const real *a, const real *b, int64_t n)
{
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)a[j + k] * (double)b[j + k];
    for (; j < n; j++)
        acc[0] += (double)a[j] * (double)b[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* row[j] = exp(row[j] - mx) for j < n; returns their sum in double. */
static double exp_shifted(real *row, int64_t n, real mx)
{
    for (int64_t j = 0; j < n; j++)
        row[j] = kernel_exp(row[j] - mx);
    return sum8(row, n);
}

/* max of n >= 1 values, eight lanes at a time */
static real row_max(const real *row, int64_t n)
{
    real acc[8];
    for (int k = 0; k < 8; k++)
        acc[k] = row[0];
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] = row[j + k] > acc[k] ? row[j + k] : acc[k];
    for (; j < n; j++)
        acc[0] = row[j] > acc[0] ? row[j] : acc[0];
    real mx = acc[0];
    for (int k = 1; k < 8; k++)
        mx = acc[k] > mx ? acc[k] : mx;
    return mx;
}

void rmsnorm_forward(real *y, real *rstd, const real *x, const real *w, int64_t n, int64_t d,
                     real eps)
{
    for (int64_t i = 0; i < n; i++) {
        const real *xi = x + i * d;
        real *yi = y + i * d;
        double ss = dot8(xi, xi, d);
        real r = (real)(1.0 / sqrt(ss / (double)d + eps));
        rstd[i] = r;
        for (int64_t j = 0; j < d; j++)
            yi[j] = xi[j] * r * w[j];
    }
}

void rmsnorm_backward(real *dx, real *dw, const real *dy, const real *x, const real *w,
                      const real *rstd, int64_t n, int64_t d)
{
    /* forward: y_j = x_j r w_j, r = (mean(x^2) + eps)^-1/2
     * dx_j = r (dy_j w_j) - r^3 x_j mean_k(dy_k w_k x_k) */
    for (int64_t i = 0; i < n; i++) {
        const real *xi = x + i * d, *dyi = dy + i * d;
        real *dxi = dx + i * d;
        real r = rstd[i];
        double dot = 0;
        {
            double acc[8] = {0};
            int64_t j = 0;
            for (; j + 8 <= d; j += 8)
                for (int k = 0; k < 8; k++)
                    acc[k] += (double)dyi[j + k] * w[j + k] * xi[j + k];
            for (; j < d; j++)
                acc[0] += (double)dyi[j] * w[j] * xi[j];
            dot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        }
        if (dw) /* NULL: a frozen weight */
            for (int64_t j = 0; j < d; j++)
                dw[j] += dyi[j] * xi[j] * r;
        real c = (real)(dot / (double)d) * r * r * r;
        for (int64_t j = 0; j < d; j++)
            dxi[j] += r * dyi[j] * w[j] - c * xi[j];
    }
}

void rope_rotate(real *out, const real *in, const real *cosv, const real *sinv, int64_t hd,
                 int inverse)
{
    real sgn = inverse ? -1 : 1;
    for (int64_t j = 0; j < hd / 2; j++) {
        real c = cosv[j], s = sgn * sinv[j];
        real a = in[2 * j], b = in[2 * j + 1];
        out[2 * j] = a * c - b * s;
        out[2 * j + 1] = a * s + b * c;
    }
}

void softmax_rows(real *s, int64_t rows, int64_t cols, int64_t ld, const int64_t *hi)
{
    for (int64_t i = 0; i < rows; i++) {
        real *row = s + i * ld;
        int64_t n = hi[i] < cols ? hi[i] : cols;
        if (n > 0) {
            real inv = (real)(1.0 / exp_shifted(row, n, row_max(row, n)));
            for (int64_t j = 0; j < n; j++)
                row[j] *= inv;
        }
        for (int64_t j = n > 0 ? n : 0; j < cols; j++)
            row[j] = 0;
    }
}

void softmax_rows_backward(real *dp, const real *p, int64_t rows, int64_t cols, int64_t ld,
                           const int64_t *hi)
{
    /* forward: p_j = exp(s_j) / sum_k exp(s_k) over j < hi;  ds_j = p_j (dp_j - sum_k dp_k p_k) */
    for (int64_t i = 0; i < rows; i++) {
        real *drow = dp + i * ld;
        const real *prow = p + i * ld;
        int64_t n = hi[i] < cols ? hi[i] : cols;
        n = n > 0 ? n : 0;
        real dot = (real)dot8(drow, prow, n);
        for (int64_t j = 0; j < n; j++)
            drow[j] = prow[j] * (drow[j] - dot);
        for (int64_t j = n; j < cols; j++)
            drow[j] = 0;
    }
}

void softmax_prefix(real *s, int64_t rows, int64_t cols, const int64_t *hi)
{
    softmax_rows(s, rows, cols, cols, hi);
}

void softmax_prefix_backward(real *dp, const real *p, int64_t rows, int64_t cols, const int64_t *hi)
{
    softmax_rows_backward(dp, p, rows, cols, cols, hi);
}

static inline real sigmoid(real u) { return 1 / (1 + kernel_exp(-u)); }

void swiglu_forward(real *restrict s, const real *restrict u, const real *restrict w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        s[i] = u[i] * sigmoid(u[i]) * w[i];
}

void swiglu_backward(real *restrict du, real *restrict dw, const real *restrict ds, const real *restrict u,
                     const real *restrict w, int64_t n)
{
    /* forward: s = u sig(u) w;  d silu/du = sig(u) (1 + u (1 - sig(u))) */
    for (int64_t i = 0; i < n; i++) {
        real sg = sigmoid(u[i]);
        real silu = u[i] * sg;
        dw[i] = ds[i] * silu;
        du[i] = ds[i] * w[i] * sg * (1 + u[i] * (1 - sg));
    }
}

double cross_entropy_row(real *dlogits, const real *logits, int32_t target, int64_t v, real scale)
{
    /* one exponential per logit: e_j = exp(z_j - max) into dlogits, S = sum e_j (double);
     * loss = log S + max - z_target;  dlogits_j = scale (e_j / S - [j = target]) */
    real mx = row_max(logits, v), zt = logits[target];
    if (dlogits != logits)
        memcpy(dlogits, logits, (size_t)v * sizeof(real));
    double sum = exp_shifted(dlogits, v, mx);
    double loss = log(sum) + (double)mx - (double)zt;
    real f = (real)((double)scale / sum);
    for (int64_t j = 0; j < v; j++)
        dlogits[j] *= f;
    dlogits[target] -= scale;
    return loss;
}
