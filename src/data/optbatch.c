/* OPT's micro-batches (optdata.h): each sample from its own draw and the scenes its
 * modalities come from, masked as the draw says; and the pairs retrieval scores. */
#include <stdlib.h>
#include <string.h>

#include "motscale/optdata.h"
#include "motscale/optfile.h"

void opt_batch_init(opt_batch_t *b, const opt_data_params_t *p, int cap)
{
    memset(b, 0, sizeof *b);
    b->p = *p;
    opt_dims(&b->dm, p);
    b->cap = cap;
    const opt_dims_t *dm = &b->dm;
    size_t n = (size_t)cap, Tt = (size_t)dm->text_len, R = (size_t)dm->regions, Ta = (size_t)dm->frames;
    b->text_in = xcalloc(n * Tt, sizeof *b->text_in);
    b->text_tgt = xcalloc(n * Tt, sizeof *b->text_tgt);
    b->text_masked = xcalloc(n * Tt, 1);
    b->region_in = xcalloc(n * R * (size_t)dm->region_dim, sizeof(float));
    b->region_tgt = xcalloc(n * R * (size_t)dm->region_dim, sizeof(float));
    b->geom = xcalloc(n * R * OPT_GEOM, sizeof(float));
    b->region_class = xcalloc(n * R, sizeof *b->region_class);
    b->region_masked = xcalloc(n * R, 1);
    b->audio_in = xcalloc(n * Ta * (size_t)dm->frame_dim, sizeof(float));
    b->audio_tgt = xcalloc(n * Ta * (size_t)dm->frame_dim, sizeof(float));
    b->frame_masked = xcalloc(n * Ta, 1);
    b->match = xcalloc(n, sizeof *b->match);
    b->codes = xcalloc(n * (size_t)dm->codes, sizeof *b->codes);
    b->whole = xcalloc(n * OPT_N_MODALITIES, 1);
    opt_scene_alloc(&b->scene, dm);
    opt_draw_alloc(&b->draw, dm);
}

void opt_batch_free(opt_batch_t *b)
{
    void *all[] = {b->text_in, b->text_tgt, b->text_masked, b->region_in, b->region_tgt, b->geom, b->region_class,
                   b->region_masked, b->audio_in, b->audio_tgt, b->frame_masked, b->match, b->codes, b->whole};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    opt_scene_free(&b->scene);
    opt_draw_free(&b->draw);
    memset(b, 0, sizeof *b);
}

/* Modality mo of slot s from scene `index` (-1: absent), unmasked. */
static void put(opt_batch_t *b, int split, int s, int mo, int64_t index)
{
    const opt_dims_t *dm = &b->dm;
    size_t Tt = (size_t)dm->text_len, R = (size_t)dm->regions, Ta = (size_t)dm->frames;
    size_t Dr = (size_t)dm->region_dim, Df = (size_t)dm->frame_dim, k = (size_t)s;
    if (index >= 0 && b->file)
        optfile_scene(b->file, split, index, &b->scene);
    else if (index >= 0)
        opt_scene(&b->p, split, index, &b->scene);
    if (mo == OPT_TEXT) {
        for (size_t i = 0; i < Tt; i++) {
            b->text_tgt[k * Tt + i] = index >= 0 ? b->scene.text[i] : OPT_TOK_MASK;
            b->text_in[k * Tt + i] = b->text_tgt[k * Tt + i];
        }
        memset(b->text_masked + k * Tt, 0, Tt);
    } else if (mo == OPT_IMAGE) {
        size_t Tc = (size_t)dm->codes;
        for (size_t i = 0; i < Tc; i++)
            b->codes[k * Tc + i] = index >= 0 ? b->scene.codes[i] : 0;
        if (index >= 0) {
            memcpy(b->region_tgt + k * R * Dr, b->scene.region, R * Dr * sizeof(float));
            memcpy(b->geom + k * R * OPT_GEOM, b->scene.geom, R * OPT_GEOM * sizeof(float));
            memcpy(b->region_class + k * R, b->scene.region_class, R * sizeof(int32_t));
        } else {
            memset(b->region_tgt + k * R * Dr, 0, R * Dr * sizeof(float));
            memset(b->geom + k * R * OPT_GEOM, 0, R * OPT_GEOM * sizeof(float));
            memset(b->region_class + k * R, 0, R * sizeof(int32_t));
        }
        memcpy(b->region_in + k * R * Dr, b->region_tgt + k * R * Dr, R * Dr * sizeof(float));
        memset(b->region_masked + k * R, 0, R);
    } else {
        if (index >= 0)
            memcpy(b->audio_tgt + k * Ta * Df, b->scene.audio, Ta * Df * sizeof(float));
        else
            memset(b->audio_tgt + k * Ta * Df, 0, Ta * Df * sizeof(float));
        memcpy(b->audio_in + k * Ta * Df, b->audio_tgt + k * Ta * Df, Ta * Df * sizeof(float));
        memset(b->frame_masked + k * Ta, 0, Ta);
    }
}

void opt_batch_compose(opt_batch_t *b, int split, int slot, int64_t it, int64_t ii, int64_t ia)
{
    if (slot < 0 || slot >= b->cap)
        DIE(EXIT_FAULT, "OPT batch slot %d outside [0, %d)", slot, b->cap);
    put(b, split, slot, OPT_TEXT, it);
    put(b, split, slot, OPT_IMAGE, ii);
    put(b, split, slot, OPT_AUDIO, ia);
    b->match[slot] = -1;
    memset(b->whole + (size_t)slot * OPT_N_MODALITIES, 0, OPT_N_MODALITIES);
}

/* The token masks of the slot's draw on what put() wrote. */
static void apply_masks(opt_batch_t *b, int s)
{
    const opt_dims_t *dm = &b->dm;
    size_t Tt = (size_t)dm->text_len, R = (size_t)dm->regions, Ta = (size_t)dm->frames;
    size_t Dr = (size_t)dm->region_dim, Df = (size_t)dm->frame_dim, k = (size_t)s;
    const opt_draw_t *dr = &b->draw;
    for (size_t i = 0; i < Tt; i++) {
        b->text_masked[k * Tt + i] = dr->text_masked[i];
        if (dr->text_masked[i] && dr->text_replace[i] >= 0)
            b->text_in[k * Tt + i] = dr->text_replace[i];
    }
    for (size_t r = 0; r < R; r++) {
        b->region_masked[k * R + r] = dr->region_masked[r];
        if (dr->region_masked[r])
            memset(b->region_in + (k * R + r) * Dr, 0, Dr * sizeof(float));
    }
    for (size_t f = 0; f < Ta; f++) {
        b->frame_masked[k * Ta + f] = dr->frame_masked[f];
        if (dr->frame_masked[f])
            memset(b->audio_in + (k * Ta + f) * Df, 0, Df * sizeof(float));
    }
}

/* The whole-modality masks of the slot's draw: text all [MASK], every region's
 * feature zeroed (its box kept), every frame zeroed. */
static void apply_whole(opt_batch_t *b, int s)
{
    const opt_dims_t *dm = &b->dm;
    size_t Tt = (size_t)dm->text_len, k = (size_t)s;
    size_t nr = (size_t)(dm->regions * dm->region_dim), na = (size_t)(dm->frames * dm->frame_dim);
    if (b->draw.whole[OPT_TEXT])
        for (size_t i = 0; i < Tt; i++)
            b->text_in[k * Tt + i] = OPT_TOK_MASK;
    if (b->draw.whole[OPT_IMAGE])
        memset(b->region_in + k * nr, 0, nr * sizeof(float));
    if (b->draw.whole[OPT_AUDIO])
        memset(b->audio_in + k * na, 0, na * sizeof(float));
}

void opt_batch_read(opt_batch_t *b, int split, int64_t first, int n)
{
    if (n > b->cap)
        DIE(EXIT_FAULT, "OPT batch of %d samples exceeds its capacity %d", n, b->cap);
    for (int s = 0; s < n; s++) {
        opt_draw(&b->p, split, first + s, &b->draw);
        for (int mo = 0; mo < OPT_N_MODALITIES; mo++)
            put(b, split, s, mo, b->draw.source[mo]);
        apply_masks(b, s);
        b->match[s] = b->draw.match;
        uint8_t *w = b->whole + (size_t)s * OPT_N_MODALITIES;
        memset(w, 0, OPT_N_MODALITIES);
        if (b->p.whole_masks) {
            apply_whole(b, s);
            for (int mo = 0; mo < OPT_N_MODALITIES; mo++)
                w[mo] = b->draw.whole[mo];
            if (w[0] || w[1] || w[2])
                b->match[s] = -1;
        }
    }
}
