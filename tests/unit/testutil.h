/* Shared by the cmocka unit tests: includes, and every tolerance the tests use,
 * named and justified in one place. */
#ifndef MOTSCALE_TESTUTIL_H
#define MOTSCALE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

/* Central finite differences in double with step h = 1e-5 have truncation error
 * O(h^2) ~ 1e-10 and rounding error ~ eps/h ~ 1e-11 relative; 1e-6 relative (with
 * an absolute floor for near-zero gradients) leaves a wide margin while a wrong
 * backward term is off by O(1). */
#define TOL_FD_REL 1e-6
#define TOL_FD_ABS 1e-8
#define FD_STEP 1e-5

/* Two fp32 forward passes that differ only in summation order (tower grouping,
 * tensor-parallel partial sums) agree to a few ulps of the activations; through a
 * few layers that is ~1e-5 relative on the loss. */
#define TOL_F32_REORDER 1e-5

/* |a - b| <= abs + rel * max(|a|, |b|) */
static inline int close_enough(double a, double b, double rel, double abs_tol)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= abs_tol + rel * scale;
}

#define assert_close(a, b, rel, abs_tol)                                                   \
    do {                                                                                   \
        double a_ = (a), b_ = (b);                                                         \
        if (!close_enough(a_, b_, (rel), (abs_tol)))                                       \
            fail_msg("%s = %.10g vs %s = %.10g (rel %.3g, abs %.3g)", #a, a_, #b, b_,      \
                     (double)(rel), (double)(abs_tol));                                     \
    } while (0)

#endif
