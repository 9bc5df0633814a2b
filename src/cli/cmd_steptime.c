/* `motscale steptime A.ini B.ini`: a paired step-time measurement. Short training
 * bursts of the two configurations alternate (A B, B A, A B, ...) as child processes
 * of this one (its own binary, /proc/self/exe, under the MPI launcher), each a fresh
 * run directory under a scratch folder; step times are read back from the run
 * records, and the ratio of B's to A's is the median of the per-pair ratios with its
 * sign-test interval (analysis/steptime.c; method: docs/analysis.md). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "motscale/analysis.h"
#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"

extern char **environ;

#define STEPTIME_PAIRS 8
#define STEPTIME_STEPS 30
#define STEPTIME_SKIP 5

static void usage(FILE *out)
{
    fprintf(out,
            "usage: motscale steptime A.ini B.ini [options] [section.key=value ...]\n\n"
            "Measures B's step time relative to A's on this machine, paired: short training\n"
            "bursts of A and B alternate (A B, B A, ...) in one process tree, so both see the\n"
            "same load; each burst's step time is the median over its steps after the first\n"
            "--skip, and the ratio is the median of the per-pair ratios B/A with a sign-test\n"
            "interval of >= 95%% (6 pairs or more). Overrides apply to both configurations.\n"
            "compare --steptime FILE then states the wall-clock fraction as FLOPs slope x this\n"
            "ratio (docs/analysis.md).\n\n"
            "  --pairs N      burst pairs (default %d)\n"
            "  --steps S      training steps per burst (default %d)\n"
            "  --skip K       first steps of a burst left out (start-up; default %d)\n"
            "  --np P         ranks per burst (default: dp x tp when the configuration fixes dp,\n"
            "                 else $MOTSCALE_NP, else 2); launched with $MOTSCALE_MPIRUN\n"
            "                 (default \"mpirun --oversubscribe\"), or directly for 1 rank\n"
            "  --scratch DIR  where the bursts' run directories go (default a new folder under\n"
            "                 $TMPDIR, removed at the end)\n"
            "  --json         the result as JSON on stdout\n"
            "  --out FILE     also write the result as INI for compare --steptime\n\n"
            "Exit status: 0 done, 1 a burst failed, 2 bad arguments or configuration.\n",
            STEPTIME_PAIRS, STEPTIME_STEPS, STEPTIME_SKIP);
}

static bool parse_count(const char *s, size_t *v)
{
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (end == s || *end || s[0] == '-' || x > 1000000)
        return false;
    *v = (size_t)x;
    return true;
}

typedef struct side {
    const char *file;
    char label[96], size[32];
    int ranks;
} side_t;

static bool load_side(side_t *s, const char *file, int n_over, char **over, int np)
{
    config_t cfg;
    char err[2048];
    s->file = file;
    if (!config_load(&cfg, file, n_over, over, err, sizeof err)) {
        fprintf(stderr, "motscale steptime: %s\n", err);
        return false;
    }
    char experts[16];
    snprintf(experts, sizeof experts, "%d", cfg.model.moe_experts);
    analysis_label_of(s->label, sizeof s->label, config_enum_name("model", "kind", cfg.model.kind),
                      cfg.towers, cfg.moe_towers, experts);
    if (cfg.size[0])
        snprintf(s->size, sizeof s->size, "%s", cfg.size);
    else
        snprintf(s->size, sizeof s->size, "d%dx%d", cfg.model.d_model, cfg.model.n_layers);
    const char *env = getenv("MOTSCALE_NP");
    s->ranks = np > 0 ? np : cfg.dp > 0 ? cfg.dp * cfg.tp : env && atoi(env) > 0 ? atoi(env) : 2;
    return true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* One burst: train `s` for `steps` steps into scratch/name; its median step time after
 * `skip` and median load average. Returns the child's exit status (-1: not started). */
static int burst(const side_t *s, const char *scratch, const char *name, size_t steps,
                 size_t skip, int n_over, char **over, double *med, double *load)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return -1;
    exe[len] = '\0';
    char a_dir[4200], a_name[256], a_steps[64], logp[4400];
    snprintf(a_dir, sizeof a_dir, "run.out_dir=%s", scratch);
    snprintf(a_name, sizeof a_name, "run.name=%s", name);
    snprintf(a_steps, sizeof a_steps, "train.steps=%zu", steps);
    snprintf(logp, sizeof logp, "%s/%s.log", scratch, name);
    /* the launcher, then this binary's train verb; the burst's own keys last */
    char launcher[1024], np[16];
    snprintf(launcher, sizeof launcher, "%s",
             getenv("MOTSCALE_MPIRUN") ? getenv("MOTSCALE_MPIRUN") : "mpirun --oversubscribe");
    snprintf(np, sizeof np, "%d", s->ranks);
    char **argv = xcalloc((size_t)n_over + 64, sizeof *argv);
    int ac = 0;
    if (s->ranks > 1) {
        for (char *save = NULL, *t = strtok_r(launcher, " \t", &save); t && ac < 40;
             t = strtok_r(NULL, " \t", &save))
            argv[ac++] = t;
        argv[ac++] = "-np";
        argv[ac++] = np;
    }
    argv[ac++] = exe;
    argv[ac++] = "train";
    argv[ac++] = (char *)s->file;
    for (int i = 0; i < n_over; i++)
        argv[ac++] = over[i];
    char *fixed[] = {a_dir, a_name, a_steps, "log.every=1", "log.eval_every=0", "log.quiet=true",
                     "train.checkpoint_every=0", "train.resume=no", "train.stop_at_loss_of="};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[ac++] = fixed[i];
    argv[ac] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    if (rc != 0) {
        fprintf(stderr, "motscale steptime: cannot start %s: %s\n", s->ranks > 1 ? launcher : exe,
                strerror(rc));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (status != 0) {
        fprintf(stderr, "motscale steptime: burst %s of %s exited with %d; its output (%s):\n",
                name, s->file, status, logp);
        FILE *f = fopen(logp, "r");
        char line[512];
        for (int n = 0; f && fgets(line, sizeof line, f) && n < 20; n++)
            fprintf(stderr, "  %s", line);
        if (f)
            fclose(f);
        return status;
    }
    char rp[4400], err[1024];
    snprintf(rp, sizeof rp, "%s/%s/run.h5", scratch, name);
    runrec_t r;
    if (!runrec_load(rp, &r, err, sizeof err)) {
        fprintf(stderr, "motscale steptime: %s\n", err);
        return EXIT_FAULT;
    }
    double *t = xmalloc((r.n + 1) * sizeof *t);
    size_t k = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.step[i] > (int64_t)skip)
            t[k++] = r.step_time[i];
    *med = analysis_median(t, k);
    *load = r.load_avg ? analysis_median(r.load_avg, r.n) : NAN;
    free(t);
    runrec_free(&r);
    snprintf(rp, sizeof rp, "%s/%s", scratch, name);
    nftw(rp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    remove(logp);
    return isfinite(*med) ? 0 : EXIT_FAULT;
}

int cmd_steptime(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    size_t pairs = STEPTIME_PAIRS, steps = STEPTIME_STEPS, skip = STEPTIME_SKIP, npv = 0;
    const char *files[2] = {NULL, NULL}, *scratch_opt = NULL, *out = NULL;
    bool json = false;
    char **over = xcalloc((size_t)argc + 1, sizeof *over);
    int n_over = 0, nf = 0, status = EXIT_BADINPUT;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t *count = !strcmp(a, "--pairs") ? &pairs : !strcmp(a, "--steps") ? &steps
                      : !strcmp(a, "--skip")  ? &skip
                      : !strcmp(a, "--np")    ? &npv
                                              : NULL;
        if (count) {
            if (!v || !parse_count(v, count)) {
                fprintf(stderr, "motscale steptime: %s takes a whole number, not '%s'\n", a,
                        v ? v : "");
                goto done;
            }
            i++;
        } else if (!strcmp(a, "--scratch") && v) {
            scratch_opt = argv[++i];
        } else if (!strcmp(a, "--out") && v) {
            out = argv[++i];
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "motscale steptime: unknown or incomplete option '%s' (see --help)\n", a);
            goto done;
        } else if (strchr(a, '=')) {
            over[n_over++] = argv[i];
        } else if (nf < 2) {
            files[nf++] = a;
        } else {
            fprintf(stderr, "motscale steptime: two configurations, not '%s' as well\n", a);
            goto done;
        }
    }
    if (nf != 2 || pairs < 1 || steps < skip + 3) {
        fprintf(stderr, "motscale steptime: give A.ini and B.ini, --pairs >= 1 and --steps >= "
                        "--skip + 3 (see --help)\n");
        goto done;
    }
    side_t side[2];
    for (int k = 0; k < 2; k++)
        if (!load_side(&side[k], files[k], n_over, over, (int)npv))
            goto done;
    char scratch[4096];
    bool made = !scratch_opt;
    if (scratch_opt) {
        snprintf(scratch, sizeof scratch, "%s", scratch_opt);
        if (mkdir(scratch, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "motscale steptime: cannot create %s: %s\n", scratch, strerror(errno));
            goto done;
        }
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/motscale-steptime.XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(scratch)) {
            fprintf(stderr, "motscale steptime: cannot create %s: %s\n", scratch, strerror(errno));
            goto done;
        }
    }
    double *med[2] = {xmalloc(pairs * sizeof(double)), xmalloc(pairs * sizeof(double))};
    double *load = xmalloc(2 * pairs * sizeof *load);
    status = EXIT_OK;
    if (!json)
        printf("steptime: A = %s (%s, %s), B = %s (%s, %s); %zu burst pairs of %zu steps (the "
               "first %zu left out), alternating A B / B A\n",
               files[0], side[0].label, side[0].size, files[1], side[1].label, side[1].size, pairs,
               steps, skip);
    for (size_t p = 0; p < pairs && status == EXIT_OK; p++) {
        for (int j = 0; j < 2 && status == EXIT_OK; j++) {
            int k = p % 2 ? 1 - j : j; /* A B, then B A */
            char name[64];
            snprintf(name, sizeof name, "%c-%03zu", k ? 'b' : 'a', p);
            int rc = burst(&side[k], scratch, name, steps, skip, n_over, over, &med[k][p],
                           &load[2 * p + (size_t)k]);
            status = rc == 0 ? EXIT_OK : rc == EXIT_BADINPUT ? EXIT_BADINPUT : EXIT_FAULT;
        }
        if (status == EXIT_OK && !json)
            printf("  pair %zu: A %.5f s, B %.5f s a step, ratio %.4f\n", p + 1, med[0][p], med[1][p],
                   med[1][p] / med[0][p]);
    }
    if (status == EXIT_OK) {
        analysis_steptime_t st = {.steps = steps, .skip = skip};
        snprintf(st.a, sizeof st.a, "%s", files[0]);
        snprintf(st.b, sizeof st.b, "%s", files[1]);
        snprintf(st.a_label, sizeof st.a_label, "%s", side[0].label);
        snprintf(st.b_label, sizeof st.b_label, "%s", side[1].label);
        snprintf(st.a_size, sizeof st.a_size, "%s", side[0].size);
        snprintf(st.b_size, sizeof st.b_size, "%s", side[1].size);
        analysis_steptime_ratio(&st, med[0], med[1], pairs);
        st.load = analysis_median(load, 2 * pairs);
        if (json) {
            analysis_steptime_json(stdout, &st);
        } else {
            printf("median step time: A %.5f s, B %.5f s (%d and %d ranks; median load average "
                   "%.2f)\nratio B/A: %.4f [%.4f, %.4f] (%s)\n",
                   st.med_a, st.med_b, side[0].ranks, side[1].ranks, st.load, st.ratio.value,
                   st.ratio.lo, st.ratio.hi, st.ratio.method);
        }
        if (out) {
            FILE *f = fopen(out, "w");
            if (f)
                analysis_steptime_write(f, &st);
            if (!f || fclose(f) != 0) {
                fprintf(stderr, "motscale steptime: cannot write %s: %s\n", out, strerror(errno));
                status = EXIT_FAULT;
            }
        }
    }
    if (made)
        nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(med[0]);
    free(med[1]);
    free(load);
done:
    free(over);
    return status;
}
