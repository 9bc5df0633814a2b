/* OPT's synthetic aligned triples (docs/data.md, "OPT triples"): each sample is one
 * latent scene, a pure function of (seed, split, index), seen as a caption, image
 * regions (features, box geometry, class), an audio stream that speaks the caption,
 * and the image's code grid; plus the pretraining draws made on it (token masks with
 * BERT's 80/10/10, whole-modality masks, the 5-way matching swap), each a pure
 * function of (seed, split, index) too. */
#ifndef MOTSCALE_OPTDATA_H
#define MOTSCALE_OPTDATA_H

#include <stdbool.h>
#include <stdint.h>

#include "motscale/common.h"

/* Text ids: [MASK], then one word per region class, then the relations. */
#define OPT_TOK_MASK 0
#define OPT_RELATIONS 4            /* left of, right of, above, below */
#define OPT_GEOM 7                 /* [x1, y1, x2, y2, w, h, w*h] */
#define OPT_MASK_P 0.15            /* token-level masking share per modality */
#define OPT_MODALITY_P 0.3         /* whole-modality masking probability */
/* matching classes (OPT's 5-way sample-level task) */
enum opt_match { OPT_MATCH_ALL, OPT_MATCH_IMAGE_AUDIO, OPT_MATCH_TEXT_AUDIO, OPT_MATCH_TEXT_IMAGE,
                 OPT_MATCH_NONE, OPT_MATCH_N };
enum opt_modality { OPT_TEXT, OPT_IMAGE, OPT_AUDIO, OPT_N_MODALITIES };

typedef struct opt_data_params {
    uint64_t seed;
    int classes;                   /* region classes C (words 1 .. C) */
    int regions;                   /* R regions per image (data.opt_regions) */
    int region_dim, frame_dim;     /* feature sizes (data.region_dim, data.frame_dim) */
    int grid;                      /* the code grid is grid x grid cells */
    bool whole_masks;              /* apply the draws' whole-modality masks (modality-level tasks) */
} opt_data_params_t;

/* The sizes every sample has, from the parameters. */
typedef struct opt_dims {
    int text_len;                  /* Tt = 2 R - 1: class, relation, class, ... */
    int vocab;                     /* Vt = 1 + C + OPT_RELATIONS */
    int regions, region_dim, classes;
    int frames, frame_dim;         /* Ta = 3 Tt: each word lasts 1 to 3 frames */
    int codes, code_book;          /* grid^2 codes in [0, C] (0: background) */
} opt_dims_t;
void opt_dims(opt_dims_t *dm, const opt_data_params_t *p);

/* One scene, clean. Arrays sized by opt_dims; the caller owns them. */
typedef struct opt_scene {
    int32_t *text;                 /* (Tt) */
    float *region;                 /* (R, region_dim) */
    float *geom;                   /* (R, 7) */
    int32_t *region_class;         /* (R) */
    float *audio;                  /* (Ta, frame_dim) */
    int32_t *word_of_frame;        /* (Ta) the caption position a frame speaks, -1: silence */
    int32_t *codes;                /* (grid^2) */
} opt_scene_t;

/* Scene `index` of a split. False with err when the parameters are not usable. */
bool opt_params_check(const opt_data_params_t *p, char *err, size_t errlen);
void opt_scene(const opt_data_params_t *p, int split, int64_t index, opt_scene_t *s);

/* The pretraining draws for sample `index`: which positions are masked (exactly
 * k_m = max(1, round(0.15 n_m)) per modality, drawn without replacement), how each
 * masked text token is replaced (80% [MASK], 10% a random word, 10% kept), which
 * modalities are masked whole (each with p = 0.3, redrawn until not all three), and
 * the matching class with the samples the swapped modalities come from. */
typedef struct opt_draw {
    uint8_t *text_masked;          /* (Tt) 1: an MLM target */
    int32_t *text_replace;         /* (Tt) the input id at masked positions */
    uint8_t *region_masked;        /* (R) */
    uint8_t *frame_masked;         /* (Ta) */
    bool whole[OPT_N_MODALITIES];  /* masked whole */
    int match;                     /* enum opt_match */
    int64_t source[OPT_N_MODALITIES]; /* the sample each modality comes from (index: itself) */
} opt_draw_t;
int opt_mask_count(int n);
void opt_draw(const opt_data_params_t *p, int split, int64_t index, opt_draw_t *dr);

/* Allocate / free the arrays of a scene or a draw. */
void opt_scene_alloc(opt_scene_t *s, const opt_dims_t *dm);
void opt_scene_free(opt_scene_t *s);
void opt_draw_alloc(opt_draw_t *dr, const opt_dims_t *dm);
void opt_draw_free(opt_draw_t *dr);

struct optfile;
/* A micro-batch of samples in the arrays the model reads (model_opt_batch_t). */
typedef struct opt_batch {
    opt_data_params_t p;
    opt_dims_t dm;
    int cap;                                   /* samples it holds */
    int32_t *text_in, *text_tgt, *region_class, *match, *codes;
    uint8_t *text_masked, *region_masked, *frame_masked, *whole;
    float *region_in, *region_tgt, *geom, *audio_in, *audio_tgt;
    const struct optfile *file;                /* scenes from an OPT triple file; NULL: opt_scene */
    opt_scene_t scene;                         /* scratch */
    opt_draw_t draw;
} opt_batch_t;

void opt_batch_init(opt_batch_t *b, const opt_data_params_t *p, int cap);
void opt_batch_free(opt_batch_t *b);
/* Training samples [first, first + n) of a split into slots 0 .. n-1: each sample's
 * draw decides its matching swap (the scene each modality comes from) and its token
 * masks (BERT's 80/10/10 on text; masked region features and frames zeroed); with
 * whole_masks, also its whole-modality masks (text all [MASK], every region feature
 * or frame zeroed), and a sample with one has no matching label. */
void opt_batch_read(opt_batch_t *b, int split, int64_t first, int n);
/* Slot `slot` = text of scene it, image of scene ii, audio of scene ia, nothing
 * masked and no matching label (-1); a modality given as -1 is absent (text all
 * [MASK], features and frames zero). For retrieval. */
void opt_batch_compose(opt_batch_t *b, int split, int slot, int64_t it, int64_t ii, int64_t ia);

#endif
