/* Reads one run record (run.h5, docs/run-record.md) into memory for analysis:
 * attributes of / and /model, the /metrics and /eval columns. Every HDF5 call is
 * checked and a failure names the file and the object. */
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

typedef struct reader {
    const char *path;
    hid_t file;
    char *err;
    size_t errlen;
    bool failed;
} reader_t;

static bool fail(reader_t *r, const char *object, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(reader_t *r, const char *object, const char *fmt, ...)
{
    if (r->failed)
        return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s: %s", r->path, object, msg);
    r->failed = true;
    return false;
}

static bool attr_exists(reader_t *r, hid_t obj, const char *object, const char *name)
{
    htri_t e = H5Aexists(obj, name);
    if (e < 0)
        return fail(r, object, "cannot check for attribute '%s'", name);
    return e > 0;
}

/* A string attribute, fixed-length or variable-length, into out. */
static bool read_attr_string(reader_t *r, hid_t obj, const char *object, const char *name,
                             char *out, size_t outlen, char **dup)
{
    char where[256];
    snprintf(where, sizeof where, "%s attribute '%s'", object, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return fail(r, where, "missing");
    hid_t t = H5Aget_type(a);
    bool ok = false;
    if (t < 0 || H5Tget_class(t) != H5T_STRING) {
        fail(r, where, "not a string");
    } else if (H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        char *s = NULL;
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
            H5Tset_cset(mt, H5Tget_cset(t)) < 0 || H5Aread(a, mt, &s) < 0) {
            fail(r, where, "cannot read");
        } else {
            const char *v = s ? s : "";
            if (dup) {
                *dup = strdup(v);
                if (!*dup)
                    DIE(EXIT_FAULT, "out of memory copying %s", where);
            } else {
                snprintf(out, outlen, "%s", v);
            }
            H5free_memory(s);
            ok = true;
        }
        if (mt >= 0)
            H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        char *buf = xcalloc(sz + 1, 1);
        hid_t mt = H5Tcopy(t);
        if (mt < 0 || H5Aread(a, mt, buf) < 0) {
            fail(r, where, "cannot read");
            free(buf);
        } else if (dup) {
            *dup = buf;
            ok = true;
        } else {
            snprintf(out, outlen, "%s", buf);
            free(buf);
            ok = true;
        }
        if (mt >= 0)
            H5Tclose(mt);
    }
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* A numeric attribute of `count` elements converted to mem_type. */
static bool read_attr_num(reader_t *r, hid_t obj, const char *object, const char *name,
                          hid_t mem_type, void *out, size_t count)
{
    char where[256];
    snprintf(where, sizeof where, "%s attribute '%s'", object, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return fail(r, where, "missing");
    hid_t sp = H5Aget_space(a);
    hssize_t npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    bool ok = false;
    if (npts < 0)
        fail(r, where, "cannot read its dataspace");
    else if ((size_t)npts != count)
        fail(r, where, "has %lld elements, expected %zu", (long long)npts, count);
    else if (H5Aread(a, mem_type, out) < 0)
        fail(r, where, "cannot read as a number");
    else
        ok = true;
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return ok;
}

/* modality_names: a 1-D array of strings (variable or fixed length). */
static bool read_mod_names(reader_t *r, hid_t model, analysis_run_t *run)
{
    const char *where = "/model attribute 'modality_names'";
    hid_t a = H5Aopen(model, "modality_names", H5P_DEFAULT);
    if (a < 0)
        return fail(r, where, "missing");
    hid_t sp = H5Aget_space(a), t = H5Aget_type(a);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    bool ok = false;
    if (n < 1 || n > ANALYSIS_MAX_MOD || t < 0 || H5Tget_class(t) != H5T_STRING) {
        fail(r, where, "expected 1 to %d strings", ANALYSIS_MAX_MOD);
    } else if (H5Tis_variable_str(t) > 0) {
        char *s[ANALYSIS_MAX_MOD] = {0};
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
            H5Tset_cset(mt, H5Tget_cset(t)) < 0 || H5Aread(a, mt, s) < 0) {
            fail(r, where, "cannot read");
        } else {
            for (hssize_t i = 0; i < n; i++) {
                snprintf(run->mod_names[i], ANALYSIS_NAME_LEN, "%s", s[i] ? s[i] : "");
                H5free_memory(s[i]);
            }
            ok = true;
        }
        if (mt >= 0)
            H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        char *buf = xcalloc((size_t)n, sz + 1);
        hid_t mt = H5Tcopy(t);
        if (mt < 0 || H5Aread(a, mt, buf) < 0) {
            fail(r, where, "cannot read");
        } else {
            for (hssize_t i = 0; i < n; i++) {
                size_t len = strnlen(buf + (size_t)i * sz, sz);
                if (len >= ANALYSIS_NAME_LEN)
                    len = ANALYSIS_NAME_LEN - 1;
                memcpy(run->mod_names[i], buf + (size_t)i * sz, len);
                run->mod_names[i][len] = '\0';
            }
            ok = true;
        }
        if (mt >= 0)
            H5Tclose(mt);
        free(buf);
    }
    run->n_mod = ok ? (int)n : 0;
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return ok;
}

/* Rows (first dimension) of dataset `name`, and its columns (1 for 1-D). */
static bool dset_shape(reader_t *r, const char *name, hsize_t *rows, hsize_t *cols)
{
    hid_t d = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (d < 0)
        return fail(r, name, "missing dataset");
    hid_t sp = H5Dget_space(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[2] = {0, 1};
    bool ok = false;
    if (rank < 1 || rank > 2)
        fail(r, name, "expected a 1-D or 2-D dataset");
    else if (H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        fail(r, name, "cannot read its dimensions");
    else
        ok = true;
    *rows = dims[0];
    *cols = rank == 2 ? dims[1] : 1;
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    return ok;
}

/* The first `rows` rows (all `cols` columns) of dataset name into a new buffer. */
static void *read_rows(reader_t *r, const char *name, hid_t mem_type, size_t elem,
                       hsize_t rows, hsize_t cols)
{
    void *buf = xcalloc((size_t)(rows * cols) + 1, elem);
    if (rows == 0)
        return buf;
    hid_t d = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (d < 0) {
        fail(r, name, "missing dataset");
        return buf;
    }
    /* SWMR: the writer may have appended since the file was opened. */
    if (H5Drefresh(d) < 0)
        fail(r, name, "cannot refresh");
    hid_t fs = H5Dget_space(d);
    int rank = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    hsize_t start[2] = {0, 0}, count[2] = {rows, cols};
    hid_t ms = H5Screate_simple(rank, count, NULL);
    if (fs < 0 || ms < 0 || rank < 1 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
        fail(r, name, "cannot select %llu rows", (unsigned long long)rows);
    else if (H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf) < 0)
        fail(r, name, "cannot read %llu rows", (unsigned long long)rows);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    H5Dclose(d);
    return buf;
}

static bool link_exists(reader_t *r, const char *name)
{
    htri_t e = H5Lexists(r->file, name, H5P_DEFAULT);
    if (e < 0)
        return fail(r, name, "cannot check whether it exists");
    return e > 0;
}

static hid_t open_readonly(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
#if H5_VERSION_GE(1, 10, 7)
    /* A live writer holds the lock; SWMR readers do not need it. */
    H5Pset_file_locking(fapl, false, true);
#endif
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    if (f < 0)
        f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

static const char *metric_cols[] = {"/metrics/flops",     "/metrics/wall_time",
                                    "/metrics/loss",      "/metrics/step_time",
                                    "/metrics/compute_time", "/metrics/comm_time",
                                    "/metrics/io_time"};

static void load_metrics(reader_t *r, analysis_run_t *run)
{
    hsize_t rows, cols, n = 0;
    const char *all[] = {"/metrics/step", "/metrics/tokens", "/metrics/loss_by_modality"};
    bool first = true;
    for (size_t i = 0; i < 3 + sizeof metric_cols / sizeof metric_cols[0] && !r->failed; i++) {
        const char *name = i < 3 ? all[i] : metric_cols[i - 3];
        if (!dset_shape(r, name, &rows, &cols))
            return;
        if (i == 2 && cols != (hsize_t)run->n_mod) {
            fail(r, name, "has %llu columns but /model lists %d modalities",
                 (unsigned long long)cols, run->n_mod);
            return;
        }
        if (first || rows < n)
            n = rows;
        first = false;
    }
    run->n = (size_t)n;
    run->step = read_rows(r, "/metrics/step", H5T_NATIVE_INT64, sizeof(int64_t), n, 1);
    run->tokens = read_rows(r, "/metrics/tokens", H5T_NATIVE_INT64, sizeof(int64_t), n, 1);
    double **dst[] = {&run->flops,        &run->wall_time, &run->loss,   &run->step_time,
                      &run->compute_time, &run->comm_time, &run->io_time};
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
        *dst[i] = read_rows(r, metric_cols[i], H5T_NATIVE_DOUBLE, sizeof(double), n, 1);
    run->loss_by_mod = read_rows(r, "/metrics/loss_by_modality", H5T_NATIVE_DOUBLE,
                                 sizeof(double), n, (hsize_t)run->n_mod);
}

static void load_eval(reader_t *r, analysis_run_t *run)
{
    const char *cols1[] = {"/eval/step", "/eval/flops", "/eval/wall_time", "/eval/loss",
                           "/eval/loss_by_modality"};
    hsize_t n = 0, rows, cols;
    if (!link_exists(r, "/eval"))
        return;
    for (size_t i = 0; i < 5; i++) {
        if (!link_exists(r, cols1[i]))
            return; /* an eval group without columns: no held-out losses */
        if (!dset_shape(r, cols1[i], &rows, &cols))
            return;
        if (i == 4 && cols != (hsize_t)run->n_mod) {
            fail(r, cols1[i], "has %llu columns but /model lists %d modalities",
                 (unsigned long long)cols, run->n_mod);
            return;
        }
        if (i == 0 || rows < n)
            n = rows;
    }
    run->n_eval = (size_t)n;
    run->eval_step = read_rows(r, cols1[0], H5T_NATIVE_INT64, sizeof(int64_t), n, 1);
    run->eval_flops = read_rows(r, cols1[1], H5T_NATIVE_DOUBLE, sizeof(double), n, 1);
    run->eval_wall_time = read_rows(r, cols1[2], H5T_NATIVE_DOUBLE, sizeof(double), n, 1);
    run->eval_loss = read_rows(r, cols1[3], H5T_NATIVE_DOUBLE, sizeof(double), n, 1);
    run->eval_loss_by_mod =
        read_rows(r, cols1[4], H5T_NATIVE_DOUBLE, sizeof(double), n, (hsize_t)run->n_mod);
}

static void load_attrs(reader_t *r, analysis_run_t *run)
{
    hid_t root = r->file;
    read_attr_num(r, root, "/", "schema_version", H5T_NATIVE_INT, &run->schema_version, 1);
    read_attr_string(r, root, "/", "config", NULL, 0, &run->config);
    if (attr_exists(r, root, "/", "experiment"))
        read_attr_string(r, root, "/", "experiment", run->experiment, sizeof run->experiment,
                         NULL);
    if (attr_exists(r, root, "/", "run_name"))
        read_attr_string(r, root, "/", "run_name", run->run_name, sizeof run->run_name, NULL);
    read_attr_num(r, root, "/", "world_size", H5T_NATIVE_INT, &run->world_size, 1);
    read_attr_num(r, root, "/", "dp", H5T_NATIVE_INT, &run->dp, 1);
    read_attr_num(r, root, "/", "tp", H5T_NATIVE_INT, &run->tp, 1);
    if (attr_exists(r, root, "/", "tp_backend"))
        read_attr_string(r, root, "/", "tp_backend", run->tp_backend, sizeof run->tp_backend,
                         NULL);
    read_attr_num(r, root, "/", "peak_flops_per_rank", H5T_NATIVE_DOUBLE,
                  &run->peak_flops_per_rank, 1);
    if (r->failed)
        return;
    hid_t model = H5Gopen2(r->file, "/model", H5P_DEFAULT);
    if (model < 0) {
        fail(r, "/model", "missing group");
        return;
    }
    read_attr_string(r, model, "/model", "kind", run->kind, sizeof run->kind, NULL);
    struct { const char *name; int *dst; } ints[] = {
        {"d_model", &run->d_model}, {"n_layers", &run->n_layers}, {"n_heads", &run->n_heads},
        {"d_ff", &run->d_ff},       {"seq_len", &run->seq_len},   {"vocab_size", &run->vocab_size},
        {"n_towers", &run->n_towers}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        read_attr_num(r, model, "/model", ints[i].name, H5T_NATIVE_INT, ints[i].dst, 1);
    read_attr_num(r, model, "/model", "params_total", H5T_NATIVE_INT64, &run->params_total, 1);
    read_attr_num(r, model, "/model", "params_active_per_token", H5T_NATIVE_INT64,
                  &run->params_active_per_token, 1);
    read_attr_num(r, model, "/model", "flops_per_token", H5T_NATIVE_DOUBLE,
                  &run->flops_per_token, 1);
    if (!r->failed)
        read_mod_names(r, model, run);
    H5Gclose(model);
}

bool analysis_run_load(const char *path, analysis_run_t *run, char *err, size_t errlen)
{
    memset(run, 0, sizeof *run);
    snprintf(run->path, sizeof run->path, "%s", path);
    reader_t r = {.path = path, .err = err, .errlen = errlen, .failed = false};
    /* One line per failure, ours; HDF5's own error stack would be a page. */
    H5E_auto2_t old_func;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    r.file = open_readonly(path);
    if (r.file < 0) {
        fail(&r, "file", "cannot open as HDF5 (missing, unreadable or not a run record)");
    } else {
        load_attrs(&r, run);
        if (!r.failed)
            load_metrics(&r, run);
        if (!r.failed)
            load_eval(&r, run);
        if (!r.failed && run->n == 0)
            fail(&r, "/metrics", "no rows logged yet");
        H5Fclose(r.file);
    }
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    if (r.failed)
        analysis_run_free(run);
    return !r.failed;
}

void analysis_run_free(analysis_run_t *run)
{
    void *p[] = {run->config,        run->step,          run->tokens,         run->flops,
                 run->wall_time,     run->loss,          run->step_time,      run->compute_time,
                 run->comm_time,     run->io_time,       run->loss_by_mod,    run->eval_step,
                 run->eval_flops,    run->eval_wall_time, run->eval_loss,     run->eval_loss_by_mod};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        free(p[i]);
    char path[sizeof run->path];
    memcpy(path, run->path, sizeof path);
    memset(run, 0, sizeof *run);
    memcpy(run->path, path, sizeof path);
}

typedef struct config_query {
    const char *section, *key;
    char *out;
    size_t outlen;
} config_query_t;

static int config_match(void *user, const char *section, const char *name, const char *value)
{
    config_query_t *q = user;
    if (!strcmp(section, q->section) && !strcmp(name, q->key))
        snprintf(q->out, q->outlen, "%s", value);
    return 1;
}

void analysis_config_get(const analysis_run_t *run, const char *section, const char *key,
                         char *out, size_t outlen)
{
    out[0] = '\0';
    if (!run->config)
        return;
    config_query_t q = {section, key, out, outlen};
    ini_parse_string(run->config, config_match, &q);
}

bool analysis_final_losses(const char *path, int *n_mod, char names[][ANALYSIS_NAME_LEN],
                           double *final_loss_by_mod, double *final_loss_overall, char *err,
                           size_t errlen)
{
    analysis_run_t run;
    if (!analysis_run_load(path, &run, err, errlen))
        return false;
    *n_mod = run.n_mod;
    double *sm = xmalloc(run.n * sizeof *sm);
    analysis_smooth(sm, run.step, run.loss, 1, run.n, ANALYSIS_SMOOTH_DEFAULT);
    *final_loss_overall = sm[run.n - 1];
    for (int m = 0; m < run.n_mod; m++) {
        snprintf(names[m], ANALYSIS_NAME_LEN, "%s", run.mod_names[m]);
        analysis_smooth(sm, run.step, run.loss_by_mod + m, (size_t)run.n_mod, run.n,
                        ANALYSIS_SMOOTH_DEFAULT);
        final_loss_by_mod[m] = sm[run.n - 1];
    }
    free(sm);
    analysis_run_free(&run);
    return true;
}
