# Faults. A non-finite loss stops the run with status 1 and a message naming the
# step and the modality, keeping the last good checkpoint. A full disk during a
# checkpoint ends the run with status 1, a message naming the checkpoint, no
# half-written checkpoint left behind, a readable run file and status "failed"
# (needs root to mount a small tmpfs; skipped otherwise).
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
if ! mount -t tmpfs -o size=400k tmpfs "$mnt" 2>/dev/null; then
    echo "ok 1 # SKIP cannot mount tmpfs here"
    exit 0
fi
trap 'umount "$mnt" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
"$MOTSCALE" train tests/fixtures/defaults.ini model.size=xs train.steps=10 log.every=1 log.eval_every=0 log.quiet=true \
    log.peak_flops=1e9 run.out_dir="$mnt" run.name=r >"$SCRATCH/out" 2>&1
rc=$?
check "disk full during a checkpoint: exit 1 (fault)" [ "$rc" -eq 1 ]
check "the message names the checkpoint and the cause" grep -q "checkpoint at step 10 in .*failed: .*disk full" "$SCRATCH/out"
check "no temporary checkpoint left" [ -z "$(ls -A "$mnt/r/checkpoints")" ]
check "status is failed" grep -qx failed "$mnt/r/status"
check "the run file is readable with every row" $PY -c "
import h5py, sys
f = h5py.File('$mnt/r/run.h5', 'r', libver='latest', swmr=True)
sys.exit(0 if len(f['metrics/loss']) == 10 else 1)"
