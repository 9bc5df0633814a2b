/* Synthetic aligned speech and text (data.source = aligned; docs/data.md, "Aligned
 * speech and text"): a bigram text language over the ordinary text tokens, a fixed
 * random lexicon from each word to 1..3 speech units, speech as each unit held for
 * 1..3 frames with substitution noise, all fixed by data.aligned_seed; a pool of
 * (text, speech) pairs and a held-out set of them; windows of one stream: packed
 * text sentences, packed speech of unseen random text, or packed ASR and TTS tasks
 * over the pool's first data.aligned_fraction (the held-out split: the held-out set). */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { SUCC = 3 };                   /* successors per word of the bigram language */
#define SUCC_P 0.8                   /* P(next word is one of its successors) */

struct aligned {
    aligned_params_t p;
    aligned_tokens_t tok;
    int32_t w_lo, w_n;               /* ordinary text tokens: w_lo + [0, w_n) */
    int32_t s_lo, s_n;               /* speech units (the three markers excluded) */
    double *zipf_cdf;                /* (w_n) unigram */
    int32_t *succ;                   /* (w_n x SUCC) */
    int32_t *lex;                    /* (w_n x ALIGNED_MAX_UNITS) units, -1 past the end */
    int64_t used;                    /* pool pairs fusion training may use */
    int32_t window;
    uint64_t run_seed;
    gsl_rng *r;
};

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Seed the generator for one purpose and index (GSL's mt19937 keeps 32 bits, 0 -> 4357). */
enum purpose { P_TABLES, P_POOL, P_HELD, P_WINDOW };
static void reseed(aligned_t *a, uint64_t base, int purpose, int64_t k)
{
    uint64_t x = mix64(base ^ mix64(((uint64_t)purpose << 56) ^ (uint64_t)k));
    gsl_rng_set(a->r, (unsigned long)(1 + x % 0xFFFFFFFEull));
}

static int32_t draw_cdf(gsl_rng *r, const double *cdf, int32_t n)
{
    double u = gsl_rng_uniform(r);
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (u < cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* A sentence of 1..max_words words (joint ids): the first from the unigram, each next
 * one of the previous word's successors with probability SUCC_P, else the unigram. */
static int sentence(aligned_t *a, int32_t *out)
{
    int n = 1 + (int)gsl_rng_uniform_int(a->r, (unsigned long)a->p.max_words);
    int32_t w = draw_cdf(a->r, a->zipf_cdf, a->w_n);
    for (int i = 0; i < n; i++) {
        out[i] = a->w_lo + w;
        if (gsl_rng_uniform(a->r) < SUCC_P)
            w = a->succ[w * SUCC + (int32_t)gsl_rng_uniform_int(a->r, SUCC)];
        else
            w = draw_cdf(a->r, a->zipf_cdf, a->w_n);
    }
    return n;
}

/* The speech of n words: each lexicon unit held 1..ALIGNED_MAX_DUR frames, each
 * frame replaced by a uniform unit with probability speech_noise; the clean unit
 * sequence with repeats collapsed into clean (if not NULL). */
static void speak(aligned_t *a, const int32_t *text, int n, aligned_pair_t *out)
{
    out->n_speech = out->n_clean = 0;
    for (int i = 0; i < n; i++) {
        const int32_t *units = a->lex + (size_t)(text[i] - a->w_lo) * ALIGNED_MAX_UNITS;
        for (int u = 0; u < ALIGNED_MAX_UNITS && units[u] >= 0; u++) {
            int32_t unit = a->s_lo + units[u];
            if (out->n_clean == 0 || out->clean[out->n_clean - 1] != unit)
                out->clean[out->n_clean++] = unit;
            int dur = 1 + (int)gsl_rng_uniform_int(a->r, ALIGNED_MAX_DUR);
            for (int f = 0; f < dur; f++) {
                int32_t frame = unit;
                if (gsl_rng_uniform(a->r) < a->p.speech_noise)
                    frame = a->s_lo + (int32_t)gsl_rng_uniform_int(a->r, (unsigned long)a->s_n);
                out->speech[out->n_speech++] = frame;
            }
        }
    }
}

static void make_pair(aligned_t *a, int purpose, int64_t i, aligned_pair_t *out)
{
    reseed(a, a->p.seed, purpose, i);
    out->n_text = sentence(a, out->text);
    speak(a, out->text, out->n_text, out);
}

int aligned_heldout(const aligned_t *a) { return a->p.heldout; }

void aligned_pair(aligned_t *a, int i, aligned_pair_t *out) { make_pair(a, P_HELD, i, out); }

/* Append a sample's tokens; false once the window is full. */
static bool put(int32_t *out, int32_t *pos, int32_t window, const int32_t *tok, int n)
{
    for (int i = 0; i < n && *pos < window; i++)
        out[(*pos)++] = tok[i];
    return *pos < window;
}

/* One sample of the stream into the window (from the generator's current state). */
static bool sample(aligned_t *a, int split, int32_t *out, int32_t *pos)
{
    aligned_pair_t pr;
    const aligned_tokens_t *t = &a->tok;
    if (a->p.stream != ALIGNED_TASKS) {
        /* unimodal: unseen random text, or its speech (as an ASR sample's) */
        pr.n_text = sentence(a, pr.text);
        if (a->p.stream == ALIGNED_TEXT)
            return put(out, pos, a->window, pr.text, pr.n_text) && put(out, pos, a->window, &t->text_end, 1);
        speak(a, pr.text, pr.n_text, &pr);
        return put(out, pos, a->window, &t->asr, 1) && put(out, pos, a->window, pr.speech, pr.n_speech) &&
               put(out, pos, a->window, &t->speech_eos, 1);
    }
    bool asr = gsl_rng_uniform(a->r) < 0.5;
    int64_t j = (int64_t)gsl_rng_uniform_int(a->r, (unsigned long)(split == SPLIT_HELDOUT ? a->p.heldout : a->used));
    /* the pair's own generator; the window's resumes after it */
    unsigned long next = gsl_rng_get(a->r);
    make_pair(a, split == SPLIT_HELDOUT ? P_HELD : P_POOL, j, &pr);
    gsl_rng_set(a->r, next);
    if (asr) /* <asr> speech <eos_s> words <doc> */
        return put(out, pos, a->window, &t->asr, 1) && put(out, pos, a->window, pr.speech, pr.n_speech) &&
               put(out, pos, a->window, &t->speech_eos, 1) && put(out, pos, a->window, pr.text, pr.n_text) &&
               put(out, pos, a->window, &t->text_end, 1);
    /* words <doc> <tts> speech <eos_s> */
    return put(out, pos, a->window, pr.text, pr.n_text) && put(out, pos, a->window, &t->text_end, 1) &&
           put(out, pos, a->window, &t->tts, 1) && put(out, pos, a->window, pr.speech, pr.n_speech) &&
           put(out, pos, a->window, &t->speech_eos, 1);
}

void aligned_window(aligned_t *a, int split, int64_t k, int32_t *out)
{
    /* window k of a split: whole samples from its start, cut at the window's end */
    reseed(a, a->run_seed ^ (split == SPLIT_HELDOUT ? 0x5555555555555555ull : 0), P_WINDOW, k);
    int32_t pos = 0;
    out[pos++] = a->tok.text_end; /* every window starts with <doc>: a text row comes first */
    while (sample(a, split, out, &pos))
        ;
}

aligned_t *aligned_create(const data_params_t *p, const vocab_t *v, char *err, size_t errlen)
{
    if (v->n_modalities != 2 || strcmp(v->names[1], "speech")) {
        errorf(err, errlen, "data.source: aligned needs data.modalities = text,speech");
        return NULL;
    }
    aligned_t *a = xcalloc(1, sizeof *a);
    a->p = p->aligned;
    a->tok = aligned_tokens(v);
    a->w_lo = v->lo[0] + vocab_n_boundary(v);
    a->w_n = v->hi[0] - a->w_lo;
    a->s_lo = v->lo[1];
    a->s_n = v->hi[1] - v->lo[1] - 3;
    if (a->s_n < 2) {
        free(a);
        errorf(err, errlen, "data.vocab_speech: %d leaves fewer than 2 speech units after <asr>, <tts> and <eos>",
               v->hi[1] - v->lo[1]);
        return NULL;
    }
    a->window = p->seq_len + 1;
    a->run_seed = p->seed;
    a->used = (int64_t)ceil(p->aligned.fraction * p->aligned.pool);
    a->used = a->used < 1 ? 1 : a->used;
    a->r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!a->r)
        DIE(EXIT_FAULT, "gsl_rng_alloc failed");
    reseed(a, a->p.seed, P_TABLES, 0);
    /* unigram: Zipf with data.zipf over a random order of the words */
    a->zipf_cdf = xmalloc((size_t)a->w_n * sizeof *a->zipf_cdf);
    double tot = 0;
    for (int32_t i = 0; i < a->w_n; i++)
        tot += pow(i + 1.0, -p->synth.zipf);
    double acc = 0;
    for (int32_t i = 0; i < a->w_n; i++) {
        acc += pow(i + 1.0, -p->synth.zipf) / tot;
        a->zipf_cdf[i] = acc;
    }
    a->zipf_cdf[a->w_n - 1] = 1;
    a->succ = xmalloc((size_t)a->w_n * SUCC * sizeof *a->succ);
    for (int32_t i = 0; i < a->w_n * SUCC; i++)
        a->succ[i] = (int32_t)gsl_rng_uniform_int(a->r, (unsigned long)a->w_n);
    a->lex = xmalloc((size_t)a->w_n * ALIGNED_MAX_UNITS * sizeof *a->lex);
    for (int32_t w = 0; w < a->w_n; w++) {
        int n = 1 + (int)gsl_rng_uniform_int(a->r, ALIGNED_MAX_UNITS);
        for (int u = 0; u < ALIGNED_MAX_UNITS; u++)
            a->lex[w * ALIGNED_MAX_UNITS + u] = u < n ? (int32_t)gsl_rng_uniform_int(a->r, (unsigned long)a->s_n) : -1;
    }
    return a;
}

void aligned_destroy(aligned_t *a)
{
    if (!a)
        return;
    gsl_rng_free(a->r);
    free(a->zipf_cdf);
    free(a->succ);
    free(a->lex);
    free(a);
}
