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

enum data_source { DATA_SYNTHETIC, DATA_FILE, DATA_ALIGNED };
/* data.aligned_stream: what an aligned source's windows hold */
enum aligned_stream { ALIGNED_TASKS, ALIGNED_TEXT, ALIGNED_SPEECH };
enum data_split { SPLIT_TRAIN = 0, SPLIT_HELDOUT = 1 };

/* The synthetic generators' keys (docs/data.md). */
typedef struct synth_params {
    int vocab_text, vocab_image, vocab_speech;   /* range sizes, boundary tokens in text */
    int image_h, image_w;                        /* image grid; span = h x w codes */
    int text_span, speech_span;                  /* mean span lengths in tokens */
    int ngram;                                   /* text n-gram order */
    double zipf;                                 /* text Zipf exponent */
    /* continuous images (model.image_objective = diffusion): patch_dim > 0 */
    int patch_dim;                               /* floats per patch; 0: image codes */
    double caption_first;                        /* share of images after their caption */
    int diffusion_steps;                         /* timesteps t in [1, diffusion_steps] */
    int t_cap_image_first;                       /* t at most this before the caption */
} synth_params_t;

/* The aligned speech-and-text world (data.source = aligned, docs/data.md, "Aligned
 * speech and text"): a text language and a lexicon fixed by data.aligned_seed, a
 * pool of (text, speech) pairs, a held-out set, and the stream the windows hold. */
#define ALIGNED_MAX_WORDS 16
#define ALIGNED_MAX_UNITS 3                      /* speech units per word */
#define ALIGNED_MAX_DUR 3                        /* frames per unit */
typedef struct aligned_params {
    int stream;                                  /* enum aligned_stream */
    double speech_noise;                         /* substitution rate per frame */
    double fraction;                             /* of the pool fusion training may use */
    int pool, heldout, max_words;
    uint64_t seed;                               /* the world: language, lexicon, pairs */
} aligned_params_t;

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
    aligned_params_t aligned;
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
/* Continuous images of the same windows, per window position (seq_len + 1 of them):
 * the clean patch x0 and the diffusion noise eps (patch_dim floats each, zero away
 * from patches), the image's timestep t (0 away from patches) and the position's
 * enum pos_kind. Every value is a pure function of (seed, split, window): the noise
 * and t come from a GSL stream of their own per window. */
typedef struct data_images {
    float *x0, *eps;                             /* (n, seq_len + 1, patch_dim) */
    int32_t *t;                                  /* (n, seq_len + 1) */
    uint8_t *kind;                               /* (n, seq_len + 1) */
} data_images_t;

/* data_read plus the windows' images (synthetic source with patch_dim > 0). */
void data_read_images(data_t *d, int64_t first, int n, int32_t *tokens, const data_images_t *im);
/* The largest |x0| element the generator can produce (the sampler's clip): a
 * property of the generator, not of any image. */
double data_image_bound(const data_t *d);
/* Words of an image's caption (0 without continuous images). */
int data_caption_len(const data_t *d);
/* The classifier-free check of a sampled image (docs/analysis.md): caption holds the
 * data_caption_len words before the image's begin token, image its image_h x
 * image_w patches; returns how many of the caption's blobs the nearest class
 * prototype at the blob's centre gets right, *n_blobs how many it has (-1: the
 * words are not a caption). */
int data_blob_check(const data_t *d, const int32_t *caption, const float *image, int *n_blobs);
/* An aligned pair in joint ids: its words, its speech (frames, noisy) and the
 * clean unit sequence of its lexicon entries (the TTS reference, repeats collapsed). */
typedef struct aligned_pair {
    int n_text, n_speech, n_clean;
    int32_t text[ALIGNED_MAX_WORDS];
    int32_t speech[ALIGNED_MAX_WORDS * ALIGNED_MAX_UNITS * ALIGNED_MAX_DUR];
    int32_t clean[ALIGNED_MAX_WORDS * ALIGNED_MAX_UNITS];
} aligned_pair_t;

/* The special tokens of the aligned tasks, all in the speech range but <doc> (so the
 * text stream reads as the text run's: sentences ending in <doc>): the speech
 * range's last three ids start an ASR sample's speech, start a TTS sample's speech,
 * and end any speech; <doc> starts every window and ends every sentence. */
typedef struct aligned_tokens {
    int32_t asr, tts, text_end, speech_eos;
} aligned_tokens_t;
static inline aligned_tokens_t aligned_tokens(const vocab_t *v)
{
    return (aligned_tokens_t){v->hi[1] - 3, v->hi[1] - 2, vocab_doc_token(v), v->hi[1] - 1};
}

/* Held-out aligned pairs of an aligned source (0 for the others), and pair i. */
int data_heldout_pairs(const data_t *d);
void data_heldout_pair(data_t *d, int i, aligned_pair_t *out);

#endif
