/* The paired step-time ratio of `motscale steptime`: per burst pair the ratio of the
 * two bursts' median step times, their median and its sign-test interval; the result
 * written as INI (read back by compare --steptime) or JSON. */
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "motscale/analysis.h"
#include "motscale/common.h"
#include "pair.h"

void analysis_steptime_ratio(analysis_steptime_t *st, const double *a, const double *b,
                             size_t pairs)
{
    double *r = xmalloc((pairs + 1) * sizeof *r);
    for (size_t i = 0; i < pairs; i++)
        r[i] = b[i] / a[i];
    st->pairs = pairs;
    analysis_sign_interval(&st->ratio, r, pairs, ANALYSIS_LEVEL);
    st->med_a = analysis_median(a, pairs);
    st->med_b = analysis_median(b, pairs);
    free(r);
}

void analysis_steptime_write(FILE *out, const analysis_steptime_t *st)
{
    fprintf(out, "; motscale steptime: B's step time over A's, paired bursts (docs/analysis.md)\n"
                 "[steptime]\na = %s\nb = %s\na_label = %s\nb_label = %s\na_size = %s\n"
                 "b_size = %s\npairs = %zu\nsteps = %zu\nskip = %zu\nmedian_a = %.9g\n"
                 "median_b = %.9g\nload = %.4g\nratio = %.9g\nlo = %.9g\nhi = %.9g\n"
                 "method = %s\n",
            st->a, st->b, st->a_label, st->b_label, st->a_size, st->b_size, st->pairs,
            st->steps, st->skip, st->med_a, st->med_b, st->load, st->ratio.value, st->ratio.lo,
            st->ratio.hi, st->ratio.method);
}

static int read_key(void *user, const char *section, const char *name, const char *value)
{
    analysis_steptime_t *st = user;
    if (strcmp(section, "steptime"))
        return 1;
    struct { const char *k; char *s; size_t len; } strs[] = {
        {"a", st->a, sizeof st->a}, {"b", st->b, sizeof st->b},
        {"a_label", st->a_label, sizeof st->a_label}, {"b_label", st->b_label, sizeof st->b_label},
        {"a_size", st->a_size, sizeof st->a_size}, {"b_size", st->b_size, sizeof st->b_size},
        {"method", st->ratio.method, sizeof st->ratio.method}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!strcmp(name, strs[i].k))
            snprintf(strs[i].s, strs[i].len, "%s", value);
    struct { const char *k; double *v; } nums[] = {
        {"median_a", &st->med_a}, {"median_b", &st->med_b}, {"load", &st->load},
        {"ratio", &st->ratio.value}, {"lo", &st->ratio.lo}, {"hi", &st->ratio.hi}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (!strcmp(name, nums[i].k))
            *nums[i].v = strtod(value, NULL);
    if (!strcmp(name, "pairs"))
        st->pairs = (size_t)strtoull(value, NULL, 10);
    return 1;
}

bool analysis_steptime_read(analysis_steptime_t *st, const char *path, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    st->ratio.value = st->ratio.lo = st->ratio.hi = NAN;
    int rc = ini_parse(path, read_key, st);
    if (rc < 0)
        return errorf(err, errlen, "%s: cannot open the steptime result", path);
    if (rc > 0)
        return errorf(err, errlen, "%s:%d: not a steptime result (motscale steptime --out)", path,
                      rc);
    if (!(st->ratio.value > 0) || !st->a_label[0] || !st->b_label[0])
        return errorf(err, errlen, "%s: no [steptime] ratio, a_label and b_label", path);
    return true;
}

void analysis_steptime_json(FILE *out, const analysis_steptime_t *st)
{
    fputc('{', out);
    json_kv_str(out, true, "a", st->a);
    json_kv_str(out, false, "b", st->b);
    json_kv_str(out, false, "a_label", st->a_label);
    json_kv_str(out, false, "b_label", st->b_label);
    json_kv_str(out, false, "a_size", st->a_size);
    json_kv_str(out, false, "b_size", st->b_size);
    json_kv_num(out, false, "pairs", (double)st->pairs);
    json_kv_num(out, false, "steps", (double)st->steps);
    json_kv_num(out, false, "skip", (double)st->skip);
    json_kv_num(out, false, "median_step_time_a_s", st->med_a);
    json_kv_num(out, false, "median_step_time_b_s", st->med_b);
    json_kv_num(out, false, "load_avg", st->load);
    fprintf(out, ", \"ratio\": ");
    json_interval(out, &st->ratio);
    fprintf(out, "}\n");
}
