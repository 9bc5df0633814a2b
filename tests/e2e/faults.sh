# Faults. A non-finite loss stops the run with status 1 and a message naming the
# step and the modality, keeping the last good checkpoint. A full disk during a
# checkpoint ends the run with status 1 on every layout, a message naming the
# checkpoint, no half-written checkpoint left behind, a readable run file and status
# "failed"; so does a disk that fills while logging (needs root to mount a small
# tmpfs; skipped otherwise).
. tests/lib.sh
"$MOTSCALE" train tests/fixtures/defaults.ini model.size=xs train.lr=10 train.weight_decay=100 train.lr_min=0 train.warmup=0 train.grad_clip=0 \
    train.steps=30 train.checkpoint_every=1 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9 \
    run.out_dir="$SCRATCH" run.name=nan >"$SCRATCH/nan.out" 2>&1
rc=$?
check "non-finite loss: exit 1" [ "$rc" -eq 1 ]
check "... the message names the step and the modality" grep -q "non-finite .* at step [0-9]* (modality: .*text" "$SCRATCH/nan.out"
check "... status failed, the last good checkpoint kept" sh -c \
    "grep -qx failed '$SCRATCH/nan/status' && ls '$SCRATCH/nan/checkpoints' | grep -q '^ckpt-'"
if [ "$(id -u)" -ne 0 ]; then
    echo "ok $((TAPN + 1)) # SKIP not root: cannot mount a small tmpfs"
    exit 0
fi
mnt="$SCRATCH/full"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
    echo "ok 1 # SKIP cannot mount tmpfs here"
    exit 0
fi
trap 'umount "$mnt" 2>/dev/null; rm -rf "$SCRATCH"' EXIT

# A full disk at a checkpoint, on one rank, at tp 2 and at dp 2 (issue: two ranks
# deadlocked there): exit 1 within the timeout, one line naming the checkpoint and
# the cause, nothing half-written, status failed, every row of the record readable.
for lay in "1 1" "2 2" "2 1"; do
    set -- $lay
    np=$1 tp=$2 name=full-np$1-tp$2
    rm -rf "${mnt:?}"/*
    timeout 120 $MPIRUN "$np" "$MOTSCALE" train tests/fixtures/defaults.ini model.size=xs train.steps=10 log.every=1 \
        log.eval_every=0 log.quiet=true log.peak_flops=1e9 parallel.tp="$tp" run.out_dir="$mnt" run.name=r \
        </dev/null >"$SCRATCH/$name.out" 2>&1
    rc=$?
    check "$name: disk full during a checkpoint: exit 1 (fault), no hang" [ "$rc" -eq 1 ]
    check "$name: one line names the checkpoint and the cause" \
        [ "$(grep -c "checkpoint at step 10 in .*failed: .*disk full" "$SCRATCH/$name.out")" -eq 1 ]
    check "$name: no temporary checkpoint left" [ -z "$(ls -A "$mnt/r/checkpoints")" ]
    check "$name: status is failed" grep -qx failed "$mnt/r/status"
    check "$name: the run file is readable with every row" $PY -c "
import h5py, sys
f = h5py.File('$mnt/r/run.h5', 'r')
sys.exit(0 if len(f['metrics/loss']) == 10 else 1)"
done

# A disk that fills while logging: the trainer stops with one line while the record
# can still close (status failed, exit 1), every row before it readable.
rm -rf "${mnt:?}"/*
timeout 120 "$MOTSCALE" train tests/fixtures/defaults.ini model.size=xs train.steps=100000 log.every=1 log.flush_every=1 \
    log.eval_every=0 log.quiet=true log.peak_flops=1e9 run.out_dir="$mnt" run.name=r >"$SCRATCH/log.out" 2>&1
rc=$?
check "disk full while logging: exit 1, one line saying so" sh -c \
    "[ $rc -eq 1 ] && [ \$(wc -l <'$SCRATCH/log.out') -le 2 ] && grep -q 'free; stopping at step' '$SCRATCH/log.out'"
check "... status failed, the record closed and readable without SWMR" sh -c "grep -qx failed '$mnt/r/status' &&
    $PY -c \"import h5py; f = h5py.File('$mnt/r/run.h5', 'r'); assert f['metrics/step'].shape[0] > 100\""
