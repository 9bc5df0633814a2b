/* Continuous images in the tower transformer (model.image_objective = diffusion,
 * docs/model.md "Continuous images", after Transfusion): a patch enters through the
 * linear patch encoder plus a timestep embedding in place of the embedding lookup,
 * attends bidirectionally inside its image, and leaves through the linear decoder
 * as predicted noise, scored by the mean squared error. Composed from patch.c,
 * attention.c's span mask and loss.c. */
#include <string.h>

#include "layers.h"
#include "tower_int.h"

void tower_image_list(const model_shape_t *s, table_builder_t *b, tower_impl_t *t)
{
    if (s->image_objective != IMAGE_DIFFUSION)
        return;
    /* replicated like the embedding and head; the encoder's gradients are final with
     * the embedding's (the last stage), the decoder's with the head's (stage 0) */
    int L = s->n_layers;
    struct { const char *name; int role; int64_t rows, cols; int stage; } list[] = {
        {"patch_in", ROLE_PATCH_IN, s->patch_dim, s->d_model, L + 1},
        {"time_embed", ROLE_TIME_EMBED, s->d_model, s->d_model, L + 1},
        {"patch_out", ROLE_PATCH_OUT, s->d_model, s->patch_dim, 0},
    };
    for (int i = 0; i < 3; i++) {
        tensor_spec_t sp = {.name = list[i].name, .role = list[i].role, .tower = -1, .layer = -1,
                            .rows = list[i].rows, .cols = list[i].cols, .owner = -1, .expert = -1,
                            .decay = true, .init = INIT_NORMAL, .init_div = 1, .stage = list[i].stage};
        int k = table_add(b, &sp);
        if (t)
            *(i == 0 ? &t->patch_in : i == 1 ? &t->time_embed : &t->patch_out) = k;
    }
}

void tower_image_plan(const model_shape_t *s, int max_seqs, plan_t *p, tower_impl_t *o)
{
    if (s->image_objective != IMAGE_DIFFUSION)
        return;
    size_t T = (size_t)s->seq_len, N = (size_t)max_seqs * T, d = (size_t)s->d_model, P = (size_t)s->patch_dim;
    o->img_row = plan_take_bytes(p, N * sizeof(int64_t), PLAN_KEPT);
    o->img_src = plan_take_bytes(p, N * sizeof(int64_t), PLAN_KEPT);
    o->row_img = plan_take_bytes(p, N, PLAN_KEPT);
    o->ce_skip = plan_take_bytes(p, N, PLAN_SCRATCH);
    o->span = plan_take_bytes(p, T * sizeof(int32_t), PLAN_SCRATCH);
    o->row_ce = plan_take_bytes(p, N * sizeof(double), PLAN_SCRATCH);
    o->img_xt = plan_take(p, N * P, PLAN_KEPT);
    o->img_f = plan_take(p, N * d, PLAN_KEPT);
    o->img_h = plan_take(p, N * d, PLAN_SCRATCH);
    o->img_pred = plan_take(p, N * P, PLAN_SCRATCH);
    o->img_eps = plan_take(p, N * P, PLAN_SCRATCH);
}

static bool is_patch(const model_t *m, int32_t tok)
{
    return vocab_modality(&m->vocab, tok) == m->shape.image_modality;
}

void tower_image_prepare(model_t *m, tower_impl_t *t)
{
    if (!t->diffusion)
        return;
    int64_t T = t->T, P = t->pd;
    const model_images_t *im = &m->images;
    if (!im->xt || !im->eps || !im->t || !im->kind)
        DIE(EXIT_FAULT, "tower_forward: model.image_objective = diffusion needs the batch's images");
    /* rows of patches; rows without cross-entropy: a patch input, or a patch target */
    t->n_img = 0;
    for (int64_t g = 0; g < t->N; g++) {
        int64_t n = t->perm[g], b = n / T, i = n % T;
        t->row_img[g] = is_patch(m, t->tok_in[n]);
        t->ce_skip[g] = t->row_img[g] || is_patch(m, t->tok_tgt[n]);
        if (t->row_img[g]) {
            t->img_row[t->n_img] = g;
            t->img_src[t->n_img++] = b * (T + 1) + i;
        }
    }
    /* the mask: a run of patches is one image, bidirectional inside (consecutive
     * images are always apart: their boundary tokens come between) */
    for (int b = 0; b < t->B; b++) {
        for (int64_t i = 0; i < T; i++)
            t->span[i] = is_patch(m, t->tok_in[b * T + i]) ? 1 : 0;
        attn_mask_set_spans(&t->mask, b, t->span);
    }
    /* the encoder's inputs: x_t and the timestep features of each patch row */
    int32_t *ts = (int32_t *)t->img_pred; /* scratch until the decoder runs */
    for (int64_t r = 0; r < t->n_img; r++) {
        int64_t src = t->img_src[r];
        for (int64_t j = 0; j < P; j++)
            t->img_xt[r * P + j] = (real)im->xt[src * P + j];
        ts[r] = im->t[src];
    }
    timestep_features(t->img_f, ts, t->n_img, t->d);
}

void tower_image_embed(model_t *m, tower_impl_t *t, real *x0)
{
    if (!t->diffusion)
        return;
    /* e = x_t patch_in + F time_embed: (n_img, d), into the patch rows of x0 */
    int64_t n = t->n_img, d = t->d;
    vec_linear_forward(m, t->patch_in, t->img_h, false, t->img_xt, n, t->pd, d);
    vec_linear_forward(m, t->time_embed, t->img_h, true, t->img_f, n, d, d);
    for (int64_t r = 0; r < n; r++)
        memcpy(x0 + t->img_row[r] * d, t->img_h + r * d, (size_t)d * sizeof(real));
}

void tower_image_loss(model_t *m, tower_impl_t *t, double *loss_sum, int64_t *count)
{
    if (!t->diffusion)
        return;
    int64_t n = t->n_img, d = t->d, P = t->pd, T = t->T;
    const model_images_t *im = &m->images;
    /* captions that follow their image: the cross-entropy of rows whose target is one */
    for (int64_t g = 0; g < t->N; g++) {
        int64_t nn = t->perm[g], b = nn / T, i = nn % T;
        if (!t->ce_skip[g] && im->kind[b * (T + 1) + i + 1] == POS_CAPTION_AFTER) {
            m->caption_loss_sum += t->row_ce[g];
            m->caption_count++;
        }
    }
    /* pred = RMSNorm_final(x) patch_out: (n_img, pd);  loss = MSE(pred, eps) */
    for (int64_t r = 0; r < n; r++) {
        memcpy(t->img_h + r * d, t->hf + t->img_row[r] * d, (size_t)d * sizeof(real));
        for (int64_t j = 0; j < P; j++)
            t->img_eps[r * P + j] = (real)im->eps[t->img_src[r] * P + j];
    }
    vec_linear_forward(m, t->patch_out, t->img_pred, false, t->img_h, n, d, P);
    if (im->pred)
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < P; j++)
                im->pred[t->img_src[r] * P + j] = (float)t->img_pred[r * P + j];
    real scale = (real)(t->grad_scale * m->shape.diffusion_weight);
    loss_mse(t->img_pred, t->img_eps, n, P, m->shape.image_modality, t->grad_scale > 0 ? scale : 0, loss_sum,
             count);
    if (t->grad_scale <= 0)
        return;
    /* dpatch_out += h^T dpred;  dh = dpred patch_out^T, added to the patch rows of dhf
     * (their cross-entropy was skipped, so the head gave them zero) */
    real *dh = t->dtmp; /* free at the end of the forward */
    vec_linear_backward(m, t->patch_out, dh, t->img_pred, t->img_h, n, d, P);
    for (int64_t r = 0; r < n; r++) {
        real *row = t->dhf + t->img_row[r] * d;
        for (int64_t j = 0; j < d; j++)
            row[j] += dh[r * d + j];
    }
}

void tower_image_embed_backward(model_t *m, tower_impl_t *t, const real *dx0)
{
    if (!t->diffusion)
        return;
    /* e = x_t patch_in + F time_embed:  dpatch_in += x_t^T de,  dtime_embed += F^T de */
    int64_t n = t->n_img, d = t->d;
    real *de = t->img_h;
    for (int64_t r = 0; r < n; r++)
        memcpy(de + r * d, dx0 + t->img_row[r] * d, (size_t)d * sizeof(real));
    vec_linear_backward(m, t->patch_in, NULL, de, t->img_xt, n, t->pd, d);
    vec_linear_backward(m, t->time_embed, NULL, de, t->img_f, n, d, d);
}
