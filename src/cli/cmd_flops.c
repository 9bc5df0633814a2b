/* `motscale flops CONFIG.ini [overrides]`: parameters, model FLOPs and memory per
 * rank, from the model kind's own count, without MPI and without training. */
#include <math.h>
#include <string.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/flops.h"
#include "motscale/model.h"

static void print_memory(const config_t *cfg, int32_t vocab_size)
{
    /* the layout the config fixes; dp = auto counts as one data-parallel rank */
    int dp = cfg->dp > 0 ? cfg->dp : 1;
    int micro = cfg->micro_batch > 0 ? cfg->micro_batch : cfg->global_batch / dp;
    model_memory_t mm;
    model_memory(&mm, &cfg->model, vocab_size, cfg->tp, micro > 0 ? micro : 1);
    if (cfg->zero && dp > 1) {
        /* ZeRO-1: each rank keeps the moments of its 1/dp of every bucket (within one
         * element per bucket; rounded up here) */
        double full = mm.moments, elems = full / (2 * sizeof(real));
        mm.moments = 2 * sizeof(real) * ceil(elems / dp);
        mm.analytic_min -= full - mm.moments;
    }
    printf("\nmemory per rank (tp %d, dp %d, zero %d, micro-batch %d sequences; bytes)\n", cfg->tp, dp, cfg->zero,
           micro);
    printf("  %-34s %16.0f\n", "parameters", mm.params);
    printf("  %-34s %16.0f\n", "gradients", mm.grads);
    printf("  %-34s %16.0f\n", cfg->zero && dp > 1 ? "AdamW moments (1/dp: ZeRO-1)" : "AdamW moments", mm.moments);
    printf("  %-34s %16.0f\n", "activations for backward", mm.activations);
    printf("  %-34s %16.0f\n", "analytic minimum", mm.analytic_min);
    printf("  %-34s %16.0f\n", "backward scratch", mm.scratch);
}

/* model.kind = opt: FLOPs per sample by component and by task, per token of each
 * modality, per step; then the memory plan. */
static int print_opt_flops(const config_t *cfg, const flops_report_t *r, int32_t vocab_size)
{
    const opt_shape_t *o = &cfg->model.opt;
    double S = 1 + o->text_len + o->regions + o->frames, comp = 0, heads = 0;
    printf("\nmodel FLOPs per sample of %g positions ([CLS] + %d words + %d regions + %d frames), forward\n"
           "(formula: opt 1, bidirectional attention as full squares, 3 x forward to train)\n",
           S, o->text_len, o->regions, o->frames);
    printf("  by component\n");
    for (int i = 0; i < r->n_fwd; i++)
        if (strncmp(r->fwd[i].name, "head", 4)) {
            printf("    %-32s %16.0f\n", r->fwd[i].name, r->fwd[i].value * S);
            comp += r->fwd[i].value * S;
        }
    printf("  by task (its head at its targets)\n");
    for (int i = 0; i < r->n_fwd; i++)
        if (!strncmp(r->fwd[i].name, "head", 4)) {
            printf("    %-32s %16.0f\n", r->fwd[i].name + 5, r->fwd[i].value * S);
            heads += r->fwd[i].value * S;
        }
    printf("  %-34s %16.0f\n", "forward per sample", comp + heads);
    printf("  %-34s %16.0f\n", "train per sample", 3 * (comp + heads));
    printf("  %-34s %15.3f%%\n", "task heads' share", 100 * heads / (comp + heads));
    printf("  train per token of");
    for (int m = 0; m < r->n_modalities; m++)
        printf(" %s %.0f", cfg->data.names[m], r->train_per_token_of[m]);
    printf(" (a word carries [CLS]'s share)\n");
    double per_step = cfg->global_batch * 3 * (comp + heads);
    printf("\nper step (%d samples)\n", cfg->global_batch);
    printf("  %-34s %16.6g\n", "train FLOPs", per_step);
    printf("  %-34s %16.6g\n", "train FLOPs, whole run", per_step * (double)cfg->steps);
    print_memory(cfg, vocab_size);
    return EXIT_OK;
}

int cmd_flops(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 1) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: motscale flops CONFIG.ini [section.key=value ...]\n\n"
                "Prints parameters (total, per tower, embedding vs. non-embedding, active per token),\n"
                "model FLOPs per token by term, per step, and the memory one rank needs (parameters,\n"
                "gradients, AdamW moments, activations kept for backward: the analytic minimum; and\n"
                "backward scratch; for the layout parallel.tp, parallel.dp and parallel.zero\n"
                "give: under zero = 1 the moments are 1/dp), without MPI and without training. With experts (model.kind =\n"
                "moe, model.moe_towers) also the router's share of the forward FLOPs and the ratio\n"
                "to the same model with dense FFNs. The formula and what it leaves out:\n"
                "docs/model.md.\n");
        return argc < 1 ? EXIT_BADINPUT : EXIT_OK;
    }
    config_t cfg;
    char err[2048];
    if (!config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        return EXIT_BADINPUT;
    }
    vocab_t v;
    if (!data_vocab(&v, &cfg.data, err, sizeof err)) {
        fprintf(stderr, "motscale: %s\n", err);
        return EXIT_BADINPUT;
    }
    flops_report_t r;
    model_flops(&r, &cfg.model, v.size);
    const model_shape_t *s = &cfg.model;
    printf("model: %s, %d tower(s), d_model %d, n_layers %d, n_heads %d, d_ff %d, seq_len %d, vocab %d\n",
           config_enum_name("model", "kind", s->kind), s->n_towers, s->d_model, s->n_layers, s->n_heads,
           s->d_ff, s->seq_len, v.size);
    printf("towers:");
    for (int m = 0; m < s->n_modalities; m++)
        printf(" %s->%d", cfg.data.names[m], s->tower_of[m]);
    printf("\n\nparameters\n");
    for (int i = 0; i < r.n_params; i++)
        printf("  %-34s %16.0f\n", r.params[i].name, r.params[i].value);
    printf("  %-34s %16lld\n", "total", (long long)r.params_total);
    printf("  %-34s %16lld\n", "active per token", (long long)r.params_active_per_token);
    if (s->kind == MODEL_OPT)
        return print_opt_flops(&cfg, &r, v.size);
    printf("\nmodel FLOPs per token (formula %s)\n", FLOPS_FORMULA_VERSION);
    char name[64];
    for (int i = 0; i < r.n_fwd; i++) {
        snprintf(name, sizeof name, "forward %s", r.fwd[i].name);
        printf("  %-34s %16.0f\n", name, r.fwd[i].value);
    }
    printf("  %-34s %16.0f\n", "forward", r.fwd_per_token);
    printf("  %-34s %16.0f\n", "backward", r.bwd_per_token);
    printf("  %-34s %16.0f\n", "train", r.train_per_token);
    if (s->moe_tower_mask) {
        /* the same model with dense FFNs, for the ratio the issue of experts asks */
        model_shape_t ds = *s;
        ds.moe_tower_mask = 0;
        flops_report_t dr;
        model_flops(&dr, &ds, v.size);
        double router = 0;
        for (int i = 0; i < r.n_fwd; i++)
            router += !strncmp(r.fwd[i].name, "router", 6) ? r.fwd[i].value : 0;
        printf("  %-34s %15.3f%%\n", "router share of forward", 100 * router / r.fwd_per_token);
        printf("  %-34s %16.4f\n", "forward / dense forward", r.fwd_per_token / dr.fwd_per_token);
        if (s->moe_tower_mask != (1u << s->n_towers) - 1) {
            printf("  (forward and train: a token of a tower with experts, the costlier; [..] terms\n"
                   "   apply to those towers' tokens only)\n  train per token of");
            for (int m = 0; m < s->n_modalities; m++)
                printf(" %s %.0f", cfg.data.names[m], r.train_per_token_of[m]);
            printf(" (experts in: %s)\n", cfg.moe_towers);
        }
    }
    double tokens = (double)cfg.global_batch * s->seq_len;
    printf("\nper step (%d sequences x %d tokens)\n", cfg.global_batch, s->seq_len);
    printf("  %-34s %16.6g\n", "train FLOPs", tokens * r.train_per_token);
    printf("  %-34s %16.6g\n", "train FLOPs, whole run", tokens * r.train_per_token * (double)cfg.steps);
    int dp = cfg.dp > 0 ? cfg.dp : 1;
    int micro = cfg.micro_batch > 0 ? cfg.micro_batch : cfg.global_batch / dp;
    micro = micro > 0 ? micro : 1;
    if (!model_fits_machine(&cfg.model, v.size, cfg.tp, micro, 1, err, sizeof err)) {
        /* too large to lay out, or for this machine: the plan is not printed */
        fprintf(stderr, "motscale flops: %s\n", err);
        return EXIT_BADINPUT;
    }
    print_memory(&cfg, v.size);
    return EXIT_OK;
}
