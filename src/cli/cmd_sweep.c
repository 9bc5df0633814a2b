/* `motscale sweep`: placeholder until the sweep expander lands (issue 6). */
#include "motscale/cli.h"
#include "motscale/common.h"

int cmd_sweep(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "motscale sweep: not built yet\n");
    return EXIT_FAULT;
}
