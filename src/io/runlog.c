/* The run record writer (DESIGN.md §6, docs/run-record.md): one HDF5 file per run,
 * written by world rank 0 alone with the sec2 driver and latest-format bounds; every
 * object is created first, then SWMR appends of one row per logged step. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/provenance.h"
#include "motscale/runlog.h"

/* Rows per chunk: a run logs hundreds to tens of thousands of rows; 256 rows of
 * doubles is 2 KiB per 1-D chunk, so one append touches one small chunk and the
 * chunk index stays short. */
#define CHUNK_ROWS 256

/* The h5clear -s switch: a file-access property that H5Fopen honours by zeroing the
 * superblock status flags a killed writer left set. HDF5 1.10 has no documented
 * call for it; h5clear sets this same property (see docs/run-record.md). */
#define CLEAR_STATUS_FLAGS_PROP "clear_status_flags"

enum width { W_ONE, W_MOD, W_WORLD };

typedef struct column {
    const char *path;
    int is_i64; /* int64, else float64 */
    int width;  /* enum width: columns of the second dimension */
} column_t;

/* One row of these is written per runlog_append, in this order (/ranks shares the
 * row count of /metrics: one row per logged step). */
static const column_t METRICS[] = {
    {"/metrics/step", 1, W_ONE},           {"/metrics/tokens", 1, W_ONE},
    {"/metrics/flops", 0, W_ONE},          {"/metrics/gemm_flops", 0, W_ONE},
    {"/metrics/wall_time", 0, W_ONE},      {"/metrics/loss", 0, W_ONE},
    {"/metrics/lr", 0, W_ONE},             {"/metrics/grad_norm", 0, W_ONE},
    {"/metrics/step_time", 0, W_ONE},      {"/metrics/compute_time", 0, W_ONE},
    {"/metrics/comm_time", 0, W_ONE},      {"/metrics/io_time", 0, W_ONE},
    {"/metrics/loss_by_modality", 0, W_MOD}, {"/metrics/tokens_by_modality", 1, W_MOD},
    {"/ranks/step_time", 0, W_WORLD},      {"/ranks/comm_time", 0, W_WORLD},
};
#define N_METRICS (sizeof METRICS / sizeof METRICS[0])

static const column_t EVAL[] = {
    {"/eval/step", 1, W_ONE},     {"/eval/flops", 0, W_ONE},
    {"/eval/wall_time", 0, W_ONE}, {"/eval/loss", 0, W_ONE},
    {"/eval/loss_by_modality", 0, W_MOD},
};
#define N_EVAL (sizeof EVAL / sizeof EVAL[0])

static const char *const GROUPS[] = {"/model", "/metrics", "/eval", "/ranks"};

struct runlog {
    hid_t file;
    char path[CFG_PATH_LEN];
    hsize_t width[3];               /* by enum width: 1, n_modalities, world_size */
    hid_t metrics[N_METRICS], eval[N_EVAL];
    hsize_t n_metrics, n_eval;      /* rows written */
    int64_t last_step, last_eval_step;
    hsize_t world_now;              /* ranks of this writer's job (<= width[W_WORLD]) */
    double *rank_pad;               /* width[W_WORLD] values: a /ranks row, NaN-padded */
};

/* Where a failure is reported: the err buffer of create/reopen, or a warning. */
typedef struct ctx {
    const char *path;
    char *err;
    size_t errlen;
} ctx_t;

/* The innermost HDF5 message (the one that says what actually went wrong). */
static herr_t first_error(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc)
        snprintf((char *)data, 256, "%s", e->desc);
    return 0;
}

/* "PATH: OBJECT: what (HDF5: detail)", into err or as a warning. */
__attribute__((format(printf, 3, 4))) static void fail(const ctx_t *c, const char *obj,
                                                      const char *fmt, ...)
{
    char what[512], detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_error, detail);
    H5Eclear2(H5E_DEFAULT);
    char msg[1024];
    if (detail[0])
        snprintf(msg, sizeof msg, "%s: %s: %s (HDF5: %s)", c->path, obj, what, detail);
    else
        snprintf(msg, sizeof msg, "%s: %s: %s", c->path, obj, what);
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s", msg);
    else
        warnf("%s", msg);
}

/* Variable-length UTF-8 string type (h5py reads it as str). */
static hid_t str_type(const ctx_t *c, const char *obj)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) {
        fail(c, obj, "cannot create string type");
        return -1;
    }
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        fail(c, obj, "cannot make string type variable-length UTF-8");
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Write attribute `name` of object `objpath` (open as loc), replacing any old one.
 * n == 0: scalar; else a 1-D array of n. */
static bool attr_put(const ctx_t *c, hid_t loc, const char *objpath, const char *name,
                     hid_t ftype, hid_t mtype, hsize_t n, const void *buf)
{
    char obj[256];
    snprintf(obj, sizeof obj, "%s@%s", objpath, name);
    htri_t exists = H5Aexists(loc, name);
    if (exists < 0) {
        fail(c, obj, "cannot check whether the attribute exists");
        return false;
    }
    if (exists > 0 && H5Adelete(loc, name) < 0) {
        fail(c, obj, "cannot replace the attribute");
        return false;
    }
    hid_t space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    if (space < 0) {
        fail(c, obj, "cannot create dataspace");
        return false;
    }
    bool ok = false;
    hid_t a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        fail(c, obj, "cannot create attribute");
    else if (H5Awrite(a, mtype, buf) < 0)
        fail(c, obj, "cannot write attribute");
    else
        ok = true;
    if (a >= 0 && H5Aclose(a) < 0 && ok) {
        fail(c, obj, "cannot close attribute");
        ok = false;
    }
    H5Sclose(space);
    return ok;
}

static bool attr_str(const ctx_t *c, hid_t loc, const char *objpath, const char *name,
                     const char *v)
{
    char obj[256];
    snprintf(obj, sizeof obj, "%s@%s", objpath, name);
    hid_t t = str_type(c, obj);
    if (t < 0)
        return false;
    const char *p = v ? v : "";
    bool ok = attr_put(c, loc, objpath, name, t, t, 0, &p);
    H5Tclose(t);
    return ok;
}

static bool attr_i32(const ctx_t *c, hid_t loc, const char *objpath, const char *name,
                     int32_t v)
{
    return attr_put(c, loc, objpath, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, &v);
}

static bool attr_i64(const ctx_t *c, hid_t loc, const char *objpath, const char *name,
                     int64_t v)
{
    return attr_put(c, loc, objpath, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
}

static bool attr_f64(const ctx_t *c, hid_t loc, const char *objpath, const char *name,
                     double v)
{
    return attr_put(c, loc, objpath, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v);
}

/* Slurm variables of this job into the root attributes (create and reopen). */
static bool write_slurm(const ctx_t *c, hid_t file)
{
    provenance_slurm_t s;
    provenance_slurm(&s);
    return attr_str(c, file, "/", "slurm_job_id", s.job_id) &&
           attr_str(c, file, "/", "slurm_array_job_id", s.array_job_id) &&
           attr_str(c, file, "/", "slurm_array_task_id", s.array_task_id) &&
           attr_i32(c, file, "/", "slurm_restart_count", s.restart_count);
}

static bool write_root_attrs(const ctx_t *c, hid_t file, const runlog_meta_t *m)
{
    const config_t *cfg = m->cfg;
    char created[64], h5v[64], mpiv[1024], blas[512];
    provenance_utc_now(created, sizeof created);
    provenance_hdf5_version(h5v, sizeof h5v);
    if (!m->mpi_library_version)
        provenance_mpi_library_version(mpiv, sizeof mpiv);
    if (!m->blas)
        provenance_blas(blas, sizeof blas);
    char *ini = m->config_text ? NULL : config_to_ini(cfg);
    bool ok =
        attr_i32(c, file, "/", "schema_version", RUNLOG_SCHEMA_VERSION) &&
        attr_str(c, file, "/", "motscale_version", MOTSCALE_VERSION) &&
        attr_str(c, file, "/", "git_commit", provenance_git_commit()) &&
        attr_str(c, file, "/", "created_utc", created) &&
        attr_str(c, file, "/", "config", m->config_text ? m->config_text : ini) &&
        attr_str(c, file, "/", "experiment", cfg->experiment) &&
        attr_str(c, file, "/", "run_name", cfg->name) &&
        attr_i32(c, file, "/", "world_size", m->world_size) &&
        attr_i32(c, file, "/", "dp", m->dp) && attr_i32(c, file, "/", "tp", m->tp) &&
        attr_str(c, file, "/", "tp_backend",
                 cfg->tp_backend == TP_SCALAPACK ? "scalapack" : "megatron") &&
        attr_str(c, file, "/", "hostnames", m->hostnames ? m->hostnames : "unknown") &&
        attr_str(c, file, "/", "mpi_library_version",
                 m->mpi_library_version ? m->mpi_library_version : mpiv) &&
        attr_str(c, file, "/", "hdf5_version", h5v) &&
        attr_str(c, file, "/", "blas", m->blas ? m->blas : blas) &&
        write_slurm(c, file) &&
        attr_f64(c, file, "/", "peak_flops_per_rank", m->peak_flops_per_rank) &&
        attr_str(c, file, "/", "peak_flops_source",
                 m->peak_flops_source ? m->peak_flops_source : "unknown");
    free(ini);
    return ok;
}

static const char *kind_name(const runlog_meta_t *m)
{
    if (m->kind)
        return m->kind;
    switch (m->cfg->kind) {
    case MODEL_MOT:
        return "mot";
    case MODEL_TOWERS:
        return "towers";
    default:
        return "dense";
    }
}

static bool write_model_attrs(const ctx_t *c, hid_t g, const runlog_meta_t *m)
{
    const config_t *cfg = m->cfg;
    hsize_t nm = (hsize_t)cfg->n_modalities;
    const char *names[CFG_MAX_MODALITIES];
    int32_t tower_of[CFG_MAX_MODALITIES];
    for (int i = 0; i < cfg->n_modalities; i++) {
        names[i] = cfg->modality_names[i];
        tower_of[i] = cfg->tower_of[i];
    }
    hid_t st = str_type(c, "/model@modality_names");
    if (st < 0)
        return false;
    bool ok = attr_str(c, g, "/model", "kind", kind_name(m)) &&
              attr_i32(c, g, "/model", "d_model", cfg->d_model) &&
              attr_i32(c, g, "/model", "n_layers", cfg->n_layers) &&
              attr_i32(c, g, "/model", "n_heads", cfg->n_heads) &&
              attr_i32(c, g, "/model", "d_ff", cfg->d_ff) &&
              attr_i32(c, g, "/model", "seq_len", cfg->seq_len) &&
              attr_i32(c, g, "/model", "vocab_size", m->vocab_size) &&
              attr_put(c, g, "/model", "modality_names", st, st, nm, names) &&
              attr_put(c, g, "/model", "tower_of", H5T_STD_I32LE, H5T_NATIVE_INT32, nm,
                       tower_of) &&
              attr_i32(c, g, "/model", "n_towers", cfg->n_towers) &&
              attr_i64(c, g, "/model", "params_total", m->params_total) &&
              attr_i64(c, g, "/model", "params_active_per_token",
                       m->params_active_per_token) &&
              attr_f64(c, g, "/model", "flops_per_token", m->flops_per_token);
    H5Tclose(st);
    return ok;
}

/* An empty extendible dataset: (0) or (0, width), unlimited rows, chunked. */
static bool create_column(const ctx_t *c, hid_t file, const column_t *col, hsize_t width)
{
    int rank = col->width == W_ONE ? 1 : 2;
    /* /ranks may widen when a resumed run has more ranks; missing ranks read NaN */
    hsize_t dims[2] = {0, width},
            maxdims[2] = {H5S_UNLIMITED, col->width == W_WORLD ? H5S_UNLIMITED : width};
    hsize_t chunk[2] = {CHUNK_ROWS, width};
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    if (space < 0) {
        fail(c, col->path, "cannot create dataspace");
        return false;
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) {
        fail(c, col->path, "cannot create dataset property list");
        H5Sclose(space);
        return false;
    }
    bool ok = false;
    hid_t d = -1;
    const double nan = NAN;
    if (H5Pset_chunk(dcpl, rank, chunk) < 0)
        fail(c, col->path, "cannot set chunk size");
    else if (!col->is_i64 && H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan) < 0)
        fail(c, col->path, "cannot set the fill value");
    else if ((d = H5Dcreate2(file, col->path, col->is_i64 ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                             space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        fail(c, col->path, "cannot create dataset");
    else if (H5Dclose(d) < 0)
        fail(c, col->path, "cannot close dataset");
    else
        ok = true;
    H5Pclose(dcpl);
    H5Sclose(space);
    return ok;
}

static hid_t file_access(const ctx_t *c, bool clear_flags)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) {
        fail(c, "/", "cannot create file access property list");
        return -1;
    }
    /* SWMR needs the latest format. File locking stays on, but a file system
     * without flock (some NFS and Lustre mounts) does not stop the run. */
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0) {
        fail(c, "/", "cannot set latest-format bounds");
        H5Pclose(fapl);
        return -1;
    }
    if (H5Pset_file_locking(fapl, true, true) < 0) {
        fail(c, "/", "cannot set file locking");
        H5Pclose(fapl);
        return -1;
    }
    /* HDF5 1.10.8 registers the property in every file access list (so H5Pset);
     * builds that do not get it inserted, as h5clear does. */
    hbool_t yes = true;
    htri_t known = clear_flags ? H5Pexist(fapl, CLEAR_STATUS_FLAGS_PROP) : 0;
    if (known < 0 ||
        (clear_flags && known > 0 && H5Pset(fapl, CLEAR_STATUS_FLAGS_PROP, &yes) < 0) ||
        (clear_flags && known == 0 &&
         H5Pinsert2(fapl, CLEAR_STATUS_FLAGS_PROP, sizeof yes, &yes, NULL, NULL, NULL, NULL,
                    NULL, NULL) < 0)) {
        fail(c, "/", "cannot request clearing the superblock status flags");
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static void close_datasets(runlog_t *r)
{
    for (size_t i = 0; i < N_METRICS; i++)
        if (r->metrics[i] >= 0 && H5Dclose(r->metrics[i]) < 0)
            warnf("%s: %s: cannot close dataset", r->path, METRICS[i].path);
    for (size_t i = 0; i < N_EVAL; i++)
        if (r->eval[i] >= 0 && H5Dclose(r->eval[i]) < 0)
            warnf("%s: %s: cannot close dataset", r->path, EVAL[i].path);
    for (size_t i = 0; i < N_METRICS; i++)
        r->metrics[i] = -1;
    for (size_t i = 0; i < N_EVAL; i++)
        r->eval[i] = -1;
    H5Eclear2(H5E_DEFAULT);
}

static bool open_datasets(const ctx_t *c, runlog_t *r)
{
    for (size_t i = 0; i < N_METRICS; i++)
        if ((r->metrics[i] = H5Dopen2(r->file, METRICS[i].path, H5P_DEFAULT)) < 0) {
            fail(c, METRICS[i].path, "cannot open dataset");
            return false;
        }
    for (size_t i = 0; i < N_EVAL; i++)
        if ((r->eval[i] = H5Dopen2(r->file, EVAL[i].path, H5P_DEFAULT)) < 0) {
            fail(c, EVAL[i].path, "cannot open dataset");
            return false;
        }
    return true;
}

static runlog_t *runlog_new(const char *path)
{
    runlog_t *r = xcalloc(1, sizeof *r);
    r->file = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    for (size_t i = 0; i < N_METRICS; i++)
        r->metrics[i] = -1;
    for (size_t i = 0; i < N_EVAL; i++)
        r->eval[i] = -1;
    r->last_step = r->last_eval_step = INT64_MIN;
    return r;
}

/* Release everything after a failed create/reopen; err already holds the message. */
static runlog_t *abandon(runlog_t *r)
{
    close_datasets(r);
    if (r->file >= 0)
        H5Fclose(r->file);
    H5Eclear2(H5E_DEFAULT);
    free(r->rank_pad);
    free(r);
    return NULL;
}

/* SWMR from here on: objects can only grow; readers may follow the file live. */
static bool start_swmr(const ctx_t *c, runlog_t *r)
{
    if (H5Fstart_swmr_write(r->file) < 0) {
        fail(c, "/", "cannot start SWMR writing");
        return false;
    }
    return open_datasets(c, r);
}

runlog_t *runlog_create(const char *path, const runlog_meta_t *meta, char *err, size_t errlen)
{
    ctx_t c = {path, err, errlen};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our one line, not HDF5's stack */
    const config_t *cfg = meta ? meta->cfg : NULL;
    if (!cfg || cfg->n_modalities < 1 || cfg->n_modalities > CFG_MAX_MODALITIES ||
        meta->world_size < 1) {
        fail(&c, "/", "bad metadata (config %s, %d modalities, world size %d)",
             cfg ? "given" : "missing", cfg ? cfg->n_modalities : 0,
             meta ? meta->world_size : 0);
        return NULL;
    }
    if (access(path, F_OK) == 0) {
        fail(&c, "/", "file exists; a new run record is never written over an old one");
        return NULL;
    }

    runlog_t *r = runlog_new(path);
    r->width[W_ONE] = 1;
    r->width[W_MOD] = (hsize_t)cfg->n_modalities;
    r->width[W_WORLD] = (hsize_t)meta->world_size;
    r->world_now = r->width[W_WORLD];

    hid_t fapl = file_access(&c, false);
    if (fapl < 0)
        return abandon(r);
    /* fail() before any other HDF5 call: each call clears the error stack. */
    r->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (r->file < 0)
        fail(&c, "/", "cannot create file");
    H5Pclose(fapl);
    if (r->file < 0)
        return abandon(r);
    if (!write_root_attrs(&c, r->file, meta))
        return abandon(r);
    for (size_t i = 0; i < sizeof GROUPS / sizeof GROUPS[0]; i++) {
        hid_t g = H5Gcreate2(r->file, GROUPS[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            fail(&c, GROUPS[i], "cannot create group");
            return abandon(r);
        }
        bool ok = i > 0 || write_model_attrs(&c, g, meta);
        if (H5Gclose(g) < 0 && ok) {
            fail(&c, GROUPS[i], "cannot close group");
            ok = false;
        }
        if (!ok)
            return abandon(r);
    }
    for (size_t i = 0; i < N_METRICS; i++)
        if (!create_column(&c, r->file, &METRICS[i], r->width[METRICS[i].width]))
            return abandon(r);
    for (size_t i = 0; i < N_EVAL; i++)
        if (!create_column(&c, r->file, &EVAL[i], r->width[EVAL[i].width]))
            return abandon(r);
    if (!start_swmr(&c, r))
        return abandon(r);
    return r;
}

/* Rows of an open dataset, and its second dimension (1 for 1-D). */
static bool column_shape(const ctx_t *c, hid_t d, const char *obj, hsize_t *rows,
                         hsize_t *width)
{
    hsize_t dims[2] = {0, 1};
    hid_t s = H5Dget_space(d);
    if (s < 0) {
        fail(c, obj, "cannot get dataspace");
        return false;
    }
    int rank = H5Sget_simple_extent_ndims(s);
    if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
        fail(c, obj, "unexpected shape (rank %d)", rank);
        H5Sclose(s);
        return false;
    }
    H5Sclose(s);
    *rows = dims[0];
    *width = rank == 2 ? dims[1] : 1;
    return true;
}

/* How many leading rows of a group to keep: no more than the shortest column (a
 * writer killed mid-append may have grown some columns and not others), and only
 * rows whose step is <= last_step and strictly increasing (a grown but unwritten
 * row reads as step 0). Sets *last to the last kept step. */
static bool rows_to_keep(const ctx_t *c, const hid_t *ds, const column_t *cols, size_t ncol,
                         const hsize_t *want_width, int64_t last_step, hsize_t *keep,
                         int64_t *last)
{
    hsize_t n = (hsize_t)-1;
    for (size_t i = 0; i < ncol; i++) {
        hsize_t rows, width;
        if (!column_shape(c, ds[i], cols[i].path, &rows, &width))
            return false;
        if (width != want_width[cols[i].width]) {
            fail(c, cols[i].path, "has %llu columns, expected %llu",
                 (unsigned long long)width, (unsigned long long)want_width[cols[i].width]);
            return false;
        }
        if (rows < n)
            n = rows;
    }
    *keep = 0;
    *last = INT64_MIN;
    if (n == 0)
        return true;
    int64_t *step = xmalloc((size_t)n * sizeof *step);
    hid_t fs = H5Dget_space(ds[0]), ms = H5Screate_simple(1, &n, NULL);
    hsize_t start = 0;
    bool ok = fs >= 0 && ms >= 0 &&
              H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &n, NULL) >= 0 &&
              H5Dread(ds[0], H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, step) >= 0;
    if (!ok)
        fail(c, cols[0].path, "cannot read %llu rows", (unsigned long long)n);
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    while (ok && *keep < n && step[*keep] <= last_step && (*keep == 0 || step[*keep] > *last))
        *last = step[(*keep)++];
    free(step);
    return ok;
}

static bool set_rows(const ctx_t *c, hid_t d, const column_t *col, hsize_t rows,
                     hsize_t width)
{
    hsize_t dims[2] = {rows, width};
    if (H5Dset_extent(d, dims) < 0) {
        fail(c, col->path, "cannot resize to %llu rows", (unsigned long long)rows);
        return false;
    }
    return true;
}

runlog_t *runlog_reopen(const char *path, int64_t last_step, int world_size, int dp, int tp,
                        char *err, size_t errlen)
{
    ctx_t c = {path, err, errlen};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (access(path, F_OK) != 0) {
        fail(&c, "/", "cannot reopen: %s", strerror(errno));
        return NULL;
    }
    runlog_t *r = runlog_new(path);
    /* The previous writer is gone (the job was requeued or restarted), so the
     * status flags it may have left are stale: clear them as h5clear -s would. */
    hid_t fapl = file_access(&c, true);
    if (fapl < 0)
        return abandon(r);
    r->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    if (r->file < 0)
        fail(&c, "/", "cannot open for appending");
    H5Pclose(fapl);
    if (r->file < 0)
        return abandon(r);

    int32_t version = 0;
    hid_t a = H5Aopen(r->file, "schema_version", H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT32, &version) < 0) {
        fail(&c, "/@schema_version", "cannot read; not a motscale run record?");
        if (a >= 0)
            H5Aclose(a);
        return abandon(r);
    }
    H5Aclose(a);
    if (version != RUNLOG_SCHEMA_VERSION) {
        fail(&c, "/@schema_version", "is %d, this motscale writes %d", (int)version,
             RUNLOG_SCHEMA_VERSION);
        return abandon(r);
    }

    if (!open_datasets(&c, r))
        return abandon(r);
    /* Modalities and world size come from the file: the first 2-D column of each. */
    r->width[W_ONE] = 1;
    for (size_t i = 0; i < N_METRICS; i++) {
        hsize_t rows, w;
        if (METRICS[i].width == W_ONE || r->width[METRICS[i].width])
            continue;
        if (!column_shape(&c, r->metrics[i], METRICS[i].path, &rows, &w))
            return abandon(r);
        r->width[METRICS[i].width] = w;
    }

    if (!rows_to_keep(&c, r->metrics, METRICS, N_METRICS, r->width, last_step, &r->n_metrics,
                      &r->last_step) ||
        !rows_to_keep(&c, r->eval, EVAL, N_EVAL, r->width, last_step, &r->n_eval,
                      &r->last_eval_step))
        return abandon(r);
    for (size_t i = 0; i < N_METRICS; i++)
        if (!set_rows(&c, r->metrics[i], &METRICS[i], r->n_metrics, r->width[METRICS[i].width]))
            return abandon(r);
    for (size_t i = 0; i < N_EVAL; i++)
        if (!set_rows(&c, r->eval[i], &EVAL[i], r->n_eval, r->width[EVAL[i].width]))
            return abandon(r);
    if (!write_slurm(&c, r->file))
        return abandon(r);
    /* A resume may run at another layout: the root attributes give the current
     * one, /ranks grows to the largest world seen (NaN where a rank did not exist). */
    r->world_now = (hsize_t)world_size;
    if (r->world_now > r->width[W_WORLD]) {
        for (size_t i = 0; i < N_METRICS; i++)
            if (METRICS[i].width == W_WORLD &&
                !set_rows(&c, r->metrics[i], &METRICS[i], r->n_metrics, r->world_now))
                return abandon(r);
        r->width[W_WORLD] = r->world_now;
    }
    if (!attr_i32(&c, r->file, "/", "world_size", world_size) || !attr_i32(&c, r->file, "/", "dp", dp) ||
        !attr_i32(&c, r->file, "/", "tp", tp))
        return abandon(r);
    r->rank_pad = xmalloc(r->width[W_WORLD] * sizeof *r->rank_pad);

    close_datasets(r);
    if (!start_swmr(&c, r))
        return abandon(r);
    return r;
}

/* Grow d by one row and write buf (width values of mtype) into it. */
static bool append_one(const ctx_t *c, hid_t d, const column_t *col, hsize_t row,
                       hsize_t width, const void *buf)
{
    int rank = col->width == W_ONE ? 1 : 2;
    hsize_t dims[2] = {row + 1, width}, start[2] = {row, 0}, count[2] = {1, width};
    if (!buf) {
        fail(c, col->path, "no values given for row %llu", (unsigned long long)row);
        return false;
    }
    if (H5Dset_extent(d, dims) < 0) {
        fail(c, col->path, "cannot extend to %llu rows", (unsigned long long)row + 1);
        return false;
    }
    hid_t fs = H5Dget_space(d);
    if (fs < 0) {
        fail(c, col->path, "cannot get dataspace");
        return false;
    }
    hid_t ms = H5Screate_simple(rank, count, NULL);
    bool ok = false;
    if (ms < 0)
        fail(c, col->path, "cannot create memory dataspace");
    else if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
        fail(c, col->path, "cannot select row %llu", (unsigned long long)row);
    else if (H5Dwrite(d, col->is_i64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, ms, fs,
                      H5P_DEFAULT, buf) < 0)
        fail(c, col->path, "cannot write row %llu", (unsigned long long)row);
    else
        ok = true;
    if (ms >= 0)
        H5Sclose(ms);
    H5Sclose(fs);
    return ok;
}

bool runlog_append(runlog_t *r, const runlog_row_t *row)
{
    ctx_t c = {r->path, NULL, 0};
    if (r->n_metrics > 0 && row->step <= r->last_step) {
        fail(&c, "/metrics/step", "step %lld is not after the last logged step %lld",
             (long long)row->step, (long long)r->last_step);
        return false;
    }
    /* Same order as METRICS[]; /ranks rows padded to the file's width. */
    const double *rank_step = row->rank_step_time, *rank_comm = row->rank_comm_time;
    double *pad_comm = NULL;
    if (r->rank_pad && r->world_now < r->width[W_WORLD] && rank_step && rank_comm) {
        pad_comm = xmalloc(r->width[W_WORLD] * sizeof *pad_comm);
        for (hsize_t k = 0; k < r->width[W_WORLD]; k++) {
            r->rank_pad[k] = k < r->world_now ? rank_step[k] : NAN;
            pad_comm[k] = k < r->world_now ? rank_comm[k] : NAN;
        }
        rank_step = r->rank_pad;
        rank_comm = pad_comm;
    }
    const void *src[N_METRICS] = {
        &row->step,         &row->tokens,           &row->flops,
        &row->gemm_flops,   &row->wall_time,        &row->loss,
        &row->lr,           &row->grad_norm,        &row->step_time,
        &row->compute_time, &row->comm_time,        &row->io_time,
        row->loss_by_modality, row->tokens_by_modality, rank_step, rank_comm,
    };
    bool ok = true;
    for (size_t i = 0; i < N_METRICS && ok; i++)
        ok = append_one(&c, r->metrics[i], &METRICS[i], r->n_metrics, r->width[METRICS[i].width],
                        src[i]);
    free(pad_comm);
    if (!ok)
        return false;
    r->n_metrics++;
    r->last_step = row->step;
    return true;
}

bool runlog_append_eval(runlog_t *r, const runlog_eval_t *ev)
{
    ctx_t c = {r->path, NULL, 0};
    if (r->n_eval > 0 && ev->step <= r->last_eval_step) {
        fail(&c, "/eval/step", "step %lld is not after the last evaluated step %lld",
             (long long)ev->step, (long long)r->last_eval_step);
        return false;
    }
    const void *src[N_EVAL] = {&ev->step, &ev->flops, &ev->wall_time, &ev->loss,
                               ev->loss_by_modality};
    for (size_t i = 0; i < N_EVAL; i++)
        if (!append_one(&c, r->eval[i], &EVAL[i], r->n_eval, r->width[EVAL[i].width], src[i]))
            return false;
    r->n_eval++;
    r->last_eval_step = ev->step;
    return true;
}

bool runlog_set_attr_double(runlog_t *r, const char *name, double v)
{
    ctx_t c = {r->path, NULL, 0};
    return attr_f64(&c, r->file, "/", name, v);
}

bool runlog_set_attr_string(runlog_t *r, const char *name, const char *v)
{
    ctx_t c = {r->path, NULL, 0};
    return attr_str(&c, r->file, "/", name, v);
}

bool runlog_flush(runlog_t *r)
{
    ctx_t c = {r->path, NULL, 0};
    if (H5Fflush(r->file, H5F_SCOPE_LOCAL) < 0) {
        fail(&c, "/", "cannot flush");
        return false;
    }
    return true;
}

void runlog_close(runlog_t *r)
{
    if (!r)
        return;
    ctx_t c = {r->path, NULL, 0};
    close_datasets(r);
    if (r->file >= 0 && H5Fclose(r->file) < 0)
        fail(&c, "/", "cannot close file; rows since the last flush may be lost");
    free(r->rank_pad);
    free(r);
}
