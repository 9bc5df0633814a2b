/* The synthetic token streams: vocabulary layout, determinism under every
 * (dp, micro batch) split of a global batch, modality shares, and the measured
 * statistics that make the modalities differ (docs/data.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/vocab.h"

/* Modality shares over N_SHARE windows of 65 tokens (1.3M tokens, about 30k spans),
 * within TOL_SHARE (tests/tolerances.env says why). */
#define N_SHARE 20000
/* Entropies over N_ENT windows: the plug-in estimate of H(X | Y) is biased low by
 * about (cells - rows) / (2 N ln 2) bits: 0.03 bits for 90 x 90 text pairs from
 * 200k pairs. The designed gains are > 1 bit (image, one row back) and about 0
 * (text, speech, one image row back), so the thresholds below sit far from both. */
#define N_ENT 20000
#define GAIN_ROW_IMAGE_MIN 0.8  /* image: H(X) - H(X | X[-W]) at least this */
#define GAIN_ROW_OTHER_MAX 0.25 /* text, speech: at most this */
#define GAIN_PREV_MIN 0.5       /* every modality: the previous token helps */

static void load(config_t *cfg, int n, char **over)
{
    char err[1024];
    if (!config_load(cfg, NULL, n, over, err, sizeof err))
        fail_msg("config_load: %s", err);
}

static data_t *open_split(const config_t *cfg, vocab_t *v, int split)
{
    char err[1024];
    if (!data_vocab(v, &cfg->data, err, sizeof err))
        fail_msg("vocab_from_config: %s", err);
    data_t *d = data_open(&cfg->data, v, split, err, sizeof err);
    if (!d)
        fail_msg("data_open: %s", err);
    return d;
}

static void test_vocab_layout(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    char err[256];
    load(&cfg, 0, NULL);
    assert_true(data_vocab(&v, &cfg.data, err, sizeof err));
    /* defaults: text 96 (boundary tokens included), image 64, one after the other */
    assert_int_equal(v.n_modalities, 2);
    assert_string_equal(v.names[0], "text");
    assert_int_equal(v.lo[0], 0);
    assert_int_equal(v.hi[0], 96);
    assert_int_equal(v.lo[1], 96);
    assert_int_equal(v.hi[1], 160);
    assert_int_equal(v.size, 160);
    assert_int_equal(vocab_modality(&v, 95), 0);
    assert_int_equal(vocab_modality(&v, 96), 1);
    assert_int_equal(vocab_modality(&v, 160), -1);

    char *over[] = {"data.modalities=text,image,speech", "data.mix=1,1,1", "data.vocab_speech=40"};
    load(&cfg, 3, over);
    assert_true(data_vocab(&v, &cfg.data, err, sizeof err));
    assert_int_equal(v.lo[2], 160);
    assert_int_equal(v.hi[2], 200);
    assert_int_equal(v.size, 200);
    /* <doc>, <image>, </image>, <speech>, </speech>: the first five text ids */
    assert_int_equal(vocab_n_boundary(&v), 5);
    assert_int_equal(vocab_doc_token(&v), 0);
    assert_int_equal(vocab_begin_token(&v, 1), 1);
    assert_int_equal(vocab_end_token(&v, 1), 2);
    assert_int_equal(vocab_begin_token(&v, 2), 3);
    assert_int_equal(vocab_end_token(&v, 2), 4);

    char *tiny[] = {"data.modalities=text,image,speech", "data.mix=1,1,1", "data.vocab_text=6"};
    load(&cfg, 3, tiny);
    assert_false(data_vocab(&v, &cfg.data, err, sizeof err));
    assert_non_null(strstr(err, "data.vocab_text"));
}

static void test_same_seed_same_tokens(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    char *over[] = {"data.modalities=text,image,speech", "data.mix=1,1,1"};
    load(&cfg, 2, over);
    size_t w = (size_t)cfg.model.seq_len + 1;
    data_t *a = open_split(&cfg, &v, SPLIT_TRAIN), *b = open_split(&cfg, &v, SPLIT_TRAIN);
    int32_t *x = malloc(16 * w * sizeof *x), *y = malloc(16 * w * sizeof *y);
    data_read(a, 100, 16, x);
    /* another handle, other windows read first, then the same ones backwards:
     * window k is a function of k alone (so resume needs only the index) */
    data_read(b, 5000, 3, y);
    for (int i = 15; i >= 0; i--)
        data_read(b, 100 + i, 1, y + (size_t)i * w);
    assert_memory_equal(x, y, 16 * w * sizeof *x);
    /* every window differs from every other, and from the held-out window of the
     * same index (disjoint seed streams) */
    data_t *h = open_split(&cfg, &v, SPLIT_HELDOUT);
    data_read(h, 100, 16, y);
    for (int i = 0; i < 16; i++) {
        assert_true(memcmp(x + i * w, y + i * w, w * sizeof *x) != 0);
        for (int j = 0; j < i; j++)
            assert_true(memcmp(x + i * w, x + j * w, w * sizeof *x) != 0);
    }
    /* another seed, another stream */
    char *over2[] = {"data.modalities=text,image,speech", "data.mix=1,1,1", "run.seed=2"};
    config_t cfg2;
    load(&cfg2, 3, over2);
    data_t *c = open_split(&cfg2, &v, SPLIT_TRAIN);
    data_read(c, 100, 16, y);
    assert_true(memcmp(x, y, 16 * w * sizeof *x) != 0);
    data_close(a);
    data_close(b);
    data_close(c);
    data_close(h);
    free(x);
    free(y);
}

/* The trainer's equation (include/motscale/data.h): rank r, micro batch i of
 * step s reads windows s*G + r*(G/dp) + i*mb + [0, mb). Every (dp, mb) split of
 * G = 8 must read exactly the single-rank windows, each by exactly one rank. */
static void test_layouts_read_the_same_batch(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    load(&cfg, 0, NULL);
    enum { G = 8 };
    size_t w = (size_t)cfg.model.seq_len + 1;
    data_t *d = open_split(&cfg, &v, SPLIT_TRAIN);
    int32_t *ref = malloc(G * w * sizeof *ref), *got = malloc(G * w * sizeof *got);
    int layouts = 0;
    for (int64_t step = 0; step < 4; step++) {
        data_read(d, step * G, G, ref);
        for (int dp = 1; dp <= G; dp *= 2)
            for (int mb = 1; mb <= G / dp; mb *= 2) {
                int per = G / dp, seen[G] = {0}, owner[G];
                memset(got, 0xff, G * w * sizeof *got);
                for (int r = 0; r < dp; r++)
                    for (int i = 0; i < per / mb; i++) {
                        int64_t first = step * G + (int64_t)r * per + (int64_t)i * mb;
                        int64_t at = first - step * G;
                        assert_true(at >= 0 && at + mb <= G);
                        data_read(d, first, mb, got + (size_t)at * w);
                        for (int j = 0; j < mb; j++) {
                            if (seen[at + j]++)
                                fail_msg("dp %d mb %d: window %lld read by ranks %d and %d", dp, mb,
                                         (long long)(first + j), owner[at + j], r);
                            owner[at + j] = r;
                        }
                    }
                for (int j = 0; j < G; j++)
                    assert_int_equal(seen[j], 1);
                assert_memory_equal(got, ref, G * w * sizeof *got);
                layouts++;
            }
    }
    assert_int_equal(layouts, 4 * (4 + 3 + 2 + 1));
    data_close(d);
    free(ref);
    free(got);
}

static int32_t *read_many(const config_t *cfg, vocab_t *v, int split, int64_t n)
{
    size_t w = (size_t)cfg->model.seq_len + 1;
    int32_t *t = malloc((size_t)n * w * sizeof *t);
    data_t *d = open_split(cfg, v, split);
    data_read(d, 0, (int)n, t);
    data_close(d);
    return t;
}

static void test_vocab_and_shares(void **state)
{
    (void)state;
    const char *mixes[][2] = {
        {"data.modalities=text,image,speech", "data.mix=1,1,1"},
        {"data.modalities=text,image,speech", "data.mix=1,6,6"}, /* the paper's speech-heavy mix */
        {"data.modalities=text,image", "data.mix=3,1"},
    };
    for (size_t c = 0; c < sizeof mixes / sizeof mixes[0]; c++) {
        config_t cfg;
        vocab_t v;
        load(&cfg, 2, (char **)mixes[c]);
        size_t w = (size_t)cfg.model.seq_len + 1;
        for (int split = 0; split < 2; split++) {
            int32_t *t = read_many(&cfg, &v, split, N_SHARE);
            double n[MAX_MODALITIES] = {0};
            for (size_t i = 0; i < (size_t)N_SHARE * w; i++) {
                int m = vocab_modality(&v, t[i]);
                if (m < 0)
                    fail_msg("token %d at %zu outside the vocabulary [0, %d)", t[i], i, v.size);
                n[m]++;
            }
            for (int m = 0; m < v.n_modalities; m++) {
                double share = n[m] / ((double)N_SHARE * (double)w);
                print_message("# %s split %d: %s share %.4f (mix %.4f)\n", mixes[c][1], split, v.names[m], share,
                              cfg.data.mix_share[m]);
                assert_close(share, cfg.data.mix_share[m], 0, TOL_SHARE);
            }
            free(t);
        }
    }
}

/* Plug-in entropies in bits over pairs (x = context, y = next). */
typedef struct pairs {
    int32_t k;        /* symbols are 0 .. k-1 */
    double *joint, *cx, *cy, n;
} pairs_t;

static void pairs_init(pairs_t *p, int32_t k)
{
    p->k = k;
    p->joint = calloc((size_t)k * (size_t)k, sizeof *p->joint);
    p->cx = calloc((size_t)k, sizeof *p->cx);
    p->cy = calloc((size_t)k, sizeof *p->cy);
    p->n = 0;
}

static double entropy(const double *c, size_t k, double n)
{
    double h = 0;
    for (size_t i = 0; i < k; i++)
        if (c[i] > 0)
            h -= c[i] / n * log2(c[i] / n);
    return h;
}

/* H(Y) and H(Y | X) = H(X, Y) - H(X) */
static void pairs_entropies(const pairs_t *p, double *hy, double *hy_x)
{
    *hy = entropy(p->cy, (size_t)p->k, p->n);
    *hy_x = entropy(p->joint, (size_t)p->k * (size_t)p->k, p->n) - entropy(p->cx, (size_t)p->k, p->n);
}

static void pairs_free(pairs_t *p)
{
    free(p->joint);
    free(p->cx);
    free(p->cy);
}

/* Per modality: H(X), H(X | previous token) and H(X | the token W = image_w
 * earlier), counting only pairs inside one span (boundary tokens end spans and are
 * not counted). The image is the modality built to gain from the row-back token. */
static void test_statistics_differ_as_designed(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    char *over[] = {"data.modalities=text,image,speech", "data.mix=1,1,1"};
    load(&cfg, 2, over);
    size_t w = (size_t)cfg.model.seq_len + 1;
    int W = cfg.data.synth.image_w;
    int32_t *t = read_many(&cfg, &v, SPLIT_TRAIN, N_ENT);
    int M = v.n_modalities;
    pairs_t prev[MAX_MODALITIES], row[MAX_MODALITIES];
    for (int m = 0; m < M; m++) {
        pairs_init(&prev[m], v.hi[m] - v.lo[m]);
        pairs_init(&row[m], v.hi[m] - v.lo[m]);
    }
    int64_t *span = malloc(w * sizeof *span);
    for (int64_t k = 0; k < N_ENT; k++) {
        const int32_t *x = t + (size_t)k * w;
        /* span id per position: a new span at a modality change or after a
         * boundary token; boundary tokens get -1 */
        int64_t id = 0;
        int last = -1;
        for (size_t i = 0; i < w; i++) {
            int m = vocab_modality(&v, x[i]);
            if (x[i] < vocab_n_boundary(&v)) {
                span[i] = -1;
                last = -1;
                continue;
            }
            if (m != last)
                id++;
            span[i] = id;
            last = m;
        }
        for (size_t i = 1; i < w; i++) {
            if (span[i] < 0)
                continue;
            int m = vocab_modality(&v, x[i]);
            int32_t y = x[i] - v.lo[m];
            if (span[i - 1] == span[i]) {
                pairs_t *p = &prev[m];
                int32_t c = x[i - 1] - v.lo[m];
                p->joint[(size_t)c * (size_t)p->k + (size_t)y]++, p->cx[c]++, p->cy[y]++, p->n++;
            }
            if (i >= (size_t)W && span[i - (size_t)W] == span[i]) {
                pairs_t *p = &row[m];
                int32_t c = x[i - (size_t)W] - v.lo[m];
                p->joint[(size_t)c * (size_t)p->k + (size_t)y]++, p->cx[c]++, p->cy[y]++, p->n++;
            }
        }
    }
    for (int m = 0; m < M; m++) {
        double h1, h1_prev, hw, hw_row;
        pairs_entropies(&prev[m], &h1, &h1_prev);
        pairs_entropies(&row[m], &hw, &hw_row);
        print_message("# %-6s H %.3f  H|prev %.3f (%.0f pairs)  H|row-back %.3f (H %.3f, %.0f pairs)\n", v.names[m],
                      h1, h1_prev, prev[m].n, hw_row, hw, row[m].n);
        assert_true(prev[m].n > 50000 && row[m].n > 50000);
        assert_true(h1 - h1_prev >= GAIN_PREV_MIN);
        if (!strcmp(v.names[m], "image"))
            assert_true(hw - hw_row >= GAIN_ROW_IMAGE_MIN);
        else
            assert_true(hw - hw_row <= GAIN_ROW_OTHER_MAX);
        pairs_free(&prev[m]);
        pairs_free(&row[m]);
    }
    free(span);
    free(t);
}

/* Image spans are whole H x W grids between <image> and </image>; speech spans
 * hold speech ids only; every window starts anywhere in the stream (not always at
 * <doc>), as packed training data does. */
static void test_span_structure(void **state)
{
    (void)state;
    config_t cfg;
    vocab_t v;
    char *over[] = {"data.modalities=text,image,speech", "data.mix=1,1,1", "model.seq_len=255"};
    load(&cfg, 3, over);
    size_t w = (size_t)cfg.model.seq_len + 1;
    enum { N = 2000 };
    int32_t *t = read_many(&cfg, &v, SPLIT_TRAIN, N);
    int64_t complete = 0, starts_doc = 0;
    for (int64_t k = 0; k < N; k++) {
        const int32_t *x = t + (size_t)k * w;
        starts_doc += x[0] == vocab_doc_token(&v);
        int64_t open = -1;
        for (size_t i = 0; i < w; i++) {
            if (x[i] == vocab_begin_token(&v, 1)) {
                assert_int_equal(open, -1);
                open = (int64_t)i;
            } else if (x[i] == vocab_end_token(&v, 1)) {
                if (open >= 0) {
                    assert_int_equal((int64_t)i - open - 1, (int64_t)cfg.data.synth.image_h * cfg.data.synth.image_w);
                    complete++;
                }
                open = -1;
            } else if (open >= 0) {
                assert_int_equal(vocab_modality(&v, x[i]), 1);
            }
        }
    }
    print_message("# %lld complete images; %lld of %d windows start with <doc>\n", (long long)complete,
                  (long long)starts_doc, N);
    assert_true(complete > N / 2);
    assert_true(starts_doc < N / 4);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_layout),
        cmocka_unit_test(test_same_seed_same_tokens),
        cmocka_unit_test(test_layouts_read_the_same_batch),
        cmocka_unit_test(test_vocab_and_shares),
        cmocka_unit_test(test_statistics_differ_as_designed),
        cmocka_unit_test(test_span_structure),
    };
    return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
