/* model.kind = vocab_expansion: the single-decoder baseline of Zipper (docs/model.md,
 * "Vocabulary expansion"). A dense tower transformer over the joint vocabulary that
 * starts from the text run's checkpoint (zipper.text_checkpoint): every tensor of the
 * same name, the embedding and head on the text range's rows; the rows of the
 * appended speech range keep the seeded draw, normal(0, init_std), as the dense
 * model starts them. Forward, backward, FLOPs and memory are the tower transformer's. */
#include <stdio.h>

#include "kinds.h"
#include "motscale/tower.h"

static void vocab_expansion_build(model_t *m)
{
    tower_kind.build(m);
    for (int i = 0; i < m->n_tensors; i++) {
        tensor_info_t *t = &m->tensors[i];
        t->src = ZT_TEXT;
        snprintf(t->src_name, sizeof t->src_name, "%s", t->name);
        t->src_row0 = 0;
        t->src_rows = t->role == ROLE_EMBED || t->role == ROLE_HEAD ? m->vocab.hi[0] - m->vocab.lo[0] : t->rows;
    }
}

/* the rest is the tower transformer's (an initialiser cannot name its members) */
static void ve_free(model_t *m) { tower_kind.free(m); }
static void ve_forward(model_t *m, const int32_t *windows, int B, real grad_scale, double *loss_sum,
                       int64_t *count)
{
    tower_kind.forward(m, windows, B, grad_scale, loss_sum, count);
}
static void ve_backward(model_t *m) { tower_kind.backward(m); }
static void ve_next_logits(model_t *m, const int32_t *window, int64_t n, int mod, real *out)
{
    tower_kind.next_logits(m, window, n, mod, out);
}
static void ve_flops(flops_report_t *r, const model_shape_t *s, int32_t vocab_size)
{
    tower_kind.flops(r, s, vocab_size);
}
static void ve_memory(model_memory_t *r, const model_shape_t *s, int32_t vocab_size, int tp_size, int max_seqs)
{
    tower_kind.memory(r, s, vocab_size, tp_size, max_seqs);
}

const model_kind_ops_t vocab_expansion_kind = {
    .name = "vocab_expansion",
    .build = vocab_expansion_build,
    .free = ve_free,
    .forward = ve_forward,
    .backward = ve_backward,
    .next_logits = ve_next_logits,
    .flops = ve_flops,
    .memory = ve_memory,
};
