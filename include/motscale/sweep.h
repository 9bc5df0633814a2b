/* Sweeps: the [sweep] section of an experiment INI expanded into points, one run
 * each. Every `section.key = v1, v2, ...` line is a list; lists are crossed as a
 * cartesian product, except that the keys named on one `zip = k1, k2, ...` line vary
 * together (element-wise). docs/experiments.md documents the syntax. No MPI. */
#ifndef MOTSCALE_SWEEP_H
#define MOTSCALE_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/config.h"

#define SWEEP_MAX_KEYS 32
#define SWEEP_MAX_POINTS 100000

typedef struct sweep_key {
    char section[CFG_NAME_LEN], name[CFG_NAME_LEN];
    int n_values;
    char **values;         /* n_values strings, quotes removed */
    int axis;              /* the product axis that varies this key */
} sweep_key_t;

typedef struct sweep {
    char file[CFG_PATH_LEN];
    char stem[CFG_NAME_LEN];     /* file name without directory and .ini: default run.experiment */
    bool experiment_given;       /* [run] experiment set in the file, or swept */
    int n_keys;
    sweep_key_t keys[SWEEP_MAX_KEYS];  /* in file order */
    int n_axes;
    int axis_len[SWEEP_MAX_KEYS];      /* axis 0 varies slowest, the last fastest */
    int64_t n_points;            /* product of axis_len; 1 without a [sweep] section */
} sweep_t;

/* Read FILE's [sweep] section. Checks every key against the config key table and
 * every value with config_set; on error writes "FILE:LINE: why" (naming the key)
 * into err and returns false. */
bool sweep_load(sweep_t *sw, const char *file, char *err, size_t errlen);

/* Point i's overrides, "section.key=value", one per swept key in file order, into
 * over[0 .. n_keys) (each malloc'd; free with sweep_free_overrides). */
void sweep_point_overrides(const sweep_t *sw, int64_t i, char **over);
void sweep_free_overrides(const sweep_t *sw, char **over);

/* The resolved configuration of point i: the file, the point's overrides, then the
 * caller's extra overrides; run.experiment defaults to the file's stem; the run.name
 * template ({section.key}, {index}) is expanded. False with a message on error. */
bool sweep_point_config(const sweep_t *sw, int64_t i, int n_extra, char *const *extra,
                        config_t *cfg, char *err, size_t errlen);

/* Expand the run.name template in cfg->name: {section.key} becomes cfg's resolved
 * value (characters unsafe in a directory name become '_'), {index} becomes index.
 * A name without braces is left as it is. */
bool sweep_expand_name(config_t *cfg, int64_t index, char *err, size_t errlen);

/* Resolve every point and check that their run directories differ. */
bool sweep_check_all(const sweep_t *sw, int n_extra, char *const *extra, char *err, size_t errlen);

void sweep_free(sweep_t *sw);

#endif
