/* Sweep expansion: parse an experiment's [sweep] section (lists and zip groups) with
 * inih, number its points in mixed radix (first axis slowest), and resolve a point
 * into a full configuration with its run name expanded from the template. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/sweep.h"

#define SWEEP_MAX_ZIPS 16
#define KEYTEXT (2 * CFG_NAME_LEN)

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static const char *skip_space(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* Split "a, b, \"c, d\"" into items: commas separate, surrounding blanks are dropped,
 * double quotes keep commas and blanks inside one item (and allow an empty one). */
static int split_values(const char *s, char ***out, char *why, size_t whylen)
{
    char **items = NULL;
    int n = 0;
    s = skip_space(s);
    if (!*s) {
        errorf(why, whylen, "empty list");
        return -1;
    }
    for (;;) {
        char buf[CFG_PATH_LEN];
        size_t len;
        s = skip_space(s);
        if (*s == '"') {
            const char *close = strchr(s + 1, '"');
            if (!close) {
                errorf(why, whylen, "unterminated quote in list");
                goto bad;
            }
            len = (size_t)(close - s - 1);
            if (len >= sizeof buf) {
                errorf(why, whylen, "value longer than %zu characters", sizeof buf - 1);
                goto bad;
            }
            memcpy(buf, s + 1, len);
            s = skip_space(close + 1);
            if (*s && *s != ',') {
                errorf(why, whylen, "text after a quoted value: '%s'", s);
                goto bad;
            }
        } else {
            const char *comma = strchr(s, ',');
            len = comma ? (size_t)(comma - s) : strlen(s);
            while (len > 0 && isspace((unsigned char)s[len - 1]))
                len--;
            if (len == 0) {
                errorf(why, whylen, "empty value in list (two commas, or a comma at an end)");
                goto bad;
            }
            if (len >= sizeof buf) {
                errorf(why, whylen, "value longer than %zu characters", sizeof buf - 1);
                goto bad;
            }
            memcpy(buf, s, len);
            s = comma ? comma : s + strlen(s);
        }
        buf[len] = 0;
        char **grown = realloc(items, (size_t)(n + 1) * sizeof *items);
        if (!grown)
            DIE(EXIT_FAULT, "out of memory reading a sweep list");
        items = grown;
        items[n++] = xstrdup(buf);
        if (*s != ',')
            break;
        s++;
    }
    *out = items;
    return n;
bad:
    for (int i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return -1;
}

/* "section.key" into its two halves; false when there is no dot. */
static bool split_key(const char *text, char *section, char *key)
{
    const char *dot = strchr(text, '.');
    if (!dot || dot == text || !dot[1] || (size_t)(dot - text) >= CFG_NAME_LEN || strlen(dot + 1) >= CFG_NAME_LEN)
        return false;
    memcpy(section, text, (size_t)(dot - text));
    section[dot - text] = 0;
    strcpy(key, dot + 1);
    return true;
}

struct zip_group {
    int n;
    char keys[SWEEP_MAX_KEYS][KEYTEXT];
};

struct parse_ctx {
    sweep_t *sw;
    struct zip_group zips[SWEEP_MAX_ZIPS];
    int n_zips;
    char why[1024];
    bool failed;
};

static int find_key(const sweep_t *sw, const char *section, const char *name)
{
    for (int k = 0; k < sw->n_keys; k++)
        if (!strcmp(sw->keys[k].section, section) && !strcmp(sw->keys[k].name, name))
            return k;
    return -1;
}

static int on_line(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    sweep_t *sw = c->sw;
    if (c->failed)
        return 0;
    if (!strcmp(section, "run") && !strcmp(name, "experiment"))
        sw->experiment_given = true;
    if (strcmp(section, "sweep"))
        return 1;   /* every other section is checked by config_load */

    if (!strcmp(name, "zip")) {
        if (c->n_zips == SWEEP_MAX_ZIPS) {
            errorf(c->why, sizeof c->why, "sweep: more than %d zip lines", SWEEP_MAX_ZIPS);
            goto bad;
        }
        struct zip_group *z = &c->zips[c->n_zips];
        char **names;
        int n = split_values(value, &names, c->why, sizeof c->why);
        if (n < 0) {
            char why[sizeof c->why];
            snprintf(why, sizeof why, "%s", c->why);
            errorf(c->why, sizeof c->why, "sweep.zip: %s", why);
            goto bad;
        }
        bool ok = n <= SWEEP_MAX_KEYS;
        for (int i = 0; i < n; i++) {
            char s[CFG_NAME_LEN], k[CFG_NAME_LEN];
            if (ok && (!split_key(names[i], s, k) || !config_has_key(s, k))) {
                errorf(c->why, sizeof c->why, "sweep.zip: '%s' is not a config key (section.key, see docs/config.md)",
                     names[i]);
                ok = false;
            }
            if (ok)
                snprintf(z->keys[i], KEYTEXT, "%s", names[i]);
        }
        if (n > SWEEP_MAX_KEYS)
            errorf(c->why, sizeof c->why, "sweep.zip: more than %d keys", SWEEP_MAX_KEYS);
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        if (!ok)
            goto bad;
        z->n = n;
        c->n_zips++;
        return 1;
    }

    char s[CFG_NAME_LEN], k[CFG_NAME_LEN];
    if (!split_key(name, s, k) || !config_has_key(s, k)) {
        errorf(c->why, sizeof c->why, "sweep key '%s' is not a config key (section.key, see docs/config.md)", name);
        goto bad;
    }
    if (find_key(sw, s, k) >= 0) {
        errorf(c->why, sizeof c->why, "sweep key '%s' is listed twice (keep each list on one line)", name);
        goto bad;
    }
    if (sw->n_keys == SWEEP_MAX_KEYS) {
        errorf(c->why, sizeof c->why, "sweep key '%s': more than %d swept keys", name, SWEEP_MAX_KEYS);
        goto bad;
    }
    char **values;
    char why[512];
    int n = split_values(value, &values, why, sizeof why);
    if (n < 0) {
        errorf(c->why, sizeof c->why, "sweep key '%s': %s", name, why);
        goto bad;
    }
    sweep_key_t *key = &sw->keys[sw->n_keys++];
    strcpy(key->section, s);
    strcpy(key->name, k);
    key->n_values = n;
    key->values = values;
    key->axis = -1;
    /* each value must parse as its key would; combinations are checked per point */
    config_t scratch;
    config_load(&scratch, NULL, 0, NULL, why, sizeof why);
    for (int i = 0; i < n; i++) {
        char e[768];
        if (!config_set(&scratch, s, k, values[i], e, sizeof e)) {
            errorf(c->why, sizeof c->why, "sweep key '%s': %s", name, e);
            goto bad;
        }
    }
    return 1;
bad:
    c->failed = true;
    return 0;
}

static void stem_of(const char *file, char *out, size_t n)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        len = (size_t)(dot - base);
    if (len >= n)
        len = n - 1;
    memcpy(out, base, len);
    out[len] = 0;
}

/* Group keys into product axes: a key's axis is its own, unless a zip line ties it
 * to keys listed earlier; an axis sits where its first key is listed. */
static bool build_axes(sweep_t *sw, struct parse_ctx *c, char *err, size_t errlen)
{
    int group_of[SWEEP_MAX_KEYS];
    for (int k = 0; k < sw->n_keys; k++)
        group_of[k] = -1;
    for (int g = 0; g < c->n_zips; g++) {
        struct zip_group *z = &c->zips[g];
        for (int i = 0; i < z->n; i++) {
            char s[CFG_NAME_LEN], name[CFG_NAME_LEN];
            split_key(z->keys[i], s, name);
            int k = find_key(sw, s, name);
            if (k < 0)
                return errorf(err, errlen, "%s: sweep.zip: '%s' has no list in [sweep]", sw->file, z->keys[i]);
            if (group_of[k] >= 0)
                return errorf(err, errlen, "%s: sweep.zip: '%s' is in two zip lines (or twice in one)",
                            sw->file, z->keys[i]);
            group_of[k] = g;
        }
        /* element-wise pairing needs equal lengths */
        char s0[CFG_NAME_LEN], n0[CFG_NAME_LEN];
        split_key(z->keys[0], s0, n0);
        int k0 = find_key(sw, s0, n0);
        for (int i = 1; i < z->n; i++) {
            char s[CFG_NAME_LEN], name[CFG_NAME_LEN];
            split_key(z->keys[i], s, name);
            int k = find_key(sw, s, name);
            if (sw->keys[k].n_values != sw->keys[k0].n_values)
                return errorf(err, errlen, "%s: sweep.zip: '%s' has %d values but '%s' has %d; zipped lists pair "
                            "element-wise and need equal lengths", sw->file, z->keys[i], sw->keys[k].n_values,
                            z->keys[0], sw->keys[k0].n_values);
        }
    }
    int axis_of_group[SWEEP_MAX_ZIPS];
    for (int g = 0; g < SWEEP_MAX_ZIPS; g++)
        axis_of_group[g] = -1;
    sw->n_axes = 0;
    sw->n_points = 1;
    for (int k = 0; k < sw->n_keys; k++) {
        int g = group_of[k];
        if (g >= 0 && axis_of_group[g] >= 0) {
            sw->keys[k].axis = axis_of_group[g];
            continue;
        }
        int a = sw->n_axes++;
        sw->keys[k].axis = a;
        sw->axis_len[a] = sw->keys[k].n_values;
        if (g >= 0)
            axis_of_group[g] = a;
        if (sw->n_points > SWEEP_MAX_POINTS / sw->axis_len[a])
            return errorf(err, errlen, "%s: sweep has more than %d points", sw->file, SWEEP_MAX_POINTS);
        sw->n_points *= sw->axis_len[a];
    }
    return true;
}

bool sweep_load(sweep_t *sw, const char *file, char *err, size_t errlen)
{
    memset(sw, 0, sizeof *sw);
    if (strlen(file) >= sizeof sw->file)
        return errorf(err, errlen, "%s: path too long", file);
    strcpy(sw->file, file);
    stem_of(file, sw->stem, sizeof sw->stem);
    struct parse_ctx *c = xcalloc(1, sizeof *c);
    c->sw = sw;
    bool ok = config_read_ini(file, on_line, c, c->why, err, errlen);
    if (ok)
        ok = build_axes(sw, c, err, errlen);
    free(c);
    if (!ok)
        sweep_free(sw);
    return ok;
}

void sweep_point_overrides(const sweep_t *sw, int64_t i, char **over)
{
    /* digit of each axis in mixed radix, the last axis fastest */
    int digit[SWEEP_MAX_KEYS];
    int64_t rest = i;
    for (int a = sw->n_axes - 1; a >= 0; a--) {
        digit[a] = (int)(rest % sw->axis_len[a]);
        rest /= sw->axis_len[a];
    }
    for (int k = 0; k < sw->n_keys; k++) {
        const sweep_key_t *key = &sw->keys[k];
        const char *v = key->values[digit[key->axis]];
        size_t n = strlen(key->section) + strlen(key->name) + strlen(v) + 3;
        over[k] = xmalloc(n);
        snprintf(over[k], n, "%s.%s=%s", key->section, key->name, v);
    }
}

void sweep_free_overrides(const sweep_t *sw, char **over)
{
    for (int k = 0; k < sw->n_keys; k++)
        free(over[k]);
}

/* The value of section.key in config_to_ini text ("[section]" then "key = value"). */
static bool ini_text_value(const char *text, const char *section, const char *key, char *out, size_t n)
{
    bool in = false;
    size_t klen = strlen(key);
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (p[0] == '[') {
            in = len == strlen(section) + 2 && !strncmp(p + 1, section, strlen(section)) && p[len - 1] == ']';
        } else if (in && len >= klen + 3 && !strncmp(p, key, klen) && !strncmp(p + klen, " = ", 3)) {
            snprintf(out, n, "%.*s", (int)(len - klen - 3), p + klen + 3);
            return true;
        }
        p += len + (eol ? 1 : 0);
    }
    return false;
}

/* Characters a substituted value may keep in a directory name; others become '_'. */
static bool name_char_ok(char ch)
{
    return isalnum((unsigned char)ch) || strchr("._,+=-", ch);
}

bool sweep_expand_name(config_t *cfg, int64_t index, char *err, size_t errlen)
{
    char tmpl[CFG_PATH_LEN], out[CFG_PATH_LEN];
    snprintf(tmpl, sizeof tmpl, "%s", cfg->name);
    char *text = config_to_ini(cfg);
    size_t o = 0;
    bool ok = true;
    for (const char *p = tmpl; *p && ok;) {
        if (*p != '{') {
            if (o + 1 < sizeof out)
                out[o++] = *p;
            p++;
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close) {
            ok = errorf(err, errlen, "run.name: template '%s' has a '{' without '}'", tmpl);
            break;
        }
        char field[KEYTEXT], value[CFG_PATH_LEN], s[CFG_NAME_LEN], k[CFG_NAME_LEN];
        snprintf(field, sizeof field, "%.*s", (int)(close - p - 1), p + 1);
        if (!strcmp(field, "index")) {
            snprintf(value, sizeof value, "%lld", (long long)index);
        } else if (!split_key(field, s, k) || !config_has_key(s, k)) {
            ok = errorf(err, errlen, "run.name: template field '{%s}' is not a config key (section.key or index)",
                      field);
            break;
        } else if (!strcmp(s, "model") && !strcmp(k, "size")) {
            snprintf(value, sizeof value, "%s", cfg->size);  /* the INI text has it expanded */
        } else if (!ini_text_value(text, s, k, value, sizeof value)) {
            ok = errorf(err, errlen, "run.name: no value for '{%s}'", field);
            break;
        }
        bool under = false;  /* collapse runs of unsafe characters into one '_' */
        for (const char *v = value; *v && o + 1 < sizeof out; v++) {
            if (name_char_ok(*v)) {
                out[o++] = *v;
                under = false;
            } else if (!under) {
                out[o++] = '_';
                under = true;
            }
        }
        p = close + 1;
    }
    free(text);
    if (!ok)
        return false;
    out[o] = 0;
    if (!out[0] || out[0] == '.' || strchr(out, '/'))
        return errorf(err, errlen, "run.name: '%s' (from '%s') is not a usable directory name", out, tmpl);
    strcpy(cfg->name, out);
    return true;
}

static bool given_in(int n, char *const *over, const char *prefix)
{
    for (int i = 0; i < n; i++)
        if (!strncmp(over[i], prefix, strlen(prefix)))
            return true;
    return false;
}

bool sweep_point_config(const sweep_t *sw, int64_t i, int n_extra, char *const *extra,
                        config_t *cfg, char *err, size_t errlen)
{
    if (i < 0 || i >= sw->n_points)
        return errorf(err, errlen, "%s: point %lld does not exist; the sweep has %lld (0 to %lld)", sw->file,
                    (long long)i, (long long)sw->n_points, (long long)sw->n_points - 1);
    int n = sw->n_keys + n_extra;
    char **over = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *over);
    sweep_point_overrides(sw, i, over);
    for (int e = 0; e < n_extra; e++)
        over[sw->n_keys + e] = extra[e];
    char why[2048];
    bool ok = config_load(cfg, sw->file, n, over, why, sizeof why);
    if (!ok) {
        /* config_load names the file first; say which point, with its overrides */
        size_t fl = strlen(sw->file);
        const char *msg = !strncmp(why, sw->file, fl) && !strncmp(why + fl, ": ", 2) ? why + fl + 2 : why;
        char point[1024] = "";
        size_t len = 0;
        for (int k = 0; k < sw->n_keys && len < sizeof point; k++)
            len += (size_t)snprintf(point + len, sizeof point - len, "%s%s", k ? " " : "", over[k]);
        errorf(err, errlen, "%s: point %lld (%s): %s", sw->file, (long long)i, point, msg);
    } else {
        bool experiment = sw->experiment_given || given_in(n, over, "run.experiment=");
        if (!experiment)
            snprintf(cfg->experiment, sizeof cfg->experiment, "%s", sw->stem);
        ok = sweep_expand_name(cfg, i, why, sizeof why);
        if (!ok)
            errorf(err, errlen, "%s: point %lld: %s", sw->file, (long long)i, why);
    }
    sweep_free_overrides(sw, over);
    free(over);
    return ok;
}

bool sweep_check_all(const sweep_t *sw, int n_extra, char *const *extra, char *err, size_t errlen)
{
    char (*dirs)[2 * CFG_PATH_LEN] = xmalloc((size_t)sw->n_points * sizeof *dirs);
    config_t cfg;
    bool ok = true;
    for (int64_t i = 0; i < sw->n_points && ok; i++) {
        ok = sweep_point_config(sw, i, n_extra, extra, &cfg, err, errlen);
        if (!ok)
            break;
        snprintf(dirs[i], sizeof dirs[i], "%s/%s", cfg.out_dir, cfg.name);
        for (int64_t j = 0; j < i && ok; j++)
            if (!strcmp(dirs[i], dirs[j]))
                ok = errorf(err, errlen, "%s: points %lld and %lld both run in %s; put the swept keys in the "
                          "run.name template", sw->file, (long long)j, (long long)i, dirs[i]);
    }
    free(dirs);
    return ok;
}

void sweep_free(sweep_t *sw)
{
    for (int k = 0; k < sw->n_keys; k++) {
        for (int v = 0; v < sw->keys[k].n_values; v++)
            free(sw->keys[k].values[v]);
        free(sw->keys[k].values);
    }
    sw->n_keys = 0;
}
