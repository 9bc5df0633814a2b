/* OPT retrieval at initialisation (issue 16): the matching head of an untrained
 * model ranks candidates no better than chance. Over a pool of 40 held-out scenes and
 * the 5 directions (200 queries), R@1 stays near 1/40 and R@10 near 10/40; a scorer
 * that saw the answer (or ranked by the candidate's index) would be far off. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/data.h"
#include "motscale/mesh.h"
#include "motscale/model.h"
#include "../../src/train/optbatch.h"

static void test_chance_at_init(void **state)
{
    (void)state;
    enum { POOL = 40, MB = 8 };
    data_params_t dp = {.source = DATA_SYNTHETIC, .opt_triples = true, .opt_batch = MB,
                        .opt = {.seed = 4, .classes = 8, .regions = 3, .region_dim = 16, .frame_dim = 16, .grid = 4}};
    opt_dims_t dm;
    opt_dims(&dm, &dp.opt);
    vocab_t v = {.n_modalities = 3, .size = 3};
    char err[256];
    data_t *held = data_open(&dp, &v, SPLIT_HELDOUT, err, sizeof err);
    assert_non_null(held);
    model_shape_t s = {.kind = MODEL_OPT, .d_model = 32, .n_layers = 2, .n_heads = 4, .d_ff = 64, .seq_len = 1,
                       .norm_eps = 1e-5, .n_modalities = 3, .n_towers = 1};
    s.opt = (opt_shape_t){.text_len = dm.text_len, .vocab = dm.vocab, .regions = dm.regions,
                          .region_dim = dm.region_dim, .classes = dm.classes, .frames = dm.frames,
                          .frame_dim = dm.frame_dim, .unimodal_layers = 1, .temperature = 0.1,
                          .codes = dm.codes, .code_book = dm.code_book, .decoder_layers = 1,
                          .weight = {1, 1, 1, 1, 1, 1, 1, 1}};
    model_t m;
    model_build(&m, &s, &v, (tp_ctx_t){.comm = 0, .rank = 0, .size = 1}, MB);
    model_init_params(&m, 1, &(model_init_t){.std = 0.1});
    mesh_t mesh = {.world_size = 1, .tp = 1, .dp = 1};
    double recall[15];
    opt_retrieval(&m, held, POOL, MB, &mesh, recall);
    double r1 = 0, r10 = 0;
    for (int d = 0; d < 5; d++) {
        print_message("# direction %d: R@1 %.3f R@5 %.3f R@10 %.3f\n", d, recall[3 * d], recall[3 * d + 1],
                      recall[3 * d + 2]);
        assert_true(recall[3 * d] <= recall[3 * d + 1] && recall[3 * d + 1] <= recall[3 * d + 2]);
        r1 += recall[3 * d] / 5;
        r10 += recall[3 * d + 2] / 5;
    }
    print_message("# mean over directions: R@1 %.3f (chance %.3f), R@10 %.3f (chance %.3f)\n", r1, 1.0 / POOL, r10,
                  10.0 / POOL);
    assert_close(r1, 1.0 / POOL, 0, TOL_OPT_CHANCE_R1);
    assert_close(r10, 10.0 / POOL, 0, TOL_OPT_CHANCE_R10);
    model_free(&m);
    data_close(held);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chance_at_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
