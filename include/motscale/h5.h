/* The one HDF5 layer under every file motscale reads or writes (run records,
 * checkpoints, token files): opening (serial, latest-format for SWMR, or MPI-IO),
 * attributes, extendible row columns and hyperslabs, and one failure path. Every
 * call is checked where it is made; a failure becomes one line
 *     "PATH: OBJECT: what (HDF5: innermost reason)"
 * in the caller's error buffer, or a warning when the caller gave none. HDF5's own
 * error-stack printing is off between h5_quiet_begin and h5_quiet_end, which
 * restores what was there. */
#ifndef MOTSCALE_H5_H
#define MOTSCALE_H5_H

#include <hdf5.h>
#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a failure is reported: the file's path for messages, and the caller's
 * buffer (NULL: printed as a warning). */
typedef struct h5ctx {
    const char *path;
    char *err;
    size_t errlen;
} h5ctx_t;

/* Report a failure of the HDF5 call just made on OBJECT; always returns false.
 * Must come right after the failing call: the next call clears HDF5's stack. */
bool h5_fail(const h5ctx_t *c, const char *obj, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* HDF5's stack printing off, and back to what it was. */
typedef struct h5_quiet {
    H5E_auto2_t func;
    void *data;
} h5_quiet_t;
h5_quiet_t h5_quiet_begin(void);
void h5_quiet_end(h5_quiet_t q);

/* ---- files ------------------------------------------------------------------- */
enum h5_mode {
    H5_READ,        /* read-only */
    H5_READ_SWMR,   /* read-only, following a live SWMR writer when there is one */
    H5_APPEND,      /* read-write */
    H5_CREATE,      /* new file; fails if it exists */
    H5_TRUNCATE     /* new file, replacing an old one */
};
typedef struct h5_fopts {
    MPI_Comm comm;              /* MPI_COMM_NULL: serial (sec2); else MPI-IO over comm */
    bool latest;                /* latest-format bounds (needed for SWMR writing) */
    bool no_lock;               /* do not take HDF5's file lock (readers of a live file) */
    bool clear_status_flags;    /* zero a crashed writer's superblock flags (h5clear -s) */
} h5_fopts_t;

/* Open or create path; -1 after h5_fail. opts NULL: serial, default format. */
hid_t h5_file_open(const h5ctx_t *c, enum h5_mode mode, const h5_fopts_t *opts);
/* Close, reporting a failure (data may be lost); f < 0 is ignored. */
bool h5_file_close(const h5ctx_t *c, hid_t f);
/* Close an id after a failure already reported (nothing more to say); sets -1. */
void h5_drop(hid_t *id);

/* ---- attributes ---------------------------------------------------------------
 * OBJ names the object that loc is open on, for messages ("/", "/model").
 * Writers replace an existing attribute. */
bool h5_attr_put(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, hid_t ftype,
                 hid_t mtype, hsize_t n, const void *buf); /* n == 0: scalar */
bool h5_attr_put_i32(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, int32_t v);
bool h5_attr_put_i64(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, int64_t v);
bool h5_attr_put_f64(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, double v);
/* Variable-length UTF-8 strings (h5py reads them as str); NULL writes "". */
bool h5_attr_put_str(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                     const char *v);
bool h5_attr_put_strs(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                      const char *const *v, size_t n);
/* A fixed-length, NUL-terminated string (formats that promise fixed length). */
bool h5_attr_put_fixed_str(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                           const char *v);

/* 1 present, 0 absent, -1 after h5_fail. */
int h5_attr_has(const h5ctx_t *c, hid_t loc, const char *obj, const char *name);
/* Exactly `count` elements converted to mtype; a missing attribute, another element
 * count or an unconvertible type fails. */
bool h5_attr_get(const h5ctx_t *c, hid_t loc, const char *obj, const char *name, hid_t mtype,
                 void *out, size_t count);
/* Element count of an attribute (its dataspace's points); -1 after h5_fail. */
int64_t h5_attr_count(const h5ctx_t *c, hid_t loc, const char *obj, const char *name);
/* One string, fixed or variable length, into a new buffer (free it). */
bool h5_attr_get_str(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                     char **out);
/* Up to max strings into out[i] (each cap bytes, cut to fit); *n gets the count.
 * More than max fails. */
bool h5_attr_get_strs(const h5ctx_t *c, hid_t loc, const char *obj, const char *name,
                      char *out, size_t cap, int max, int *n);

/* ---- datasets ------------------------------------------------------------------ */
hid_t h5_dset_open(const h5ctx_t *c, hid_t loc, const char *path);
/* 1 when the link path exists, 0 when not, -1 after h5_fail. */
int h5_exists(const h5ctx_t *c, hid_t loc, const char *path);
/* Rank and dimensions (up to 2; dims[1] = 1 for 1-D). */
bool h5_dset_shape(const h5ctx_t *c, hid_t d, const char *path, int *rank, hsize_t dims[2]);

/* Column datasets of the run record: (0) or (0, width) rows, unlimited rows (and
 * columns when grow_width), chunked by chunk_rows; floats filled with NaN. */
bool h5_column_create(const h5ctx_t *c, hid_t loc, const char *path, bool i64, int rank,
                      hsize_t width, bool grow_width, hsize_t chunk_rows);
bool h5_column_resize(const h5ctx_t *c, hid_t d, const char *path, int rank, hsize_t rows,
                      hsize_t width);
/* Grow to row + 1 rows and write row `row` (width values of mtype). */
bool h5_column_append(const h5ctx_t *c, hid_t d, const char *path, int rank, hsize_t row,
                      hsize_t width, hid_t mtype, const void *buf);

/* A column of variable-length UTF-8 strings: (0) rows, unlimited, chunked; and
 * appending one string as row `row`. */
bool h5_text_column_create(const h5ctx_t *c, hid_t loc, const char *path, hsize_t chunk_rows);
bool h5_text_column_append(const h5ctx_t *c, hid_t d, const char *path, hsize_t row, const char *text);

/* Hyperslab transfer of a rank-1 or rank-2 selection start/count (count[i] == 0
 * anywhere: an empty selection, still joining a collective transfer). dxpl
 * H5P_DEFAULT or a collective transfer list (h5_collective). */
bool h5_slab_read(const h5ctx_t *c, hid_t d, const char *path, int rank, const hsize_t *start,
                  const hsize_t *count, hid_t mtype, void *buf, hid_t dxpl);
bool h5_slab_write(const h5ctx_t *c, hid_t d, const char *path, int rank, const hsize_t *start,
                   const hsize_t *count, hid_t mtype, const void *buf, hid_t dxpl);
/* A collective MPI-IO transfer list (close with H5Pclose); -1 after h5_fail. */
hid_t h5_collective(const h5ctx_t *c);

#endif
