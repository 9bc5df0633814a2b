/* The run record's columns, listed once (docs/run-record.md documents each): the
 * writer (runlog.h) creates and appends them from this list and the reader
 * (runread.h) loads them from it. Adding a column is one line here, one row in
 * docs/run-record.md, and the trainer setting its value.
 *
 * X(path, field, storage, width, reader):
 *   storage  I64 | F64      on-disk little-endian int64 or float64
 *   width    ONE            (rows,)
 *            MOD            (rows, M): one column per modality
 *            WORLD          (rows, W): one column per world rank (widens on resume)
 *            LOAD           (rows, K): a model's per-step counts (K = 0: no dataset)
 *            TASK           (rows, T): one column per task of an OPT model (T = 0: none)
 *            RETR           (rows, 15): retrieval recall of an OPT model (0: none)
 *   reader   REQ            a record without it is refused by the reader
 *            OPT            older records may lack it: the reader gives NaN (or 0)
 * The field names the value in runlog_row_t / runlog_eval_t and the array in
 * runrec_t. */
#ifndef MOTSCALE_RUNSCHEMA_H
#define MOTSCALE_RUNSCHEMA_H

#include <stddef.h>
#include <stdint.h>

/* The layout version this code writes and reads (/@schema_version). */
#define RUNREC_SCHEMA_VERSION 1

#define RUNREC_METRICS(X)                                                   \
    X("/metrics/step", step, I64, ONE, REQ)                                 \
    X("/metrics/tokens", tokens, I64, ONE, REQ)                             \
    X("/metrics/flops", flops, F64, ONE, REQ)                               \
    X("/metrics/gemm_flops", gemm_flops, F64, ONE, OPT)                     \
    X("/metrics/wall_time", wall_time, F64, ONE, REQ)                       \
    X("/metrics/loss", loss, F64, ONE, REQ)                                 \
    X("/metrics/lr", lr, F64, ONE, OPT)                                     \
    X("/metrics/grad_norm", grad_norm, F64, ONE, OPT)                       \
    X("/metrics/step_time", step_time, F64, ONE, REQ)                       \
    X("/metrics/compute_time", compute_time, F64, ONE, REQ)                 \
    X("/metrics/comm_time", comm_time, F64, ONE, REQ)                       \
    X("/metrics/io_time", io_time, F64, ONE, REQ)                           \
    X("/metrics/loss_by_modality", loss_by_modality, F64, MOD, REQ)         \
    X("/metrics/tokens_by_modality", tokens_by_modality, I64, MOD, OPT)     \
    X("/metrics/load_avg", load_avg, F64, ONE, OPT)                         \
    X("/metrics/cpu_steal", cpu_steal, F64, ONE, OPT)                       \
    X("/metrics/aux_loss", aux_loss, F64, ONE, OPT)                         \
    X("/metrics/expert_load", expert_load, I64, LOAD, OPT)                  \
    X("/metrics/task_loss", task_loss, F64, TASK, OPT)                      \
    X("/ranks/step_time", rank_step_time, F64, WORLD, OPT)                  \
    X("/ranks/comm_time", rank_comm_time, F64, WORLD, OPT)

#define RUNREC_EVAL(X)                                                      \
    X("/eval/step", eval_step, I64, ONE, REQ)                               \
    X("/eval/flops", eval_flops, F64, ONE, REQ)                             \
    X("/eval/wall_time", eval_wall_time, F64, ONE, REQ)                     \
    X("/eval/loss", eval_loss, F64, ONE, REQ)                               \
    X("/eval/loss_by_modality", eval_loss_by_modality, F64, MOD, REQ)       \
    X("/eval/task_loss", eval_task_loss, F64, TASK, OPT)                    \
    X("/eval/task_accuracy", eval_task_accuracy, F64, TASK, OPT)            \
    X("/eval/retrieval", eval_retrieval, F64, RETR, OPT)

/* The groups that hold the columns, created with the file. */
#define RUNREC_GROUPS {"/model", "/metrics", "/eval", "/ranks"}

/* What one value of a row is, for the writer: a scalar, or a pointer to the row's
 * M or W values. */
typedef int64_t runrec_w_I64_ONE;
typedef double runrec_w_F64_ONE;
typedef const int64_t *runrec_w_I64_MOD;
typedef const double *runrec_w_F64_MOD;
typedef const int64_t *runrec_w_I64_WORLD;
typedef const double *runrec_w_F64_WORLD;
typedef const int64_t *runrec_w_I64_LOAD;
typedef const double *runrec_w_F64_TASK;
typedef const double *runrec_w_F64_RETR;
/* What the reader holds per column: rows x width values. */
typedef int64_t runrec_r_I64;
typedef double runrec_r_F64;

#define RUNREC_ROW_FIELD(path, field, st, w, rq) runrec_w_##st##_##w field;
#define RUNREC_READ_FIELD(path, field, st, w, rq) runrec_r_##st *field;

/* One row of /metrics and /ranks, for one logged step. LOAD: /metrics/expert_load,
 * the tokens each expert took by modality over the step, [moe layer][expert][modality]
 * flattened (docs/run-record.md); K = 0 for a model without experts. */
typedef struct runlog_row {
    RUNREC_METRICS(RUNREC_ROW_FIELD)
} runlog_row_t;
/* One row of /eval. */
typedef struct runlog_eval {
    RUNREC_EVAL(RUNREC_ROW_FIELD)
} runlog_eval_t;

enum runrec_width { RUNREC_ONE, RUNREC_MOD, RUNREC_WORLD, RUNREC_LOAD, RUNREC_TASK, RUNREC_RETR, RUNREC_N_WIDTHS };
/* An OPT record's retrieval columns: 5 directions x R@1, R@5, R@10 (docs/run-record.md). */
#define RUNREC_RETRIEVAL_WIDTH 15
enum runrec_group { RUNREC_IN_METRICS, RUNREC_IN_EVAL };

/* The table generated from the lists above (src/io/runschema.c). */
typedef struct runrec_column {
    const char *path;
    int i64;                /* storage I64, else F64 */
    int width;              /* enum runrec_width */
    int required;           /* the reader refuses a record without it */
    int group;              /* enum runrec_group: which row type and row count */
    size_t row_off;         /* offset of the value in runlog_row_t / runlog_eval_t */
    size_t read_off;        /* offset of the array in runrec_t */
} runrec_column_t;

#define RUNREC_COUNT_ONE(path, field, st, w, rq) +1
enum { RUNREC_N_COLUMNS = 0 RUNREC_METRICS(RUNREC_COUNT_ONE) RUNREC_EVAL(RUNREC_COUNT_ONE) };
extern const runrec_column_t runrec_columns[RUNREC_N_COLUMNS];

#endif
