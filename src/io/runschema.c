/* The column table of the run record, generated from the lists in runschema.h so the
 * writer and the reader cannot disagree. */
#include <stddef.h>

#include "motscale/runread.h"
#include "motscale/runschema.h"

#define STORAGE_I64 1
#define STORAGE_F64 0
#define REQUIRED_REQ 1
#define REQUIRED_OPT 0
#define METRICS_COLUMN(path, field, st, w, rq)                                                     \
    {path, STORAGE_##st, RUNREC_##w, REQUIRED_##rq, RUNREC_IN_METRICS,                            \
     offsetof(runlog_row_t, field), offsetof(runrec_t, field)},
#define EVAL_COLUMN(path, field, st, w, rq)                                                        \
    {path, STORAGE_##st, RUNREC_##w, REQUIRED_##rq, RUNREC_IN_EVAL,                               \
     offsetof(runlog_eval_t, field), offsetof(runrec_t, field)},

const runrec_column_t runrec_columns[RUNREC_N_COLUMNS] = {
    RUNREC_METRICS(METRICS_COLUMN) RUNREC_EVAL(EVAL_COLUMN)};
