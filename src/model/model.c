/* The generic model (model.h): the kind table, the tensor table and its flat
 * buffers, layout-independent initialisation, and dispatch of forward, backward,
 * FLOPs and memory to the kind. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinds.h"

/* model.kind -> entry: dense, mot, towers and moe are all the tower transformer
 * (moe: one tower whose FFN slot holds experts); vocab_expansion is a dense tower
 * transformer that starts from a smaller vocabulary's checkpoint; zipper fuses two;
 * opt is the tri-modal encoder. */
const model_kind_ops_t *model_kind_of(int kind)
{
    switch (kind) {
    case MODEL_DENSE:
    case MODEL_MOT:
    case MODEL_TOWERS:
    case MODEL_MOE:
        return &tower_kind;
    case MODEL_VOCAB_EXPANSION:
        return &vocab_expansion_kind;
    case MODEL_ZIPPER:
        return &zipper_kind;
    case MODEL_OPT:
        return &opt_kind;
    }
    DIE(EXIT_FAULT, "model kind %d has no entry in the kind table", kind);
}

void model_table_build(model_t *m, void (*list)(const model_t *m, table_builder_t *b, void *ctx),
                       void *ctx)
{
    table_builder_t b = {.backend = m->shape.tp_backend, .tp_rank = m->tp.rank, .tp_size = m->tp.size};
    list(m, &b, ctx);
    b.cap = b.n;
    b.n = 0;
    b.n_local = 0;
    b.tensors = xcalloc((size_t)b.cap, sizeof *b.tensors);
    list(m, &b, ctx);
    m->tensors = b.tensors;
    m->n_tensors = b.n;
    m->n_local = b.n_local;
    m->n_trainable = b.n_local;
}

void model_table_freeze_last(model_t *m)
{
    size_t at = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < m->n_tensors; i++) {
            tensor_info_t *t = &m->tensors[i];
            if (t->frozen != (pass == 1))
                continue;
            t->offset = at;
            at += t->numel;
        }
    m->n_trainable = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].frozen)
            m->n_trainable += m->tensors[i].numel;
}

void model_build(model_t *m, const model_shape_t *shape, const vocab_t *v, tp_ctx_t tp, int max_seqs)
{
    memset(m, 0, sizeof *m);
    m->ops = model_kind_of(shape->kind);
    m->shape = *shape;
    m->vocab = *v;
    m->tp = tp;
    m->max_seqs = max_seqs;
    for (int k = 0; k < MAX_MODALITIES; k++)
        m->loss_weight[k] = 1;
    if (shape->image_objective == IMAGE_DIFFUSION && shape->image_modality >= 0)
        m->loss_weight[shape->image_modality] = shape->diffusion_weight;
    m->ops->build(m);
    m->params = xcalloc(m->n_local, sizeof(real));
    m->grads = xcalloc(m->n_trainable ? m->n_trainable : 1, sizeof(real));
}

void model_free(model_t *m)
{
    if (m->ops)
        m->ops->free(m);
    free(m->tensors);
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void model_init_params(model_t *m, uint64_t seed, const model_init_t *init)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_info_t *t = &m->tensors[i];
        real *p = m->params + t->offset;
        if (t->init == INIT_ONES || t->init == INIT_ZERO) {
            for (size_t j = 0; j < t->numel; j++)
                p[j] = t->init == INIT_ONES ? 1 : 0;
            continue;
        }
        int tower = init->same_towers && t->tower >= 0 ? 0 : t->tower;
        /* expert e > 0 adds its index; expert 0 draws what the dense FFN draws */
        uint64_t id = ((uint64_t)t->role << 40) ^ ((uint64_t)(tower + 1) << 20) ^ (uint64_t)(t->layer + 1) ^
                      ((uint64_t)(t->expert > 0 ? t->expert : 0) << 50);
        gsl_rng_set(rng, (unsigned long)(splitmix64(seed ^ splitmix64(id)) & 0xffffffffu));
        double std = init->std / t->init_div;
        /* Draw the whole logical tensor in row-major order; keep this rank's slice. */
        for (int64_t r = 0; r < t->rows; r++)
            for (int64_t c = 0; c < t->cols; c++) {
                double x = gsl_ran_gaussian_ziggurat(rng, std);
                int64_t lr = r - t->row0, lc = c - t->col0;
                if (lr >= 0 && lr < t->lrows && lc >= 0 && lc < t->lcols)
                    p[lr * t->lcols + lc] = (real)x;
            }
    }
    gsl_rng_free(rng);
}

void model_zero_grads(model_t *m) { memset(m->grads, 0, m->n_trainable * sizeof(real)); }

void model_forward(model_t *m, const int32_t *windows, int B, real grad_scale, double *loss_sum,
                   int64_t *count)
{
    if (B > m->max_seqs)
        DIE(EXIT_FAULT, "micro-batch of %d sequences exceeds the model's capacity %d", B, m->max_seqs);
    m->ops->forward(m, windows, B, grad_scale, loss_sum, count);
}

void model_backward(model_t *m) { m->ops->backward(m); }

void model_next_logits(model_t *m, const int32_t *tokens, int64_t n, int mod, real *out)
{
    int64_t T = m->shape.seq_len;
    if (n < 1 || n > T)
        DIE(EXIT_FAULT, "model_next_logits: %lld tokens, the model reads 1 to %lld", (long long)n, (long long)T);
    int32_t *w = xmalloc((size_t)(T + 1) * sizeof *w);
    /* the rest of the window repeats the last token: causal, so nothing reads it */
    for (int64_t i = 0; i <= T; i++)
        w[i] = tokens[i < n ? i : n - 1];
    for (int32_t j = 0; j < m->vocab.size; j++)
        out[j] = -INFINITY;
    m->ops->next_logits(m, w, n, mod, out);
    free(w);
}

const tensor_info_t *model_find(const model_t *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name))
            return &m->tensors[i];
    return NULL;
}

void model_flops(flops_report_t *r, const model_shape_t *s, int32_t vocab_size)
{
    model_kind_of(s->kind)->flops(r, s, vocab_size);
}

double model_bytes_per_rank(const model_shape_t *s, int32_t vocab_size, int tp_size, int max_seqs,
                            bool *activations_dominate)
{
    /* an upper bound in double first: every plan and table product is below it */
    double d = s->d_model, f = s->d_ff, V = vocab_size, L = s->n_layers, N = (double)max_seqs * s->seq_len;
    /* experts: E FFNs and a router per layer; their rows up to capacity x N + E per group */
    double E = s->moe_tower_mask ? s->moe_experts : 0, c = s->moe_tower_mask ? s->moe_capacity + E : 0;
    double params = s->n_towers * L * (4 * d * d + 3 * d * f * (E > 1 ? E : 1) + 4 * d + d * E) + 2 * V * d;
    double acts = N * (L * (12 * d + 4 * f + s->n_heads * (double)s->seq_len + c * (2 * d + 4 * f) + 4 * E) +
                       V + 4 * d);
    *activations_dominate = acts > 4 * params;
    if (16 * params + 8 * acts > 0x1p62)
        return INFINITY;
    model_memory_t m;
    model_memory(&m, s, vocab_size, tp_size, max_seqs);
    *activations_dominate = m.activations + m.scratch > m.params + m.grads + m.moments;
    return m.analytic_min + m.scratch;
}

bool model_fits_machine(const model_shape_t *s, int32_t vocab_size, int tp_size, int micro_batch,
                        int ranks_here, char *err, size_t errlen)
{
    bool acts;
    double need = model_bytes_per_rank(s, vocab_size, tp_size, micro_batch, &acts);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return true; /* cannot tell */
    double have = MODEL_MEMORY_SHARE * (double)pages * (double)page;
    if (need * ranks_here <= have)
        return true;
    char what[256];
    if (acts)
        snprintf(what, sizeof what, "train.micro_batch = %d sequences of model.seq_len = %d", micro_batch,
                 s->seq_len);
    else
        snprintf(what, sizeof what, "model.d_model = %d, model.n_layers = %d, model.d_ff = %d and a vocabulary of %d",
                 s->d_model, s->n_layers, s->d_ff, vocab_size);
    return errorf(err, errlen, "%s: %d rank(s) here would need %.3g GB, more than %.0f%% of this machine's %.3g GB",
                  what, ranks_here, need * ranks_here / 1e9, 100 * MODEL_MEMORY_SHARE,
                  (double)pages * (double)page / 1e9);
}

void model_memory(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size,
                  int max_seqs)
{
    memset(r, 0, sizeof *r);
    model_kind_of(s->kind)->memory(r, s, vocab_size, tp_size, max_seqs);
}
