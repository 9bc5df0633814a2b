/* The run directory (rundir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
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

/* The status file and whether run.h5 is there. */
static void rundir_look_again(rundir_t *r)
{
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

void rundir_look(rundir_t *r, const char *out_dir, const char *name)
{
    snprintf(r->dir, sizeof r->dir, "%s/%s", out_dir, name);
    snprintf(r->ckdir, sizeof r->ckdir, "%s/checkpoints", r->dir);
    snprintf(r->runfile, sizeof r->runfile, "%s/run.h5", r->dir);
    rundir_look_again(r);
    r->lock_fd = -1;
    r->lock_is_file = false;
}

/* "host pid N since UTC" of this process, for the lock file. */
static void holder_text(char *out, size_t len)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(out, len, "%s pid %ld since %s\n", host, (long)getpid(), when);
}

static void read_holder(const char *path, char *out, size_t len)
{
    snprintf(out, len, "another process");
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
}

/* A lock file left by a process on this host that is gone. */
static bool stale(const char *holder)
{
    char host[256] = "", me[256] = "";
    long pid = 0;
    gethostname(me, sizeof me - 1);
    return sscanf(holder, "%255s pid %ld", host, &pid) == 2 && !strcmp(host, me) && pid > 0 &&
           kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* dir/lock: flock where the file system has it (released by the kernel however the
 * holder ends); elsewhere the file itself, created exclusively and taken over only
 * from a dead process on this host. */
static int take_lock(rundir_t *r)
{
    char path[RUNDIR_PATH_LEN], me[512], holder[512];
    snprintf(path, sizeof path, "%s/lock", r->dir);
    holder_text(me, sizeof me);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        fprintf(stderr, "motscale: cannot create %s: %s\n", path, strerror(errno));
        return EXIT_FAULT;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        if (ftruncate(fd, 0) != 0 || write(fd, me, strlen(me)) != (ssize_t)strlen(me))
            warnf("cannot record the holder in %s: %s", path, strerror(errno));
        r->lock_fd = fd;
        return EXIT_OK;
    }
    int why = errno;
    close(fd);
    if (why == EWOULDBLOCK) {
        read_holder(path, holder, sizeof holder);
        fprintf(stderr, "motscale: %s is being written by %s; one run directory has one writer "
                "(wait for it, stop it, or choose another run.name)\n", r->dir, holder);
        return EXIT_BADINPUT;
    }
    /* no flock on this file system: an exclusive lock file */
    snprintf(path, sizeof path, "%s/lock.pid", r->dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            if (write(fd, me, strlen(me)) != (ssize_t)strlen(me))
                warnf("cannot record the holder in %s: %s", path, strerror(errno));
            r->lock_fd = fd;
            r->lock_is_file = true;
            return EXIT_OK;
        }
        read_holder(path, holder, sizeof holder);
        if (errno != EEXIST || !stale(holder))
            break;
        warnf("%s: the lock of %s is stale (that process is gone); taking it over", r->dir, holder);
        unlink(path);
    }
    fprintf(stderr, "motscale: %s is being written by %s (lock file %s); one run directory has one writer\n",
            r->dir, holder, path);
    return EXIT_BADINPUT;
}

bool rundir_has_room(const rundir_t *r, double bytes, double *free_bytes)
{
    struct statvfs fs;
    *free_bytes = -1;
    if (statvfs(r->dir, &fs) != 0)
        return true;
    *free_bytes = (double)fs.f_bavail * (double)fs.f_frsize;
    return *free_bytes >= bytes;
}

void rundir_unlock(rundir_t *r)
{
    if (r->lock_fd < 0)
        return;
    if (r->lock_is_file) {
        char path[RUNDIR_PATH_LEN];
        snprintf(path, sizeof path, "%s/lock.pid", r->dir);
        unlink(path);
    }
    close(r->lock_fd); /* releases the flock */
    r->lock_fd = -1;
}

/* dir/checkpoints holds at least one checkpoint file. */
static bool has_checkpoints(const char *ckdir)
{
    DIR *d = opendir(ckdir);
    if (!d)
        return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        long long s;
        found = sscanf(e->d_name, "ckpt-%lld.h5", &s) == 1;
    }
    closedir(d);
    return found;
}

int rundir_prepare(rundir_t *r, bool resume, bool record_optional)
{
    if (mkdir_p(r->dir) != 0) {
        fprintf(stderr, "motscale: cannot create run directory %s: %s\n", r->dir, strerror(errno));
        return EXIT_FAULT;
    }
    int code = take_lock(r);
    if (code)
        return code;
    /* what is there now, seen by the one writer */
    rundir_look_again(r);
    struct stat st;
    if (stat(r->ckdir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "motscale: %s is not a directory; it must hold the checkpoints\n", r->ckdir);
        return EXIT_BADINPUT;
    }
    if (resume && !record_optional && !r->exists && has_checkpoints(r->ckdir)) {
        fprintf(stderr, "motscale: %s holds checkpoints but no run.h5: resuming would lose every row logged "
                "before them; restore run.h5, remove the checkpoints to start again, or continue from the "
                "checkpoint in a new record with train.resume=checkpoint\n", r->dir);
        return EXIT_BADINPUT;
    }
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
    char line[80], path[RUNDIR_PATH_LEN];
    snprintf(line, sizeof line, "%s\n", status);
    if (rundir_write_file(r, "status", line))
        return;
    /* a full disk has no room for a new file: rewrite the old one in place (the
     * statuses are a few bytes, within the block it already has) */
    snprintf(path, sizeof path, "%s/status", r->dir);
    int fd = open(path, O_WRONLY);
    bool ok = fd >= 0 && pwrite(fd, line, strlen(line), 0) == (ssize_t)strlen(line) &&
              ftruncate(fd, (off_t)strlen(line)) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    if (!ok)
        warnf("cannot write %s: %s", path, strerror(errno));
}
