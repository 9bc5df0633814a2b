#!/bin/sh
# The Slurm scripts in jobs/, unchanged, on a real single-node Slurm that this test
# starts itself (munged, slurmctld, slurmd from Debian's munge and slurm-wlm; config,
# keys, state and spool in a temporary directory) and always stops by process id:
# a 2-point sweep array equals a local run of the same points bit for bit; a task
# signalled with USR1 checkpoints, is requeued, resumes and ends bit-identical to an
# uninterrupted run with slurm_restart_count >= 1; train.sbatch runs one config.
# Needs root (the daemons run as root); otherwise the test is reported as skipped.
. tests/lib.sh
TINY=$PWD/tests/slurm/tiny.ini
JOBS=$PWD/jobs
export MOTSCALE

if [ "$(id -u)" -ne 0 ]; then
    echo "ok 1 # SKIP not root: the test runs munged, slurmctld and slurmd as root"
    exit 0
fi
for c in munged slurmctld slurmd sbatch srun scontrol squeue scancel sinfo; do
    if ! command -v "$c" >/dev/null 2>&1; then
        echo "ok 1 # SKIP $c not installed (Debian packages munge, slurm-wlm)"
        exit 0
    fi
done

# One single-node Slurm at a time on a machine: two test runs at once (two checkouts
# tested side by side) would register the same node name with two controllers.
exec 9>"${TMPDIR:-/tmp}/motscale-slurm-test.lock"
flock 9

T=$SCRATCH/slurm
mkdir -p "$T/state" "$T/spool" "$T/out"
chmod 700 "$SCRATCH" "$T"
PIDS=""

# Stop what this test started: jobs first (their steps are slurmstepd children of no
# one we own), then the daemons by pid; TERM, then KILL after 10 s.
cleanup() {
    if [ -n "$PIDS" ]; then
        squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null
        sleep 1
        for p in $PIDS; do kill "$p" 2>/dev/null; done
        for i in 1 2 3 4 5 6 7 8 9 10; do
            alive=""
            for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
            [ -z "$alive" ] && break
            sleep 1
        done
        for p in $alive; do kill -9 "$p" 2>/dev/null; done
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- start munge and Slurm -----------------------------------------------------------
dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$T/munge.key"
munged -F -f --socket="$T/munge.sock" --key-file="$T/munge.key" --pid-file="$T/munged.pid" \
    --seed-file="$T/munged.seed" --log-file="$T/munged.log" >"$T/munged.out" 2>&1 &
PIDS="$!"

host=$(hostname -s)
# not nproc: it honours OMP_NUM_THREADS, which the test runner sets to 1
ncpu=$(getconf _NPROCESSORS_ONLN)
port=$((20000 + $$ % 20000))  # a private controller: ports from this shell's pid
cat >"$T/slurm.conf" <<EOF
ClusterName=motscaletest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also bounds how long a requeued job waits before it may start again
AuthInfo=socket=$T/munge.sock,cred_expire=5
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
MinJobAge=5
KillWait=10
MessageTimeout=5
InactiveLimit=0
JobRequeue=1
NodeName=$host CPUs=$ncpu State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
export SLURM_CONF="$T/slurm.conf"
for i in 1 2 3 4 5 6 7 8 9 10; do [ -S "$T/munge.sock" ] && break; sleep 0.5; done
slurmctld -D -i >"$T/slurmctld.out" 2>&1 &
PIDS="$PIDS $!"
slurmd -D >"$T/slurmd.out" 2>&1 &
PIDS="$PIDS $!"
up=0
for i in $(seq 120); do
    if [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ]; then
        up=1
        break
    fi
    sleep 0.5
done
if [ "$up" -eq 1 ]; then
    ok "single-node Slurm up ($host, $ncpu CPUs, port $port)"
else
    not_ok "single-node Slurm did not come up"
    tail -5 "$T/slurmctld.out" "$T/slurmd.out" | sed 's/^/# /'
    exit 1
fi
# The scripts launch with srun --mpi=$MOTSCALE_SRUN_MPI (default pmix); Debian 12's
# slurm-wlm ships pmix, fall back to pmi2 where it does not.
if srun --mpi=list 2>&1 | grep -qw pmix; then
    export MOTSCALE_SRUN_MPI=pmix
else
    export MOTSCALE_SRUN_MPI=pmi2
    echo "# srun has no pmix plugin; using pmi2"
fi

# losses_equal A.h5 B.h5: the logged steps and every loss column identical, bit for bit
losses_equal() {
    $PY - "$1" "$2" <<'EOF'
import sys
import h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for name in ("step", "loss", "loss_by_modality", "tokens_by_modality"):
    x, y = a["metrics/" + name][()], b["metrics/" + name][()]
    if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():  # NaN-safe
        print("# %s differs: %s vs %s rows" % (name, x.shape, y.shape))
        sys.exit(1)
if a["metrics/step"].shape[0] == 0:
    print("# no rows logged")
    sys.exit(1)
EOF
}
status_is() { [ "$(cat "$1/status" 2>/dev/null)" = "$2" ]; }
job_gone() { [ -z "$(squeue -h -j "$1" -o %T 2>/dev/null)" ]; }

# --- a 2-point sweep as an array, against a local run of the same points --------------
t0=$(date +%s)
# every wait is bounded: a job that cannot start must fail the test, not hang it
timeout 180 "$JOBS/submit" "$TINY" --wait --output="$T/out/sweep-%A_%a.out" -- run.out_dir="$T/slurm" >"$T/submit.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && status_is "$T/slurm/dense-xs-s3" completed && status_is "$T/slurm/mot-xs-s3" completed; then
    ok "jobs/submit: 2-point array ran both points to completion ($(($(date +%s) - t0)) s)"
else
    not_ok "jobs/submit: 2-point array (exit $rc)"
    cat "$T/submit.out" "$T"/out/sweep-* 2>/dev/null | tail -20 | sed 's/^/# /'
fi
# --no-reuse: the Slurm runs under $T are the same configurations, and jobs/local
# would link them instead of training the points this compares them with
"$JOBS/local" "$TINY" --no-reuse run.out_dir="$T/local" >"$T/local.out" 2>&1
check "jobs/local ran the same 2 points" status_is "$T/local/mot-xs-s3" completed
for p in dense-xs-s3 mot-xs-s3; do
    check "$p: Slurm loss curve equals the local run, bitwise" \
        losses_equal "$T/slurm/$p/run.h5" "$T/local/$p/run.h5"
done

# --- one run with train.sbatch: the base config of tiny.ini is its dense point --------
timeout 180 sbatch --wait --output="$T/out/train-%j.out" "$JOBS/train.sbatch" "$TINY" run.name=single \
    run.out_dir="$T/single" >"$T/train.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && status_is "$T/single/single" completed &&
    losses_equal "$T/single/single/run.h5" "$T/local/dense-xs-s3/run.h5"; then
    ok "jobs/train.sbatch: one run, loss curve equal to the local dense point"
else
    not_ok "jobs/train.sbatch (exit $rc)"
    tail -5 "$T"/out/train-* 2>/dev/null | sed 's/^/# /'
fi

# --- USR1 to a running array task: checkpoint, requeue, resume, same curve ------------
t0=$(date +%s)
long="train.steps=300"
"$JOBS/submit" "$TINY" --array=1 --output="$T/out/int-%A_%a.out" -- run.out_dir="$T/int" "$long" >"$T/int.out" 2>&1
jid=$(awk '/^Submitted batch job/ { print $4 }' "$T/int.out")
task=${jid}_1
reached=0
for i in $(seq 300); do
    # signal once the run has logged step 50 (of 300)
    if awk '/^step / { split($2, a, "/"); if (a[1] + 0 >= 50) f = 1 } END { exit !f }' "$T"/out/int-* 2>/dev/null; then
        reached=1
        break
    fi
    sleep 0.2
done
if [ -n "$jid" ] && [ "$reached" -eq 1 ]; then
    scancel --signal=USR1 --batch "$task"
    ok "array task $task reached step 50 and got USR1 ($(($(date +%s) - t0)) s)"
else
    not_ok "array task ${task:-?} did not start or log step 50"
    cat "$T/int.out" "$T"/out/int-* 2>/dev/null | tail -10 | sed 's/^/# /'
fi
# the uninterrupted reference runs while the task waits to be requeued
"$MOTSCALE" sweep "$TINY" --index 1 run.out_dir="$T/ref" "$long" >"$T/ref.ini" &&
    $MPIRUN 2 "$MOTSCALE" train "$T/ref.ini" >"$T/ref.out" 2>&1
for i in $(seq 150); do
    job_gone "$task" && break
    sleep 1
done
log=$(cat "$T"/out/int-* 2>/dev/null)
if echo "$log" | grep -q "checkpointed at step" && echo "$log" | grep -q "requeueing $task" &&
    echo "$log" | grep -q "^resuming .* at step"; then
    ok "task checkpointed, requeued itself as $task and resumed ($(($(date +%s) - t0)) s in all)"
else
    not_ok "task did not checkpoint, requeue and resume"
    echo "$log" | grep -v '^step\|^eval' | tail -12 | sed 's/^/# /'
fi
check "the resumed run completed" status_is "$T/int/mot-xs-s3" completed
check "resumed loss curve equals an uninterrupted run, bitwise" \
    losses_equal "$T/int/mot-xs-s3/run.h5" "$T/ref/mot-xs-s3/run.h5"
check "run.h5 records slurm_restart_count >= 1" $PY -c '
import sys, h5py
n = int(h5py.File(sys.argv[1], "r").attrs["slurm_restart_count"])
print("# slurm_restart_count = %d" % n)
sys.exit(0 if n >= 1 else 1)' "$T/int/mot-xs-s3/run.h5"
