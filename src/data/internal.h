/* Private to src/data: the synthetic generator and the token-file reader that
 * data.c dispatches to. */
#ifndef MOTSCALE_DATA_INTERNAL_H
#define MOTSCALE_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "motscale/data.h"

typedef struct synth synth_t;

/* Build the languages and tables once from p->seed. NULL with err on bad keys. */
synth_t *synth_create(const data_params_t *p, const vocab_t *v, char *err, size_t errlen);
/* Window k of a split: seq_len + 1 tokens into out. */
void synth_window(synth_t *s, int split, int64_t k, int32_t *out);
/* Tokens per window: model.seq_len + 1. */
int32_t synth_window_len(const synth_t *s);
void synth_destroy(synth_t *s);

typedef struct aligned aligned_t;

/* The language, lexicon and pair seeds from p->aligned (aligned.c). */
aligned_t *aligned_create(const data_params_t *p, const vocab_t *v, char *err, size_t errlen);
void aligned_window(aligned_t *a, int split, int64_t k, int32_t *out);
int aligned_heldout(const aligned_t *a);
void aligned_pair(aligned_t *a, int i, aligned_pair_t *out);
void aligned_destroy(aligned_t *a);

typedef struct tokreader tokreader_t;

/* Check the whole file, then open one split for windowed reading. */
tokreader_t *tokreader_open(const char *path, const vocab_t *v, int split, int32_t window,
                            char *err, size_t errlen);
/* Windows [first, first + n), wrapping modulo the split's window count. */
void tokreader_read(tokreader_t *r, int64_t first, int n, int32_t *out);
void tokreader_close(tokreader_t *r);

#endif
