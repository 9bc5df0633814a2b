/* Shared basics: the scalar type the model is built in, checked-call helpers that
 * name file, line and rank, and exit codes. Everything else includes this. */
#ifndef MOTSCALE_COMMON_H
#define MOTSCALE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The model is fp32; the gradient-check build (-DMOTSCALE_DOUBLE) compiles the same
 * sources in double so finite differences are meaningful. */
#ifdef MOTSCALE_DOUBLE
typedef double real;
#define MPI_REAL_T MPI_DOUBLE
#define H5T_REAL_T H5T_NATIVE_DOUBLE
#define REAL_EXP exp
#define REAL_SQRT sqrt
#else
typedef float real;
#define MPI_REAL_T MPI_FLOAT
#define H5T_REAL_T H5T_NATIVE_FLOAT
#define REAL_EXP expf   /* element-wise math in the model's precision */
#define REAL_SQRT sqrtf
#endif

#define MOTSCALE_VERSION "0.1.0"

/* Sizes shared by every layer: modalities a run can have, and the capacity of the
 * names and paths that configuration, data and run records carry. */
#define MAX_MODALITIES 3

/* What a window position holds, for continuous images (model.image_objective =
 * diffusion): the data module marks each position, the model and the trainer read
 * the marks. POS_CAPTION_AFTER: a caption token that follows its image. */
enum pos_kind { POS_OTHER, POS_CAPTION_AFTER, POS_PATCH_IMAGE_FIRST, POS_PATCH_CAPTION_FIRST };
#define CFG_NAME_LEN 64
#define CFG_PATH_LEN 1024

/* Exit statuses, documented in docs/cli.md. */
enum {
    EXIT_OK = 0,
    EXIT_FAULT = 1,     /* a fault: I/O error, non-finite loss, MPI failure */
    EXIT_BADINPUT = 2,  /* bad config, data file, checkpoint or layout */
    EXIT_PREEMPTED = 75 /* checkpointed on a signal; the job should be requeued */
};

/* World rank for message prefixes; -1 before MPI is up or without MPI. */
extern int motscale_rank;

/* Print "motscale[rank R]: file:line: msg" to stderr and end the whole job with
 * `status` (MPI_Abort when MPI is running with more than one rank). */
_Noreturn void die_at(const char *file, int line, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define DIE(status, ...) die_at(__FILE__, __LINE__, (status), __VA_ARGS__)

/* A warning from any rank, prefixed with the rank. */
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Progress from world rank 0 only. */
void infof(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Format a one-line error into err (errlen bytes) and return false, for the
 * functions that report bad input to their caller instead of dying. */
_Bool errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checked allocation: dies naming the caller and the byte count. */
void *xmalloc_at(const char *file, int line, size_t nbytes);
void *xcalloc_at(const char *file, int line, size_t n, size_t size);
#define xmalloc(n) xmalloc_at(__FILE__, __LINE__, (n))
#define xcalloc(n, s) xcalloc_at(__FILE__, __LINE__, (n), (s))

/* Monotonic wall-clock seconds. */
double now_seconds(void);

#endif
