/* Shared by the cmocka unit tests: includes, the tolerance table and a closeness
 * assertion. */
#ifndef MOTSCALE_TESTUTIL_H
#define MOTSCALE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

/* Every tolerance, named and justified once in tests/tolerances.env (generated). */
#include "tolerances.h"

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
