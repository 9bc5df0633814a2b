/* OPT's triples in an HDF5 file (docs/data.md, "OPT triple files"): the clean scenes
 * of both splits, one row per (split, sample index), for model.kind = opt with
 * data.source = file. The pretraining draws are not stored: they stay pure
 * functions of (seed, split, index), drawn at read time. Writer for `motscale data
 * gen`; a reader that checks the whole file when it opens it. */
#ifndef MOTSCALE_OPTFILE_H
#define MOTSCALE_OPTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "motscale/optdata.h"

#define OPTFILE_FORMAT "motscale-opt-triples"
#define OPTFILE_VERSION 1

/* Write the scenes that training on samples [0, n[split]) of each split reads (each
 * sample's own scene and those its draw swaps in), plus held-out scenes
 * [0, 2 pool) for retrieval. False with err. */
bool optfile_write(const char *path, const opt_data_params_t *p, const int64_t n[2], int pool,
                   const char *config_text, char *err, size_t errlen);

typedef struct optfile optfile_t;
/* Open and check every row against the parameters' sizes; NULL with err naming the
 * file, the dataset and the offending offset. */
optfile_t *optfile_open(const char *path, const opt_data_params_t *p, char *err, size_t errlen);
/* Scene `index` of a split into s (word_of_frame is not stored: all -1). A scene the
 * file lacks stops the run (exit 2) with a line naming it. */
void optfile_scene(const optfile_t *f, int split, int64_t index, opt_scene_t *s);
/* Rows of each split. */
int64_t optfile_rows(const optfile_t *f, int split);
void optfile_close(optfile_t *f);
/* One line of what the file holds (its sizes from its attributes), after the full
 * check; false with err. For `motscale data inspect`. */
bool optfile_summary(const char *path, char *line, size_t len, char *err, size_t errlen);
/* 1: the file's format attribute says OPT triples; 0: it does not; -1: unreadable. */
int optfile_is(const char *path);

#endif
