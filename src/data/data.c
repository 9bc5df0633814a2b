/* data_vocab/data_open/data_read/data_close: the vocabulary layout and one split of
 * the token stream, dispatched to the synthetic generator or the HDF5 token-file
 * reader. Window k is a pure function of (parameters, split, k); data_read
 * allocates nothing. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "motscale/common.h"
#include "motscale/data.h"
#include "motscale/optfile.h"
#include "motscale/tokfile.h"

/* The config names the modalities the model gets towers for; a file must hold
 * exactly those, in that order, or tower_of would point at the wrong ranges. */
static bool file_matches(const vocab_t *v, const data_params_t *p, char *err, size_t errlen)
{
    bool same = v->n_modalities == p->n_modalities;
    for (int m = 0; same && m < v->n_modalities; m++)
        same = !strcmp(v->names[m], p->names[m]);
    if (same)
        return true;
    char have[CFG_PATH_LEN] = "", want[CFG_PATH_LEN] = "";
    for (int m = 0; m < v->n_modalities; m++) {
        size_t len = strlen(have);
        snprintf(have + len, sizeof have - len, "%s%s", m ? "," : "", v->names[m]);
    }
    for (int m = 0; m < p->n_modalities; m++) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, "%s%s", m ? "," : "", p->names[m]);
    }
    return errorf(err, errlen, "%s: the file holds modalities '%s' but data.modalities = '%s'; set data.modalities (and data.mix) to match",
                p->path, have, want);
}

bool data_vocab(vocab_t *v, const data_params_t *p, char *err, size_t errlen)
{
    /* OPT's triple file holds scenes, not tokens: the vocabulary is the synthetic one */
    if (p->source == DATA_FILE && !p->opt_triples) {
        if (!tokfile_read_vocab(p->path, v, err, errlen))
            return false;
        return file_matches(v, p, err, errlen);
    }
    int64_t sizes[MAX_MODALITIES];
    char names[MAX_MODALITIES][CFG_NAME_LEN];
    int n = p->n_modalities;
    int64_t n_boundary = 1 + 2 * (int64_t)(n - 1);
    for (int m = 0; m < n; m++) {
        const char *name = p->names[m];
        snprintf(names[m], CFG_NAME_LEN, "%s", name);
        if (!strcmp(name, "text")) {
            /* two ordinary tokens at least, or the text language is degenerate */
            if (p->synth.vocab_text < n_boundary + 2)
                return errorf(err, errlen, "data.vocab_text: %d leaves fewer than 2 text tokens after the %lld boundary tokens",
                            p->synth.vocab_text, (long long)n_boundary);
            sizes[m] = p->synth.vocab_text;
        } else if (!strcmp(name, "image")) {
            if (p->synth.vocab_image < 2)
                return errorf(err, errlen, "data.vocab_image: must be at least 2, got %d", p->synth.vocab_image);
            sizes[m] = p->synth.vocab_image;
        } else {
            if (p->synth.vocab_speech < 2)
                return errorf(err, errlen, "data.vocab_speech: must be at least 2, got %d", p->synth.vocab_speech);
            sizes[m] = p->synth.vocab_speech;
        }
    }
    char why[256];
    if (!vocab_from_sizes(v, n, names, sizes, why, sizeof why))
        return errorf(err, errlen, "data.modalities: %s", why);
    return true;
}

struct data {
    int split;
    int32_t window;
    synth_t *synth;
    tokreader_t *file;
    opt_batch_t *opt;
    optfile_t *opt_file;           /* data.source = file with model.kind = opt */
    /* a token file's continuous images: the noise stream and what it draws from */
    gsl_rng *rn;
    uint64_t seed;
    int P;
    int32_t t_steps, t_cap;
    aligned_t *aligned;
};

data_t *data_open(const data_params_t *p, const vocab_t *v, int split, char *err, size_t errlen)
{
    if (split != SPLIT_TRAIN && split != SPLIT_HELDOUT)
        DIE(EXIT_FAULT, "data_open: split %d is neither train nor held-out", split);
    data_t *d = xcalloc(1, sizeof *d);
    d->split = split;
    d->window = p->seq_len + 1;
    if (p->opt_triples) {
        if (!opt_params_check(&p->opt, err, errlen)) {
            free(d);
            return NULL;
        }
        if (p->source == DATA_FILE && !(d->opt_file = optfile_open(p->path, &p->opt, err, errlen))) {
            free(d);
            return NULL;
        }
        d->opt = xcalloc(1, sizeof *d->opt);
        opt_batch_init(d->opt, &p->opt, p->opt_batch);
        d->opt->file = d->opt_file;
        return d;
    }
    if (p->source == DATA_FILE)
        d->file = tokreader_open(p->path, v, split, p->seq_len + 1, err, errlen);
    else if (p->source == DATA_ALIGNED)
        d->aligned = aligned_create(p, v, err, errlen);
    else
        d->synth = synth_create(p, v, err, errlen);
    if (!d->file && !d->synth && !d->aligned) {
        free(d);
        return NULL;
    }
    if (d->file && p->synth.patch_dim > 0) {
        int have = tokreader_patch_dim(d->file);
        if (have != p->synth.patch_dim) {
            if (have)
                errorf(err, errlen, "%s: /patches has %d columns but data.patch_dim = %d", p->path, have,
                       p->synth.patch_dim);
            else
                errorf(err, errlen, "%s: no /patches: model.image_objective = diffusion needs a file with continuous images (motscale data gen of a diffusion config)",
                       p->path);
            data_close(d);
            return NULL;
        }
        d->P = p->synth.patch_dim;
        d->seed = p->seed;
        d->t_steps = p->synth.diffusion_steps;
        d->t_cap = p->synth.t_cap_image_first;
        if (!(d->rn = gsl_rng_alloc(gsl_rng_mt19937)))
            DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    }
    return d;
}

void data_read(data_t *d, int64_t first, int n, int32_t *tokens)
{
    if (d->opt) {
        opt_batch_read(d->opt, d->split, first, n);
        return;
    }
    if (d->file) {
        tokreader_read(d->file, first, n, tokens);
        return;
    }
    if (d->aligned) {
        for (int i = 0; i < n; i++)
            aligned_window(d->aligned, d->split, first + i, tokens + (size_t)i * (size_t)d->window);
        return;
    }
    for (int i = 0; i < n; i++)
        synth_window(d->synth, d->split, first + i, tokens + (size_t)i * synth_window_len(d->synth));
}

void data_read_images(data_t *d, int64_t first, int n, int32_t *tokens, const data_images_t *im)
{
    if (d->file) {
        if (!d->P)
            DIE(EXIT_FAULT, "data_read_images: the token file was opened without continuous images");
        /* the file's x0 and kinds; t and eps drawn as the synthetic source draws them */
        tokreader_read(d->file, first, n, tokens);
        tokreader_read_images(d->file, first, n, im->x0, im->kind);
        int64_t w = tokreader_window(d->file);
        for (int i = 0; i < n; i++) {
            gsl_rng_set(d->rn, synth_noise_seed(d->seed, d->split, first + i));
            synth_draw_noise(d->rn, tokens + i * w, im->kind + i * w, w, d->P, d->t_steps, d->t_cap, im->t + i * w,
                             im->eps + i * w * d->P);
        }
        return;
    }
    int64_t w = synth_window_len(d->synth), P = synth_patch_dim(d->synth);
    for (int i = 0; i < n; i++)
        synth_window_images(d->synth, d->split, first + i, tokens + i * w, im->x0 + i * w * P, im->eps + i * w * P,
                            im->t + i * w, im->kind + i * w);
}

double data_image_bound(const data_t *d) { return d->synth ? synth_image_bound(d->synth) : 0; }

int data_caption_len(const data_t *d) { return d->synth && synth_patch_dim(d->synth) ? synth_caption_len() : 0; }


int data_blob_check(const data_t *d, const int32_t *caption, const float *image, int *n_blobs)
{
    return synth_blob_check(d->synth, caption, image, n_blobs);
}
int data_heldout_pairs(const data_t *d) { return d && d->aligned ? aligned_heldout(d->aligned) : 0; }

void data_heldout_pair(data_t *d, int i, aligned_pair_t *out) { aligned_pair(d->aligned, i, out); }

void data_close(data_t *d)
{
    if (!d)
        return;
    aligned_destroy(d->aligned);
    synth_destroy(d->synth);
    tokreader_close(d->file);
    if (d->opt)
        opt_batch_free(d->opt);
    free(d->opt);
    optfile_close(d->opt_file);
    if (d->rn)
        gsl_rng_free(d->rn);
    free(d);
}

opt_batch_t *data_opt_batch(data_t *d) { return d->opt; }

int data_split(const data_t *d) { return d->split; }
