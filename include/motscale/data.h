/* Token streams for training and held-out evaluation: the synthetic generators and
 * the HDF5 token-file reader behind one window interface.
 *
 * Contract: a split is an indexed sequence of training windows. Window k holds
 * seq_len + 1 tokens and is a pure function of (parameters, split, k), so any
 * (dp, micro batch) layout that reads the same window indices gets the same tokens,
 * and the data cursor of a checkpoint is just the next window index. */
#ifndef MOTSCALE_DATA_H
#define MOTSCALE_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"
#include "motscale/optdata.h"
#include "motscale/vocab.h"

enum data_source { DATA_SYNTHETIC, DATA_FILE };
enum data_split { SPLIT_TRAIN = 0, SPLIT_HELDOUT = 1 };

/* The synthetic generators' keys (docs/data.md). */
typedef struct synth_params {
    int vocab_text, vocab_image, vocab_speech;   /* range sizes, boundary tokens in text */
    int image_h, image_w;                        /* image grid; span = h x w codes */
    int text_span, speech_span;                  /* mean span lengths in tokens */
    int ngram;                                   /* text n-gram order */
    double zipf;                                 /* text Zipf exponent */
} synth_params_t;

/* What a split is read from, filled by config_resolve. */
typedef struct data_params {
    int source;                                  /* enum data_source */
    char path[CFG_PATH_LEN];                     /* token file for DATA_FILE */
    int n_modalities;
    char names[MAX_MODALITIES][CFG_NAME_LEN];    /* data.modalities, in order */
    double mix_share[MAX_MODALITIES];            /* data.mix, normalised */
    int seq_len;                                 /* a window is seq_len + 1 tokens */
    uint64_t seed;                               /* run.seed */
    synth_params_t synth;
    /* OPT's aligned triples instead of token windows (model.kind = opt): a "window"
     * is one sample, read into a batch of up to opt_batch samples (optdata.h) */
    bool opt_triples;
    opt_data_params_t opt;
    int opt_batch;
} data_params_t;

/* The vocabulary layout: from the synthetic range sizes, or from the token file's
 * attributes (which must name exactly p's modalities, in order). False with a
 * one-line message on error. */
bool data_vocab(vocab_t *v, const data_params_t *p, char *err, size_t errlen);

typedef struct data data_t;

/* Open one split. For `file`, validates every id against its modality's range
 * before returning; a bad file gives a message naming dataset, offset and value.
 * Returns NULL with err filled on bad input. */
data_t *data_open(const data_params_t *p, const vocab_t *v, int split, char *err, size_t errlen);
void data_close(data_t *d);

/* Windows [first, first + n) of the split, each seq_len + 1 tokens, written
 * contiguously into tokens (n * (seq_len + 1) ids). */
void data_read(data_t *d, int64_t first, int n, int32_t *tokens);

/* With OPT triples: the batch the last data_read filled (samples [first, first + n)
 * in slots 0 .. n-1; tokens is not written), and a batch for retrieval pairs of the
 * split; NULL otherwise. */
opt_batch_t *data_opt_batch(data_t *d);
int data_split(const data_t *d);

#endif
