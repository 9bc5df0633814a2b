/* Messages, checked allocation and the clock shared by every module. */
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "motscale/common.h"

int motscale_rank = -1;

_Noreturn void die_at(const char *file, int line, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (motscale_rank >= 0)
        fprintf(stderr, "motscale[rank %d]: %s (%s:%d)\n", motscale_rank, msg, file, line);
    else
        fprintf(stderr, "motscale: %s (%s:%d)\n", msg, file, line);
    fflush(stderr);
    int up = 0, down = 0, size = 1;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) {
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1)
            MPI_Abort(MPI_COMM_WORLD, status);
        MPI_Finalize();
    }
    exit(status);
}

void warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (motscale_rank >= 0)
        fprintf(stderr, "motscale[rank %d]: warning: ", motscale_rank);
    else
        fprintf(stderr, "motscale: warning: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void infof(const char *fmt, ...)
{
    if (motscale_rank > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void *xmalloc_at(const char *file, int line, size_t nbytes)
{
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p)
        die_at(file, line, EXIT_FAULT, "out of memory allocating %zu bytes", nbytes);
    return p;
}

void *xcalloc_at(const char *file, int line, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die_at(file, line, EXIT_FAULT, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

_Bool errorf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return 0;
}
