/* The HDF5 token file (format in docs/data.md): reading its vocabulary, checking
 * every span and id before training, windowed reading by hyperslab with a block
 * read-ahead, and the writer used by `motscale data gen` and `import-text`.
 * Attributes, opening and quiet mode go through the HDF5 layer (h5.h). */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "motscale/common.h"
#include "motscale/h5.h"
#include "motscale/tokfile.h"
#include "motscale/vocab.h"

#define SCAN_TOKENS ((size_t)1 << 20)   /* tokens per read while checking */
#define CACHE_TOKENS ((int64_t)1 << 18) /* read-ahead block: 1 MiB of int32 */
#define WRITE_TOKENS ((size_t)1 << 16)  /* writer buffer and chunk length */
#define HELDOUT_DEFAULT_DIV 10          /* no heldout_start attribute: last 1/10 */

/* For read handles and for cleanup after an error already reported: a failed
 * close there loses nothing, so it is not reported. The writer checks its own. */
static void h5close(hid_t *id, herr_t (*closer)(hid_t))
{
    if (*id >= 0)
        closer(*id);
    *id = -1;
}

/* Open read-only with the default (serial) access list: every rank does this. */
static hid_t open_file(const char *path, char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    return h5_file_open(&c, H5_READ, NULL);
}

/* A string attribute of the root, fixed- or variable-length (h5py writes the
 * latter by default), into out (cap bytes). */
static bool attr_string(hid_t f, const char *path, const char *name, char *out, size_t cap,
                        char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    char *s = NULL;
    if (!h5_attr_get_str(&c, f, "/", name, &s))
        return false;
    bool fits = strlen(s) < cap;
    if (fits)
        memcpy(out, s, strlen(s) + 1);
    free(s);
    return fits || errorf(err, errlen, "%s: /@%s: longer than %zu bytes", path, name, cap - 1);
}

/* An integer attribute of exactly n values, converted to int64. Absent: *found
 * false (when found is non-NULL) or an error. */
static bool attr_ints(hid_t f, const char *path, const char *name, int64_t *out, int64_t n,
                      bool *found, char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    int has = h5_attr_has(&c, f, "/", name);
    if (found)
        *found = has > 0;
    if (has < 0 || (has == 0 && !found))
        return has == 0 ? errorf(err, errlen, "%s: /@%s: missing", path, name) : false;
    return has == 0 || h5_attr_get(&c, f, "/", name, H5T_NATIVE_INT64, out, (size_t)n);
}

static bool read_vocab(hid_t f, const char *path, vocab_t *v, char *err, size_t errlen)
{
    char list[CFG_PATH_LEN], format[64];
    bool has = false;
    h5ctx_t c = {path, err, errlen};
    int has_format = h5_attr_has(&c, f, "/", "format");
    if (has_format < 0)
        return false;
    if (has_format > 0) {
        if (!attr_string(f, path, "format", format, sizeof format, err, errlen))
            return false;
        if (strcmp(format, TOKFILE_FORMAT))
            return errorf(err, errlen, "%s: attribute /format is '%s', not '%s'", path, format, TOKFILE_FORMAT);
    }
    int64_t version = 0;
    if (!attr_ints(f, path, "format_version", &version, 1, &has, err, errlen))
        return false;
    if (has && (version < 1 || version > TOKFILE_VERSION))
        return errorf(err, errlen, "%s: attribute /format_version is %lld; this motscale reads version %d",
                    path, (long long)version, TOKFILE_VERSION);
    if (!attr_string(f, path, "modalities", list, sizeof list, err, errlen))
        return false;
    char names[MAX_MODALITIES][CFG_NAME_LEN];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (n == MAX_MODALITIES)
            return errorf(err, errlen, "%s: attribute /modalities names more than %d modalities", path, MAX_MODALITIES);
        snprintf(names[n++], CFG_NAME_LEN, "%s", t);
    }
    if (n == 0)
        return errorf(err, errlen, "%s: attribute /modalities is empty", path);
    int64_t lo[MAX_MODALITIES], hi[MAX_MODALITIES], sizes[MAX_MODALITIES];
    if (!attr_ints(f, path, "vocab_lo", lo, n, NULL, err, errlen) ||
        !attr_ints(f, path, "vocab_hi", hi, n, NULL, err, errlen))
        return false;
    for (int m = 0; m < n; m++) {
        int64_t want = m ? hi[m - 1] : 0;
        if (lo[m] != want || hi[m] <= lo[m])
            return errorf(err, errlen, "%s: attributes /vocab_lo, /vocab_hi: modality '%s' has range [%lld, %lld); ranges must be non-empty and contiguous from 0",
                        path, names[m], (long long)lo[m], (long long)hi[m]);
        sizes[m] = hi[m] - lo[m];
    }
    char why[256];
    if (!vocab_from_sizes(v, n, names, sizes, why, sizeof why))
        return errorf(err, errlen, "%s: %s", path, why);
    return true;
}

bool tokfile_read_vocab(const char *path, vocab_t *v, char *err, size_t errlen)
{
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = open_file(path, err, errlen);
    bool ok = f >= 0 && read_vocab(f, path, v, err, errlen);
    h5close(&f, H5Fclose);
    h5_quiet_end(q);
    return ok;
}

static const char *type_words(hid_t t, char *buf, size_t n)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    const char *what = c == H5T_FLOAT ? "float" : c == H5T_STRING ? "string" : c == H5T_COMPOUND ? "compound" : "non-integer";
    if (c == H5T_INTEGER)
        what = H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned integer" : "signed integer";
    snprintf(buf, n, "%s of %zu bytes", what, size);
    return buf;
}

/* Open a dataset, naming it when it is missing. */
static hid_t open_dataset(hid_t f, const char *path, const char *name, char *err, size_t errlen)
{
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        errorf(err, errlen, "%s: dataset /%s is missing", path, name);
        return -1;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        errorf(err, errlen, "%s: /%s: cannot open as a dataset", path, name);
    return d;
}

/* Read [start, start + count) of a 1-D dataset (or rows of a 2-D one) into buf. */
static herr_t read_slab(hid_t d, hid_t memtype, int rank, int64_t start, int64_t count, int64_t cols, void *buf)
{
    hsize_t fs[2] = {(hsize_t)start, 0}, fc[2] = {(hsize_t)count, (hsize_t)cols};
    hid_t fsp = H5Dget_space(d);
    hid_t msp = H5Screate_simple(rank, fc, NULL);
    herr_t rc = -1;
    if (fsp >= 0 && msp >= 0 && H5Sselect_hyperslab(fsp, H5S_SELECT_SET, fs, NULL, fc, NULL) >= 0)
        rc = H5Dread(d, memtype, msp, fsp, H5P_DEFAULT, buf);
    if (msp >= 0)
        H5Sclose(msp);
    if (fsp >= 0)
        H5Sclose(fsp);
    return rc;
}

/* /tokens: 1-D uint16 or uint32. Returns its length, -1 on error. */
static int64_t check_tokens_dataset(hid_t d, const char *path, int *bytes, char *err, size_t errlen)
{
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int64_t n = -1;
    char words[64];
    if (t < 0 || sp < 0) {
        errorf(err, errlen, "%s: /tokens: cannot read its type or shape", path);
    } else if (H5Tget_class(t) != H5T_INTEGER || H5Tget_sign(t) != H5T_SGN_NONE ||
               (H5Tget_size(t) != 2 && H5Tget_size(t) != 4)) {
        errorf(err, errlen, "%s: /tokens: dtype is %s; expected uint16 or uint32", path, type_words(t, words, sizeof words));
    } else if (H5Sget_simple_extent_ndims(sp) != 1) {
        errorf(err, errlen, "%s: /tokens: has %d dimensions; expected 1", path, H5Sget_simple_extent_ndims(sp));
    } else {
        hsize_t dims[1] = {0};
        if (H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || dims[0] == 0) {
            errorf(err, errlen, "%s: /tokens: is empty or its shape is unreadable", path);
        } else {
            *bytes = (int)H5Tget_size(t);
            n = (int64_t)dims[0];
        }
    }
    h5close(&t, H5Tclose);
    h5close(&sp, H5Sclose);
    return n;
}

/* /spans: integer [n_spans, 3] rows (start, length, modality) tiling /tokens.
 * Returns the rows (malloc'd) or NULL. */
static uint64_t *read_spans(hid_t f, const char *path, const vocab_t *v, int64_t n_tokens, int64_t *n_spans,
                            char *err, size_t errlen)
{
    hid_t d = open_dataset(f, path, "spans", err, errlen);
    if (d < 0)
        return NULL;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    uint64_t *rows = NULL;
    char words[64];
    if (t < 0 || sp < 0) {
        errorf(err, errlen, "%s: /spans: cannot read its type or shape", path);
        goto done;
    }
    if (H5Tget_class(t) != H5T_INTEGER) {
        errorf(err, errlen, "%s: /spans: dtype is %s; expected integers", path, type_words(t, words, sizeof words));
        goto done;
    }
    if (H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || dims[1] != 3) {
        errorf(err, errlen, "%s: /spans: expected shape [n_spans, 3] (start, length, modality)", path);
        goto done;
    }
    rows = xmalloc((size_t)(dims[0] ? dims[0] : 1) * 3 * sizeof *rows);
    if (dims[0] && read_slab(d, H5T_NATIVE_UINT64, 2, 0, (int64_t)dims[0], 3, rows) < 0) {
        errorf(err, errlen, "%s: /spans: read failed (truncated or corrupt file?)", path);
        goto bad;
    }
    uint64_t at = 0;
    for (hsize_t i = 0; i < dims[0]; i++) {
        uint64_t s0 = rows[3 * i], len = rows[3 * i + 1], m = rows[3 * i + 2];
        /* len > n - at: a span past the end (checked before the sum, which could wrap) */
        if (s0 != at || len == 0 || m >= (uint64_t)v->n_modalities || len > (uint64_t)n_tokens - at) {
            errorf(err, errlen, "%s: /spans[%llu]: (start %llu, length %llu, modality %llu); spans must tile /tokens from offset %llu with modality < %d",
                 path, (unsigned long long)i, (unsigned long long)s0, (unsigned long long)len,
                 (unsigned long long)m, (unsigned long long)at, v->n_modalities);
            goto bad;
        }
        at += len;
    }
    if (at != (uint64_t)n_tokens) {
        errorf(err, errlen, "%s: /spans: cover %llu tokens but /tokens has %lld", path, (unsigned long long)at,
             (long long)n_tokens);
        goto bad;
    }
    *n_spans = (int64_t)dims[0];
    goto done;
bad:
    free(rows);
    rows = NULL;
done:
    h5close(&t, H5Tclose);
    h5close(&sp, H5Sclose);
    h5close(&d, H5Dclose);
    return rows;
}

/* /patches (float, [n, P]) and /kinds (unsigned integer, [n]) when the file has
 * continuous images: every element finite, every kind an enum pos_kind value, a
 * patch kind exactly at the image modality's tokens. st->patch_dim = P (0: none). */
static bool check_images(hid_t f, const char *path, hid_t dtok, tokfile_stats_t *st, char *err, size_t errlen)
{
    if (H5Lexists(f, "patches", H5P_DEFAULT) <= 0)
        return H5Lexists(f, "kinds", H5P_DEFAULT) <= 0 ||
               errorf(err, errlen, "%s: /kinds without /patches: continuous images need both", path);
    hid_t dp = open_dataset(f, path, "patches", err, errlen), dk = dp >= 0 ? open_dataset(f, path, "kinds", err, errlen) : -1;
    hid_t tp = dp >= 0 ? H5Dget_type(dp) : -1, sp = dp >= 0 ? H5Dget_space(dp) : -1;
    hid_t tk = dk >= 0 ? H5Dget_type(dk) : -1, sk = dk >= 0 ? H5Dget_space(dk) : -1;
    hsize_t dims[2] = {0, 0}, kd[1] = {0};
    bool ok = false;
    float *x = NULL;
    uint8_t *kind = NULL;
    uint32_t *tok = NULL;
    int img = -1;
    for (int m = 0; m < st->v.n_modalities; m++)
        img = strcmp(st->v.names[m], "image") ? img : m;
    if (dk < 0 || tp < 0 || sp < 0 || tk < 0 || sk < 0) {
        if (dk >= 0)
            errorf(err, errlen, "%s: /patches or /kinds: cannot read its type or shape", path);
        goto done;
    }
    if (H5Tget_class(tp) != H5T_FLOAT || H5Sget_simple_extent_ndims(sp) != 2 ||
        H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || (int64_t)dims[0] != st->n_tokens || dims[1] < 1 ||
        dims[1] > 65536) {
        errorf(err, errlen, "%s: /patches: must be float [n_tokens = %lld, patch_dim in [1, 65536]]", path,
               (long long)st->n_tokens);
        goto done;
    }
    if (H5Tget_class(tk) != H5T_INTEGER || H5Tget_sign(tk) != H5T_SGN_NONE || H5Sget_simple_extent_ndims(sk) != 1 ||
        H5Sget_simple_extent_dims(sk, kd, NULL) < 0 || (int64_t)kd[0] != st->n_tokens) {
        errorf(err, errlen, "%s: /kinds: must be unsigned integer [n_tokens = %lld]", path, (long long)st->n_tokens);
        goto done;
    }
    if (img < 0) {
        errorf(err, errlen, "%s: /patches: the file's modalities have no 'image'", path);
        goto done;
    }
    int64_t P = (int64_t)dims[1], rows = (int64_t)(SCAN_TOKENS / (size_t)P) > 0 ? (int64_t)(SCAN_TOKENS / (size_t)P) : 1;
    x = xmalloc((size_t)(rows * P) * sizeof *x);
    kind = xmalloc((size_t)rows);
    tok = xmalloc((size_t)rows * sizeof *tok);
    for (int64_t at = 0; at < st->n_tokens; at += rows) {
        int64_t cnt = st->n_tokens - at < rows ? st->n_tokens - at : rows;
        if (read_slab(dp, H5T_NATIVE_FLOAT, 2, at, cnt, P, x) < 0 || read_slab(dk, H5T_NATIVE_UINT8, 1, at, cnt, 1, kind) < 0 ||
            read_slab(dtok, H5T_NATIVE_UINT32, 1, at, cnt, 1, tok) < 0) {
            errorf(err, errlen, "%s: /patches or /kinds: read of rows [%lld, %lld) failed (truncated or corrupt file?)",
                   path, (long long)at, (long long)(at + cnt));
            goto done;
        }
        for (int64_t j = 0; j < cnt; j++) {
            bool patch = kind[j] == POS_PATCH_IMAGE_FIRST || kind[j] == POS_PATCH_CAPTION_FIRST;
            if (kind[j] > POS_PATCH_CAPTION_FIRST || patch != (vocab_modality(&st->v, (int32_t)tok[j]) == img)) {
                errorf(err, errlen, "%s: /kinds[%lld]: %u %s (token %u); kinds are 0-3 and 2, 3 mark exactly the image tokens",
                       path, (long long)(at + j), kind[j], patch ? "marks a patch at a non-image token" : "is not a patch kind at an image token",
                       tok[j]);
                goto done;
            }
            for (int64_t c = 0; c < P; c++)
                if (!isfinite(x[j * P + c])) {
                    errorf(err, errlen, "%s: /patches[%lld, %lld]: %g is not finite", path, (long long)(at + j),
                           (long long)c, (double)x[j * P + c]);
                    goto done;
                }
        }
    }
    st->patch_dim = (int)P;
    ok = true;
done:
    free(x);
    free(kind);
    free(tok);
    h5close(&tp, H5Tclose);
    h5close(&tk, H5Tclose);
    h5close(&sp, H5Sclose);
    h5close(&sk, H5Sclose);
    h5close(&dp, H5Dclose);
    h5close(&dk, H5Dclose);
    return ok;
}

static bool check_open(hid_t f, const char *path, tokfile_stats_t *st, bool want_ids, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (!read_vocab(f, path, &st->v, err, errlen))
        return false;
    const vocab_t *v = &st->v;
    hid_t d = open_dataset(f, path, "tokens", err, errlen);
    if (d < 0)
        return false;
    bool ok = false;
    uint64_t *spans = NULL;
    uint32_t *buf = NULL;
    st->n_tokens = check_tokens_dataset(d, path, &st->token_bytes, err, errlen);
    if (st->n_tokens < 0)
        goto done;
    bool has = false;
    int64_t x = 0;
    if (!attr_ints(f, path, "heldout_start", &x, 1, &has, err, errlen))
        goto done;
    st->heldout_start = has ? x : st->n_tokens - st->n_tokens / HELDOUT_DEFAULT_DIV;
    if (st->heldout_start < 0 || st->heldout_start > st->n_tokens) {
        errorf(err, errlen, "%s: attribute /heldout_start is %lld; must be in [0, %lld]", path, (long long)x,
             (long long)st->n_tokens);
        goto done;
    }
    if (!attr_ints(f, path, "window", &x, 1, &has, err, errlen))
        goto done;
    st->window = has && x > 0 && x <= INT32_MAX ? (int32_t)x : 0;
    if (!(spans = read_spans(f, path, v, st->n_tokens, &st->n_spans, err, errlen)))
        goto done;
    for (int m = 0; m < v->n_modalities; m++)
        st->span_min[m] = INT64_MAX;
    for (int64_t i = 0; i < st->n_spans; i++) {
        int m = (int)spans[3 * i + 2];
        int64_t len = (int64_t)spans[3 * i + 1];
        st->spans[m]++;
        st->span_min[m] = len < st->span_min[m] ? len : st->span_min[m];
        st->span_max[m] = len > st->span_max[m] ? len : st->span_max[m];
    }
    for (int m = 0; m < v->n_modalities; m++)
        if (!st->spans[m])
            st->span_min[m] = 0;
    if (want_ids)
        st->id_count = xcalloc((size_t)v->size, sizeof *st->id_count);
    /* every id against the vocabulary and against the range of its span's modality */
    buf = xmalloc(SCAN_TOKENS * sizeof *buf);
    int64_t span = 0, span_end = (int64_t)spans[1];
    for (int64_t at = 0; at < st->n_tokens; at += (int64_t)SCAN_TOKENS) {
        int64_t cnt = st->n_tokens - at < (int64_t)SCAN_TOKENS ? st->n_tokens - at : (int64_t)SCAN_TOKENS;
        if (read_slab(d, H5T_NATIVE_UINT32, 1, at, cnt, 1, buf) < 0) {
            errorf(err, errlen, "%s: /tokens: read of offsets [%lld, %lld) failed (truncated or corrupt file?)", path,
                 (long long)at, (long long)(at + cnt));
            goto done;
        }
        for (int64_t j = 0; j < cnt; j++) {
            int64_t off = at + j;
            while (off >= span_end) {
                span++;
                span_end += (int64_t)spans[3 * span + 1];
            }
            int m = (int)spans[3 * span + 2];
            uint32_t id = buf[j];
            if (id >= (uint32_t)v->size) {
                errorf(err, errlen, "%s: /tokens[%lld]: id %u is outside the vocabulary [0, %d)", path, (long long)off,
                     id, v->size);
                goto done;
            }
            if ((int32_t)id < v->lo[m] || (int32_t)id >= v->hi[m]) {
                errorf(err, errlen, "%s: /tokens[%lld]: id %u is outside the '%s' range [%d, %d) of its span /spans[%lld]",
                     path, (long long)off, id, v->names[m], v->lo[m], v->hi[m], (long long)span);
                goto done;
            }
            st->tokens[m]++;
            if (st->id_count)
                st->id_count[id]++;
        }
    }
    ok = check_images(f, path, d, st, err, errlen);
done:
    if (!ok) {
        free(st->id_count);
        st->id_count = NULL;
    }
    free(buf);
    free(spans);
    h5close(&d, H5Dclose);
    return ok;
}

bool tokfile_check(const char *path, tokfile_stats_t *st, bool want_ids, char *err, size_t errlen)
{
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = open_file(path, err, errlen);
    bool ok = f >= 0 && check_open(f, path, st, want_ids, err, errlen);
    h5close(&f, H5Fclose);
    h5_quiet_end(q);
    return ok;
}

int32_t *tokfile_read_tokens(const char *path, int64_t *n, char *err, size_t errlen)
{
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = open_file(path, err, errlen), d = f >= 0 ? open_dataset(f, path, "tokens", err, errlen) : -1;
    int bytes = 0;
    int32_t *tok = NULL;
    *n = d >= 0 ? check_tokens_dataset(d, path, &bytes, err, errlen) : -1;
    if (*n > 0) {
        tok = xmalloc((size_t)*n * sizeof *tok);
        if (read_slab(d, H5T_NATIVE_INT32, 1, 0, *n, 1, tok) < 0) {
            errorf(err, errlen, "%s: /tokens: read of %lld tokens failed (truncated or corrupt file?)", path,
                   (long long)*n);
            free(tok);
            tok = NULL;
        }
    }
    h5close(&d, H5Dclose);
    h5close(&f, H5Fclose);
    h5_quiet_end(q);
    return tok;
}

/* ---- windowed reading ---- */

struct tokreader {
    char path[CFG_PATH_LEN];
    hid_t file, dset;
    hid_t patches, kinds;          /* continuous images; -1: none */
    int patch_dim;
    int32_t window;
    int64_t start, n_windows;      /* the split: windows at start + k * window */
    int64_t block, cached;         /* windows per read-ahead block; block in cache, -1 none */
    int32_t *cache;
};

tokreader_t *tokreader_open(const char *path, const vocab_t *v, int split, int32_t window, char *err, size_t errlen)
{
    tokfile_stats_t st;
    if (!tokfile_check(path, &st, false, err, errlen))
        return NULL;
    bool same = st.v.n_modalities == v->n_modalities && st.v.size == v->size;
    for (int m = 0; same && m < v->n_modalities; m++)
        same = st.v.lo[m] == v->lo[m] && st.v.hi[m] == v->hi[m] && !strcmp(st.v.names[m], v->names[m]);
    if (!same) {
        errorf(err, errlen, "%s: the vocabulary in the file differs from the one the model was built for", path);
        return NULL;
    }
    int64_t lo = split == SPLIT_TRAIN ? 0 : st.heldout_start;
    int64_t hi = split == SPLIT_TRAIN ? st.heldout_start : st.n_tokens;
    int64_t nw = (hi - lo) / window;
    if (nw < 1) {
        errorf(err, errlen, "%s: the %s split, /tokens[%lld, %lld), holds %lld tokens: fewer than one window of model.seq_len + 1 = %d",
             path, split == SPLIT_TRAIN ? "train" : "held-out", (long long)lo, (long long)hi, (long long)(hi - lo),
             window);
        return NULL;
    }
    tokreader_t *r = xcalloc(1, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->window = window;
    r->start = lo;
    r->n_windows = nw;
    r->block = CACHE_TOKENS / window > 0 ? CACHE_TOKENS / window : 1;
    if (r->block > nw)
        r->block = nw;
    r->cached = -1;
    r->cache = xmalloc((size_t)r->block * (size_t)window * sizeof *r->cache);
    h5_quiet_t q = h5_quiet_begin();
    r->file = open_file(path, err, errlen);
    r->dset = r->file >= 0 ? H5Dopen2(r->file, "tokens", H5P_DEFAULT) : -1;
    r->patch_dim = st.patch_dim;
    r->patches = r->kinds = -1;
    if (r->dset >= 0 && st.patch_dim > 0) {
        r->patches = H5Dopen2(r->file, "patches", H5P_DEFAULT);
        r->kinds = H5Dopen2(r->file, "kinds", H5P_DEFAULT);
    }
    h5_quiet_end(q);
    if (r->dset < 0 || (st.patch_dim > 0 && (r->patches < 0 || r->kinds < 0))) {
        if (r->file >= 0)
            errorf(err, errlen, "%s: /tokens: cannot reopen for reading", path);
        tokreader_close(r);
        return NULL;
    }
    return r;
}

void tokreader_read(tokreader_t *r, int64_t first, int n, int32_t *out)
{
    size_t w = (size_t)r->window;
    for (int i = 0; i < n; i++) {
        if (first + i < 0)
            DIE(EXIT_FAULT, "%s: window %lld requested; windows start at 0", r->path, (long long)(first + i));
        /* past the end the split repeats: window k is window k mod n_windows */
        int64_t k = (first + i) % r->n_windows;
        int64_t blk = k / r->block;
        if (blk != r->cached) {
            int64_t w0 = blk * r->block;
            int64_t cnt = r->n_windows - w0 < r->block ? r->n_windows - w0 : r->block;
            int64_t t0 = r->start + w0 * r->window;
            if (read_slab(r->dset, H5T_NATIVE_INT32, 1, t0, cnt * r->window, 1, r->cache) < 0)
                DIE(EXIT_FAULT, "%s: /tokens: read of offsets [%lld, %lld) failed", r->path, (long long)t0,
                    (long long)(t0 + cnt * r->window));
            r->cached = blk;
        }
        memcpy(out + (size_t)i * w, r->cache + (size_t)(k - blk * r->block) * w, w * sizeof *out);
    }
}

int tokreader_patch_dim(const tokreader_t *r) { return r->patch_dim; }

int32_t tokreader_window(const tokreader_t *r) { return r->window; }

void tokreader_read_images(tokreader_t *r, int64_t first, int n, float *x0, uint8_t *kind)
{
    int64_t w = r->window, P = r->patch_dim;
    for (int i = 0; i < n; i++) {
        int64_t t0 = r->start + ((first + i) % r->n_windows) * w;
        if (read_slab(r->patches, H5T_NATIVE_FLOAT, 2, t0, w, P, x0 + i * w * P) < 0 ||
            read_slab(r->kinds, H5T_NATIVE_UINT8, 1, t0, w, 1, kind + i * w) < 0)
            DIE(EXIT_FAULT, "%s: /patches or /kinds: read of rows [%lld, %lld) failed", r->path, (long long)t0,
                (long long)(t0 + w));
    }
}

void tokreader_close(tokreader_t *r)
{
    if (!r)
        return;
    h5close(&r->patches, H5Dclose);
    h5close(&r->kinds, H5Dclose);
    h5close(&r->dset, H5Dclose);
    h5close(&r->file, H5Fclose);
    free(r->cache);
    free(r);
}

/* ---- writing ---- */

struct tokfile_writer {
    char path[CFG_PATH_LEN];
    vocab_t v;
    hid_t file, dset;
    int64_t n;                    /* tokens in the file plus the buffer */
    int64_t flushed;              /* tokens in the file */
    int64_t heldout;              /* -1: not marked */
    int32_t window;
    uint32_t *buf;
    uint64_t *spans;              /* rows (start, length, modality) */
    size_t n_spans, cap_spans;
    float *x0;                    /* continuous images: n_img x P, written at close */
    uint8_t *kind;
    int64_t n_img, cap_img;
    int P;
};

static bool write_flush(tokfile_writer_t *w, char *err, size_t errlen)
{
    int64_t cnt = w->n - w->flushed;
    if (cnt == 0)
        return true;
    hsize_t size[1] = {(hsize_t)w->n}, start[1] = {(hsize_t)w->flushed}, count[1] = {(hsize_t)cnt};
    hid_t fsp = -1, msp = -1;
    bool ok = H5Dset_extent(w->dset, size) >= 0 && (fsp = H5Dget_space(w->dset)) >= 0 &&
              (msp = H5Screate_simple(1, count, NULL)) >= 0 &&
              H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
              H5Dwrite(w->dset, H5T_NATIVE_UINT32, msp, fsp, H5P_DEFAULT, w->buf) >= 0;
    h5close(&msp, H5Sclose);
    h5close(&fsp, H5Sclose);
    if (!ok)
        return errorf(err, errlen, "%s: /tokens: write of offsets [%lld, %lld) failed", w->path, (long long)w->flushed,
                    (long long)w->n);
    w->flushed = w->n;
    return true;
}

tokfile_writer_t *tokfile_create(const char *path, const vocab_t *v, char *err, size_t errlen)
{
    if (strlen(path) >= CFG_PATH_LEN) {
        errorf(err, errlen, "%s: path too long", path);
        return NULL;
    }
    tokfile_writer_t *w = xcalloc(1, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->v = *v;
    w->heldout = -1;
    w->dset = -1;
    w->buf = xmalloc(WRITE_TOKENS * sizeof *w->buf);
    h5_quiet_t q = h5_quiet_begin();
    hid_t dcpl = -1, sp = -1;
    hsize_t dims[1] = {0}, maxd[1] = {H5S_UNLIMITED}, chunk[1] = {WRITE_TOKENS};
    /* uint16 whenever the vocabulary fits: half the bytes to read per window */
    hid_t ftype = v->size <= 65536 ? H5T_STD_U16LE : H5T_STD_U32LE;
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = w->file >= 0 && (sp = H5Screate_simple(1, dims, maxd)) >= 0 &&
              (dcpl = H5Pcreate(H5P_DATASET_CREATE)) >= 0 && H5Pset_chunk(dcpl, 1, chunk) >= 0 &&
              (w->dset = H5Dcreate2(w->file, "tokens", ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) >= 0;
    h5close(&dcpl, H5Pclose);
    h5close(&sp, H5Sclose);
    h5_quiet_end(q);
    if (!ok) {
        errorf(err, errlen, "%s: cannot create the token file (H5Fcreate or /tokens failed)", path);
        h5close(&w->dset, H5Dclose);
        h5close(&w->file, H5Fclose);
        free(w->buf);
        free(w);
        return NULL;
    }
    return w;
}

bool tokfile_append(tokfile_writer_t *w, const int32_t *tok, int64_t n, char *err, size_t errlen)
{
    int cur = -1;
    for (int64_t i = 0; i < n; i++) {
        int m = vocab_modality(&w->v, tok[i]);
        if (m < 0)
            return errorf(err, errlen, "%s: token %d at offset %lld is outside the vocabulary [0, %d)", w->path, tok[i],
                        (long long)w->n, w->v.size);
        if (m != cur) {
            if (w->n_spans == w->cap_spans) {
                w->cap_spans = w->cap_spans ? 2 * w->cap_spans : 1024;
                uint64_t *p = realloc(w->spans, w->cap_spans * 3 * sizeof *p);
                if (!p)
                    DIE(EXIT_FAULT, "out of memory growing the span table of %s", w->path);
                w->spans = p;
            }
            uint64_t *row = w->spans + 3 * w->n_spans++;
            row[0] = (uint64_t)w->n;
            row[1] = 0;
            row[2] = (uint64_t)m;
            cur = m;
        }
        w->spans[3 * (w->n_spans - 1) + 1]++;
        w->buf[w->n - w->flushed] = (uint32_t)tok[i];
        w->n++;
        if ((size_t)(w->n - w->flushed) == WRITE_TOKENS) {
            h5_quiet_t q = h5_quiet_begin();
            bool ok = write_flush(w, err, errlen);
            h5_quiet_end(q);
            if (!ok)
                return false;
        }
    }
    return true;
}

bool tokfile_append_images(tokfile_writer_t *w, const float *x0, const uint8_t *kind, int64_t n, int P, char *err,
                           size_t errlen)
{
    if ((w->P && P != w->P) || w->n_img + n != w->n)
        return errorf(err, errlen, "%s: images of %lld tokens (patch_dim %d) do not follow the %lld tokens appended",
                      w->path, (long long)n, P, (long long)(w->n - w->n_img));
    w->P = P;
    if (w->n_img + n > w->cap_img) {
        w->cap_img = 2 * (w->n_img + n);
        float *a = realloc(w->x0, (size_t)(w->cap_img * P) * sizeof *a);
        uint8_t *b = a ? realloc(w->kind, (size_t)w->cap_img) : NULL;
        if (!a || !b)
            DIE(EXIT_FAULT, "out of memory holding the patches of %s", w->path);
        w->x0 = a;
        w->kind = b;
    }
    memcpy(w->x0 + w->n_img * P, x0, (size_t)(n * P) * sizeof *x0);
    memcpy(w->kind + w->n_img, kind, (size_t)n);
    w->n_img += n;
    return true;
}

/* /patches (float32 [n, P]) and /kinds (uint8 [n]), whole. */
static bool write_images(tokfile_writer_t *w, char *err, size_t errlen)
{
    if (!w->P)
        return true;
    if (w->n_img != w->n)
        return errorf(err, errlen, "%s: images for %lld of %lld tokens", w->path, (long long)w->n_img, (long long)w->n);
    hsize_t dims[2] = {(hsize_t)w->n, (hsize_t)w->P};
    hid_t sp = H5Screate_simple(2, dims, NULL), sk = H5Screate_simple(1, dims, NULL), d = -1, k = -1;
    bool ok = sp >= 0 && sk >= 0 &&
              (d = H5Dcreate2(w->file, "patches", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
              H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->x0) >= 0 &&
              (k = H5Dcreate2(w->file, "kinds", H5T_STD_U8LE, sk, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
              H5Dwrite(k, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->kind) >= 0;
    h5close(&d, H5Dclose);
    h5close(&k, H5Dclose);
    h5close(&sp, H5Sclose);
    h5close(&sk, H5Sclose);
    return ok || errorf(err, errlen, "%s: cannot write /patches and /kinds", w->path);
}

void tokfile_set_heldout(tokfile_writer_t *w, int64_t start) { w->heldout = start; }

void tokfile_set_window(tokfile_writer_t *w, int32_t window) { w->window = window; }

static bool put_string(hid_t f, const char *path, const char *name, const char *value)
{
    h5ctx_t c = {path, NULL, 0};
    return h5_attr_put_fixed_str(&c, f, "/", name, value);
}

static bool put_ints(hid_t f, const char *path, const char *name, hid_t ftype, const int64_t *vals,
                     hsize_t n, bool scalar)
{
    h5ctx_t c = {path, NULL, 0};
    return h5_attr_put(&c, f, "/", name, ftype, H5T_NATIVE_INT64, scalar ? 0 : n, vals);
}

bool tokfile_set_note(tokfile_writer_t *w, const char *name, const char *value, char *err, size_t errlen)
{
    h5_quiet_t q = h5_quiet_begin();
    bool ok = put_string(w->file, w->path, name, value);
    h5_quiet_end(q);
    return ok || errorf(err, errlen, "%s: cannot write attribute /%s", w->path, name);
}

static bool write_tail(tokfile_writer_t *w, char *err, size_t errlen)
{
    if (!write_flush(w, err, errlen) || !write_images(w, err, errlen))
        return false;
    const vocab_t *v = &w->v;
    hsize_t dims[2] = {(hsize_t)w->n_spans, 3};
    hid_t sp = H5Screate_simple(2, dims, NULL), d = -1;
    bool ok = sp >= 0 && (d = H5Dcreate2(w->file, "spans", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
              (w->n_spans == 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->spans) >= 0);
    h5close(&d, H5Dclose);
    h5close(&sp, H5Sclose);
    if (!ok)
        return errorf(err, errlen, "%s: cannot write /spans", w->path);

    char names[CFG_PATH_LEN] = "", bounds[1024] = "";
    int64_t lo[MAX_MODALITIES], hi[MAX_MODALITIES];
    for (int m = 0; m < v->n_modalities; m++) {
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", m ? "," : "", v->names[m]);
        lo[m] = v->lo[m];
        hi[m] = v->hi[m];
    }
    snprintf(bounds, sizeof bounds, "<doc>=%d", vocab_doc_token(v));
    for (int m = 1; m < v->n_modalities; m++) {
        size_t len = strlen(bounds);
        snprintf(bounds + len, sizeof bounds - len, ",<%s>=%d,</%s>=%d", v->names[m], vocab_begin_token(v, m),
                 v->names[m], vocab_end_token(v, m));
    }
    int64_t version = TOKFILE_VERSION;
    int64_t heldout = w->heldout >= 0 ? w->heldout : w->n - w->n / HELDOUT_DEFAULT_DIV;
    if (heldout > w->n)
        return errorf(err, errlen, "%s: held-out start %lld is past the %lld tokens written", w->path,
                    (long long)heldout, (long long)w->n);
    int64_t window = w->window;
    const char *p = w->path;
    ok = put_string(w->file, p, "format", TOKFILE_FORMAT) &&
         put_ints(w->file, p, "format_version", H5T_STD_I32LE, &version, 1, true) &&
         put_string(w->file, p, "modalities", names) &&
         put_ints(w->file, p, "vocab_lo", H5T_STD_I32LE, lo, (hsize_t)v->n_modalities, false) &&
         put_ints(w->file, p, "vocab_hi", H5T_STD_I32LE, hi, (hsize_t)v->n_modalities, false) &&
         put_ints(w->file, p, "heldout_start", H5T_STD_U64LE, &heldout, 1, true) &&
         put_ints(w->file, p, "window", H5T_STD_I32LE, &window, 1, true) &&
         put_string(w->file, p, "boundary_tokens", bounds);
    return ok || errorf(err, errlen, "%s: cannot write the root attributes", w->path);
}

bool tokfile_close(tokfile_writer_t *w, char *err, size_t errlen)
{
    h5_quiet_t q = h5_quiet_begin();
    bool ok = write_tail(w, err, errlen);
    if (H5Dclose(w->dset) < 0 && ok)
        ok = errorf(err, errlen, "%s: closing /tokens failed", w->path);
    if (H5Fclose(w->file) < 0 && ok)
        ok = errorf(err, errlen, "%s: closing the file failed (disk full?)", w->path);
    h5_quiet_end(q);
    free(w->buf);
    free(w->spans);
    free(w->x0);
    free(w->kind);
    free(w);
    return ok;
}
