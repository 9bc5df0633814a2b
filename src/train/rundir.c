/* The run directory (rundir.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

static int mkdir_p(const char *path)
{
    char buf[RUNDIR_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

void rundir_look(rundir_t *r, const char *out_dir, const char *name)
{
    snprintf(r->dir, sizeof r->dir, "%s/%s", out_dir, name);
    snprintf(r->ckdir, sizeof r->ckdir, "%s/checkpoints", r->dir);
    snprintf(r->runfile, sizeof r->runfile, "%s/run.h5", r->dir);
    char path[RUNDIR_PATH_LEN];
    snprintf(path, sizeof path, "%s/status", r->dir);
    r->status[0] = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(r->status, (int)sizeof r->status, f))
            r->status[strcspn(r->status, "\n")] = 0;
        fclose(f);
    }
    r->exists = access(r->runfile, F_OK) == 0;
}

int rundir_prepare(const rundir_t *r, bool resume)
{
    if (!strcmp(r->status, "completed")) {
        fprintf(stderr, "motscale: %s holds a completed run; choose another run.name or remove it\n", r->dir);
        return EXIT_BADINPUT;
    }
    if (r->exists && !resume) {
        fprintf(stderr, "motscale: %s already holds a run (status '%s'); set train.resume=auto to continue it\n",
                r->dir, r->status[0] ? r->status : "unknown");
        return EXIT_BADINPUT;
    }
    if (mkdir_p(r->ckdir) != 0) {
        fprintf(stderr, "motscale: cannot create run directory %s: %s\n", r->ckdir, strerror(errno));
        return EXIT_FAULT;
    }
    return EXIT_OK;
}

bool rundir_write_file(const rundir_t *r, const char *name, const char *text)
{
    char path[RUNDIR_PATH_LEN], tmp[RUNDIR_PATH_LEN + 8];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", r->dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok && rename(tmp, path) == 0;
}

void rundir_set_status(const rundir_t *r, const char *status)
{
    char line[80];
    snprintf(line, sizeof line, "%s\n", status);
    if (!rundir_write_file(r, "status", line))
        warnf("cannot write %s/status: %s", r->dir, strerror(errno));
}
