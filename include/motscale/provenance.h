/* Provenance for every output file: where the code, the libraries, the hosts and
 * the Slurm job came from. Each helper reads a real source (compile-time git
 * revision, the MPI, HDF5 and OpenBLAS libraries, the environment, the clock). */
#ifndef MOTSCALE_PROVENANCE_H
#define MOTSCALE_PROVENANCE_H

#include <stddef.h>

/* The git revision the binary was built from (Makefile: MOTSCALE_GIT_COMMIT). */
const char *provenance_git_commit(void);

/* MPI_Get_library_version, newlines folded into "; " (callable before MPI_Init). */
void provenance_mpi_library_version(char *buf, size_t len);

/* "HDF5 1.10.8" from H5get_libversion (the library linked, not the headers). */
void provenance_hdf5_version(char *buf, size_t len);

/* OpenBLAS configuration and thread count: "OpenBLAS 0.3.21 ... (1 thread)". */
void provenance_blas(char *buf, size_t len);

/* Distinct host names of all ranks of MPI_COMM_WORLD, in rank order, comma-
 * separated; malloc'd. A COLLECTIVE over MPI_COMM_WORLD: every rank must call it,
 * and every rank gets the same string. Without MPI initialised: this host only.
 * NULL if an MPI call fails. */
char *provenance_hostnames(void);

/* The current time in UTC, ISO 8601: "2025-01-31T12:34:56Z". */
void provenance_utc_now(char *buf, size_t len);

/* The Slurm variables of the job, "" where unset (a run outside Slurm). */
typedef struct provenance_slurm {
    char job_id[64];         /* SLURM_JOB_ID */
    char array_job_id[64];   /* SLURM_ARRAY_JOB_ID */
    char array_task_id[64];  /* SLURM_ARRAY_TASK_ID */
    int restart_count;       /* SLURM_RESTART_COUNT; 0 if unset */
} provenance_slurm_t;

void provenance_slurm(provenance_slurm_t *s);

/* The machine's load, so a wall-clock figure can be judged by what else ran: the
 * cumulative CPU time counters of /proc/stat's "cpu" line (jiffies; all zero where
 * /proc/stat cannot be read). */
typedef struct provenance_cpu {
    double total, steal;
} provenance_cpu_t;

void provenance_cpu_sample(provenance_cpu_t *s);
/* Share of CPU time stolen by the hypervisor between two samples (0..1): 0 when the
 * counters did not advance (less than a kernel tick apart), NaN without /proc/stat. */
double provenance_cpu_steal(const provenance_cpu_t *before, const provenance_cpu_t *after);
/* The 1-minute load average (getloadavg); NaN when unavailable. */
double provenance_load_average(void);
/* This process's peak resident set size so far in bytes (getrusage ru_maxrss, which
 * Linux gives in KiB); NaN when unavailable. */
double provenance_peak_rss(void);

#endif
