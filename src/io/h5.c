/* The HDF5 layer (h5.h): every HDF5 call of the project's files outside it goes
 * through these functions, each checked at the call with the object's name and
 * HDF5's innermost reason. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "motscale/common.h"
#include "motscale/h5.h"

/* The h5clear -s switch: a file-access property that H5Fopen honours by zeroing the
 * superblock status flags a killed writer left set. HDF5 1.10 has no documented
 * call for it; h5clear sets this same property (docs/run-record.md). */
#define CLEAR_STATUS_FLAGS_PROP "clear_status_flags"

/* The innermost HDF5 message: the one that says what actually went wrong. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc)
        snprintf((char *)data, 256, "%s", e->desc);
    return 0;
}

bool h5_fail(const h5ctx_t *c, const char *obj, const char *fmt, ...)
{
    char what[512], detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, detail);
    H5Eclear2(H5E_DEFAULT);
    /* the sec2 and MPI-IO drivers pack the system's reason into a long message:
     * keep that reason ("No space left on device"), else the first line */
    const char *why = strstr(detail, "error message = '");
    if (why) {
        char reason[128];
        if (sscanf(why, "error message = '%127[^']'", reason) == 1)
            snprintf(detail, sizeof detail, "%s", reason);
    }
    detail[strcspn(detail, "\n")] = 0;
    char msg[1024];
    if (detail[0])
        snprintf(msg, sizeof msg, "%s: %s: %s (HDF5: %s)", c->path, obj, what, detail);
    else
        snprintf(msg, sizeof msg, "%s: %s: %s", c->path, obj, what);
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s", msg);
    else
        warnf("%s", msg);
    return false;
}

h5_quiet_t h5_quiet_begin(void)
{
    h5_quiet_t q = {NULL, NULL};
    if (H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data) < 0)
        DIE(EXIT_FAULT, "H5Eget_auto2 failed: the HDF5 error stack is unusable");
    if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0)
        DIE(EXIT_FAULT, "H5Eset_auto2 failed: cannot silence HDF5's error printing");
    return q;
}

void h5_quiet_end(h5_quiet_t q)
{
    if (H5Eset_auto2(H5E_DEFAULT, q.func, q.data) < 0)
        DIE(EXIT_FAULT, "H5Eset_auto2 failed: cannot restore HDF5's error printing");
}

void h5_drop(hid_t *id)
{
    if (*id >= 0) {
        H5Idec_ref(*id);
        H5Eclear2(H5E_DEFAULT);
    }
    *id = -1;
}

/* ---- files -------------------------------------------------------------------- */

static hid_t file_access(const h5ctx_t *c, const h5_fopts_t *o)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) {
        h5_fail(c, "/", "cannot create a file access property list");
        return -1;
    }
    bool ok = true;
    if (o->comm != MPI_COMM_NULL && H5Pset_fapl_mpio(fapl, o->comm, MPI_INFO_NULL) < 0)
        ok = h5_fail(c, "/", "cannot select the MPI-IO driver");
    else if (o->latest && H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0)
        ok = h5_fail(c, "/", "cannot set latest-format bounds");
    /* Locking stays on for writers, but a file system without flock (some NFS and
     * Lustre mounts) does not stop them; readers of a live file take no lock. */
    else if (H5Pset_file_locking(fapl, !o->no_lock, true) < 0)
        ok = h5_fail(c, "/", "cannot set file locking");
    if (ok && o->clear_status_flags) {
        /* HDF5 1.10.8 registers the property in every file access list (so H5Pset);
         * builds that do not get it inserted, as h5clear does. */
        hbool_t yes = true;
        htri_t known = H5Pexist(fapl, CLEAR_STATUS_FLAGS_PROP);
        if (known < 0 || (known > 0 && H5Pset(fapl, CLEAR_STATUS_FLAGS_PROP, &yes) < 0) ||
            (known == 0 && H5Pinsert2(fapl, CLEAR_STATUS_FLAGS_PROP, sizeof yes, &yes, NULL, NULL,
                                      NULL, NULL, NULL, NULL) < 0))
            ok = h5_fail(c, "/", "cannot request clearing the superblock status flags");
    }
    if (!ok) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

hid_t h5_file_open(const h5ctx_t *c, enum h5_mode mode, const h5_fopts_t *opts)
{
    h5_fopts_t dflt = {.comm = MPI_COMM_NULL};
    const h5_fopts_t *o = opts ? opts : &dflt;
    if (mode == H5_READ || mode == H5_READ_SWMR || mode == H5_APPEND) {
        if (access(c->path, mode == H5_APPEND ? R_OK | W_OK : R_OK) != 0) {
            h5_fail(c, "/", "cannot open: %s", strerror(errno));
            return -1;
        }
        if (H5Fis_hdf5(c->path) <= 0) {
            h5_fail(c, "/", "not an HDF5 file, or truncated");
            return -1;
        }
    }
    hid_t fapl = file_access(c, o);
    if (fapl < 0)
        return -1;
    hid_t f = -1;
    switch (mode) {
    case H5_READ:
        f = H5Fopen(c->path, H5F_ACC_RDONLY, fapl);
        break;
    case H5_READ_SWMR:
        /* a file that was never SWMR-written (or whose writer is gone) opens plainly */
        f = H5Fopen(c->path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
        if (f < 0)
            f = H5Fopen(c->path, H5F_ACC_RDONLY, fapl);
        break;
    case H5_APPEND:
        f = H5Fopen(c->path, H5F_ACC_RDWR, fapl);
        break;
    case H5_CREATE:
        f = H5Fcreate(c->path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
        break;
    case H5_TRUNCATE:
        f = H5Fcreate(c->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        break;
    }
    /* report before any other HDF5 call: each call clears the error stack */
    if (f < 0)
        h5_fail(c, "/", mode >= H5_CREATE ? "cannot create the file"
                        : mode == H5_APPEND ? "cannot open for writing"
                                            : "cannot open (truncated or corrupt?)");
    H5Pclose(fapl);
    return f;
}

bool h5_file_close(const h5ctx_t *c, hid_t f)
{
    if (f < 0)
        return true;
    if (H5Fclose(f) < 0) {
        h5_fail(c, "/", "cannot close the file (disk full? data since the last flush may be lost)");
        /* a failed close leaves the file open, and HDF5 would try again, and crash,
         * when the library shuts down: let go of it now, whatever it costs */
        H5E_BEGIN_TRY { H5Idec_ref(f); } H5E_END_TRY;
        return false;
    }
    return true;
}

/* ---- attributes --------------------------------------------------------------- */

static void attr_obj(char *out, size_t len, const char *obj, const char *name)
{
    snprintf(out, len, "%s@%s", obj, name);
}

bool h5_attr_put(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, hid_t ftype,
                 hid_t mtype, hsize_t n, const void *buf)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    htri_t exists = H5Aexists(loc, name);
    if (exists < 0)
        return h5_fail(c, where, "cannot check whether the attribute exists");
    if (exists > 0 && H5Adelete(loc, name) < 0)
        return h5_fail(c, where, "cannot replace the attribute");
    hid_t space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    if (space < 0)
        return h5_fail(c, where, "cannot create a dataspace");
    bool ok = false;
    hid_t a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        h5_fail(c, where, "cannot create the attribute");
    else if (H5Awrite(a, mtype, buf) < 0)
        h5_fail(c, where, "cannot write the attribute");
    else
        ok = true;
    if (a >= 0 && H5Aclose(a) < 0 && ok)
        ok = h5_fail(c, where, "cannot close the attribute");
    H5Sclose(space);
    return ok;
}

bool h5_attr_put_i32(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, int32_t v)
{
    return h5_attr_put(c, loc, obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, &v);
}

bool h5_attr_put_i64(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, int64_t v)
{
    return h5_attr_put(c, loc, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
}

bool h5_attr_put_f64(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, double v)
{
    return h5_attr_put(c, loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v);
}

/* Variable-length (size 0) or fixed-length string type; -1 after h5_fail. */
static hid_t string_type(const h5ctx_t *c, const char *where, size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) {
        h5_fail(c, where, "cannot create a string type");
        return -1;
    }
    if (H5Tset_size(t, size ? size : H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
        (size && H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)) {
        h5_fail(c, where, "cannot set up a UTF-8 string type");
        H5Tclose(t);
        return -1;
    }
    return t;
}

bool h5_attr_put_strs(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                      const char *const *v, size_t n)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    hid_t t = string_type(c, where, 0);
    if (t < 0)
        return false;
    bool ok = h5_attr_put(c, loc, obj, name, t, t, (hsize_t)n, v);
    H5Tclose(t);
    return ok;
}

bool h5_attr_put_str(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                     const char *v)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    hid_t t = string_type(c, where, 0);
    if (t < 0)
        return false;
    const char *p = v ? v : "";
    bool ok = h5_attr_put(c, loc, obj, name, t, t, 0, &p);
    H5Tclose(t);
    return ok;
}

bool h5_attr_put_fixed_str(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                           const char *v)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    hid_t t = string_type(c, where, strlen(v) + 1);
    if (t < 0)
        return false;
    bool ok = h5_attr_put(c, loc, obj, name, t, t, 0, v);
    H5Tclose(t);
    return ok;
}

int h5_attr_has(const h5ctx_t *c, hid_t loc, const char *obj, const char *name)
{
    htri_t e = H5Aexists(loc, name);
    if (e < 0) {
        char where[320];
        attr_obj(where, sizeof where, obj, name);
        h5_fail(c, where, "cannot check whether the attribute exists");
        return -1;
    }
    return e > 0;
}

/* Open attribute name with its type and element count; false after h5_fail. */
static bool attr_open(const h5ctx_t *c, hid_t loc, const char *where, const char *name, hid_t *a,
                      hid_t *t, hssize_t *npts)
{
    *a = *t = -1;
    htri_t e = H5Aexists(loc, name);
    if (e < 0)
        return h5_fail(c, where, "cannot check whether the attribute exists");
    if (e == 0)
        return h5_fail(c, where, "missing");
    if ((*a = H5Aopen(loc, name, H5P_DEFAULT)) < 0)
        return h5_fail(c, where, "cannot open the attribute");
    hid_t sp = H5Aget_space(*a);
    *npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    if (*npts < 0 || (*t = H5Aget_type(*a)) < 0) {
        h5_fail(c, where, "cannot read the attribute's type or dataspace");
        h5_drop(a);
        return false;
    }
    return true;
}

int64_t h5_attr_count(const h5ctx_t *c, hid_t loc, const char *obj, const char *name)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    hid_t a, t;
    hssize_t n;
    if (!attr_open(c, loc, where, name, &a, &t, &n))
        return -1;
    H5Tclose(t);
    H5Aclose(a);
    return (int64_t)n;
}

bool h5_attr_get(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, hid_t mtype,
                 void *out, size_t count)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    hid_t a, t;
    hssize_t n;
    if (!attr_open(c, loc, where, name, &a, &t, &n))
        return false;
    bool ok = false;
    H5T_class_t cls = H5Tget_class(t), want = H5Tget_class(mtype);
    bool numeric = cls == H5T_INTEGER || cls == H5T_FLOAT;
    if ((size_t)n != count)
        h5_fail(c, where, "has %lld elements, expected %zu", (long long)n, count);
    else if (!numeric || (want == H5T_INTEGER && cls != H5T_INTEGER))
        h5_fail(c, where, "is not %s", want == H5T_INTEGER ? "an integer" : "a number");
    else if (H5Aread(a, mtype, out) < 0)
        h5_fail(c, where, "cannot read as a number");
    else
        ok = true;
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* Read n strings of attribute a (type t) into new buffers strs[i]; false after h5_fail. */
static bool read_strings(const h5ctx_t *c, const char *where, hid_t a, hid_t t, hssize_t n,
                         char **strs)
{
    htri_t var = H5Tis_variable_str(t);
    if (var < 0)
        return h5_fail(c, where, "cannot tell the string kind");
    bool ok = true;
    if (var > 0) {
        char **p = xcalloc((size_t)n, sizeof *p);
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
            H5Aread(a, mt, p) < 0) {
            ok = h5_fail(c, where, "cannot read the strings");
        } else {
            for (hssize_t i = 0; i < n; i++) {
                strs[i] = strdup(p[i] ? p[i] : "");
                if (!strs[i])
                    DIE(EXIT_FAULT, "out of memory copying %s", where);
                H5free_memory(p[i]);
            }
        }
        if (mt >= 0)
            H5Tclose(mt);
        free(p);
        return ok;
    }
    size_t sz = H5Tget_size(t);
    if (sz == 0)
        return h5_fail(c, where, "has a zero-length string type");
    char *buf = xcalloc((size_t)n, sz);
    hid_t mt = H5Tcopy(t);
    if (mt < 0 || H5Aread(a, mt, buf) < 0) {
        ok = h5_fail(c, where, "cannot read the strings");
    } else {
        for (hssize_t i = 0; i < n; i++) {
            size_t len = strnlen(buf + (size_t)i * sz, sz);
            strs[i] = xmalloc(len + 1);
            memcpy(strs[i], buf + (size_t)i * sz, len);
            strs[i][len] = 0;
        }
    }
    if (mt >= 0)
        H5Tclose(mt);
    free(buf);
    return ok;
}

bool h5_attr_get_str(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, char **out)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    *out = NULL;
    hid_t a, t;
    hssize_t n;
    if (!attr_open(c, loc, where, name, &a, &t, &n))
        return false;
    bool ok = false;
    if (H5Tget_class(t) != H5T_STRING || n != 1)
        h5_fail(c, where, "expected one string");
    else
        ok = read_strings(c, where, a, t, 1, out);
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

bool h5_attr_get_strs(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                      char *out, size_t cap, int max, int *n_out)
{
    char where[320];
    attr_obj(where, sizeof where, obj, name);
    *n_out = 0;
    hid_t a, t;
    hssize_t n;
    if (!attr_open(c, loc, where, name, &a, &t, &n))
        return false;
    bool ok = false;
    if (H5Tget_class(t) != H5T_STRING || n < 1 || n > max) {
        h5_fail(c, where, "expected 1 to %d strings", max);
    } else {
        char **s = xcalloc((size_t)n, sizeof *s);
        ok = read_strings(c, where, a, t, n, s);
        for (hssize_t i = 0; i < n; i++) {
            if (ok)
                snprintf(out + (size_t)i * cap, cap, "%s", s[i]);
            free(s[i]);
        }
        free(s);
        if (ok)
            *n_out = (int)n;
    }
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* ---- datasets ------------------------------------------------------------------ */

hid_t h5_dset_open(const h5ctx_t *c, hid_t loc, const char *path)
{
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0)
        h5_fail(c, path, "cannot open the dataset (missing?)");
    return d;
}

int h5_exists(const h5ctx_t *c, hid_t loc, const char *path)
{
    /* H5Lexists needs every parent to exist: check each prefix in turn */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char keep = *p;
            *p = 0;
            htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
            if (e < 0) {
                h5_fail(c, path, "cannot check whether it exists");
                return -1;
            }
            if (e == 0)
                return 0;
            *p = keep;
            if (!keep)
                return 1;
        }
    }
}

bool h5_dset_shape(const h5ctx_t *c, hid_t d, const char *path, int *rank, hsize_t dims[2])
{
    hid_t s = H5Dget_space(d);
    if (s < 0)
        return h5_fail(c, path, "cannot get the dataspace");
    int r = H5Sget_simple_extent_ndims(s);
    dims[0] = 0;
    dims[1] = 1;
    bool ok = r >= 1 && r <= 2 && H5Sget_simple_extent_dims(s, dims, NULL) >= 0;
    H5Sclose(s);
    if (!ok)
        return h5_fail(c, path, "expected a 1-D or 2-D dataset (rank %d)", r);
    *rank = r;
    return true;
}

bool h5_column_create(const h5ctx_t *c, hid_t loc, const char *path, bool i64, int rank,
                      hsize_t width, bool grow_width, hsize_t chunk_rows)
{
    hsize_t dims[2] = {0, width};
    hsize_t maxdims[2] = {H5S_UNLIMITED, grow_width ? H5S_UNLIMITED : width};
    hsize_t chunk[2] = {chunk_rows, width};
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    if (space < 0)
        return h5_fail(c, path, "cannot create the dataspace");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) {
        H5Sclose(space);
        return h5_fail(c, path, "cannot create a dataset property list");
    }
    bool ok = false;
    hid_t d = -1;
    const double nan = NAN;
    if (H5Pset_chunk(dcpl, rank, chunk) < 0)
        h5_fail(c, path, "cannot set the chunk size");
    else if (!i64 && H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan) < 0)
        h5_fail(c, path, "cannot set the fill value");
    else if ((d = H5Dcreate2(loc, path, i64 ? H5T_STD_I64LE : H5T_IEEE_F64LE, space, H5P_DEFAULT,
                             dcpl, H5P_DEFAULT)) < 0)
        h5_fail(c, path, "cannot create the dataset");
    else if (H5Dclose(d) < 0)
        h5_fail(c, path, "cannot close the dataset");
    else
        ok = true;
    H5Pclose(dcpl);
    H5Sclose(space);
    return ok;
}

bool h5_column_resize(const h5ctx_t *c, hid_t d, const char *path, int rank, hsize_t rows,
                      hsize_t width)
{
    hsize_t dims[2] = {rows, width};
    (void)rank;
    if (H5Dset_extent(d, dims) < 0)
        return h5_fail(c, path, "cannot resize to %llu rows", (unsigned long long)rows);
    return true;
}

/* Select start/count in d's dataspace and make the matching memory space. */
static bool slab_spaces(const h5ctx_t *c, hid_t d, const char *path, int rank,
                        const hsize_t *start, const hsize_t *count, hid_t *fs, hid_t *ms)
{
    *ms = -1;
    if ((*fs = H5Dget_space(d)) < 0)
        return h5_fail(c, path, "cannot get the dataspace");
    bool empty = false;
    for (int i = 0; i < rank; i++)
        empty |= count[i] == 0;
    bool ok;
    if (empty) {
        /* an empty part of a collective transfer */
        hsize_t one = 1;
        *ms = H5Screate_simple(1, &one, NULL);
        ok = *ms >= 0 && H5Sselect_none(*fs) >= 0 && H5Sselect_none(*ms) >= 0;
    } else {
        *ms = H5Screate_simple(rank, count, NULL);
        ok = *ms >= 0 && H5Sselect_hyperslab(*fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0;
    }
    if (!ok) {
        h5_fail(c, path, "cannot select [%llu, +%llu) (outside the dataset?)",
                (unsigned long long)start[0], (unsigned long long)count[0]);
        h5_drop(ms);
        h5_drop(fs);
    }
    return ok;
}

bool h5_slab_read(const h5ctx_t *c, hid_t d, const char *path, int rank, const hsize_t *start,
                  const hsize_t *count, hid_t mtype, void *buf, hid_t dxpl)
{
    hid_t fs, ms;
    if (!slab_spaces(c, d, path, rank, start, count, &fs, &ms))
        return false;
    bool ok = H5Dread(d, mtype, ms, fs, dxpl, buf) >= 0;
    if (!ok)
        h5_fail(c, path, "cannot read [%llu, +%llu) (truncated or corrupted?)",
                (unsigned long long)start[0], (unsigned long long)count[0]);
    H5Sclose(ms);
    H5Sclose(fs);
    return ok;
}

bool h5_slab_write(const h5ctx_t *c, hid_t d, const char *path, int rank, const hsize_t *start,
                   const hsize_t *count, hid_t mtype, const void *buf, hid_t dxpl)
{
    hid_t fs, ms;
    if (!slab_spaces(c, d, path, rank, start, count, &fs, &ms))
        return false;
    bool ok = H5Dwrite(d, mtype, ms, fs, dxpl, buf) >= 0;
    if (!ok)
        h5_fail(c, path, "cannot write [%llu, +%llu) (disk full or I/O error?)",
                (unsigned long long)start[0], (unsigned long long)count[0]);
    H5Sclose(ms);
    H5Sclose(fs);
    return ok;
}

bool h5_column_append(const h5ctx_t *c, hid_t d, const char *path, int rank, hsize_t row,
                      hsize_t width, hid_t mtype, const void *buf)
{
    if (!buf)
        return h5_fail(c, path, "no values given for row %llu", (unsigned long long)row);
    hsize_t dims[2] = {row + 1, width}, start[2] = {row, 0}, count[2] = {1, width};
    if (H5Dset_extent(d, dims) < 0)
        return h5_fail(c, path, "cannot extend to %llu rows", (unsigned long long)row + 1);
    return h5_slab_write(c, d, path, rank, start, count, mtype, buf, H5P_DEFAULT);
}

hid_t h5_collective(const h5ctx_t *c)
{
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
        h5_fail(c, "/", "cannot create a collective transfer property list");
        h5_drop(&dxpl);
        return -1;
    }
    return dxpl;
}

bool h5_text_column_create(const h5ctx_t *c, hid_t loc, const char *path, hsize_t chunk_rows)
{
    hsize_t dims = 0, maxdims = H5S_UNLIMITED;
    hid_t t = string_type(c, path, 0);
    if (t < 0)
        return false;
    hid_t space = H5Screate_simple(1, &dims, &maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    bool ok = space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk_rows) >= 0 &&
              (d = H5Dcreate2(loc, path, t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) >= 0;
    if (!ok)
        h5_fail(c, path, "cannot create the string column");
    h5_drop(&d);
    h5_drop(&dcpl);
    h5_drop(&space);
    H5Tclose(t);
    return ok;
}

bool h5_text_column_append(const h5ctx_t *c, hid_t d, const char *path, hsize_t row, const char *text)
{
    hid_t t = string_type(c, path, 0);
    if (t < 0)
        return false;
    hsize_t rows = row + 1, start = row, count = 1;
    const char *p = text ? text : "";
    bool ok = H5Dset_extent(d, &rows) >= 0 ? h5_slab_write(c, d, path, 1, &start, &count, t, &p, H5P_DEFAULT)
                                           : h5_fail(c, path, "cannot extend to %llu rows", (unsigned long long)rows);
    H5Tclose(t);
    return ok;
}
