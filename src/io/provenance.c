/* Provenance strings from their real sources: the build's git revision, the MPI,
 * HDF5 and OpenBLAS libraries linked at run time, host names gathered over
 * MPI_COMM_WORLD, the Slurm environment and the UTC clock. */
#include <cblas.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "motscale/common.h"
#include "motscale/provenance.h"

#ifndef MOTSCALE_GIT_COMMIT
#define MOTSCALE_GIT_COMMIT "unknown"
#endif

const char *provenance_git_commit(void)
{
    return MOTSCALE_GIT_COMMIT;
}

void provenance_mpi_library_version(char *buf, size_t len)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    if (len == 0)
        return;
    if (MPI_Get_library_version(v, &n) != MPI_SUCCESS) {
        snprintf(buf, len, "unknown");
        return;
    }
    /* Open MPI ends the string with a newline; keep attributes one line. */
    size_t o = 0;
    for (int i = 0; i < n && v[i] && o + 3 < len; i++) {
        if (v[i] == '\n') {
            if (i + 1 < n && v[i + 1]) {
                buf[o++] = ';';
                buf[o++] = ' ';
            }
        } else {
            buf[o++] = v[i];
        }
    }
    while (o > 0 && (buf[o - 1] == ' ' || buf[o - 1] == ';'))
        o--;
    buf[o] = '\0';
}

void provenance_hdf5_version(char *buf, size_t len)
{
    unsigned maj = 0, min = 0, rel = 0;
    if (H5get_libversion(&maj, &min, &rel) < 0)
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "HDF5 %u.%u.%u", maj, min, rel);
}

void provenance_blas(char *buf, size_t len)
{
    const char *cfg = openblas_get_config();
    char c[256];
    snprintf(c, sizeof c, "%s", cfg ? cfg : "OpenBLAS");
    size_t n = strlen(c);
    while (n > 0 && c[n - 1] == ' ') /* the config string ends with a space */
        c[--n] = '\0';
    int nt = openblas_get_num_threads();
    snprintf(buf, len, "%s (%d thread%s)", c, nt, nt == 1 ? "" : "s");
}

char *provenance_hostnames(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (!up || down) {
        char h[256] = "unknown";
        if (gethostname(h, sizeof h) != 0)
            snprintf(h, sizeof h, "unknown");
        h[sizeof h - 1] = '\0';
        char *s = xmalloc(strlen(h) + 1);
        memcpy(s, h, strlen(h) + 1);
        return s;
    }

    int size = 1, namelen = 0;
    char mine[MPI_MAX_PROCESSOR_NAME];
    memset(mine, 0, sizeof mine);
    if (MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS)
        return NULL;
    if (MPI_Get_processor_name(mine, &namelen) != MPI_SUCCESS)
        snprintf(mine, sizeof mine, "unknown");
    /* Fixed-size slots: one Allgather, no length exchange. Every rank reaches this
     * call even if its own name lookup failed, so no rank is left waiting. */
    char *all = xmalloc((size_t)size * MPI_MAX_PROCESSOR_NAME);
    int rc = MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all,
                           MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return NULL;
    }

    size_t cap = (size_t)size * (MPI_MAX_PROCESSOR_NAME + 1) + 1, o = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (int r = 0; r < size; r++) {
        const char *h = all + (size_t)r * MPI_MAX_PROCESSOR_NAME;
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
            seen = strncmp(h, all + (size_t)q * MPI_MAX_PROCESSOR_NAME,
                           MPI_MAX_PROCESSOR_NAME) == 0;
        if (seen)
            continue;
        size_t n = strnlen(h, MPI_MAX_PROCESSOR_NAME);
        if (o)
            out[o++] = ',';
        memcpy(out + o, h, n);
        o += n;
        out[o] = '\0';
    }
    free(all);
    return out;
}

void provenance_utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    if (t == (time_t)-1 || !gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "unknown");
}

static void copy_env(char *dst, size_t len, const char *name)
{
    const char *v = getenv(name);
    snprintf(dst, len, "%s", v ? v : "");
}

void provenance_slurm(provenance_slurm_t *s)
{
    copy_env(s->job_id, sizeof s->job_id, "SLURM_JOB_ID");
    copy_env(s->array_job_id, sizeof s->array_job_id, "SLURM_ARRAY_JOB_ID");
    copy_env(s->array_task_id, sizeof s->array_task_id, "SLURM_ARRAY_TASK_ID");
    const char *rc = getenv("SLURM_RESTART_COUNT");
    char *end = NULL;
    long n = rc ? strtol(rc, &end, 10) : 0;
    s->restart_count = (rc && end != rc && n >= 0 && n < 1000000) ? (int)n : 0;
}

void provenance_cpu_sample(provenance_cpu_t *s)
{
    s->total = s->steal = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    /* cpu user nice system idle iowait irq softirq steal guest guest_nice */
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return;
    for (int i = 0; i < 8; i++)
        s->total += (double)v[i];
    s->steal = n >= 8 ? (double)v[7] : 0;
}

double provenance_cpu_steal(const provenance_cpu_t *before, const provenance_cpu_t *after)
{
    if (after->total <= 0)
        return NAN; /* no /proc/stat */
    double dt = after->total - before->total;
    return dt > 0 ? (after->steal - before->steal) / dt : 0;
}

double provenance_load_average(void)
{
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : NAN;
}

double provenance_peak_rss(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? 1024.0 * (double)u.ru_maxrss : NAN;
}
