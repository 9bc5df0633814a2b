/* Synthetic multimodal token streams (docs/data.md): a sparse n-gram text language
 * over a Zipfian vocabulary, raster-scanned image grids whose codes depend on the
 * left and upper neighbours, and speech units with run-length durations, interleaved
 * in documents. Window k of a split is generated from its own GSL stream. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "motscale/common.h"
#include "motscale/vocab.h"

/* The shape of each language, documented in docs/data.md. Weights are cumulative
 * over a context's few successors, so every context has one dominant next token. */
#define SUCC_K 4
static const double succ_cdf[SUCC_K] = {0.55, 0.80, 0.92, 1.0};
#define TEXT_P_LONG 0.55     /* next text token from the (ngram-1)-token context */
#define TEXT_P_BIGRAM 0.30   /* ... from the previous token; else the Zipf unigram */
#define IMG_NEAR_K 3
static const double img_near_cdf[IMG_NEAR_K] = {0.60, 0.85, 1.0};
#define IMG_P_UP 0.50        /* code near the one a row above */
#define IMG_P_LEFT 0.30      /* ... near the left one; else the (left, up) table */
#define SP_K 6
static const double sp_next_cdf[SP_K] = {0.30, 0.52, 0.70, 0.84, 0.94, 1.0};
#define SP_DUR_MAX 4.0       /* per-unit mean run length, uniform in [1, 4] */
#define SPANS_PER_DOC 4.0    /* a unit starts a new document with probability 1/4 */
#define SPAN_CAP 4           /* text/speech span lengths are capped at 4x their mean */
#define MAX_CTX_SLOTS 65536  /* contexts beyond this are hashed into this many slots */
/* Continuous images (patch_dim > 0): each image is IMG_BLOBS Gaussian blobs, blob b of
 * class c_b in [0, IMG_CLASSES) centred on patch (r_b, c_b); patch (r, c) holds
 * sum_b exp(-((r - r_b)^2 + (c - c_b)^2) / (2 sigma^2)) proto[c_b], sigma =
 * max(H, W) / 4, proto[k] a fixed random direction of norm sqrt(patch_dim). Its
 * caption is three text words per blob: class, row, column (CAPTION_LEN tokens). */
#define IMG_BLOBS 2
#define IMG_CLASSES 4
#define CAPTION_LEN (3 * IMG_BLOBS)

enum { KIND_TEXT, KIND_IMAGE, KIND_SPEECH };

/* Successor lists of contexts of `order` symbols in [0, radix). */
typedef struct ctxtab {
    int order;
    int64_t radix, nslots;
    bool hashed;
    int32_t *succ;           /* nslots x SUCC_K */
} ctxtab_t;

struct synth {
    vocab_t v;
    int n_mod;
    int32_t window;
    int kind[MAX_MODALITIES];
    double pick_cdf[MAX_MODALITIES];  /* modality of the next span */
    int64_t mean_len[MAX_MODALITIES], cap[MAX_MODALITIES];
    int64_t unit_max;                     /* longest possible unit, for the first-unit draw */
    uint32_t base;                        /* per-window seeds start here */
    gsl_rng *r;
    /* text: content ids t_lo + [0, t_n) */
    int32_t t_lo, t_n;
    int ngram;
    gsl_ran_discrete_t *zipf;
    ctxtab_t t_long, t_bigram;
    int32_t hist[16];                     /* last ngram-1 text tokens, newest last */
    /* image: codes i_lo + [0, i_n), H x W grid */
    int32_t i_lo, i_n;
    int64_t H, W;
    int32_t *near;                        /* i_n x IMG_NEAR_K */
    ctxtab_t i_joint;                     /* (left, up) -> codes */
    int32_t *row;                         /* the row above, overwritten left to right */
    /* speech: units s_lo + [0, s_n) */
    int32_t s_lo, s_n;
    int32_t *sp_next;                     /* s_n x SP_K, never the unit itself */
    double *sp_dur;
    /* continuous images: patch_dim floats per patch, class prototypes, the caption
     * words (class, row, column) at the top of the text range, the noise stream */
    int P;
    double caption_first;
    int32_t t_steps, t_cap;
    double *proto;                        /* IMG_CLASSES x P */
    int32_t cap_lo;                       /* class k: cap_lo + k; row r: + IMG_CLASSES + r; col c: + H + c */
    gsl_rng *rn;
    /* the window being written: tokens at positions [0, window) are kept; with
     * images also x0 (window x P) and kind (window) */
    int32_t *out;
    float *x0;
    uint8_t *pkind;
    int64_t pos;
};

static void *fail_null(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return NULL;
}

/* splitmix64's finaliser: spreads nearby seeds over all 64 bits. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* GSL's mt19937 keeps 32 bits of its seed and maps 0 to 4357, so seeds live in
 * [1, 2^32 - 1]. Train window k uses base + k, held-out base + 2^31 + k: the two
 * splits never share a stream while each stays below 2^31 - 1 windows. */
#define SEED_SPAN 0xFFFFFFFFull
#define WINDOWS_MAX 0x7FFFFFFEll
static unsigned long seed_of(uint32_t base, int split, int64_t k)
{
    uint64_t x = (uint64_t)base + (split == SPLIT_HELDOUT ? 0x80000000ull : 0) + (uint64_t)k;
    return (unsigned long)(1 + x % SEED_SPAN);
}

static unsigned long window_seed(const synth_t *s, int split, int64_t k) { return seed_of(s->base, split, k); }

/* The per-window seeds start at this base, from run.seed. */
static uint32_t base_of(uint64_t seed) { return (uint32_t)(mix64(seed) >> 32); }

static int pick(gsl_rng *r, const double *cdf, int k)
{
    double u = gsl_rng_uniform(r);
    for (int i = 0; i < k - 1; i++)
        if (u < cdf[i])
            return i;
    return k - 1;
}

static void ctx_init(ctxtab_t *t, int order, int64_t radix)
{
    t->order = order;
    t->radix = radix;
    int64_t n = 1;
    t->hashed = false;
    for (int i = 0; i < order; i++) {
        if (n > MAX_CTX_SLOTS / radix) {
            t->hashed = true;
            break;
        }
        n *= radix;
    }
    t->nslots = t->hashed ? MAX_CTX_SLOTS : n;
    t->succ = xmalloc((size_t)t->nslots * SUCC_K * sizeof *t->succ);
}

/* ctx: `order` symbols, oldest first. */
static int64_t ctx_slot(const ctxtab_t *t, const int32_t *ctx)
{
    if (!t->hashed) {
        int64_t idx = 0;
        for (int i = 0; i < t->order; i++)
            idx = idx * t->radix + ctx[i];
        return idx;
    }
    uint64_t h = 0;
    for (int i = 0; i < t->order; i++)
        h = mix64(h ^ (uint64_t)(uint32_t)ctx[i]);
    return (int64_t)(h % (uint64_t)t->nslots);
}

static int32_t ctx_draw(const ctxtab_t *t, gsl_rng *r, const int32_t *ctx)
{
    return t->succ[ctx_slot(t, ctx) * SUCC_K + pick(r, succ_cdf, SUCC_K)];
}

/* E[min(1 + Poisson(mean - 1), cap)]: the mean of a capped span length. */
static double capped_mean(int64_t mean, int64_t cap)
{
    double mu = (double)(mean - 1), below = 0, acc = 0;
    for (int64_t j = 0; j + 1 < cap; j++) {
        double p = gsl_ran_poisson_pdf((unsigned)j, mu);
        acc += (double)(1 + j) * p;
        below += p;
    }
    return acc + (double)cap * (1.0 - below);
}

static int64_t span_len(synth_t *s, int m)
{
    if (s->kind[m] == KIND_IMAGE)
        return s->H * s->W;
    if (s->mean_len[m] == 1)
        return 1;
    int64_t L = 1 + (int64_t)gsl_ran_poisson(s->r, (double)(s->mean_len[m] - 1));
    return L < s->cap[m] ? L : s->cap[m];
}

static int unit_extra(const synth_t *s, int m)
{
    return s->kind[m] == KIND_TEXT ? 0 : s->kind[m] == KIND_IMAGE && s->P ? 2 + CAPTION_LEN : 2;
}

static bool full(const synth_t *s) { return s->pos >= s->window; }

/* Tokens before position 0 are the skipped part of the first unit. */
static void emit(synth_t *s, int32_t tok)
{
    if (s->pos >= 0)
        s->out[s->pos] = tok;
    s->pos++;
}

static void text_reset(synth_t *s)
{
    for (int i = 0; i + 1 < s->ngram; i++)
        s->hist[i] = s->t_n; /* the sentinel: start of document */
}

static int32_t text_next(synth_t *s)
{
    double u = gsl_rng_uniform(s->r);
    int h = s->ngram - 1;
    if (s->ngram >= 3 && u < TEXT_P_LONG)
        return ctx_draw(&s->t_long, s->r, s->hist);
    if (s->ngram >= 2 && u < TEXT_P_LONG + TEXT_P_BIGRAM)
        return ctx_draw(&s->t_bigram, s->r, s->hist + h - 1);
    return (int32_t)gsl_ran_discrete(s->r, s->zipf);
}

static void gen_text(synth_t *s, int64_t L)
{
    for (int64_t i = 0; i < L && !full(s); i++) {
        int32_t t = text_next(s);
        if (s->ngram >= 2) {
            memmove(s->hist, s->hist + 1, (size_t)(s->ngram - 2) * sizeof *s->hist);
            s->hist[s->ngram - 2] = t;
        }
        emit(s, s->t_lo + t);
    }
}

/* Raster scan; row[c] holds the code above (r, c) until it is overwritten. */
static void gen_image(synth_t *s, int m)
{
    const int32_t none = s->i_n;
    if (full(s))
        return;
    emit(s, vocab_begin_token(&s->v, m));
    for (int64_t r = 0; r < s->H; r++)
        for (int64_t c = 0; c < s->W; c++) {
            if (full(s))
                return;
            int32_t ctx[2] = {c > 0 ? s->row[c - 1] : none, r > 0 ? s->row[c] : none};
            double u = gsl_rng_uniform(s->r);
            int32_t code;
            if (ctx[1] != none && u < IMG_P_UP)
                code = s->near[ctx[1] * IMG_NEAR_K + pick(s->r, img_near_cdf, IMG_NEAR_K)];
            else if (ctx[0] != none && u < IMG_P_UP + IMG_P_LEFT)
                code = s->near[ctx[0] * IMG_NEAR_K + pick(s->r, img_near_cdf, IMG_NEAR_K)];
            else
                code = ctx_draw(&s->i_joint, s->r, ctx);
            s->row[c] = code;
            emit(s, s->i_lo + code);
        }
    if (!full(s))
        emit(s, vocab_end_token(&s->v, m));
}

/* A token with its position's kind (images only). */
static void emit_kind(synth_t *s, int32_t tok, int kind)
{
    if (s->pos >= 0 && s->pos < s->window)
        s->pkind[s->pos] = (uint8_t)kind;
    emit(s, tok);
}

static void gen_caption(synth_t *s, const int *cls, const int *br, const int *bc, int kind)
{
    for (int b = 0; b < IMG_BLOBS && !full(s); b++) {
        int32_t words[3] = {s->cap_lo + cls[b], s->cap_lo + IMG_CLASSES + br[b],
                            s->cap_lo + IMG_CLASSES + (int32_t)s->H + bc[b]};
        for (int j = 0; j < 3 && !full(s); j++)
            emit_kind(s, words[j], kind);
    }
}

/* A continuous image and its caption, the caption first with probability
 * caption_first; patches raster-scanned between the image's boundary tokens. */
static void gen_cont_image(synth_t *s, int m)
{
    if (full(s))
        return;
    bool cap_first = gsl_rng_uniform(s->r) < s->caption_first;
    int cls[IMG_BLOBS], br[IMG_BLOBS], bc[IMG_BLOBS];
    for (int b = 0; b < IMG_BLOBS; b++) {
        cls[b] = (int)gsl_rng_uniform_int(s->r, IMG_CLASSES);
        br[b] = (int)gsl_rng_uniform_int(s->r, (unsigned long)s->H);
        bc[b] = (int)gsl_rng_uniform_int(s->r, (unsigned long)s->W);
    }
    if (cap_first)
        gen_caption(s, cls, br, bc, POS_OTHER);
    if (full(s))
        return;
    emit_kind(s, vocab_begin_token(&s->v, m), POS_OTHER);
    double sig = (double)(s->H > s->W ? s->H : s->W) / 4.0;
    for (int64_t r = 0; r < s->H; r++)
        for (int64_t c = 0; c < s->W; c++) {
            if (full(s))
                return;
            if (s->pos >= 0)
                for (int b = 0; b < IMG_BLOBS; b++) {
                    double dr = (double)(r - br[b]), dc = (double)(c - bc[b]);
                    double a = exp(-(dr * dr + dc * dc) / (2 * sig * sig));
                    for (int j = 0; j < s->P; j++)
                        s->x0[s->pos * s->P + j] += (float)(a * s->proto[cls[b] * s->P + j]);
                }
            emit_kind(s, s->i_lo, cap_first ? POS_PATCH_CAPTION_FIRST : POS_PATCH_IMAGE_FIRST);
        }
    if (full(s))
        return;
    emit_kind(s, vocab_end_token(&s->v, m), POS_OTHER);
    if (!cap_first)
        gen_caption(s, cls, br, bc, POS_CAPTION_AFTER);
}

static void gen_speech(synth_t *s, int m, int64_t L)
{
    if (full(s))
        return;
    emit(s, vocab_begin_token(&s->v, m));
    int32_t u = (int32_t)gsl_rng_uniform_int(s->r, (unsigned long)s->s_n);
    int64_t left = L;
    while (left > 0) {
        int64_t run = 1 + (int64_t)gsl_ran_poisson(s->r, s->sp_dur[u] - 1.0);
        if (run > left)
            run = left;
        for (int64_t i = 0; i < run; i++) {
            if (full(s))
                return;
            emit(s, s->s_lo + u);
        }
        left -= run;
        u = s->sp_next[u * SP_K + pick(s->r, sp_next_cdf, SP_K)];
    }
    if (!full(s))
        emit(s, vocab_end_token(&s->v, m));
}

/* A unit: optional <doc>, then one span with its boundary tokens. */
static void gen_unit(synth_t *s, int m, int64_t L, bool doc)
{
    if (doc && !full(s)) {
        emit(s, vocab_doc_token(&s->v));
        text_reset(s);
    }
    switch (s->kind[m]) {
    case KIND_TEXT: gen_text(s, L); break;
    case KIND_IMAGE:
        if (s->P)
            gen_cont_image(s, m);
        else
            gen_image(s, m);
        break;
    default: gen_speech(s, m, L); break;
    }
}

static void window_tokens(synth_t *s, int split, int64_t k, int32_t *out);

void synth_window(synth_t *s, int split, int64_t k, int32_t *out)
{
    if (s->P)
        DIE(EXIT_FAULT, "synth_window: continuous images need synth_window_images");
    window_tokens(s, split, k, out);
}

/* The noise stream of window k: its own seed, apart from the token streams. */
static unsigned long noise_of(unsigned long window_seed)
{
    return (unsigned long)(1 + mix64(mix64(window_seed) ^ 0xD1FF05E5ull) % SEED_SPAN);
}

unsigned long synth_noise_seed(uint64_t seed, int split, int64_t k) { return noise_of(seed_of(base_of(seed), split, k)); }

void synth_draw_noise(gsl_rng *rn, const int32_t *tok, const uint8_t *kind, int64_t n, int64_t P, int32_t T,
                      int32_t cap, int32_t *t, float *eps)
{
    /* per image (a run of patch positions): t uniform in [1, T], at most cap when the
     * image comes before its caption; then eps ~ N(0, 1) per patch element */
    int32_t cur = 0;
    for (int64_t i = 0; i < n; i++) {
        bool patch = kind[i] == POS_PATCH_IMAGE_FIRST || kind[i] == POS_PATCH_CAPTION_FIRST;
        if (patch && (i == 0 || kind[i - 1] != kind[i] || tok[i - 1] != tok[i])) {
            int32_t hi = kind[i] == POS_PATCH_IMAGE_FIRST && cap < T ? cap : T;
            cur = 1 + (int32_t)gsl_rng_uniform_int(rn, (unsigned long)hi);
        }
        t[i] = patch ? cur : 0;
        for (int64_t j = 0; j < P; j++)
            eps[i * P + j] = patch ? (float)gsl_ran_gaussian_ziggurat(rn, 1.0) : 0.0f;
    }
}

void synth_window_images(synth_t *s, int split, int64_t k, int32_t *out, float *x0, float *eps, int32_t *t,
                         uint8_t *kind)
{
    int64_t n = s->window, P = s->P;
    memset(x0, 0, (size_t)(n * P) * sizeof *x0);
    memset(kind, POS_OTHER, (size_t)n);
    s->x0 = x0;
    s->pkind = kind;
    window_tokens(s, split, k, out);
    gsl_rng_set(s->rn, noise_of(window_seed(s, split, k)));
    synth_draw_noise(s->rn, out, kind, n, P, s->t_steps, s->t_cap, t, eps);
}

static void window_tokens(synth_t *s, int split, int64_t k, int32_t *out)
{
    if (k < 0 || k > WINDOWS_MAX)
        DIE(EXIT_BADINPUT, "synthetic window %lld is outside [0, %lld]", (long long)k, (long long)WINDOWS_MAX);
    gsl_rng_set(s->r, window_seed(s, split, k));
    s->out = out;
    /* Start at a stationary point of the span process, so modality shares match
     * data.mix in every window position: the first unit is drawn length-biased
     * (accept with probability length / unit_max) and entered at a uniform offset. */
    int m;
    int64_t L, total;
    bool doc;
    for (;;) {
        m = pick(s->r, s->pick_cdf, s->n_mod);
        doc = gsl_rng_uniform(s->r) < 1.0 / SPANS_PER_DOC;
        L = span_len(s, m);
        total = L + unit_extra(s, m) + doc;
        if (gsl_rng_uniform(s->r) * (double)s->unit_max < (double)total)
            break;
    }
    s->pos = -(int64_t)gsl_rng_uniform_int(s->r, (unsigned long)total);
    text_reset(s);
    gen_unit(s, m, L, doc);
    while (!full(s)) {
        doc = gsl_rng_uniform(s->r) < 1.0 / SPANS_PER_DOC;
        m = pick(s->r, s->pick_cdf, s->n_mod);
        L = span_len(s, m);
        gen_unit(s, m, L, doc);
    }
}

/* Span-modality probabilities q_m such that the expected token shares equal
 * data.mix, counting <doc> and the begin/end tokens as text (they are in the text
 * range). Per unit: non-text m gives q_m l_m tokens of m and 2 q_m text tokens; every
 * unit gives 1/D <doc>s. With q_m = s_m / l_m for non-text m the expected unit
 * length is 1, and text needs q_t (l_t + 1/D) = s_t - (2 + 1/D) sum_nt q_m. */
static void mix_probabilities(synth_t *s, const data_params_t *prm)
{
    double q[MAX_MODALITIES], nt = 0, tot = 0;
    int text = -1;
    for (int m = 0; m < s->n_mod; m++) {
        double l = s->kind[m] == KIND_IMAGE ? (double)(s->H * s->W)
                                            : capped_mean(s->mean_len[m], s->cap[m]);
        if (s->kind[m] == KIND_TEXT) {
            text = m;
            q[m] = l;  /* holds l_t until the others are known */
        } else {
            q[m] = prm->mix_share[m] / l;
            nt += q[m];
        }
    }
    /* continuous images bring their captions: CAPTION_LEN more text tokens per image */
    double captions = 0;
    for (int m = 0; m < s->n_mod; m++)
        if (s->kind[m] == KIND_IMAGE && s->P)
            captions += CAPTION_LEN * q[m];
    double qt = (prm->mix_share[text] - (2.0 + 1.0 / SPANS_PER_DOC) * nt - captions) / (q[text] + 1.0 / SPANS_PER_DOC);
    q[text] = qt > 0 ? qt : 0; /* text below the boundary tokens' own share: none */
    for (int m = 0; m < s->n_mod; m++)
        tot += q[m];
    /* from the last modality with a positive share on, exactly 1, so rounding can
     * never pick a modality whose share is zero */
    int last = 0;
    for (int m = 0; m < s->n_mod; m++)
        if (q[m] > 0)
            last = m;
    double acc = 0;
    for (int m = 0; m < s->n_mod; m++) {
        acc += q[m] / tot;
        s->pick_cdf[m] = m >= last ? 1.0 : acc;
    }
}

static void build_tables(synth_t *s, const data_params_t *prm, gsl_rng *r)
{
    /* text: Zipf over content ids, rank = id order */
    double *w = xmalloc((size_t)s->t_n * sizeof *w);
    for (int32_t i = 0; i < s->t_n; i++)
        w[i] = pow((double)(i + 1), -prm->synth.zipf);
    s->zipf = gsl_ran_discrete_preproc((size_t)s->t_n, w);
    free(w);
    if (!s->zipf)
        DIE(EXIT_FAULT, "gsl_ran_discrete_preproc failed for the text Zipf table (%d tokens)", s->t_n);
    ctxtab_t *tabs[2] = {&s->t_long, &s->t_bigram};
    int orders[2] = {s->ngram - 1, 1};
    for (int i = 0; i < 2; i++) {
        ctx_init(tabs[i], orders[i] > 0 ? orders[i] : 1, (int64_t)s->t_n + 1);
        for (int64_t j = 0; j < tabs[i]->nslots * SUCC_K; j++)
            tabs[i]->succ[j] = (int32_t)gsl_ran_discrete(r, s->zipf);
    }
    /* image: each code's neighbourhood is itself plus two random codes */
    if (s->i_n > 0) {
        s->near = xmalloc((size_t)s->i_n * IMG_NEAR_K * sizeof *s->near);
        for (int32_t c = 0; c < s->i_n; c++) {
            s->near[c * IMG_NEAR_K] = c;
            for (int j = 1; j < IMG_NEAR_K; j++)
                s->near[c * IMG_NEAR_K + j] = (int32_t)gsl_rng_uniform_int(r, (unsigned long)s->i_n);
        }
        ctx_init(&s->i_joint, 2, (int64_t)s->i_n + 1);
        for (int64_t j = 0; j < s->i_joint.nslots * SUCC_K; j++)
            s->i_joint.succ[j] = (int32_t)gsl_rng_uniform_int(r, (unsigned long)s->i_n);
        s->row = xmalloc((size_t)s->W * sizeof *s->row);
    }
    /* speech: a few successors per unit (never itself, so runs end), and a mean
     * run length per unit */
    if (s->s_n > 0) {
        s->sp_next = xmalloc((size_t)s->s_n * SP_K * sizeof *s->sp_next);
        s->sp_dur = xmalloc((size_t)s->s_n * sizeof *s->sp_dur);
        for (int32_t u = 0; u < s->s_n; u++) {
            s->sp_dur[u] = 1.0 + (SP_DUR_MAX - 1.0) * gsl_rng_uniform(r);
            for (int j = 0; j < SP_K; j++) {
                int32_t x = (int32_t)gsl_rng_uniform_int(r, (unsigned long)(s->s_n - 1));
                s->sp_next[u * SP_K + j] = x >= u ? x + 1 : x;
            }
        }
    }
}

synth_t *synth_create(const data_params_t *prm, const vocab_t *v, char *err, size_t errlen)
{
    if (prm->synth.ngram < 1 || prm->synth.ngram > 16)
        return fail_null(err, errlen, "data.ngram: must be in [1, 16], got %d", prm->synth.ngram);
    if (!(prm->synth.zipf > 0))
        return fail_null(err, errlen, "data.zipf: must be positive, got %g", prm->synth.zipf);
    if (prm->synth.text_span < 1)
        return fail_null(err, errlen, "data.text_span: must be at least 1, got %d", prm->synth.text_span);
    if (prm->synth.speech_span < 1)
        return fail_null(err, errlen, "data.speech_span: must be at least 1, got %d", prm->synth.speech_span);
    if (prm->synth.image_h < 1 || prm->synth.image_w < 1 || (int64_t)prm->synth.image_h * prm->synth.image_w > (1 << 20))
        return fail_null(err, errlen, "data.image_h x data.image_w: must be in [1, 2^20], got %d x %d",
                         prm->synth.image_h, prm->synth.image_w);

    synth_t *s = xcalloc(1, sizeof *s);
    s->v = *v;
    s->n_mod = v->n_modalities;
    s->window = prm->seq_len + 1;
    s->ngram = prm->synth.ngram;
    s->H = prm->synth.image_h;
    s->W = prm->synth.image_w;
    for (int m = 0; m < s->n_mod; m++) {
        const char *name = v->names[m];
        int32_t n = v->hi[m] - v->lo[m];
        if (!strcmp(name, "text")) {
            s->kind[m] = KIND_TEXT;
            s->t_lo = v->lo[m] + vocab_n_boundary(v);
            s->t_n = n - vocab_n_boundary(v);
            s->mean_len[m] = prm->synth.text_span;
        } else if (!strcmp(name, "image")) {
            s->kind[m] = KIND_IMAGE;
            s->i_lo = v->lo[m];
            s->i_n = n;
            s->mean_len[m] = s->H * s->W;
        } else {
            s->kind[m] = KIND_SPEECH;
            s->s_lo = v->lo[m];
            s->s_n = n;
            s->mean_len[m] = prm->synth.speech_span;
        }
        s->cap[m] = s->kind[m] == KIND_IMAGE ? s->mean_len[m] : SPAN_CAP * s->mean_len[m];
        int64_t um = s->cap[m] + unit_extra(s, m) + 1;
        if (um > s->unit_max)
            s->unit_max = um;
    }
    if (prm->synth.patch_dim > 0) {
        s->P = prm->synth.patch_dim;
        s->caption_first = prm->synth.caption_first;
        s->t_steps = prm->synth.diffusion_steps;
        s->t_cap = prm->synth.t_cap_image_first;
        int32_t words = IMG_CLASSES + (int32_t)s->H + (int32_t)s->W;
        if (s->t_n < words + 2) {
            synth_destroy(s);
            return fail_null(err, errlen, "data.vocab_text: %d leaves fewer than the %d caption words (%d classes, image_h + image_w positions) plus 2 other text tokens",
                             prm->synth.vocab_text, words, IMG_CLASSES);
        }
        s->cap_lo = s->t_lo + s->t_n - words;
    }
    mix_probabilities(s, prm);

    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    s->r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r || !s->r)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    uint64_t h = mix64(prm->seed);
    gsl_rng_set(r, (unsigned long)(1 + mix64(h ^ 0x7AB1E5ull) % SEED_SPAN));
    s->base = base_of(prm->seed);
    build_tables(s, prm, r);
    if (s->P) {
        /* class prototypes: normal directions scaled to norm sqrt(P), drawn after the
         * tables so the token languages are those of the same seed without images */
        s->proto = xmalloc((size_t)IMG_CLASSES * (size_t)s->P * sizeof *s->proto);
        for (int k = 0; k < IMG_CLASSES; k++) {
            double *p = s->proto + k * s->P, nn = 0;
            for (int j = 0; j < s->P; j++) {
                p[j] = gsl_ran_gaussian_ziggurat(r, 1.0);
                nn += p[j] * p[j];
            }
            for (int j = 0; j < s->P; j++)
                p[j] *= sqrt((double)s->P / nn);
        }
        s->rn = gsl_rng_alloc(gsl_rng_mt19937);
        if (!s->rn)
            DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    }
    gsl_rng_free(r);
    return s;
}

int32_t synth_window_len(const synth_t *s) { return s->window; }

int synth_patch_dim(const synth_t *s) { return s->P; }

int synth_caption_len(void) { return CAPTION_LEN; }

double synth_image_bound(const synth_t *s)
{
    double mx = 0;
    for (int i = 0; i < IMG_CLASSES * s->P; i++)
        mx = fabs(s->proto[i]) > mx ? fabs(s->proto[i]) : mx;
    return IMG_BLOBS * mx;
}

int synth_blob_check(const synth_t *s, const int32_t *caption, const float *image, int *n_blobs)
{
    /* caption: the CAPTION_LEN words before the image's begin token; image: H x W
     * patches. A blob is right when, at its centre patch, the prototype with the
     * largest dot product is its class's. */
    int right = 0;
    *n_blobs = 0;
    for (int b = 0; b < IMG_BLOBS; b++) {
        int cls = caption[3 * b] - s->cap_lo, r = caption[3 * b + 1] - s->cap_lo - IMG_CLASSES,
            c = caption[3 * b + 2] - s->cap_lo - IMG_CLASSES - (int)s->H;
        if (cls < 0 || cls >= IMG_CLASSES || r < 0 || r >= s->H || c < 0 || c >= s->W)
            return -1; /* not a caption */
        const float *x = image + (r * s->W + c) * s->P;
        int best = 0;
        double best_dot = -INFINITY;
        for (int k = 0; k < IMG_CLASSES; k++) {
            double dot = 0;
            for (int j = 0; j < s->P; j++)
                dot += (double)x[j] * s->proto[k * s->P + j];
            if (dot > best_dot) {
                best_dot = dot;
                best = k;
            }
        }
        right += best == cls;
        (*n_blobs)++;
    }
    return right;
}

void synth_destroy(synth_t *s)
{
    if (!s)
        return;
    gsl_rng_free(s->r);
    if (s->rn)
        gsl_rng_free(s->rn);
    free(s->proto);
    if (s->zipf)
        gsl_ran_discrete_free(s->zipf);
    free(s->t_long.succ);
    free(s->t_bigram.succ);
    free(s->near);
    free(s->i_joint.succ);
    free(s->row);
    free(s->sp_next);
    free(s->sp_dur);
    free(s);
}
