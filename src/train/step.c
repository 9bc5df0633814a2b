/* One training step and one evaluation (step.h). */
#include <math.h>
#include <string.h>

#include "motscale/mesh.h"
#include "step.h"

void train_step(model_t *m, adamw_t *opt, dp_sync_t *dps, data_t *train, int32_t *windows,
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
    /* gradients are zero here: allocated so, and zeroed by each AdamW step */
    for (int mi = 0; mi < n_micro; mi++) {
        int64_t first = step * p->global_batch + (int64_t)mesh->dp_rank * per_dp + (int64_t)mi * p->micro_batch;
        double r0 = now_seconds();
        data_read(train, first, p->micro_batch, windows);
        r->io_s += now_seconds() - r0;
        model_forward(m, windows, p->micro_batch, scale, r->loss_sum, r->count);
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
    double red_s = now_seconds() - c0;
    memcpy(r->tokens_in, m->tokens_in, sizeof r->tokens_in);
    r->expert_rows = m->n_load ? 0 : -1;
    for (int i = 0; i < m->n_load; i++)
        r->expert_rows += m->load[i];
    r->aux_loss = m->aux_loss_sum / ((double)p->global_batch * (double)p->seq_len);
    r->grad_norm = grad_global_norm(m, opt);
    for (int k = 0; k < M; k++) {
        r->loss += r->loss_sum[k];
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
                    const mesh_t *mesh, int32_t *windows, double *loss_sum, int64_t *count)
{
    int64_t n_win = (eval_tokens + seq_len - 1) / seq_len;
    int M = m->shape.n_modalities;
    for (int k = 0; k < M; k++) {
        loss_sum[k] = 0;
        count[k] = 0;
    }
    int64_t per = (n_win + mesh->dp - 1) / mesh->dp;
    int64_t first = per * mesh->dp_rank, last = first + per < n_win ? first + per : n_win;
    for (int64_t w = first; w < last; w += micro_batch) {
        int b = (int)(last - w < micro_batch ? last - w : micro_batch);
        data_read(held, w, b, windows);
        model_forward(m, windows, b, 0, loss_sum, count);
    }
    if (mesh->dp > 1) {
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, loss_sum, M, MPI_DOUBLE, MPI_SUM, mesh->dp_comm));
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, count, M, MPI_INT64_T, MPI_SUM, mesh->dp_comm));
    }
}
