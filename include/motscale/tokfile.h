/* The HDF5 token file (docs/data.md): /tokens (uint16 or uint32, 1-D), /spans
 * (uint64 [n_spans, 3]: start, length, modality), root attributes naming the
 * modalities, their vocabulary ranges and the held-out split. Writer for
 * `motscale data gen` and `import-text`; checker and statistics for `inspect`
 * and for data_open. */
#ifndef MOTSCALE_TOKFILE_H
#define MOTSCALE_TOKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "motscale/vocab.h"

#define TOKFILE_FORMAT "motscale-tokens"
#define TOKFILE_VERSION 1

/* Read the vocabulary layout from the file's attributes (no token is read). */
bool tokfile_read_vocab(const char *path, vocab_t *v, char *err, size_t errlen);

/* What a full check of a file found. Counts are per modality; id_count (when
 * asked for) has one entry per vocabulary id. */
typedef struct tokfile_stats {
    vocab_t v;
    int64_t n_tokens, heldout_start, n_spans;
    int token_bytes;                     /* 2 or 4 */
    int32_t window;                      /* window length at `data gen`; 0 if unknown */
    int64_t tokens[MAX_MODALITIES];
    int64_t spans[MAX_MODALITIES], span_min[MAX_MODALITIES], span_max[MAX_MODALITIES];
    int64_t *id_count;                   /* v.size entries, or NULL */
    int patch_dim;                       /* /patches columns; 0: no continuous images */
} tokfile_stats_t;

/* Open, read the attributes and check every span and every id (docs/data.md,
 * "Validation"). With want_ids, st->id_count is allocated (free it). */
bool tokfile_check(const char *path, tokfile_stats_t *st, bool want_ids, char *err, size_t errlen);

/* The whole /tokens stream as int32 (malloc'd; *n tokens), for statistics that
 * need token order (`motscale data inspect`). Call after tokfile_check. */
int32_t *tokfile_read_tokens(const char *path, int64_t *n, char *err, size_t errlen);

typedef struct tokfile_writer tokfile_writer_t;

/* Create FILE (truncating) for tokens of vocabulary v. */
tokfile_writer_t *tokfile_create(const char *path, const vocab_t *v, char *err, size_t errlen);
/* Append n tokens; spans are the maximal runs of one modality inside one call,
 * so a span never crosses a window (gen) or a document (import-text). */
bool tokfile_append(tokfile_writer_t *w, const int32_t *tok, int64_t n, char *err, size_t errlen);
/* The held-out split starts at token offset `start` (attribute heldout_start);
 * not called: the last tenth of the stream. */
void tokfile_set_heldout(tokfile_writer_t *w, int64_t start);
/* Continuous images of the n tokens just appended: x0 (n x P floats) and each
 * position's enum pos_kind (common.h); written at close as /patches and /kinds. Call
 * after every tokfile_append, or never. */
bool tokfile_append_images(tokfile_writer_t *w, const float *x0, const uint8_t *kind, int64_t n, int P, char *err,
                           size_t errlen);
/* Record the window length the stream was generated with (attribute `window`). */
void tokfile_set_window(tokfile_writer_t *w, int32_t window);
/* Add a string attribute on the root (provenance: source, config). */
bool tokfile_set_note(tokfile_writer_t *w, const char *name, const char *value, char *err, size_t errlen);
/* Write spans and attributes, close, free w; false (file left incomplete) on error. */
bool tokfile_close(tokfile_writer_t *w, char *err, size_t errlen);

#endif
