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
    /* the window being written: tokens at positions [0, window) are kept */
    int32_t *out;
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
static unsigned long window_seed(const synth_t *s, int split, int64_t k)
{
    uint64_t x = (uint64_t)s->base + (split == SPLIT_HELDOUT ? 0x80000000ull : 0) + (uint64_t)k;
    return (unsigned long)(1 + x % SEED_SPAN);
}

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

static int unit_extra(const synth_t *s, int m) { return s->kind[m] == KIND_TEXT ? 0 : 2; }

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
    case KIND_IMAGE: gen_image(s, m); break;
    default: gen_speech(s, m, L); break;
    }
}

void synth_window(synth_t *s, int split, int64_t k, int32_t *out)
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
    double qt = (prm->mix_share[text] - (2.0 + 1.0 / SPANS_PER_DOC) * nt) / (q[text] + 1.0 / SPANS_PER_DOC);
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
    mix_probabilities(s, prm);

    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    s->r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r || !s->r)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    uint64_t h = mix64(prm->seed);
    gsl_rng_set(r, (unsigned long)(1 + mix64(h ^ 0x7AB1E5ull) % SEED_SPAN));
    s->base = (uint32_t)(h >> 32);
    build_tables(s, prm, r);
    gsl_rng_free(r);
    return s;
}

int32_t synth_window_len(const synth_t *s) { return s->window; }

void synth_destroy(synth_t *s)
{
    if (!s)
        return;
    gsl_rng_free(s->r);
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
