/* The per-core SGEMM peak of this machine, the MFU denominator of `make bench`: the
 * one-thread OpenBLAS probe of peak_sgemm_probe (src/train/peak.c) with more
 * repetitions than a training run spends on it.
 *   build/bench/bench_sgemm [--reps N]      (default 5; prints GFLOP/s by size) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/peak.h"

int main(int argc, char **argv)
{
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000) {
                fprintf(stderr, "bench_sgemm: --reps: '%s' is not an integer in 1..1000\n", argv[i]);
                return EXIT_BADINPUT;
            }
            reps = (int)v;
        } else {
            fprintf(stderr, "bench_sgemm: unknown argument '%s' (usage: bench_sgemm [--reps N])\n", argv[i]);
            return EXIT_BADINPUT;
        }
    }
    double by_size[PEAK_PROBE_SIZES];
    double best = peak_sgemm_probe(reps, by_size);
    for (int i = 0; i < PEAK_PROBE_SIZES; i++)
        printf("sgemm n=%d: %.2f GFLOP/s (best of %d, one thread)\n", 512 << i, by_size[i] / 1e9, reps);
    printf("peak %.6e FLOP/s\n", best);
    return EXIT_OK;
}
