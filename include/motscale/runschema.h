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
 *            GRID           (rows, G): continuous images' held-out loss at G fixed
 *                           timesteps (G = 0, token images: no dataset)
 *            IMG            (rows,): a continuous-image metric (token images: no dataset)
 *            DEC            (rows,) only in a run that decodes (data.source = aligned tasks)
 *            BUCKET         (rows, RUNREC_BUCKETS) by sentence length, the same runs
 *            PAIRS          (rows, P) one per held-out pair, the same runs
 *   reader   REQ            a record without it is refused by the reader
 *            OPT            older records may lack it: the reader gives NaN (or 0)
 * The field names the value in runlog_row_t / runlog_eval_t and the array in
 * runrec_t. */
#ifndef MOTSCALE_RUNSCHEMA_H
#define MOTSCALE_RUNSCHEMA_H

#include <stddef.h>
#include <stdint.h>

/* Sentence-length buckets of the decoding columns (decode.h says which). */
#define RUNREC_BUCKETS 3

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
    X("/ranks/comm_time", rank_comm_time, F64, WORLD, OPT)                  \
    X("/ranks/peak_rss", rank_peak_rss, F64, WORLD, OPT)

#define RUNREC_EVAL(X)                                                      \
    X("/eval/step", eval_step, I64, ONE, REQ)                               \
    X("/eval/flops", eval_flops, F64, ONE, REQ)                             \
    X("/eval/wall_time", eval_wall_time, F64, ONE, REQ)                     \
    X("/eval/loss", eval_loss, F64, ONE, REQ)                               \
    X("/eval/loss_by_modality", eval_loss_by_modality, F64, MOD, REQ)       \
    X("/eval/image_loss_at_t", eval_image_loss_at_t, F64, GRID, OPT)        \
    X("/eval/caption_loss", eval_caption_loss, F64, IMG, OPT)               \
    X("/eval/sample_mse", eval_sample_mse, F64, IMG, OPT)                   \
    X("/eval/sample_noise_mse", eval_sample_noise_mse, F64, IMG, OPT)       \
    X("/eval/sample_class_accuracy", eval_sample_class_accuracy, F64, IMG, OPT) \
    X("/eval/text_only_loss", eval_text_only_loss, F64, DEC, OPT)          \
    X("/eval/asr_wer", eval_asr_wer, F64, DEC, OPT)                         \
    X("/eval/tts_uer", eval_tts_uer, F64, DEC, OPT)                         \
    X("/eval/asr_wer_by_length", eval_asr_by_length, F64, BUCKET, OPT)     \
    X("/eval/tts_uer_by_length", eval_tts_uer_by_length, F64, BUCKET, OPT) \
    X("/eval/asr_errors", eval_asr_errors, I64, PAIRS, OPT)                 \
    X("/eval/tts_errors", eval_tts_errors, I64, PAIRS, OPT)                 \
    X("/eval/asr_ref_len", eval_asr_ref_len, I64, PAIRS, OPT)               \
    X("/eval/tts_ref_len", eval_tts_ref_len, I64, PAIRS, OPT)               \
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
typedef const double *runrec_w_F64_GRID;
typedef double runrec_w_F64_IMG;
typedef double runrec_w_F64_DEC;
typedef const double *runrec_w_F64_BUCKET;
typedef const int64_t *runrec_w_I64_PAIRS;
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

enum runrec_width {
    RUNREC_ONE, RUNREC_MOD, RUNREC_WORLD, RUNREC_LOAD, RUNREC_GRID, RUNREC_IMG, RUNREC_DEC, RUNREC_BUCKET,
    RUNREC_PAIRS, RUNREC_TASK, RUNREC_RETR, RUNREC_N_WIDTHS
};
/* An OPT record's retrieval columns: 5 directions x R@1, R@5, R@10 (docs/run-record.md). */
#define RUNREC_RETRIEVAL_WIDTH 15
/* A scalar column: rank 1 on disk, the value itself in the row struct. */
static inline int runrec_scalar(int width)
{
    return width == RUNREC_ONE || width == RUNREC_IMG || width == RUNREC_DEC;
}
/* Stored as a 1-D dataset: the scalar columns. */
static inline int runrec_rank(int width) { return runrec_scalar(width) ? 1 : 2; }
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
