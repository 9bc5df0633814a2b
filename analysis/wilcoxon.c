/* The Wilcoxon signed-rank test of paired differences, by hand (GSL has no such
 * test): zero differences dropped, average ranks for ties, and the normal
 * approximation with the tie correction and a continuity correction of 1/2.
 * Method: docs/analysis.md, "Paired per-sentence differences". */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <math.h>
#include <stdlib.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

void analysis_wilcoxon(analysis_wilcoxon_t *w, const double *d, size_t n)
{
    w->n = 0;
    w->w_plus = w->w_minus = w->z = w->p = NAN;
    double *a = xmalloc((n + 1) * sizeof *a);
    size_t *order = xmalloc((n + 1) * sizeof *order);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(d[i]) && d[i] != 0)
            a[k++] = fabs(d[i]);
    /* d's nonzero entries again, in the order of a, for their signs */
    double *sgn = xmalloc((k + 1) * sizeof *sgn);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(d[i]) && d[i] != 0)
            sgn[j++] = d[i] > 0 ? 1 : -1;
    w->n = k;
    if (k > 0) {
        gsl_sort_index(order, a, 1, k);
        double wp = 0, wm = 0, ties = 0;
        /* runs of equal |d| share the mean of their ranks r0+1 .. r1 */
        for (size_t r0 = 0; r0 < k;) {
            size_t r1 = r0 + 1;
            while (r1 < k && a[order[r1]] == a[order[r0]])
                r1++;
            double rank = 0.5 * (double)(r0 + 1 + r1), t = (double)(r1 - r0);
            ties += t * t * t - t;
            for (size_t q = r0; q < r1; q++) {
                if (sgn[order[q]] > 0)
                    wp += rank;
                else
                    wm += rank;
            }
            r0 = r1;
        }
        double N = (double)k, mean = N * (N + 1) / 4;
        double var = N * (N + 1) * (2 * N + 1) / 24 - ties / 48;
        w->w_plus = wp;
        w->w_minus = wm;
        if (var > 0) {
            double dev = wp - mean;
            double cc = dev > 0 ? -0.5 : dev < 0 ? 0.5 : 0; /* toward the mean */
            w->z = (dev + cc) / sqrt(var);
            w->p = 2 * gsl_cdf_ugaussian_Q(fabs(w->z));
            if (w->p > 1)
                w->p = 1;
        }
    }
    free(a);
    free(order);
    free(sgn);
}
