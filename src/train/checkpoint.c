/* Checkpoints in parallel HDF5: /params/NAME, /adam_m/NAME, /adam_v/NAME hold full
 * logical tensors; each rank of DP group 0 writes its TP slice (replicated tensors:
 * world rank 0), everyone else joins the collective with an empty selection. */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "motscale/checkpoint.h"

#define CKPT_FORMAT 1
static const char *groups[3] = {"params", "adam_m", "adam_v"};

uint64_t checkpoint_fingerprint(const config_t *cfg, const vocab_t *v)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "d%d L%d H%d f%d towers%d norm%d qk%d V%d", cfg->d_model,
                     cfg->n_layers, cfg->n_heads, cfg->d_ff, cfg->n_towers, cfg->norm, cfg->qk_norm,
                     v->size);
    for (int m = 0; m < v->n_modalities && n < (int)sizeof text; m++)
        n += snprintf(text + n, sizeof text - (size_t)n, " %s[%d,%d)->%d", v->names[m], v->lo[m],
                      v->hi[m], cfg->tower_of[m]);
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* This rank's part of tensor t in a collective transfer: its slice, or nothing. */
static bool rank_writes(const tensor_info_t *t, const mesh_t *mesh)
{
    if (mesh->dp_rank != 0)
        return false;
    return t->shard != SHARD_NONE || mesh->tp_rank == 0;
}

static hid_t select_slice(hid_t space, const tensor_info_t *t, bool mine)
{
    if (!mine) {
        hid_t mem = H5Screate_simple(1, (hsize_t[]){1}, NULL);
        if (mem < 0 || H5Sselect_none(space) < 0 || H5Sselect_none(mem) < 0)
            return -1;
        return mem;
    }
    hsize_t start[2] = {(hsize_t)t->row0, (hsize_t)t->col0};
    hsize_t count[2] = {(hsize_t)t->lrows, (hsize_t)t->lcols};
    if (H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
        return -1;
    return H5Screate_simple(2, count, NULL);
}

static hid_t open_fapl(const mesh_t *mesh)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, mesh->world, MPI_INFO_NULL) < 0)
        return -1;
    return fapl;
}

static bool write_attr_i64(hid_t loc, const char *name, int64_t v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_INT64, s, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return ok;
}

static bool write_attr_f64(hid_t loc, const char *name, double v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, s, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return ok;
}

static bool read_attr(hid_t loc, const char *name, hid_t type, void *v)
{
    if (H5Aexists(loc, name) <= 0)
        return false;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    bool ok = a >= 0 && H5Aread(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok;
}

/* Write the three buffers of every tensor; collective. */
static bool write_tensors(hid_t file, const model_t *m, const adamw_t *opt, const mesh_t *mesh,
                          char *err, size_t errlen)
{
    const real *buf[3] = {m->params, opt->m, opt->v};
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    bool ok = true;
    for (int g = 0; g < 3 && ok; g++) {
        hid_t grp = H5Gcreate2(file, groups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (grp < 0) {
            ok = errorf(err, errlen, "creating group /%s", groups[g]);
            break;
        }
        for (int i = 0; i < m->n_tensors && ok; i++) {
            const tensor_info_t *t = &m->tensors[i];
            hsize_t dims[2] = {(hsize_t)t->rows, (hsize_t)t->cols};
            hid_t space = H5Screate_simple(2, dims, NULL);
            hid_t ds = H5Dcreate2(grp, t->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            bool mine = rank_writes(t, mesh);
            hid_t mem = ds >= 0 ? select_slice(space, t, mine) : -1;
            ok = mem >= 0 && H5Dwrite(ds, H5T_REAL_T, mem, space, dxpl, buf[g] + (mine ? t->offset : 0)) >= 0;
            if (!ok)
                errorf(err, errlen, "writing /%s/%s (disk full or I/O error?)", groups[g], t->name);
            if (mem >= 0) H5Sclose(mem);
            if (ds >= 0) H5Dclose(ds);
            H5Sclose(space);
        }
        H5Gclose(grp);
    }
    H5Pclose(dxpl);
    return ok;
}

bool checkpoint_write(const char *dir, const model_t *m, const adamw_t *opt,
                      const train_progress_t *p, uint64_t fingerprint, const mesh_t *mesh,
                      int keep, double *seconds, double *bytes, char *err, size_t errlen)
{
    double t0 = now_seconds();
    char final[4200], tmp[4200];
    snprintf(final, sizeof final, "%s/ckpt-%09lld.h5", dir, (long long)p->step);
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%09lld.h5.tmp", dir, (long long)p->step);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    bool ok = true;
    hid_t fapl = open_fapl(mesh);
    hid_t file = fapl >= 0 ? H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : -1;
    if (file < 0)
        ok = errorf(err, errlen, "%s: cannot create (is the directory writable?)", tmp);
    if (ok) {
        ok = write_attr_i64(file, "format", CKPT_FORMAT) && write_attr_i64(file, "step", p->step) &&
             write_attr_i64(file, "tokens", p->tokens) && write_attr_f64(file, "flops", p->flops) &&
             write_attr_f64(file, "gemm_flops", p->gemm_flops) &&
             write_attr_f64(file, "wall_time", p->wall_time) &&
             write_attr_i64(file, "fingerprint", (int64_t)fingerprint) &&
             write_attr_i64(file, "data_cursor", p->step);
        if (!ok)
            errorf(err, errlen, "%s: writing attributes", tmp);
        ok = ok && write_tensors(file, m, opt, mesh, err, errlen);
        if (H5Fclose(file) < 0 && ok)
            ok = errorf(err, errlen, "%s: closing (disk full?)", tmp);
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    int bad = !ok;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, mesh->world));
    if (bad) {
        if (mesh->world_rank == 0)
            unlink(tmp);
        if (ok)
            errorf(err, errlen, "another rank failed writing %s", tmp);
        return false;
    }
    if (mesh->world_rank == 0) {
        struct stat st;
        *bytes = stat(tmp, &st) == 0 ? (double)st.st_size : 0;
        if (rename(tmp, final) != 0)
            bad = 1;
        /* keep the newest `keep` */
        DIR *d = opendir(dir);
        if (d) {
            int64_t steps[4096];
            int n = 0;
            struct dirent *e;
            while ((e = readdir(d)) && n < 4096) {
                long long s;
                if (sscanf(e->d_name, "ckpt-%lld.h5", &s) == 1 && strstr(e->d_name, ".tmp") == NULL)
                    steps[n++] = s;
            }
            closedir(d);
            for (int i = 0; i < n; i++) {
                int newer = 0;
                for (int j = 0; j < n; j++)
                    newer += steps[j] > steps[i];
                if (newer >= keep) {
                    char old[4200];
                    snprintf(old, sizeof old, "%s/ckpt-%09lld.h5", dir, (long long)steps[i]);
                    unlink(old);
                }
            }
        }
    }
    MPI_CHECK(MPI_Bcast(&bad, 1, MPI_INT, 0, mesh->world));
    *seconds = now_seconds() - t0;
    if (bad)
        return errorf(err, errlen, "renaming %s to %s: %s", tmp, final, strerror(errno));
    return true;
}

/* Validate and read one checkpoint into the model and optimizer; collective. */
static bool load_one(const char *path, model_t *m, adamw_t *opt, train_progress_t *p,
                     uint64_t fingerprint, const mesh_t *mesh, char *err, size_t errlen)
{
    hid_t fapl = open_fapl(mesh);
    hid_t file = fapl >= 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl) : -1;
    if (fapl >= 0)
        H5Pclose(fapl);
    if (file < 0)
        return errorf(err, errlen, "%s: not a readable HDF5 file (truncated or corrupted?)", path);
    bool ok = true;
    int64_t fp = 0, fmt = 0;
    if (!read_attr(file, "format", H5T_NATIVE_INT64, &fmt) || fmt != CKPT_FORMAT)
        ok = errorf(err, errlen, "%s: /@format missing or not %d", path, CKPT_FORMAT);
    else if (!read_attr(file, "fingerprint", H5T_NATIVE_INT64, &fp) || (uint64_t)fp != fingerprint)
        ok = errorf(err, errlen, "%s: checkpoint of a different model (shape fingerprint differs)", path);
    else if (!read_attr(file, "step", H5T_NATIVE_INT64, &p->step) ||
             !read_attr(file, "tokens", H5T_NATIVE_INT64, &p->tokens) ||
             !read_attr(file, "flops", H5T_NATIVE_DOUBLE, &p->flops) ||
             !read_attr(file, "gemm_flops", H5T_NATIVE_DOUBLE, &p->gemm_flops) ||
             !read_attr(file, "wall_time", H5T_NATIVE_DOUBLE, &p->wall_time))
        ok = errorf(err, errlen, "%s: progress attributes missing", path);
    real *buf[3] = {m->params, opt->m, opt->v};
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    for (int g = 0; g < 3 && ok; g++)
        for (int i = 0; i < m->n_tensors && ok; i++) {
            const tensor_info_t *t = &m->tensors[i];
            char name[160];
            snprintf(name, sizeof name, "/%s/%s", groups[g], t->name);
            hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
            if (ds < 0) {
                ok = errorf(err, errlen, "%s: %s missing", path, name);
                break;
            }
            hid_t space = H5Dget_space(ds);
            hsize_t dims[2] = {0, 0};
            if (H5Sget_simple_extent_ndims(space) != 2 || H5Sget_simple_extent_dims(space, dims, NULL) < 0 ||
                dims[0] != (hsize_t)t->rows || dims[1] != (hsize_t)t->cols) {
                ok = errorf(err, errlen, "%s: %s has shape %llux%llu, the model wants %lldx%lld", path, name,
                           (unsigned long long)dims[0], (unsigned long long)dims[1], (long long)t->rows,
                           (long long)t->cols);
            } else {
                hid_t mem = select_slice(space, t, true);
                ok = mem >= 0 && H5Dread(ds, H5T_REAL_T, mem, space, dxpl, buf[g] + t->offset) >= 0;
                if (!ok)
                    errorf(err, errlen, "%s: reading %s failed (truncated or corrupted?)", path, name);
                if (mem >= 0) H5Sclose(mem);
            }
            H5Sclose(space);
            H5Dclose(ds);
        }
    H5Pclose(dxpl);
    H5Fclose(file);
    return ok;
}

int checkpoint_load_latest(const char *dir, model_t *m, adamw_t *opt, train_progress_t *p,
                           uint64_t fingerprint, const mesh_t *mesh, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int64_t steps[4096];
    int n = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && n < 4096) {
            long long s;
            char tail[8];
            if (sscanf(e->d_name, "ckpt-%lld.h%7s", &s, tail) == 2 && !strcmp(tail, "5"))
                steps[n++] = s;
        }
        closedir(d);
    }
    /* newest first; every rank lists the same directory, rank 0's order is used */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (steps[j] > steps[i]) {
                int64_t t = steps[i];
                steps[i] = steps[j];
                steps[j] = t;
            }
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, mesh->world));
    MPI_CHECK(MPI_Bcast(steps, n, MPI_INT64_T, 0, mesh->world));
    if (n == 0)
        return 0;
    char first_err[4300] = "";
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/ckpt-%09lld.h5", dir, (long long)steps[i]);
        bool ok = load_one(path, m, opt, p, fingerprint, mesh, err, errlen);
        int bad = !ok;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, mesh->world));
        if (!bad) {
            if (i > 0)
                infof("resumed from the older checkpoint %s\n", path);
            return 1;
        }
        if (mesh->world_rank == 0)
            warnf("skipping checkpoint: %s", ok ? "another rank could not read it" : err);
        if (!first_err[0])
            snprintf(first_err, sizeof first_err, "%s", ok ? path : err);
    }
    errorf(err, errlen, "no usable checkpoint in %s (newest: %s)", dir, first_err);
    return -1;
}
