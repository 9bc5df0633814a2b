/* `motscale data`: gen (the synthetic stream into a token file that data.source =
 * file reads back window for window), build (the real corpus, prepared by
 * scripts/corpus on Debian's python3), inspect (counts, spans, entropies, the image
 * reconstruction grid) and import-text (UTF-8 text as byte tokens). No MPI.
 * Format: docs/data.md. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "motscale/cli.h"
#include "motscale/common.h"
#include "motscale/config.h"
#include "motscale/data.h"
#include "motscale/optfile.h"
#include "motscale/tokfile.h"
#include "motscale/vocab.h"

static const char usage_data[] =
    "usage: motscale data VERB ...   (motscale data VERB --help for each)\n"
    "\n"
    "  gen          write the synthetic stream of a config into a token file\n"
    "  build        build the real corpus (images, fortunes, speech) of a corpus INI\n"
    "  inspect      check a token file; tokens, spans and entropies per modality\n"
    "  import-text  UTF-8 text files as byte-level text tokens in a token file\n"
    "\n"
    "The token file format is documented in docs/data.md.\n";

static const char usage_gen[] =
    "usage: motscale data gen CONFIG.ini [section.key=value ...] -o FILE.h5\n"
    "                         [--windows N] [--heldout-windows M]\n"
    "\n"
    "Writes train windows 0..N-1, then held-out windows 0..M-1, of the config's\n"
    "synthetic stream (model.seq_len + 1 tokens each) to FILE.h5. Training with\n"
    "data.source = file and data.path = FILE.h5 (same model.seq_len) then reads the\n"
    "same tokens for those windows; beyond them the file's split repeats.\n"
    "With model.kind = opt it writes an OPT triple file (docs/data.md): N and M count\n"
    "samples (default log.eval_tokens held-out), and the file holds every scene their\n"
    "draws and the retrieval pool read.\n"
    "\n"
    "  -o, --output FILE.h5   the token file to write (replaced if it exists)\n"
    "  --windows N            train windows; default train.steps x train.global_batch\n"
    "  --heldout-windows M    held-out windows; default ceil(log.eval_tokens / model.seq_len),\n"
    "                         what one evaluation reads\n";

static const char usage_build[] =
    "usage: motscale data build CORPUS.ini [corpus.key=value ...] -o FILE.h5\n"
    "       motscale data build --keys\n"
    "\n"
    "Builds the real corpus: Fashion-MNIST images as k-means patch codes, fortunes as\n"
    "byte-level BPE text, sentences spoken by espeak-ng as 25 Hz k-means units, in\n"
    "documents mixed to corpus.mix, split by source item; the tokenizers (merges,\n"
    "codebook, unit centroids) and the source item of every document are stored\n"
    "beside the tokens. The file is then checked as data.source = file checks it.\n"
    "Needs dataset-fashion-mnist, fortunes, espeak-ng, python3-sklearn (scripts/bootstrap).\n"
    "\n"
    "  -o, --output FILE.h5   the token file to write (replaced if it exists)\n"
    "  --keys                 every [corpus] key with its default and meaning\n"
    "\n"
    "Runs scripts/corpus/motscale_corpus.py of this source tree ($MOTSCALE_CORPUS\n"
    "overrides) with /usr/bin/python3 ($MOTSCALE_PYTHON overrides). docs/data.md has\n"
    "the keys and the file's extra datasets.\n";

static const char usage_inspect[] =
    "usage: motscale data inspect FILE.h5 [--png GRID.png [--png-images N]]\n"
    "\n"
    "Checks every span and id of a token file (as data.source = file does before\n"
    "training) and prints tokens per modality, span statistics, the unigram entropy\n"
    "of each modality and the entropy of a token given the previous one, in bits.\n"
    "Exit status 2 names the first problem.\n"
    "\n"
    "  --png GRID.png     (files of data build) held-out images beside their\n"
    "                     reconstruction from the codes and the stored codebook\n"
    "  --png-images N     images in the grid (default 32)\n";

static const char usage_import[] =
    "usage: motscale data import-text IN.txt [IN2.txt ...] -o FILE.h5 [--heldout-frac F]\n"
    "\n"
    "Each input file becomes one document: <doc> (id 0) then one token per byte\n"
    "(byte b is id 1 + b), one modality 'text' of 257 ids. Input must be UTF-8.\n"
    "\n"
    "  -o, --output FILE.h5   the token file to write (replaced if it exists)\n"
    "  --heldout-frac F       share of tokens, at the end, in the held-out split (default 0.1)\n"
    "\n"
    "Train on it with data.modalities = text and data.mix = 1.\n";

static bool is_output_flag(const char *a) { return !strcmp(a, "-o") || !strcmp(a, "--output"); }

static bool parse_count(const char *flag, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v <= 0) {
        fprintf(stderr, "motscale data: %s: expected a positive integer, got '%s'\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

#define BUILD_MAX_OVERRIDES 32

/* scripts/corpus/motscale_corpus.py of the tree this binary was built in
 * (BUILD/motscale -> ../scripts/corpus), unless $MOTSCALE_CORPUS names it. */
static bool corpus_script(char *out, size_t cap)
{
    const char *env = getenv("MOTSCALE_CORPUS");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len <= 0) {
            fprintf(stderr, "motscale data: cannot find this binary (/proc/self/exe): %s; set MOTSCALE_CORPUS\n",
                    strerror(errno));
            return false;
        }
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        *slash = '\0';
        snprintf(out, cap, "%s/../scripts/corpus/motscale_corpus.py", exe);
    }
    if (access(out, R_OK) != 0) {
        fprintf(stderr, "motscale data: corpus builder %s: %s; set MOTSCALE_CORPUS\n", out, strerror(errno));
        return false;
    }
    return true;
}

/* Run the corpus builder with args (NULL-terminated, after the script) and return
 * its exit status: 0, 2 (bad input, already reported in one line) or 1. */
static int run_corpus(const char *const *args)
{
    char script[PATH_MAX + 64];
    if (!corpus_script(script, sizeof script))
        return EXIT_FAULT;
    const char *py = getenv("MOTSCALE_PYTHON");
    py = py && *py ? py : "/usr/bin/python3";
    const char *argv[BUILD_MAX_OVERRIDES + 9] = {py, script};
    int n = 2;
    for (; args[n - 2] && n < BUILD_MAX_OVERRIDES + 8; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    fflush(stdout); /* our lines first, then the builder's */
    extern char **environ;
    pid_t pid;
    int rc = posix_spawn(&pid, py, NULL, NULL, (char *const *)argv, environ);
    if (rc) {
        fprintf(stderr, "motscale data: cannot run %s: %s (scripts/bootstrap installs it)\n", py, strerror(rc));
        return EXIT_FAULT;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "motscale data: waiting for %s: %s\n", py, strerror(errno));
            return EXIT_FAULT;
        }
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == EXIT_BADINPUT ? EXIT_BADINPUT : WEXITSTATUS(status) ? EXIT_FAULT : EXIT_OK;
    fprintf(stderr, "motscale data: %s %s ended by signal %d\n", py, script, WTERMSIG(status));
    return EXIT_FAULT;
}

static int data_build(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_build, stdout);
        return EXIT_OK;
    }
    if (argc == 1 && !strcmp(argv[0], "--keys")) {
        const char *args[] = {"keys", NULL};
        return run_corpus(args);
    }
    const char *ini = NULL, *out = NULL;
    /* "build", CORPUS.ini, overrides, -o FILE, --source TEXT, NULL */
    const char *args[BUILD_MAX_OVERRIDES + 7] = {"build"};
    int n = 1;
    for (int i = 0; i < argc; i++) {
        if (is_output_flag(argv[i]) && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "motscale data build: unknown or incomplete option '%s' (see --help)\n", argv[i]);
            return EXIT_BADINPUT;
        } else if (!ini) {
            ini = args[n++] = argv[i];
        } else if (strchr(argv[i], '=')) {
            if (n == BUILD_MAX_OVERRIDES + 2) {
                fprintf(stderr, "motscale data build: at most %d corpus.key=value overrides\n", BUILD_MAX_OVERRIDES);
                return EXIT_BADINPUT;
            }
            args[n++] = argv[i];
        } else {
            fprintf(stderr, "motscale data build: unexpected argument '%s' (see --help)\n", argv[i]);
            return EXIT_BADINPUT;
        }
    }
    if (!ini || !out) {
        fprintf(stderr, "motscale data build: needs CORPUS.ini and -o FILE.h5 (see --help)\n");
        return EXIT_BADINPUT;
    }
    args[n++] = "-o";
    args[n++] = out;
    args[n++] = "--source";
    args[n++] = "motscale data build " MOTSCALE_VERSION " (" MOTSCALE_GIT_COMMIT ")";
    args[n] = NULL;
    int rc = run_corpus(args);
    if (rc != EXIT_OK)
        return rc;
    /* what the builder wrote must pass the reader's own validation */
    tokfile_stats_t st;
    char err[2048];
    if (!tokfile_check(out, &st, false, err, sizeof err)) {
        fprintf(stderr, "motscale data build: the built file fails validation: %s\n", err);
        return EXIT_FAULT;
    }
    printf("%s: %lld tokens, %lld spans, vocabulary of %d ids; held-out from token %lld\n", out,
           (long long)st.n_tokens, (long long)st.n_spans, st.v.size, (long long)st.heldout_start);
    return EXIT_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Entropy of a token given the previous one, per modality, over adjacent pairs of
 * tokens of that modality: the plug-in H(prev, next) - H(prev) (biased low when
 * pairs are sparse). h[m] is NaN for a modality with no such pair. */
static void next_token_entropy(const vocab_t *v, const int32_t *tok, int64_t n, double *h)
{
    uint64_t *key = xmalloc((size_t)(n > 1 ? n : 1) * sizeof *key);
    int64_t k = 0;
    for (int64_t i = 1; i < n; i++) {
        int m = vocab_modality(v, tok[i]);
        if (m == vocab_modality(v, tok[i - 1]))
            key[k++] = (uint64_t)tok[i - 1] * (uint64_t)v->size + (uint64_t)tok[i];
    }
    qsort(key, (size_t)k, sizeof *key, cmp_u64);
    /* sum c log2 c over pairs and over prev (runs of one prev are contiguous) */
    double joint[MAX_MODALITIES] = {0}, prev[MAX_MODALITIES] = {0}, total[MAX_MODALITIES] = {0};
    for (int64_t i = 0, j; i < k; i = j) {
        uint64_t p = key[i] / (uint64_t)v->size;
        int m = vocab_modality(v, (int32_t)p);
        int64_t pc = 0;
        for (j = i; j < k && key[j] / (uint64_t)v->size == p;) {
            int64_t r = j;
            while (r < k && key[r] == key[j])
                r++;
            joint[m] += (double)(r - j) * log2((double)(r - j));
            pc += r - j;
            j = r;
        }
        prev[m] += (double)pc * log2((double)pc);
        total[m] += (double)pc;
    }
    /* H(A) = log2 N - (1/N) sum c log2 c, so H(prev, next) - H(prev) = (prev - joint) / N */
    for (int m = 0; m < v->n_modalities; m++)
        h[m] = total[m] > 0 ? (prev[m] - joint[m]) / total[m] : NAN;
    free(key);
}

/* model.kind = opt: the scenes the run reads, into an OPT triple file. n_train and
 * n_held are samples (0: those of the config's run: train.steps x
 * train.global_batch and log.eval_tokens, as a window of OPT is one sample). */
static int data_gen_opt(const config_t *cfg, const char *ini, const char *out, int64_t n_train, int64_t n_held,
                        char **over, int rc)
{
    char err[2048];
    if (!opt_params_check(&cfg->data.opt, err, sizeof err)) {
        fprintf(stderr, "motscale data gen: %s: %s\n", ini, err);
        free(over);
        return rc;
    }
    int64_t n[2] = {n_train ? n_train : cfg->steps * cfg->global_batch, n_held ? n_held : cfg->eval_tokens};
    char *ini_text = config_to_ini(cfg);
    bool ok = optfile_write(out, &cfg->data.opt, n, cfg->retrieval_pool, ini_text, err, sizeof err);
    free(ini_text);
    free(over);
    if (!ok) {
        fprintf(stderr, "motscale data gen: %s\n", err);
        return EXIT_FAULT;
    }
    printf("%s: OPT triples for %lld train + %lld held-out samples (and a retrieval pool of %d) (seed %llu)\n", out,
           (long long)n[0], (long long)n[1], cfg->retrieval_pool, (unsigned long long)cfg->seed);
    return EXIT_OK;
}

static int data_gen(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_gen, stdout);
        return EXIT_OK;
    }
    const char *ini = NULL, *out = NULL;
    int64_t n_train = 0, n_held = 0;
    char **over = xmalloc((size_t)(argc > 0 ? argc : 1) * sizeof *over);
    int n_over = 0, rc = EXIT_BADINPUT;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_next = i + 1 < argc;
        if (is_output_flag(a) && has_next) {
            out = argv[++i];
        } else if (!strcmp(a, "--windows") && has_next) {
            if (!parse_count(a, argv[++i], &n_train))
                goto done;
        } else if (!strcmp(a, "--heldout-windows") && has_next) {
            if (!parse_count(a, argv[++i], &n_held))
                goto done;
        } else if (a[0] == '-') {
            fprintf(stderr, "motscale data gen: unknown or incomplete option '%s' (see --help)\n", a);
            goto done;
        } else if (!ini) {
            ini = a;
        } else if (strchr(a, '=')) {
            over[n_over++] = argv[i];
        } else {
            fprintf(stderr, "motscale data gen: unexpected argument '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (!ini || !out) {
        fprintf(stderr, "motscale data gen: needs CONFIG.ini and -o FILE.h5 (see --help)\n");
        goto done;
    }
    static config_t cfg;
    char err[2048];
    if (!config_load(&cfg, ini, n_over, over, err, sizeof err)) {
        fprintf(stderr, "motscale data gen: %s\n", err);
        goto done;
    }
    if (cfg.data.source != DATA_SYNTHETIC) {
        fprintf(stderr, "motscale data gen: %s: data.source must be synthetic to generate a stream\n", ini);
        goto done;
    }
    if (cfg.model.kind == MODEL_OPT)
        return data_gen_opt(&cfg, ini, out, n_train, n_held, over, rc);
    if (!n_train)
        n_train = cfg.steps * cfg.global_batch;
    if (!n_held)
        n_held = (cfg.eval_tokens + cfg.model.seq_len - 1) / cfg.model.seq_len;
    vocab_t v;
    data_t *split[2] = {NULL, NULL};
    if (!data_vocab(&v, &cfg.data, err, sizeof err) ||
        !(split[SPLIT_TRAIN] = data_open(&cfg.data, &v, SPLIT_TRAIN, err, sizeof err)) ||
        !(split[SPLIT_HELDOUT] = data_open(&cfg.data, &v, SPLIT_HELDOUT, err, sizeof err))) {
        fprintf(stderr, "motscale data gen: %s\n", err);
        data_close(split[SPLIT_TRAIN]);
        goto done;
    }
    rc = EXIT_FAULT;
    int32_t window = cfg.model.seq_len + 1;
    tokfile_writer_t *w = tokfile_create(out, &v, err, sizeof err);
    char *ini_text = config_to_ini(&cfg);
    int32_t *buf = xmalloc((size_t)window * sizeof *buf);
    /* continuous images (model.image_objective = diffusion): x0 and the kinds too */
    int P = cfg.data.synth.patch_dim;
    data_images_t im = {0};
    if (P) {
        im.x0 = xmalloc((size_t)window * (size_t)P * sizeof *im.x0);
        im.eps = xmalloc((size_t)window * (size_t)P * sizeof *im.eps);
        im.t = xmalloc((size_t)window * sizeof *im.t);
        im.kind = xmalloc((size_t)window);
    }
    bool ok = w != NULL;
    if (ok) {
        tokfile_set_window(w, window);
        tokfile_set_heldout(w, n_train * window);
        ok = tokfile_set_note(w, "source", "motscale data gen " MOTSCALE_VERSION, err, sizeof err) &&
             tokfile_set_note(w, "config", ini_text, err, sizeof err);
        int64_t count[2] = {n_train, n_held};
        for (int s = 0; s < 2 && ok; s++)
            for (int64_t k = 0; k < count[s] && ok; k++) {
                if (P)
                    data_read_images(split[s], k, 1, buf, &im);
                else
                    data_read(split[s], k, 1, buf);
                ok = tokfile_append(w, buf, window, err, sizeof err) &&
                     (!P || tokfile_append_images(w, im.x0, im.kind, window, P, err, sizeof err));
            }
        ok = tokfile_close(w, err, sizeof err) && ok;
    }
    if (ok) {
        printf("%s: %lld train + %lld held-out windows of %d tokens (seed %llu)\n", out, (long long)n_train,
               (long long)n_held, window, (unsigned long long)cfg.seed);
        rc = EXIT_OK;
    } else {
        fprintf(stderr, "motscale data gen: %s\n", err);
    }
    free(buf);
    free(im.x0);
    free(im.eps);
    free(im.t);
    free(im.kind);
    free(ini_text);
    data_close(split[SPLIT_TRAIN]);
    data_close(split[SPLIT_HELDOUT]);
done:
    free(over);
    return rc;
}

static int data_inspect(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_inspect, stdout);
        return EXIT_OK;
    }
    const char *path = NULL, *png = NULL, *png_n = "32";
    for (int i = 0; i < argc; i++) {
        int64_t count;
        if (!strcmp(argv[i], "--png") && i + 1 < argc) {
            png = argv[++i];
        } else if (!strcmp(argv[i], "--png-images") && i + 1 < argc) {
            png_n = argv[++i];
            if (!parse_count("--png-images", png_n, &count))
                return EXIT_BADINPUT;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "motscale data inspect: unexpected argument '%s' (see --help)\n", argv[i]);
            return EXIT_BADINPUT;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "motscale data inspect: needs exactly one FILE.h5 (see --help)\n");
        return EXIT_BADINPUT;
    }
    tokfile_stats_t st = {0}; /* a failed check may leave it untouched: id_count stays NULL */
    char err[2048];
    if (optfile_is(path) == 1) {
        char line[1024];
        if (!optfile_summary(path, line, sizeof line, err, sizeof err)) {
            fprintf(stderr, "motscale data inspect: %s\n", err);
            return EXIT_BADINPUT;
        }
        puts(line);
        return EXIT_OK;
    }
    int64_t n_tok = 0;
    int32_t *tok = NULL;
    if (!tokfile_check(path, &st, true, err, sizeof err) || !(tok = tokfile_read_tokens(path, &n_tok, err, sizeof err))) {
        fprintf(stderr, "motscale data inspect: %s\n", err);
        free(st.id_count);
        return EXIT_BADINPUT;
    }
    double h_next[MAX_MODALITIES];
    next_token_entropy(&st.v, tok, n_tok, h_next);
    free(tok);
    const vocab_t *v = &st.v;
    printf("%s: %lld tokens (uint%d), %lld spans, vocabulary of %d ids", path, (long long)st.n_tokens,
           8 * st.token_bytes, (long long)st.n_spans, v->size);
    if (st.window)
        printf(", written in windows of %d", st.window);
    if (st.patch_dim)
        printf(", continuous images of %d floats a patch (/patches, /kinds)", st.patch_dim);
    printf("\nsplit: train /tokens[0, %lld) = %lld tokens, held-out /tokens[%lld, %lld) = %lld tokens\n\n",
           (long long)st.heldout_start, (long long)st.heldout_start, (long long)st.heldout_start,
           (long long)st.n_tokens, (long long)(st.n_tokens - st.heldout_start));
    printf("%-8s %-13s %12s %7s %9s %9s %6s %7s %12s %12s %12s\n", "modality", "ids", "tokens", "share", "spans",
           "mean_span", "min", "max", "H_bits", "H_next_bits", "log2_ids");
    for (int m = 0; m < v->n_modalities; m++) {
        /* unigram entropy of the ids seen in this modality's range */
        double h = 0;
        for (int32_t id = v->lo[m]; id < v->hi[m]; id++)
            if (st.id_count[id] > 0) {
                double p = (double)st.id_count[id] / (double)st.tokens[m];
                h -= p * log2(p);
            }
        char range[32];
        snprintf(range, sizeof range, "[%d, %d)", v->lo[m], v->hi[m]);
        printf("%-8s %-13s %12lld %7.4f %9lld %9.2f %6lld %7lld %12.4f %12.4f %12.4f\n", v->names[m], range,
               (long long)st.tokens[m], (double)st.tokens[m] / (double)st.n_tokens, (long long)st.spans[m],
               st.spans[m] ? (double)st.tokens[m] / (double)st.spans[m] : 0.0, (long long)st.span_min[m],
               (long long)st.span_max[m], h, h_next[m], log2((double)(v->hi[m] - v->lo[m])));
    }
    printf("\nspans are maximal runs of one modality inside a window (gen) or document\n"
           "(import-text, build); boundary tokens are text. H_next_bits: entropy of a token\n"
           "given the previous one when both are of the modality (plug-in estimate over the\n"
           "whole file, biased low when pairs are sparse).\n");
    free(st.id_count);
    if (png) {
        const char *args[] = {"png", path, png, png_n, NULL};
        return run_corpus(args);
    }
    return EXIT_OK;
}

/* Offset of the first byte that breaks UTF-8, or -1 when all of it is valid: RFC
 * 3629's well-formed sequences, so no overlong forms, no surrogates (U+D800..DFFF)
 * and nothing above U+10FFFF. */
static int64_t utf8_invalid_at(const unsigned char *s, int64_t n)
{
    int64_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4) || i + len > n)
            return i;
        for (int j = 1; j < len; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return i;
        /* the second byte's allowed range for the lead bytes that limit it */
        unsigned c1 = len > 1 ? s[i + 1] : 0x80;
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
            (c == 0xF4 && c1 > 0x8F))
            return i;
        i += len;
    }
    return -1;
}

static unsigned char *slurp(const char *path, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "motscale data import-text: %s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = xmalloc(cap);
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        cap *= 2;
        unsigned char *nb = realloc(buf, cap);
        if (!nb)
            DIE(EXIT_FAULT, "out of memory reading %s", path);
        buf = nb;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "motscale data import-text: %s: read error\n", path);
        free(buf);
        return NULL;
    }
    *n = (int64_t)len;
    return buf;
}

static int data_import_text(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_import, stdout);
        return EXIT_OK;
    }
    const char *out = NULL;
    double frac = 0.1;
    const char **in = xmalloc((size_t)(argc > 0 ? argc : 1) * sizeof *in);
    int n_in = 0, rc = EXIT_BADINPUT;
    for (int i = 0; i < argc; i++) {
        if (is_output_flag(argv[i]) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--heldout-frac") && i + 1 < argc) {
            char *end;
            frac = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(frac >= 0 && frac < 1)) {
                fprintf(stderr, "motscale data import-text: --heldout-frac: expected a number in [0, 1), got '%s'\n", argv[i]);
                goto done;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "motscale data import-text: unknown or incomplete option '%s' (see --help)\n", argv[i]);
            goto done;
        } else {
            in[n_in++] = argv[i];
        }
    }
    if (!n_in || !out) {
        fprintf(stderr, "motscale data import-text: needs IN.txt and -o FILE.h5 (see --help)\n");
        goto done;
    }
    vocab_t v;
    char names[1][CFG_NAME_LEN] = {"text"};
    int64_t sizes[1] = {1 + 256};
    char err[2048];
    if (!vocab_from_sizes(&v, 1, names, sizes, err, sizeof err))
        DIE(EXIT_FAULT, "byte vocabulary: %s", err);
    /* read and check everything before writing, so bad input leaves no file */
    unsigned char **text = xcalloc((size_t)n_in, sizeof *text);
    int64_t *len = xcalloc((size_t)n_in, sizeof *len), total = 0, longest = 0;
    bool ok = true;
    for (int i = 0; i < n_in && ok; i++) {
        ok = (text[i] = slurp(in[i], &len[i])) != NULL;
        int64_t bad = ok ? utf8_invalid_at(text[i], len[i]) : -1;
        if (bad >= 0) {
            fprintf(stderr, "motscale data import-text: %s: byte offset %lld: not valid UTF-8 (byte 0x%02x)\n", in[i],
                    (long long)bad, text[i][bad]);
            ok = false;
        }
        total += len[i] + 1;
        longest = len[i] + 1 > longest ? len[i] + 1 : longest;
    }
    if (ok) {
        rc = EXIT_FAULT;
        int32_t *tok = xmalloc((size_t)longest * sizeof *tok);
        tokfile_writer_t *w = tokfile_create(out, &v, err, sizeof err);
        ok = w != NULL;
        if (ok) {
            tokfile_set_heldout(w, total - (int64_t)floor((double)total * frac));
            ok = tokfile_set_note(w, "source", "motscale data import-text " MOTSCALE_VERSION, err, sizeof err);
            for (int i = 0; i < n_in && ok; i++) {
                tok[0] = vocab_doc_token(&v);
                for (int64_t j = 0; j < len[i]; j++)
                    tok[1 + j] = vocab_n_boundary(&v) + text[i][j];
                ok = tokfile_append(w, tok, len[i] + 1, err, sizeof err);
            }
            ok = tokfile_close(w, err, sizeof err) && ok;
        }
        if (ok) {
            printf("%s: %d document(s), %lld tokens\n", out, n_in, (long long)total);
            rc = EXIT_OK;
        } else {
            fprintf(stderr, "motscale data import-text: %s\n", err);
        }
        free(tok);
    }
    for (int i = 0; i < n_in; i++)
        free(text[i]);
    free(text);
    free(len);
done:
    free(in);
    return rc;
}

int cmd_data(int argc, char **argv)
{
    if (argc < 1) {
        fputs(usage_data, stderr);
        return EXIT_BADINPUT;
    }
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
        fputs(usage_data, stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[0], "gen"))
        return data_gen(argc - 1, argv + 1);
    if (!strcmp(argv[0], "build"))
        return data_build(argc - 1, argv + 1);
    if (!strcmp(argv[0], "inspect"))
        return data_inspect(argc - 1, argv + 1);
    if (!strcmp(argv[0], "import-text"))
        return data_import_text(argc - 1, argv + 1);
    fprintf(stderr, "motscale data: unknown verb '%s' (gen, build, inspect, import-text)\n", argv[0]);
    return EXIT_BADINPUT;
}
