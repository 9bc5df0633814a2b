/* Figures through gnuplot: each figure is a script NAME.gp and its data NAME.dat in
 * the output folder, rendered to NAME.png and NAME.svg by one gnuplot run. Private
 * to analysis/. */
#ifndef MOTSCALE_ANALYSIS_PLOT_H
#define MOTSCALE_ANALYSIS_PLOT_H

#include <stdbool.h>
#include <stdio.h>

typedef struct plot {
    char dir[4096];
    char name[256];   /* file stem, safe characters only */
    FILE *gp, *dat;   /* write the settings and plot command to gp, rows to dat */
} plot_t;

/* True when a gnuplot is on PATH. */
bool plot_available(void);
/* Create dir/NAME.gp with the PNG terminal set and title/axis labels written, and
 * dir/NAME.dat; name is sanitised. false with err filled when a file cannot be made. */
bool plot_open(plot_t *p, const char *dir, const char *name, const char *title,
               const char *xlabel, const char *ylabel, char *err, size_t errlen);
/* Add the SVG pass, close both files, run gnuplot; false with err (gnuplot's first
 * error line) when it fails or leaves no PNG/SVG. */
bool plot_close(plot_t *p, char *err, size_t errlen);
/* A gnuplot single-quoted string literal ('' inside). */
void plot_str(FILE *out, const char *s);
/* Replace every character outside [A-Za-z0-9._-] with '_'. */
void plot_sanitize(char *s);

#endif
