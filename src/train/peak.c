/* The per-rank peak FLOP/s that MFU divides by: a one-thread SGEMM probe, best of
 * square sizes 512 to 2048, measured once per host and cached in a small text file. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/common.h"
#include "motscale/peak.h"

double peak_sgemm_probe(int reps, double best_by_size[PEAK_PROBE_SIZES])
{
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double best = 0;
    for (int i = 0; i < PEAK_PROBE_SIZES; i++) {
        int n = 512 << i;
        float *a = xcalloc((size_t)n * (size_t)n, sizeof(float));
        float *b = xcalloc((size_t)n * (size_t)n, sizeof(float));
        float *c = xcalloc((size_t)n * (size_t)n, sizeof(float));
        for (size_t j = 0; j < (size_t)n * (size_t)n; j++)
            a[j] = b[j] = (float)(j % 7) * 0.1f;
        double size_best = 0;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now_seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
            double dt = now_seconds() - t0;
            double f = 2.0 * n * (double)n * n / dt;
            size_best = f > size_best ? f : size_best;
        }
        if (best_by_size)
            best_by_size[i] = size_best;
        best = size_best > best ? size_best : best;
        free(a);
        free(b);
        free(c);
    }
    openblas_set_num_threads(threads);
    return best;
}

double peak_flops_per_rank(double configured, const char *cache_dir, char *source, size_t len)
{
    if (configured > 0) {
        snprintf(source, len, "config (log.peak_flops)");
        return configured;
    }
    if (motscale_rank > 0) { /* rank 0 measures; the caller broadcasts */
        snprintf(source, len, "measured");
        return 0;
    }
    char host[256] = "host", path[CFG_PATH_LEN + 300];
    gethostname(host, sizeof host - 1);
    snprintf(path, sizeof path, "%s/.peak_flops-%s", cache_dir, host);
    double v = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lf", &v) != 1)
            v = 0;
        fclose(f);
    }
    if (v > 0) {
        snprintf(source, len, "measured (one-thread sgemm probe, cached in %s)", path);
        return v;
    }
    v = peak_sgemm_probe(3, NULL);
    snprintf(source, len, "measured (one-thread sgemm probe, best of n=512..2048, cached in %s)", path);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%.6e\n", v);
        fclose(f);
    }
    return v;
}
