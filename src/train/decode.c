/* Greedy decoding and error rates of the held-out aligned pairs (decode.h). A prompt
 * that leaves no room to generate (longer than seq_len - 1) decodes to nothing: its
 * whole reference counts as errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/decode.h"

int decode_bucket(int words) { return words <= 2 ? 0 : words <= 5 ? 1 : 2; }

int64_t edit_distance(const int32_t *a, int64_t na, const int32_t *b, int64_t nb)
{
    /* D[i][j] = min(D[i-1][j] + 1, D[i][j-1] + 1, D[i-1][j-1] + [a_i != b_j]), two rows */
    int64_t *prev = xmalloc((size_t)(nb + 1) * sizeof *prev), *cur = xmalloc((size_t)(nb + 1) * sizeof *cur);
    for (int64_t j = 0; j <= nb; j++)
        prev[j] = j;
    for (int64_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (int64_t j = 1; j <= nb; j++) {
            int64_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
        int64_t *t = prev;
        prev = cur;
        cur = t;
    }
    int64_t d = prev[nb];
    free(prev);
    free(cur);
    return d;
}

int64_t collapse_repeats(int32_t *x, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || x[k - 1] != x[i])
            x[k++] = x[i];
    return k;
}

double decode_rates(int n, const int64_t *edits, const int64_t *ref, const int *words, double *by_bucket)
{
    int64_t e[DECODE_BUCKETS + 1] = {0}, f[DECODE_BUCKETS + 1] = {0};
    for (int i = 0; i < n; i++) {
        int b = decode_bucket(words[i]);
        e[b] += edits[i];
        f[b] += ref[i];
        e[DECODE_BUCKETS] += edits[i];
        f[DECODE_BUCKETS] += ref[i];
    }
    for (int b = 0; b < DECODE_BUCKETS; b++)
        by_bucket[b] = f[b] ? (double)e[b] / (double)f[b] : NAN;
    return f[DECODE_BUCKETS] ? (double)e[DECODE_BUCKETS] / (double)f[DECODE_BUCKETS] : NAN;
}

/* Generate tokens of modality mod after seq[0 .. n) until end (not kept) or max_new
 * or seq_len; the argmax, ties to the lower id. Returns how many went into out. */
static int greedy(model_t *m, int32_t *seq, int n, int mod, int32_t end, int max_new, int seq_len, real *logits,
                  int32_t *out)
{
    int k = 0;
    while (n < seq_len && k < max_new) {
        model_next_logits(m, seq, n, mod, logits);
        int32_t best = m->vocab.lo[mod];
        for (int32_t j = m->vocab.lo[mod]; j < m->vocab.hi[mod]; j++)
            if (logits[j] > logits[best])
                best = j;
        if (best == end)
            break;
        out[k++] = best;
        seq[n++] = best;
    }
    return k;
}

void decode_evaluate(model_t *m, data_t *held, int seq_len, decode_result_t *r)
{
    aligned_tokens_t tk = aligned_tokens(&m->vocab);
    int n = r->n = data_heldout_pairs(held);
    int32_t *seq = xmalloc((size_t)(seq_len + 1) * sizeof *seq);
    int32_t *hyp = xmalloc((size_t)(seq_len + 1) * sizeof *hyp);
    real *logits = xmalloc((size_t)m->vocab.size * sizeof *logits);
    int *words = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *words);
    aligned_pair_t p;
    for (int i = 0; i < n; i++) {
        data_heldout_pair(held, i, &p);
        words[i] = p.n_text;
        /* ASR: <doc> <asr> speech <eos_s> -> words until <doc> */
        int len = 0, k = 0;
        seq[len++] = tk.text_end;
        seq[len++] = tk.asr;
        for (int j = 0; j < p.n_speech && len < seq_len; j++)
            seq[len++] = p.speech[j];
        if (len < seq_len)
            seq[len++] = tk.speech_eos;
        if (len < seq_len)
            k = greedy(m, seq, len, 0, tk.text_end, ALIGNED_MAX_WORDS + 2, seq_len, logits, hyp);
        r->asr_edits[i] = edit_distance(hyp, k, p.text, p.n_text);
        r->asr_ref[i] = p.n_text;
        /* TTS: <doc> words <doc> <tts> -> frames until <eos_s>, repeats collapsed */
        len = k = 0;
        seq[len++] = tk.text_end;
        for (int j = 0; j < p.n_text && len < seq_len; j++)
            seq[len++] = p.text[j];
        if (len < seq_len)
            seq[len++] = tk.text_end;
        if (len < seq_len)
            seq[len++] = tk.tts;
        if (len < seq_len)
            k = greedy(m, seq, len, 1, tk.speech_eos, ALIGNED_MAX_WORDS * ALIGNED_MAX_UNITS * ALIGNED_MAX_DUR,
                       seq_len, logits, hyp);
        k = (int)collapse_repeats(hyp, k);
        r->tts_edits[i] = edit_distance(hyp, k, p.clean, p.n_clean);
        r->tts_ref[i] = p.n_clean;
    }
    r->asr_wer = decode_rates(n, r->asr_edits, r->asr_ref, words, r->asr_by);
    r->tts_uer = decode_rates(n, r->tts_edits, r->tts_ref, words, r->tts_by);
    free(words);
    free(seq);
    free(hyp);
    free(logits);
}
