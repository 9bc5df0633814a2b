/* The FLOP report's bookkeeping (flops.h); each model kind adds its own terms. */
#include <math.h>
#include <string.h>

#include "motscale/flops.h"

static void add(flops_term_t *terms, int *n, const char *name, double v, bool matrix)
{
    if (*n == FLOPS_MAX_TERMS)
        DIE(EXIT_FAULT, "flops: more than %d terms (adding '%s')", FLOPS_MAX_TERMS, name);
    flops_term_t *t = &terms[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->value = v;
    t->matrix = matrix;
}

void flops_add_params(flops_report_t *r, const char *name, double count)
{
    add(r->params, &r->n_params, name, count, false);
}

void flops_add_fwd(flops_report_t *r, const char *name, double per_token, bool matrix)
{
    add(r->fwd, &r->n_fwd, name, per_token, matrix);
}

void flops_finish(flops_report_t *r, int n_modalities)
{
    double fwd = 0, matrix = 0;
    for (int i = 0; i < r->n_fwd; i++) {
        fwd += r->fwd[i].value;
        if (r->fwd[i].matrix)
            matrix += r->fwd[i].value;
    }
    /* backward costs two forward matmuls per forward matmul (input and weight
     * gradients), so training is 3 x forward */
    r->fwd_per_token = fwd;
    r->bwd_per_token = 2 * fwd;
    r->train_per_token = 3 * fwd;
    r->train_matrix_per_token = 3 * matrix;
    r->n_modalities = n_modalities;
    for (int m = 0; m < n_modalities; m++)
        r->train_per_token_of[m] = r->train_per_token;
}

double flops_term(const flops_report_t *r, const char *name)
{
    for (int i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i].name, name))
            return r->params[i].value;
    for (int i = 0; i < r->n_fwd; i++)
        if (!strcmp(r->fwd[i].name, name))
            return r->fwd[i].value;
    return NAN;
}

double flops_train_step(const flops_report_t *r, const int64_t *tokens_by_modality)
{
    double total = 0;
    for (int m = 0; m < r->n_modalities; m++)
        total += (double)tokens_by_modality[m] * r->train_per_token_of[m];
    return total;
}
