/* data_open/data_read/data_close: one split of the token stream, dispatched to the
 * synthetic generator or the HDF5 token-file reader. Window k is a pure function
 * of (config, split, k); data_read allocates nothing. */
#include <stdlib.h>

#include "internal.h"
#include "motscale/common.h"
#include "motscale/data.h"

struct data {
    int split;
    synth_t *synth;
    tokreader_t *file;
};

data_t *data_open(const config_t *cfg, const vocab_t *v, int split, char *err, size_t errlen)
{
    if (split != SPLIT_TRAIN && split != SPLIT_HELDOUT)
        DIE(EXIT_FAULT, "data_open: split %d is neither train nor held-out", split);
    data_t *d = xcalloc(1, sizeof *d);
    d->split = split;
    if (cfg->source == DATA_FILE)
        d->file = tokreader_open(cfg->path, v, split, cfg->seq_len + 1, err, errlen);
    else
        d->synth = synth_create(cfg, v, err, errlen);
    if (!d->file && !d->synth) {
        free(d);
        return NULL;
    }
    return d;
}

void data_read(data_t *d, int64_t first, int n, int32_t *tokens)
{
    if (d->file) {
        tokreader_read(d->file, first, n, tokens);
        return;
    }
    for (int i = 0; i < n; i++)
        synth_window(d->synth, d->split, first + i, tokens + (size_t)i * synth_window_len(d->synth));
}

void data_close(data_t *d)
{
    if (!d)
        return;
    synth_destroy(d->synth);
    tokreader_close(d->file);
    free(d);
}
