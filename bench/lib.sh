# Sourced by the benchmarks: a scratch directory, the launcher, medians of the
# per-step times that the run record holds, and the figure lines bench/run collects.
set -u
MOTSCALE=${MOTSCALE:-$PWD/build/motscale}
PY=/usr/bin/python3
MPIRUN="mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 -np"
# One rank per core, pinned: unpinned ranks on a 2-core machine share a core often
# enough to halve throughput (measured: 76 ms vs 42 ms a step for two solo jobs).
MPIRUN_CORE="mpirun --bind-to core -x OPENBLAS_NUM_THREADS=1 -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/motscale-bench.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# the configuration every run starts from: empty, every key at its default (a regular
# file, not /dev/null: the config loader may insist on one)
DEFAULTS=$SCRATCH/defaults.ini
: >"$DEFAULTS"
# BENCH_QUICK=1 (bench/run --quick, run by tests/e2e/bench_quick.sh): each benchmark
# in its cheapest form, one repetition; every figure is produced, none means much.
QUICK=${BENCH_QUICK:-0}
# full_or_quick FULL QUICK: FULL, or QUICK under BENCH_QUICK=1
full_or_quick() { if [ "$QUICK" = 1 ]; then echo "$2"; else echo "$1"; fi; }
REPS=$(full_or_quick "${BENCH_REPS:-3}" 1)

# median step time (s) of a run file, skipping the first `skip` logged steps
median_step() { # run.h5 [skip] [column]
    pct_step "$1" "${2:-5}" "${3:-step_time}" 50
}
# a percentile of the step times: interference from the host only ever adds time,
# so a low percentile is the step's own cost, far steadier than the median here
pct_step() { # run.h5 skip column percentile
    $PY - "$1" "$2" "$3" "$4" <<'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
x = f["metrics/" + sys.argv[3]][int(sys.argv[2]):]
print("%.9g" % np.percentile(x, float(sys.argv[4])))
PYEOF
}
# median of numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# min and max of numbers given as arguments, as "MIN MAX"
minmax() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo, hi}'; }
# figure KEY UNIT VALUE MIN MAX OP TARGET LABEL: one row of the table bench/run prints
# and of results/bench/bench.json, as a tab-separated line. OP TARGET: ge or le and the
# target, or "- -" for a figure that is reported only; bench/run gives the verdict.
figure() { printf 'figure\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
