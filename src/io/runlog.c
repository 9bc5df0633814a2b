/* The run record writer (DESIGN.md §6, docs/run-record.md): one HDF5 file per run,
 * written by world rank 0 alone with the sec2 driver and latest-format bounds; every
 * object is created first from the column list of runschema.h, then SWMR appends of
 * one row per logged step. Every HDF5 call goes through the layer of h5.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/common.h"
#include "motscale/h5.h"
#include "motscale/provenance.h"
#include "motscale/runlog.h"

/* Rows per chunk: a run logs hundreds to tens of thousands of rows; 256 rows of
 * doubles is 2 KiB per 1-D chunk, so one append touches one small chunk and the
 * chunk index stays short. */
#define CHUNK_ROWS 256

struct runlog {
    hid_t file;
    char path[CFG_PATH_LEN];
    hsize_t width[RUNREC_N_WIDTHS]; /* by enum runrec_width: 1, n_modalities, world_size, load, grid, 1, decoding, tasks, retrieval */
    hid_t ds[RUNREC_N_COLUMNS];
    hsize_t rows[2];                /* rows written, by enum runrec_group */
    int64_t last_step[2];           /* last step written, by group */
    hsize_t world_now;              /* ranks of this writer's job (<= width[WORLD]) */
    double *pad[2];                 /* width[WORLD] values: /ranks rows, NaN-padded */
    char error[1024];               /* the first failure since the file was opened */
    bool failed;
};

/* Where an operation on an open record reports: its first failure is kept (one line
 * for the trainer to print), later ones are not printed again. */
static h5ctx_t ctx_of(runlog_t *r)
{
    return (h5ctx_t){r->path, r->error, r->failed ? 0 : sizeof r->error};
}

static int rank_of(const runrec_column_t *col) { return runrec_rank(col->width); }

/* A LOAD column exists only for a model with experts, GRID and IMG columns only for
 * continuous images, the decoding columns only in a run that decodes, TASK and RETR
 * ones only for an OPT model (width > 0). */
static bool present(const runlog_t *r, const runrec_column_t *col) { return r->width[col->width] > 0; }

/* Slurm variables of this job into the root attributes (create and reopen). */
static bool write_slurm(const h5ctx_t *c, hid_t file)
{
    provenance_slurm_t s;
    provenance_slurm(&s);
    return h5_attr_put_str(c, file, "/", "slurm_job_id", s.job_id) &&
           h5_attr_put_str(c, file, "/", "slurm_array_job_id", s.array_job_id) &&
           h5_attr_put_str(c, file, "/", "slurm_array_task_id", s.array_task_id) &&
           h5_attr_put_i32(c, file, "/", "slurm_restart_count", s.restart_count);
}

static bool write_root_attrs(const h5ctx_t *c, hid_t file, const runlog_meta_t *m)
{
    char created[64], h5v[64], mpiv[1024], blas[512];
    provenance_utc_now(created, sizeof created);
    provenance_hdf5_version(h5v, sizeof h5v);
    if (!m->mpi_library_version)
        provenance_mpi_library_version(mpiv, sizeof mpiv);
    if (!m->blas)
        provenance_blas(blas, sizeof blas);
    return h5_attr_put_i32(c, file, "/", "schema_version", RUNLOG_SCHEMA_VERSION) &&
           h5_attr_put_str(c, file, "/", "motscale_version", MOTSCALE_VERSION) &&
           h5_attr_put_str(c, file, "/", "git_commit", provenance_git_commit()) &&
           h5_attr_put_str(c, file, "/", "created_utc", created) &&
           h5_attr_put_str(c, file, "/", "config", m->config_text) &&
           h5_attr_put_str(c, file, "/", "experiment", m->experiment) &&
           h5_attr_put_str(c, file, "/", "run_name", m->run_name) &&
           h5_attr_put_i32(c, file, "/", "world_size", m->world_size) &&
           h5_attr_put_i32(c, file, "/", "dp", m->dp) && h5_attr_put_i32(c, file, "/", "tp", m->tp) &&
           h5_attr_put_str(c, file, "/", "tp_backend", m->tp_backend) &&
           h5_attr_put_str(c, file, "/", "hostnames", m->hostnames ? m->hostnames : "unknown") &&
           h5_attr_put_str(c, file, "/", "mpi_library_version",
                           m->mpi_library_version ? m->mpi_library_version : mpiv) &&
           h5_attr_put_str(c, file, "/", "hdf5_version", h5v) &&
           h5_attr_put_str(c, file, "/", "blas", m->blas ? m->blas : blas) && write_slurm(c, file) &&
           h5_attr_put_f64(c, file, "/", "peak_flops_per_rank", m->peak_flops_per_rank) &&
           h5_attr_put_str(c, file, "/", "peak_flops_source",
                           m->peak_flops_source ? m->peak_flops_source : "unknown");
}

/* A model with experts: what /metrics/expert_load's columns are, and its routing. */
static bool write_moe_attrs(const h5ctx_t *c, hid_t g, const runlog_meta_t *m)
{
    const char *o = "/model";
    return h5_attr_put_i32(c, g, o, "moe_experts", m->moe_experts) &&
           h5_attr_put_i32(c, g, o, "moe_layers", m->moe_layers) &&
           h5_attr_put(c, g, o, "moe_layer_tower", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)m->moe_layers,
                       m->moe_layer_tower) &&
           h5_attr_put(c, g, o, "moe_layer_index", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)m->moe_layers,
                       m->moe_layer_index) &&
           h5_attr_put_f64(c, g, o, "moe_capacity", m->moe_capacity) &&
           h5_attr_put_f64(c, g, o, "moe_zloss", m->moe_zloss) &&
           h5_attr_put_str(c, g, o, "moe_group", m->moe_group) &&
           h5_attr_put_str(c, g, o, "moe_eval_routing", m->moe_eval_routing);
}

static bool write_model_attrs(const h5ctx_t *c, hid_t g, const runlog_meta_t *m)
{
    const char *o = "/model";
    return h5_attr_put_str(c, g, o, "kind", m->kind) && h5_attr_put_i32(c, g, o, "d_model", m->d_model) &&
           h5_attr_put_i32(c, g, o, "n_layers", m->n_layers) &&
           h5_attr_put_i32(c, g, o, "n_heads", m->n_heads) && h5_attr_put_i32(c, g, o, "d_ff", m->d_ff) &&
           h5_attr_put_i32(c, g, o, "seq_len", m->seq_len) &&
           h5_attr_put_i32(c, g, o, "vocab_size", m->vocab_size) &&
           h5_attr_put_strs(c, g, o, "modality_names", m->modality_names, (size_t)m->n_modalities) &&
           h5_attr_put(c, g, o, "tower_of", H5T_STD_I32LE, H5T_NATIVE_INT32,
                       (hsize_t)m->n_modalities, m->tower_of) &&
           h5_attr_put_i32(c, g, o, "n_towers", m->n_towers) &&
           h5_attr_put_i64(c, g, o, "params_total", m->params_total) &&
           h5_attr_put_i64(c, g, o, "params_active_per_token", m->params_active_per_token) &&
           h5_attr_put_f64(c, g, o, "flops_per_token", m->flops_per_token) &&
           (m->load_width == 0 || write_moe_attrs(c, g, m)) &&
           h5_attr_put_str(c, g, o, "image_objective", m->image_objective ? m->image_objective : "tokens") &&
           (m->image_grid == 0 ||
            (h5_attr_put(c, g, o, "diffusion_eval_t", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)m->image_grid,
                         m->image_grid_t) &&
             h5_attr_put_i32(c, g, o, "diffusion_steps", m->diffusion_steps) &&
             h5_attr_put_i32(c, g, o, "patch_dim", m->patch_dim) &&
             h5_attr_put_f64(c, g, o, "diffusion_weight", m->diffusion_weight) &&
             h5_attr_put_i32(c, g, o, "sample_steps", m->sample_steps)));
}

/* /restarts: one row per (re)start of the run, written before SWMR starts (SWMR
 * appends no variable-length strings). */
static const char *const RESTART_INT[] = {"/restarts/step", "/restarts/world_size", "/restarts/dp", "/restarts/tp"};
static const char *const RESTART_TEXT[] = {"/restarts/created_utc", "/restarts/config"};

static bool create_restarts(const h5ctx_t *c, hid_t file)
{
    hid_t g = H5Gcreate2(file, "/restarts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return h5_fail(c, "/restarts", "cannot create the group");
    H5Gclose(g);
    for (size_t i = 0; i < 4; i++)
        if (!h5_column_create(c, file, RESTART_INT[i], true, 1, 1, false, 16))
            return false;
    for (size_t i = 0; i < 2; i++)
        if (!h5_text_column_create(c, file, RESTART_TEXT[i], 16))
            return false;
    return true;
}

/* The row of this start: at step `step`, layout world/dp/tp, with its configuration. */
static bool append_restart(const h5ctx_t *c, hid_t file, int64_t step, int world, int dp, int tp,
                           const char *config)
{
    hid_t d = h5_dset_open(c, file, RESTART_INT[0]);
    int rank;
    hsize_t dims[2];
    bool ok = d >= 0 && h5_dset_shape(c, d, RESTART_INT[0], &rank, dims);
    h5_drop(&d);
    if (!ok)
        return false;
    hsize_t row = dims[0];
    int64_t v[4] = {step, world, dp, tp};
    char created[64];
    provenance_utc_now(created, sizeof created);
    const char *text[2] = {created, config};
    for (size_t i = 0; i < 4 && ok; i++) {
        d = h5_dset_open(c, file, RESTART_INT[i]);
        ok = d >= 0 && h5_column_append(c, d, RESTART_INT[i], 1, row, 1, H5T_NATIVE_INT64, &v[i]);
        h5_drop(&d);
    }
    for (size_t i = 0; i < 2 && ok; i++) {
        d = h5_dset_open(c, file, RESTART_TEXT[i]);
        ok = d >= 0 && h5_text_column_append(c, d, RESTART_TEXT[i], row, text[i]);
        h5_drop(&d);
    }
    return ok;
}

static void close_datasets(runlog_t *r)
{
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++)
        h5_drop(&r->ds[i]);
}

static bool open_datasets(const h5ctx_t *c, runlog_t *r)
{
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++)
        if (present(r, &runrec_columns[i]) && (r->ds[i] = h5_dset_open(c, r->file, runrec_columns[i].path)) < 0)
            return false;
    return true;
}

static runlog_t *runlog_new(const char *path)
{
    runlog_t *r = xcalloc(1, sizeof *r);
    r->file = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++)
        r->ds[i] = -1;
    r->last_step[0] = r->last_step[1] = INT64_MIN;
    return r;
}

/* Release everything after a failed create/reopen; err already holds the message. */
static runlog_t *abandon(runlog_t *r, h5_quiet_t q)
{
    close_datasets(r);
    h5_drop(&r->file);
    free(r->pad[0]);
    free(r->pad[1]);
    free(r);
    h5_quiet_end(q);
    return NULL;
}

/* SWMR from here on: objects can only grow; readers may follow the file live. */
static bool start_swmr(const h5ctx_t *c, runlog_t *r)
{
    if (H5Fstart_swmr_write(r->file) < 0)
        return h5_fail(c, "/", "cannot start SWMR writing");
    return open_datasets(c, r);
}

static bool create_objects(const h5ctx_t *c, runlog_t *r, const runlog_meta_t *meta)
{
    if (!write_root_attrs(c, r->file, meta))
        return false;
    const char *groups[] = RUNREC_GROUPS;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        hid_t g = H5Gcreate2(r->file, groups[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0)
            return h5_fail(c, groups[i], "cannot create the group");
        bool ok = i > 0 || write_model_attrs(c, g, meta);
        if (H5Gclose(g) < 0 && ok)
            ok = h5_fail(c, groups[i], "cannot close the group");
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        if (!present(r, col))
            continue;
        /* /ranks may widen when a resumed run has more ranks; missing ranks read NaN */
        if (!h5_column_create(c, r->file, col->path, col->i64, rank_of(col), r->width[col->width],
                              col->width == RUNREC_WORLD, CHUNK_ROWS))
            return false;
    }
    return true;
}

runlog_t *runlog_create(const char *path, const runlog_meta_t *meta, char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    h5_quiet_t q = h5_quiet_begin();
    if (!meta || meta->n_modalities < 1 || meta->n_modalities > MAX_MODALITIES ||
        meta->world_size < 1) {
        h5_fail(&c, "/", "bad metadata (%d modalities, world size %d)", meta ? meta->n_modalities : 0,
                meta ? meta->world_size : 0);
        h5_quiet_end(q);
        return NULL;
    }
    if (access(path, F_OK) == 0) {
        h5_fail(&c, "/", "file exists; a new run record is never written over an old one");
        h5_quiet_end(q);
        return NULL;
    }
    runlog_t *r = runlog_new(path);
    r->width[RUNREC_ONE] = 1;
    r->width[RUNREC_MOD] = (hsize_t)meta->n_modalities;
    r->width[RUNREC_WORLD] = (hsize_t)meta->world_size;
    r->width[RUNREC_LOAD] = (hsize_t)(meta->load_width > 0 ? meta->load_width : 0);
    r->width[RUNREC_GRID] = (hsize_t)(meta->image_grid > 0 ? meta->image_grid : 0);
    r->width[RUNREC_IMG] = meta->image_grid > 0;
    r->width[RUNREC_DEC] = meta->decode_pairs > 0;
    r->width[RUNREC_BUCKET] = meta->decode_pairs > 0 ? RUNREC_BUCKETS : 0;
    r->width[RUNREC_PAIRS] = (hsize_t)(meta->decode_pairs > 0 ? meta->decode_pairs : 0);
    r->width[RUNREC_TASK] = (hsize_t)(meta->task_width > 0 ? meta->task_width : 0);
    r->width[RUNREC_RETR] = meta->task_width > 0 ? RUNREC_RETRIEVAL_WIDTH : 0;
    r->world_now = r->width[RUNREC_WORLD];
    /* Made under a temporary name and renamed once SWMR has started, so a reader never
     * sees a half-made file. No HDF5 file lock: the run directory's lock already
     * guarantees one writer, and HDF5's would make every SWMR reader block a resume. */
    char tmp[CFG_PATH_LEN + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    h5ctx_t ct = {tmp, err, errlen};
    unlink(tmp);
    h5_fopts_t o = {.comm = MPI_COMM_NULL, .latest = true, .no_lock = true};
    r->file = h5_file_open(&ct, H5_CREATE, &o);
    if (r->file < 0 || !create_objects(&ct, r, meta) || !create_restarts(&ct, r->file) ||
        !append_restart(&ct, r->file, 0, meta->world_size, meta->dp, meta->tp, meta->config_text) ||
        !start_swmr(&ct, r) || !(H5Fflush(r->file, H5F_SCOPE_LOCAL) >= 0 || h5_fail(&ct, "/", "cannot flush"))) {
        unlink(tmp);
        return abandon(r, q);
    }
    if (rename(tmp, path) != 0) {
        h5_fail(&c, "/", "cannot rename %s to it: %s", tmp, strerror(errno));
        unlink(tmp);
        return abandon(r, q);
    }
    h5_quiet_end(q);
    return r;
}

/* How many leading rows of a group to keep: no more than the shortest column (a
 * writer killed mid-append may have grown some columns and not others), and only
 * rows whose step is <= last_step and strictly increasing (a grown but unwritten
 * row reads as step 0). Sets r->rows[group] and r->last_step[group]. */
static bool rows_to_keep(const h5ctx_t *c, runlog_t *r, int group, int64_t last_step)
{
    hsize_t n = (hsize_t)-1;
    size_t step_col = RUNREC_N_COLUMNS;
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        if (col->group != group || !present(r, col))
            continue;
        if (step_col == RUNREC_N_COLUMNS)
            step_col = i; /* the first column of a group is its step */
        int rank;
        hsize_t dims[2];
        if (!h5_dset_shape(c, r->ds[i], col->path, &rank, dims))
            return false;
        if (dims[1] != r->width[col->width])
            return h5_fail(c, col->path, "has %llu columns, expected %llu", (unsigned long long)dims[1],
                           (unsigned long long)r->width[col->width]);
        if (dims[0] < n)
            n = dims[0];
    }
    r->rows[group] = 0;
    r->last_step[group] = INT64_MIN;
    if (n == 0)
        return true;
    int64_t *step = xmalloc((size_t)n * sizeof *step);
    hsize_t start = 0;
    bool ok = h5_slab_read(c, r->ds[step_col], runrec_columns[step_col].path, 1, &start, &n,
                           H5T_NATIVE_INT64, step, H5P_DEFAULT);
    while (ok && r->rows[group] < n && step[r->rows[group]] <= last_step &&
           (r->rows[group] == 0 || step[r->rows[group]] > r->last_step[group]))
        r->last_step[group] = step[r->rows[group]++];
    free(step);
    return ok;
}

/* Check the version, read the widths, cut the rows past last_step, widen /ranks. */
static bool reopen_columns(const h5ctx_t *c, runlog_t *r, int64_t last_step, int world_size)
{
    int32_t version = 0;
    if (!h5_attr_get(c, r->file, "/", "schema_version", H5T_NATIVE_INT32, &version, 1))
        return false;
    if (version != RUNLOG_SCHEMA_VERSION)
        return h5_fail(c, "/@schema_version", "is %d, this motscale writes %d", (int)version,
                       RUNLOG_SCHEMA_VERSION);
    /* Modalities, world size and load come from the file: the first 2-D column of
     * each (a LOAD column only if the file has one). */
    r->width[RUNREC_ONE] = r->width[RUNREC_MOD] = r->width[RUNREC_WORLD] = 1;
    r->width[RUNREC_LOAD] = r->width[RUNREC_GRID] = r->width[RUNREC_IMG] = 0;
    r->width[RUNREC_DEC] = r->width[RUNREC_BUCKET] = r->width[RUNREC_PAIRS] = 0;
    r->width[RUNREC_TASK] = r->width[RUNREC_RETR] = 0;
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++) {
        int w = runrec_columns[i].width;
        if (w == RUNREC_LOAD || w == RUNREC_GRID || w == RUNREC_IMG || w == RUNREC_DEC || w == RUNREC_BUCKET ||
            w == RUNREC_PAIRS || w == RUNREC_TASK || w == RUNREC_RETR) {
            int e = h5_exists(c, r->file, runrec_columns[i].path);
            if (e < 0)
                return false;
            r->width[w] = e > 0;
        }
    }
    if (!open_datasets(c, r))
        return false;
    bool known[RUNREC_N_WIDTHS];
    for (int w = 0; w < RUNREC_N_WIDTHS; w++)
        known[w] = runrec_scalar(w);
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        int rank;
        hsize_t dims[2];
        if (known[col->width] || !present(r, col))
            continue;
        known[col->width] = true;
        if (!h5_dset_shape(c, r->ds[i], col->path, &rank, dims))
            return false;
        r->width[col->width] = dims[1];
    }
    if (!rows_to_keep(c, r, RUNREC_IN_METRICS, last_step) || !rows_to_keep(c, r, RUNREC_IN_EVAL, last_step))
        return false;
    /* A resume may run at another layout: /ranks grows to the largest world seen. */
    r->world_now = (hsize_t)world_size;
    if (r->world_now > r->width[RUNREC_WORLD])
        r->width[RUNREC_WORLD] = r->world_now;
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        if (present(r, col) && !h5_column_resize(c, r->ds[i], col->path, rank_of(col), r->rows[col->group],
                              r->width[col->width]))
            return false;
    }
    return true;
}

runlog_t *runlog_reopen(const char *path, int64_t last_step, int world_size, int dp, int tp,
                        const char *config_text, char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    h5_quiet_t q = h5_quiet_begin();
    runlog_t *r = runlog_new(path);
    /* The previous writer is gone (the job was requeued or restarted), so the
     * status flags it may have left are stale: clear them as h5clear -s would. */
    h5_fopts_t o = {.comm = MPI_COMM_NULL, .latest = true, .clear_status_flags = true, .no_lock = true};
    r->file = h5_file_open(&c, H5_APPEND, &o);
    if (r->file < 0 || !reopen_columns(&c, r, last_step, world_size) || !write_slurm(&c, r->file) ||
        !h5_attr_put_i32(&c, r->file, "/", "world_size", world_size) ||
        !h5_attr_put_i32(&c, r->file, "/", "dp", dp) || !h5_attr_put_i32(&c, r->file, "/", "tp", tp) ||
        !h5_attr_put_str(&c, r->file, "/", "config", config_text) ||
        !append_restart(&c, r->file, last_step, world_size, dp, tp, config_text))
        return abandon(r, q);
    for (int k = 0; k < 2; k++)
        r->pad[k] = xmalloc(r->width[RUNREC_WORLD] * sizeof *r->pad[k]);
    close_datasets(r);
    if (!start_swmr(&c, r))
        return abandon(r, q);
    h5_quiet_end(q);
    return r;
}

/* Where the value of column col sits in a row struct: the scalar itself, or the
 * array a pointer field points at. */
static const void *value_of(const runrec_column_t *col, const void *row)
{
    const char *p = (const char *)row + col->row_off;
    return runrec_rank(col->width) == 1 ? (const void *)p : *(const void *const *)p;
}

/* Append one row of `group` from the row struct; /ranks rows padded to the file's width. */
static bool append_group(runlog_t *r, int group, int64_t step, const void *row)
{
    if (r->failed)
        return false;
    h5ctx_t c = ctx_of(r);
    if (r->rows[group] > 0 && step <= r->last_step[group]) /* the caller's mistake: nothing written */
        return h5_fail(&c, group == RUNREC_IN_METRICS ? "/metrics/step" : "/eval/step",
                       "step %lld is not after the last logged step %lld", (long long)step,
                       (long long)r->last_step[group]);
    h5_quiet_t q = h5_quiet_begin();
    bool ok = true;
    int n_pad = 0;
    for (size_t i = 0; i < RUNREC_N_COLUMNS && ok; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        if (col->group != group || !present(r, col))
            continue;
        const void *v = value_of(col, row);
        if (col->width == RUNREC_WORLD && v && r->pad[0] && r->world_now < r->width[RUNREC_WORLD]) {
            double *pad = r->pad[n_pad++ % 2];
            for (hsize_t k = 0; k < r->width[RUNREC_WORLD]; k++)
                pad[k] = k < r->world_now ? ((const double *)v)[k] : NAN;
            v = pad;
        }
        ok = h5_column_append(&c, r->ds[i], col->path, rank_of(col), r->rows[group],
                              r->width[col->width], col->i64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, v);
    }
    h5_quiet_end(q);
    if (!ok) {
        r->failed = true;
        return false;
    }
    r->rows[group]++;
    r->last_step[group] = step;
    return true;
}

const char *runlog_error(const runlog_t *r) { return r->failed ? r->error : NULL; }

bool runlog_append(runlog_t *r, const runlog_row_t *row)
{
    return append_group(r, RUNREC_IN_METRICS, row->step, row);
}

bool runlog_append_eval(runlog_t *r, const runlog_eval_t *ev)
{
    return append_group(r, RUNREC_IN_EVAL, ev->eval_step, ev);
}

bool runlog_set_attr_double(runlog_t *r, const char *name, double v)
{
    h5ctx_t c = ctx_of(r);
    h5_quiet_t q = h5_quiet_begin();
    bool ok = h5_attr_put_f64(&c, r->file, "/", name, v);
    r->failed |= !ok;
    h5_quiet_end(q);
    return ok;
}

bool runlog_set_attr_string(runlog_t *r, const char *name, const char *v)
{
    h5ctx_t c = ctx_of(r);
    h5_quiet_t q = h5_quiet_begin();
    bool ok = h5_attr_put_str(&c, r->file, "/", name, v);
    r->failed |= !ok;
    h5_quiet_end(q);
    return ok;
}

bool runlog_flush(runlog_t *r)
{
    if (r->failed)
        return false;
    h5ctx_t c = ctx_of(r);
    h5_quiet_t q = h5_quiet_begin();
    bool ok = H5Fflush(r->file, H5F_SCOPE_LOCAL) >= 0 || h5_fail(&c, "/", "cannot flush (disk full?)");
    r->failed |= !ok;
    h5_quiet_end(q);
    return ok;
}

void runlog_close(runlog_t *r)
{
    if (!r)
        return;
    h5ctx_t c = ctx_of(r);
    h5_quiet_t q = h5_quiet_begin();
    close_datasets(r);
    h5_file_close(&c, r->file);
    h5_quiet_end(q);
    free(r->pad[0]);
    free(r->pad[1]);
    free(r);
}
