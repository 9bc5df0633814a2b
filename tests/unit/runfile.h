/* Run files for the analysis tests, written with the HDF5 C API in the run-record
 * layout (docs/run-record.md): the columns the reader requires, and load_avg when
 * given. */
#ifndef MOTSCALE_TEST_RUNFILE_H
#define MOTSCALE_TEST_RUNFILE_H

#include <hdf5.h>
#include <stdint.h>
#include <string.h>

#define H5OK(call)                                                                         \
    do {                                                                                   \
        if ((call) < 0)                                                                    \
            fail_msg("HDF5 call failed: %s", #call);                                       \
    } while (0)

typedef struct runfile {
    const char *config, *experiment, *run_name, *kind;
    int n_mod;
    const char *const *mod_names;
    size_t rows;                      /* every column below has rows (x n_mod) values */
    const int64_t *step, *tokens, *tokens_by_mod;
    const double *flops, *wall, *loss, *loss_by_modality, *step_time, *compute, *comm, *io;
    const double *load_avg;           /* NULL: not written (an older record) */
    double flops_per_token;
    int d_model;                      /* 0: 64 */
    const char *skip;                 /* a /metrics column to leave out, or NULL */
} runfile_t;

static void runfile_attr(hid_t obj, const char *name, hid_t type, const void *v, hsize_t n)
{
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(a);
    H5OK(H5Awrite(a, type, v));
    H5Aclose(a);
    H5Sclose(sp);
}

static void runfile_attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5OK(H5Tset_size(t, H5T_VARIABLE));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(a);
    H5OK(H5Awrite(a, t, &v));
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void runfile_dset(hid_t g, const char *name, hid_t type, const void *v, hsize_t rows,
                         hsize_t cols)
{
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(d);
    if (rows)
        H5OK(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v));
    H5Dclose(d);
    H5Sclose(sp);
}

static void runfile_write(const char *path, const runfile_t *rf)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(f);
    int one = 1, v1 = 1;
    double peak = 1e11;
    runfile_attr(f, "schema_version", H5T_NATIVE_INT, &v1, 0);
    runfile_attr_str(f, "config", rf->config);
    runfile_attr_str(f, "experiment", rf->experiment);
    runfile_attr_str(f, "run_name", rf->run_name);
    runfile_attr(f, "world_size", H5T_NATIVE_INT, &one, 0);
    runfile_attr(f, "dp", H5T_NATIVE_INT, &one, 0);
    runfile_attr(f, "tp", H5T_NATIVE_INT, &one, 0);
    runfile_attr_str(f, "tp_backend", "megatron");
    runfile_attr(f, "peak_flops_per_rank", H5T_NATIVE_DOUBLE, &peak, 0);
    hid_t m = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(m);
    runfile_attr_str(m, "kind", rf->kind);
    int ints[] = {rf->d_model ? rf->d_model : 64, 2, 4, 256, 128, 512, rf->n_mod};
    const char *in[] = {"d_model", "n_layers", "n_heads", "d_ff", "seq_len", "vocab_size",
                        "n_towers"};
    for (int i = 0; i < 7; i++)
        runfile_attr(m, in[i], H5T_NATIVE_INT, &ints[i], 0);
    hid_t vt = H5Tcopy(H5T_C_S1);
    H5OK(H5Tset_size(vt, H5T_VARIABLE));
    runfile_attr(m, "modality_names", vt, rf->mod_names, (hsize_t)rf->n_mod);
    H5Tclose(vt);
    int32_t tower_of[8];
    for (int i = 0; i < rf->n_mod; i++)
        tower_of[i] = i;
    runfile_attr(m, "tower_of", H5T_NATIVE_INT32, tower_of, (hsize_t)rf->n_mod);
    int64_t params = 123456;
    runfile_attr(m, "params_total", H5T_NATIVE_INT64, &params, 0);
    runfile_attr(m, "params_active_per_token", H5T_NATIVE_INT64, &params, 0);
    runfile_attr(m, "flops_per_token", H5T_NATIVE_DOUBLE, &rf->flops_per_token, 0);
    H5Gclose(m);
    hid_t g = H5Gcreate2(f, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(g);
    hsize_t nm = (hsize_t)rf->n_mod;
    struct { const char *name; hid_t type; const void *v; hsize_t cols; } cols[] = {
        {"step", H5T_NATIVE_INT64, rf->step, 0},
        {"tokens", H5T_NATIVE_INT64, rf->tokens, 0},
        {"flops", H5T_NATIVE_DOUBLE, rf->flops, 0},
        {"gemm_flops", H5T_NATIVE_DOUBLE, rf->flops, 0},
        {"wall_time", H5T_NATIVE_DOUBLE, rf->wall, 0},
        {"loss", H5T_NATIVE_DOUBLE, rf->loss, 0},
        {"step_time", H5T_NATIVE_DOUBLE, rf->step_time, 0},
        {"compute_time", H5T_NATIVE_DOUBLE, rf->compute, 0},
        {"comm_time", H5T_NATIVE_DOUBLE, rf->comm, 0},
        {"io_time", H5T_NATIVE_DOUBLE, rf->io, 0},
        {"loss_by_modality", H5T_NATIVE_DOUBLE, rf->loss_by_modality, nm},
        {"tokens_by_modality", H5T_NATIVE_INT64, rf->tokens_by_mod, nm},
        {"load_avg", H5T_NATIVE_DOUBLE, rf->load_avg, 0}};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (cols[i].v && (!rf->skip || strcmp(rf->skip, cols[i].name)))
            runfile_dset(g, cols[i].name, cols[i].type, cols[i].v, rf->rows, cols[i].cols);
    H5Gclose(g);
    g = H5Gcreate2(f, "eval", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5OK(g);
    runfile_dset(g, "step", H5T_NATIVE_INT64, rf->step, 0, 0);
    runfile_dset(g, "flops", H5T_NATIVE_DOUBLE, rf->flops, 0, 0);
    runfile_dset(g, "wall_time", H5T_NATIVE_DOUBLE, rf->wall, 0, 0);
    runfile_dset(g, "loss", H5T_NATIVE_DOUBLE, rf->loss, 0, 0);
    runfile_dset(g, "loss_by_modality", H5T_NATIVE_DOUBLE, rf->loss_by_modality, 0, nm);
    H5Gclose(g);
    H5Fclose(f);
}

#endif
