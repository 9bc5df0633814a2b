/* One training step and one evaluation (step.h). */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/mesh.h"
#include "optbatch.h"
#include "step.h"

void opt_sums_reset(model_t *m)
{
    memset(m->opt_loss, 0, sizeof m->opt_loss);
    memset(m->opt_count, 0, sizeof m->opt_count);
    memset(m->opt_correct, 0, sizeof m->opt_correct);
}

void opt_sums_reduce(model_t *m, const mesh_t *mesh)
{
    if (mesh->dp == 1)
        return;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, m->opt_loss, OPT_TASKS, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, m->opt_count, OPT_TASKS, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, m->opt_correct, OPT_TASKS, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
}

/* opt.task_mode = sample: the task of this step, with probability weight / sum,
 * from a GSL stream of (seed, step), the same on every rank. */
static int draw_task(const double *w, uint64_t seed, int64_t step)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)step * 0xBF58476D1CE4E5B9ull + 0x7A5Cull;
    gsl_rng_set(r, (unsigned long)(1 + (x ^ (x >> 31)) % 0xFFFFFFFFull));
    double sum = 0, u;
    for (int k = 0; k < OPT_TASKS; k++)
        sum += w[k];
    u = gsl_rng_uniform(r) * sum;
    gsl_rng_free(r);
    int last = 0;
    double c = 0;
    for (int k = 0; k < OPT_TASKS; k++) {
        if (w[k] <= 0)
            continue;
        c += w[k];
        last = k;
        if (u < c)
            return k;
    }
    return last; /* u rounded up to the sum */
}

/* The data's batch of the last read, for the model (model.kind = opt). */
static void bind_batch(model_t *m, data_t *d)
{
    opt_batch_t *ob = data_opt_batch(d);
    if (ob)
        opt_bind(m, ob, NULL);
}

void batch_init(batch_t *b, int micro_batch, int seq_len, int P, const diffusion_schedule_t *sched)
{
    memset(b, 0, sizeof *b);
    b->window = seq_len + 1;
    b->P = P;
    b->sched = sched;
    size_t n = (size_t)micro_batch * (size_t)b->window;
    b->windows = xmalloc(n * sizeof *b->windows);
    if (!P)
        return;
    b->im.x0 = xmalloc(n * (size_t)P * sizeof(float));
    b->im.eps = xmalloc(n * (size_t)P * sizeof(float));
    b->im.t = xmalloc(n * sizeof(int32_t));
    b->im.kind = xmalloc(n);
    b->xt = xmalloc(n * (size_t)P * sizeof(float));
    b->pred = xmalloc(n * (size_t)P * sizeof(float));
}

void batch_free(batch_t *b)
{
    free(b->windows);
    free(b->im.x0);
    free(b->im.eps);
    free(b->im.t);
    free(b->im.kind);
    free(b->xt);
    free(b->pred);
    memset(b, 0, sizeof *b);
}

void batch_renoise(batch_t *b, int n, model_t *m)
{
    diffusion_noise(b->sched, b->xt, b->im.x0, b->im.eps, b->im.t, (int64_t)n * b->window, b->P);
    m->images = (model_images_t){.xt = b->xt, .eps = b->im.eps, .t = b->im.t, .kind = b->im.kind};
}

void batch_read(batch_t *b, data_t *d, int64_t first, int n, model_t *m)
{
    if (!b->P) {
        data_read(d, first, n, b->windows);
        bind_batch(m, d);
        return;
    }
    data_read_images(d, first, n, b->windows, &b->im);
    batch_renoise(b, n, m);
}

void train_step(model_t *m, adamw_t *opt, dp_sync_t *dps, data_t *train, batch_t *batch,
                const step_params_t *p, const mesh_t *mesh, int64_t step, step_result_t *r)
{
    int M = m->shape.n_modalities;
    memset(r, 0, sizeof *r);
    int n_micro = p->global_batch / (mesh->dp * p->micro_batch);
    int per_dp = p->global_batch / mesh->dp;
    real scale = (real)(1.0 / ((double)p->global_batch * (double)p->seq_len));
    double tp0 = m->tp.comm_s, dp0 = dps->comm_s;
    m->aux_loss_sum = 0;
    memset(m->tokens_in, 0, sizeof m->tokens_in);
    if (m->n_load)
        memset(m->load, 0, (size_t)m->n_load * sizeof *m->load);
    bool is_opt = m->shape.kind == MODEL_OPT;
    double base_w[OPT_TASKS];
    memcpy(base_w, m->shape.opt.weight, sizeof base_w);
    r->opt_task = -1;
    if (is_opt && p->opt_sample) {
        r->opt_task = draw_task(base_w, p->seed, step);
        for (int k = 0; k < OPT_TASKS; k++)
            m->shape.opt.weight[k] = k == r->opt_task ? 1 : 0;
    }
    opt_sums_reset(m);
    /* gradients are zero here: allocated so, and zeroed by each AdamW step */
    for (int mi = 0; mi < n_micro; mi++) {
        int64_t first = step * p->global_batch + (int64_t)mesh->dp_rank * per_dp + (int64_t)mi * p->micro_batch;
        double r0 = now_seconds();
        batch_read(batch, train, first, p->micro_batch, m);
        r->io_s += now_seconds() - r0;
        model_forward(m, batch->windows, p->micro_batch, scale, r->loss_sum, r->count);
        if (mi == n_micro - 1)
            dp_sync_arm(dps);
        model_backward(m);
    }
    dp_sync_finish(dps);
    double c0 = now_seconds();
    if (mesh->dp > 1) {
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, r->loss_sum, M, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, r->count, M, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, m->tokens_in, M, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
        if (m->n_load) {
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, m->load, m->n_load, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &m->aux_loss_sum, 1, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
        }
    }
    if (is_opt) {
        opt_sums_reduce(m, mesh);
        memcpy(r->opt_loss, m->opt_loss, sizeof r->opt_loss);
        memcpy(r->opt_count, m->opt_count, sizeof r->opt_count);
        memcpy(r->opt_correct, m->opt_correct, sizeof r->opt_correct);
        memcpy(m->shape.opt.weight, base_w, sizeof base_w);
    }
    double red_s = now_seconds() - c0;
    memcpy(r->tokens_in, m->tokens_in, sizeof r->tokens_in);
    r->expert_rows = m->n_load ? 0 : -1;
    for (int i = 0; i < m->n_load; i++)
        r->expert_rows += m->load[i];
    r->aux_loss = m->aux_loss_sum / ((double)p->global_batch * (double)p->seq_len);
    r->grad_norm = grad_global_norm(m, opt);
    /* the objective: weights 1 (and diffusion_weight on the image MSE) */
    for (int k = 0; k < M; k++) {
        r->loss += m->loss_weight[k] * r->loss_sum[k];
        r->tokens += r->count[k];
    }
    r->loss /= (double)r->tokens;
    r->comm_s = (m->tp.comm_s - tp0) + (dps->comm_s - dp0) + red_s;
    r->finite = isfinite(r->loss) && isfinite(r->grad_norm);
    if (!r->finite)
        return;
    double clip = p->grad_clip > 0 && r->grad_norm > p->grad_clip ? p->grad_clip / r->grad_norm : 1.0;
    r->lr = lr_at(&p->sched, step);
    adamw_step(opt, m, step + 1, r->lr, clip, &p->adamw);
    /* ZeRO-1: every rank updated its shards; gather the whole parameter buffer */
    double g0 = dps->comm_s;
    dp_sync_gather(dps, m->params);
    r->comm_s += dps->comm_s - g0;
}

void train_evaluate(model_t *m, data_t *held, int64_t eval_tokens, int seq_len, int micro_batch,
                    const mesh_t *mesh, batch_t *batch, int32_t t_grid, double *loss_sum, int64_t *count)
{
    m->caption_loss_sum = 0;
    m->caption_count = 0;
    int64_t n_win = (eval_tokens + seq_len - 1) / seq_len;
    int M = m->shape.n_modalities;
    for (int k = 0; k < M; k++) {
        loss_sum[k] = 0;
        count[k] = 0;
    }
    opt_sums_reset(m);
    int64_t per = (n_win + mesh->dp - 1) / mesh->dp;
    int64_t first = per * mesh->dp_rank, last = first + per < n_win ? first + per : n_win;
    for (int64_t w = first; w < last; w += micro_batch) {
        int b = (int)(last - w < micro_batch ? last - w : micro_batch);
        batch_read(batch, held, w, b, m);
        if (batch->P && t_grid > 0) {
            for (int64_t i = 0; i < (int64_t)b * batch->window; i++)
                batch->im.t[i] = batch->im.t[i] > 0 ? t_grid : 0;
            batch_renoise(batch, b, m);
        }
        model_forward(m, batch->windows, b, 0, loss_sum, count);
    }
    if (m->shape.kind == MODEL_OPT)
        opt_sums_reduce(m, mesh);
    if (mesh->dp > 1) {
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, loss_sum, M, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, count, M, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
        if (batch->P) {
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &m->caption_loss_sum, 1, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &m->caption_count, 1, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
        }
    }
}

static bool is_patch_kind(uint8_t k) { return k == POS_PATCH_IMAGE_FIRST || k == POS_PATCH_CAPTION_FIRST; }

/* Score the sampled images of one window (positions [0, W) of x, the sample). */
static void score_window(const batch_t *b, data_t *held, int64_t base, int image_len, sample_score_t *sc)
{
    int64_t W = b->window, P = b->P;
    const uint8_t *kind = b->im.kind + base;
    int cap = data_caption_len(held);
    for (int64_t a = 0; a < W; a++) {
        if (!is_patch_kind(kind[a]) || (a > 0 && is_patch_kind(kind[a - 1])))
            continue;
        int64_t e = a;
        while (e < W && is_patch_kind(kind[e]))
            e++;
        /* whole, caption first, the caption whole in the window */
        if (kind[a] != POS_PATCH_CAPTION_FIRST || e - a != image_len || e == W || a - 1 - cap < 0)
            continue;
        int nb = 0;
        int right = data_blob_check(held, b->windows + base + a - 1 - cap, b->xt + (base + a) * P, &nb);
        if (right < 0)
            continue;
        sc->images++;
        sc->blobs += nb;
        sc->blobs_right += right;
        for (int64_t j = (base + a) * P; j < (base + e) * P; j++) {
            double ds = (double)b->xt[j] - b->im.x0[j], dn = (double)b->im.eps[j] - b->im.x0[j];
            sc->sample_se += ds * ds;
            sc->noise_se += dn * dn;
            sc->elements++;
        }
    }
}

void train_sample_check(model_t *m, data_t *held, int64_t eval_tokens, int seq_len, int micro_batch,
                        const mesh_t *mesh, batch_t *batch, int steps, int image_len, sample_score_t *sc)
{
    memset(sc, 0, sizeof *sc);
    int64_t n_win = (eval_tokens + seq_len - 1) / seq_len;
    int64_t per = (n_win + mesh->dp - 1) / mesh->dp;
    int64_t first = per * mesh->dp_rank, last = first + per < n_win ? first + per : n_win;
    int Td = batch->sched->T, P = batch->P;
    double clip = data_image_bound(held);
    double ls[MAX_MODALITIES];
    int64_t cnt[MAX_MODALITIES];
    for (int64_t w = first; w < last; w += micro_batch) {
        int nb = (int)(last - w < micro_batch ? last - w : micro_batch);
        batch_read(batch, held, w, nb, m);
        int64_t n = (int64_t)nb * batch->window;
        /* x = eps at every patch; then DDIM over t_s = 1 + (S - 1 - s) T / S, s = 0 .. S - 1
         * (DDIM's evenly spaced steps, which leave out t = T where abar_T ~ 1e-9) */
        memcpy(batch->xt, batch->im.eps, (size_t)(n * P) * sizeof(float));
        m->images.pred = batch->pred;
        for (int s = 0; s < steps; s++) {
            int32_t ts = 1 + (int32_t)((int64_t)(steps - 1 - s) * Td / steps);
            int32_t tp = s + 1 < steps ? 1 + (int32_t)((int64_t)(steps - 2 - s) * Td / steps) : 0;
            for (int64_t i = 0; i < n; i++)
                batch->im.t[i] = batch->im.t[i] > 0 ? ts : 0;
            memset(ls, 0, sizeof ls);
            memset(cnt, 0, sizeof cnt);
            model_forward(m, batch->windows, nb, 0, ls, cnt);
            for (int64_t i = 0; i < n; i++)
                if (batch->im.t[i] > 0)
                    diffusion_ddim_step(batch->sched, batch->xt + i * P, batch->pred + i * P, ts, tp, P, clip);
        }
        m->images.pred = NULL;
        for (int b = 0; b < nb; b++)
            score_window(batch, held, (int64_t)b * batch->window, image_len, sc);
    }
    if (mesh->dp > 1)
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sc, 6, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
}
