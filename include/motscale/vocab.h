/* The joint vocabulary: one contiguous id range [lo, hi) per modality, in the order
 * of data.modalities, text first, and its boundary tokens, a fixed convention shared
 * by the synthetic generators, `motscale data gen` and `motscale data import-text`:
 * the text range starts with <doc>, then <begin>/<end> of each non-text modality in
 * data.modalities order; ordinary text tokens follow. */
#ifndef MOTSCALE_VOCAB_H
#define MOTSCALE_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "motscale/common.h"

typedef struct vocab {
    int n_modalities;
    char names[MAX_MODALITIES][CFG_NAME_LEN];
    int32_t lo[MAX_MODALITIES], hi[MAX_MODALITIES];
    int32_t size;
} vocab_t;

/* Modality index of a token id (range lookup); -1 if out of the vocabulary. */
static inline int vocab_modality(const vocab_t *v, int32_t tok)
{
    for (int m = 0; m < v->n_modalities; m++)
        if (tok >= v->lo[m] && tok < v->hi[m])
            return m;
    return -1;
}

/* Number of boundary tokens: 1 + 2 x (modalities - 1). */
static inline int32_t vocab_n_boundary(const vocab_t *v) { return 1 + 2 * (v->n_modalities - 1); }

/* <doc>, the first token of every document. */
static inline int32_t vocab_doc_token(const vocab_t *v) { return v->lo[0]; }

/* <begin> and <end> of a span of non-text modality m (1 <= m < n_modalities). */
static inline int32_t vocab_begin_token(const vocab_t *v, int m) { return v->lo[0] + 2 * m - 1; }
static inline int32_t vocab_end_token(const vocab_t *v, int m) { return v->lo[0] + 2 * m; }

/* Fill v from explicit names and range sizes (text first); false with a message
 * when a size is not positive or the total overflows int32. */
bool vocab_from_sizes(vocab_t *v, int n_modalities, char names[][CFG_NAME_LEN],
                      const int64_t *sizes, char *err, size_t errlen);

#endif
