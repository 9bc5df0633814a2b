/* INI configuration: one table of keys (type, default, description) drives parsing
 * with inih, command-line overrides, validation, the resolved INI text written into
 * every run record, and the key list in docs/config.md. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/config.h"

enum ktype { K_INT, K_I64, K_U64, K_DBL, K_STR, K_BOOL, K_ENUM };

typedef struct key {
    const char *section, *name;
    enum ktype type;
    size_t off, size;     /* field offset and (for strings) capacity */
    const char *def;      /* default, as text */
    const char *enums;    /* K_ENUM: "a|b|c", value = index */
    const char *doc;
} key_t_;

#define F(field) offsetof(config_t, field), sizeof(((config_t *)0)->field)
static const key_t_ keys[] = {
    {"run", "name", K_STR, F(name), "run", NULL, "run name; the run directory is out_dir/name"},
    {"run", "experiment", K_STR, F(experiment), "", NULL, "experiment the run belongs to (set by sweeps; groups runs in reports)"},
    {"run", "out_dir", K_STR, F(out_dir), "results", NULL, "directory that holds run directories"},
    {"run", "seed", K_U64, F(seed), "1", NULL, "seed of initialisation and data"},
    {"model", "kind", K_ENUM, F(model.kind), "dense", "dense|mot|towers", "dense: one tower; mot: one tower per modality; towers: groups from model.towers"},
    {"model", "towers", K_STR, F(towers), "", NULL, "with kind=towers: modality groups, e.g. 'text,image | speech'"},
    {"model", "size", K_STR, F(size), "", NULL, "preset xs|s|m|l|xl for d_model, n_layers, n_heads, d_ff (docs/config.md); empty: use the keys"},
    {"model", "d_model", K_INT, F(model.d_model), "64", NULL, "model width"},
    {"model", "n_layers", K_INT, F(model.n_layers), "2", NULL, "transformer blocks"},
    {"model", "n_heads", K_INT, F(model.n_heads), "4", NULL, "attention heads (head dim = d_model / n_heads, must be even for RoPE)"},
    {"model", "d_ff", K_INT, F(model.d_ff), "256", NULL, "SwiGLU hidden width"},
    {"model", "seq_len", K_INT, F(model.seq_len), "64", NULL, "tokens per training sequence"},
    {"model", "norm", K_ENUM, F(model.norm), "swin", "swin|pre", "norm placement: swin (norm after attention/FFN, Chameleon) or pre"},
    {"model", "qk_norm", K_BOOL, F(model.qk_norm), "false", NULL, "per-tower RMSNorm of queries and keys, per head"},
    {"model", "init_same_towers", K_BOOL, F(init.same_towers), "false", NULL, "start every tower from the same draw (MoT from dense weights)"},
    {"model", "rope_theta", K_DBL, F(model.rope_theta), "10000", NULL, "RoPE base"},
    {"model", "init_std", K_DBL, F(init.std), "0.02", NULL, "std of the normal init; output projections use init_std/sqrt(2 n_layers)"},
    {"model", "norm_eps", K_DBL, F(model.norm_eps), "1e-5", NULL, "RMSNorm epsilon"},
    {"data", "source", K_ENUM, F(data.source), "synthetic", "synthetic|file", "synthetic generators or an HDF5 token file"},
    {"data", "path", K_STR, F(data.path), "", NULL, "token file for source=file"},
    {"data", "modalities", K_STR, F(modalities), "text,image", NULL, "modalities in vocabulary order, from text, image, speech"},
    {"data", "mix", K_STR, F(mix), "1,1", NULL, "token share per modality, e.g. 6,6,1"},
    {"data", "vocab_text", K_INT, F(data.synth.vocab_text), "96", NULL, "text vocabulary size, boundary tokens included"},
    {"data", "vocab_image", K_INT, F(data.synth.vocab_image), "64", NULL, "image code-book size"},
    {"data", "vocab_speech", K_INT, F(data.synth.vocab_speech), "32", NULL, "speech unit count"},
    {"data", "image_h", K_INT, F(data.synth.image_h), "8", NULL, "image grid height (span length = image_h x image_w)"},
    {"data", "image_w", K_INT, F(data.synth.image_w), "8", NULL, "image grid width"},
    {"data", "text_span", K_INT, F(data.synth.text_span), "24", NULL, "mean text span length"},
    {"data", "speech_span", K_INT, F(data.synth.speech_span), "32", NULL, "mean speech span length"},
    {"data", "ngram", K_INT, F(data.synth.ngram), "3", NULL, "text n-gram order"},
    {"data", "zipf", K_DBL, F(data.synth.zipf), "1.1", NULL, "text Zipf exponent"},
    {"train", "steps", K_I64, F(steps), "300", NULL, "optimizer steps"},
    {"train", "global_batch", K_INT, F(global_batch), "8", NULL, "sequences per step, over all data-parallel ranks"},
    {"train", "micro_batch", K_INT, F(micro_batch), "0", NULL, "sequences per forward/backward; 0 = global_batch / dp"},
    {"train", "lr", K_DBL, F(sched.lr), "3e-3", NULL, "peak learning rate"},
    {"train", "lr_min", K_DBL, F(sched.lr_min), "3e-4", NULL, "floor of the cosine decay"},
    {"train", "warmup", K_I64, F(sched.warmup), "20", NULL, "linear warm-up steps"},
    {"train", "beta1", K_DBL, F(adamw.beta1), "0.9", NULL, "AdamW beta1"},
    {"train", "beta2", K_DBL, F(adamw.beta2), "0.95", NULL, "AdamW beta2"},
    {"train", "adam_eps", K_DBL, F(adamw.eps), "1e-8", NULL, "AdamW epsilon"},
    {"train", "weight_decay", K_DBL, F(adamw.weight_decay), "0.1", NULL, "decoupled weight decay, matrices only"},
    {"train", "grad_clip", K_DBL, F(grad_clip), "1.0", NULL, "global gradient-norm clip; 0 = off"},
    {"train", "checkpoint_every", K_I64, F(checkpoint_every), "0", NULL, "steps between checkpoints; 0 = only at the end and on signals"},
    {"train", "keep_checkpoints", K_INT, F(keep_checkpoints), "2", NULL, "checkpoints kept"},
    {"train", "resume", K_ENUM, F(resume), "no", "no|auto", "auto: continue an unfinished run in the run directory"},
    {"train", "stop_at_loss_of", K_STR, F(stop_at_loss_of), "", NULL, "baseline run.h5: stop once every modality reaches its final loss"},
    {"parallel", "tp", K_INT, F(tp), "1", NULL, "tensor-parallel degree"},
    {"parallel", "dp", K_INT, F(dp), "0", NULL, "data-parallel degree; 0 or auto = world size / tp"},
    {"parallel", "tp_backend", K_ENUM, F(model.tp_backend), "megatron", "megatron|scalapack", "1D Megatron-style or 2D ScaLAPACK tensor parallelism"},
    {"parallel", "bucket_mb", K_DBL, F(bucket_mb), "4", NULL, "gradient all-reduce bucket size in MiB"},
    {"parallel", "blas_threads", K_INT, F(blas_threads), "0", NULL, "BLAS threads per rank; 0 = OPENBLAS_NUM_THREADS or OMP_NUM_THREADS if set, else SLURM_CPUS_PER_TASK (--cpus-per-task), else 1"},
    {"log", "every", K_I64, F(log_every), "10", NULL, "steps between logged rows and progress lines"},
    {"log", "eval_every", K_I64, F(eval_every), "50", NULL, "steps between held-out evaluations; 0 = off"},
    {"log", "eval_tokens", K_I64, F(eval_tokens), "4096", NULL, "held-out tokens per evaluation"},
    {"log", "flush_every", K_I64, F(flush_every), "50", NULL, "steps between run-file flushes"},
    {"log", "peak_flops", K_DBL, F(peak_flops), "0", NULL, "per-rank peak FLOP/s for MFU; 0 = measure once and cache"},
    {"log", "quiet", K_BOOL, F(quiet), "false", NULL, "no progress lines"},
};
#undef F
enum { NKEYS = sizeof keys / sizeof keys[0] };
_Static_assert(NKEYS <= 256, "set_mask and key_origin hold 256 keys");

static int key_index(const char *section, const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
            return i;
    return -1;
}

bool config_has_key(const char *section, const char *key) { return key_index(section, key) >= 0; }

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static bool parse_key(config_t *cfg, int i, const char *value, char *err, size_t errlen)
{
    const key_t_ *k = &keys[i];
    char *field = (char *)cfg + k->off;
    char *end = NULL;
    errno = 0;
    switch (k->type) {
    case K_INT: {
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || v < -2147483647L || v > 2147483647L)
            return errorf(err, errlen, "not an integer: '%s'", value);
        *(int *)field = (int)v;
        break;
    }
    case K_I64: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno)
            return errorf(err, errlen, "not an integer: '%s'", value);
        *(int64_t *)field = v;
        break;
    }
    case K_U64: {
        if (value[0] == '-')
            return errorf(err, errlen, "not a non-negative integer: '%s'", value);
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end || errno)
            return errorf(err, errlen, "not a non-negative integer: '%s'", value);
        *(uint64_t *)field = v;
        break;
    }
    case K_DBL: {
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v))
            return errorf(err, errlen, "not a number: '%s'", value);
        *(double *)field = v;
        break;
    }
    case K_STR:
        if (strlen(value) >= k->size)
            return errorf(err, errlen, "longer than %zu characters", k->size - 1);
        strcpy(field, value);
        break;
    case K_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
            *(bool *)field = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
            *(bool *)field = false;
        else
            return errorf(err, errlen, "not a boolean (true|false): '%s'", value);
        break;
    case K_ENUM: {
        int idx = 0;
        const char *p = k->enums;
        size_t n = strlen(value);
        while (p && *p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && !strncmp(p, value, n)) {
                *(int *)field = idx;
                return true;
            }
            idx++;
            p = bar ? bar + 1 : NULL;
        }
        return errorf(err, errlen, "'%s' is not one of %s", value, k->enums);
    }
    }
    return true;
}

bool config_set(config_t *cfg, const char *section, const char *key, const char *value,
                char *err, size_t errlen)
{
    int i = key_index(section, key);
    if (i < 0)
        return errorf(err, errlen, "unknown key %s.%s", section, key);
    char why[512];
    const char *v = value;
    /* parallel.dp accepts "auto" as 0 */
    if (!strcmp(section, "parallel") && !strcmp(key, "dp") && !strcmp(value, "auto"))
        v = "0";
    if (!parse_key(cfg, i, v, why, sizeof why))
        return errorf(err, errlen, "%s.%s: %s", section, key, why);
    cfg->set_mask[i / 64] |= 1ull << (i % 64);
    return true;
}

static bool is_set(const config_t *cfg, const char *section, const char *key)
{
    int i = key_index(section, key);
    return i >= 0 && (cfg->set_mask[i / 64] >> (i % 64) & 1);
}

struct parse_ctx {
    config_t *cfg;
    char *err;
    size_t errlen;
    bool failed;
    FILE *file;
    int line;  /* lines read so far: inih calls the handler right after reading one */
};

/* inih's line reader, counting lines so each key's origin can be named later. */
static char *config_read_line(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    c->line++;
    return fgets(str, num, c->file);
}

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    if (c->failed)
        return 0;
    if (!strcmp(section, "sweep"))  /* expanded by `motscale sweep`, not a run key */
        return 1;
    if (!config_set(c->cfg, section, name, value, c->err, c->errlen)) {
        c->failed = true;
        return 0;
    }
    c->cfg->key_origin[key_index(section, name)] = c->line;
    return 1;
}

/* "FILE:LINE" or "override 'x'" for the key a resolve message starts with
 * ("section.key: ..."), or just the file when the key was never set. */
static void origin_of(const config_t *cfg, const char *file, const char *why, int n_over,
                      char *const *over, char *out, size_t len)
{
    /* Of the keys the message names, the one the user set last: an override
     * before any file line, else the latest line ("a is not divisible by b" after
     * only b was changed names b). */
    int o = 0;
    for (const char *p = why; *p; p++) {
        char sec[64] = "", key[64] = "";
        if ((p == why || !isalnum((unsigned char)p[-1])) &&
            sscanf(p, "%63[a-z].%63[a-z_0-9]", sec, key) == 2) {
            int i = key_index(sec, key);
            int k = i >= 0 ? cfg->key_origin[i] : 0;
            if ((k < 0 && (o >= 0 || k < o)) || (k > 0 && o >= 0 && k > o))
                o = k;
        }
    }
    if (o > 0)
        snprintf(out, len, "%s:%d", file, o);
    else if (o < 0 && -o - 1 < n_over)
        snprintf(out, len, "override '%s'", over[-o - 1]);
    else
        snprintf(out, len, "%s", file);
}

static void set_defaults(config_t *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < NKEYS; i++)
        if (!parse_key(cfg, i, keys[i].def, err, sizeof err))
            DIE(EXIT_FAULT, "bad built-in default for %s.%s: %s", keys[i].section, keys[i].name, err);
}

bool config_load(config_t *cfg, const char *file, int n_over, char *const *over,
                 char *err, size_t errlen)
{
    set_defaults(cfg);
    if (file) {
        if (strlen(file) >= sizeof cfg->file)
            return errorf(err, errlen, "%s: path too long", file);
        strcpy(cfg->file, file);
        FILE *f = fopen(file, "r");
        if (!f)
            return errorf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
        char why[768] = "";
        struct parse_ctx c = {cfg, why, sizeof why, false, f, 0};
        int line = ini_parse_stream(config_read_line, &c, config_ini_line, &c);
        fclose(f);
        if (line != 0) {
            if (line < 0)
                return errorf(err, errlen, "%s: cannot read", file);
            if (!c.failed)
                return errorf(err, errlen, "%s:%d: malformed line (expected 'key = value' or '[section]')", file, line);
            return errorf(err, errlen, "%s:%d: %s", file, line, why);
        }
    }
    for (int i = 0; i < n_over; i++) {
        char buf[CFG_PATH_LEN + 128];
        if (strlen(over[i]) >= sizeof buf)
            return errorf(err, errlen, "override '%.40s...': too long", over[i]);
        strcpy(buf, over[i]);
        char *eq = strchr(buf, '=');
        char *dot = strchr(buf, '.');
        if (!eq || !dot || dot > eq)
            return errorf(err, errlen, "override '%s': expected section.key=value", over[i]);
        *eq = 0;
        *dot = 0;
        char why[768];
        if (!config_set(cfg, trim(buf), trim(dot + 1), trim(eq + 1), why, sizeof why))
            return errorf(err, errlen, "override '%s': %s", over[i], why);
        cfg->key_origin[key_index(trim(buf), trim(dot + 1))] = -(i + 1);
    }
    char why[768], where[CFG_PATH_LEN + 200];
    if (!config_resolve(cfg, why, sizeof why)) {
        origin_of(cfg, file ? file : "config", why, n_over, over, where, sizeof where);
        return errorf(err, errlen, "%s: %s", where, why);
    }
    return true;
}

static const char *modality_known[] = {"text", "image", "speech"};

/* Split a comma list into trimmed items; returns the count or -1 if too many. */
static int split_list(const char *s, char items[][CFG_NAME_LEN], int max)
{
    char buf[CFG_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return -1;
        t = trim(t);
        snprintf(items[n++], CFG_NAME_LEN, "%s", t);
    }
    return n;
}

/* Size presets: a CPU-scale ladder; l and xl have the widths and depths of the
 * paper's 37M and 94M models (256 x 4 and 512 x 8). */
static const struct { const char *name; int d, L, H, f; } presets[] = {
    {"xs", 64, 2, 4, 256}, {"s", 128, 2, 4, 512}, {"m", 192, 3, 4, 768},
    {"l", 256, 4, 8, 1024}, {"xl", 512, 8, 8, 2048},
};

bool config_resolve(config_t *cfg, char *err, size_t errlen)
{
    if (cfg->size[0]) {
        size_t i, n = sizeof presets / sizeof presets[0];
        for (i = 0; i < n && strcmp(presets[i].name, cfg->size); i++)
            ;
        if (i == n)
            return errorf(err, errlen, "model.size: '%s' is not one of xs|s|m|l|xl", cfg->size);
        const char *clash[] = {"d_model", "n_layers", "n_heads", "d_ff"};
        for (int c = 0; c < 4; c++)
            if (is_set(cfg, "model", clash[c]))
                return errorf(err, errlen, "model.%s: given together with model.size = %s; set one or the other",
                            clash[c], cfg->size);
        cfg->model.d_model = presets[i].d;
        cfg->model.n_layers = presets[i].L;
        cfg->model.n_heads = presets[i].H;
        cfg->model.d_ff = presets[i].f;
    }
    if (cfg->model.d_model <= 0) return errorf(err, errlen, "model.d_model: must be positive, got %d", cfg->model.d_model);
    if (cfg->model.n_layers <= 0) return errorf(err, errlen, "model.n_layers: must be positive, got %d", cfg->model.n_layers);
    if (cfg->model.n_heads <= 0) return errorf(err, errlen, "model.n_heads: must be positive, got %d", cfg->model.n_heads);
    if (cfg->model.d_ff <= 0) return errorf(err, errlen, "model.d_ff: must be positive, got %d", cfg->model.d_ff);
    if (cfg->model.seq_len < 2) return errorf(err, errlen, "model.seq_len: must be at least 2, got %d", cfg->model.seq_len);
    if (cfg->model.d_model % cfg->model.n_heads)
        return errorf(err, errlen, "model.d_model: %d is not divisible by model.n_heads = %d", cfg->model.d_model, cfg->model.n_heads);
    if ((cfg->model.d_model / cfg->model.n_heads) % 2)
        return errorf(err, errlen, "model.n_heads: head dim model.d_model / model.n_heads = %d/%d = %d is odd; RoPE needs it even",
                    cfg->model.d_model, cfg->model.n_heads, cfg->model.d_model / cfg->model.n_heads);
    if (cfg->steps <= 0) return errorf(err, errlen, "train.steps: must be positive, got %lld", (long long)cfg->steps);
    if (cfg->global_batch <= 0) return errorf(err, errlen, "train.global_batch: must be positive, got %d", cfg->global_batch);
    if (cfg->micro_batch < 0) return errorf(err, errlen, "train.micro_batch: must be >= 0, got %d", cfg->micro_batch);
    if (cfg->sched.lr <= 0) return errorf(err, errlen, "train.lr: must be positive, got %g", cfg->sched.lr);
    if (cfg->sched.lr_min < 0 || cfg->sched.lr_min > cfg->sched.lr)
        return errorf(err, errlen, "train.lr_min: must be in [0, lr = %g], got %g", cfg->sched.lr, cfg->sched.lr_min);
    if (cfg->sched.warmup < 0) return errorf(err, errlen, "train.warmup: must be >= 0, got %lld", (long long)cfg->sched.warmup);
    if (cfg->adamw.beta1 < 0 || cfg->adamw.beta1 >= 1) return errorf(err, errlen, "train.beta1: must be in [0, 1), got %g", cfg->adamw.beta1);
    if (cfg->adamw.beta2 < 0 || cfg->adamw.beta2 >= 1) return errorf(err, errlen, "train.beta2: must be in [0, 1), got %g", cfg->adamw.beta2);
    if (cfg->adamw.weight_decay < 0) return errorf(err, errlen, "train.weight_decay: must be >= 0, got %g", cfg->adamw.weight_decay);
    if (cfg->grad_clip < 0) return errorf(err, errlen, "train.grad_clip: must be >= 0, got %g", cfg->grad_clip);
    if (cfg->checkpoint_every < 0) return errorf(err, errlen, "train.checkpoint_every: must be >= 0");
    if (cfg->keep_checkpoints < 1) return errorf(err, errlen, "train.keep_checkpoints: must be at least 1, got %d", cfg->keep_checkpoints);
    if (cfg->tp <= 0) return errorf(err, errlen, "parallel.tp: must be positive, got %d", cfg->tp);
    if (cfg->dp < 0) return errorf(err, errlen, "parallel.dp: must be positive or auto, got %d", cfg->dp);
    if (cfg->bucket_mb <= 0) return errorf(err, errlen, "parallel.bucket_mb: must be positive, got %g", cfg->bucket_mb);
    if (cfg->blas_threads < 0 || cfg->blas_threads > 1024)
        return errorf(err, errlen, "parallel.blas_threads: must be in [0, 1024], got %d", cfg->blas_threads);
    if (cfg->log_every <= 0) return errorf(err, errlen, "log.every: must be positive, got %lld", (long long)cfg->log_every);
    if (cfg->eval_every < 0) return errorf(err, errlen, "log.eval_every: must be >= 0");
    if (cfg->eval_tokens <= 0) return errorf(err, errlen, "log.eval_tokens: must be positive");
    if (cfg->flush_every <= 0) return errorf(err, errlen, "log.flush_every: must be positive");
    if (cfg->peak_flops < 0) return errorf(err, errlen, "log.peak_flops: must be >= 0");
    if (cfg->model.n_heads % cfg->tp)
        return errorf(err, errlen, "parallel.tp: model.n_heads = %d is not divisible by tp = %d", cfg->model.n_heads, cfg->tp);
    if (cfg->model.d_ff % cfg->tp)
        return errorf(err, errlen, "parallel.tp: model.d_ff = %d is not divisible by tp = %d", cfg->model.d_ff, cfg->tp);
    if (cfg->data.source == DATA_FILE && !cfg->data.path[0])
        return errorf(err, errlen, "data.path: required when data.source = file");

    /* modalities and mix */
    char items[MAX_MODALITIES + 1][CFG_NAME_LEN];
    int n = split_list(cfg->modalities, items, MAX_MODALITIES);
    if (n <= 0)
        return errorf(err, errlen, "data.modalities: expected 1 to %d of text, image, speech, got '%s'",
                    MAX_MODALITIES, cfg->modalities);
    for (int m = 0; m < n; m++) {
        bool ok = false;
        for (int j = 0; j < 3; j++)
            ok |= !strcmp(items[m], modality_known[j]);
        if (!ok)
            return errorf(err, errlen, "data.modalities: unknown modality '%s' (text, image, speech)", items[m]);
        for (int j = 0; j < m; j++)
            if (!strcmp(items[m], items[j]))
                return errorf(err, errlen, "data.modalities: '%s' listed twice", items[m]);
        memcpy(cfg->data.names[m], items[m], CFG_NAME_LEN);
    }
    if (strcmp(items[0], "text"))
        return errorf(err, errlen, "data.modalities: must start with text (boundary tokens live in the text range)");
    cfg->data.n_modalities = n;
    cfg->model.n_modalities = n;
    char mixs[MAX_MODALITIES + 1][CFG_NAME_LEN];
    int nm = split_list(cfg->mix, mixs, MAX_MODALITIES);
    if (nm != n)
        return errorf(err, errlen, "data.mix: %d values for %d modalities", nm < 0 ? MAX_MODALITIES + 1 : nm, n);
    double tot = 0;
    for (int m = 0; m < n; m++) {
        char *end;
        double v = strtod(mixs[m], &end);
        if (end == mixs[m] || *end || !(v >= 0) || !isfinite(v))
            return errorf(err, errlen, "data.mix: '%s' is not a non-negative number", mixs[m]);
        cfg->data.mix_share[m] = v;
        tot += v;
    }
    if (tot <= 0)
        return errorf(err, errlen, "data.mix: shares sum to zero");
    for (int m = 0; m < n; m++)
        cfg->data.mix_share[m] /= tot;

    /* towers */
    if (cfg->model.kind == MODEL_DENSE) {
        cfg->model.n_towers = 1;
        for (int m = 0; m < n; m++)
            cfg->model.tower_of[m] = 0;
    } else if (cfg->model.kind == MODEL_MOT) {
        cfg->model.n_towers = n;
        for (int m = 0; m < n; m++)
            cfg->model.tower_of[m] = m;
    } else {
        if (!cfg->towers[0])
            return errorf(err, errlen, "model.towers: required when model.kind = towers");
        for (int m = 0; m < n; m++)
            cfg->model.tower_of[m] = -1;
        char buf[CFG_PATH_LEN];
        snprintf(buf, sizeof buf, "%s", cfg->towers);
        int t = 0;
        char *save = NULL;
        for (char *grp = strtok_r(buf, "|", &save); grp; grp = strtok_r(NULL, "|", &save), t++) {
            char names[MAX_MODALITIES + 1][CFG_NAME_LEN];
            int k = split_list(grp, names, MAX_MODALITIES);
            if (k <= 0 || t >= n)
                return errorf(err, errlen, "model.towers: malformed group '%s'", trim(grp));
            for (int j = 0; j < k; j++) {
                int m;
                for (m = 0; m < n && strcmp(cfg->data.names[m], names[j]); m++)
                    ;
                if (m == n)
                    return errorf(err, errlen, "model.towers: '%s' is not in data.modalities", names[j]);
                if (cfg->model.tower_of[m] >= 0)
                    return errorf(err, errlen, "model.towers: '%s' is in two groups", names[j]);
                cfg->model.tower_of[m] = t;
            }
        }
        cfg->model.n_towers = t;
        for (int m = 0; m < n; m++)
            if (cfg->model.tower_of[m] < 0)
                return errorf(err, errlen, "model.towers: modality '%s' is in no group", cfg->data.names[m]);
    }
    /* what several modules share */
    cfg->data.seq_len = cfg->model.seq_len;
    cfg->data.seed = cfg->seed;
    cfg->sched.steps = cfg->steps;
    return true;
}

bool config_check_layout(config_t *cfg, int world_size, char *err, size_t errlen)
{
    if (world_size % cfg->tp)
        return errorf(err, errlen, "parallel.tp: world size %d is not divisible by tp = %d", world_size, cfg->tp);
    if (cfg->dp == 0)
        cfg->dp = world_size / cfg->tp;
    if (cfg->dp * cfg->tp != world_size)
        return errorf(err, errlen, "parallel.dp: dp x tp = %d x %d = %d, but the world has %d ranks",
                    cfg->dp, cfg->tp, cfg->dp * cfg->tp, world_size);
    if (cfg->micro_batch == 0) {
        if (cfg->global_batch % cfg->dp)
            return errorf(err, errlen, "train.global_batch: %d is not divisible by dp = %d", cfg->global_batch, cfg->dp);
        cfg->micro_batch = cfg->global_batch / cfg->dp;
    }
    if (cfg->global_batch % (cfg->dp * cfg->micro_batch))
        return errorf(err, errlen, "train.global_batch: %d is not divisible by dp x micro_batch = %d x %d = %d",
                    cfg->global_batch, cfg->dp, cfg->micro_batch, cfg->dp * cfg->micro_batch);
    return true;
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = *cap * 2 + (size_t)(n > 0 ? n : 0);
        char *nb = realloc(*buf, *cap);
        if (!nb)
            DIE(EXIT_FAULT, "out of memory writing the config text");
        *buf = nb;
    }
}

/* The idx-th name of a "a|b|c" list into out (empty when out of range). */
static void enum_item(const char *enums, int idx, char *out, size_t n)
{
    const char *p = enums;
    for (int j = 0; j < idx && p; j++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    const char *bar = p ? strchr(p, '|') : NULL;
    snprintf(out, n, "%.*s", p ? (int)(bar ? (size_t)(bar - p) : strlen(p)) : 0, p ? p : "");
}

const char *config_enum_name(const char *section, const char *key, int value)
{
    /* one slot per enum key, filled on first use: the names live as long as the program */
    static char names[NKEYS][8][CFG_NAME_LEN];
    int i = key_index(section, key);
    if (i < 0 || keys[i].type != K_ENUM || value < 0 || value >= 8)
        DIE(EXIT_FAULT, "config_enum_name: %s.%s is not an enum key with value %d", section, key, value);
    if (!names[i][value][0])
        enum_item(keys[i].enums, value, names[i][value], CFG_NAME_LEN);
    return names[i][value];
}

static void format_value(const config_t *cfg, int i, char *out, size_t n)
{
    const key_t_ *k = &keys[i];
    const char *field = (const char *)cfg + k->off;
    switch (k->type) {
    case K_INT: snprintf(out, n, "%d", *(const int *)field); break;
    case K_I64: snprintf(out, n, "%lld", (long long)*(const int64_t *)field); break;
    case K_U64: snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case K_DBL: snprintf(out, n, "%.17g", *(const double *)field); break;
    case K_STR: snprintf(out, n, "%s", field); break;
    case K_BOOL: snprintf(out, n, "%s", *(const bool *)field ? "true" : "false"); break;
    case K_ENUM: enum_item(k->enums, *(const int *)field, out, n); break;
    }
}

char *config_to_ini(const config_t *cfg)
{
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    buf[0] = 0;
    const char *section = "";
    for (int i = 0; i < NKEYS; i++) {
        if (strcmp(section, keys[i].section)) {
            section = keys[i].section;
            append(&buf, &len, &cap, "%s[%s]\n", len ? "\n" : "", section);
        }
        char v[CFG_PATH_LEN + 32];
        format_value(cfg, i, v, sizeof v);
        /* the size preset has been expanded into the four keys below it */
        if (!strcmp(keys[i].section, "model") && !strcmp(keys[i].name, "size"))
            append(&buf, &len, &cap, "; size = %s (expanded below)\n", v);
        else
            append(&buf, &len, &cap, "%s = %s\n", keys[i].name, v);
    }
    return buf;
}

/* Text inside a Markdown table cell: a bar must be escaped. */
static void md_cell(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputc('\\', out);
        fputc(*p, out);
    }
}

void config_print_keys_markdown(FILE *out)
{
    const char *section = "";
    for (int i = 0; i < NKEYS; i++) {
        if (strcmp(section, keys[i].section)) {
            section = keys[i].section;
            fprintf(out, "\n### [%s]\n\n| key | type | default | meaning |\n|---|---|---|---|\n", section);
        }
        const char *t[] = {"int", "int", "int", "number", "string", "bool", "enum"};
        fprintf(out, "| `%s.%s` | %s", keys[i].section, keys[i].name, t[keys[i].type]);
        if (keys[i].enums) {
            fputs(": ", out);
            md_cell(out, keys[i].enums);
        }
        fprintf(out, " | `%s` | ", keys[i].def[0] ? keys[i].def : "\"\"");
        md_cell(out, keys[i].doc);
        fputs(" |\n", out);
    }
}
