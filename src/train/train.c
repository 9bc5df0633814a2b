/* The training loop. Per step: each DP rank runs its micro-batches (windows
 * step*global_batch + dp_rank*(global_batch/dp) + micro*micro_batch ...), gradients
 * are all-reduced in buckets overlapped with the last backward, clipped by the
 * global norm and applied with AdamW. Rank 0 logs; all ranks checkpoint. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "motscale/checkpoint.h"
#include "motscale/data.h"
#include "motscale/dp.h"
#include "motscale/flops.h"
#include "motscale/gemm.h"
#include "motscale/model.h"
#include "motscale/optim.h"
#include "motscale/provenance.h"
#include "motscale/runlog.h"
#include "motscale/runread.h"
#include "motscale/smooth.h"
#include "motscale/train.h"

/* room for out_dir/name/ plus a file name */
enum { DIRBUF = 2 * CFG_PATH_LEN + 2, PATHBUF = DIRBUF + 64 };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (isatty(STDIN_FILENO))
        sigaction(SIGINT, &sa, NULL);
}

/* ---- the run directory -------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char buf[PATHBUF];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static void read_status(const char *dir, char *out, size_t len)
{
    char path[PATHBUF];
    snprintf(path, sizeof path, "%s/status", dir);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = 0;
    fclose(f);
}

/* Write the status file atomically (temporary name, then rename). */
static void write_status(const char *dir, const char *status)
{
    char path[PATHBUF], tmp[PATHBUF];
    snprintf(path, sizeof path, "%s/status", dir);
    snprintf(tmp, sizeof tmp, "%s/.status.tmp", dir);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", status) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        warnf("cannot write %s: %s", path, strerror(errno));
}

static bool write_text(const char *path, const char *text)
{
    char tmp[PATHBUF + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok && rename(tmp, path) == 0;
}

/* Agree on a status over the world: the worst (largest) code wins. */
static int agree_max(const mesh_t *mesh, int v)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, mesh->world));
    return v;
}

/* ---- progress line ------------------------------------------------------------- */

static void format_duration(char *out, size_t len, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(out, len, "?");
    else if (s < 60)
        snprintf(out, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* ---- evaluation ------------------------------------------------------------------ */

/* Held-out loss over the first ceil(eval_tokens / seq_len) windows of the held-out
 * split, windows dealt round-robin over DP ranks. Sums by modality into ls / cnt
 * (reduced over DP). */
static void evaluate(model_t *m, data_t *held, const config_t *cfg, const mesh_t *mesh,
                     int32_t *windows, double *ls, int64_t *cnt)
{
    int64_t n_win = (cfg->eval_tokens + cfg->seq_len - 1) / cfg->seq_len;
    int M = cfg->n_modalities;
    for (int k = 0; k < M; k++) {
        ls[k] = 0;
        cnt[k] = 0;
    }
    int64_t per = (n_win + mesh->dp - 1) / mesh->dp;
    int64_t first = per * mesh->dp_rank, last = first + per < n_win ? first + per : n_win;
    for (int64_t w = first; w < last; w += cfg->micro_batch) {
        int b = (int)(last - w < cfg->micro_batch ? last - w : cfg->micro_batch);
        data_read(held, w, b, windows);
        model_forward(m, windows, b, 0, ls, cnt);
    }
    if (mesh->dp > 1) {
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ls, M, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, cnt, M, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
    }
}

/* ---- the loop ---------------------------------------------------------------------- */

int train_run(config_t *cfg, const mesh_t *mesh)
{
    char err[2048];
    int M = cfg->n_modalities;
    bool root = mesh->world_rank == 0;

    /* data and model (bad input is found before anything is written) */
    vocab_t vocab;
    int bad = 0;
    if (!vocab_from_config(&vocab, cfg, err, sizeof err))
        bad = 1;
    data_t *train = NULL, *held = NULL;
    if (!bad && !(train = data_open(cfg, &vocab, SPLIT_TRAIN, err, sizeof err)))
        bad = 1;
    if (!bad && cfg->eval_every > 0 && !(held = data_open(cfg, &vocab, SPLIT_HELDOUT, err, sizeof err)))
        bad = 1;
    double base_final[MAX_MODALITIES];
    bool stop_at = cfg->stop_at_loss_of[0] != 0;
    if (!bad && stop_at) {
        int bn = 0;
        char bnames[RUNREC_MAX_MOD][RUNREC_NAME_LEN];
        double by[RUNREC_MAX_MOD], overall;
        if (!runrec_final_losses(cfg->stop_at_loss_of, &bn, bnames, by, &overall, err, sizeof err)) {
            bad = 1;
        } else if (bn != M) {
            snprintf(err, sizeof err, "train.stop_at_loss_of: %s has %d modalities, this run %d",
                     cfg->stop_at_loss_of, bn, M);
            bad = 1;
        } else {
            for (int k = 0; k < M; k++)
                base_final[k] = by[k];
        }
    }
    if (agree_max(mesh, bad)) {
        if (bad)
            fprintf(stderr, "motscale[rank %d]: %s\n", mesh->world_rank, err);
        data_close(train);
        data_close(held);
        return EXIT_BADINPUT;
    }

    flops_report_t fr;
    flops_compute(&fr, cfg, vocab.size);
    tp_ctx_t tp = {.comm = mesh->tp_comm, .rank = mesh->tp_rank, .size = mesh->tp};
    model_t model;
    model_build(&model, cfg, &vocab, tp, cfg->micro_batch);
    model_init_params(&model, cfg->seed, cfg->init_same_towers, cfg->init_std);
    adamw_t opt;
    adamw_init(&opt, model.n_local);
    dp_sync_t dps;
    dp_sync_init(&dps, mesh->dp_comm, mesh->dp, &model, cfg->bucket_mb);
    int64_t T = cfg->seq_len;
    int32_t *windows = xmalloc((size_t)cfg->micro_batch * (size_t)(T + 1) * sizeof *windows);
    uint64_t fingerprint = checkpoint_fingerprint(cfg, &vocab);

    /* run directory: refuse a completed run; resume an unfinished one on request */
    char dir[DIRBUF], ckdir[PATHBUF], runfile[PATHBUF];
    snprintf(dir, sizeof dir, "%s/%s", cfg->out_dir, cfg->name);
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    snprintf(runfile, sizeof runfile, "%s/run.h5", dir);
    char status[64];
    read_status(dir, status, sizeof status);
    bool exists = access(runfile, F_OK) == 0;
    int code = 0;
    if (root) {
        if (!strcmp(status, "completed")) {
            fprintf(stderr, "motscale: %s holds a completed run; choose another run.name or remove it\n", dir);
            code = EXIT_BADINPUT;
        } else if (exists && cfg->resume != RESUME_AUTO) {
            fprintf(stderr, "motscale: %s already holds a run (status '%s'); set train.resume=auto to continue it\n",
                    dir, status[0] ? status : "unknown");
            code = EXIT_BADINPUT;
        } else if (mkdir_p(ckdir) != 0) {
            fprintf(stderr, "motscale: cannot create run directory %s: %s\n", ckdir, strerror(errno));
            code = EXIT_FAULT;
        }
    }
    int exit_code = agree_max(mesh, code);
    char *ini = NULL;
    double *rank_step = NULL, *rank_comm = NULL;
    runlog_t *log = NULL;
    if (exit_code)
        goto done;

    train_progress_t prog = {0};
    if (cfg->resume == RESUME_AUTO) {
        int got = checkpoint_load_latest(ckdir, &model, &opt, &prog, fingerprint, mesh, err, sizeof err);
        if (agree_max(mesh, got < 0)) {
            if (root)
                fprintf(stderr, "motscale: %s\n", err);
            exit_code = EXIT_BADINPUT;
            goto done;
        }
        if (got > 0)
            infof("resuming %s at step %lld\n", dir, (long long)prog.step);
    }

    /* provenance and the run record (rank 0 writes; hostnames is a collective) */
    char *hosts = provenance_hostnames();
    char peak_src[256];
    double peak = peak_flops_per_rank(cfg, cfg->out_dir, peak_src, sizeof peak_src);
    MPI_CHECK(MPI_Bcast(&peak, 1, MPI_DOUBLE, 0, mesh->world));
    ini = config_to_ini(cfg);
    int fail = 0;
    if (root) {
        char cfgpath[PATHBUF], mpiv[4096], blas[512];
        snprintf(cfgpath, sizeof cfgpath, "%s/config.ini", dir);
        if (!write_text(cfgpath, ini)) {
            fprintf(stderr, "motscale: cannot write %s: %s\n", cfgpath, strerror(errno));
            fail = EXIT_FAULT;
        }
        provenance_mpi_library_version(mpiv, sizeof mpiv);
        provenance_blas(blas, sizeof blas);
        runlog_meta_t meta = {
            .config_text = ini, .experiment = cfg->experiment, .run_name = cfg->name,
            .world_size = mesh->world_size, .dp = mesh->dp, .tp = mesh->tp,
            .tp_backend = config_enum_name("parallel", "tp_backend", cfg->tp_backend),
            .hostnames = hosts ? hosts : "", .mpi_library_version = mpiv,
            .blas = blas, .peak_flops_per_rank = peak, .peak_flops_source = peak_src,
            .kind = config_enum_name("model", "kind", cfg->kind), .d_model = cfg->d_model,
            .n_layers = cfg->n_layers, .n_heads = cfg->n_heads, .d_ff = cfg->d_ff,
            .seq_len = cfg->seq_len, .n_towers = cfg->n_towers, .n_modalities = M,
            .params_total = fr.params_total,
            .params_active_per_token = fr.params_active_per_token,
            .flops_per_token = fr.train_per_token, .vocab_size = vocab.size};
        for (int k = 0; k < M; k++) {
            meta.modality_names[k] = cfg->modality_names[k];
            meta.tower_of[k] = cfg->tower_of[k];
        }
        if (!fail) {
            if (exists)
                log = runlog_reopen(runfile, prog.step, mesh->world_size, mesh->dp, mesh->tp, err, sizeof err);
            else
                log = runlog_create(runfile, &meta, err, sizeof err);
            if (!log) {
                fprintf(stderr, "motscale: %s\n", err);
                fail = EXIT_FAULT;
            }
        }
        if (!fail)
            write_status(dir, "running");
    }
    free(hosts);
    exit_code = agree_max(mesh, fail);
    if (exit_code)
        goto done;

    install_signals();
    if (root) {
        rank_step = xcalloc((size_t)mesh->world_size, sizeof(double));
        rank_comm = xcalloc((size_t)mesh->world_size, sizeof(double));
    }
    smooth_ema_t ema[MAX_MODALITIES];
    for (int k = 0; k < M; k++)
        smooth_ema_init(&ema[k], SMOOTH_DEFAULT);
    int n_micro = cfg->global_batch / (mesh->dp * cfg->micro_batch);
    int per_dp = cfg->global_batch / mesh->dp;
    real scale = (real)(1.0 / ((double)cfg->global_batch * (double)T));
    double interval_t0 = now_seconds(), interval_tokens = 0, interval_flops = 0;
    provenance_cpu_t cpu_mark;
    provenance_cpu_sample(&cpu_mark);
    int64_t interval_steps = 0;
    double interval_loss[MAX_MODALITIES + 1] = {0};
    int64_t interval_cnt[MAX_MODALITIES + 1] = {0};
    double last_ckpt_bytes = 0, last_ckpt_s = 0, pending_issued = 0;
    double log_total_s = 0, step_total_s = 0; /* this process's: for the closing line */
    const char *final_status = "completed";

    if (prog.step == 0)
        infof("training %s: %s, %d towers, %lld params (%lld active per token), %d steps, "
              "world %d = dp %d x tp %d, %.3g FLOPs/token\n",
              cfg->name, (const char *[]){"dense", "mot", "towers"}[cfg->kind], cfg->n_towers,
              (long long)fr.params_total, (long long)fr.params_active_per_token, (int)cfg->steps,
              mesh->world_size, mesh->dp, mesh->tp, fr.train_per_token);

    while (prog.step < cfg->steps) {
        int64_t step = prog.step;
        double t0 = now_seconds(), io_s = 0;
        double tp0 = model.tp.comm_s, dp0 = dps.comm_s, gf0 = gemm_flops(GEMM_PROJ) + gemm_flops(GEMM_ATTN) + gemm_flops(GEMM_HEAD);
        double ls[MAX_MODALITIES] = {0};
        int64_t cnt[MAX_MODALITIES] = {0};
        /* gradients are zero here: allocated so, and zeroed by each AdamW step */
        for (int mi = 0; mi < n_micro; mi++) {
            int64_t first = step * cfg->global_batch + (int64_t)mesh->dp_rank * per_dp + (int64_t)mi * cfg->micro_batch;
            double r0 = now_seconds();
            data_read(train, first, cfg->micro_batch, windows);
            io_s += now_seconds() - r0;
            model_forward(&model, windows, cfg->micro_batch, scale, ls, cnt);
            if (mi == n_micro - 1)
                dp_sync_arm(&dps, &model);
            model_backward(&model);
        }
        dp_sync_finish(&dps, &model);
        double c0 = now_seconds();
        if (mesh->dp > 1) {
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ls, M, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, cnt, M, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
        }
        double red_s = now_seconds() - c0;
        double gnorm = grad_global_norm(&model);
        double loss = 0;
        int64_t ntok = 0;
        for (int k = 0; k < M; k++) {
            loss += ls[k];
            ntok += cnt[k];
        }
        loss /= (double)ntok;
        if (!isfinite(loss) || !isfinite(gnorm)) {
            char which[256] = "";
            for (int k = 0; k < M; k++)
                if (cnt[k] && !isfinite(ls[k]))
                    snprintf(which + strlen(which), sizeof which - strlen(which), " %s", cfg->modality_names[k]);
            if (root)
                fprintf(stderr, "motscale[rank %d]: non-finite %s at step %lld (modality:%s); the last good "
                        "checkpoint is kept in %s; lower train.lr or raise train.warmup\n",
                        mesh->world_rank, isfinite(loss) ? "gradient norm" : "loss", (long long)step + 1,
                        which[0] ? which : " all", ckdir);
            final_status = "failed";
            exit_code = EXIT_FAULT;
            break;
        }
        double clip = cfg->grad_clip > 0 && gnorm > cfg->grad_clip ? cfg->grad_clip / gnorm : 1.0;
        double lr = lr_at(cfg, step);
        adamw_step(&opt, &model, step + 1, lr, clip, cfg);

        double step_s = now_seconds() - t0;
        double comm_s = (model.tp.comm_s - tp0) + (dps.comm_s - dp0) + red_s;
        prog.step++;
        prog.tokens += ntok;
        double step_flops = flops_train_step(&fr, cfg, cnt);
        prog.flops += step_flops;
        /* FLOPs issued to BLAS by this rank; summed over the world when logged */
        pending_issued += gemm_flops(GEMM_PROJ) + gemm_flops(GEMM_ATTN) + gemm_flops(GEMM_HEAD) - gf0;
        prog.wall_time += step_s;
        step_total_s += step_s;
        interval_steps++;
        interval_tokens += (double)ntok;
        interval_flops += step_flops;
        for (int k = 0; k < M; k++) {
            interval_loss[k] += ls[k];
            interval_cnt[k] += cnt[k];
        }
        interval_loss[M] += loss;
        interval_cnt[M]++;

        bool last = prog.step == cfg->steps;
        bool log_now = prog.step % cfg->log_every == 0 || last;
        bool eval_now = held && (prog.step % cfg->eval_every == 0 || last);
        bool stop_reached = false;
        /* a signal reaches ranks at different times: act only on the agreed value */
        int sig = agree_max(mesh, stop_signal);
        bool ck_due = (cfg->checkpoint_every > 0 && prog.step % cfg->checkpoint_every == 0) || last;
        if (log_now || ck_due || sig) {
            double sum = pending_issued;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, mesh->world));
            prog.gemm_flops += sum;
            pending_issued = 0;
        }

        if (log_now) {
            double l0 = now_seconds();
            double mine[2] = {step_s, comm_s};
            double *all = root ? xmalloc(2 * (size_t)mesh->world_size * sizeof(double)) : NULL;
            MPI_CHECK(MPI_Gather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, mesh->world));
            double lbm[MAX_MODALITIES];
            for (int k = 0; k < M; k++)
                lbm[k] = cnt[k] ? ls[k] / (double)cnt[k] : NAN;
            if (stop_at) {
                stop_reached = true;
                for (int k = 0; k < M; k++) {
                    double sm = smooth_ema_update(&ema[k], prog.step, lbm[k]);
                    if (isfinite(base_final[k]) && !(sm <= base_final[k]))
                        stop_reached = false;
                }
            }
            if (root) {
                for (int r = 0; r < mesh->world_size; r++) {
                    rank_step[r] = all[2 * r];
                    rank_comm[r] = all[2 * r + 1];
                }
                /* the step takes as long as its slowest rank; rank 0's split of it */
                double smax_all = step_s;
                for (int r = 0; r < mesh->world_size; r++)
                    smax_all = rank_step[r] > smax_all ? rank_step[r] : smax_all;
                provenance_cpu_t cpu_now;
                provenance_cpu_sample(&cpu_now);
                runlog_row_t row = {
                    .load_avg = provenance_load_average(),
                    .cpu_steal = provenance_cpu_steal(&cpu_mark, &cpu_now),
                    .step = prog.step, .tokens = prog.tokens, .flops = prog.flops,
                    .wall_time = prog.wall_time, .loss = loss, .lr = lr, .grad_norm = gnorm,
                    .step_time = smax_all, .compute_time = step_s - comm_s - io_s,
                    .comm_time = comm_s, .io_time = io_s, .gemm_flops = prog.gemm_flops,
                    .loss_by_modality = lbm, .tokens_by_modality = cnt,
                    .rank_step_time = rank_step, .rank_comm_time = rank_comm};
                cpu_mark = cpu_now;
                if (!runlog_append(log, &row))
                    fail = EXIT_FAULT;
                if (prog.step % cfg->flush_every < cfg->log_every || last)
                    if (!runlog_flush(log))
                        fail = EXIT_FAULT;
                double dt = now_seconds() - interval_t0;
                double tps = interval_tokens / dt;
                double mfu = peak > 0 ? interval_flops / dt / (peak * mesh->world_size) : NAN;
                char eta[32], line[1024];
                format_duration(eta, sizeof eta, dt / (double)interval_steps * (double)(cfg->steps - prog.step));
                int n = snprintf(line, sizeof line, "step %*lld/%lld | loss %.4f |",
                                 (int)snprintf(NULL, 0, "%lld", (long long)cfg->steps),
                                 (long long)prog.step, (long long)cfg->steps, interval_loss[M] / (double)interval_cnt[M]);
                for (int k = 0; k < M && n < (int)sizeof line; k++)
                    n += snprintf(line + n, sizeof line - (size_t)n, " %s %.4f", cfg->modality_names[k],
                                  interval_cnt[k] ? interval_loss[k] / (double)interval_cnt[k] : NAN);
                /* this step over ranks: step time min-max, communication mean and max */
                double smin = all[0], smax = all[0], cmax = all[1], csum = 0;
                for (int r = 0; r < mesh->world_size; r++) {
                    smin = all[2 * r] < smin ? all[2 * r] : smin;
                    smax = all[2 * r] > smax ? all[2 * r] : smax;
                    cmax = all[2 * r + 1] > cmax ? all[2 * r + 1] : cmax;
                    csum += all[2 * r + 1];
                }
                if (n < (int)sizeof line && mesh->world_size > 1)
                    n += snprintf(line + n, sizeof line - (size_t)n, " | comm %.1f/%.1f ms (mean/max)",
                                  1e3 * csum / mesh->world_size, 1e3 * cmax);
                if (n < (int)sizeof line)
                    snprintf(line + n, sizeof line - (size_t)n,
                             " | %.0f tok/s | MFU %.1f%% | step %.0f-%.0f ms | ETA %s\n", tps, 100 * mfu,
                             1e3 * smin, 1e3 * smax, eta);
                if (!cfg->quiet)
                    infof("%s", line);
            }
            free(all);
            interval_t0 = now_seconds();
            interval_tokens = interval_flops = 0;
            interval_steps = 0;
            for (int k = 0; k <= M; k++) {
                interval_loss[k] = 0;
                interval_cnt[k] = 0;
            }
            double log_s = now_seconds() - l0;
            prog.wall_time += log_s; /* logging is part of the run's wall-clock */
            log_total_s += log_s;
        }
        if (eval_now) {
            double e0 = now_seconds();
            double els[MAX_MODALITIES];
            int64_t ecnt[MAX_MODALITIES];
            evaluate(&model, held, cfg, mesh, windows, els, ecnt);
            if (root) {
                double tot = 0, lbm[MAX_MODALITIES];
                int64_t n = 0;
                for (int k = 0; k < M; k++) {
                    tot += els[k];
                    n += ecnt[k];
                    lbm[k] = ecnt[k] ? els[k] / (double)ecnt[k] : NAN;
                }
                runlog_eval_t ev = {.eval_step = prog.step, .eval_flops = prog.flops,
                                    .eval_wall_time = prog.wall_time, .eval_loss = tot / (double)n,
                                    .eval_loss_by_modality = lbm};
                if (!runlog_append_eval(log, &ev))
                    fail = EXIT_FAULT;
                if (!cfg->quiet) {
                    char line[512];
                    int w = snprintf(line, sizeof line, "eval %lld | held-out loss %.4f |", (long long)prog.step, tot / (double)n);
                    for (int k = 0; k < M && w < (int)sizeof line; k++)
                        w += snprintf(line + w, sizeof line - (size_t)w, " %s %.4f", cfg->modality_names[k], lbm[k]);
                    infof("%s\n", line);
                }
            }
            prog.wall_time += now_seconds() - e0;
        }
        /* one agreement for both: a rank-0 logging failure, the equal-loss stop */
        int agreed[2] = {fail, stop_reached};
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, agreed, 2, MPI_INT, MPI_MAX, mesh->world));
        if (agreed[0]) {
            final_status = "failed";
            exit_code = EXIT_FAULT;
            break;
        }
        stop_reached = agreed[1];
        bool ck = ck_due || sig || stop_reached;
        if (ck) {
            /* rows up to the checkpoint must be durable before it is */
            if (root && !runlog_flush(log))
                warnf("cannot flush %s before the checkpoint", runfile);
            if (!checkpoint_write(ckdir, &model, &opt, &prog, fingerprint, mesh, cfg->keep_checkpoints,
                                  &last_ckpt_s, &last_ckpt_bytes, err, sizeof err)) {
                if (root)
                    fprintf(stderr, "motscale: checkpoint at step %lld in %s failed: %s\n", (long long)prog.step,
                            ckdir, err);
                final_status = "failed";
                exit_code = EXIT_FAULT;
                break;
            }
            if (!cfg->quiet)
                infof("checkpoint %lld: %.2f MB in %.3f s (%.1f MB/s)\n", (long long)prog.step,
                      last_ckpt_bytes / 1e6, last_ckpt_s, last_ckpt_bytes / 1e6 / last_ckpt_s);
        }
        if (stop_reached) {
            if (root) {
                runlog_set_attr_double(log, "stopped_at_step", (double)prog.step);
                runlog_set_attr_double(log, "stopped_at_flops", prog.flops);
                runlog_set_attr_double(log, "stopped_at_wall_time", prog.wall_time);
                runlog_set_attr_string(log, "stopped_at_loss_of", cfg->stop_at_loss_of);
            }
            infof("reached the final loss of %s at step %lld; stopping\n", cfg->stop_at_loss_of, (long long)prog.step);
            break;
        }
        if (sig && !last) {
            infof("signal %d: checkpointed at step %lld; exiting with status %d for requeue\n", sig,
                  (long long)prog.step, EXIT_PREEMPTED);
            final_status = "preempted";
            exit_code = EXIT_PREEMPTED;
            break;
        }
    }

    if (root) {
        if (log) {
            runlog_flush(log);
            runlog_close(log);
        }
        write_status(dir, final_status);
        if (exit_code == EXIT_OK && !cfg->quiet)
            infof("done: %s (%lld steps, %.1f s; this start: steps %.3f s, logging %.3f s = %.2f%%)\n", runfile,
                  (long long)prog.step, prog.wall_time, step_total_s, log_total_s,
                  100 * log_total_s / step_total_s);
    }
done:
    free(rank_step);
    free(rank_comm);
    free(ini);
    free(windows);
    dp_sync_free(&dps);
    adamw_free(&opt);
    model_free(&model);
    data_close(train);
    data_close(held);
    return exit_code;
}
