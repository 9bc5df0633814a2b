/* A set of runs for compare and report: run records loaded from files or found under a
 * folder, each with its label (dense, mot, "speech alone"), size, seed, the load it
 * ran under and its configuration identity; runs whose configurations differ only
 * in run.seed grouped; the configuration differences that make two runs unfair to
 * compare. Method: docs/analysis.md. */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <ini.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "motscale/analysis.h"
#include "motscale/common.h"

/* Keys that say where a run went and how it was looked after, not what it trained:
 * runs that differ only in these (and run.seed) are seeds of one configuration.
 * jobs/local's reuse of completed runs ignores the same keys (with run.seed kept). */
const char *const analysis_bookkeeping_keys[] = {
    "run.name", "run.out_dir", "run.experiment", "train.resume", "train.checkpoint_every",
    "train.keep_checkpoints", "log.quiet", "log.flush_every", NULL};

static bool in_list(const char *const *list, const char *key)
{
    for (; list && *list; list++)
        if (!strcmp(*list, key))
            return true;
    return false;
}

/* ---- the keys of a configuration text ------------------------------------------- */

typedef struct kv {
    char key[96];                     /* section.key */
    char value[256];
} kv_t;

typedef struct kv_list {
    kv_t *items;
    int n, cap;
} kv_list_t;

static int collect(void *user, const char *section, const char *name, const char *value)
{
    kv_list_t *l = user;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = realloc(l->items, (size_t)l->cap * sizeof *l->items);
        if (!l->items)
            DIE(EXIT_FAULT, "out of memory reading a run's configuration");
    }
    snprintf(l->items[l->n].key, sizeof l->items[l->n].key, "%s.%s", section, name);
    snprintf(l->items[l->n].value, sizeof l->items[l->n].value, "%s", value);
    l->n++;
    return 1;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const kv_t *)a)->key, ((const kv_t *)b)->key);
}

/* Every key of text, sorted by name. */
static void parse_config(kv_list_t *l, const char *text)
{
    memset(l, 0, sizeof *l);
    if (text)
        ini_parse_string(text, collect, l);
    if (l->n)
        qsort(l->items, (size_t)l->n, sizeof *l->items, cmp_kv);
}

static const char *kv_get(const kv_list_t *l, const char *key)
{
    kv_t k;
    snprintf(k.key, sizeof k.key, "%s", key);
    const kv_t *hit = l->n ? bsearch(&k, l->items, (size_t)l->n, sizeof *l->items, cmp_kv) : NULL;
    return hit ? hit->value : NULL;
}

/* ---- one run --------------------------------------------------------------------- */

/* kind = moe: "moe-4x"; experts in some towers: "<label> + text moe-4x". */
static void label_experts(char *out, size_t len, const char *kind, const char *moe_towers, const char *experts)
{
    const char *E = experts && experts[0] ? experts : "4";
    size_t k = strlen(out);
    if (!strcmp(kind, "moe"))
        snprintf(out, len, "moe-%sx", E);
    else if (moe_towers && moe_towers[0] && k < len)
        snprintf(out + k, len - k, " + %s moe-%sx", moe_towers, E);
}

void analysis_label_of(char *out, size_t len, const char *kind, const char *towers, const char *moe_towers,
                       const char *experts)
{
    if (strcmp(kind, "towers") || !towers[0]) {
        snprintf(out, len, "%s", kind);
        label_experts(out, len, kind, moe_towers, experts);
        return;
    }
    /* "text,image | speech": the modalities with a tower of their own, by name */
    char buf[512], alone[256] = "";
    snprintf(buf, sizeof buf, "%s", towers);
    int groups = 0, singles = 0;
    for (char *save = NULL, *g = strtok_r(buf, "|", &save); g; g = strtok_r(NULL, "|", &save)) {
        while (isspace((unsigned char)*g))
            g++;
        char *e = g + strlen(g);
        while (e > g && isspace((unsigned char)e[-1]))
            *--e = '\0';
        groups++;
        if (!strchr(g, ',')) {
            size_t k = strlen(alone);
            snprintf(alone + k, sizeof alone - k, "%s%s alone", singles ? ", " : "", g);
            singles++;
        }
    }
    if (singles > 0 && singles < groups)
        snprintf(out, len, "%s", alone);
    else
        snprintf(out, len, "towers %s", towers);
    label_experts(out, len, kind, moe_towers, experts);
}

/* The run directory's own name and experiment when jobs/local reused another run
 * for it (RUN_DIR/reused-from, RUN_DIR/sweep-point.ini): the record inside is the
 * other run's. */
static int point_name(void *user, const char *section, const char *name, const char *value)
{
    runrec_t *r = user;
    if (!strcmp(section, "run") && !strcmp(name, "name"))
        snprintf(r->run_name, sizeof r->run_name, "%s", value);
    if (!strcmp(section, "run") && !strcmp(name, "experiment"))
        snprintf(r->experiment, sizeof r->experiment, "%s", value);
    return 1;
}

static void apply_reuse(runrec_t *r, const char *path)
{
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *d = dirname(dir);
    struct stat st;
    snprintf(p, sizeof p, "%s/reused-from", d);
    if (stat(p, &st) != 0)
        return;
    snprintf(p, sizeof p, "%s/sweep-point.ini", d);
    ini_parse(p, point_name, r);
}

/* A resolved configuration gives the size preset as a comment above the keys it set,
 * "; size = xs (expanded below)"; a run trained from such a text has lost the name,
 * "; size =  (expanded below)". */
static void size_preset(char *out, size_t len, const char *text)
{
    const char *p = text ? strstr(text, "\n; size = ") : NULL;
    char v[32] = "";
    if (p && sscanf(p, "\n; size = %31[A-Za-z0-9_.-]", v) == 1)
        snprintf(out, len, "%s", v);
}

/* The preset from the sweep point the run was trained from (RUN_DIR/sweep-point.ini,
 * written by jobs/local and the Slurm scripts), which still names it. */
static void size_of_point(char *out, size_t len, const char *path)
{
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(p, sizeof p, "%s/sweep-point.ini", dirname(dir));
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    char line[512], text[520];
    while (fgets(line, sizeof line, f)) {
        snprintf(text, sizeof text, "\n%s", line);
        size_preset(out, len, text);
        if (out[0])
            break;
    }
    fclose(f);
}

static void derive(analysis_run_t *ar)
{
    runrec_t *r = &ar->r;
    char kind_towers[512], moe_towers[512], experts[32];
    runrec_config_get(r, "run", "seed", ar->seed, sizeof ar->seed);
    runrec_config_get(r, "model", "towers", kind_towers, sizeof kind_towers);
    runrec_config_get(r, "model", "moe_towers", moe_towers, sizeof moe_towers);
    runrec_config_get(r, "model", "moe_experts", experts, sizeof experts);
    analysis_label_of(ar->label, sizeof ar->label, r->kind, kind_towers, moe_towers, experts);
    char freeze[32];
    runrec_config_get(r, "zipper", "freeze", freeze, sizeof freeze);
    if (!strcmp(r->kind, "zipper") && freeze[0] && strcmp(freeze, "none")) {
        size_t k = strlen(ar->label);
        snprintf(ar->label + k, sizeof ar->label - k, ", %s frozen", freeze);
    }
    runrec_config_get(r, "model", "size", ar->size, sizeof ar->size);
    if (!ar->size[0])
        size_preset(ar->size, sizeof ar->size, r->config);
    if (!ar->size[0])
        size_of_point(ar->size, sizeof ar->size, r->path);
    if (!ar->size[0])
        snprintf(ar->size, sizeof ar->size, "d%dx%d", r->d_model, r->n_layers);
    /* identity: every key but the bookkeeping and the seed, and the experiment the
     * run is filed under */
    kv_list_t l;
    parse_config(&l, r->config);
    size_t cap = 256 + strlen(r->experiment), len = 0;
    for (int i = 0; i < l.n; i++)
        cap += strlen(l.items[i].key) + strlen(l.items[i].value) + 2;
    ar->identity = xmalloc(cap);
    /* the record's own model attributes too, for records whose config text is terse */
    len += (size_t)snprintf(ar->identity, cap,
                            "experiment=%s\nrecord.model=%s d%d L%d h%d ff%d seq%d towers%d "
                            "params%lld\n",
                            r->experiment, r->kind, r->d_model, r->n_layers, r->n_heads, r->d_ff,
                            r->seq_len, r->n_towers, (long long)r->params_total);
    for (int i = 0; i < l.n; i++)
        if (!in_list(analysis_bookkeeping_keys, l.items[i].key) &&
            strcmp(l.items[i].key, "run.seed"))
            len += (size_t)snprintf(ar->identity + len, cap - len, "%s=%s\n", l.items[i].key,
                                    l.items[i].value);
    free(l.items);
    /* the load it ran under; step time after the first row (start-up) */
    ar->load = r->load_avg ? analysis_median(r->load_avg, r->n) : NAN;
    double steal = 0;
    size_t ns = 0;
    for (size_t i = 0; r->cpu_steal && i < r->n; i++)
        if (isfinite(r->cpu_steal[i])) {
            steal += r->cpu_steal[i];
            ns++;
        }
    ar->steal = ns ? steal / (double)ns : NAN;
    ar->med_step = analysis_median(r->step_time + (r->n > 1), r->n - (r->n > 1));
}

/* ---- the set ----------------------------------------------------------------------- */

static void set_add(analysis_runset_t *set, const char *path, bool keep_going, char *err,
                    size_t errlen, bool *ok)
{
    if (set->n_runs == set->cap) {
        set->cap = set->cap ? 2 * set->cap : 16;
        set->runs = realloc(set->runs, set->cap * sizeof *set->runs);
        if (!set->runs)
            DIE(EXIT_FAULT, "out of memory loading run files");
    }
    analysis_run_t *ar = &set->runs[set->n_runs];
    memset(ar, 0, sizeof *ar);
    char e[1024];
    if (!runrec_load(path, &ar->r, e, sizeof e)) {
        if (!keep_going) {
            snprintf(err, errlen, "%s", e);
            *ok = false;
            return;
        }
        warnf("skipping %s", e);
        set->skipped = realloc(set->skipped, (set->n_skipped + 1) * sizeof *set->skipped);
        if (!set->skipped)
            DIE(EXIT_FAULT, "out of memory listing run files");
        snprintf(set->skipped[set->n_skipped++], sizeof set->skipped[0], "%s", e);
        return;
    }
    apply_reuse(&ar->r, path);
    derive(ar);
    set->n_runs++;
}

bool analysis_runset_load_files(analysis_runset_t *set, char *const *paths, size_t n, char *err,
                                size_t errlen)
{
    memset(set, 0, sizeof *set);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        set_add(set, paths[i], false, err, errlen, &ok);
    if (ok)
        analysis_runset_group(set);
    return ok;
}

typedef struct found {
    char **paths;
    size_t n, cap;
} found_t;

static found_t *found_now; /* nftw has no user pointer */

static int found_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    struct stat target;
    /* a linked run.h5 (a reused point) counts when it points at a file */
    bool file = flag == FTW_F || (flag == FTW_SL && stat(path, &target) == 0 &&
                                  S_ISREG(target.st_mode));
    if (!file || strcmp(path + ftw->base, "run.h5"))
        return 0;
    found_t *f = found_now;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->paths = realloc(f->paths, f->cap * sizeof *f->paths);
        if (!f->paths)
            DIE(EXIT_FAULT, "out of memory listing run files");
    }
    f->paths[f->n] = strdup(path);
    if (!f->paths[f->n])
        DIE(EXIT_FAULT, "out of memory listing run files");
    f->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool analysis_runset_load_dir(analysis_runset_t *set, const char *dir, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    found_t found = {0};
    found_now = &found;
    if (nftw(dir, found_add, 32, FTW_PHYS) != 0) {
        snprintf(err, errlen, "%s: cannot walk the folder: %s", dir, strerror(errno));
        return false;
    }
    if (found.n)
        qsort(found.paths, found.n, sizeof *found.paths, cmp_str);
    bool ok = true;
    for (size_t i = 0; i < found.n; i++) {
        set_add(set, found.paths[i], true, err, errlen, &ok);
        free(found.paths[i]);
    }
    free(found.paths);
    analysis_runset_group(set);
    return true;
}

/* Two configurations that would share a label in one experiment at one size (dense
 * under two norm placements, say) get the model keys they differ in appended, from
 * each one's own values: "moe-4x [model.norm=pre]"; train.diffusion_weight counts
 * as a model key here (it changes what the image loss is weighed against). */
static void disambiguate_labels(analysis_runset_t *set)
{
    char (*extra)[160] = xcalloc(set->n_groups + 1, sizeof *extra);
    for (size_t g = 0; g < set->n_groups; g++) {
        const analysis_run_t *a = &set->runs[set->groups[g].run[0]];
        kv_list_t ka;
        parse_config(&ka, a->r.config);
        for (size_t h = 0; h < set->n_groups; h++) {
            const analysis_run_t *b = &set->runs[set->groups[h].run[0]];
            if (h == g || strcmp(a->label, b->label) || strcmp(a->size, b->size) ||
                strcmp(a->r.experiment, b->r.experiment))
                continue;
            kv_list_t kb;
            parse_config(&kb, b->r.config);
            for (int i = 0; i < ka.n; i++) {
                const char *k = ka.items[i].key, *vb = kv_get(&kb, k);
                char item[400];
                snprintf(item, sizeof item, "%s=%s", k, ka.items[i].value);
                bool model_key = !strncmp(k, "model.", 6) || !strcmp(k, "train.diffusion_weight");
                if (!model_key || (vb && !strcmp(vb, ka.items[i].value)) || strstr(extra[g], item))
                    continue;
                size_t n = strlen(extra[g]);
                if (n + strlen(item) + 3 < sizeof extra[g])
                    snprintf(extra[g] + n, sizeof extra[g] - n, "%s%.*s", n ? ", " : "", 150, item);
            }
            free(kb.items);
        }
        free(ka.items);
    }
    for (size_t g = 0; g < set->n_groups; g++)
        for (size_t i = 0; extra[g][0] && i < set->groups[g].n; i++) {
            char *label = set->runs[set->groups[g].run[i]].label;
            size_t n = strlen(label);
            snprintf(label + n, sizeof set->runs[0].label - n, " [%s]", extra[g]);
        }
    free(extra);
}

void analysis_runset_group(analysis_runset_t *set)
{
    free(set->group_of);
    free(set->groups);
    set->group_of = xcalloc(set->n_runs + 1, sizeof *set->group_of);
    set->groups = xcalloc(set->n_runs + 1, sizeof *set->groups);
    set->n_groups = 0;
    for (size_t i = 0; i < set->n_runs; i++) {
        size_t g = 0;
        while (g < set->n_groups &&
               strcmp(set->runs[set->groups[g].run[0]].identity, set->runs[i].identity))
            g++;
        analysis_group_t *gr = &set->groups[g];
        if (g == set->n_groups) {
            set->n_groups++;
            memset(gr, 0, sizeof *gr);
            gr->run = xcalloc(set->n_runs + 1, sizeof *gr->run);
        }
        gr->run[gr->n++] = i;
        set->group_of[i] = g;
    }
    disambiguate_labels(set);
}

void analysis_runset_free(analysis_runset_t *set)
{
    for (size_t i = 0; i < set->n_runs; i++) {
        runrec_free(&set->runs[i].r);
        free(set->runs[i].identity);
    }
    for (size_t g = 0; g < set->n_groups; g++)
        free(set->groups[g].run);
    free(set->runs);
    free(set->groups);
    free(set->group_of);
    free(set->skipped);
    memset(set, 0, sizeof *set);
}

bool analysis_run_has(const analysis_run_t *ar, const char *key_value)
{
    const char *eq = strchr(key_value, '=');
    const char *dot = strchr(key_value, '.');
    if (!eq || !dot || dot > eq)
        return false;
    char section[64], key[64], v[256];
    snprintf(section, sizeof section, "%.*s", (int)(dot - key_value), key_value);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    runrec_config_get(&ar->r, section, key, v, sizeof v);
    return !strcmp(v, eq + 1);
}

long analysis_closest_baseline(const analysis_runset_t *set, size_t g, const char *key_value,
                               const char *const *compared)
{
    const analysis_run_t *c = &set->runs[set->groups[g].run[0]];
    long best = -1;
    int best_diff = 1 << 30;
    for (size_t b = 0; b < set->n_groups; b++) {
        const analysis_run_t *r = &set->runs[set->groups[b].run[0]];
        if (b == g || !analysis_run_has(r, key_value))
            continue;
        char lines[ANALYSIS_MAX_WARN][256];
        int d = analysis_comparability(&r->r, &c->r, compared, lines, ANALYSIS_MAX_WARN);
        if (d < best_diff) {
            best_diff = d;
            best = (long)b;
        }
    }
    return best;
}

/* ---- fairness of a comparison ------------------------------------------------------ */

/* Tokens per step from the metrics: the last row's cumulative tokens over its step
 * (the first row may be step 0 with no tokens). */
static double tokens_per_step(const runrec_t *r)
{
    for (size_t i = r->n; i-- > 0;)
        if (r->step[i] > 0)
            return (double)r->tokens[i] / (double)r->step[i];
    return NAN;
}

static void add_line(char lines[][256], int *n, int max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_line(char lines[][256], int *n, int max, const char *fmt, ...)
{
    if (*n >= max)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lines[(*n)++], 256, fmt, ap);
    va_end(ap);
}

int analysis_comparability(const runrec_t *a, const runrec_t *b, const char *const *compared,
                           char lines[][256], int max)
{
    int n = 0;
#define ADD(...) add_line(lines, &n, max, __VA_ARGS__)
    if (strcmp(a->experiment, b->experiment))
        ADD("experiment differs: '%s' vs '%s'", a->experiment, b->experiment);
    if (a->d_model != b->d_model || a->n_layers != b->n_layers)
        ADD("size differs: d_model %d x %d layers vs %d x %d", a->d_model, a->n_layers,
            b->d_model, b->n_layers);
    /* every other key of the two configurations */
    kv_list_t ka, kb;
    parse_config(&ka, a->config);
    parse_config(&kb, b->config);
    for (int pass = 0; pass < 2; pass++) {
        const kv_list_t *x = pass ? &kb : &ka, *y = pass ? &ka : &kb;
        for (int i = 0; i < x->n; i++) {
            const char *k = x->items[i].key, *vy = kv_get(y, k);
            if (in_list(analysis_bookkeeping_keys, k) || in_list(compared, k) ||
                !strcmp(k, "run.seed") || (pass && vy))
                continue;
            if (!vy || strcmp(vy, x->items[i].value))
                ADD("%s differs: '%s' vs '%s'", k, pass ? "(unset)" : x->items[i].value,
                    pass ? x->items[i].value : vy ? vy : "(unset)");
        }
    }
    free(ka.items);
    free(kb.items);
    double ta = tokens_per_step(a), tb = tokens_per_step(b);
    if (!(ta == tb))
        ADD("tokens per step differ: %.0f vs %.0f", ta, tb);
    bool same_mod = a->n_mod == b->n_mod;
    for (int m = 0; same_mod && m < a->n_mod; m++)
        same_mod = !strcmp(a->mod_names[m], b->mod_names[m]);
    if (!same_mod)
        ADD("modalities differ: %d vs %d, or in name or order", a->n_mod, b->n_mod);
#undef ADD
    return n;
}
