/* motscale report: placeholder until the analysis module lands. */
#include <stdio.h>

#include "motscale/cli.h"

int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "motscale report: not built yet\n");
    return 1;
}
