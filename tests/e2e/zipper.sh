#!/bin/sh
# Zipper and its vocabulary-expansion baseline (issue 15; docs/model.md, "Zipper"),
# through the trainer, from two unimodal dense runs' checkpoints:
#  (a) the starting points: zipper with both backbones frozen ends with every
#      backbone tensor bit-identical to the dense run it came from (the tower's
#      vocabulary rows of the embedding and head), and its checkpoint holds no AdamW
#      moments for them; with the speech tower alone frozen the text backbone moves;
#      vocab_expansion at a learning rate of 1e-12 keeps the text run's rows
#      (within 1e-9) and its speech rows are the seeded draw;
#  (b) tp 2 and dp 2 against the one-rank run within TOL_F32_REORDER, every step;
#  (c) SIGUSR1 + resume at tp 2 = straight, bit for bit;
#  (d) bad input: one line, exit 2, no run directory.
. tests/lib.sh

base_ini data.modalities=text,speech train.checkpoint_every=10 log.flush_every=5
PRE="model.kind=dense train.steps=10"
run ptext 1 $PRE data.mix=1,0 model.d_model=32 model.n_heads=4 model.d_ff=64
run pspeech 1 $PRE data.mix=0,1 model.d_model=16 model.n_heads=2 model.d_ff=32 model.n_layers=4
CT="$SCRATCH/runs/ptext/checkpoints/ckpt-000000010.h5"
CS="$SCRATCH/runs/pspeech/checkpoints/ckpt-000000010.h5"
Z="model.kind=zipper data.mix=1,1 zipper.text_d_model=32 zipper.text_n_heads=4 zipper.text_d_ff=64 \
zipper.speech_d_model=16 zipper.speech_n_heads=2 zipper.speech_d_ff=32 zipper.speech_n_layers=4 \
zipper.interval_speech=2 zipper.text_checkpoint=$CT zipper.speech_checkpoint=$CS"

# ---- (a) starting points and frozen backbones -----------------------------------------
# shellcheck disable=SC2086
run zboth 1 $Z zipper.freeze=both train.steps=10 && run zspeech 1 $Z zipper.freeze=speech train.steps=10 &&
    run vexp 1 model.kind=vocab_expansion zipper.text_checkpoint="$CT" model.d_model=32 model.n_heads=4 \
        model.d_ff=64 data.mix=1,1 train.steps=2 train.lr=1e-12 train.lr_min=0 &&
    check "frozen backbones bit-identical to their dense runs, no moments; vocab_expansion keeps the text rows" \
        $PY - "$SCRATCH/runs" "$CT" "$CS" <<'PYEOF'
import sys
import h5py, numpy as np
runs, ct, cs = sys.argv[1:4]
bad = []
src = {"text": h5py.File(ct, "r")["params"], "speech": h5py.File(cs, "r")["params"]}
rows = {"text": slice(0, 96), "speech": slice(96, 128)}
def ckpt(name): return h5py.File("%s/%s/checkpoints/ckpt-000000010.h5" % (runs, name), "r")
both, onlysp = ckpt("zboth"), ckpt("zspeech")
n = {"text": 0, "speech": 0}
for tw in ("text", "speech"):
    for key in src[tw]:
        name = "%s.%s" % (tw, key)
        want = src[tw][key][:]
        if key in ("embed", "head"):
            want = want[rows[tw]]
        if not np.array_equal(both["params"][name][:], want):
            bad.append("freeze=both: %s differs from the dense run's %s" % (name, key))
        if name in both["adam_m"] or name in both["adam_v"]:
            bad.append("freeze=both: %s has AdamW moments" % name)
        moved = not np.array_equal(onlysp["params"][name][:], want)
        if moved != (tw == "text"):
            bad.append("freeze=speech: %s %s" % (name, "moved" if moved else "did not move"))
        n[tw] += 1
fusion = [k for k in both["params"] if ".cross" in k or "input_mlp" in k]
if not fusion or any(k not in both["adam_m"] for k in fusion):
    bad.append("fusion tensors missing or without moments: %d" % len(fusion))
gates = [float(both["params"][k][0, 0]) for k in fusion if k.endswith("gate")]
if not gates or all(g == 0 for g in gates):
    bad.append("no gate moved from 0: %s" % gates)
v = h5py.File(runs + "/vexp/checkpoints/ckpt-000000002.h5", "r")["params"]
for key in src["text"]:
    got, want = v[key][:], src["text"][key][:]
    if key in ("embed", "head"):
        if np.abs(got[:96] - want[:96]).max() > 1e-9:
            bad.append("vocab_expansion %s: text rows moved from the text run's" % key)
        if np.abs(got[96:] - want[96:]).max() < 1e-6:
            bad.append("vocab_expansion %s: speech rows are the text run's, not the seeded draw" % key)
    elif np.abs(got - want).max() > 1e-9:
        bad.append("vocab_expansion %s differs from the text run's" % key)
for x in bad:
    print("#", x)
print("# %d text and %d speech backbone tensors checked; %d fusion tensors, gates %s" %
      (n["text"], n["speech"], len(fusion), np.round(gates[:4], 5)))
sys.exit(1 if bad else 0)
PYEOF

# ---- (b) layouts -------------------------------------------------------------------------
# shellcheck disable=SC2086
run z1 1 $Z zipper.freeze=speech
for layout in "tp2:2:parallel.tp=2" "dp2:2:parallel.dp=2"; do
    lay=${layout%%:*}
    rest=${layout#*:}
    np=${rest%%:*}
    keys=${rest#*:}
    # shellcheck disable=SC2086
    run "z-$lay" "$np" $Z zipper.freeze=speech $keys &&
        check "zipper $lay ($keys) = one rank within $TOL_F32_REORDER, every step" \
            runcmp close "$SCRATCH/runs/z1/run.h5" "$SCRATCH/runs/z-$lay/run.h5" --tol "$TOL_F32_REORDER"
done

# ---- (c) SIGUSR1 + resume -----------------------------------------------------------------
# the held-out evaluation after step 20 is the pause in which the shell signals
EP="$Z parallel.tp=2 train.steps=40 log.eval_every=20 log.eval_tokens=24000 log.quiet=false"
# shellcheck disable=SC2086
run zr-straight 2 $EP
# shellcheck disable=SC2086
start zr-usr1 2 $EP
if wait_line "$SCRATCH/zr-usr1.out" "step 20/40" $pid; then
    kill -USR1 $pid
fi
wait_pid $pid
if [ "$rc" -eq 75 ]; then
    # shellcheck disable=SC2086
    run zr-usr1 2 $EP train.resume=auto &&
        check "zipper tp 2: SIGUSR1 (exit 75) + resume = straight, bit for bit" \
            runcmp same "$SCRATCH/runs/zr-straight/run.h5" "$SCRATCH/runs/zr-usr1/run.h5"
else
    not_ok "zipper tp 2: SIGUSR1 after step 20 -> exit $rc, want 75"
fi

# ---- (d) bad input ---------------------------------------------------------------------------
# shellcheck disable=SC2086
expect_status 2 "a missing text checkpoint: exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad1 $Z zipper.text_checkpoint="$SCRATCH/none.h5"
check "... one line naming the file, no run directory" \
    sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q none.h5 '$SCRATCH/last.out' && [ ! -e '$SCRATCH/runs/bad1' ]"
# shellcheck disable=SC2086
expect_status 2 "the speech run's checkpoint as the text one (another width): exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad2 $Z zipper.text_checkpoint="$CS"
check "... one line naming the dataset" sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q 'params/' '$SCRATCH/last.out'"
expect_status 2 "zipper over text,image: exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad3 model.kind=zipper data.modalities=text,image
expect_status 2 "zipper.interval_speech not dividing its layers: exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad4 model.kind=zipper zipper.interval_speech=3
echo "1..$TAPN"
