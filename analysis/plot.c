/* Figures through gnuplot: a script and a data file per figure, rendered to PNG
 * (pngcairo, or libgd png where cairo is missing) and SVG by one gnuplot process. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "plot.h"

#define PLOT_SIZE "960,600"

static int png_cairo = -1; /* -1 unknown, 0 libgd png, 1 pngcairo */

bool plot_available(void)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        return false;
    if (png_cairo < 0) {
        FILE *p = popen("gnuplot -e 'set terminal' 2>&1", "r");
        char line[256];
        png_cairo = 0;
        while (p && fgets(line, sizeof line, p))
            if (strstr(line, "pngcairo"))
                png_cairo = 1;
        if (p)
            pclose(p);
    }
    return true;
}

void plot_sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            *s = '_';
}

void plot_str(FILE *out, const char *s)
{
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', out);
        if (*s != '\n')
            fputc(*s, out);
    }
    fputc('\'', out);
}

/* Shell single-quoted form of s into out. */
static void shell_quote(char *out, size_t len, const char *s)
{
    size_t k = 0;
    if (k + 1 < len)
        out[k++] = '\'';
    for (; *s && k + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *s;
        }
    }
    if (k + 1 < len)
        out[k++] = '\'';
    out[k] = '\0';
}

bool plot_open(plot_t *p, const char *dir, const char *name, const char *title,
               const char *xlabel, const char *ylabel, char *err, size_t errlen)
{
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    snprintf(p->name, sizeof p->name, "%s", name);
    plot_sanitize(p->name);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.gp", p->dir, p->name);
    p->gp = fopen(path, "w");
    snprintf(path, sizeof path, "%s/%s.dat", p->dir, p->name);
    p->dat = fopen(path, "w");
    if (!p->gp || !p->dat) {
        snprintf(err, errlen, "cannot create %s/%s.gp or .dat", p->dir, p->name);
        if (p->gp)
            fclose(p->gp);
        if (p->dat)
            fclose(p->dat);
        return false;
    }
    fprintf(p->gp, "# %s: rendered by motscale report (gnuplot %s.gp in this folder)\n",
            p->name, p->name);
    fprintf(p->gp, "set terminal %s size %s noenhanced font 'sans,11'\n",
            png_cairo == 1 ? "pngcairo" : "png", PLOT_SIZE);
    fprintf(p->gp, "set output '%s.png'\nset encoding utf8\nset title ", p->name);
    plot_str(p->gp, title);
    fprintf(p->gp, "\nset xlabel ");
    plot_str(p->gp, xlabel);
    fprintf(p->gp, "\nset ylabel ");
    plot_str(p->gp, ylabel);
    fprintf(p->gp, "\nset grid\nset key outside right top box\nset datafile missing 'NaN'\n");
    fprintf(p->gp, "DAT = '%s.dat'\n", p->name);
    return true;
}

bool plot_close(plot_t *p, char *err, size_t errlen)
{
    fprintf(p->gp, "set terminal svg size %s noenhanced font 'sans,11' background rgb 'white'\n"
                   "set output '%s.svg'\nreplot\nunset output\n",
            PLOT_SIZE, p->name);
    bool wrote = !ferror(p->gp) && !ferror(p->dat);
    wrote = (fclose(p->gp) == 0) && wrote;
    wrote = (fclose(p->dat) == 0) && wrote;
    if (!wrote) {
        snprintf(err, errlen, "writing %s/%s.gp or .dat failed", p->dir, p->name);
        return false;
    }
    char qdir[8300], cmd[9000];
    shell_quote(qdir, sizeof qdir, p->dir);
    snprintf(cmd, sizeof cmd, "cd %s && gnuplot '%s.gp' >'%s.log' 2>&1", qdir, p->name, p->name);
    int rc = system(cmd);
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s.png", p->dir, p->name);
    bool png = stat(path, &st) == 0 && st.st_size > 0;
    snprintf(path, sizeof path, "%s/%s.svg", p->dir, p->name);
    bool svg = stat(path, &st) == 0 && st.st_size > 0;
    snprintf(path, sizeof path, "%s/%s.log", p->dir, p->name);
    if (rc != 0 || !png || !svg) {
        char line[512] = "no message";
        FILE *log = fopen(path, "r");
        if (log) {
            /* gnuplot's error is the last non-empty line */
            char buf[512];
            while (fgets(buf, sizeof buf, log))
                if (buf[0] != '\n')
                    snprintf(line, sizeof line, "%s", buf);
            fclose(log);
            line[strcspn(line, "\n")] = '\0';
        }
        snprintf(err, errlen, "gnuplot failed on %s/%s.gp (exit %d): %s", p->dir, p->name,
                 WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, line);
        return false;
    }
    remove(path); /* an empty log of a clean run */
    return true;
}
