# Sourced by the benchmarks: a scratch directory, the launcher, and medians of the
# per-step times that the run record holds.
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
REPS=${BENCH_REPS:-3}

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
# verdict NAME VALUE OP TARGET  (OP: ge or le)
verdict() {
    if awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN {exit !((op == "ge") ? v >= t : v <= t)}'; then
        echo "target $1: $2 (target $3 $4) met"
    else
        echo "target $1: $2 (target $3 $4) NOT met"
    fi
}
