/* `motscale probe-net`: under mpirun, the point-to-point and all-reduce times of
 * this job's ranks over message sizes 1 KiB .. 16 MiB, alpha and beta fitted to each
 * (cost.h), the fitted model against every measurement, and the fit written as INI
 * for `motscale project --net`. */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/cost.h"
#include "motscale/mesh.h"

#define PROBE_SIZES 15      /* 1 KiB * 2^k, k = 0 .. 14 (16 MiB) */
#define PROBE_ROUNDS 25
/* the shared-compute probe: a GEMM of a step's shape, (1024 x 256) (256 x 1024) */
#define SHARED_M 1024
#define SHARED_N 1024
#define SHARED_K 256
#define SHARED_REPS 5

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mpirun -np P motscale probe-net [--out NET.ini] [--rounds R] [--regimes K]\n\n"
            "Measures this job's network: a ping-pong between world ranks 0 and 1 (one-way\n"
            "time = half the round trip) and MPI_Allreduce over all P ranks (the call the\n"
            "trainer's TP layers and DP buckets make), fp32 sums, at 1 KiB .. 16 MiB in powers of\n"
            "two; each figure the fastest of R rounds (default %d; interference only adds time),\n"
            "a round several messages below 1 MiB. Fits alpha and beta by weighted least squares\n"
            "(relative error), in up to K (default 4) message-size regimes found from the data\n"
            "(MPI switches protocol with the size): point-to-point t = alpha + n beta;\n"
            "all-reduce with the formula of the cost model (docs/performance.md, ring or\n"
            "tree). Prints each measurement with its model and the error; --out writes the\n"
            "all-reduce fit as [net] (what `motscale project --net` reads) and the\n"
            "point-to-point one as [p2p].\n"
            "Then times a GEMM of a step's shape on rank 0 alone and on min(P, cores) ranks at\n"
            "once (the others asleep), and writes how much slower it runs shared as [node]\n"
            "gemm_shared (`motscale project` applies it when ranks share a node).\n"
            "Needs at least 2 ranks. Exit status: 0 done, 2 bad arguments or one rank.\n",
            PROBE_ROUNDS);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The fastest round's per-message seconds: on a shared machine interference only
 * adds time (a rank descheduled mid-exchange stalls its peer), so the minimum is
 * the link's own time, as the SGEMM peak is the best of its products. Every rank
 * takes part; rank 0's clock is the one reported (broadcast). */
static double probe(int kind, size_t bytes, int rounds, real *buf, real *peer, MPI_Comm w, int rank)
{
    int reps = bytes <= 65536 ? 16 : bytes <= 1048576 ? 4 : 2;
    int count = (int)(bytes / sizeof(real));
    double *t = xcalloc((size_t)rounds, sizeof *t);
    for (int r = 0; r <= rounds; r++) { /* round 0 warms up */
        MPI_CHECK(MPI_Barrier(w));
        double t0 = now_seconds();
        for (int i = 0; i < reps; i++) {
            if (kind == 0 && rank == 0) {
                MPI_CHECK(MPI_Send(buf, count, MPI_REAL_T, 1, 0, w));
                MPI_CHECK(MPI_Recv(peer, count, MPI_REAL_T, 1, 0, w, MPI_STATUS_IGNORE));
            } else if (kind == 0 && rank == 1) {
                MPI_CHECK(MPI_Recv(peer, count, MPI_REAL_T, 0, 0, w, MPI_STATUS_IGNORE));
                MPI_CHECK(MPI_Send(buf, count, MPI_REAL_T, 0, 0, w));
            } else if (kind == 1) {
                MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_REAL_T, MPI_SUM, w));
            }
        }
        double dt = (now_seconds() - t0) / reps / (kind == 0 ? 2 : 1);
        if (r > 0)
            t[r - 1] = dt;
    }
    qsort(t, (size_t)rounds, sizeof *t, cmp_double);
    double best = t[0];
    MPI_CHECK(MPI_Bcast(&best, 1, MPI_DOUBLE, 0, w));
    free(t);
    return best;
}

static double rel(double model, double meas) { return (model - meas) / meas; }

/* A barrier that waits asleep (MPI_Ibarrier tested every 1 ms): a rank with
 * nothing to do must not take a core from the ranks being timed. */
static void sleepy_barrier(MPI_Comm w)
{
    MPI_Request req;
    int done = 0;
    MPI_CHECK(MPI_Ibarrier(w, &req));
    for (;;) {
        MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done)
            return;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

/* Seconds of the probe GEMM on ranks 0 .. active-1 at once, the others asleep: the
 * slowest of them (a data-parallel step waits for it). */
static double gemm_on(int active, MPI_Comm w, int rank)
{
    sleepy_barrier(w);
    double t = rank < active ? cost_gemm_probe(SHARED_M, SHARED_N, SHARED_K) : 0, worst;
    sleepy_barrier(w);
    MPI_CHECK(MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, w));
    return worst;
}

/* How much slower a rank's GEMMs run while the other ranks of the node run theirs
 * (shared last-level cache and memory bandwidth): the median over SHARED_REPS
 * alternations of (slowest of k ranks at once) / (rank 0 alone), k = min(P, the
 * node's online cores) so that no rank waits for a core. *k receives k. */
static double gemm_shared(MPI_Comm w, int rank, int p, int *k, double *alone, double *together)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *k = cores >= 1 && cores < p ? (int)cores : p;
    double ratio[SHARED_REPS], a[SHARED_REPS], b[SHARED_REPS];
    for (int r = 0; r < SHARED_REPS; r++) {
        a[r] = gemm_on(1, w, rank);
        b[r] = gemm_on(*k, w, rank);
        ratio[r] = b[r] / a[r];
    }
    qsort(ratio, SHARED_REPS, sizeof ratio[0], cmp_double);
    qsort(a, SHARED_REPS, sizeof a[0], cmp_double);
    qsort(b, SHARED_REPS, sizeof b[0], cmp_double);
    *alone = a[SHARED_REPS / 2];
    *together = b[SHARED_REPS / 2];
    return ratio[SHARED_REPS / 2];
}

static void print_net(FILE *f, const char *what, const cost_net_t *n)
{
    for (int k = 0; k < n->n; k++)
        fprintf(f, "%s regime %d, up to %8.0f bytes: alpha %8.3f us, beta %.4f ns/byte (%.2f GB/s)\n", what, k,
                k == n->n - 1 ? INFINITY : n->upto[k], 1e6 * n->alpha[k], 1e9 * n->beta[k], 1e-9 / n->beta[k]);
}

static void write_net(FILE *f, const char *section, const cost_net_t *n)
{
    fprintf(f, "[%s]\nregimes = %d\n", section, n->n);
    const char *names[3] = {"upto", "alpha", "beta"};
    const double *v[3] = {n->upto, n->alpha, n->beta};
    for (int j = 0; j < 3; j++) {
        fprintf(f, "%s =", names[j]);
        for (int k = 0; k < n->n; k++)
            fprintf(f, "%s %.6e", k ? "," : "", v[j][k]);
        fprintf(f, "\n");
    }
}

typedef struct shared {
    int ranks;               /* ranks that ran the GEMM at once */
    double alone, together;  /* seconds: rank 0 alone, the slowest of them at once */
    double factor;           /* median ratio */
} shared_t;

static void report(const double *bytes, const double *p2p, const double *ar, int p, const cost_net_t *np2p,
                   const cost_net_t *nar, double wp, double wa, const shared_t *sh, const char *out)
{
    printf("probe-net: %d ranks; one-way point-to-point (ranks 0-1) and all-reduce (all ranks), fastest rounds\n\n", p);
    printf("%10s %12s %12s %8s %12s %12s %8s\n", "bytes", "p2p_us", "p2p_model", "err%", "allred_us", "allred_model",
           "err%");
    for (int i = 0; i < PROBE_SIZES; i++) {
        const char *algo;
        double mp = cost_p2p(np2p, bytes[i]), ma = cost_allreduce(nar, p, bytes[i], &algo);
        printf("%10.0f %12.2f %12.2f %+8.1f %12.2f %12.2f %+8.1f  %s\n", bytes[i], 1e6 * p2p[i], 1e6 * mp,
               100 * rel(mp, p2p[i]), 1e6 * ar[i], 1e6 * ma, 100 * rel(ma, ar[i]), algo);
    }
    printf("\n");
    print_net(stdout, "p2p       ", np2p);
    print_net(stdout, "all-reduce", nar);
    printf("figure p2p model worst error over 1 KiB..16 MiB: %.1f%%\n", 100 * wp);
    printf("figure all-reduce model worst error over 1 KiB..16 MiB: %.1f%%\n", 100 * wa);
    printf("shared compute: GEMM (%d x %d) (%d x %d), rank 0 alone %.3f ms, %d ranks at once %.3f ms (the slowest): "
           "x%.3f\n",
           SHARED_M, SHARED_K, SHARED_K, SHARED_N, 1e3 * sh->alone, sh->ranks, 1e3 * sh->together, sh->factor);
    if (!out)
        return;
    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "motscale probe-net: %s: cannot write\n", out);
        return;
    }
    fprintf(f, "; motscale probe-net, %d ranks: upto in bytes, alpha in s, beta in s/byte; [net] is the\n"
               "; all-reduce fit (motscale project --net), [p2p] the point-to-point one\n", p);
    write_net(f, "net", nar);
    fprintf(f, "ranks = %d\n", p);
    write_net(f, "p2p", np2p);
    fprintf(f, "; GEMM time of %d ranks running theirs at once over one rank alone\n[node]\n"
               "gemm_shared = %.4f\nsharing_ranks = %d\n", sh->ranks, sh->factor, sh->ranks);
    fclose(f);
}

int cmd_probenet(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *out = NULL;
    int rounds = PROBE_ROUNDS, regimes = COST_REGIMES;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
                   atoi(argv[i + 1]) <= 1000) {
            rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--regimes") && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
                   atoi(argv[i + 1]) <= COST_REGIMES) {
            regimes = atoi(argv[++i]);
        } else {
            fprintf(stderr, "motscale probe-net: bad argument '%s' (see --help)\n", argv[i]);
            return EXIT_BADINPUT;
        }
    }
    MPI_Init(NULL, NULL);
    MPI_Comm w = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(w, MPI_ERRORS_RETURN);
    int rank, p;
    MPI_CHECK(MPI_Comm_rank(w, &rank));
    MPI_CHECK(MPI_Comm_size(w, &p));
    if (p < 2) {
        if (rank == 0)
            fprintf(stderr, "motscale probe-net: needs at least 2 ranks (mpirun -np 2 or more)\n");
        MPI_Finalize();
        return EXIT_BADINPUT;
    }
    size_t maxb = (size_t)1024 << (PROBE_SIZES - 1);
    real *buf = xcalloc(maxb / sizeof(real), sizeof(real)), *peer = xcalloc(maxb / sizeof(real), sizeof(real));
    double bytes[PROBE_SIZES], p2p[PROBE_SIZES], ar[PROBE_SIZES];
    for (int i = 0; i < PROBE_SIZES; i++) {
        bytes[i] = (double)((size_t)1024 << i);
        p2p[i] = probe(0, (size_t)bytes[i], rounds, buf, peer, w, rank);
        ar[i] = probe(1, (size_t)bytes[i], rounds, buf, peer, w, rank);
    }
    shared_t sh;
    sh.factor = gemm_shared(w, rank, p, &sh.ranks, &sh.alone, &sh.together);
    cost_net_t np2p, nar;
    double wp, wa;
    bool ok = cost_fit_net(&np2p, 0, p, bytes, p2p, PROBE_SIZES, regimes, &wp) &&
              cost_fit_net(&nar, 1, p, bytes, ar, PROBE_SIZES, regimes, &wa);
    if (rank == 0 && ok)
        report(bytes, p2p, ar, p, &np2p, &nar, wp, wa, &sh, out);
    if (rank == 0 && !ok)
        fprintf(stderr, "motscale probe-net: the alpha-beta fit failed\n");
    free(buf);
    free(peer);
    MPI_Finalize();
    return ok ? EXIT_OK : EXIT_FAULT;
}
