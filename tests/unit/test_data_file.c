/* The HDF5 token file: windows read from a hand-written file are the tokens at
 * the documented offsets; `motscale data gen` then data.source = file gives the
 * synthetic windows back, train and held-out; malformed files (written here with
 * the HDF5 C API) are refused with a message naming file, dataset and offset. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "motscale/cli.h"
#include "motscale/config.h"
#include "motscale/data.h"

static char dir[512];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/motscale-data.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* A hand-made file of the documented layout: text ids 0..95, image 96..159. */
enum { WIN = 65, N_TRAIN_WIN = 4, N_HELD_WIN = 3, N_TOK = (N_TRAIN_WIN + N_HELD_WIN) * WIN };

typedef struct fileopts {
    bool no_tokens, no_spans, no_vocab_lo, float_tokens, signed_tokens;
} fileopts_t;

static void good_tokens(uint32_t *t)
{
    /* each window: 30 text tokens, then 35 image tokens; values vary by position
     * so a misplaced read cannot pass */
    for (int i = 0; i < N_TOK; i++) {
        int j = i % WIN;
        t[i] = j < 30 ? (uint32_t)(5 + (i * 7) % 91) : (uint32_t)(96 + (i * 13) % 64);
    }
}

static void put_attr_str(hid_t f, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    assert_true(t >= 0 && H5Tset_size(t, strlen(s) + 1) >= 0);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, t, s) >= 0);
    assert_true(H5Aclose(a) >= 0 && H5Sclose(sp) >= 0 && H5Tclose(t) >= 0);
}

static void put_attr_ints(hid_t f, const char *name, const int64_t *v, hsize_t n)
{
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, v) >= 0);
    assert_true(H5Aclose(a) >= 0 && H5Sclose(sp) >= 0);
}

static void write_file(const char *path, const uint32_t *tok, fileopts_t o)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t n = N_TOK;
    if (!o.no_tokens) {
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t d;
        if (o.float_tokens) {
            float *x = malloc(N_TOK * sizeof *x);
            for (int i = 0; i < N_TOK; i++)
                x[i] = (float)tok[i];
            d = H5Dcreate2(f, "tokens", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
            free(x);
        } else {
            d = H5Dcreate2(f, "tokens", o.signed_tokens ? H5T_STD_I32LE : H5T_STD_U16LE, sp, H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT);
            assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tok) >= 0);
        }
        assert_true(H5Dclose(d) >= 0 && H5Sclose(sp) >= 0);
    }
    if (!o.no_spans) {
        /* two spans per window, text then image, as good_tokens lays them out */
        uint64_t rows[2 * (N_TRAIN_WIN + N_HELD_WIN)][3];
        for (int k = 0; k < N_TRAIN_WIN + N_HELD_WIN; k++) {
            uint64_t a[3] = {(uint64_t)k * WIN, 30, 0}, b[3] = {(uint64_t)k * WIN + 30, WIN - 30, 1};
            memcpy(rows[2 * k], a, sizeof a);
            memcpy(rows[2 * k + 1], b, sizeof b);
        }
        hsize_t dims[2] = {2 * (N_TRAIN_WIN + N_HELD_WIN), 3};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(f, "spans", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
        assert_true(H5Dclose(d) >= 0 && H5Sclose(sp) >= 0);
    }
    int64_t lo[2] = {0, 96}, hi[2] = {96, 160}, held = N_TRAIN_WIN * WIN;
    put_attr_str(f, "modalities", "text,image");
    if (!o.no_vocab_lo)
        put_attr_ints(f, "vocab_lo", lo, 2);
    put_attr_ints(f, "vocab_hi", hi, 2);
    put_attr_ints(f, "heldout_start", &held, 1);
    assert_true(H5Fclose(f) >= 0);
}

static void file_config(config_t *cfg, const char *path, const char *modalities)
{
    char src[] = "data.source=file", p[1100], mods[128], mix[64] = "data.mix=1,1";
    snprintf(p, sizeof p, "data.path=%s", path);
    snprintf(mods, sizeof mods, "data.modalities=%s", modalities);
    if (!strcmp(modalities, "text,image,speech"))
        snprintf(mix, sizeof mix, "data.mix=1,1,1");
    char *over[] = {src, p, mods, mix};
    char err[1024];
    if (!config_load(cfg, NULL, 4, over, err, sizeof err))
        fail_msg("config_load: %s", err);
}

/* data_open's verdict on a file: NULL and the message, or the handle. */
static data_t *try_open(const char *path, const char *modalities, int split, char *err, size_t errlen)
{
    static config_t cfg;
    vocab_t v;
    file_config(&cfg, path, modalities);
    if (!data_vocab(&v, &cfg.data, err, errlen))
        return NULL;
    return data_open(&cfg.data, &v, split, err, errlen);
}

static void expect_refused(const char *name, const uint32_t *tok, fileopts_t o, const char *must1,
                           const char *must2)
{
    char path[600], err[2048] = "";
    path_of(path, sizeof path, name);
    write_file(path, tok, o);
    data_t *d = try_open(path, "text,image", SPLIT_TRAIN, err, sizeof err);
    print_message("# %s: %s\n", name, err);
    if (d)
        fail_msg("%s: opened, wanted a refusal", name);
    assert_non_null(strstr(err, path));
    if (!strstr(err, must1) || (must2 && !strstr(err, must2)))
        fail_msg("%s: message '%s' lacks '%s' / '%s'", name, err, must1, must2 ? must2 : "");
    /* `motscale data inspect` refuses it with exit status 2 */
    char verb[] = "inspect";
    char *argv[] = {verb, path};
    assert_int_equal(cmd_data(2, argv), 2);
}

static void test_reads_documented_offsets(void **state)
{
    (void)state;
    uint32_t tok[N_TOK];
    good_tokens(tok);
    char path[600], err[2048];
    path_of(path, sizeof path, "good.h5");
    write_file(path, tok, (fileopts_t){0});
    data_t *tr = try_open(path, "text,image", SPLIT_TRAIN, err, sizeof err);
    data_t *he = try_open(path, "text,image", SPLIT_HELDOUT, err, sizeof err);
    if (!tr || !he)
        fail_msg("good file refused: %s", err);
    int32_t got[2 * WIN];
    /* train window k = /tokens[k*65, (k+1)*65); k = 4 wraps to window 0 */
    for (int64_t k = 0; k < 6; k++) {
        data_read(tr, k, 1, got);
        int64_t at = (k % N_TRAIN_WIN) * WIN;
        for (int i = 0; i < WIN; i++)
            assert_int_equal(got[i], (int32_t)tok[at + i]);
    }
    /* held-out window k = /tokens[heldout_start + k*65, ...) */
    data_read(he, 1, 2, got);
    for (int i = 0; i < 2 * WIN; i++)
        assert_int_equal(got[i], (int32_t)tok[(N_TRAIN_WIN + 1) * WIN + i]);
    data_close(tr);
    data_close(he);
}

static void test_malformed_files_are_refused(void **state)
{
    (void)state;
    uint32_t tok[N_TOK];
    good_tokens(tok);
    uint32_t bad[N_TOK];
    memcpy(bad, tok, sizeof bad);
    bad[70] = 200; /* beyond the vocabulary of 160 */
    expect_refused("out_of_vocab.h5", bad, (fileopts_t){0}, "/tokens[70]", "200");
    memcpy(bad, tok, sizeof bad);
    bad[3] = 100; /* an image id inside the first (text) span */
    expect_refused("wrong_range.h5", bad, (fileopts_t){0}, "/tokens[3]", "/spans[0]");
    expect_refused("float.h5", tok, (fileopts_t){.float_tokens = true}, "/tokens", "float");
    expect_refused("signed.h5", tok, (fileopts_t){.signed_tokens = true}, "/tokens", "signed integer");
    expect_refused("no_tokens.h5", tok, (fileopts_t){.no_tokens = true}, "dataset /tokens is missing", NULL);
    expect_refused("no_spans.h5", tok, (fileopts_t){.no_spans = true}, "dataset /spans is missing", NULL);
    expect_refused("no_vocab_lo.h5", tok, (fileopts_t){.no_vocab_lo = true}, "/@vocab_lo: missing", NULL);

    /* the first half of a good file */
    char good[600], cut[600], err[2048] = "";
    path_of(good, sizeof good, "good.h5");
    path_of(cut, sizeof cut, "truncated.h5");
    write_file(good, tok, (fileopts_t){0});
    FILE *in = fopen(good, "rb"), *out = fopen(cut, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, in);
    assert_true(n > 1000 && n < sizeof buf);
    assert_int_equal(fwrite(buf, 1, n / 2, out), n / 2);
    assert_int_equal(fclose(in), 0);
    assert_int_equal(fclose(out), 0);
    assert_null(try_open(cut, "text,image", SPLIT_TRAIN, err, sizeof err));
    print_message("# truncated: %s\n", err);
    assert_non_null(strstr(err, cut));
    assert_non_null(strstr(err, "truncated"));

    /* not HDF5 at all */
    char txt[600];
    path_of(txt, sizeof txt, "plain.txt");
    FILE *f = fopen(txt, "w");
    assert_non_null(f);
    fputs("just some text, not a token file\n", f);
    assert_int_equal(fclose(f), 0);
    assert_null(try_open(txt, "text,image", SPLIT_TRAIN, err, sizeof err));
    assert_non_null(strstr(err, "not an HDF5 file"));

    /* the config must name the file's modalities */
    assert_null(try_open(good, "text,image,speech", SPLIT_TRAIN, err, sizeof err));
    print_message("# mismatch: %s\n", err);
    assert_non_null(strstr(err, "data.modalities"));
}

/* `motscale data gen`, then data.source = file: the same tokens for every
 * written window, train and held-out, at a 3-modality config. */
static void test_gen_round_trip(void **state)
{
    (void)state;
    char ini[600], h5[600], err[2048];
    path_of(ini, sizeof ini, "gen.ini");
    path_of(h5, sizeof h5, "gen.h5");
    FILE *f = fopen(ini, "w");
    assert_non_null(f);
    fputs("[run]\nseed = 7\n[model]\nseq_len = 32\n[data]\nmodalities = text,image,speech\nmix = 1,2,1\n"
          "[train]\nsteps = 5\nglobal_batch = 4\n[log]\neval_tokens = 300\n", f);
    assert_int_equal(fclose(f), 0);
    char verb[] = "gen", o[] = "-o";
    char *argv[] = {verb, ini, o, h5};
    assert_int_equal(cmd_data(4, argv), 0);

    static config_t syn, fil;
    char src[] = "data.source=file", p[700];
    snprintf(p, sizeof p, "data.path=%s", h5);
    char *over[] = {src, p};
    assert_true(config_load(&syn, ini, 0, NULL, err, sizeof err));
    assert_true(config_load(&fil, ini, 2, over, err, sizeof err));
    /* defaults: steps x global_batch = 20 train windows, ceil(300 / 32) = 10 held-out */
    int64_t count[2] = {20, 10};
    size_t w = 33;
    int32_t *a = malloc(20 * w * sizeof *a), *b = malloc(20 * w * sizeof *b);
    for (int split = 0; split < 2; split++) {
        vocab_t vs, vf;
        assert_true(data_vocab(&vs, &syn.data, err, sizeof err));
        if (!data_vocab(&vf, &fil.data, err, sizeof err))
            fail_msg("%s", err);
        assert_memory_equal(&vs, &vf, sizeof vs);
        data_t *ds = data_open(&syn.data, &vs, split, err, sizeof err);
        data_t *df = data_open(&fil.data, &vf, split, err, sizeof err);
        if (!ds || !df)
            fail_msg("data_open: %s", err);
        data_read(ds, 0, (int)count[split], a);
        data_read(df, 0, (int)count[split], b);
        assert_memory_equal(a, b, (size_t)count[split] * w * sizeof *a);
        /* past the written windows the file's split repeats */
        data_read(df, count[split] + 3, 1, b);
        assert_memory_equal(a + 3 * w, b, w * sizeof *a);
        data_close(ds);
        data_close(df);
    }
    char iverb[] = "inspect";
    char *iargv[] = {iverb, h5};
    assert_int_equal(cmd_data(2, iargv), 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_documented_offsets),
        cmocka_unit_test(test_malformed_files_are_refused),
        cmocka_unit_test(test_gen_round_trip),
    };
    return cmocka_run_group_tests_name("data_file", tests, setup, teardown);
}
