/* Row-wise and element-wise kernels: RMSNorm, RoPE, masked softmax, SwiGLU gate,
 * cross-entropy. Accumulations that decide the loss are done in double. */
#include <math.h>

#include "motscale/kernels.h"

void rmsnorm_forward(real *y, real *rstd, const real *x, const real *w, int64_t n, int64_t d,
                     real eps)
{
    for (int64_t i = 0; i < n; i++) {
        const real *xi = x + i * d;
        real *yi = y + i * d;
        double ss = 0;
        for (int64_t j = 0; j < d; j++)
            ss += (double)xi[j] * xi[j];
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
        for (int64_t j = 0; j < d; j++) {
            dot += (double)dyi[j] * w[j] * xi[j];
            dw[j] += dyi[j] * xi[j] * r;
        }
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

void softmax_prefix(real *s, int64_t rows, int64_t cols, const int64_t *hi)
{
    for (int64_t i = 0; i < rows; i++) {
        real *row = s + i * cols;
        int64_t n = hi[i];
        if (n > 0) {
            real mx = row[0];
            for (int64_t j = 1; j < n; j++)
                mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int64_t j = 0; j < n; j++) {
                row[j] = REAL_EXP(row[j] - mx);
                sum += row[j];
            }
            real inv = (real)(1.0 / sum);
            for (int64_t j = 0; j < n; j++)
                row[j] *= inv;
        }
        for (int64_t j = n > 0 ? n : 0; j < cols; j++)
            row[j] = 0;
    }
}

void softmax_prefix_backward(real *dp, const real *p, int64_t rows, int64_t cols, const int64_t *hi)
{
    /* forward: p_j = exp(s_j) / sum_k exp(s_k) over j < hi;  ds_j = p_j (dp_j - sum_k dp_k p_k) */
    for (int64_t i = 0; i < rows; i++) {
        real *drow = dp + i * cols;
        const real *prow = p + i * cols;
        int64_t n = hi[i] > 0 ? hi[i] : 0;
        double dot = 0;
        for (int64_t j = 0; j < n; j++)
            dot += (double)drow[j] * prow[j];
        for (int64_t j = 0; j < n; j++)
            drow[j] = prow[j] * (drow[j] - (real)dot);
        for (int64_t j = n; j < cols; j++)
            drow[j] = 0;
    }
}

static inline real sigmoid(real u) { return 1 / (1 + REAL_EXP(-u)); }

void swiglu_forward(real *s, const real *u, const real *w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        s[i] = u[i] * sigmoid(u[i]) * w[i];
}

void swiglu_backward(real *du, real *dw, const real *ds, const real *u, const real *w, int64_t n)
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
    real mx = logits[0];
    for (int64_t j = 1; j < v; j++)
        mx = logits[j] > mx ? logits[j] : mx;
    double sum = 0;
    for (int64_t j = 0; j < v; j++)
        sum += exp((double)(logits[j] - mx));
    double logz = log(sum) + mx;
    double loss = logz - (double)logits[target];
    for (int64_t j = 0; j < v; j++) {
        double p = exp((double)logits[j] - logz);
        dlogits[j] = (real)(scale * (p - (j == target ? 1.0 : 0.0)));
    }
    return loss;
}
