/* The FLOP report's bookkeeping (flops.h); each model kind adds its own terms. */
#include <math.h>
#include <string.h>

#include "motscale/flops.h"

static void add(flops_term_t *terms, int *n, const char *name, double v, bool matrix, int scope)
{
    if (*n == FLOPS_MAX_TERMS)
        DIE(EXIT_FAULT, "flops: more than %d terms (adding '%s')", FLOPS_MAX_TERMS, name);
    flops_term_t *t = &terms[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->value = v;
    t->matrix = matrix;
    t->scope = scope;
}

void flops_add_params(flops_report_t *r, const char *name, double count)
{
    add(r->params, &r->n_params, name, count, false, FLOPS_ALL);
}

void flops_add_fwd(flops_report_t *r, const char *name, double per_token, bool matrix)
{
    add(r->fwd, &r->n_fwd, name, per_token, matrix, FLOPS_ALL);
}

void flops_add_fwd_scoped(flops_report_t *r, const char *name, double per_token, bool matrix, int scope)
{
    add(r->fwd, &r->n_fwd, name, per_token, matrix, scope);
}

void flops_finish(flops_report_t *r, int n_modalities, uint32_t expert_modalities)
{
    /* backward costs two forward matmuls per forward matmul (input and weight
     * gradients), so training is 3 x forward */
    r->n_modalities = n_modalities;
    r->fwd_per_token = r->train_matrix_per_token = 0;
    for (int m = 0; m < n_modalities; m++) {
        bool experts = expert_modalities >> m & 1u;
        double fwd = 0, matrix = 0;
        for (int i = 0; i < r->n_fwd; i++) {
            const flops_term_t *t = &r->fwd[i];
            if (t->scope == FLOPS_IMAGE) {
                if (m != r->image_modality)
                    continue;
            } else if (t->scope != FLOPS_ALL && (t->scope == FLOPS_EXPERTS) != experts) {
                continue;
            }
            fwd += t->value;
            matrix += t->matrix ? t->value : 0;
        }
        r->train_per_token_of[m] = 3 * fwd;
        if (fwd > r->fwd_per_token) {
            r->fwd_per_token = fwd;
            r->train_matrix_per_token = 3 * matrix;
        }
    }
    r->bwd_per_token = 2 * r->fwd_per_token;
    r->train_per_token = 3 * r->fwd_per_token;
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

double flops_train_step(const flops_report_t *r, const int64_t *tokens_by_modality, double expert_rows)
{
    double total = 0;
    for (int m = 0; m < r->n_modalities; m++)
        total += (double)tokens_by_modality[m] *
                 (r->train_per_token_of[m] - (expert_rows >= 0 ? r->expert_train_of[m] : 0));
    return total + (expert_rows >= 0 ? expert_rows * r->expert_row_train : 0);
}
