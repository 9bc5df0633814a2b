/* The trainer's top: inputs, model and optimizer, the run directory, the run record,
 * then the loop (a step, its logged row and progress line, held-out evaluation,
 * checkpoints, signals and the equal-loss stop). The step, the reporter and the run
 * directory are their own units (step.c, reporter.c, rundir.c); this file only
 * sequences them. Rank 0 logs; all ranks checkpoint. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/checkpoint.h"
#include "motscale/decode.h"
#include "motscale/gemm.h"
#include "motscale/peak.h"
#include "motscale/provenance.h"
#include "motscale/runlog.h"
#include "motscale/runread.h"
#include "motscale/smooth.h"
#include "motscale/train.h"
#include "reporter.h"
#include "rundir.h"
#include "optbatch.h"
#include "step.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

void train_install_signals(void)
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

/* Agree on a status over the world: the worst (largest) code wins. */
static int agree_max(const mesh_t *mesh, int v)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, mesh->world));
    return v;
}

typedef struct trainer {
    config_t *cfg;
    const mesh_t *mesh;
    bool root;
    int M;
    vocab_t vocab;
    data_t *train, *held;
    data_t *held_text;             /* decoding runs: held-out text-only windows of the same language */
    bool decode;                   /* evaluation decodes the held-out aligned pairs */
    struct {
        decode_result_t r;         /* the last evaluation's, its per-pair arrays owned here */
        double text_only_loss;
    } dec;
    bool stop_at;                           /* train.stop_at_loss_of */
    double base_final[MAX_MODALITIES];
    smooth_ema_t ema[MAX_MODALITIES];
    flops_report_t fr;
    model_t model;
    adamw_t opt;
    dp_sync_t dps;
    step_params_t sp;
    batch_t batch;
    diffusion_schedule_t sched;             /* continuous images only */
    int32_t grid_t[DIFFUSION_EVAL_GRID];    /* the held-out timestep grid */
    uint64_t fingerprint;
    rundir_t rd;
    train_progress_t prog;
    runlog_t *log;
    char *ini;
    double peak;
    double *rank_step, *rank_comm;          /* rank 0: this logged step's per-rank times */
    double *rank_rss;                       /* rank 0: each rank's peak RSS so far, bytes */
    int64_t *load;                          /* rank 0: this logged step's expert load */
    int32_t *moe_layer_tower, *moe_layer_index;
    reporter_t rep;
    provenance_cpu_t cpu_mark;
    double ckpt_bytes, ckpt_s, pending_issued, log_total_s, step_total_s;
    const char *final_status;
} trainer_t;

/* ---- start-up ------------------------------------------------------------------ */

/* Vocabulary, data splits and the equal-loss baseline: bad input found before
 * anything is written. */
static int open_inputs(trainer_t *t)
{
    config_t *cfg = t->cfg;
    char err[2048];
    bool bad = !data_vocab(&t->vocab, &cfg->data, err, sizeof err) ||
               !(t->train = data_open(&cfg->data, &t->vocab, SPLIT_TRAIN, err, sizeof err)) ||
               (cfg->eval_every > 0 &&
                !(t->held = data_open(&cfg->data, &t->vocab, SPLIT_HELDOUT, err, sizeof err)));
    /* aligned tasks: evaluations also decode the held-out pairs and read the text
     * alone (the text ability fusion must keep) */
    t->decode = !bad && cfg->eval_every > 0 && cfg->data.source == DATA_ALIGNED &&
                cfg->data.aligned.stream == ALIGNED_TASKS;
    if (t->decode) {
        data_params_t text = cfg->data;
        text.aligned.stream = ALIGNED_TEXT;
        bad = !(t->held_text = data_open(&text, &t->vocab, SPLIT_HELDOUT, err, sizeof err));
        size_t n = (size_t)data_heldout_pairs(t->held);
        t->dec.r.asr_edits = xcalloc(n, sizeof(int64_t));
        t->dec.r.tts_edits = xcalloc(n, sizeof(int64_t));
        t->dec.r.asr_ref = xcalloc(n, sizeof(int64_t));
        t->dec.r.tts_ref = xcalloc(n, sizeof(int64_t));
    }
    t->stop_at = cfg->stop_at_loss_of[0] != 0;
    if (!bad && t->stop_at) {
        int bn = 0;
        char bnames[RUNREC_MAX_MOD][RUNREC_NAME_LEN];
        double by[RUNREC_MAX_MOD], overall;
        if (!runrec_final_losses(cfg->stop_at_loss_of, &bn, bnames, by, &overall, err, sizeof err))
            bad = true;
        else if (bn != t->M)
            bad = !errorf(err, sizeof err, "train.stop_at_loss_of: %s has %d modalities, this run %d",
                          cfg->stop_at_loss_of, bn, t->M);
        for (int k = 0; !bad && k < t->M; k++)
            t->base_final[k] = by[k];
    }
    if (!bad) {
        /* before anything is allocated: the ranks on this host share its memory */
        MPI_Comm here;
        int n_here = 1;
        MPI_CHECK(MPI_Comm_split_type(t->mesh->world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &here));
        MPI_CHECK(MPI_Comm_size(here, &n_here));
        MPI_CHECK(MPI_Comm_free(&here));
        /* every rank reaches the same verdict: rank 0 says it */
        bad = !model_fits_machine(&cfg->model, t->vocab.size, t->mesh->tp, cfg->micro_batch, n_here, err,
                                  sizeof err) && t->root;
    }
    if (agree_max(t->mesh, bad)) {
        if (bad)
            fprintf(stderr, "motscale[rank %d]: %s\n", t->mesh->world_rank, err);
        return EXIT_BADINPUT;
    }
    return EXIT_OK;
}

/* Targets a window's loss is normalised by: seq_len tokens, or one OPT sample
 * (its objective is per sample). */
static int window_len(const config_t *cfg) { return cfg->model.kind == MODEL_OPT ? 1 : cfg->model.seq_len; }

/* The model, its optimizer state and the DP buckets over its gradient segments. */
static void build_model(trainer_t *t)
{
    config_t *cfg = t->cfg;
    const mesh_t *mesh = t->mesh;
    model_flops(&t->fr, &cfg->model, t->vocab.size);
    tp_ctx_t tp = {.comm = mesh->tp_comm, .rank = mesh->tp_rank, .size = mesh->tp};
    model_build(&t->model, &cfg->model, &t->vocab, tp, cfg->micro_batch);
    model_init_params(&t->model, cfg->seed, &cfg->init);
    dp_segment_t *seg = xcalloc((size_t)t->model.n_tensors, sizeof *seg);
    int n_seg = 0;
    for (int i = 0; i < t->model.n_tensors; i++) {
        const tensor_info_t *ti = &t->model.tensors[i];
        if (!ti->frozen)
            seg[n_seg++] = (dp_segment_t){ti->name, ti->offset, ti->numel, ti->stage};
    }
    dp_sync_init(&t->dps, mesh->dp_comm, mesh->dp, t->model.grads, seg, n_seg, cfg->bucket_mb, cfg->zero, cfg->dp_overlap);
    free(seg);
    if (t->dps.zero) { /* ZeRO-1: moments for this rank's shard of every bucket */
        size_t nb = (size_t)t->dps.n_buckets;
        size_t *off = xcalloc(nb, sizeof *off), *cnt = xcalloc(nb, sizeof *cnt);
        dp_sync_owned(&t->dps, off, cnt);
        adamw_init_sharded(&t->opt, off, cnt, t->dps.n_buckets, mesh->dp_comm);
        free(off);
        free(cnt);
    } else { /* frozen tensors (zipper.freeze) have neither moments nor gradients to reduce */
        adamw_init(&t->opt, t->model.n_trainable);
    }
    t->model.on_stage = dp_sync_stage;
    t->model.on_stage_ctx = &t->dps;
    t->sp = (step_params_t){.global_batch = cfg->global_batch, .micro_batch = cfg->micro_batch,
                            .seq_len = window_len(cfg), .grad_clip = cfg->grad_clip,
                            .sched = cfg->sched, .adamw = cfg->adamw, .seed = cfg->seed,
                            .opt_sample = cfg->model.kind == MODEL_OPT && cfg->model.opt.task_mode == OPT_TASKS_SAMPLE};
    bool diffusion = cfg->model.image_objective == IMAGE_DIFFUSION;
    if (diffusion) {
        diffusion_schedule_init(&t->sched, cfg->model.diffusion_steps);
        for (int g = 0; g < DIFFUSION_EVAL_GRID; g++)
            t->grid_t[g] = diffusion_grid_t(&t->sched, g);
    }
    batch_init(&t->batch, cfg->micro_batch, cfg->model.seq_len, diffusion ? cfg->model.patch_dim : 0,
               diffusion ? &t->sched : NULL);
    t->fingerprint = checkpoint_fingerprint(&t->model);
}

/* A resume must continue the same trajectory: the keys that change it must equal
 * those of the run's latest start (its config.ini). Rank 0; prints the refusal. */
static int same_trajectory(const trainer_t *t)
{
    char path[RUNDIR_PATH_LEN];
    snprintf(path, sizeof path, "%s/config.ini", t->rd.dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "motscale: %s: cannot read (%s): a resume compares its settings with the run's\n", path,
                strerror(errno));
        return EXIT_BADINPUT;
    }
    char *old = xcalloc(1 << 20, 1);
    size_t n = fread(old, 1, (1 << 20) - 1, f);
    old[n] = 0;
    fclose(f);
    char diff[2048];
    int k = config_diff_unsafe(t->cfg, old, diff, sizeof diff);
    free(old);
    if (k == 0)
        return EXIT_OK;
    fprintf(stderr, "motscale: %s: resuming with %d changed setting%s that change the training trajectory: %s; "
            "restore them, or start a new run.name (safe to change: docs/config.md)\n", t->rd.dir, k,
            k > 1 ? "s" : "", diff);
    return EXIT_BADINPUT;
}

/* The run directory's verdict, then the newest usable checkpoint on resume. */
static int prepare_run(trainer_t *t)
{
    const mesh_t *mesh = t->mesh;
    bool resume = t->cfg->resume != RESUME_NO;
    char err[4400];
    /* pretrained starting points (zipper, vocab_expansion), before the run directory
     * is touched; a resume's checkpoint replaces them below */
    bool src_ok = checkpoint_load_sources(&t->model, (const char (*)[CFG_PATH_LEN])t->cfg->init.source, ZT_N, mesh,
                                          err, sizeof err);
    if (agree_max(mesh, !src_ok)) {
        if (t->root)
            fprintf(stderr, "motscale: %s\n", err);
        return EXIT_BADINPUT;
    }
    rundir_look(&t->rd, t->cfg->out_dir, t->cfg->name);
    int code = t->root ? rundir_prepare(&t->rd, resume, t->cfg->resume == RESUME_CHECKPOINT) : EXIT_OK;
    if (!code && t->root && resume && t->rd.exists)
        code = same_trajectory(t);
    if ((code = agree_max(mesh, code)))
        return code;
    if (!resume)
        return EXIT_OK;
    int got = checkpoint_load_latest(t->rd.ckdir, &t->model, &t->opt, &t->prog, t->fingerprint, mesh,
                                     err, sizeof err);
    if (agree_max(mesh, got < 0)) {
        if (t->root)
            fprintf(stderr, "motscale: %s\n", err);
        return EXIT_BADINPUT;
    }
    if (got > 0)
        infof("resuming %s at step %lld\n", t->rd.dir, (long long)t->prog.step);
    return EXIT_OK;
}

/* What /model and / of the run record say (rank 0). */
static runlog_meta_t record_meta(const trainer_t *t, const char *hosts, const char *mpiv,
                                 const char *blas, const char *peak_src)
{
    const config_t *cfg = t->cfg;
    const mesh_t *mesh = t->mesh;
    runlog_meta_t meta = {
        .config_text = t->ini, .experiment = cfg->experiment, .run_name = cfg->name,
        .world_size = mesh->world_size, .dp = mesh->dp, .tp = mesh->tp,
        .tp_backend = config_enum_name("parallel", "tp_backend", cfg->model.tp_backend),
        .hostnames = hosts ? hosts : "", .mpi_library_version = mpiv, .blas = blas,
        .peak_flops_per_rank = t->peak, .peak_flops_source = peak_src,
        .kind = config_enum_name("model", "kind", cfg->model.kind), .d_model = cfg->model.d_model,
        .n_layers = cfg->model.n_layers, .n_heads = cfg->model.n_heads, .d_ff = cfg->model.d_ff,
        .seq_len = cfg->model.seq_len, .n_towers = cfg->model.n_towers, .n_modalities = t->M,
        .params_total = t->fr.params_total, .params_active_per_token = t->fr.params_active_per_token,
        .flops_per_token = t->fr.train_per_token, .vocab_size = t->vocab.size};
    meta.image_objective = config_enum_name("model", "image_objective", cfg->model.image_objective);
    if (t->batch.P) {
        meta.image_grid = DIFFUSION_EVAL_GRID;
        meta.image_grid_t = t->grid_t;
        meta.diffusion_steps = cfg->model.diffusion_steps;
        meta.patch_dim = cfg->model.patch_dim;
        meta.diffusion_weight = cfg->model.diffusion_weight;
        meta.sample_steps = cfg->sample_steps;
    }
    for (int k = 0; k < t->M; k++) {
        meta.modality_names[k] = cfg->data.names[k];
        meta.tower_of[k] = cfg->model.tower_of[k];
    }
    if (cfg->model.kind == MODEL_OPT)
        meta.task_width = OPT_TASKS;
    if (t->model.n_load) {
        meta.load_width = t->model.n_load;
        meta.moe_experts = cfg->model.moe_experts;
        meta.moe_layers = t->model.n_load / (cfg->model.moe_experts * t->M);
        meta.moe_layer_tower = t->moe_layer_tower;
        meta.moe_layer_index = t->moe_layer_index;
        meta.moe_capacity = cfg->model.moe_capacity;
        meta.moe_zloss = cfg->model.moe_zloss;
        meta.moe_group = config_enum_name("model", "moe_group", cfg->model.moe_group);
        meta.moe_eval_routing = config_enum_name("model", "moe_eval_routing", cfg->model.moe_eval);
    }
    meta.decode_pairs = t->decode ? data_heldout_pairs(t->held) : 0;
    return meta;
}

/* Provenance, config.ini and the run record (rank 0 writes; hostnames is a collective). */
static int open_record(trainer_t *t)
{
    const mesh_t *mesh = t->mesh;
    char *hosts = provenance_hostnames();
    char peak_src[256];
    t->peak = peak_flops_per_rank(t->cfg->peak_flops, t->cfg->out_dir, peak_src, sizeof peak_src);
    MPI_CHECK(MPI_Bcast(&t->peak, 1, MPI_DOUBLE, 0, mesh->world));
    t->ini = config_to_ini(t->cfg);
    int fail = 0;
    if (t->root) {
        char mpiv[4096], blas[512], err[2048];
        provenance_mpi_library_version(mpiv, sizeof mpiv);
        provenance_blas(blas, sizeof blas);
        if (!rundir_write_file(&t->rd, "config.ini", t->ini)) {
            fprintf(stderr, "motscale: cannot write %s/config.ini: %s\n", t->rd.dir, strerror(errno));
            fail = EXIT_FAULT;
        }
        /* the experts' layers in /metrics/expert_load order: towers with experts, then layers */
        const model_shape_t *s = &t->cfg->model;
        t->moe_layer_tower = xcalloc((size_t)(s->n_towers * s->n_layers) + 1, sizeof(int32_t));
        t->moe_layer_index = xcalloc((size_t)(s->n_towers * s->n_layers) + 1, sizeof(int32_t));
        for (int tw = 0, j = 0; tw < s->n_towers; tw++)
            for (int l = 0; l < s->n_layers && (s->moe_tower_mask >> tw & 1u); l++, j++) {
                t->moe_layer_tower[j] = tw;
                t->moe_layer_index[j] = l;
            }
        runlog_meta_t meta = record_meta(t, hosts, mpiv, blas, peak_src);
        if (!fail)
            t->log = t->rd.exists ? runlog_reopen(t->rd.runfile, t->prog.step, mesh->world_size, mesh->dp,
                                                  mesh->tp, t->ini, err, sizeof err)
                                  : runlog_create(t->rd.runfile, &meta, err, sizeof err);
        if (!fail && !t->log) {
            fprintf(stderr, "motscale: %s\n", err);
            fail = EXIT_FAULT;
        }
        if (!fail)
            rundir_set_status(&t->rd, "running");
        t->rank_step = xcalloc((size_t)mesh->world_size, sizeof(double));
        t->rank_comm = xcalloc((size_t)mesh->world_size, sizeof(double));
        t->rank_rss = xcalloc((size_t)mesh->world_size, sizeof(double));
        t->load = xcalloc((size_t)t->model.n_load + 1, sizeof *t->load);
    }
    free(hosts);
    return agree_max(mesh, fail);
}

/* ---- the loop ------------------------------------------------------------------- */

/* Free disk the run record keeps in hand: every 256 logged rows each column takes a
 * new chunk (tens of KiB together), and closing writes its metadata. */
#define RECORD_ROOM (512.0 * 1024)

/* The logged row of this step and the progress line; the equal-loss verdict (every
 * rank computes it from the same losses). Collective (gathers per-rank times). */
static bool log_step(trainer_t *t, const step_result_t *r, double step_s, double comm_s, bool *stop_reached,
                     bool last)
{
    const mesh_t *mesh = t->mesh;
    int M = t->M;
    double mine[3] = {step_s, comm_s, provenance_peak_rss()};
    double *all = t->root ? xmalloc(3 * (size_t)mesh->world_size * sizeof(double)) : NULL;
    MPI_CHECK(MPI_Gather(mine, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, 0, mesh->world));
    double lbm[MAX_MODALITIES], task[OPT_TASKS];
    for (int k = 0; k < M; k++)
        lbm[k] = r->count[k] ? r->loss_sum[k] / (double)r->count[k] : NAN;
    for (int k = 0; k < OPT_TASKS; k++)
        task[k] = r->opt_count[k] ? r->opt_loss[k] / (double)r->opt_count[k] : NAN;
    if (t->stop_at) {
        *stop_reached = true;
        for (int k = 0; k < M; k++) {
            double sm = smooth_ema_update(&t->ema[k], t->prog.step, lbm[k]);
            if (isfinite(t->base_final[k]) && !(sm <= t->base_final[k]))
                *stop_reached = false;
        }
    }
    bool ok = true;
    if (t->root) {
        /* the step takes as long as its slowest rank; rank 0's split of it */
        double smax = step_s;
        for (int k = 0; k < mesh->world_size; k++) {
            t->rank_step[k] = all[3 * k];
            t->rank_comm[k] = all[3 * k + 1];
            t->rank_rss[k] = all[3 * k + 2];
            smax = t->rank_step[k] > smax ? t->rank_step[k] : smax;
        }
        provenance_cpu_t cpu_now;
        provenance_cpu_sample(&cpu_now);
        runlog_row_t row = {
            .step = t->prog.step, .tokens = t->prog.tokens, .flops = t->prog.flops,
            .gemm_flops = t->prog.gemm_flops, .wall_time = t->prog.wall_time, .loss = r->loss,
            .lr = r->lr, .grad_norm = r->grad_norm, .step_time = smax,
            .compute_time = step_s - comm_s - r->io_s, .comm_time = comm_s, .io_time = r->io_s,
            .loss_by_modality = lbm, .tokens_by_modality = r->count,
            .load_avg = provenance_load_average(), .cpu_steal = provenance_cpu_steal(&t->cpu_mark, &cpu_now),
            .rank_step_time = t->rank_step, .rank_comm_time = t->rank_comm, .rank_peak_rss = t->rank_rss,
            .aux_loss = r->aux_loss, .expert_load = t->load, .task_loss = task};
        for (int i = 0; i < t->model.n_load; i++)
            t->load[i] = (int64_t)t->model.load[i];
        t->cpu_mark = cpu_now;
        double avail;
        if (!rundir_has_room(&t->rd, RECORD_ROOM, &avail)) {
            fprintf(stderr, "motscale: %s: %.0f KiB free; stopping at step %lld while the run record can still "
                    "grow and close (it needs %.0f KiB of headroom); free some space and resume\n", t->rd.dir,
                    avail / 1024, (long long)t->prog.step, RECORD_ROOM / 1024);
            ok = false;
        }
        ok = ok && runlog_append(t->log, &row);
        if (ok && (t->prog.step % t->cfg->flush_every < t->cfg->log_every || last))
            ok = runlog_flush(t->log);
        reporter_step_line(&t->rep, t->prog.step, all);
    }
    free(all);
    reporter_reset(&t->rep);
    return ok;
}

/* Continuous images at an evaluation: the caption loss of the windows just
 * evaluated, the image loss at each timestep of the grid, and at the final
 * evaluation (model.sample_steps > 0) the sampling check. NaN where not measured. */
static void eval_images(trainer_t *t, bool last, runlog_eval_t *ev, double *grid)
{
    model_t *m = &t->model;
    const config_t *cfg = t->cfg;
    ev->eval_caption_loss = m->caption_count ? m->caption_loss_sum / (double)m->caption_count : NAN;
    int img = cfg->model.image_modality;
    for (int g = 0; g < DIFFUSION_EVAL_GRID; g++) {
        double ls[MAX_MODALITIES];
        int64_t cnt[MAX_MODALITIES];
        train_evaluate(m, t->held, cfg->eval_tokens, cfg->model.seq_len, cfg->micro_batch, t->mesh, &t->batch,
                       diffusion_grid_t(&t->sched, g), ls, cnt);
        grid[g] = cnt[img] ? ls[img] / (double)cnt[img] : NAN;
    }
    ev->eval_image_loss_at_t = grid;
    ev->eval_sample_mse = ev->eval_sample_noise_mse = ev->eval_sample_class_accuracy = NAN;
    if (!last || cfg->sample_steps <= 0)
        return;
    sample_score_t sc;
    train_sample_check(m, t->held, cfg->eval_tokens, cfg->model.seq_len, cfg->micro_batch, t->mesh, &t->batch,
                       cfg->sample_steps, cfg->model.image_len, &sc);
    if (sc.elements > 0) {
        ev->eval_sample_mse = sc.sample_se / sc.elements;
        ev->eval_sample_noise_mse = sc.noise_se / sc.elements;
        ev->eval_sample_class_accuracy = sc.blobs > 0 ? sc.blobs_right / sc.blobs : NAN;
    }
    infof("sampling check at step %lld: %.0f images, %d DDIM steps: MSE %.4f (pure noise %.4f), blob classes "
          "%.0f/%.0f right\n", (long long)t->prog.step, sc.images, cfg->sample_steps, ev->eval_sample_mse,
          ev->eval_sample_noise_mse, sc.blobs_right, sc.blobs);
}

/* Decoding runs: the text-only held-out loss and the greedy decoding of every
 * held-out pair (every rank alike; rank 0 records them). */
static void decode_step(trainer_t *t)
{
    double els[MAX_MODALITIES];
    int64_t ecnt[MAX_MODALITIES];
    train_evaluate(&t->model, t->held_text, t->cfg->eval_tokens, t->cfg->model.seq_len, t->cfg->micro_batch,
                   t->mesh, &t->batch, 0, els, ecnt);
    t->dec.text_only_loss = ecnt[0] ? els[0] / (double)ecnt[0] : NAN;
    decode_evaluate(&t->model, t->held, t->cfg->model.seq_len, &t->dec.r);
}

/* The held-out evaluation after this step, its row and line. */
static bool eval_step(trainer_t *t, bool last)
{
    double els[MAX_MODALITIES];
    int64_t ecnt[MAX_MODALITIES];
    train_evaluate(&t->model, t->held, t->cfg->eval_tokens, window_len(t->cfg), t->cfg->micro_batch,
                   t->mesh, &t->batch, 0, els, ecnt);
    /* OPT: the held-out per-task means and accuracies (read before retrieval's
     * forwards add to the sums), then retrieval over log.retrieval_pool scenes */
    double task[OPT_TASKS], acc[OPT_TASKS], retr[RUNREC_RETRIEVAL_WIDTH];
    if (t->cfg->model.kind == MODEL_OPT) {
        opt_task_means(&t->model, task, acc);
        opt_retrieval(&t->model, t->held, t->cfg->retrieval_pool, t->cfg->micro_batch, t->mesh, retr);
    }
    runlog_eval_t ev = {0};
    double grid[DIFFUSION_EVAL_GRID];
    if (t->batch.P)
        eval_images(t, last, &ev, grid);
    if (t->decode)
        decode_step(t);
    if (!t->root)
        return true;
    double tot = 0, lbm[MAX_MODALITIES];
    int64_t n = 0;
    for (int k = 0; k < t->M; k++) {
        tot += t->model.loss_weight[k] * els[k];
        n += ecnt[k];
        lbm[k] = ecnt[k] ? els[k] / (double)ecnt[k] : NAN;
    }
    ev.eval_step = t->prog.step;
    ev.eval_flops = t->prog.flops;
    ev.eval_wall_time = t->prog.wall_time;
    ev.eval_loss = tot / (double)n;
    ev.eval_loss_by_modality = lbm;
    if (t->decode) {
        ev.eval_text_only_loss = t->dec.text_only_loss;
        ev.eval_asr_wer = t->dec.r.asr_wer;
        ev.eval_tts_uer = t->dec.r.tts_uer;
        ev.eval_asr_by_length = t->dec.r.asr_by;
        ev.eval_tts_uer_by_length = t->dec.r.tts_by;
        ev.eval_asr_errors = t->dec.r.asr_edits;
        ev.eval_tts_errors = t->dec.r.tts_edits;
        ev.eval_asr_ref_len = t->dec.r.asr_ref;
        ev.eval_tts_ref_len = t->dec.r.tts_ref;
    }
    if (t->cfg->model.kind == MODEL_OPT) {
        ev.eval_task_loss = task;
        ev.eval_task_accuracy = acc;
        ev.eval_retrieval = retr;
    }
    reporter_eval_line(&t->rep, t->prog.step, tot / (double)n, lbm);
    if (t->cfg->model.kind == MODEL_OPT && !t->cfg->quiet)
        infof("eval %lld | accuracy MLM %.3f MRC %.3f matching %.3f | R@1 t->i %.3f i->t %.3f t->a %.3f a->t %.3f "
              "t+a->i %.3f (pool %d)\n", (long long)t->prog.step, acc[OPT_TASK_MLM], acc[OPT_TASK_MRC],
              acc[OPT_TASK_MATCH], retr[0], retr[3], retr[6], retr[9], retr[12], t->cfg->retrieval_pool);
    return runlog_append_eval(t->log, &ev);
}

/* A checkpoint of this step; rows up to it are flushed first. */
static bool checkpoint_now(trainer_t *t)
{
    if (t->root && !runlog_flush(t->log))
        warnf("cannot flush %s before the checkpoint", t->rd.runfile);
    char err[4400];
    if (!checkpoint_write(t->rd.ckdir, &t->model, &t->opt, &t->prog, t->fingerprint, t->mesh,
                          t->cfg->keep_checkpoints, &t->ckpt_s, &t->ckpt_bytes, err, sizeof err)) {
        if (t->root)
            fprintf(stderr, "motscale: checkpoint at step %lld in %s failed: %s\n", (long long)t->prog.step,
                    t->rd.ckdir, err);
        return false;
    }
    if (!t->cfg->quiet)
        infof("checkpoint %lld: %.2f MB in %.3f s (%.1f MB/s)\n", (long long)t->prog.step, t->ckpt_bytes / 1e6,
              t->ckpt_s, t->ckpt_bytes / 1e6 / t->ckpt_s);
    return true;
}

/* A non-finite loss or gradient norm: one line naming the step and the modalities. */
static void report_nonfinite(const trainer_t *t, const step_result_t *r, int64_t step)
{
    char which[256] = "";
    for (int k = 0; k < t->M; k++)
        if (r->count[k] && !isfinite(r->loss_sum[k]))
            snprintf(which + strlen(which), sizeof which - strlen(which), " %s", t->cfg->data.names[k]);
    if (t->root)
        fprintf(stderr, "motscale[rank %d]: non-finite %s at step %lld (modality:%s); the last good "
                "checkpoint is kept in %s; lower train.lr (or train.weight_decay) or raise train.warmup\n", t->mesh->world_rank,
                isfinite(r->loss) ? "gradient norm" : "loss", (long long)step + 1, which[0] ? which : " all",
                t->rd.ckdir);
}

/* After a step: its row and line, evaluation, the agreed verdicts, the checkpoint
 * and the stops. Returns -1 to go on, else the exit status. */
static int after_step(trainer_t *t, const step_result_t *r, double step_s)
{
    config_t *cfg = t->cfg;
    const mesh_t *mesh = t->mesh;
    bool last = t->prog.step == cfg->steps;
    bool log_now = t->prog.step % cfg->log_every == 0 || last;
    bool eval_now = t->held && (t->prog.step % cfg->eval_every == 0 || last);
    bool stop_reached = false;
    /* a signal reaches ranks at different times: act only on the agreed value */
    int sig = agree_max(mesh, stop_signal);
    bool ck_due = (cfg->checkpoint_every > 0 && t->prog.step % cfg->checkpoint_every == 0) || last;
    if (log_now || ck_due || sig) {
        double sum = t->pending_issued;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, mesh->world));
        t->prog.gemm_flops += sum;
        t->pending_issued = 0;
    }
    int fail = 0;
    if (log_now) {
        double l0 = now_seconds();
        fail |= !log_step(t, r, step_s, r->comm_s, &stop_reached, last);
        double log_s = now_seconds() - l0;
        t->prog.wall_time += log_s; /* logging is part of the run's wall-clock */
        t->log_total_s += log_s;
    }
    if (eval_now) {
        double e0 = now_seconds();
        fail |= !eval_step(t, last);
        t->prog.wall_time += now_seconds() - e0;
    }
    /* one agreement for both: a rank-0 logging failure, the equal-loss stop */
    int agreed[2] = {fail, stop_reached};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, agreed, 2, MPI_INT, MPI_MAX, mesh->world));
    if (agreed[0]) {
        if (t->root && runlog_error(t->log))
            fprintf(stderr, "motscale: the run record cannot be written at step %lld: %s; stopping (rows up to "
                    "the last flush and the last checkpoint are kept)\n", (long long)t->prog.step,
                    runlog_error(t->log) ? runlog_error(t->log) : "unknown error");
        return EXIT_FAULT;
    }
    stop_reached = agreed[1];
    if ((ck_due || sig || stop_reached) && !checkpoint_now(t))
        return EXIT_FAULT;
    if (stop_reached) {
        if (t->root) {
            runlog_set_attr_double(t->log, "stopped_at_step", (double)t->prog.step);
            runlog_set_attr_double(t->log, "stopped_at_flops", t->prog.flops);
            runlog_set_attr_double(t->log, "stopped_at_wall_time", t->prog.wall_time);
            runlog_set_attr_string(t->log, "stopped_at_loss_of", cfg->stop_at_loss_of);
        }
        infof("reached the final loss of %s at step %lld; stopping\n", cfg->stop_at_loss_of,
              (long long)t->prog.step);
        return EXIT_OK;
    }
    if (sig && !last) {
        infof("signal %d: checkpointed at step %lld; exiting with status %d for requeue\n", sig,
              (long long)t->prog.step, EXIT_PREEMPTED);
        t->final_status = "preempted";
        return EXIT_PREEMPTED;
    }
    return -1;
}

static double issued_flops(void)
{
    return gemm_flops(GEMM_PROJ) + gemm_flops(GEMM_ATTN) + gemm_flops(GEMM_HEAD);
}

static int loop(trainer_t *t)
{
    config_t *cfg = t->cfg;
    for (int k = 0; k < t->M; k++)
        smooth_ema_init(&t->ema[k], SMOOTH_DEFAULT);
    reporter_init(&t->rep, t->M, (const char(*)[CFG_NAME_LEN])cfg->data.names, cfg->steps, cfg->quiet,
                  t->peak, t->mesh->world_size);
    provenance_cpu_sample(&t->cpu_mark);
    if (t->prog.step == 0)
        infof("training %s: %s, %d towers, %lld params (%lld active per token), %d steps, "
              "world %d = dp %d x tp %d, %.3g FLOPs/token\n",
              cfg->name, config_enum_name("model", "kind", cfg->model.kind), cfg->model.n_towers,
              (long long)t->fr.params_total, (long long)t->fr.params_active_per_token, (int)cfg->steps,
              t->mesh->world_size, t->mesh->dp, t->mesh->tp, t->fr.train_per_token);
    /* a decoding run's first row is the pretrained towers before any fusion step */
    if (t->decode && t->prog.step == 0) {
        double e0 = now_seconds();
        int bad = agree_max(t->mesh, !eval_step(t, false));
        t->prog.wall_time += now_seconds() - e0;
        if (bad)
            return EXIT_FAULT;
    }
    while (t->prog.step < cfg->steps) {
        int64_t step = t->prog.step;
        double t0 = now_seconds(), gf0 = issued_flops();
        step_result_t r;
        train_step(&t->model, &t->opt, &t->dps, t->train, &t->batch, &t->sp, t->mesh, step, &r);
        if (!r.finite) {
            report_nonfinite(t, &r, step);
            return EXIT_FAULT;
        }
        double step_s = now_seconds() - t0;
        t->prog.step++;
        t->prog.tokens += r.tokens;
        double step_flops = flops_train_step(&t->fr, r.tokens_in, r.expert_rows);
        t->prog.flops += step_flops;
        /* FLOPs issued to BLAS by this rank; summed over the world when logged */
        t->pending_issued += issued_flops() - gf0;
        t->prog.wall_time += step_s;
        t->step_total_s += step_s;
        reporter_add(&t->rep, &r, step_flops);
        int code = after_step(t, &r, step_s);
        if (code >= 0)
            return code;
    }
    return EXIT_OK;
}

/* ---- the run ----------------------------------------------------------------- */

int train_run(config_t *cfg, const mesh_t *mesh)
{
    trainer_t t = {.cfg = cfg, .mesh = mesh, .root = mesh->world_rank == 0,
                   .M = cfg->data.n_modalities, .final_status = "completed", .rd = {.lock_fd = -1}};
    /* again, after MPI_Init (it may install its own); cmd_train installs them before
     * it, so a signal during set-up (MPI_Init, the peak probe, a long data check) is
     * honoured after the first step, which checkpoints */
    train_install_signals();
    int code = open_inputs(&t);
    bool built = false;
    if (code == EXIT_OK) {
        build_model(&t);
        built = true;
        code = prepare_run(&t);
    }
    if (code == EXIT_OK && (code = open_record(&t)) == EXIT_OK) {
        code = loop(&t);
        if (code == EXIT_FAULT)
            t.final_status = "failed";
        if (t.root) {
            runlog_flush(t.log);
            runlog_close(t.log);
            rundir_set_status(&t.rd, t.final_status);
            if (code == EXIT_OK && !cfg->quiet)
                infof("done: %s (%lld steps, %.1f s; this start: steps %.3f s, logging %.3f s = %.2f%%)\n",
                      t.rd.runfile, (long long)t.prog.step, t.prog.wall_time, t.step_total_s,
                      t.log_total_s, 100 * t.log_total_s / t.step_total_s);
        }
    } else if (t.root && t.log) {
        runlog_close(t.log);
    }
    if (t.root)
        rundir_unlock(&t.rd);
    free(t.rank_step);
    free(t.rank_comm);
    free(t.rank_rss);
    free(t.load);
    free(t.moe_layer_tower);
    free(t.moe_layer_index);
    free(t.ini);
    batch_free(&t.batch);
    diffusion_schedule_free(&t.sched);
    if (built) {
        dp_sync_free(&t.dps);
        adamw_free(&t.opt);
        model_free(&t.model);
    }
    data_close(t.train);
    data_close(t.held);
    data_close(t.held_text);
    free(t.dec.r.asr_edits);
    free(t.dec.r.tts_edits);
    free(t.dec.r.asr_ref);
    free(t.dec.r.tts_ref);
    return code;
}
