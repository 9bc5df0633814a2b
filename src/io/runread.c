/* Reads one run record (run.h5, docs/run-record.md) into memory: attributes of / and
 * /model, and every column of the schema list (runschema.h). Every HDF5 call goes
 * through h5.h; a failure names the file and the object. */
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/h5.h"
#include "motscale/runread.h"
#include "motscale/smooth.h"

typedef struct reader {
    h5ctx_t c;
    hid_t file;
    bool failed;
} reader_t;

static void attr_num(reader_t *r, hid_t loc, const char *obj, const char *name, hid_t mtype, void *out)
{
    if (!r->failed && !h5_attr_get(&r->c, loc, obj, name, mtype, out, 1))
        r->failed = true;
}

/* A string attribute into out (cut to fit); optional ones may be absent. */
static void attr_text(reader_t *r, hid_t loc, const char *obj, const char *name, char *out, size_t len,
                      bool optional)
{
    if (r->failed)
        return;
    if (optional) {
        int has = h5_attr_has(&r->c, loc, obj, name);
        if (has <= 0) {
            r->failed = has < 0;
            return;
        }
    }
    char *s = NULL;
    if (!h5_attr_get_str(&r->c, loc, obj, name, &s)) {
        r->failed = true;
        return;
    }
    snprintf(out, len, "%s", s);
    free(s);
}

static void load_attrs(reader_t *r, runrec_t *run)
{
    hid_t root = r->file;
    attr_num(r, root, "/", "schema_version", H5T_NATIVE_INT, &run->schema_version);
    if (!r->failed && !h5_attr_get_str(&r->c, root, "/", "config", &run->config))
        r->failed = true;
    attr_text(r, root, "/", "experiment", run->experiment, sizeof run->experiment, true);
    attr_text(r, root, "/", "run_name", run->run_name, sizeof run->run_name, true);
    attr_num(r, root, "/", "world_size", H5T_NATIVE_INT, &run->world_size);
    attr_num(r, root, "/", "dp", H5T_NATIVE_INT, &run->dp);
    attr_num(r, root, "/", "tp", H5T_NATIVE_INT, &run->tp);
    attr_text(r, root, "/", "tp_backend", run->tp_backend, sizeof run->tp_backend, true);
    attr_num(r, root, "/", "peak_flops_per_rank", H5T_NATIVE_DOUBLE, &run->peak_flops_per_rank);
    if (r->failed)
        return;
    hid_t model = H5Gopen2(r->file, "/model", H5P_DEFAULT);
    if (model < 0) {
        r->failed = !h5_fail(&r->c, "/model", "missing group");
        return;
    }
    attr_text(r, model, "/model", "kind", run->kind, sizeof run->kind, false);
    struct { const char *name; int *dst; } ints[] = {
        {"d_model", &run->d_model}, {"n_layers", &run->n_layers}, {"n_heads", &run->n_heads},
        {"d_ff", &run->d_ff},       {"seq_len", &run->seq_len},   {"vocab_size", &run->vocab_size},
        {"n_towers", &run->n_towers}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        attr_num(r, model, "/model", ints[i].name, H5T_NATIVE_INT, ints[i].dst);
    attr_num(r, model, "/model", "params_total", H5T_NATIVE_INT64, &run->params_total);
    attr_num(r, model, "/model", "params_active_per_token", H5T_NATIVE_INT64, &run->params_active_per_token);
    attr_num(r, model, "/model", "flops_per_token", H5T_NATIVE_DOUBLE, &run->flops_per_token);
    /* a model with experts (it has /metrics/expert_load): that dataset's shape */
    int e = r->failed ? 0 : h5_exists(&r->c, r->file, "/metrics/expert_load");
    r->failed |= e < 0;
    if (e > 0) {
        attr_num(r, model, "/model", "moe_experts", H5T_NATIVE_INT, &run->moe_experts);
        attr_num(r, model, "/model", "moe_layers", H5T_NATIVE_INT, &run->moe_layers);
        attr_text(r, model, "/model", "moe_eval_routing", run->moe_eval_routing, sizeof run->moe_eval_routing,
                  false);
    }
    if (!r->failed && !h5_attr_get_strs(&r->c, model, "/model", "modality_names", &run->mod_names[0][0],
                                        RUNREC_NAME_LEN, RUNREC_MAX_MOD, &run->n_mod))
        r->failed = true;
    H5Gclose(model);
}

static void *column_ptr(runrec_t *run, const runrec_column_t *col)
{
    return (char *)run + col->read_off;
}

/* Shapes of every column of a group: the row count is the shortest present one.
 * Missing optional columns are marked in present[]. */
static void group_rows(reader_t *r, runrec_t *run, int group, bool *present, size_t *rows)
{
    bool first = true;
    *rows = 0;
    for (size_t i = 0; i < RUNREC_N_COLUMNS && !r->failed; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        if (col->group != group)
            continue;
        int e = h5_exists(&r->c, r->file, col->path);
        if (e < 0 || (e == 0 && col->required)) {
            r->failed = e < 0 || !h5_fail(&r->c, col->path, "missing dataset");
            return;
        }
        present[i] = e > 0;
        if (!present[i])
            continue;
        hid_t d = h5_dset_open(&r->c, r->file, col->path);
        int rank;
        hsize_t dims[2];
        bool ok = d >= 0 && h5_dset_shape(&r->c, d, col->path, &rank, dims);
        h5_drop(&d);
        if (!ok) {
            r->failed = true;
            return;
        }
        size_t want = col->width == RUNREC_MOD ? (size_t)run->n_mod : 1;
        if (col->width == RUNREC_GRID) {
            run->n_grid = rank == 2 ? (size_t)dims[1] : 0;
        } else if (col->width == RUNREC_WORLD) {
            run->n_ranks = (size_t)dims[1];
        } else if (col->width == RUNREC_LOAD) {
            run->n_load = rank == 2 ? (size_t)dims[1] : 0;
            if (run->moe_layers < 1 || run->moe_experts < 1 ||
                run->n_load != (size_t)run->moe_layers * (size_t)run->moe_experts * (size_t)run->n_mod) {
                r->failed = !h5_fail(&r->c, col->path, "has %zu columns, not /model@moe_layers x moe_experts x "
                                     "modalities = %d x %d x %d", run->n_load, run->moe_layers,
                                     run->moe_experts, run->n_mod);
                return;
            }
        } else if (col->width == RUNREC_BUCKET || col->width == RUNREC_PAIRS) {
            size_t *k = col->width == RUNREC_BUCKET ? &run->n_bucket : &run->n_pairs;
            *k = rank == 2 ? (size_t)dims[1] : 0;
        } else if (col->width == RUNREC_TASK || col->width == RUNREC_RETR) {
            size_t *w = col->width == RUNREC_TASK ? &run->n_task : &run->n_retr;
            *w = rank == 2 ? (size_t)dims[1] : 0;
        } else if ((size_t)dims[1] != want || (runrec_rank(col->width) == 1) != (rank == 1)) {
            r->failed = !h5_fail(&r->c, col->path, "has %llu columns but %zu were expected%s",
                                 (unsigned long long)dims[1], want,
                                 col->width == RUNREC_MOD ? " (one per /model modality)" : "");
            return;
        }
        if (first || dims[0] < *rows)
            *rows = (size_t)dims[0];
        first = false;
    }
}

/* Every column of a group: rows x width values, NaN (0) for a missing column. */
static void read_group(reader_t *r, runrec_t *run, int group, const bool *present, size_t rows)
{
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++) {
        const runrec_column_t *col = &runrec_columns[i];
        if (col->group != group)
            continue;
        size_t width = runrec_scalar(col->width) ? 1 : col->width == RUNREC_MOD ? (size_t)run->n_mod
                     : col->width == RUNREC_LOAD ? run->n_load : col->width == RUNREC_GRID ? run->n_grid
                     : col->width == RUNREC_BUCKET ? run->n_bucket : col->width == RUNREC_PAIRS ? run->n_pairs
                     : col->width == RUNREC_TASK ? run->n_task : col->width == RUNREC_RETR ? run->n_retr
                     : run->n_ranks;
        size_t n = rows * width;
        void *buf = xcalloc(n + 1, 8);
        *(void **)column_ptr(run, col) = buf;
        if (!col->i64)
            for (size_t k = 0; k < n; k++)
                ((double *)buf)[k] = NAN;
        if (r->failed || !present[i] || n == 0)
            continue;
        hid_t d = h5_dset_open(&r->c, r->file, col->path);
        /* SWMR: the writer may have appended since the file was opened */
        if (d >= 0 && H5Drefresh(d) < 0)
            h5_fail(&r->c, col->path, "cannot refresh");
        hsize_t start[2] = {0, 0}, count[2] = {rows, width};
        if (d < 0 || !h5_slab_read(&r->c, d, col->path, runrec_rank(col->width), start, count,
                                   col->i64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, buf, H5P_DEFAULT))
            r->failed = true;
        h5_drop(&d);
    }
}

static void load_columns(reader_t *r, runrec_t *run)
{
    bool present[RUNREC_N_COLUMNS] = {false};
    group_rows(r, run, RUNREC_IN_METRICS, present, &run->n);
    /* an /eval group without its columns: no held-out losses */
    int e = r->failed ? 0 : h5_exists(&r->c, r->file, "/eval/step");
    r->failed |= e < 0;
    if (e > 0)
        group_rows(r, run, RUNREC_IN_EVAL, present, &run->n_eval);
    read_group(r, run, RUNREC_IN_METRICS, present, run->n);
    read_group(r, run, RUNREC_IN_EVAL, present, run->n_eval);
}

/* What an analysis relies on: this layout version, steps strictly increasing, and a
 * training loss that is a number somewhere. */
static void check_columns(reader_t *r, const runrec_t *run)
{
    if (run->schema_version != RUNREC_SCHEMA_VERSION) {
        r->failed = !h5_fail(&r->c, "/@schema_version", "is %d; this motscale reads version %d",
                             run->schema_version, RUNREC_SCHEMA_VERSION);
        return;
    }
    struct { const char *obj; const int64_t *step; size_t n; } groups[] = {
        {"/metrics/step", run->step, run->n}, {"/eval/step", run->eval_step, run->n_eval}};
    for (size_t g = 0; g < 2; g++)
        for (size_t i = 1; i < groups[g].n; i++)
            if (groups[g].step[i] <= groups[g].step[i - 1]) {
                r->failed = !h5_fail(&r->c, groups[g].obj, "row %zu: step %lld after %lld; steps must increase", i,
                                     (long long)groups[g].step[i], (long long)groups[g].step[i - 1]);
                return;
            }
    bool any = false;
    for (size_t i = 0; i < run->n && !any; i++)
        any = isfinite(run->loss[i]);
    if (!any)
        r->failed = !h5_fail(&r->c, "/metrics/loss", "no finite value in %zu rows", run->n);
}

bool runrec_load(const char *path, runrec_t *run, char *err, size_t errlen)
{
    memset(run, 0, sizeof *run);
    snprintf(run->path, sizeof run->path, "%s", path);
    reader_t r = {.c = {path, err, errlen}, .file = -1, .failed = false};
    h5_quiet_t q = h5_quiet_begin();
    /* a live writer holds the lock; SWMR readers do not need it */
    h5_fopts_t o = {.comm = MPI_COMM_NULL, .no_lock = true};
    r.file = h5_file_open(&r.c, H5_READ_SWMR, &o);
    if (r.file < 0) {
        r.failed = true;
    } else {
        load_attrs(&r, run);
        if (!r.failed)
            load_columns(&r, run);
        if (!r.failed && run->n == 0)
            r.failed = !h5_fail(&r.c, "/metrics", "no rows logged yet");
        if (!r.failed)
            check_columns(&r, run);
        h5_drop(&r.file);
    }
    h5_quiet_end(q);
    if (r.failed)
        runrec_free(run);
    return !r.failed;
}

void runrec_free(runrec_t *run)
{
    free(run->config);
    for (size_t i = 0; i < RUNREC_N_COLUMNS; i++)
        free(*(void **)column_ptr(run, &runrec_columns[i]));
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

void runrec_config_get(const runrec_t *run, const char *section, const char *key, char *out,
                       size_t outlen)
{
    out[0] = '\0';
    if (!run->config)
        return;
    config_query_t q = {section, key, out, outlen};
    ini_parse_string(run->config, config_match, &q);
}

bool runrec_final_losses(const char *path, int *n_mod, char names[][RUNREC_NAME_LEN],
                         double *final_loss_by_mod, double *final_loss_overall, char *err,
                         size_t errlen)
{
    runrec_t run;
    if (!runrec_load(path, &run, err, errlen))
        return false;
    *n_mod = run.n_mod;
    double *sm = xmalloc(run.n * sizeof *sm);
    smooth_series(sm, run.step, run.loss, 1, run.n, SMOOTH_DEFAULT);
    *final_loss_overall = sm[run.n - 1];
    for (int m = 0; m < run.n_mod; m++) {
        snprintf(names[m], RUNREC_NAME_LEN, "%s", run.mod_names[m]);
        smooth_series(sm, run.step, run.loss_by_modality + m, (size_t)run.n_mod, run.n, SMOOTH_DEFAULT);
        final_loss_by_mod[m] = sm[run.n - 1];
    }
    free(sm);
    runrec_free(&run);
    return true;
}
