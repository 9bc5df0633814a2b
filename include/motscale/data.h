/* Token streams for training and held-out evaluation: the joint vocabulary's
 * modality ranges, the synthetic generators and the HDF5 token-file reader.
 *
 * Contract: a split is an indexed sequence of training windows. Window k holds
 * seq_len + 1 tokens and is a pure function of (config, split, k), so any
 * (dp, micro batch) layout that reads the same window indices gets the same tokens,
 * and the data cursor of a checkpoint is just the next window index. */
#ifndef MOTSCALE_DATA_H
#define MOTSCALE_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/config.h"

enum data_split { SPLIT_TRAIN = 0, SPLIT_HELDOUT = 1 };

/* The joint vocabulary: one contiguous id range [lo, hi) per modality, in the
 * order of data.modalities. Boundary tokens (document start, begin/end of a
 * non-text span) lie in the text range. */
typedef struct vocab {
    int n_modalities;
    char names[MAX_MODALITIES][CFG_NAME_LEN];
    int32_t lo[MAX_MODALITIES], hi[MAX_MODALITIES];
    int32_t size;
} vocab_t;

/* Build the vocabulary layout from the config (synthetic) or from the token
 * file's attributes (file). False with a one-line message on error. */
bool vocab_from_config(vocab_t *v, const config_t *cfg, char *err, size_t errlen);

/* Modality index of a token id (range lookup); -1 if out of the vocabulary. */
static inline int vocab_modality(const vocab_t *v, int32_t tok)
{
    for (int m = 0; m < v->n_modalities; m++)
        if (tok >= v->lo[m] && tok < v->hi[m])
            return m;
    return -1;
}

typedef struct data data_t;

/* Open one split. For `file`, validates every id against its modality's range
 * before returning; a bad file gives a message naming dataset, offset and value.
 * Returns NULL with err filled on bad input. */
data_t *data_open(const config_t *cfg, const vocab_t *v, int split, char *err, size_t errlen);
void data_close(data_t *d);

/* Windows [first, first + n) of the split, each seq_len + 1 tokens, written
 * contiguously into tokens (n * (seq_len + 1) ids). */
void data_read(data_t *d, int64_t first, int n, int32_t *tokens);

#endif
