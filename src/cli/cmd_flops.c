/* `motscale flops CONFIG.ini [overrides]`: parameters and model FLOPs, no MPI. */
#include <string.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/flops.h"

int cmd_flops(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 1) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: motscale flops CONFIG.ini [section.key=value ...]\n\n"
                "Prints parameters (total, per tower, embedding vs. non-embedding, active per token)\n"
                "and model FLOPs per token by term, per step, without MPI and without training.\n"
                "The formula and what it leaves out: docs/model.md.\n");
        return argc < 1 ? EXIT_BADINPUT : EXIT_OK;
    }
    config_t cfg;
    char err[2048];
    if (!config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        return EXIT_BADINPUT;
    }
    vocab_t v;
    if (!vocab_from_config(&v, &cfg, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        return EXIT_BADINPUT;
    }
    flops_report_t r;
    flops_compute(&r, &cfg, v.size);
    static const char *kinds[] = {"dense", "mot", "towers"};
    printf("model: %s, %d tower(s), d_model %d, n_layers %d, n_heads %d, d_ff %d, seq_len %d, vocab %d\n",
           kinds[cfg.kind], cfg.n_towers, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, cfg.seq_len, v.size);
    printf("towers:");
    for (int m = 0; m < cfg.n_modalities; m++)
        printf(" %s->%d", cfg.modality_names[m], cfg.tower_of[m]);
    printf("\n\nparameters\n");
    printf("  %-28s %16lld\n", "embedding + head", (long long)r.params_embedding);
    printf("  %-28s %16lld\n", "per tower", (long long)r.params_per_tower);
    printf("  %-28s %16lld\n", "non-embedding", (long long)r.params_nonembedding);
    printf("  %-28s %16lld\n", "total", (long long)r.params_total);
    printf("  %-28s %16lld\n", "active per token", (long long)r.params_active_per_token);
    printf("\nmodel FLOPs per token (formula %s)\n", FLOPS_FORMULA_VERSION);
    printf("  %-28s %16.0f\n", "forward q,k,v,o", r.fwd_qkvo);
    printf("  %-28s %16.0f\n", "forward SwiGLU", r.fwd_ffn);
    printf("  %-28s %16.0f\n", "forward attention", r.fwd_attn);
    printf("  %-28s %16.0f\n", "forward head", r.fwd_head);
    printf("  %-28s %16.0f\n", "forward", r.fwd_per_token);
    printf("  %-28s %16.0f\n", "backward", r.bwd_per_token);
    printf("  %-28s %16.0f\n", "train", r.train_per_token);
    double tokens = (double)cfg.global_batch * cfg.seq_len;
    printf("\nper step (%d sequences x %d tokens)\n", cfg.global_batch, cfg.seq_len);
    printf("  %-28s %16.6g\n", "train FLOPs", tokens * r.train_per_token);
    printf("  %-28s %16.6g\n", "train FLOPs, whole run", tokens * r.train_per_token * (double)cfg.steps);
    return EXIT_OK;
}
