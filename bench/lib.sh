# Sourced by the benchmarks: a scratch directory, the launcher, and medians of the
# per-step times that the run record holds.
set -u
MOTSCALE=${MOTSCALE:-$PWD/build/motscale}
PY=/usr/bin/python3
MPIRUN="mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/motscale-bench.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
REPS=${BENCH_REPS:-3}

# median step time (s) of a run file, skipping the first `skip` logged steps
median_step() { # run.h5 [skip] [column]
    $PY - "$1" "${2:-5}" "${3:-step_time}" <<'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
x = f["metrics/" + sys.argv[3]][int(sys.argv[2]):]
print("%.9g" % np.median(x))
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
