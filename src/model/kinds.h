/* The model-kind table, private to src/model: what a kind provides (its tensor
 * list, activations, forward, backward, FLOPs and memory), and the helper that lays
 * a kind's tensor list out as the model's table. model.c dispatches through it. */
#ifndef MOTSCALE_MODEL_KINDS_H
#define MOTSCALE_MODEL_KINDS_H

#include "layers.h"
#include "motscale/model.h"

typedef struct model_kind_ops {
    const char *name;
    /* the tensor table (model_table_build), the kind's state and activations for
     * m->max_seqs sequences, m->n_stages */
    void (*build)(model_t *m);
    void (*free)(model_t *m);
    void (*forward)(model_t *m, const int32_t *windows, int B, real grad_scale,
                    double *loss_sum, int64_t *count);
    void (*backward)(model_t *m);
    /* model_next_logits over one window of seq_len + 1 tokens (the first n given) */
    void (*next_logits)(model_t *m, const int32_t *window, int64_t n, int mod, real *out);
    void (*flops)(flops_report_t *r, const model_shape_t *s, int32_t vocab_size);
    void (*memory)(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size,
                   int max_seqs);
} model_kind_ops_t;

/* The entry of model.kind (every value has one). */
const model_kind_ops_t *model_kind_of(int kind);

/* Count the kind's tensors with list(m, b, ctx) (b->tensors NULL), allocate the
 * table, then fill it with a second call: m->tensors, n_tensors, n_local. */
void model_table_build(model_t *m, void (*list)(const model_t *m, table_builder_t *b, void *ctx),
                       void *ctx);

/* Lay the frozen tensors out after every trainable one (their gradient and optimizer
 * state do not exist) and set m->n_trainable; after model_table_build. */
void model_table_freeze_last(model_t *m);

extern const model_kind_ops_t tower_kind, vocab_expansion_kind, zipper_kind, opt_kind;

#endif
