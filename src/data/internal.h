/* Private to src/data: the synthetic generator and the token-file reader that
 * data.c dispatches to. */
#ifndef MOTSCALE_DATA_INTERNAL_H
#define MOTSCALE_DATA_INTERNAL_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

#include "motscale/data.h"

typedef struct synth synth_t;

/* Build the languages and tables once from p->seed. NULL with err on bad keys. */
synth_t *synth_create(const data_params_t *p, const vocab_t *v, char *err, size_t errlen);
/* Window k of a split: seq_len + 1 tokens into out. */
void synth_window(synth_t *s, int split, int64_t k, int32_t *out);
/* The same window with its continuous images (patch_dim > 0): x0, eps (window x
 * patch_dim), t and kind (window), as data_images_t describes. */
void synth_window_images(synth_t *s, int split, int64_t k, int32_t *out, float *x0, float *eps, int32_t *t,
                         uint8_t *kind);
/* The seed of window k's noise stream for run.seed (what synth_window_images uses;
 * token files use it too, so `data gen` and training from its file draw alike). */
unsigned long synth_noise_seed(uint64_t seed, int split, int64_t k);
/* A window's timesteps and noise from rn, given its n tokens and position kinds:
 * per image t uniform in [1, T] (at most cap when the image precedes its caption),
 * then eps ~ N(0, 1) for each of its P x length elements (docs/data.md). */
void synth_draw_noise(gsl_rng *rn, const int32_t *tok, const uint8_t *kind, int64_t n, int64_t P, int32_t T,
                      int32_t cap, int32_t *t, float *eps);
/* Tokens per window: model.seq_len + 1. */
int32_t synth_window_len(const synth_t *s);
/* Floats per patch (0: image codes). */
int synth_patch_dim(const synth_t *s);
/* Of a caption-first image: how many of its caption's blobs the nearest class
 * prototype at the blob's centre patch gets right (-1: not a caption). */
int synth_caption_len(void);
/* IMG_BLOBS x the largest |prototype element|: no patch element exceeds it. */
double synth_image_bound(const synth_t *s);
int synth_blob_check(const synth_t *s, const int32_t *caption, const float *image, int *n_blobs);
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
/* /patches columns of the open file (0: none). */
int tokreader_patch_dim(const tokreader_t *r);
int32_t tokreader_window(const tokreader_t *r);
/* The same windows' /patches rows (n x window x P floats) and /kinds. */
void tokreader_read_images(tokreader_t *r, int64_t first, int n, float *x0, uint8_t *kind);

#endif
