/* The report's OPT tables with known answers (analysis/opt_report.c): a MoT run whose
 * task losses are the shared run's curves stretched by known factors in steps gives
 * those factors as its per-task equal-loss fractions, a task it never catches up on
 * reads "not reached", and the retrieval table gives the mean and sample standard
 * deviation over seeds of the last evaluation. Runs are built in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "motscale/analysis.h"

enum { ROWS = 200, EVERY = 10, TASKS = 8 };
/* the candidate's stretch per task (0: it never reaches the baseline's losses) */
static const double STRETCH[TASKS] = {0.5, 0.8, 1.0, 0.3, 1.25, 0, 0.6, 0.9};

static double curve(int k, double t) { return 1.0 + k * 0.3 + 5.0 * pow(t + 20.0, -0.5); }

static void make_run(analysis_run_t *a, const char *cross, const char *seed, bool cand, const double *retr_r1)
{
    memset(a, 0, sizeof *a);
    runrec_t *r = &a->r;
    snprintf(r->kind, sizeof r->kind, "opt");
    snprintf(r->experiment, sizeof r->experiment, "opt-test");
    snprintf(a->size, sizeof a->size, "d32x2");
    snprintf(a->seed, sizeof a->seed, "%s", seed);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "[run]\nseed = %s\n[opt]\ncross_towers = %s\nw_match = 1\nw_mrfr = 1\nw_mrc = 1\n"
             "w_trec = 1\nw_irec = 1\ndecoder_layers = 1\n[log]\nretrieval_pool = 50\n", seed, cross);
    r->config = strdup(cfg);
    r->n = ROWS;
    r->n_task = TASKS;
    r->step = calloc(ROWS, sizeof *r->step);
    r->flops = calloc(ROWS, sizeof *r->flops);
    r->wall_time = calloc(ROWS, sizeof *r->wall_time);
    r->task_loss = calloc(ROWS * TASKS, sizeof *r->task_loss);
    for (int i = 0; i < ROWS; i++) {
        double t = (double)(i + 1) * EVERY;
        r->step[i] = (int64_t)t;
        r->flops[i] = t * 1e6;
        r->wall_time[i] = t;
        for (int k = 0; k < TASKS; k++)
            r->task_loss[i * TASKS + k] = !cand ? curve(k, t) : STRETCH[k] > 0 ? curve(k, t / STRETCH[k])
                                                                               : curve(k, t) + 1.0;
    }
    r->n_eval = 2;
    r->n_retr = 15;
    r->eval_retrieval = calloc(2 * 15, sizeof(double));
    r->eval_task_accuracy = calloc(2 * TASKS, sizeof(double));
    r->n_task = TASKS;
    for (int d = 0; d < 5; d++)
        for (int j = 0; j < 3; j++)
            r->eval_retrieval[15 + 3 * d + j] = retr_r1[d] + 0.1 * j; /* the last row counts */
    for (int k = 0; k < TASKS; k++)
        r->eval_task_accuracy[TASKS + k] = 0.5;
}

static void free_run(analysis_run_t *a)
{
    runrec_t *r = &a->r;
    free(r->config), free(r->step), free(r->flops), free(r->wall_time), free(r->task_loss);
    free(r->eval_retrieval), free(r->eval_task_accuracy);
}

static void test_tables(void **state)
{
    (void)state;
    analysis_run_t runs[3];
    const double r1a[5] = {0.1, 0.2, 0.3, 0.4, 0.5}, r1b[5] = {0.3, 0.2, 0.1, 0.0, 0.5};
    make_run(&runs[0], "shared", "1", false, r1a);
    make_run(&runs[1], "mot", "1", true, r1a);
    make_run(&runs[2], "shared", "2", false, r1b);
    /* groups: the two shared seeds together, mot alone */
    size_t g0[2] = {0, 2}, g1[1] = {1};
    analysis_group_t groups[2] = {{2, g0}, {1, g1}};
    analysis_runset_t set = {.runs = runs, .n_runs = 3, .groups = groups, .n_groups = 2};
    char *text = NULL;
    size_t len = 0;
    FILE *md = open_memstream(&text, &len);
    analysis_opt_sections(md, &set, "opt-test");
    fclose(md);
    print_message("%s", text);
    /* the per-task row of the pair (shared seed 1, mot seed 1) */
    char *row = strstr(text, "| d32x2 | 1 |");
    assert_non_null(row);
    row += strlen("| d32x2 | 1 |");
    for (int k = 0; k < TASKS; k++) {
        while (*row == ' ')
            row++;
        if (STRETCH[k] > 0) {
            double s = strtod(row, NULL);
            assert_close(s, STRETCH[k], TOL_SLOPE_REL, 0);
        } else {
            assert_true(!strncmp(row, "not reached", 11));
        }
        row = strchr(row, '|') + 1;
    }
    /* shared's retrieval: R@1 text->image over seeds 0.1 and 0.3: mean 0.2, sd 0.1414 */
    assert_non_null(strstr(text, "| shared | d32x2 | 2 | 0.200 +- 0.141 | 0.200 +- 0.000 |"));
    assert_non_null(strstr(text, "| mot | d32x2 | 1 | 0.100 | 0.200 |"));
    free(text);
    for (int i = 0; i < 3; i++)
        free_run(&runs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
