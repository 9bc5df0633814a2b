/* The zipper kind in float, the trainer's arithmetic (issue 15): gates at 0 give
 * the dense text decoder bit for bit; the cross-modal mask (zipper_cases.h). */
#include "zipper_cases.h"

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gates_zero_is_dense),
        cmocka_unit_test(test_cross_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
