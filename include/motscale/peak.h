/* The per-rank peak FLOP/s that MFU divides by. */
#ifndef MOTSCALE_PEAK_H
#define MOTSCALE_PEAK_H

#include <stddef.h>

/* configured > 0 (log.peak_flops): that value. Otherwise measured once by a one-thread
 * SGEMM probe (best of square sizes 512 to 2048) on world rank 0 and cached in
 * CACHE_DIR/.peak_flops-HOST; other ranks get 0 (the caller broadcasts). source
 * receives how it was obtained. */
double peak_flops_per_rank(double configured, const char *cache_dir, char *source, size_t len);

/* One-thread SGEMM FLOP/s (C = A B, square, row-major): for n = 512, 1024, 2048 the
 * best of `reps` timed products, into best_by_size[i] unless NULL; returns the best
 * over the sizes. The probe above, and bench/bench_sgemm's figure. */
#define PEAK_PROBE_SIZES 3
double peak_sgemm_probe(int reps, double best_by_size[PEAK_PROBE_SIZES]);

#endif
