# Sourced by the end-to-end shell tests: TAP output, a scratch directory removed on
# exit, and the launch commands. Tests print "ok N - what" / "not ok N - what".
set -u
MOTSCALE=${MOTSCALE:-$PWD/build/motscale}
PY=/usr/bin/python3            # Debian's python3 has h5py; the first on PATH may not
MPIRUN="mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 -np"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
. tests/tolerances.env
TAPN=0
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/motscale-e2e.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

ok() { TAPN=$((TAPN + 1)); echo "ok $TAPN - $*"; }
not_ok() { TAPN=$((TAPN + 1)); echo "not ok $TAPN - $*"; }
# check "description" command...: ok if the command exits 0
check() {
    desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
# expect_status N "description" command...: ok if the command exits with N
expect_status() {
    want=$1
    desc=$2
    shift 2
    "$@" >"$SCRATCH/last.out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ]; then ok "$desc"; else
        not_ok "$desc (exit $got, wanted $want)"
        sed 's/^/# /' "$SCRATCH/last.out" | head -5
    fi
}

# run NAME NP [key=value ...]: one training run of $SCRATCH/base.ini under mpirun;
# output in $SCRATCH/NAME.out; on failure a "not ok" line with its tail
run() {
    name=$1
    np=$2
    shift 2
    timeout 300 $MPIRUN "$np" "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$name" "$@" \
        </dev/null >"$SCRATCH/$name.out" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
        not_ok "run $name (np $np $*) exit $rc"
        sed 's/^/# /' "$SCRATCH/$name.out" | tail -5
    fi
    return $rc
}

# base_ini [section.key=value ...]: $SCRATCH/base.ini from tests/fixtures/base.ini with
# run.out_dir = $SCRATCH/runs and the given keys (each replaces the fixture's value
# or is added to its section)
base_ini() {
    $PY - "$SCRATCH/base.ini" "run.out_dir=$SCRATCH/runs" "$@" <<'PYEOF'
import configparser, sys
c = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
c.read("tests/fixtures/base.ini")
for kv in sys.argv[2:]:
    sk, v = kv.split("=", 1)
    sec, key = sk.split(".", 1)
    if not c.has_section(sec):
        c.add_section(sec)
    c.set(sec, key, v)
with open(sys.argv[1], "w") as f:
    c.write(f)
PYEOF
}

# runcmp CMD ...: tests/runcmp.py, the one reader and comparer of run records
runcmp() { $PY tests/runcmp.py "$@"; }

# start NAME NP [key=value ...]: a run in the background; sets pid (mpirun's)
start() {
    name=$1
    np=$2
    shift 2
    $MPIRUN "$np" "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$name" "$@" \
        </dev/null >>"$SCRATCH/$name.out" 2>&1 &
    pid=$!
}

# wait_line FILE PATTERN PID: until PATTERN is in FILE (false if PID ended first or
# after 60 s)
wait_line() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || return 1
        i=$((i + 1))
        [ $i -gt 1200 ] && return 1
        sleep 0.05
    done
}

# sigusr1_resume NAME NP [key=value ...]: stop and resume. NAME-straight runs to the
# end; NAME-usr1 gets SIGUSR1 once its output says "step 20/" (the held-out evaluation
# after step 20 is the pause in which the signal lands) and is resumed with
# train.resume=auto. True when the signalled run exited 75 and its resume finished;
# otherwise false, after a "not ok" line with the status and the output's tail.
sigusr1_resume() {
    sr_name=$1
    sr_np=$2
    shift 2
    run "$sr_name-straight" "$sr_np" "$@" || return 1
    start "$sr_name-usr1" "$sr_np" "$@"
    if wait_line "$SCRATCH/$sr_name-usr1.out" "step 20/" "$pid"; then
        kill -USR1 "$pid"
    fi
    wait_pid "$pid"
    if [ "$rc" -ne 75 ]; then
        not_ok "$sr_name: SIGUSR1 after step 20 -> exit $rc, want 75"
        tail -n 4 "$SCRATCH/$sr_name-usr1.out" | sed 's/^/# /'
        return 1
    fi
    run "$sr_name-usr1" "$sr_np" "$@" train.resume=auto
}

# wait_pid PID: its exit status, killing it after 120 s (the guard takes its sleep
# with it when it is told to stop, so nothing holds the test's output open)
wait_pid() {
    (
        sleep 120 &
        s=$!
        trap 'kill $s 2>/dev/null; exit 0' TERM
        wait $s && kill -KILL "$1" 2>/dev/null
    ) &
    guard=$!
    wait "$1"
    rc=$?
    kill "$guard" 2>/dev/null
    wait "$guard" 2>/dev/null
}
