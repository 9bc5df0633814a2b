/* OPT's synthetic triples and pretraining draws (issue 16): scenes are pure
 * functions of (seed, split, index); the caption names the region classes and the
 * relations of their boxes; the audio speaks the caption (nearest word prototype
 * recovers the word) and region features give their class; token masks take exactly
 * k positions and the batch masks exactly those; BERT's 80/10/10 split and the
 * whole-modality and matching draws hold over many draws; no sample is masked whole
 * in all three modalities; matching classes agree with the swaps made. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/optdata.h"
#include "../../src/train/optbatch.h"

#define R_GEOM(dm) ((dm)->regions * OPT_GEOM)

static const opt_data_params_t P = {.seed = 3, .classes = 6, .regions = 3, .region_dim = 16, .frame_dim = 16,
                                    .grid = 4};

static void test_pure(void **state)
{
    (void)state;
    opt_dims_t dm;
    opt_dims(&dm, &P);
    assert_int_equal(dm.text_len, 5);
    assert_int_equal(dm.vocab, 1 + 6 + OPT_RELATIONS);
    assert_int_equal(dm.frames, 15);
    opt_scene_t a, b, c;
    opt_scene_alloc(&a, &dm);
    opt_scene_alloc(&b, &dm);
    opt_scene_alloc(&c, &dm);
    opt_scene(&P, 0, 17, &a);
    opt_scene(&P, 0, 17, &b);
    opt_scene(&P, 1, 17, &c);
    size_t nf = (size_t)(dm.frames * dm.frame_dim) * sizeof(float);
    assert_memory_equal(a.audio, b.audio, nf);
    assert_memory_equal(a.region, b.region, (size_t)(dm.regions * dm.region_dim) * sizeof(float));
    assert_memory_equal(a.text, b.text, (size_t)dm.text_len * sizeof(int32_t));
    assert_true(memcmp(a.audio, c.audio, nf) != 0);
    opt_scene_free(&a);
    opt_scene_free(&b);
    opt_scene_free(&c);
}

/* index of the nearest of n centroids (dim D) to x */
static int nearest(const double *cent, int n, int D, const float *x)
{
    int best = 0;
    double bd = INFINITY;
    for (int k = 0; k < n; k++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += (cent[k * D + j] - x[j]) * (cent[k * D + j] - x[j]);
        if (s < bd) bd = s, best = k;
    }
    return best;
}

/* The caption against the boxes (recomputed by hand), frames against the caption,
 * and the two cross-modal signals: centroids of frames by word and of region
 * features by class, learnt on 300 scenes, name the word / class of 300 others. */
static void test_informative(void **state)
{
    (void)state;
    opt_dims_t dm;
    opt_dims(&dm, &P);
    opt_scene_t s;
    opt_scene_alloc(&s, &dm);
    int D = dm.frame_dim, V = dm.vocab, C = dm.classes, Dr = dm.region_dim;
    double *wc = calloc((size_t)(V * D), sizeof(double)), *rc = calloc((size_t)(C * Dr), sizeof(double));
    int *wn = calloc((size_t)V, sizeof(int)), *rn = calloc((size_t)C, sizeof(int));
    int right_w = 0, n_w = 0, right_r = 0, n_r = 0;
    for (int64_t i = 0; i < 600; i++) {
        opt_scene(&P, 0, i, &s);
        if (i == 300) { /* the centroids from the first 300 scenes */
            for (int k = 0; k < V * D; k++) wc[k] /= wn[k / D] ? wn[k / D] : 1;
            for (int q = 0; q < C * Dr; q++) rc[q] /= rn[q / Dr] ? rn[q / Dr] : 1;
        }
        for (int k = 0; k < dm.regions; k++) {
            assert_int_equal(s.text[2 * k], 1 + s.region_class[k]);
            if (k + 1 == dm.regions)
                continue;
            const float *a = s.geom + k * OPT_GEOM, *b = s.geom + (k + 1) * OPT_GEOM;
            double dx = (b[0] + b[2]) / 2 - (a[0] + a[2]) / 2, dy = (b[1] + b[3]) / 2 - (a[1] + a[3]) / 2;
            int rel = fabs(dx) >= fabs(dy) ? (dx >= 0 ? 0 : 1) : (dy >= 0 ? 3 : 2);
            assert_int_equal(s.text[2 * k + 1], 1 + C + rel);
            assert_close(a[6], (double)a[4] * a[5], 1e-6, 0);
        }
        /* words in order, 1 to 3 frames each, silence after */
        int prev = -1, run = 0;
        for (int f = 0; f < dm.frames; f++) {
            int w = s.word_of_frame[f];
            if (w == prev) {
                run++;
                assert_true(run <= 3);
            } else {
                assert_true(w == prev + 1 || w == -1);
                run = 1;
            }
            if (w == -1)
                for (int g = f; g < dm.frames; g++) assert_int_equal(s.word_of_frame[g], -1);
            if (w == -1)
                break;
            prev = w;
        }
        for (int f = 0; f < dm.frames; f++) {
            int w = s.word_of_frame[f];
            if (w < 0)
                continue;
            int id = s.text[w];
            if (i < 300) {
                for (int j = 0; j < D; j++) wc[id * D + j] += s.audio[f * D + j];
                wn[id]++;
            } else {
                right_w += nearest(wc, V, D, s.audio + f * D) == id;
                n_w++;
            }
        }
        for (int k = 0; k < dm.regions; k++) {
            int c = s.region_class[k];
            if (i < 300) {
                for (int j = 0; j < Dr; j++) rc[c * Dr + j] += s.region[k * Dr + j];
                rn[c]++;
            } else {
                right_r += nearest(rc, C, Dr, s.region + k * Dr) == c;
                n_r++;
            }
        }
    }
    print_message("# nearest word prototype %d / %d frames, nearest class %d / %d regions\n", right_w, n_w, right_r,
                  n_r);
    assert_true(right_w >= OPT_INFORMATIVE_MIN * n_w);
    assert_true(right_r >= OPT_INFORMATIVE_MIN * n_r);
    free(wc), free(rc), free(wn), free(rn);
    opt_scene_free(&s);
}

/* 20000 draws: exactly k masked per modality; among masked text tokens 80% [MASK],
 * 10% a random word, 10% kept; each modality masked whole with p = 0.3 given not all
 * three, (0.3 - 0.3^3) / (1 - 0.3^3) = 0.2806, never all three; matching classes
 * uniform, their sources as the class says. */
static void test_draws(void **state)
{
    (void)state;
    enum { N = 20000 };
    opt_dims_t dm;
    opt_dims(&dm, &P);
    opt_draw_t dr;
    opt_draw_alloc(&dr, &dm);
    int64_t masked = 0, as_mask = 0, as_random = 0, kept = 0, whole[3] = {0}, cls[OPT_MATCH_N] = {0};
    for (int64_t i = 0; i < N; i++) {
        opt_draw(&P, 0, i, &dr);
        int nt = 0, nr = 0, nf = 0;
        for (int k = 0; k < dm.text_len; k++) {
            nt += dr.text_masked[k];
            if (!dr.text_masked[k]) {
                assert_int_equal(dr.text_replace[k], -1);
                continue;
            }
            masked++;
            int32_t r = dr.text_replace[k];
            as_mask += r == OPT_TOK_MASK;
            as_random += r >= 1 && r < dm.vocab;
            kept += r == -1;
        }
        for (int k = 0; k < dm.regions; k++) nr += dr.region_masked[k];
        for (int k = 0; k < dm.frames; k++) nf += dr.frame_masked[k];
        assert_int_equal(nt, opt_mask_count(dm.text_len));
        assert_int_equal(nr, opt_mask_count(dm.regions));
        assert_int_equal(nf, opt_mask_count(dm.frames));
        assert_false(dr.whole[0] && dr.whole[1] && dr.whole[2]);
        for (int m = 0; m < 3; m++) whole[m] += dr.whole[m];
        cls[dr.match]++;
        /* which modalities come from elsewhere */
        bool t = dr.source[OPT_TEXT] != i, im = dr.source[OPT_IMAGE] != i, a = dr.source[OPT_AUDIO] != i;
        switch (dr.match) {
        case OPT_MATCH_ALL: assert_true(!t && !im && !a); break;
        case OPT_MATCH_IMAGE_AUDIO: assert_true(t && !im && !a); break;
        case OPT_MATCH_TEXT_AUDIO: assert_true(!t && im && !a); break;
        case OPT_MATCH_TEXT_IMAGE: assert_true(!t && !im && a); break;
        case OPT_MATCH_NONE:
            assert_true(!t && im && a);
            assert_true(dr.source[OPT_IMAGE] != dr.source[OPT_AUDIO]);
            break;
        default: fail_msg("match class %d", dr.match);
        }
    }
    assert_int_equal(as_mask + as_random + kept, masked);
    print_message("# masked %lld: [MASK] %.4f random %.4f kept %.4f; whole %.4f %.4f %.4f\n", (long long)masked,
                  (double)as_mask / masked, (double)as_random / masked, (double)kept / masked, (double)whole[0] / N,
                  (double)whole[1] / N, (double)whole[2] / N);
    assert_close((double)as_mask / masked, 0.8, 0, TOL_OPT_DRAW_SHARE);
    assert_close((double)as_random / masked, 0.1, 0, TOL_OPT_DRAW_SHARE);
    assert_close((double)kept / masked, 0.1, 0, TOL_OPT_DRAW_SHARE);
    double pw = (0.3 - 0.027) / (1 - 0.027);
    for (int m = 0; m < 3; m++) assert_close((double)whole[m] / N, pw, 0, TOL_OPT_DRAW_SHARE);
    for (int c = 0; c < OPT_MATCH_N; c++) assert_close((double)cls[c] / N, 0.2, 0, TOL_OPT_DRAW_SHARE);
    opt_draw_free(&dr);
}

/* The batch masks exactly the drawn positions: text differs from its target only
 * where masked (as the draw says), masked region features and frames are zero and
 * no other row is; each modality's targets are the scene it was swapped in from. */
static void test_batch_masks(void **state)
{
    (void)state;
    enum { B = 40 };
    opt_batch_t b;
    opt_batch_init(&b, &P, B);
    opt_batch_read(&b, 0, 100, B);
    const opt_dims_t *dm = &b.dm;
    opt_draw_t dr;
    opt_draw_alloc(&dr, dm);
    opt_scene_t s;
    opt_scene_alloc(&s, dm);
    int Tt = dm->text_len, R = dm->regions, Ta = dm->frames, Dr = dm->region_dim, Df = dm->frame_dim;
    for (int k = 0; k < B; k++) {
        opt_draw(&P, 0, 100 + k, &dr);
        assert_int_equal(b.match[k], dr.match);
        opt_scene(&P, 0, dr.source[OPT_TEXT], &s);
        for (int i = 0; i < Tt; i++) {
            assert_int_equal(b.text_tgt[k * Tt + i], s.text[i]);
            assert_int_equal(b.text_masked[k * Tt + i], dr.text_masked[i]);
            int32_t want = dr.text_masked[i] && dr.text_replace[i] >= 0 ? dr.text_replace[i] : s.text[i];
            assert_int_equal(b.text_in[k * Tt + i], want);
        }
        opt_scene(&P, 0, dr.source[OPT_IMAGE], &s);
        for (int r = 0; r < R; r++) {
            assert_int_equal(b.region_class[k * R + r], s.region_class[r]);
            assert_int_equal(b.region_masked[k * R + r], dr.region_masked[r]);
            for (int j = 0; j < Dr; j++) {
                assert_true(b.region_tgt[(k * R + r) * Dr + j] == s.region[r * Dr + j]);
                assert_true(b.region_in[(k * R + r) * Dr + j] == (dr.region_masked[r] ? 0 : s.region[r * Dr + j]));
            }
        }
        opt_scene(&P, 0, dr.source[OPT_AUDIO], &s);
        for (int f = 0; f < Ta; f++) {
            assert_int_equal(b.frame_masked[k * Ta + f], dr.frame_masked[f]);
            for (int j = 0; j < Df; j++) {
                assert_true(b.audio_tgt[(k * Ta + f) * Df + j] == s.audio[f * Df + j]);
                assert_true(b.audio_in[(k * Ta + f) * Df + j] == (dr.frame_masked[f] ? 0 : s.audio[f * Df + j]));
            }
        }
    }
    opt_scene_free(&s);
    opt_draw_free(&dr);
    opt_batch_free(&b);
}

/* With whole-modality masks on (the modality-level tasks): a text masked whole is all
 * [MASK], an image masked whole has every region feature zero (boxes kept), an audio
 * masked whole every frame zero; such a sample has no matching label; the image's
 * codes are its scene's; off, nothing is masked whole. */
static void test_batch_whole(void **state)
{
    (void)state;
    enum { B = 60 };
    opt_data_params_t pw = P;
    pw.whole_masks = true;
    opt_batch_t b, plain;
    opt_batch_init(&b, &pw, B);
    opt_batch_init(&plain, &P, B);
    opt_batch_read(&b, 0, 500, B);
    opt_batch_read(&plain, 0, 500, B);
    const opt_dims_t *dm = &b.dm;
    opt_draw_t dr;
    opt_draw_alloc(&dr, dm);
    opt_scene_t s;
    opt_scene_alloc(&s, dm);
    int Tt = dm->text_len, nr = dm->regions * dm->region_dim, na = dm->frames * dm->frame_dim, seen[3] = {0};
    for (int k = 0; k < B; k++) {
        opt_draw(&pw, 0, 500 + k, &dr);
        bool any = false;
        for (int m = 0; m < 3; m++) {
            assert_int_equal(b.whole[k * 3 + m], dr.whole[m]);
            assert_int_equal(plain.whole[k * 3 + m], 0);
            any |= dr.whole[m];
            seen[m] += dr.whole[m];
        }
        assert_int_equal(b.match[k], any ? -1 : dr.match);
        for (int i = 0; i < Tt; i++)
            assert_int_equal(b.text_in[k * Tt + i], dr.whole[OPT_TEXT] ? OPT_TOK_MASK : plain.text_in[k * Tt + i]);
        for (int i = 0; i < nr; i++)
            assert_true(b.region_in[k * nr + i] == (dr.whole[OPT_IMAGE] ? 0 : plain.region_in[k * nr + i]));
        for (int i = 0; i < R_GEOM(dm); i++)
            assert_true(b.geom[k * R_GEOM(dm) + i] == plain.geom[k * R_GEOM(dm) + i]);
        for (int i = 0; i < na; i++)
            assert_true(b.audio_in[k * na + i] == (dr.whole[OPT_AUDIO] ? 0 : plain.audio_in[k * na + i]));
        opt_scene(&pw, 0, dr.source[OPT_IMAGE], &s);
        for (int i = 0; i < dm->codes; i++)
            assert_int_equal(b.codes[k * dm->codes + i], s.codes[i]);
    }
    for (int m = 0; m < 3; m++)
        assert_true(seen[m] > 0);
    opt_scene_free(&s);
    opt_draw_free(&dr);
    opt_batch_free(&b);
    opt_batch_free(&plain);
}

/* Recall at k on a hand-built 4 x 4 score matrix. Query 0: right candidate best ->
 * rank 0. Query 1: two candidates above it -> rank 2. Query 2: tied with column 0
 * (a lower column) and below column 3 -> rank 2. Query 3: tied with column 1 only,
 * a lower column -> rank 1. R@1 = 1/4, R@2 = 2/4, R@3 = 4/4. */
static void test_recall(void **state)
{
    (void)state;
    const double S[16] = {
        0.9, 0.1, 0.2, 0.3,
        0.8, 0.5, 0.7, 0.1,
        0.4, 0.0, 0.4, 0.6,
        0.0, 0.3, 0.2, 0.3,
    };
    assert_close(retrieval_recall(S, 4, 1), 0.25, 0, 0);
    assert_close(retrieval_recall(S, 4, 2), 0.50, 0, 0);
    assert_close(retrieval_recall(S, 4, 3), 1.00, 0, 0);
    /* the identity ranks every query first; its negation last */
    double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, N[9];
    for (int i = 0; i < 9; i++) N[i] = -I[i];
    assert_close(retrieval_recall(I, 3, 1), 1, 0, 0);
    assert_close(retrieval_recall(N, 3, 2), 0, 0, 0);
    assert_close(retrieval_recall(N, 3, 3), 1, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure),
        cmocka_unit_test(test_informative),
        cmocka_unit_test(test_draws),
        cmocka_unit_test(test_batch_masks),
        cmocka_unit_test(test_batch_whole),
        cmocka_unit_test(test_recall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
