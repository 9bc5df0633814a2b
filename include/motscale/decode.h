/* Greedy decoding of the held-out aligned pairs and their error rates (docs/model.md,
 * "Zipper"; docs/run-record.md, /eval): ASR word error rate and TTS unit error rate
 * (repeats collapsed), by edit distance against the reference, overall and by the
 * sentence's length. */
#ifndef MOTSCALE_DECODE_H
#define MOTSCALE_DECODE_H

#include <stdint.h>

#include "motscale/data.h"
#include "motscale/model.h"
#include "motscale/runschema.h"

/* Length buckets by the sentence's words: 1-2, 3-5, 6 or more. */
#define DECODE_BUCKETS RUNREC_BUCKETS
int decode_bucket(int words);

/* Levenshtein distance (insertions, deletions, substitutions, each 1). */
int64_t edit_distance(const int32_t *a, int64_t na, const int32_t *b, int64_t nb);
/* Collapse runs of one value to one, in place; returns the new length. */
int64_t collapse_repeats(int32_t *x, int64_t n);

/* An error rate over n sentences: sum of edits / sum of reference lengths, and the
 * same per length bucket (by each sentence's words; NaN for an empty bucket). */
double decode_rates(int n, const int64_t *edits, const int64_t *ref, const int *words, double *by_bucket);

typedef struct decode_result {
    int n;                              /* held-out pairs */
    double asr_wer, tts_uer;            /* sum of edits / sum of reference lengths */
    double asr_by[DECODE_BUCKETS], tts_by[DECODE_BUCKETS]; /* the same per bucket (NaN: empty) */
    int64_t *asr_edits, *tts_edits;     /* (n) per pair, for the paired test; caller's */
    int64_t *asr_ref, *tts_ref;         /* (n) reference lengths; caller's */
} decode_result_t;

/* Decode every held-out pair of held (every rank the same; no communication
 * beyond the model's own): ASR from <doc> <asr> speech <eos_s> until <doc>, TTS
 * from <doc> words <doc> <tts> until <eos_s>, each within seq_len. */
void decode_evaluate(model_t *m, data_t *held, int seq_len, decode_result_t *r);

#endif
