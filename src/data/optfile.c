/* OPT triple files (optfile.h, docs/data.md "OPT triple files"): root attributes
 * with the sizes, and eight datasets of one row per stored scene, rows ordered by
 * (split, index). The reader holds the whole file in memory, checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/data.h"
#include "motscale/h5.h"
#include "motscale/optfile.h"

enum col { COL_SPLIT, COL_INDEX, COL_TEXT, COL_REGION, COL_GEOM, COL_CLASS, COL_AUDIO, COL_CODES, N_COLS };
static const char *const col_name[N_COLS] = {"opt_split", "opt_index", "opt_text", "opt_region",
                                             "opt_geom", "opt_class", "opt_audio", "opt_codes"};
enum ctype { CT_U8, CT_I64, CT_I32, CT_F32 };
static const enum ctype col_type[N_COLS] = {CT_U8, CT_I64, CT_I32, CT_F32, CT_F32, CT_I32, CT_F32, CT_I32};

static const char *const attr_name[5] = {"opt_regions", "opt_classes", "region_dim", "frame_dim", "opt_grid"};

struct optfile {
    char path[CFG_PATH_LEN];
    opt_dims_t dm;
    int64_t n, first[3];           /* rows of split s: [first[s], first[s + 1]) */
    void *col[N_COLS];
};

/* Columns per row of each dataset (1: a 1-D dataset). */
static void widths(const opt_dims_t *dm, hsize_t w[N_COLS])
{
    w[COL_SPLIT] = w[COL_INDEX] = 1;
    w[COL_TEXT] = (hsize_t)dm->text_len;
    w[COL_REGION] = (hsize_t)dm->regions * (hsize_t)dm->region_dim;
    w[COL_GEOM] = (hsize_t)dm->regions * OPT_GEOM;
    w[COL_CLASS] = (hsize_t)dm->regions;
    w[COL_AUDIO] = (hsize_t)dm->frames * (hsize_t)dm->frame_dim;
    w[COL_CODES] = (hsize_t)dm->codes;
}

static size_t elem_size(enum ctype t) { return t == CT_U8 ? 1 : t == CT_I64 ? 8 : 4; }
static hid_t mem_type(enum ctype t)
{
    return t == CT_U8 ? H5T_NATIVE_UINT8 : t == CT_I64 ? H5T_NATIVE_INT64 : t == CT_I32 ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
}
static hid_t file_type(enum ctype t)
{
    return t == CT_U8 ? H5T_STD_U8LE : t == CT_I64 ? H5T_STD_I64LE : t == CT_I32 ? H5T_STD_I32LE : H5T_IEEE_F32LE;
}

static void attrs_of(const opt_data_params_t *p, int32_t a[5])
{
    a[0] = p->regions, a[1] = p->classes, a[2] = p->region_dim, a[3] = p->frame_dim, a[4] = p->grid;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The sorted, distinct sample indices split s's reads touch. */
static int64_t needed(const opt_data_params_t *p, int split, int64_t n, int pool, int64_t **out)
{
    opt_dims_t dm;
    opt_dims(&dm, p);
    opt_draw_t dr;
    opt_draw_alloc(&dr, &dm);
    int64_t extra = split == SPLIT_HELDOUT ? 2 * (int64_t)pool : 0, k = 0;
    int64_t *ix = xmalloc((size_t)(3 * n + extra + 1) * sizeof *ix);
    for (int64_t i = 0; i < n; i++) {
        opt_draw(p, split, i, &dr);
        for (int m = 0; m < OPT_N_MODALITIES; m++)
            ix[k++] = dr.source[m];
    }
    for (int64_t i = 0; i < extra; i++)
        ix[k++] = i;
    opt_draw_free(&dr);
    qsort(ix, (size_t)k, sizeof *ix, cmp_i64);
    int64_t u = 0;
    for (int64_t i = 0; i < k; i++)
        if (!u || ix[i] != ix[u - 1])
            ix[u++] = ix[i];
    *out = ix;
    return u;
}

static bool put_dataset(const h5ctx_t *c, hid_t f, int col, hsize_t rows, hsize_t width, const void *buf)
{
    hsize_t dims[2] = {rows, width};
    int rank = col == COL_SPLIT || col == COL_INDEX ? 1 : 2;
    hid_t sp = H5Screate_simple(rank, dims, NULL), d = -1;
    bool ok = sp >= 0 &&
              (d = H5Dcreate2(f, col_name[col], file_type(col_type[col]), sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
              (rows == 0 || H5Dwrite(d, mem_type(col_type[col]), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    if (!ok)
        h5_fail(c, col_name[col], "cannot write");
    if (d >= 0)
        H5Dclose(d);
    if (sp >= 0)
        H5Sclose(sp);
    return ok;
}

bool optfile_write(const char *path, const opt_data_params_t *p, const int64_t n[2], int pool,
                   const char *config_text, char *err, size_t errlen)
{
    opt_dims_t dm;
    opt_dims(&dm, p);
    hsize_t w[N_COLS];
    widths(&dm, w);
    int64_t *ix[2], cnt[2];
    for (int s = 0; s < 2; s++)
        cnt[s] = needed(p, s, n[s], pool, &ix[s]);
    size_t rows = (size_t)(cnt[0] + cnt[1]);
    void *col[N_COLS];
    for (int k = 0; k < N_COLS; k++)
        col[k] = xmalloc((rows ? rows : 1) * (size_t)w[k] * elem_size(col_type[k]));
    opt_scene_t sc;
    opt_scene_alloc(&sc, &dm);
    size_t r = 0;
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < cnt[s]; i++, r++) {
            opt_scene(p, s, ix[s][i], &sc);
            ((uint8_t *)col[COL_SPLIT])[r] = (uint8_t)s;
            ((int64_t *)col[COL_INDEX])[r] = ix[s][i];
            memcpy((int32_t *)col[COL_TEXT] + r * w[COL_TEXT], sc.text, w[COL_TEXT] * sizeof(int32_t));
            memcpy((float *)col[COL_REGION] + r * w[COL_REGION], sc.region, w[COL_REGION] * sizeof(float));
            memcpy((float *)col[COL_GEOM] + r * w[COL_GEOM], sc.geom, w[COL_GEOM] * sizeof(float));
            memcpy((int32_t *)col[COL_CLASS] + r * w[COL_CLASS], sc.region_class, w[COL_CLASS] * sizeof(int32_t));
            memcpy((float *)col[COL_AUDIO] + r * w[COL_AUDIO], sc.audio, w[COL_AUDIO] * sizeof(float));
            memcpy((int32_t *)col[COL_CODES] + r * w[COL_CODES], sc.codes, w[COL_CODES] * sizeof(int32_t));
        }
    opt_scene_free(&sc);
    h5ctx_t c = {path, err, errlen};
    hid_t f = h5_file_open(&c, H5_TRUNCATE, NULL);
    bool ok = f >= 0 && h5_attr_put_fixed_str(&c, f, "/", "format", OPTFILE_FORMAT) &&
              h5_attr_put_i32(&c, f, "/", "version", OPTFILE_VERSION) &&
              h5_attr_put_str(&c, f, "/", "config", config_text);
    int32_t a[5];
    attrs_of(p, a);
    for (int k = 0; k < 5 && ok; k++)
        ok = h5_attr_put_i32(&c, f, "/", attr_name[k], a[k]);
    for (int k = 0; k < N_COLS && ok; k++)
        ok = put_dataset(&c, f, k, (hsize_t)rows, w[k], col[k]);
    if (f >= 0)
        ok = h5_file_close(&c, f) && ok;
    for (int k = 0; k < N_COLS; k++)
        free(col[k]);
    free(ix[0]);
    free(ix[1]);
    return ok;
}

/* Dataset `col` whole into a new buffer: its type class (and sign) and shape checked. */
static bool get_dataset(const char *path, hid_t f, int col, int64_t *rows, hsize_t width, void **out,
                        char *err, size_t errlen)
{
    const char *name = col_name[col];
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return errorf(err, errlen, "%s: /%s: missing (an OPT triple file has /opt_split, /opt_index, /opt_text, /opt_region, /opt_geom, /opt_class, /opt_audio, /opt_codes)",
                      path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1, sp = d >= 0 ? H5Dget_space(d) : -1;
    bool ok = false;
    hsize_t dims[2] = {0, 1};
    int rank = col == COL_SPLIT || col == COL_INDEX ? 1 : 2;
    enum ctype ct = col_type[col];
    const char *want = ct == CT_U8 ? "unsigned integer" : ct == CT_F32 ? "float" : "integer";
    if (t < 0 || sp < 0) {
        errorf(err, errlen, "%s: /%s: cannot read its type or shape", path, name);
        goto done;
    }
    bool type_ok = ct == CT_F32 ? H5Tget_class(t) == H5T_FLOAT
                                : H5Tget_class(t) == H5T_INTEGER && (ct != CT_U8 || H5Tget_sign(t) == H5T_SGN_NONE);
    if (!type_ok || H5Sget_simple_extent_ndims(sp) != rank || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
        (*rows >= 0 && (int64_t)dims[0] != *rows) || (rank == 2 && dims[1] != width)) {
        if (rank == 1)
            errorf(err, errlen, "%s: /%s: must be %s [n_rows%s]", path, name, want, *rows >= 0 ? " (as /opt_split)" : "");
        else
            errorf(err, errlen, "%s: /%s: must be %s [n_rows, %llu] for the configured OPT sizes, got rank %d [%llu, %llu]",
                   path, name, want, (unsigned long long)width, H5Sget_simple_extent_ndims(sp),
                   (unsigned long long)dims[0], (unsigned long long)(rank == 2 ? dims[1] : 0));
        goto done;
    }
    *rows = (int64_t)dims[0];
    *out = xmalloc(((size_t)dims[0] ? (size_t)dims[0] : 1) * (size_t)width * elem_size(ct));
    if (dims[0] && H5Dread(d, mem_type(ct), H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        errorf(err, errlen, "%s: /%s: read failed (truncated or corrupt file?)", path, name);
        goto done;
    }
    ok = true;
done:
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return ok;
}

/* Every value of the rows in range: splits 0/1 and (split, index) strictly
 * increasing, ids in range, floats finite. */
static bool check_rows(const optfile_t *o, const hsize_t w[N_COLS], char *err, size_t errlen)
{
    const uint8_t *sp = o->col[COL_SPLIT];
    const int64_t *ix = o->col[COL_INDEX];
    const char *path = o->path;
    for (int64_t r = 0; r < o->n; r++) {
        if (sp[r] > 1)
            return errorf(err, errlen, "%s: /opt_split[%lld]: %u, need 0 (train) or 1 (held-out)", path, (long long)r, sp[r]);
        if (ix[r] < 0)
            return errorf(err, errlen, "%s: /opt_index[%lld]: %lld is negative", path, (long long)r, (long long)ix[r]);
        if (r > 0 && (sp[r] < sp[r - 1] || (sp[r] == sp[r - 1] && ix[r] <= ix[r - 1])))
            return errorf(err, errlen, "%s: /opt_index[%lld]: (split %u, index %lld) does not follow (split %u, index %lld): rows must be in increasing (split, index) order, each once",
                          path, (long long)r, sp[r], (long long)ix[r], sp[r - 1], (long long)ix[r - 1]);
    }
    struct { int col; int32_t hi; } ids[3] = {{COL_TEXT, o->dm.vocab}, {COL_CLASS, o->dm.classes}, {COL_CODES, o->dm.code_book}};
    for (int k = 0; k < 3; k++) {
        const int32_t *v = o->col[ids[k].col];
        size_t wk = (size_t)w[ids[k].col];
        for (size_t e = 0; e < (size_t)o->n * wk; e++)
            if (v[e] < 0 || v[e] >= ids[k].hi)
                return errorf(err, errlen, "%s: /%s[%zu, %zu]: %d is outside [0, %d)", path, col_name[ids[k].col],
                              e / wk, e % wk, v[e], ids[k].hi);
    }
    const int fl[3] = {COL_REGION, COL_GEOM, COL_AUDIO};
    for (int k = 0; k < 3; k++) {
        const float *v = o->col[fl[k]];
        size_t wk = (size_t)w[fl[k]];
        for (size_t e = 0; e < (size_t)o->n * wk; e++)
            if (!isfinite(v[e]))
                return errorf(err, errlen, "%s: /%s[%zu, %zu]: %g is not finite", path, col_name[fl[k]], e / wk, e % wk,
                              (double)v[e]);
    }
    return true;
}

optfile_t *optfile_open(const char *path, const opt_data_params_t *p, char *err, size_t errlen)
{
    optfile_t *o = xcalloc(1, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", path);
    opt_dims(&o->dm, p);
    hsize_t w[N_COLS];
    widths(&o->dm, w);
    h5ctx_t c = {path, err, errlen};
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = h5_file_open(&c, H5_READ, NULL);
    bool ok = f >= 0;
    char *fmt = NULL;
    if (ok && !(ok = h5_attr_get_str(&c, f, "/", "format", &fmt) && !strcmp(fmt, OPTFILE_FORMAT)) && fmt)
        errorf(err, errlen, "%s: format attribute '%s': not an OPT triple file ('%s'; write one with motscale data gen of an opt config)",
               path, fmt, OPTFILE_FORMAT);
    free(fmt);
    int32_t want[5], have;
    attrs_of(p, want);
    for (int k = 0; k < 5 && ok; k++) {
        ok = h5_attr_get(&c, f, "/", attr_name[k], H5T_NATIVE_INT32, &have, 1);
        if (ok && have != want[k])
            ok = errorf(err, errlen, "%s: attribute %s = %d but the config has data.%s = %d", path, attr_name[k], have,
                        attr_name[k], want[k]);
    }
    o->n = -1;
    for (int k = 0; k < N_COLS && ok; k++)
        ok = get_dataset(path, f, k, &o->n, w[k], &o->col[k], err, errlen);
    if (f >= 0)
        H5Fclose(f);
    h5_quiet_end(q);
    ok = ok && check_rows(o, w, err, errlen);
    if (!ok) {
        optfile_close(o);
        return NULL;
    }
    const uint8_t *sp = o->col[COL_SPLIT];
    o->first[0] = 0;
    o->first[1] = o->first[2] = o->n;
    for (int64_t r = 0; r < o->n; r++)
        if (sp[r] == 1) {
            o->first[1] = r;
            break;
        }
    return o;
}

int64_t optfile_rows(const optfile_t *f, int split) { return f->first[split + 1] - f->first[split]; }

void optfile_scene(const optfile_t *o, int split, int64_t index, opt_scene_t *s)
{
    const int64_t *ix = o->col[COL_INDEX];
    int64_t lo = o->first[split], hi = o->first[split + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ix[mid] < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= o->first[split + 1] || ix[lo] != index)
        DIE(EXIT_BADINPUT, "%s: /opt_index: no row for sample %lld of the %s split, which this run reads (motscale data gen writes every scene a run of its config reads)",
            o->path, (long long)index, split == SPLIT_TRAIN ? "train" : "held-out");
    hsize_t w[N_COLS];
    widths(&o->dm, w);
    size_t r = (size_t)lo;
    memcpy(s->text, (const int32_t *)o->col[COL_TEXT] + r * w[COL_TEXT], w[COL_TEXT] * sizeof(int32_t));
    memcpy(s->region, (const float *)o->col[COL_REGION] + r * w[COL_REGION], w[COL_REGION] * sizeof(float));
    memcpy(s->geom, (const float *)o->col[COL_GEOM] + r * w[COL_GEOM], w[COL_GEOM] * sizeof(float));
    memcpy(s->region_class, (const int32_t *)o->col[COL_CLASS] + r * w[COL_CLASS], w[COL_CLASS] * sizeof(int32_t));
    memcpy(s->audio, (const float *)o->col[COL_AUDIO] + r * w[COL_AUDIO], w[COL_AUDIO] * sizeof(float));
    memcpy(s->codes, (const int32_t *)o->col[COL_CODES] + r * w[COL_CODES], w[COL_CODES] * sizeof(int32_t));
    for (int f = 0; f < o->dm.frames; f++)
        s->word_of_frame[f] = -1;
}

void optfile_close(optfile_t *o)
{
    if (!o)
        return;
    for (int k = 0; k < N_COLS; k++)
        free(o->col[k]);
    free(o);
}

int optfile_is(const char *path)
{
    char why[512];
    h5ctx_t c = {path, why, sizeof why};
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = h5_file_open(&c, H5_READ, NULL);
    int is = f < 0 ? -1 : 0;
    char *fmt = NULL;
    if (f >= 0 && h5_attr_has(&c, f, "/", "format") == 1 && h5_attr_get_str(&c, f, "/", "format", &fmt))
        is = !strcmp(fmt, OPTFILE_FORMAT);
    free(fmt);
    if (f >= 0)
        H5Fclose(f);
    h5_quiet_end(q);
    return is;
}

bool optfile_summary(const char *path, char *line, size_t len, char *err, size_t errlen)
{
    h5ctx_t c = {path, err, errlen};
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = h5_file_open(&c, H5_READ, NULL);
    int32_t a[5] = {0};
    bool ok = f >= 0;
    for (int k = 0; k < 5 && ok; k++)
        ok = h5_attr_get(&c, f, "/", attr_name[k], H5T_NATIVE_INT32, &a[k], 1);
    if (f >= 0)
        H5Fclose(f);
    h5_quiet_end(q);
    opt_data_params_t p = {.regions = a[0], .classes = a[1], .region_dim = a[2], .frame_dim = a[3], .grid = a[4]};
    char why[256];
    if (!ok)
        return false;
    if (!opt_params_check(&p, why, sizeof why))
        return errorf(err, errlen, "%s: the size attributes: %s", path, why);
    optfile_t *o = optfile_open(path, &p, err, errlen);
    if (!o)
        return false;
    snprintf(line, len, "%s: OPT triples: %lld train + %lld held-out scenes; %d regions of %d features (%d classes), captions of %d words, %d audio frames of %d features, %d x %d image codes",
             path, (long long)optfile_rows(o, 0), (long long)optfile_rows(o, 1), p.regions, p.region_dim, p.classes,
             o->dm.text_len, o->dm.frames, p.frame_dim, p.grid, p.grid);
    optfile_close(o);
    return true;
}
