/* Private to analysis/: the text and JSON writers shared by compare, report and
 * steptime. */
#ifndef MOTSCALE_ANALYSIS_PAIR_H
#define MOTSCALE_ANALYSIS_PAIR_H

#include <stdbool.h>
#include <stdio.h>

#include "motscale/analysis.h"

/* snprintf for labels, messages and file names, where cutting a long one short is
 * fine. */
void sfmt(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void json_string(FILE *out, const char *s);
/* A number, or null where it is not one (not reached, too few points). */
void json_number(FILE *out, double v);
void json_array(FILE *out, const double *v, size_t n);
/* `, "key": "value"` / `, "key": number` (without the comma when first). */
void json_kv_str(FILE *out, bool first, const char *key, const char *value);
void json_kv_num(FILE *out, bool first, const char *key, double value);
/* {"value": .., "lo": .., "hi": .., "method": ".."}; _fields leaves it open. */
void json_interval(FILE *out, const analysis_interval_t *iv);
void json_interval_fields(FILE *out, const analysis_interval_t *iv);

#endif
