/* Checkpoints in parallel HDF5: /params/NAME, /adam_m/NAME, /adam_v/NAME hold full
 * logical tensors; each rank of DP group 0 writes its TP slice (replicated tensors:
 * world rank 0), everyone else joins the collective with an empty selection. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "motscale/checkpoint.h"
#include "motscale/h5.h"

#define CKPT_FORMAT 1
static const char *groups[3] = {"params", "adam_m", "adam_v"};

uint64_t checkpoint_fingerprint(const model_t *m)
{
    const model_shape_t *s = &m->shape;
    const vocab_t *v = &m->vocab;
    char text[1024];
    int n = snprintf(text, sizeof text, "d%d L%d H%d f%d towers%d norm%d qk%d V%d", s->d_model,
                     s->n_layers, s->n_heads, s->d_ff, s->n_towers, s->norm, s->qk_norm, v->size);
    if (s->kind == MODEL_ZIPPER) /* its towers' shapes; the other kinds' text stays as it was */
        for (int X = 0; X < ZT_N; X++)
            n += snprintf(text + n, sizeof text - (size_t)n, " zipper%d:d%d L%d H%d f%d i%d", X, s->zt[X].d_model,
                          s->zt[X].n_layers, s->zt[X].n_heads, s->zt[X].d_ff, s->zt[X].interval);
    for (int k = 0; k < v->n_modalities && n < (int)sizeof text; k++)
        n += snprintf(text + n, sizeof text - (size_t)n, " %s[%d,%d)->%d", v->names[k], v->lo[k],
                      v->hi[k], s->tower_of[k]);
    /* FNV-1a with the offset basis one digit short of the standard one: kept, since
     * existing checkpoints carry it (docs/run-record.md) */
    uint64_t h = 1469598103934665603ull;
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

/* The hyperslab of t's slice in the logical tensor; an empty one when !mine. */
static void slice_of(const tensor_info_t *t, bool mine, hsize_t start[2], hsize_t count[2])
{
    start[0] = (hsize_t)t->row0;
    start[1] = (hsize_t)t->col0;
    count[0] = mine ? (hsize_t)t->lrows : 0;
    count[1] = mine ? (hsize_t)t->lcols : 0;
}

/* Did every rank of the world succeed? The verdict of each collective step, so no
 * rank goes on to the next collective call while another has left (a full disk
 * fails the write on some ranks only). */
static bool all_ok(const mesh_t *mesh, bool ok)
{
    int bad = !ok;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, mesh->world));
    return !bad;
}

/* The checksum of a tensor (docs/run-record.md, "Checkpoints"): over every element
 * x_i of the logical tensor, i its row-major index, the sum mod 2^64 of
 * mix(i * 0x9e3779b97f4a7c15 xor bits(x_i)), bits the fp32 pattern and mix
 * splitmix64's finaliser. A sum, so each rank adds its own slice and an all-reduce
 * completes it, whatever the layout. Here: this rank's part over the slice in buf. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t slice_checksum(const tensor_info_t *t, const real *buf)
{
    uint64_t sum = 0;
    for (int64_t r = 0; r < t->lrows; r++)
        for (int64_t k = 0; k < t->lcols; k++) {
            float v = (float)buf[r * t->lcols + k]; /* the file holds fp32 */
            uint32_t bits;
            memcpy(&bits, &v, sizeof bits);
            uint64_t i = (uint64_t)((t->row0 + r) * t->cols + t->col0 + k);
            sum += mix64((i * 0x9e3779b97f4a7c15ull) ^ bits);
        }
    return sum;
}

/* The whole tensor's checksum from every rank's slice: the slices of a sharded tensor
 * (or a 2D block) partition it over the TP group; a replicated one is whole here. */
static uint64_t tensor_checksum(const tensor_info_t *t, const real *buf, const mesh_t *mesh, bool writer_only)
{
    bool split = t->shard != SHARD_NONE || t->grid2d;
    uint64_t sum = (!writer_only || rank_writes(t, mesh)) ? slice_checksum(t, buf) : 0;
    MPI_Comm comm = writer_only ? mesh->world : split ? mesh->tp_comm : MPI_COMM_SELF;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_UINT64_T, MPI_SUM, comm));
    return sum;
}

/* Write the three buffers of every tensor; collective, agreed tensor by tensor. */
static bool write_tensors(const h5ctx_t *c, hid_t file, const model_t *m, const adamw_t *opt,
                          const mesh_t *mesh)
{
    const real *buf[3] = {m->params, opt->m, opt->v};
    hid_t dxpl = h5_collective(c);
    bool ok = all_ok(mesh, dxpl >= 0);
    for (int g = 0; g < 3 && ok; g++) {
        hid_t grp = H5Gcreate2(file, groups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (!(ok = all_ok(mesh, grp >= 0 || h5_fail(c, groups[g], "cannot create the group"))))
            break;
        for (int i = 0; i < m->n_tensors && ok; i++) {
            const tensor_info_t *t = &m->tensors[i];
            if (g > 0 && t->frozen) /* a frozen tensor has no AdamW moments */
                continue;
            char name[160];
            snprintf(name, sizeof name, "/%s/%s", groups[g], t->name);
            hsize_t dims[2] = {(hsize_t)t->rows, (hsize_t)t->cols}, start[2], count[2];
            /* every rank computes the sum (collective) and writes the same attribute */
            uint64_t sum = tensor_checksum(t, buf[g] + t->offset, mesh, true);
            hid_t space = H5Screate_simple(2, dims, NULL), ds = -1;
            if (space >= 0)
                ds = H5Dcreate2(grp, t->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            bool here = ds >= 0 || h5_fail(c, name, "cannot create the dataset (disk full?)");
            if (all_ok(mesh, here)) {
                bool mine = rank_writes(t, mesh);
                slice_of(t, mine, start, count);
                here = h5_slab_write(c, ds, name, 2, start, count, H5T_REAL_T, buf[g] + (mine ? t->offset : 0),
                                     dxpl) &&
                       h5_attr_put(c, ds, name, "checksum", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &sum);
            } else {
                here = false;
            }
            ok = all_ok(mesh, here);
            h5_drop(&ds);
            h5_drop(&space);
        }
        H5Gclose(grp);
    }
    h5_drop(&dxpl);
    return ok;
}

/* The root attributes: format, progress and the model's fingerprint. */
static bool write_attrs(const h5ctx_t *c, hid_t file, const train_progress_t *p, uint64_t fingerprint)
{
    return h5_attr_put_i64(c, file, "/", "format", CKPT_FORMAT) &&
           h5_attr_put_i64(c, file, "/", "step", p->step) &&
           h5_attr_put_i64(c, file, "/", "tokens", p->tokens) &&
           h5_attr_put_f64(c, file, "/", "flops", p->flops) &&
           h5_attr_put_f64(c, file, "/", "gemm_flops", p->gemm_flops) &&
           h5_attr_put_f64(c, file, "/", "wall_time", p->wall_time) &&
           h5_attr_put_i64(c, file, "/", "fingerprint", (int64_t)fingerprint) &&
           h5_attr_put_i64(c, file, "/", "data_cursor", p->step);
}

/* Keep the newest `keep` checkpoints of dir (rank 0). */
static void prune(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
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

/* Rank 0: does dir have room for the checkpoint (three fp32 copies of every logical
 * tensor plus metadata)? Decided before anything is written, so a full disk is one
 * line and the previous checkpoint stays. */
static bool room_for(const char *dir, const model_t *m, char *err, size_t errlen)
{
    double need = 256.0 * 1024;
    for (int i = 0; i < m->n_tensors; i++)
        need += 3 * 4.0 * (double)m->tensors[i].rows * (double)m->tensors[i].cols + 4096;
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0)
        return true; /* cannot tell: let the write find out */
    double avail = (double)fs.f_bavail * (double)fs.f_frsize;
    if (avail >= need)
        return true;
    return errorf(err, errlen, "%s: the checkpoint needs about %.1f MB and %.1f MB are free (disk full?)", dir,
                  need / 1e6, avail / 1e6);
}

bool checkpoint_write(const char *dir, const model_t *m, const adamw_t *opt,
                      const train_progress_t *p, uint64_t fingerprint, const mesh_t *mesh,
                      int keep, double *seconds, double *bytes, char *err, size_t errlen)
{
    double t0 = now_seconds();
    char final[4200], tmp[4200];
    snprintf(final, sizeof final, "%s/ckpt-%09lld.h5", dir, (long long)p->step);
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%09lld.h5.tmp", dir, (long long)p->step);
    int room = mesh->world_rank == 0 ? room_for(dir, m, err, errlen) : 1;
    MPI_CHECK(MPI_Bcast(&room, 1, MPI_INT, 0, mesh->world));
    if (!room)
        return mesh->world_rank == 0 ? false : errorf(err, errlen, "%s: not enough room for the checkpoint", dir);
    h5ctx_t c = {tmp, err, errlen};
    h5_quiet_t q = h5_quiet_begin();
    h5_fopts_t o = {.comm = mesh->world};
    hid_t file = h5_file_open(&c, H5_TRUNCATE, &o);
    bool ok = all_ok(mesh, file >= 0);
    ok = ok && all_ok(mesh, write_attrs(&c, file, p, fingerprint)) && write_tensors(&c, file, m, opt, mesh);
    /* every rank that opened the file closes it (collective), whatever happened */
    if (file >= 0 && !h5_file_close(&c, file))
        ok = false;
    h5_quiet_end(q);
    int bad = !all_ok(mesh, ok);
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
        prune(dir, keep);
    }
    MPI_CHECK(MPI_Bcast(&bad, 1, MPI_INT, 0, mesh->world));
    *seconds = now_seconds() - t0;
    if (bad)
        return errorf(err, errlen, "renaming %s to %s: %s", tmp, final, strerror(errno));
    return true;
}

/* The model tensors of one group into buf; collective, agreed tensor by tensor. A
 * tensor fails on a missing dataset, another shape, a checksum that does not match
 * the values read, or a value that is not finite. */
static bool read_tensors(const h5ctx_t *c, hid_t file, const model_t *m, const mesh_t *mesh,
                         const char *group, real *buf, hid_t dxpl)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *t = &m->tensors[i];
        if (t->frozen && buf != m->params)
            continue;
        char name[160];
        snprintf(name, sizeof name, "/%s/%s", group, t->name);
        hid_t ds = h5_dset_open(c, file, name);
        int rank;
        hsize_t dims[2], start[2], count[2];
        bool ok = ds >= 0 && h5_dset_shape(c, ds, name, &rank, dims);
        if (ok && (rank != 2 || dims[0] != (hsize_t)t->rows || dims[1] != (hsize_t)t->cols))
            ok = h5_fail(c, name, "has shape %llux%llu, the model wants %lldx%lld", (unsigned long long)dims[0],
                         (unsigned long long)dims[1], (long long)t->rows, (long long)t->cols);
        uint64_t want = 0;
        ok = ok && h5_attr_get(c, ds, name, "checksum", H5T_NATIVE_UINT64, &want, 1);
        if (all_ok(mesh, ok)) {
            slice_of(t, true, start, count);
            ok = h5_slab_read(c, ds, name, 2, start, count, H5T_REAL_T, buf + t->offset, dxpl);
            for (size_t j = 0; ok && j < t->numel; j++)
                if (!isfinite(buf[t->offset + j]))
                    ok = h5_fail(c, name, "element %zu of this rank's slice is %g: corrupted", j,
                                 (double)buf[t->offset + j]);
            /* collective over the TP group: every rank of it reached this point */
            uint64_t got = all_ok(mesh, ok) ? tensor_checksum(t, buf + t->offset, mesh, false) : want;
            if (ok && got != want)
                ok = h5_fail(c, name, "checksum %016llx, the file says %016llx: corrupted", (unsigned long long)got,
                             (unsigned long long)want);
        }
        h5_drop(&ds);
        if (!all_ok(mesh, ok))
            return false;
    }
    return true;
}

/* Validate and read one checkpoint into the model and optimizer; collective. */
static bool load_one(const char *path, model_t *m, adamw_t *opt, train_progress_t *p,
                     uint64_t fingerprint, const mesh_t *mesh, char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    h5_fopts_t o = {.comm = mesh->world};
    hid_t file = h5_file_open(&c, H5_READ, &o);
    if (!all_ok(mesh, file >= 0)) {
        h5_drop(&file);
        return false;
    }
    int64_t fp = 0, fmt = 0;
    bool ok = h5_attr_get(&c, file, "/", "format", H5T_NATIVE_INT64, &fmt, 1);
    if (ok && fmt != CKPT_FORMAT)
        ok = h5_fail(&c, "/@format", "is %lld, this motscale reads %d", (long long)fmt, CKPT_FORMAT);
    ok = ok && h5_attr_get(&c, file, "/", "fingerprint", H5T_NATIVE_INT64, &fp, 1);
    if (ok && (uint64_t)fp != fingerprint)
        ok = h5_fail(&c, "/@fingerprint", "checkpoint of a different model (shape fingerprint differs)");
    ok = ok && h5_attr_get(&c, file, "/", "step", H5T_NATIVE_INT64, &p->step, 1) &&
         h5_attr_get(&c, file, "/", "tokens", H5T_NATIVE_INT64, &p->tokens, 1) &&
         h5_attr_get(&c, file, "/", "flops", H5T_NATIVE_DOUBLE, &p->flops, 1) &&
         h5_attr_get(&c, file, "/", "gemm_flops", H5T_NATIVE_DOUBLE, &p->gemm_flops, 1) &&
         h5_attr_get(&c, file, "/", "wall_time", H5T_NATIVE_DOUBLE, &p->wall_time, 1);
    real *buf[3] = {m->params, opt->m, opt->v};
    hid_t dxpl = -1;
    ok = all_ok(mesh, ok) && all_ok(mesh, (dxpl = h5_collective(&c)) >= 0);
    for (int g = 0; g < 3 && ok; g++)
        ok = read_tensors(&c, file, m, mesh, groups[g], buf[g], dxpl);
    h5_drop(&dxpl);
    h5_drop(&file);
    return ok;
}

/* The tensors of one source file: rows [0, src_rows) of each come from rows
 * [src_row0, ...) of /params/src_name (this rank's slice of them); collective. */
static bool read_source(const h5ctx_t *c, hid_t file, model_t *m, int src, const mesh_t *mesh, hid_t dxpl)
{
    for (int i = 0; i < m->n_tensors; i++) {
        tensor_info_t *t = &m->tensors[i];
        if (t->src != src)
            continue;
        char name[160];
        snprintf(name, sizeof name, "/params/%s", t->src_name);
        hid_t ds = h5_dset_open(c, file, name);
        int rank;
        hsize_t dims[2];
        bool ok = ds >= 0 && h5_dset_shape(c, ds, name, &rank, dims);
        if (ok && (rank != 2 || dims[1] != (hsize_t)t->cols || dims[0] < (hsize_t)(t->src_row0 + t->src_rows)))
            ok = h5_fail(c, name, "has shape %llux%llu; %s needs rows [%lld, %lld) of %lld columns",
                         (unsigned long long)dims[0], (unsigned long long)dims[1], t->name, (long long)t->src_row0,
                         (long long)(t->src_row0 + t->src_rows), (long long)t->cols);
        if (all_ok(mesh, ok)) {
            /* this rank's slice rows [row0, row0 + lrows) that the source covers */
            int64_t end = t->row0 + t->lrows < t->src_rows ? t->row0 + t->lrows : t->src_rows;
            int64_t rows = end > t->row0 ? end - t->row0 : 0;
            hsize_t start[2] = {(hsize_t)(t->src_row0 + t->row0), (hsize_t)t->col0};
            hsize_t count[2] = {(hsize_t)rows, (hsize_t)t->lcols};
            real *dst = m->params + t->offset;
            ok = h5_slab_read(c, ds, name, 2, start, count, H5T_REAL_T, dst, dxpl);
            for (int64_t j = 0; ok && j < rows * t->lcols; j++)
                if (!isfinite(dst[j]))
                    ok = h5_fail(c, name, "element %lld of the rows read is %g: corrupted", (long long)j,
                                 (double)dst[j]);
        }
        h5_drop(&ds);
        if (!all_ok(mesh, ok))
            return false;
    }
    return true;
}

bool checkpoint_load_sources(model_t *m, const char source[][CFG_PATH_LEN], int n_sources, const mesh_t *mesh,
                             char *err, size_t errlen)
{
    for (int src = 0; src < n_sources; src++) {
        bool used = false;
        for (int i = 0; i < m->n_tensors; i++)
            used |= m->tensors[i].src == src;
        if (!used || !source[src][0])
            continue;
        h5ctx_t c = {source[src], err, errlen};
        h5_fopts_t o = {.comm = mesh->world};
        h5_quiet_t q = h5_quiet_begin();
        hid_t file = h5_file_open(&c, H5_READ, &o), dxpl = -1;
        int64_t fmt = 0;
        bool ok = file >= 0 && h5_attr_get(&c, file, "/", "format", H5T_NATIVE_INT64, &fmt, 1);
        if (ok && fmt != CKPT_FORMAT)
            ok = h5_fail(&c, "/@format", "is %lld, this motscale reads %d", (long long)fmt, CKPT_FORMAT);
        ok = all_ok(mesh, ok) && all_ok(mesh, (dxpl = h5_collective(&c)) >= 0);
        ok = ok && read_source(&c, file, m, src, mesh, dxpl);
        h5_drop(&dxpl);
        h5_drop(&file);
        h5_quiet_end(q);
        if (!ok)
            return false;
    }
    return true;
}

int checkpoint_load_latest(const char *dir, model_t *m, adamw_t *opt, train_progress_t *p,
                           uint64_t fingerprint, const mesh_t *mesh, char *err, size_t errlen)
{
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
        h5_quiet_t q = h5_quiet_begin();
        bool ok = load_one(path, m, opt, p, fingerprint, mesh, err, errlen);
        h5_quiet_end(q);
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
