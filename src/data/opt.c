/* OPT's synthetic aligned triples and the pretraining draws made on them
 * (optdata.h, docs/data.md "OPT triples"). A scene is R objects with a class and a
 * box; the caption names the classes in order with the relation between neighbours;
 * each region's feature is its class prototype plus noise; the audio speaks the
 * caption word by word (a prototype frame per word, 1 to 3 frames, plus noise); the
 * code grid marks which class covers each cell. Each scene and each draw comes from
 * its own GSL stream seeded by (seed, split, index, purpose). */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/optdata.h"

#define FEATURE_NOISE 0.5          /* per-element noise on a region's class prototype */
#define FRAME_NOISE 0.5            /* per-element noise on a spoken word's prototype */
#define MAX_DURATION 3             /* frames per spoken word, uniform in 1 .. 3 */
#define MAX_SWAP_DISTANCE 1000000  /* a swapped modality comes from index + 1 .. + this */

enum stream { STREAM_PROTO = 1, STREAM_SCENE, STREAM_DRAW };

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* mt19937 keeps 32 bits of its seed (and maps 0 to 4357): seeds in [1, 2^32 - 1]. */
static gsl_rng *stream(uint64_t seed, int purpose, int split, int64_t index)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    uint64_t h = mix64(mix64(mix64(seed) ^ (uint64_t)purpose) ^ (uint64_t)split) ^ (uint64_t)index;
    gsl_rng_set(r, (unsigned long)(1 + mix64(h) % 0xFFFFFFFFull));
    return r;
}

void opt_dims(opt_dims_t *dm, const opt_data_params_t *p)
{
    dm->text_len = 2 * p->regions - 1;
    dm->vocab = 1 + p->classes + OPT_RELATIONS;
    dm->regions = p->regions;
    dm->region_dim = p->region_dim;
    dm->classes = p->classes;
    dm->frames = MAX_DURATION * dm->text_len;
    dm->frame_dim = p->frame_dim;
    dm->codes = p->grid * p->grid;
    dm->code_book = p->classes + 1;
}

bool opt_params_check(const opt_data_params_t *p, char *err, size_t errlen)
{
    if (p->classes < 2 || p->classes > 4096)
        return errorf(err, errlen, "OPT data: %d region classes, need 2 .. 4096", p->classes);
    if (p->regions < 1 || p->regions > 64)
        return errorf(err, errlen, "data.opt_regions = %d, need 1 .. 64", p->regions);
    if (p->region_dim < 1 || p->region_dim > 4096)
        return errorf(err, errlen, "data.region_dim = %d, need 1 .. 4096", p->region_dim);
    if (p->frame_dim < 1 || p->frame_dim > 4096)
        return errorf(err, errlen, "data.frame_dim = %d, need 1 .. 4096", p->frame_dim);
    if (p->grid < 1 || p->grid > 64)
        return errorf(err, errlen, "OPT data: code grid %d, need 1 .. 64", p->grid);
    return true;
}

/* The class prototypes of region features (C, region_dim) and the word prototypes
 * of audio frames (Vt, frame_dim): normal(0, 1), from the seed alone. */
static void prototypes(const opt_data_params_t *p, const opt_dims_t *dm, double *region, double *word)
{
    gsl_rng *r = stream(p->seed, STREAM_PROTO, 0, 0);
    for (int i = 0; i < dm->classes * dm->region_dim; i++)
        region[i] = gsl_ran_gaussian_ziggurat(r, 1.0);
    for (int i = 0; i < dm->vocab * dm->frame_dim; i++)
        word[i] = gsl_ran_gaussian_ziggurat(r, 1.0);
    gsl_rng_free(r);
}

/* Relation word of object b as seen from a (ids after the class words): the larger
 * of the horizontal and vertical offsets between the box centres decides. */
static int32_t relation(const float *ga, const float *gb, int classes)
{
    double dx = (gb[0] + gb[2]) / 2 - (ga[0] + ga[2]) / 2, dy = (gb[1] + gb[3]) / 2 - (ga[1] + ga[3]) / 2;
    int rel = fabs(dx) >= fabs(dy) ? (dx >= 0 ? 0 : 1) : (dy >= 0 ? 3 : 2);
    return 1 + classes + rel;
}

void opt_scene(const opt_data_params_t *p, int split, int64_t index, opt_scene_t *s)
{
    opt_dims_t dm;
    opt_dims(&dm, p);
    double *rproto = xmalloc((size_t)(dm.classes * dm.region_dim) * sizeof(double));
    double *wproto = xmalloc((size_t)(dm.vocab * dm.frame_dim) * sizeof(double));
    prototypes(p, &dm, rproto, wproto);
    gsl_rng *r = stream(p->seed, STREAM_SCENE, split, index);
    /* objects: class uniform; box corner in [0, 0.6)^2, sides in [0.2, 0.4) */
    for (int k = 0; k < dm.regions; k++) {
        int c = (int)gsl_rng_uniform_int(r, (unsigned long)dm.classes);
        s->region_class[k] = c;
        float *g = s->geom + k * OPT_GEOM;
        double x1 = 0.6 * gsl_rng_uniform(r), y1 = 0.6 * gsl_rng_uniform(r);
        double w = 0.2 + 0.2 * gsl_rng_uniform(r), h = 0.2 + 0.2 * gsl_rng_uniform(r);
        float box[OPT_GEOM] = {(float)x1, (float)y1, (float)(x1 + w), (float)(y1 + h), (float)w, (float)h,
                               (float)(w * h)};
        memcpy(g, box, sizeof box);
        for (int j = 0; j < dm.region_dim; j++)
            s->region[k * dm.region_dim + j] =
                (float)(rproto[c * dm.region_dim + j] + gsl_ran_gaussian_ziggurat(r, FEATURE_NOISE));
    }
    /* caption: c0 rel(0 -> 1) c1 rel(1 -> 2) c2 ... */
    for (int k = 0; k < dm.regions; k++) {
        s->text[2 * k] = 1 + s->region_class[k];
        if (k + 1 < dm.regions)
            s->text[2 * k + 1] = relation(s->geom + k * OPT_GEOM, s->geom + (k + 1) * OPT_GEOM, dm.classes);
    }
    /* audio: each word 1 .. 3 frames of its prototype plus noise, then silence (noise) */
    int f = 0;
    for (int w = 0; w < dm.text_len; w++) {
        int dur = 1 + (int)gsl_rng_uniform_int(r, MAX_DURATION);
        for (int k = 0; k < dur; k++, f++)
            s->word_of_frame[f] = w;
    }
    for (; f < dm.frames; f++)
        s->word_of_frame[f] = -1;
    for (f = 0; f < dm.frames; f++) {
        int w = s->word_of_frame[f];
        for (int j = 0; j < dm.frame_dim; j++)
            s->audio[f * dm.frame_dim + j] = (float)((w >= 0 ? wproto[s->text[w] * dm.frame_dim + j] : 0) +
                                                     gsl_ran_gaussian_ziggurat(r, FRAME_NOISE));
    }
    /* codes: cell (gx, gy) holds 1 + the class of the last object whose box covers
     * its centre, 0 where none does */
    for (int gy = 0; gy < p->grid; gy++)
        for (int gx = 0; gx < p->grid; gx++) {
            double cx = (gx + 0.5) / p->grid, cy = (gy + 0.5) / p->grid;
            int32_t code = 0;
            for (int k = 0; k < dm.regions; k++) {
                const float *g = s->geom + k * OPT_GEOM;
                if (cx >= g[0] && cx < g[2] && cy >= g[1] && cy < g[3])
                    code = 1 + s->region_class[k];
            }
            s->codes[gy * p->grid + gx] = code;
        }
    gsl_rng_free(r);
    free(rproto);
    free(wproto);
}

int opt_mask_count(int n)
{
    int k = (int)lround(OPT_MASK_P * n);
    return k < 1 ? 1 : k;
}

/* flags[0 .. n) = 1 at exactly opt_mask_count(n) positions drawn without replacement */
static void choose(gsl_rng *r, uint8_t *flags, int n, int *pool, int *pick)
{
    int k = opt_mask_count(n);
    for (int i = 0; i < n; i++)
        pool[i] = i;
    gsl_ran_choose(r, pick, (size_t)k, pool, (size_t)n, sizeof *pool);
    memset(flags, 0, (size_t)n);
    for (int i = 0; i < k; i++)
        flags[pick[i]] = 1;
}

void opt_draw(const opt_data_params_t *p, int split, int64_t index, opt_draw_t *dr)
{
    opt_dims_t dm;
    opt_dims(&dm, p);
    gsl_rng *r = stream(p->seed, STREAM_DRAW, split, index);
    int n_max = dm.frames > dm.text_len ? dm.frames : dm.text_len;
    n_max = n_max > dm.regions ? n_max : dm.regions;
    int *pool = xmalloc(2 * (size_t)n_max * sizeof *pool);
    choose(r, dr->text_masked, dm.text_len, pool, pool + n_max);
    choose(r, dr->region_masked, dm.regions, pool, pool + n_max);
    choose(r, dr->frame_masked, dm.frames, pool, pool + n_max);
    free(pool);
    /* BERT's replacement of a masked token: 80% [MASK], 10% a uniform random word
     * (any id but [MASK]), 10% the token itself (marked by -1: the caller keeps it) */
    for (int i = 0; i < dm.text_len; i++) {
        double u = gsl_rng_uniform(r);
        int32_t rnd = 1 + (int32_t)gsl_rng_uniform_int(r, (unsigned long)(dm.vocab - 1));
        dr->text_replace[i] = !dr->text_masked[i] ? -1 : u < 0.8 ? OPT_TOK_MASK : u < 0.9 ? rnd : -1;
    }
    /* whole modalities: each with p = 0.3, redrawn while all three are drawn */
    do
        for (int m = 0; m < OPT_N_MODALITIES; m++)
            dr->whole[m] = gsl_rng_uniform(r) < OPT_MODALITY_P;
    while (dr->whole[0] && dr->whole[1] && dr->whole[2]);
    /* matching: uniform over the 5 classes; a swapped modality comes from a later
     * sample of the same split, two swapped ones from two different samples */
    dr->match = (int)gsl_rng_uniform_int(r, OPT_MATCH_N);
    int64_t a = index + 1 + (int64_t)gsl_rng_uniform_int(r, MAX_SWAP_DISTANCE);
    int64_t b = index + 1 + (int64_t)gsl_rng_uniform_int(r, MAX_SWAP_DISTANCE - 1);
    if (b >= a)
        b++;
    for (int m = 0; m < OPT_N_MODALITIES; m++)
        dr->source[m] = index;
    switch (dr->match) {
    case OPT_MATCH_IMAGE_AUDIO: dr->source[OPT_TEXT] = a; break;
    case OPT_MATCH_TEXT_AUDIO: dr->source[OPT_IMAGE] = a; break;
    case OPT_MATCH_TEXT_IMAGE: dr->source[OPT_AUDIO] = a; break;
    case OPT_MATCH_NONE:
        dr->source[OPT_IMAGE] = a;
        dr->source[OPT_AUDIO] = b;
        break;
    default: break;
    }
    gsl_rng_free(r);
}

void opt_scene_alloc(opt_scene_t *s, const opt_dims_t *dm)
{
    s->text = xcalloc((size_t)dm->text_len, sizeof *s->text);
    s->region = xcalloc((size_t)(dm->regions * dm->region_dim), sizeof *s->region);
    s->geom = xcalloc((size_t)(dm->regions * OPT_GEOM), sizeof *s->geom);
    s->region_class = xcalloc((size_t)dm->regions, sizeof *s->region_class);
    s->audio = xcalloc((size_t)(dm->frames * dm->frame_dim), sizeof *s->audio);
    s->word_of_frame = xcalloc((size_t)dm->frames, sizeof *s->word_of_frame);
    s->codes = xcalloc((size_t)dm->codes, sizeof *s->codes);
}

void opt_scene_free(opt_scene_t *s)
{
    free(s->text);
    free(s->region);
    free(s->geom);
    free(s->region_class);
    free(s->audio);
    free(s->word_of_frame);
    free(s->codes);
    memset(s, 0, sizeof *s);
}

void opt_draw_alloc(opt_draw_t *dr, const opt_dims_t *dm)
{
    memset(dr, 0, sizeof *dr);
    dr->text_masked = xcalloc((size_t)dm->text_len, 1);
    dr->text_replace = xcalloc((size_t)dm->text_len, sizeof *dr->text_replace);
    dr->region_masked = xcalloc((size_t)dm->regions, 1);
    dr->frame_masked = xcalloc((size_t)dm->frames, 1);
}

void opt_draw_free(opt_draw_t *dr)
{
    free(dr->text_masked);
    free(dr->text_replace);
    free(dr->region_masked);
    free(dr->frame_masked);
    memset(dr, 0, sizeof *dr);
}
