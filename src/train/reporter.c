/* The progress reporter (reporter.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reporter.h"

static void format_duration(char *out, size_t len, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(out, len, "?");
    else if (s < 60)
        snprintf(out, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void reporter_init(reporter_t *r, int n_mod, const char (*names)[CFG_NAME_LEN], int64_t steps,
                   bool quiet, double peak, int world)
{
    memset(r, 0, sizeof *r);
    r->n_mod = n_mod;
    r->names = names;
    r->steps = steps;
    r->quiet = quiet;
    r->peak = peak;
    r->world = world;
    reporter_reset(r);
}

void reporter_reset(reporter_t *r)
{
    r->t0 = now_seconds();
    r->tokens = r->flops = 0;
    r->n_steps = 0;
    for (int k = 0; k <= r->n_mod; k++) {
        r->loss[k] = 0;
        r->cnt[k] = 0;
    }
}

void reporter_add(reporter_t *r, const step_result_t *s, double step_flops)
{
    r->n_steps++;
    r->tokens += (double)s->tokens;
    r->flops += step_flops;
    for (int k = 0; k < r->n_mod; k++) {
        r->loss[k] += s->loss_sum[k];
        r->cnt[k] += s->count[k];
    }
    r->loss[r->n_mod] += s->loss;
    r->cnt[r->n_mod]++;
}

void reporter_step_line(const reporter_t *r, int64_t step, const double *all)
{
    if (r->quiet)
        return;
    int M = r->n_mod;
    double dt = now_seconds() - r->t0;
    double tps = r->tokens / dt;
    double mfu = r->peak > 0 ? r->flops / dt / (r->peak * r->world) : NAN;
    char eta[32], line[1024];
    format_duration(eta, sizeof eta, dt / (double)r->n_steps * (double)(r->steps - step));
    int n = snprintf(line, sizeof line, "step %*lld/%lld | loss %.4f |",
                     (int)snprintf(NULL, 0, "%lld", (long long)r->steps), (long long)step,
                     (long long)r->steps, r->loss[M] / (double)r->cnt[M]);
    for (int k = 0; k < M && n < (int)sizeof line; k++)
        n += snprintf(line + n, sizeof line - (size_t)n, " %s %.4f", r->names[k],
                      r->cnt[k] ? r->loss[k] / (double)r->cnt[k] : NAN);
    /* this step over ranks: step time min-max, communication mean and max */
    double smin = all[0], smax = all[0], cmax = all[1], csum = 0;
    for (int k = 0; k < r->world; k++) {
        smin = all[2 * k] < smin ? all[2 * k] : smin;
        smax = all[2 * k] > smax ? all[2 * k] : smax;
        cmax = all[2 * k + 1] > cmax ? all[2 * k + 1] : cmax;
        csum += all[2 * k + 1];
    }
    if (n < (int)sizeof line && r->world > 1)
        n += snprintf(line + n, sizeof line - (size_t)n, " | comm %.1f/%.1f ms (mean/max)",
                      1e3 * csum / r->world, 1e3 * cmax);
    if (n < (int)sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " | %.0f tok/s | MFU %.1f%% | step %.0f-%.0f ms | ETA %s\n",
                 tps, 100 * mfu, 1e3 * smin, 1e3 * smax, eta);
    infof("%s", line);
}

void reporter_eval_line(const reporter_t *r, int64_t step, double loss, const double *by_mod)
{
    if (r->quiet)
        return;
    char line[512];
    int w = snprintf(line, sizeof line, "eval %lld | held-out loss %.4f |", (long long)step, loss);
    for (int k = 0; k < r->n_mod && w < (int)sizeof line; k++)
        w += snprintf(line + w, sizeof line - (size_t)w, " %s %.4f", r->names[k], by_mod[k]);
    infof("%s\n", line);
}
