/* The run directory out_dir/name: its paths, its one-writer lock, the status file,
 * and the verdict a start gets (refuse a completed run, an existing one unless
 * resuming, a directory another process writes; create it otherwise). Private to
 * src/train. */
#ifndef MOTSCALE_TRAIN_RUNDIR_H
#define MOTSCALE_TRAIN_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>

#include "motscale/common.h"

/* room for out_dir/name/ plus a file name */
enum { RUNDIR_LEN = 2 * CFG_PATH_LEN + 2, RUNDIR_PATH_LEN = RUNDIR_LEN + 64 };

typedef struct rundir {
    char dir[RUNDIR_LEN];
    char ckdir[RUNDIR_PATH_LEN];     /* dir/checkpoints */
    char runfile[RUNDIR_PATH_LEN];   /* dir/run.h5 */
    char status[64];                 /* the status file's line when the start looked */
    bool exists;                     /* run.h5 was there */
    int lock_fd;                     /* dir/lock, held while this process writes; -1 */
    bool lock_is_file;               /* no flock here: the lock is the file itself */
} rundir_t;

/* Paths of out_dir/name and what is there now (status, run.h5). */
void rundir_look(rundir_t *r, const char *out_dir, const char *name);

/* The verdict for a start (world rank 0), after taking the lock: EXIT_OK after
 * creating dir/checkpoints; EXIT_BADINPUT for a directory another process holds, a
 * completed run, an existing one without resume, a checkpoints path that is not a
 * directory, or checkpoints without their run.h5 unless record_optional
 * (train.resume = checkpoint); EXIT_FAULT when the directory cannot be made. The
 * message is printed. */
int rundir_prepare(rundir_t *r, bool resume, bool record_optional);

/* Has the directory's file system at least `bytes` free? (true when it cannot tell)
 * The trainer stops while the run record still has room to grow and close: HDF5
 * that meets a full disk mid-write cannot close the file again. */
bool rundir_has_room(const rundir_t *r, double bytes, double *free_bytes);

/* Release the lock (at exit; the kernel releases a flock lock of a killed process). */
void rundir_unlock(rundir_t *r);

/* Replace the status file (temporary name, then rename); a failure is a warning. */
void rundir_set_status(const rundir_t *r, const char *status);

/* Write dir/NAME atomically with text; false with errno set on failure. */
bool rundir_write_file(const rundir_t *r, const char *name, const char *text);

#endif
