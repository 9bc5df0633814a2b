/* The cost model of one training step at a given layout (motscale project): GEMM
 * time from the tower model's GEMM shapes at a measured or given rate, elementwise
 * time from counted bytes and kernel elements at measured rates, and the
 * communication the step issues (TP all-reduces per layer, DP buckets) from
 * alpha-beta formulas, with the DP overlap as dp.c does it. Every formula is in
 * docs/performance.md, "The cost model". */
#ifndef MOTSCALE_COST_H
#define MOTSCALE_COST_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/model.h"

/* A link in up to COST_REGIMES message-size regimes (an MPI library switches
 * protocol with the size: eager, rendezvous, and caches stop holding the message):
 * in regime k, for messages of at most upto[k] bytes (the last: any size), a message
 * of n bytes takes alpha[k] + n beta[k] seconds. One regime: plain alpha-beta. */
#define COST_REGIMES 4
typedef struct cost_net {
    int n;                         /* regimes, 1 .. COST_REGIMES */
    double upto[COST_REGIMES];     /* bytes */
    double alpha[COST_REGIMES];    /* s */
    double beta[COST_REGIMES];     /* s / byte */
} cost_net_t;

/* Collectives over p ranks on n bytes (fp32 sums): the cheaper of the ring and the
 * recursive-doubling (tree) formula; *algo names the one used. p <= 1: 0. */
double cost_allreduce(const cost_net_t *net, int p, double bytes, const char **algo);
double cost_reduce_scatter(const cost_net_t *net, int p, double bytes, const char **algo);
double cost_allgather(const cost_net_t *net, int p, double bytes, const char **algo);

/* alpha and beta from measured times secs[i] of messages of bytes[i] (n points,
 * ascending), weighted least squares on the relative error (weights 1/t^2,
 * gsl_multifit_wlinear): kind 0: point-to-point, t = alpha + n beta; kind 1: the
 * all-reduce of p ranks, t = cost_allreduce (the formula it picks, re-chosen twice
 * after the first fit). Up to max_regimes regimes of at least 2 sizes each: of all
 * cuts of the sizes into contiguous regimes the one with the smallest worst relative
 * error (fewer regimes on ties); *worst receives it. false when a fit fails (a
 * non-positive time, fewer than 2 points). */
bool cost_fit_net(cost_net_t *out, int kind, int p, const double *bytes, const double *secs, int n,
                  int max_regimes, double *worst);
/* The model's time of one point-to-point message of n bytes. */
double cost_p2p(const cost_net_t *net, double bytes);

/* Measured rates of this machine's kernels, one core. */
typedef struct cost_rates {
    double gemm_flops;     /* > 0: every GEMM at this rate; 0: cost_gemm_time probes each shape */
    double stream_bytes;   /* bytes/s of a streaming pass over cache-sized buffers (norms,
                            * residuals, RoPE: a layer's activations) */
    double stream_big;     /* bytes/s of a streaming pass over 48 MiB (AdamW, the norm) */
    double softmax_elems;  /* softmax elements/s, forward and backward together */
    double xent_elems;     /* cross-entropy logits/s (forward and gradient in one pass) */
} cost_rates_t;

/* The layout and batch of one rank. */
typedef struct cost_layout {
    int tp, dp, zero;
    int micro_batch, n_micro;   /* sequences per micro-batch; micro-batches per step */
    double bucket_mb;           /* parallel.bucket_mb */
    double overlap;             /* share of the DP reduction that may run under backward (0..1) */
} cost_layout_t;

/* One projected step of one rank, seconds (and the model's FLOPs, bytes). */
typedef struct cost_step {
    double gemm_s;          /* compute: GEMMs */
    double elem_s;          /* the rest: elementwise kernels and the optimizer */
    double tp_s;            /* TP all-reduces, exposed (blocking) */
    double dp_s;            /* DP reduction (all-reduce or reduce-scatter), all buckets */
    double dp_exposed_s;    /* ... of which not hidden under backward */
    double gather_s;        /* ZeRO-1 parameter all-gather, exposed */
    double small_s;         /* loss sums and the norm: latency-bound collectives */
    double step_s;          /* gemm + elem + tp + dp_exposed + gather + small */
    double model_flops;     /* model FLOPs of the whole step (flops.h formula) */
    double memory;          /* bytes per rank: params, grads, moments (/dp under zero), activations */
    const char *tp_algo, *dp_algo;
} cost_step_t;

/* Seconds of one GEMM of (M x K) (K x N) on this core: the median of a few timed
 * calls through gemm(), cached by shape. */
double cost_gemm_time(int64_t M, int64_t N, int64_t K);
/* The same timing, taken now (not cached): operands rotated through up to 32 MiB of
 * copies so that none is cache-hot, the median of 5 rounds of at least 2 ms. */
double cost_gemm_probe(int64_t M, int64_t N, int64_t K);
/* The elementwise rates, measured here (a few hundred ms). */
void cost_probe_rates(cost_rates_t *r);

/* Project one step. share[t]: the fraction of tokens in tower t (from data.mix).
 * false with err for a model the cost model does not cover (experts, ScaLAPACK). */
bool cost_project(cost_step_t *out, const model_shape_t *s, int32_t vocab, const double *share,
                  const cost_layout_t *l, const cost_rates_t *r, const cost_net_t *net, char *err,
                  size_t errlen);

#endif
