/* A baseline/candidate pair analysed series by series (overall, then each modality),
 * and its table, JSON and headline output; shared by compare and report. Private to
 * analysis/. */
#ifndef MOTSCALE_ANALYSIS_PAIR_H
#define MOTSCALE_ANALYSIS_PAIR_H

#include <stdio.h>

#include "motscale/analysis.h"

#define PAIR_MAX_WARN 16

typedef struct pair_series {
    char name[ANALYSIS_NAME_LEN];     /* "overall" or the modality */
    analysis_series_t base, cand;
    analysis_match_t match;
} pair_series_t;

typedef struct pair {
    const runrec_t *base, *cand;
    analysis_metric_t metric;
    double window;
    int n_series;
    pair_series_t series[ANALYSIS_MAX_MOD + 1];
    int n_warn;
    char warn[PAIR_MAX_WARN][256];
} pair_t;

/* Modalities are matched by name; one missing from the candidate is skipped with a
 * warning. */
void pair_compute(pair_t *p, const runrec_t *base, const runrec_t *cand,
                  analysis_metric_t metric, double window);
void pair_free(pair_t *p);
const char *pair_metric_name(analysis_metric_t m);
void pair_print_table(FILE *out, const pair_t *p);
void pair_print_json(FILE *out, const pair_t *p);
/* "headline: mot reaches dense's final image training loss (...) with X% of the
 * FLOPs, Y% of the wall-clock", one line per series. */
void pair_print_headlines(FILE *out, const pair_t *p);

void json_string(FILE *out, const char *s);
void json_number(FILE *out, double v);

#endif
