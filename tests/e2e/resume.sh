#!/bin/sh
# Checkpoints and resume under mpirun (DESIGN.md §4 determinism, §6; docs/run-record.md):
#  (a) dense (tp 2) and MoT with 3 modalities (dp 2), mpirun -np 2: 40 steps straight
#      vs. 40 steps as ~20 + SIGUSR1 + train.resume=auto: exit 75 and status
#      "preempted", then the loss arrays (and the rest of /metrics' training columns
#      and /eval) are bit-identical and the resumed file has exactly the rows 1..40.
#  (b) SIGKILL of every process of a run mid-way: h5py (SWMR reader) reads every
#      flushed row; resume from the surviving checkpoint completes it, bit-identical.
#  (c) a truncated newest checkpoint: resume falls back to the previous one, says
#      so, and completes, bit-identical.
#  (d) a tp = 2 checkpoint resumed at tp = 1 (and at tp 1 x dp 2) matches the
#      uninterrupted tp = 1 run to the layout tolerance.
#  (e) bad input: a checkpoint of a different model, an output directory that cannot
#      be created, a completed run started again.
. tests/lib.sh

# Tolerance of (d), relative on the loss of every step: TOL_F32_REORDER
# (tests/tolerances.env; fp32 summation order changes with the layout, a wrong resume
# is off by 1e-3 or more).

# The signal and the kill must land while the run is going: a tiny step takes a few
# milliseconds, so a run would finish before a shell could react. The held-out
# evaluation after step 20 (log.eval_every = 20 with many held-out tokens) is a pause
# of about 0.3 s, long enough to see "step 20/40" and act; the signal is then
# honoured at the next step boundary. Evaluation does not change training, and the
# runs of one model all use the same settings, so their losses compare bit for bit.
# (At tp 2 each forward does TP all-reduces, slow on oversubscribed cores: the dense
# runs at tp 2 get the same pause from fewer held-out tokens.)
base_ini run.seed=11 data.modalities=text,image,speech data.mix=1,1,1 train.steps=40 \
    train.global_batch=4 train.checkpoint_every=10 log.eval_every=20 log.flush_every=5 log.quiet=false
DENSE1="model.kind=dense log.eval_tokens=64000"
DENSE="$DENSE1 parallel.tp=2"
MOT="model.kind=mot parallel.tp=1 log.eval_tokens=96000"

# train NAME NP [key=value ...]: a run in the foreground; sets rc
train() {
    name=$1
    np=$2
    shift 2
    timeout 300 $MPIRUN "$np" "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$name" "$@" \
        </dev/null >>"$SCRATCH/$name.out" 2>&1
    rc=$?
}

status_is() { [ "$(cat "$SCRATCH/runs/$1/status" 2>/dev/null)" = "$2" ]; }

show() { tail -n 4 "$SCRATCH/$1.out" | sed 's/^/# /'; }

# same_run A B [ROWS]: B's training columns and /eval are bit-identical to A's, B has
# exactly the rows 1..40 (or at least ROWS flushed rows of a killed file, read SWMR)
same_run() {
    $PY - "$SCRATCH/runs/$1/run.h5" "$SCRATCH/runs/$2/run.h5" "${3:-}" <<'EOF'
import sys
import h5py, numpy as np

a_path, b_path, killed = sys.argv[1], sys.argv[2], sys.argv[3]
bad = []
cols = ("step", "tokens", "flops", "loss", "lr", "grad_norm", "loss_by_modality", "tokens_by_modality")
with h5py.File(a_path, "r") as f:
    A = {k: f["/metrics/" + k][:] for k in cols}
    AE = {k: f["/eval/" + k][:] for k in ("step", "loss", "loss_by_modality")}
if list(A["step"]) != list(range(1, 41)):
    bad.append("straight run: steps %s" % A["step"])
if killed:
    # a killed writer: read as a SWMR reader, every column up to its shortest
    f = h5py.File(b_path, "r", libver="latest", swmr=True)
    n = min(f["/metrics/" + k].shape[0] for k in cols)
    B = {k: f["/metrics/" + k][:n] for k in cols}
    if n < int(killed):
        bad.append("killed file: %d rows readable, want at least %s (flushed before the kill)" % (n, killed))
    if list(B["step"]) != list(range(1, n + 1)):
        bad.append("killed file: steps %s" % B["step"])
    for k in cols:
        if not np.array_equal(A[k][:n], B[k], equal_nan=True):
            bad.append("killed file: %s differs from the straight run in its %d rows" % (k, n))
    print("# killed file: %d rows read, steps %d..%d" % (n, B["step"][0], B["step"][-1]))
else:
    with h5py.File(b_path, "r") as f:
        B = {k: f["/metrics/" + k][:] for k in cols}
        BE = {k: f["/eval/" + k][:] for k in ("step", "loss", "loss_by_modality")}
        for g in ("/metrics", "/ranks"):
            for k in f[g]:
                if f[g][k].shape[0] != 40:
                    bad.append("resumed %s/%s has %d rows, want 40" % (g, k, f[g][k].shape[0]))
    if list(B["step"]) != list(range(1, 41)):
        bad.append("resumed run: steps %s, want 1..40" % B["step"])
    for k in cols:
        if A[k].shape != B[k].shape or not np.array_equal(A[k], B[k], equal_nan=True):
            d = np.nanmax(np.abs(A[k] - B[k])) if A[k].shape == B[k].shape else float("nan")
            bad.append("%s differs from the straight run (max |diff| %.3g)" % (k, d))
    for k in AE:
        if AE[k].shape != BE[k].shape or not np.array_equal(AE[k], BE[k], equal_nan=True):
            bad.append("/eval/%s differs: %s vs %s" % (k, AE[k], BE[k]))
    if list(BE["step"]) != [20, 40]:
        bad.append("/eval/step %s, want [20, 40]" % BE["step"])
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
EOF
}

# rows_before NAME: the number of /metrics rows of a (preempted, closed) run file
rows_before() {
    runcmp rows "$SCRATCH/runs/$1/run.h5" 2>/dev/null
}

# ---- (a) straight vs. SIGUSR1 + resume ---------------------------------------------
for model in dense mot; do
    if [ $model = mot ]; then over=$MOT; else over=$DENSE; fi
    # shellcheck disable=SC2086
    train "$model-straight" 2 $over
    if [ "$rc" -ne 0 ] || ! status_is "$model-straight" completed; then
        not_ok "$model: straight 40-step run (exit $rc)"
        show "$model-straight"
        continue
    fi
    # shellcheck disable=SC2086
    start "$model-usr1" 2 $over
    if wait_line "$SCRATCH/$model-usr1.out" "step 20/40" $pid; then
        kill -USR1 $pid # mpirun forwards SIGUSR1 to its ranks
    fi
    wait_pid $pid
    rows=$(rows_before "$model-usr1")
    if [ "$rc" -eq 75 ] && status_is "$model-usr1" preempted && grep -q "checkpointed at step" "$SCRATCH/$model-usr1.out"; then
        ok "$model: SIGUSR1 after step 20 -> exit 75, status preempted, $rows rows written"
    else
        not_ok "$model: SIGUSR1 after step 20 -> exit $rc (want 75), status $(cat "$SCRATCH/runs/$model-usr1/status" 2>/dev/null)"
        show "$model-usr1"
        continue
    fi
    # copies of the preempted run for (c) and (d), before it is resumed
    cp -r "$SCRATCH/runs/$model-usr1" "$SCRATCH/runs/$model-trunc"
    cp -r "$SCRATCH/runs/$model-usr1" "$SCRATCH/runs/$model-tp1"
    cp -r "$SCRATCH/runs/$model-usr1" "$SCRATCH/runs/$model-tp1dp2"
    # shellcheck disable=SC2086
    train "$model-usr1" 2 $over train.resume=auto
    if [ "$rc" -eq 0 ] && status_is "$model-usr1" completed && grep -q "resuming .* at step" "$SCRATCH/$model-usr1.out"; then
        check "$model: 20 + SIGUSR1 + resume = 40 straight steps, bit-identical, exactly 40 rows" \
            same_run "$model-straight" "$model-usr1"
    else
        not_ok "$model: resume after SIGUSR1 (exit $rc)"
        show "$model-usr1"
    fi
done

# ---- (b) SIGKILL mid-way ------------------------------------------------------------
# Killed in the pause after step 20 (rows 1..20 flushed, flush_every 5): checkpoint 10
# survives and 20 is not written yet (should the kill land later, the newest surviving
# checkpoint is what resume must pick), so resume also drops the rows past it.
# shellcheck disable=SC2086
start mot-kill 2 $MOT
if wait_line "$SCRATCH/mot-kill.out" "step 20/40" $pid; then
    for r in $(pgrep -P $pid); do kill -KILL "$r"; done
    kill -KILL $pid
fi
wait $pid 2>/dev/null
survivor=$(ls "$SCRATCH/runs/mot-kill/checkpoints" 2>/dev/null | sort | tail -n 1)
kstep=$(echo "$survivor" | sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p')
if status_is mot-kill running && [ -n "$kstep" ] && [ "$kstep" -lt 40 ]; then
    ok "SIGKILL after step 20: status still running, newest surviving checkpoint $survivor"
else
    not_ok "SIGKILL after step 20: status $(cat "$SCRATCH/runs/mot-kill/status"), checkpoints: $(ls "$SCRATCH/runs/mot-kill/checkpoints" | tr '\n' ' ')"
    kstep=none
fi
check "SIGKILL: h5py (SWMR) reads every flushed row (>= 20), equal to the straight run" \
    same_run mot-straight mot-kill 20
train mot-kill 2 $MOT train.resume=auto
if [ "$rc" -eq 0 ] && status_is mot-kill completed && grep -q "resuming .* at step $kstep\$" "$SCRATCH/mot-kill.out"; then
    check "SIGKILL: resume from checkpoint $kstep completes, steps 1..40, bit-identical" \
        same_run mot-straight mot-kill
else
    not_ok "SIGKILL: resume from checkpoint $kstep (exit $rc)"
    show mot-kill
fi

# ---- (c) truncated newest checkpoint -----------------------------------------------
ck=$SCRATCH/runs/mot-trunc/checkpoints
newest=$(ls "$ck" | sort | tail -n 1)
older=$(ls "$ck" | sort | tail -n 2 | head -n 1)
if [ -n "$newest" ] && [ "$newest" != "$older" ]; then
    truncate -s 1000 "$ck/$newest"
    train mot-trunc 2 $MOT train.resume=auto
    if [ "$rc" -eq 0 ] && status_is mot-trunc completed &&
        grep -q "skipping checkpoint: .*$newest" "$SCRATCH/mot-trunc.out" &&
        grep -q "resumed from the older checkpoint .*$older" "$SCRATCH/mot-trunc.out"; then
        ok "truncated $newest: skipped with a warning, resumed from $older, completed"
        check "truncated checkpoint: resumed run bit-identical to the straight run, 40 rows" \
            same_run mot-straight mot-trunc
    else
        not_ok "truncated $newest: exit $rc, want 0 with 'skipping checkpoint' and 'resumed from the older checkpoint $older'"
        show mot-trunc
    fi
else
    not_ok "truncated checkpoint: the preempted run left no two checkpoints ($(ls "$ck" | tr '\n' ' '))"
fi

# ---- (d) a tp = 2 checkpoint resumed at tp = 1 (np 1) and at tp 1 x dp 2 (np 2) -----
# shellcheck disable=SC2086
train dense-ref-tp1 1 $DENSE1 parallel.tp=1
[ "$rc" -eq 0 ] || { not_ok "dense tp=1 reference run (exit $rc)"; show dense-ref-tp1; }
# shellcheck disable=SC2086
train dense-tp1 1 $DENSE1 parallel.tp=1 train.resume=auto
rc1=$rc
# shellcheck disable=SC2086
train dense-tp1dp2 2 $DENSE1 parallel.tp=1 train.resume=auto
rc2=$rc
for name in dense-tp1 dense-tp1dp2; do
    check "tp 2 checkpoint resumed as $name (exits $rc1, $rc2) matches the tp 1 run at 40 steps (rel tol $TOL_F32_REORDER)" \
        runcmp close "$SCRATCH/runs/dense-ref-tp1/run.h5" "$SCRATCH/runs/$name/run.h5" --tol "$TOL_F32_REORDER"
done
check "the tp 1 reference has 40 rows" [ "$(runcmp rows "$SCRATCH/runs/dense-ref-tp1/run.h5")" = 40 ]
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] || { show dense-tp1; show dense-tp1dp2; }
check "resumed at a smaller world: layout attributes are the new one, /ranks keeps 2 columns, NaN for the missing rank" \
    $PY - "$SCRATCH/runs/dense-tp1/run.h5" "$rows" <<'EOF'
import sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    layout = (int(f.attrs["world_size"]), int(f.attrs["dp"]), int(f.attrs["tp"]))
    step, rs = f["/metrics/step"][:], f["/ranks/step_time"][:]
resumed = step > int(sys.argv[2])  # rows written before the preemption checkpoint
ok = (layout == (1, 1, 1) and rs.shape == (40, 2) and np.isfinite(rs[~resumed]).all()
      and np.isfinite(rs[resumed, 0]).all() and np.isnan(rs[resumed, 1]).all())
print("# layout", layout, "ranks shape", rs.shape)
sys.exit(0 if ok else 1)
EOF

# ---- (e) bad input ------------------------------------------------------------------
# a checkpoint of a d_model = 32 run in the run directory of a d_model = 64 run
mkdir -p "$SCRATCH/runs/wrong-model/checkpoints"
cp "$SCRATCH/runs/mot-straight/checkpoints/ckpt-000000040.h5" "$SCRATCH/runs/wrong-model/checkpoints/"
train wrong-model 2 $MOT model.d_model=64 train.resume=checkpoint
if [ "$rc" -eq 2 ] && grep -q "different model" "$SCRATCH/wrong-model.out" &&
    [ ! -e "$SCRATCH/runs/wrong-model/run.h5" ]; then
    ok "checkpoint of a d_model 32 model resumed at d_model 64: exit 2, 'different model', nothing trained"
else
    not_ok "checkpoint of another model: exit $rc (want 2 and a line saying 'different model')"
    show wrong-model
fi

# an output directory under a regular file cannot be created
: >"$SCRATCH/afile"
train unwritable 1 $MOT run.out_dir="$SCRATCH/afile/sub"
if { [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; } && grep -q "$SCRATCH/afile/sub" "$SCRATCH/unwritable.out"; then
    ok "run.out_dir under a regular file: exit $rc, the message names the directory"
else
    not_ok "run.out_dir under a regular file: exit $rc (want 1 or 2 naming $SCRATCH/afile/sub)"
    show unwritable
fi

# a completed run started again, without and with resume
for how in "" "train.resume=auto"; do
    cp "$SCRATCH/runs/mot-straight/run.h5" "$SCRATCH/before.h5"
    # shellcheck disable=SC2086
    train again 2 $MOT run.name=mot-straight $how
    if [ "$rc" -eq 2 ] && grep -q "$SCRATCH/runs/mot-straight.*completed" "$SCRATCH/again.out" &&
        cmp -s "$SCRATCH/before.h5" "$SCRATCH/runs/mot-straight/run.h5" && status_is mot-straight completed; then
        ok "completed run started again ${how:-without resume}: exit 2 naming the directory, file untouched"
    else
        not_ok "completed run started again ${how:-without resume}: exit $rc (want 2 naming $SCRATCH/runs/mot-straight)"
        show again
    fi
    : >"$SCRATCH/again.out"
done
