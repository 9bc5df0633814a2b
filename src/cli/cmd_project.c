/* `motscale project CONFIG --ranks 1,2,...`: the step time, MFU, memory per rank and
 * MoT/dense ratio the cost model (cost.h) projects at each rank count, as a table
 * and a gnuplot figure. No MPI: the rates are probed on this core, the network
 * comes from `motscale probe-net` or the command line. */
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/cost.h"
#include "motscale/data.h"
#include "motscale/peak.h"

#define PROJECT_MAX_POINTS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale project CONFIG.ini --ranks P1,P2,... [options] [section.key=value ...]\n\n"
            "Projects one training step of CONFIG at each rank count P (tp = parallel.tp, dp =\n"
            "P / tp, parallel.zero, parallel.bucket_mb): compute (GEMMs of the model's shapes),\n"
            "exposed communication (TP all-reduces per layer, DP buckets, the ZeRO-1\n"
            "all-gather; alpha-beta, ring or tree), the rest (elementwise kernels, AdamW),\n"
            "MFU, memory per rank, and the step-time ratio of MoT to dense of the same width\n"
            "at the same P. Formulas: docs/performance.md, \"The cost model\".\n\n"
            "  --ranks LIST       rank counts, comma-separated (each a multiple of parallel.tp)\n"
            "  --net FILE         alpha and beta (by message-size regime) from\n"
            "                     `motscale probe-net --out FILE`\n"
            "  --alpha S          point-to-point latency in seconds (instead of --net)\n"
            "  --beta S           seconds per byte (instead of --net)\n"
            "  --gemm-rate F      every GEMM at F FLOP/s (default: each shape timed here)\n"
            "  --gemm-shared F    at P >= 2 ranks GEMMs take F times as long (ranks sharing a\n"
            "                     node's cache and memory); default: [node] gemm_shared of\n"
            "                     the --net file, else 1\n"
            "  --peak F           per-rank peak FLOP/s for MFU (default log.peak_flops, else\n"
            "                     the one-thread SGEMM probe)\n"
            "  --batch fixed|per-rank  fixed: train.global_batch at every P (default);\n"
            "                     per-rank: each DP rank keeps train.global_batch / parallel.dp\n"
            "                     sequences (dp 0 counts as 1), the global batch grows with dp\n"
            "  --overlap X        share of the DP reduction that may hide under backward, 0..1\n"
            "                     (default 0: Open MPI progresses it only inside MPI calls)\n"
            "  --cores C          the ranks share C cores: above C ranks, compute and the rest\n"
            "                     take P / C times as long (time-sliced; default: a core each)\n"
            "  --plot FILE.png    the figure (gnuplot): step time split by P\n"
            "  --table FILE       the table as whitespace-separated columns\n\n"
            "Exit status: 0 done, 2 bad arguments or configuration.\n");
}

typedef struct opts {
    int ranks[PROJECT_MAX_POINTS], n_ranks;
    cost_net_t net;
    bool have_net;
    double gemm_rate, peak, overlap;
    double gemm_shared;         /* GEMM slow-down of ranks sharing a node ([node] or --gemm-shared); 0: none */
    int cores;
    bool per_rank;
    const char *plot, *table;
} opts_t;

/* [net] of a probe-net file: regimes = K, upto, alpha, beta = K comma-separated
 * numbers; [node] gemm_shared = F (>= 1 where measured; absent in older files) */
static int net_key(void *user, const char *section, const char *name, const char *value)
{
    opts_t *o = user;
    cost_net_t *n = &o->net;
    if (!strcmp(section, "node") && !strcmp(name, "gemm_shared")) {
        char *end;
        o->gemm_shared = strtod(value, &end);
        return end != value && !*end && o->gemm_shared > 0 && isfinite(o->gemm_shared);
    }
    double *dst = !strcmp(name, "upto") ? n->upto : !strcmp(name, "alpha") ? n->alpha
                : !strcmp(name, "beta") ? n->beta : NULL;
    if (strcmp(section, "net"))
        return 1;
    if (!strcmp(name, "regimes")) {
        n->n = atoi(value);
        return n->n >= 1 && n->n <= COST_REGIMES;
    }
    if (!dst)
        return 1;
    const char *p = value;
    for (int k = 0; k < COST_REGIMES && *p; k++) {
        char *end;
        dst[k] = strtod(p, &end);
        if (end == p)
            return 0;
        p = *end == ',' ? end + 1 : end;
    }
    return 1;
}

static bool parse_pos(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && *v > 0 && isfinite(*v);
}

/* The options; the rest of argv (CONFIG and overrides) gathered into rest. */
static bool parse(int argc, char **argv, opts_t *o, char **rest, int *n_rest)
{
    memset(o, 0, sizeof *o);
    double a = -1, b = -1;
    *n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(k, "--ranks") && v) {
            char *s = xmalloc(strlen(v) + 1), *save = NULL;
            strcpy(s, v);
            for (char *t = strtok_r(s, ",", &save); t && ok; t = strtok_r(NULL, ",", &save)) {
                double x;
                ok = o->n_ranks < PROJECT_MAX_POINTS && parse_pos(t, &x) && x == floor(x) && x <= 1 << 24;
                if (ok)
                    o->ranks[o->n_ranks++] = (int)x;
            }
            free(s);
        } else if (!strcmp(k, "--net") && v) {
            memset(&o->net, 0, sizeof o->net);
            double given = o->gemm_shared;
            ok = ini_parse(v, net_key, o) == 0 && o->net.n >= 1;
            if (given > 0) /* --gemm-shared before --net wins */
                o->gemm_shared = given;
            for (int k = 0; ok && k < o->net.n; k++)
                ok = o->net.alpha[k] >= 0 && o->net.beta[k] > 0;
            o->have_net = ok;
        } else if (!strcmp(k, "--alpha") && v) {
            ok = parse_pos(v, &a);
        } else if (!strcmp(k, "--beta") && v) {
            ok = parse_pos(v, &b);
        } else if (!strcmp(k, "--gemm-shared") && v) {
            ok = parse_pos(v, &o->gemm_shared);
        } else if (!strcmp(k, "--gemm-rate") && v) {
            ok = parse_pos(v, &o->gemm_rate);
        } else if (!strcmp(k, "--peak") && v) {
            ok = parse_pos(v, &o->peak);
        } else if (!strcmp(k, "--overlap") && v) {
            o->overlap = strtod(v, NULL);
            ok = o->overlap >= 0 && o->overlap <= 1;
        } else if (!strcmp(k, "--batch") && v) {
            ok = !strcmp(v, "fixed") || !strcmp(v, "per-rank");
            o->per_rank = !strcmp(v, "per-rank");
        } else if (!strcmp(k, "--cores") && v) {
            o->cores = atoi(v);
            ok = o->cores >= 1;
        } else if (!strcmp(k, "--plot") && v) {
            o->plot = v;
        } else if (!strcmp(k, "--table") && v) {
            o->table = v;
        } else if (k[0] == '-') {
            fprintf(stderr, "motscale project: unknown option %s (see --help)\n", k);
            return false;
        } else {
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        if (!ok) {
            fprintf(stderr, "motscale project: %s: bad value '%s'\n", k, v ? v : "");
            return false;
        }
        i++;
    }
    if (a > 0 && b > 0 && !o->have_net) {
        o->net = (cost_net_t){.n = 1, .upto = {INFINITY}, .alpha = {a}, .beta = {b}};
        o->have_net = true;
    }
    if (!o->n_ranks || !o->have_net || *n_rest < 1) {
        fprintf(stderr, "motscale project: needs CONFIG, --ranks and --net (or --alpha and --beta); see --help\n");
        return false;
    }
    return true;
}

typedef struct point {
    int ranks, tp, dp, batch;
    bool ok;
    cost_step_t c;
    double ratio, mfu;
} point_t;

/* The same width as MoT (one tower per modality) or dense (one tower). */
static model_shape_t with_towers(const model_shape_t *s, bool mot)
{
    model_shape_t t = *s;
    t.kind = mot ? MODEL_MOT : MODEL_DENSE;
    t.n_towers = mot ? s->n_modalities : 1;
    for (int m = 0; m < s->n_modalities; m++)
        t.tower_of[m] = mot ? m : 0;
    return t;
}

static void shares_of(const model_shape_t *s, const data_params_t *d, double *share)
{
    for (int t = 0; t < MAX_MODALITIES; t++)
        share[t] = 0;
    for (int m = 0; m < s->n_modalities; m++)
        share[s->tower_of[m]] += d->mix_share[m];
}

/* What the machine adds at P ranks: sharing a node, each rank's GEMMs take
 * gemm_shared times as long (P >= 2); then P ranks time-sliced on C cores run their
 * compute and the rest at C / P of a core (P > C). */
static void on_machine(cost_step_t *c, const opts_t *o, int ranks)
{
    if (o->gemm_shared > 0 && ranks > 1) {
        c->step_s += (o->gemm_shared - 1) * c->gemm_s;
        c->gemm_s *= o->gemm_shared;
    }
    if (o->cores && ranks > o->cores) {
        double share = (double)ranks / o->cores;
        c->step_s += (share - 1) * (c->gemm_s + c->elem_s);
        c->gemm_s *= share;
        c->elem_s *= share;
    }
}

static bool project_point(point_t *p, const config_t *cfg, int32_t V, const opts_t *o, const cost_rates_t *r,
                          double peak, char *err, size_t errlen)
{
    int cfg_dp = cfg->dp > 0 ? cfg->dp : 1;
    p->tp = cfg->tp;
    p->dp = p->ranks / cfg->tp;
    if (p->ranks % cfg->tp || p->dp < 1) {
        p->ok = false;
        return true;
    }
    p->batch = o->per_rank ? p->dp * (cfg->global_batch / cfg_dp) : cfg->global_batch;
    int per = p->batch / p->dp, micro = cfg->micro_batch > 0 ? cfg->micro_batch : per;
    p->ok = p->ranks % cfg->tp == 0 && p->batch % p->dp == 0 && per > 0 && micro > 0 && per % micro == 0;
    if (!p->ok)
        return true;
    cost_layout_t l = {.tp = p->tp, .dp = p->dp, .zero = cfg->zero, .micro_batch = micro,
                       .n_micro = per / micro, .bucket_mb = cfg->bucket_mb, .overlap = o->overlap};
    double share[MAX_MODALITIES];
    shares_of(&cfg->model, &cfg->data, share);
    if (!cost_project(&p->c, &cfg->model, V, share, &l, r, &o->net, err, errlen))
        return false;
    on_machine(&p->c, o, p->ranks);
    bool mot = cfg->model.n_towers > 1;
    model_shape_t other = with_towers(&cfg->model, !mot);
    shares_of(&other, &cfg->data, share);
    cost_step_t c2;
    if (!cost_project(&c2, &other, V, share, &l, r, &o->net, err, errlen))
        return false;
    on_machine(&c2, o, p->ranks);
    p->ratio = mot ? p->c.step_s / c2.step_s : c2.step_s / p->c.step_s;
    p->mfu = p->c.model_flops / (p->ranks * peak * p->c.step_s);
    return true;
}

static void print_table(FILE *f, const point_t *pts, int n, bool plain)
{
    fprintf(f, plain ? "# ranks tp dp batch compute_s comm_s rest_s step_s mfu mem_mib mot_dense\n"
                     : "%6s %4s %6s %7s %11s %11s %11s %11s %7s %10s %9s  %s\n",
            "ranks", "tp", "dp", "batch", "compute_s", "exp_comm_s", "rest_s", "step_s", "MFU%", "MiB/rank",
            "MoT/dense", "collectives (tp, dp)");
    for (int i = 0; i < n; i++) {
        const point_t *p = &pts[i];
        if (!p->ok) {
            if (!plain)
                fprintf(f, "%6d  (no layout: ranks, tp and the batch do not divide)\n", p->ranks);
            continue;
        }
        const cost_step_t *c = &p->c;
        double comm = c->tp_s + c->dp_exposed_s + c->gather_s + c->small_s;
        fprintf(f, plain ? "%d %d %d %d %.6g %.6g %.6g %.6g %.4g %.6g %.4g\n"
                         : "%6d %4d %6d %7d %11.5f %11.5f %11.5f %11.5f %7.1f %10.1f %9.3f  %s, %s\n",
                p->ranks, p->tp, p->dp, p->batch, c->gemm_s, comm, c->elem_s, c->step_s, 100 * p->mfu,
                c->memory / 1048576.0, p->ratio, c->tp_algo, c->dp_algo);
    }
}

static bool plot(const char *png, const point_t *pts, int n, const char *title)
{
    char dat[4200];
    snprintf(dat, sizeof dat, "%s.dat", png);
    FILE *f = fopen(dat, "w");
    if (!f)
        return false;
    print_table(f, pts, n, true);
    fclose(f);
    FILE *g = popen("gnuplot", "w");
    if (!g)
        return false;
    fprintf(g, "set terminal pngcairo size 900,560\nset output '%s'\nset logscale x 2\nset logscale y\n"
               "set xlabel 'ranks'\nset ylabel 'seconds per step'\nset key top left\nset grid\n"
               "set title \"%s\" noenhanced\n"
               "plot '%s' u 1:8 w lp lw 2 t 'step', '' u 1:5 w lp t 'compute (GEMM)', "
               "'' u 1:6 w lp t 'exposed communication', '' u 1:7 w lp t 'rest (elementwise, AdamW)'\n",
            png, title, dat);
    return pclose(g) == 0;
}

int cmd_project(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    opts_t o;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int n_rest;
    config_t cfg;
    vocab_t v;
    char err[2048];
    if (!parse(argc, argv, &o, rest, &n_rest)) {
        free(rest);
        return EXIT_BADINPUT;
    }
    bool ok = config_load(&cfg, rest[0], n_rest - 1, rest + 1, err, sizeof err) &&
              data_vocab(&v, &cfg.data, err, sizeof err);
    free(rest);
    if (!ok) {
        fprintf(stderr, "motscale project: %s\n", err);
        return EXIT_BADINPUT;
    }
    cost_rates_t r = {.gemm_flops = o.gemm_rate};
    cost_probe_rates(&r);
    double peak = o.peak > 0 ? o.peak : cfg.peak_flops > 0 ? cfg.peak_flops : peak_sgemm_probe(3, NULL);
    point_t pts[PROJECT_MAX_POINTS];
    for (int i = 0; i < o.n_ranks; i++) {
        pts[i] = (point_t){.ranks = o.ranks[i]};
        if (!project_point(&pts[i], &cfg, v.size, &o, &r, peak, err, sizeof err)) {
            fprintf(stderr, "motscale project: %s: %s\n", argv[0], err);
            return EXIT_BADINPUT;
        }
    }
    printf("project: %s, %s, d_model %d, n_layers %d, d_ff %d, seq_len %d, vocab %d; zero %d, bucket %.3g MiB\n",
           argv[0], config_enum_name("model", "kind", cfg.model.kind), cfg.model.d_model, cfg.model.n_layers,
           cfg.model.d_ff, cfg.model.seq_len, v.size, cfg.zero, cfg.bucket_mb);
    printf("net:");
    for (int k = 0; k < o.net.n; k++)
        printf(" [up to %.4g bytes: alpha %.3g s, beta %.3g s/byte]", k == o.net.n - 1 ? INFINITY : o.net.upto[k],
               o.net.alpha[k], o.net.beta[k]);
    printf("\nGEMM %s (x%.3g at 2 ranks and more: shared node); stream %.3g GB/s (48 MiB: %.3g GB/s), softmax %.3g Gelem/s, cross-entropy %.3g Gelem/s; peak %.4g GFLOP/s; "
           "overlap %.2f\n\n",
           o.gemm_rate > 0 ? "at --gemm-rate" : "timed per shape", o.gemm_shared > 0 ? o.gemm_shared : 1,
           r.stream_bytes / 1e9, r.stream_big / 1e9,
           r.softmax_elems / 1e9, r.xent_elems / 1e9, peak / 1e9, o.overlap);
    print_table(stdout, pts, o.n_ranks, false);
    if (o.table) {
        FILE *f = fopen(o.table, "w");
        if (!f) {
            fprintf(stderr, "motscale project: %s: cannot write\n", o.table);
            return EXIT_BADINPUT;
        }
        print_table(f, pts, o.n_ranks, true);
        fclose(f);
    }
    if (o.plot && !plot(o.plot, pts, o.n_ranks, argv[0])) {
        fprintf(stderr, "motscale project: %s: gnuplot failed\n", o.plot);
        return EXIT_FAULT;
    }
    return EXIT_OK;
}
