/* The run record: what runlog writes reads back exactly through the plain HDF5 API;
 * reopen drops rows past the resume step, clears a dead writer's flags and appends
 * with no gap; provenance helpers give real values.
 * With arguments it is the writer the e2e test (tests/e2e/runlog_h5py.sh) uses:
 *   test_runlog write PATH NFLUSH           rows 1..NFLUSH flushed, then unflushed
 *                                            rows until killed
 *   test_runlog reopen PATH LAST_STEP NMORE  resume after LAST_STEP, NMORE rows
 *   test_runlog sample PATH                  a closed file with every object,
 *                                            optional attributes included */
#include <hdf5.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/provenance.h"
#include "motscale/runlog.h"

#define NMOD 2
#define WORLD 3

static char dir[256];

/* The values of row `step`: closed forms the readers (here and in h5py) recompute. */
static double row_loss(int64_t step) { return 10.0 / (double)(step + 1); }
static double row_lr(int64_t step) { return 1e-3 * (double)step; }

typedef struct row_buf {
    double lbm[NMOD];
    int64_t tbm[NMOD];
    double rst[WORLD], rct[WORLD], rss[WORLD];
    runlog_row_t row;
} row_buf_t;

/* Modality 1 has no tokens at steps divisible by 3: its loss is NaN then. */
static void make_row(row_buf_t *b, int64_t step, double salt)
{
    for (int m = 0; m < NMOD; m++) {
        b->tbm[m] = (m == 1 && step % 3 == 0) ? 0 : 100 * (m + 1);
        b->lbm[m] = b->tbm[m] ? row_loss(step) + m + salt : NAN;
    }
    for (int k = 0; k < WORLD; k++) {
        b->rst[k] = 0.5 + 0.01 * k + (double)step;
        b->rct[k] = 0.1 * k + (double)step;
        b->rss[k] = 1048576.0 * (double)(k + 1);
    }
    b->row = (runlog_row_t){
        .step = step, .tokens = 300 * step, .flops = 1e9 * (double)step,
        .wall_time = 0.5 * (double)step, .loss = row_loss(step) + salt, .lr = row_lr(step),
        .grad_norm = 1.0 + (double)step, .step_time = 0.5, .compute_time = 0.4,
        .comm_time = 0.05, .io_time = 0.01, .gemm_flops = 1.01e9 * (double)step,
        .loss_by_modality = b->lbm, .tokens_by_modality = b->tbm,
        .rank_step_time = b->rst, .rank_comm_time = b->rct, .rank_peak_rss = b->rss};
}

static runlog_meta_t make_meta(void)
{
    return (runlog_meta_t){
        .config_text = "[run]\nname = unit-run\n", .experiment = "unit-exp",
        .run_name = "unit-run", .world_size = WORLD, .dp = 3, .tp = 1,
        .tp_backend = "megatron", .hostnames = "nodeA,nodeB",
        .mpi_library_version = "Open MPI test", .blas = "OpenBLAS test (1 thread)",
        .peak_flops_per_rank = 1.5e11, .peak_flops_source = "config", .kind = "mot",
        .d_model = 64, .n_layers = 2, .n_heads = 4, .d_ff = 256, .seq_len = 128,
        .n_towers = 2, .n_modalities = NMOD, .modality_names = {"text", "image"},
        .tower_of = {0, 1}, .params_total = 123456789012LL,
        .params_active_per_token = 61728394506LL, .flops_per_token = 7.25e8,
        .vocab_size = 1024};
}

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
    unlink(out);
}

/* steps first, first + stride, ...: n rows, each flushed every `flush` rows. */
static void write_rows(runlog_t *r, int64_t first, int64_t stride, int n, double salt)
{
    row_buf_t b;
    for (int i = 0; i < n; i++) {
        make_row(&b, first + stride * i, salt);
        bool ok = runlog_append(r, &b.row);
        assert_true(ok);
    }
}

static void write_eval(runlog_t *r, int64_t step)
{
    double lbm[NMOD] = {row_loss(step) + 0.5, row_loss(step) + 1.5};
    runlog_eval_t ev = {.eval_step = step, .eval_flops = 1e9 * (double)step,
                        .eval_wall_time = 0.5 * (double)step, .eval_loss = row_loss(step) + 1.0,
                        .eval_loss_by_modality = lbm};
    bool ok = runlog_append_eval(r, &ev);
    assert_true(ok);
}

/* ---- readers: plain HDF5, every id checked, nothing inside assert ---- */

static char *read_str_attr(hid_t loc, const char *name)
{
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        fail_msg("attribute %s missing", name);
    hid_t t = H5Aget_type(a);
    assert_true(t >= 0);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    htri_t vl = H5Tis_variable_str(t);
    assert_true(vl > 0);
    assert_int_equal(H5Tget_cset(t), H5T_CSET_UTF8);
    char *v = NULL;
    herr_t rc = H5Aread(a, t, &v);
    assert_true(rc >= 0);
    char *copy = strdup(v ? v : "");
    H5free_memory(v);
    H5Tclose(t);
    H5Aclose(a);
    return copy;
}

static void assert_str_attr(hid_t loc, const char *name, const char *want)
{
    char *got = read_str_attr(loc, name);
    if (strcmp(got, want) != 0)
        fail_msg("@%s = '%s', want '%s'", name, got, want);
    free(got);
}

/* Reads a numeric attribute as `mtype`, checking its on-disk type is `ftype`. */
static void read_num_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, void *out)
{
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        fail_msg("attribute %s missing", name);
    hid_t t = H5Aget_type(a);
    assert_true(t >= 0);
    htri_t same = H5Tequal(t, ftype);
    if (same <= 0)
        fail_msg("attribute %s has the wrong type", name);
    herr_t rc = H5Aread(a, mtype, out);
    assert_true(rc >= 0);
    H5Tclose(t);
    H5Aclose(a);
}

static int32_t attr_i32(hid_t loc, const char *name)
{
    int32_t v = 0;
    read_num_attr(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
    return v;
}

/* Whole dataset into a malloc'd buffer as mtype; checks the on-disk type. */
static void *read_dset(hid_t f, const char *path, hid_t ftype, hid_t mtype, hsize_t *rows,
                       hsize_t *width)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0)
        fail_msg("dataset %s missing", path);
    hid_t t = H5Dget_type(d);
    assert_true(t >= 0);
    htri_t same = H5Tequal(t, ftype);
    if (same <= 0)
        fail_msg("dataset %s has the wrong type", path);
    hid_t s = H5Dget_space(d);
    assert_true(s >= 0);
    hsize_t dims[2] = {0, 1};
    int rank = H5Sget_simple_extent_dims(s, dims, NULL);
    assert_true(rank == 1 || rank == 2);
    *rows = dims[0];
    *width = rank == 2 ? dims[1] : 1;
    void *buf = calloc((size_t)(*rows * *width) + 1, 8);
    assert_non_null(buf);
    if (*rows > 0) {
        herr_t rc = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        assert_true(rc >= 0);
    }
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
    return buf;
}

static double *read_f64(hid_t f, const char *path, hsize_t *rows, hsize_t *width)
{
    return read_dset(f, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rows, width);
}

static int64_t *read_i64(hid_t f, const char *path, hsize_t *rows, hsize_t *width)
{
    return read_dset(f, path, H5T_STD_I64LE, H5T_NATIVE_INT64, rows, width);
}

/* runlog_close left no HDF5 file or object open. */
static void assert_nothing_open(void)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    assert_int_equal(n, 0);
}

static hid_t open_ro(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        fail_msg("cannot open %s read-only (status flags left set?)", path);
    return f;
}

/* Every row of /metrics and /ranks equals make_row(steps[i], salt[i]). */
static void assert_rows(hid_t f, const int64_t *steps, const double *salt, hsize_t n)
{
    hsize_t rows, w;
    int64_t *step = read_i64(f, "/metrics/step", &rows, &w);
    assert_int_equal(rows, n);
    double *loss = read_f64(f, "/metrics/loss", &rows, &w);
    assert_int_equal(rows, n);
    double *lr = read_f64(f, "/metrics/lr", &rows, &w);
    int64_t *tokens = read_i64(f, "/metrics/tokens", &rows, &w);
    double *gemm = read_f64(f, "/metrics/gemm_flops", &rows, &w);
    assert_int_equal(rows, n);
    double *lbm = read_f64(f, "/metrics/loss_by_modality", &rows, &w);
    assert_int_equal(rows, n);
    assert_int_equal(w, NMOD);
    int64_t *tbm = read_i64(f, "/metrics/tokens_by_modality", &rows, &w);
    assert_int_equal(w, NMOD);
    double *rst = read_f64(f, "/ranks/step_time", &rows, &w);
    assert_int_equal(rows, n);
    assert_int_equal(w, WORLD);
    for (hsize_t i = 0; i < n; i++) {
        row_buf_t b;
        make_row(&b, steps[i], salt[i]);
        assert_int_equal(step[i], steps[i]);
        assert_int_equal(tokens[i], b.row.tokens);
        /* Doubles go through HDF5 unchanged: compare exactly. */
        assert_true(loss[i] == b.row.loss);
        assert_true(lr[i] == b.row.lr);
        assert_true(gemm[i] == b.row.gemm_flops);
        for (int m = 0; m < NMOD; m++) {
            assert_int_equal(tbm[i * NMOD + m], b.tbm[m]);
            if (isnan(b.lbm[m]))
                assert_true(isnan(lbm[i * NMOD + m]));
            else
                assert_true(lbm[i * NMOD + m] == b.lbm[m]);
        }
        for (int k = 0; k < WORLD; k++)
            assert_true(rst[i * WORLD + k] == b.rst[k]);
    }
    free(step), free(loss), free(lr), free(tokens), free(gemm), free(lbm), free(tbm),
        free(rst);
}

/* ---- tests ---- */

static void test_provenance(void **state)
{
    (void)state;
    char buf[1024];
    provenance_hdf5_version(buf, sizeof buf);
    unsigned maj, min, rel;
    herr_t rc = H5get_libversion(&maj, &min, &rel);
    assert_true(rc >= 0);
    char want[64];
    snprintf(want, sizeof want, "HDF5 %u.%u.%u", maj, min, rel);
    assert_string_equal(buf, want);

    provenance_mpi_library_version(buf, sizeof buf);
    assert_true(strlen(buf) > 0);
    assert_null(strchr(buf, '\n'));

    provenance_blas(buf, sizeof buf);
    assert_non_null(strstr(buf, "OpenBLAS"));
    assert_non_null(strstr(buf, "thread"));

    provenance_utc_now(buf, sizeof buf);
    assert_int_equal(strlen(buf), 20); /* YYYY-MM-DDTHH:MM:SSZ */
    assert_true(buf[4] == '-' && buf[10] == 'T' && buf[19] == 'Z');

    char host[256] = "";
    gethostname(host, sizeof host);
    char *hosts = provenance_hostnames();
    assert_non_null(hosts);
    /* One process on one host: exactly that host (MPI_Get_processor_name is the
     * host name under Open MPI). */
    assert_string_equal(hosts, host);
    free(hosts);

    setenv("SLURM_JOB_ID", "4242", 1);
    setenv("SLURM_ARRAY_TASK_ID", "7", 1);
    setenv("SLURM_RESTART_COUNT", "2", 1);
    unsetenv("SLURM_ARRAY_JOB_ID");
    provenance_slurm_t s;
    provenance_slurm(&s);
    assert_string_equal(s.job_id, "4242");
    assert_string_equal(s.array_task_id, "7");
    assert_string_equal(s.array_job_id, "");
    assert_int_equal(s.restart_count, 2);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_RESTART_COUNT");
    provenance_slurm(&s);
    assert_string_equal(s.job_id, "");
    assert_int_equal(s.restart_count, 0);
    assert_true(strlen(provenance_git_commit()) > 0);
}

static void test_create_reads_back(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    path_in_dir(path, sizeof path, "create.h5");
    runlog_meta_t meta = make_meta();
    runlog_t *r = runlog_create(path, &meta, err, sizeof err);
    if (!r)
        fail_msg("runlog_create: %s", err);
    write_rows(r, 10, 10, 5, 0.0);
    write_eval(r, 20);
    write_eval(r, 40);
    bool ok = runlog_set_attr_double(r, "stop_loss", 2.5) &&
              runlog_set_attr_string(r, "stop_reason", "reached loss of baseline");
    assert_true(ok);
    ok = runlog_flush(r);
    assert_true(ok);
    runlog_close(r);
    assert_nothing_open();

    hid_t f = open_ro(path);
    assert_int_equal(attr_i32(f, "schema_version"), RUNLOG_SCHEMA_VERSION);
    assert_str_attr(f, "motscale_version", MOTSCALE_VERSION);
    assert_str_attr(f, "git_commit", provenance_git_commit());
    assert_str_attr(f, "config", "[run]\nname = unit-run\n");
    assert_str_attr(f, "experiment", "unit-exp");
    assert_str_attr(f, "run_name", "unit-run");
    assert_str_attr(f, "tp_backend", "megatron");
    assert_str_attr(f, "hostnames", "nodeA,nodeB");
    assert_str_attr(f, "mpi_library_version", "Open MPI test");
    assert_str_attr(f, "blas", "OpenBLAS test (1 thread)");
    assert_str_attr(f, "peak_flops_source", "config");
    assert_str_attr(f, "slurm_job_id", "");
    assert_str_attr(f, "stop_reason", "reached loss of baseline");
    assert_int_equal(attr_i32(f, "world_size"), WORLD);
    assert_int_equal(attr_i32(f, "dp"), 3);
    assert_int_equal(attr_i32(f, "tp"), 1);
    assert_int_equal(attr_i32(f, "slurm_restart_count"), 0);
    char h5v[64];
    provenance_hdf5_version(h5v, sizeof h5v);
    assert_str_attr(f, "hdf5_version", h5v);
    char *created = read_str_attr(f, "created_utc");
    assert_int_equal(strlen(created), 20);
    free(created);
    double d = 0;
    read_num_attr(f, "peak_flops_per_rank", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d);
    assert_true(d == 1.5e11);
    read_num_attr(f, "stop_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d);
    assert_true(d == 2.5);

    hid_t g = H5Gopen2(f, "/model", H5P_DEFAULT);
    assert_true(g >= 0);
    assert_str_attr(g, "kind", "mot");
    assert_int_equal(attr_i32(g, "d_model"), 64);
    assert_int_equal(attr_i32(g, "n_layers"), 2);
    assert_int_equal(attr_i32(g, "n_heads"), 4);
    assert_int_equal(attr_i32(g, "d_ff"), 256);
    assert_int_equal(attr_i32(g, "seq_len"), 128);
    assert_int_equal(attr_i32(g, "vocab_size"), 1024);
    assert_int_equal(attr_i32(g, "n_towers"), 2);
    int64_t p = 0;
    read_num_attr(g, "params_total", H5T_STD_I64LE, H5T_NATIVE_INT64, &p);
    assert_int_equal(p, 123456789012LL);
    read_num_attr(g, "params_active_per_token", H5T_STD_I64LE, H5T_NATIVE_INT64, &p);
    assert_int_equal(p, 61728394506LL);
    read_num_attr(g, "flops_per_token", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d);
    assert_true(d == 7.25e8);
    int32_t tower_of[NMOD] = {-1, -1};
    read_num_attr(g, "tower_of", H5T_STD_I32LE, H5T_NATIVE_INT32, tower_of);
    assert_int_equal(tower_of[0], 0);
    assert_int_equal(tower_of[1], 1);
    hid_t a = H5Aopen(g, "modality_names", H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_true(t >= 0);
    char *names[NMOD] = {NULL, NULL};
    herr_t rc = H5Aread(a, t, names);
    assert_true(rc >= 0);
    assert_string_equal(names[0], "text");
    assert_string_equal(names[1], "image");
    H5free_memory(names[0]);
    H5free_memory(names[1]);
    H5Tclose(t);
    H5Aclose(a);
    H5Gclose(g);

    int64_t steps[5] = {10, 20, 30, 40, 50};
    double salt[5] = {0};
    assert_rows(f, steps, salt, 5);

    hsize_t rows, w;
    int64_t *es = read_i64(f, "/eval/step", &rows, &w);
    assert_int_equal(rows, 2);
    assert_int_equal(es[0], 20);
    assert_int_equal(es[1], 40);
    double *el = read_f64(f, "/eval/loss_by_modality", &rows, &w);
    assert_int_equal(rows, 2);
    assert_int_equal(w, NMOD);
    assert_true(el[2] == row_loss(40) + 0.5);
    free(es);
    free(el);
    H5Fclose(f);
}

static void test_create_refuses_existing(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    path_in_dir(path, sizeof path, "exists.h5");
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not hdf5\n", fp);
    fclose(fp);
    runlog_meta_t meta = make_meta();
    runlog_t *r = runlog_create(path, &meta, err, sizeof err);
    assert_null(r);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "exists"));

    /* reopen of something that is not a run record names the file */
    err[0] = '\0';
    r = runlog_reopen(path, 10, WORLD, WORLD, 1, "[run]\nname = unit-run\n", err, sizeof err);
    assert_null(r);
    assert_non_null(strstr(err, path));
    assert_null(strchr(err, '\n'));
    assert_nothing_open();
}

static void test_reopen_drops_rows(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    path_in_dir(path, sizeof path, "reopen.h5");
    runlog_meta_t meta = make_meta();
    runlog_t *r = runlog_create(path, &meta, err, sizeof err);
    if (!r)
        fail_msg("runlog_create: %s", err);
    write_rows(r, 10, 10, 10, 0.0); /* steps 10..100 */
    write_eval(r, 50);
    write_eval(r, 100);
    runlog_close(r);

    setenv("SLURM_JOB_ID", "5151", 1);
    setenv("SLURM_RESTART_COUNT", "1", 1);
    r = runlog_reopen(path, 60, WORLD, WORLD, 1, "[run]\nname = unit-run\n", err, sizeof err);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");
    if (!r)
        fail_msg("runlog_reopen: %s", err);
    /* a duplicate of a kept step is refused */
    row_buf_t b;
    make_row(&b, 60, 0.0);
    bool dup = runlog_append(r, &b.row);
    assert_false(dup);
    write_rows(r, 70, 10, 4, 0.25); /* the resumed run's own values */
    write_eval(r, 100);
    runlog_close(r);
    assert_nothing_open();

    hid_t f = open_ro(path);
    int64_t steps[10];
    double salt[10];
    for (int i = 0; i < 10; i++) {
        steps[i] = 10 * (i + 1);
        salt[i] = i < 6 ? 0.0 : 0.25;
    }
    assert_rows(f, steps, salt, 10);
    hsize_t rows, w;
    int64_t *es = read_i64(f, "/eval/step", &rows, &w);
    assert_int_equal(rows, 2);
    assert_int_equal(es[0], 50);
    assert_int_equal(es[1], 100);
    free(es);
    double *rct = read_f64(f, "/ranks/comm_time", &rows, &w);
    assert_int_equal(rows, 10);
    free(rct);
    assert_str_attr(f, "slurm_job_id", "5151");
    assert_int_equal(attr_i32(f, "slurm_restart_count"), 1);
    H5Fclose(f);
}

/* A copy taken while the writer holds the file in SWMR mode carries the superblock
 * status flags exactly as a killed writer leaves them. */
static void test_reopen_after_dead_writer(void **state)
{
    (void)state;
    char path[512], copy[512], err[512] = "", cmd[1200];
    path_in_dir(path, sizeof path, "live.h5");
    path_in_dir(copy, sizeof copy, "dead.h5");
    runlog_meta_t meta = make_meta();
    runlog_t *r = runlog_create(path, &meta, err, sizeof err);
    if (!r)
        fail_msg("runlog_create: %s", err);
    write_rows(r, 1, 1, 8, 0.0);
    bool ok = runlog_flush(r);
    assert_true(ok);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
    int rc = system(cmd);
    assert_int_equal(rc, 0);
    runlog_close(r);

    /* The flags are really there: a plain read-only open is refused. */
    hid_t f = H5Fopen(copy, H5F_ACC_RDONLY, H5P_DEFAULT);
    bool refused = f < 0;
    if (f >= 0)
        H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    assert_true(refused);

    r = runlog_reopen(copy, 5, WORLD, WORLD, 1, "[run]\nname = unit-run\n", err, sizeof err);
    if (!r)
        fail_msg("runlog_reopen after a dead writer: %s", err);
    write_rows(r, 6, 1, 5, 0.5);
    runlog_close(r);

    f = open_ro(copy); /* a clean close leaves no flags */
    int64_t steps[10];
    double salt[10];
    for (int i = 0; i < 10; i++) {
        steps[i] = i + 1;
        salt[i] = i < 5 ? 0.0 : 0.5;
    }
    assert_rows(f, steps, salt, 10);
    H5Fclose(f);
}

static void test_reopen_missing(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    path_in_dir(path, sizeof path, "missing.h5");
    runlog_t *r = runlog_reopen(path, 1, WORLD, WORLD, 1, "[run]\nname = unit-run\n", err, sizeof err);
    assert_null(r);
    assert_non_null(strstr(err, "missing.h5"));
    assert_nothing_open();
}

/* ---- writer modes for the e2e test ---- */

static int mode_write(const char *path, int nflush)
{
    char err[512];
    runlog_meta_t meta = make_meta();
    runlog_t *r = runlog_create(path, &meta, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    row_buf_t b;
    for (int64_t s = 1;; s++) {
        make_row(&b, s, 0.0);
        if (!runlog_append(r, &b.row))
            return 1;
        if (s % 4 == 0)
            write_eval(r, s);
        if (s <= nflush) {
            if (!runlog_flush(r))
                return 1;
            printf("flushed %lld\n", (long long)s);
            fflush(stdout);
        }
        if (s >= nflush)
            usleep(2000); /* unflushed rows until the test kills us */
    }
}

static int mode_reopen(const char *path, int64_t last, int nmore)
{
    char err[512];
    runlog_t *r = runlog_reopen(path, last, WORLD, WORLD, 1, "[run]\nname = unit-run\n", err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    row_buf_t b;
    for (int64_t s = last + 1; s <= last + nmore; s++) {
        make_row(&b, s, 0.0);
        if (!runlog_append(r, &b.row))
            return 1;
        if (s % 4 == 0)
            write_eval(r, s);
    }
    runlog_close(r);
    return 0;
}

static int mode_sample(const char *path)
{
    char err[512];
    runlog_meta_t meta = make_meta();
    runlog_t *r = runlog_create(path, &meta, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    write_rows(r, 1, 1, 6, 0.0);
    write_eval(r, 3);
    write_eval(r, 6);
    /* the optional attributes of an equal-loss stop, as the trainer writes them */
    bool ok = runlog_set_attr_double(r, "stopped_at_step", 6.0) &&
              runlog_set_attr_double(r, "stopped_at_flops", 6e9) &&
              runlog_set_attr_double(r, "stopped_at_wall_time", 3.0) &&
              runlog_set_attr_string(r, "stopped_at_loss_of", "baseline/run.h5");
    runlog_close(r);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "test_runlog: MPI_Init failed\n");
        return 1;
    }
    int rc;
    if (argc == 4 && strcmp(argv[1], "write") == 0) {
        rc = mode_write(argv[2], atoi(argv[3]));
    } else if (argc == 5 && strcmp(argv[1], "reopen") == 0) {
        rc = mode_reopen(argv[2], atoll(argv[3]), atoi(argv[4]));
    } else if (argc == 3 && strcmp(argv[1], "sample") == 0) {
        rc = mode_sample(argv[2]);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/motscale-runlog.XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            MPI_Finalize();
            return 1;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_provenance),
            cmocka_unit_test(test_create_reads_back),
            cmocka_unit_test(test_create_refuses_existing),
            cmocka_unit_test(test_reopen_drops_rows),
            cmocka_unit_test(test_reopen_after_dead_writer),
            cmocka_unit_test(test_reopen_missing),
        };
        rc = cmocka_run_group_tests_name("runlog", tests, NULL, NULL);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_runlog: could not remove %s\n", dir);
    }
    MPI_Finalize();
    return rc;
}
