/* The joint vocabulary's layout: one contiguous id range per modality, text first,
 * from the data.vocab_* keys (synthetic) or from a token file's attributes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/tokfile.h"
#include "motscale/vocab.h"

bool vocab_from_sizes(vocab_t *v, int n_modalities, char names[][CFG_NAME_LEN],
                      const int64_t *sizes, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    if (n_modalities < 1 || n_modalities > MAX_MODALITIES)
        return errorf(err, errlen, "%d modalities; 1 to %d are supported", n_modalities, MAX_MODALITIES);
    int64_t at = 0;
    for (int m = 0; m < n_modalities; m++) {
        if (sizes[m] <= 0)
            return errorf(err, errlen, "vocabulary of '%s' has %lld ids; must be positive", names[m],
                        (long long)sizes[m]);
        if (at + sizes[m] > INT32_MAX)
            return errorf(err, errlen, "joint vocabulary exceeds %d ids", INT32_MAX);
        snprintf(v->names[m], CFG_NAME_LEN, "%s", names[m]);
        v->lo[m] = (int32_t)at;
        at += sizes[m];
        v->hi[m] = (int32_t)at;
    }
    v->n_modalities = n_modalities;
    v->size = (int32_t)at;
    return true;
}

/* The config names the modalities the model gets towers for; a file must hold
 * exactly those, in that order, or tower_of would point at the wrong ranges. */
static bool file_matches_config(const vocab_t *v, const config_t *cfg, char *err, size_t errlen)
{
    bool same = v->n_modalities == cfg->n_modalities;
    for (int m = 0; same && m < v->n_modalities; m++)
        same = !strcmp(v->names[m], cfg->modality_names[m]);
    if (same)
        return true;
    char have[CFG_PATH_LEN] = "";
    for (int m = 0; m < v->n_modalities; m++) {
        size_t len = strlen(have);
        snprintf(have + len, sizeof have - len, "%s%s", m ? "," : "", v->names[m]);
    }
    return errorf(err, errlen, "%s: the file holds modalities '%s' but data.modalities = '%s'; set data.modalities (and data.mix) to match",
                cfg->path, have, cfg->modalities);
}

bool vocab_from_config(vocab_t *v, const config_t *cfg, char *err, size_t errlen)
{
    if (cfg->source == DATA_FILE) {
        if (!tokfile_read_vocab(cfg->path, v, err, errlen))
            return false;
        return file_matches_config(v, cfg, err, errlen);
    }
    int64_t sizes[MAX_MODALITIES];
    char names[MAX_MODALITIES][CFG_NAME_LEN];
    int n = cfg->n_modalities;
    int64_t n_boundary = 1 + 2 * (int64_t)(n - 1);
    for (int m = 0; m < n; m++) {
        const char *name = cfg->modality_names[m];
        snprintf(names[m], CFG_NAME_LEN, "%s", name);
        if (!strcmp(name, "text")) {
            /* two ordinary tokens at least, or the text language is degenerate */
            if (cfg->vocab_text < n_boundary + 2)
                return errorf(err, errlen, "data.vocab_text: %d leaves fewer than 2 text tokens after the %lld boundary tokens",
                            cfg->vocab_text, (long long)n_boundary);
            sizes[m] = cfg->vocab_text;
        } else if (!strcmp(name, "image")) {
            if (cfg->vocab_image < 2)
                return errorf(err, errlen, "data.vocab_image: must be at least 2, got %d", cfg->vocab_image);
            sizes[m] = cfg->vocab_image;
        } else {
            if (cfg->vocab_speech < 2)
                return errorf(err, errlen, "data.vocab_speech: must be at least 2, got %d", cfg->vocab_speech);
            sizes[m] = cfg->vocab_speech;
        }
    }
    char why[256];
    if (!vocab_from_sizes(v, n, names, sizes, why, sizeof why))
        return errorf(err, errlen, "data.modalities: %s", why);
    return true;
}
