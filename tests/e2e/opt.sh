#!/bin/sh
# OPT (model.kind = opt, issue 16) end to end: for the shared and the MoT cross-modal
# encoder, tp = 2 and dp = 2 (and dp = 2 with two micro-batches per rank) give the
# one-rank losses, overall and per modality, at each of 20 steps within
# TOL_F32_REORDER, and a run repeated is bit-identical; 20 steps + SIGUSR1 + resume
# equal 40 straight steps bit for bit; shared and MoT report equal FLOPs per token
# of every modality; opt.task_mode = sample trains one task a step; bad OPT
# configurations stop with exit status 2 and one line naming the key.
. tests/lib.sh

# Tolerance of a layout against one rank: TOL_F32_REORDER (tests/tolerances.env), as
# for the tower transformer: TP reorders the row-parallel sums, DP and micro-batching
# the order in which the samples' gradients are added.
base_ini run.seed=5 model.kind=opt data.modalities=text,image,speech data.mix=1,1,1 \
    train.global_batch=8 log.eval_every=0
SHARED="opt.cross_towers=shared"
MOT="opt.cross_towers=mot"

for cross in shared mot; do
    if [ $cross = mot ]; then over=$MOT; else over=$SHARED; fi
    # shellcheck disable=SC2086
    run "$cross-tp1dp1-a" 1 $over
    # shellcheck disable=SC2086
    run "$cross-tp1dp1-b" 1 $over
    # shellcheck disable=SC2086
    run "$cross-tp2dp1" 2 $over parallel.tp=2
    # shellcheck disable=SC2086
    run "$cross-tp1dp2" 2 $over parallel.tp=1
    # shellcheck disable=SC2086
    run "$cross-tp1dp2mb2" 2 $over parallel.tp=1 train.micro_batch=2
    ref="$SCRATCH/runs/$cross-tp1dp1-a/run.h5"
    check "$cross: the one-rank run logs 20 steps, finite losses, each task in most steps (a task without targets in a batch logs NaN)" \
        $PY -c 'import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); s, l, t = f["/metrics/step"][:], f["/metrics/loss"][:], f["/metrics/task_loss"][:]
sys.exit(0 if list(s) == list(range(1, 21)) and np.all(np.isfinite(l)) and t.shape == (20, 8) and np.all(np.isfinite(t[:, :5])) and np.all(np.isfinite(t).mean(axis=0) >= 0.8) else 1)' "$ref"
    check "$cross: FLOPs issued to BLAS within $TOL_GEMM_VS_FORMULA of the formula's" \
        $PY -c 'import sys, h5py
f = h5py.File(sys.argv[1], "r"); g, m = f["/metrics/gemm_flops"][-1], f["/metrics/flops"][-1]
print("# issued %.6g, formula %.6g, ratio %.5f" % (g, m, g / m)); sys.exit(0 if abs(g / m - 1) <= float(sys.argv[2]) else 1)' \
        "$ref" "$TOL_GEMM_VS_FORMULA"
    check "$cross: run twice, bit-identical" runcmp same "$ref" "$SCRATCH/runs/$cross-tp1dp1-b/run.h5"
    for lay in tp2dp1 tp1dp2 tp1dp2mb2; do
        check "$cross $lay: matches one rank at each of 20 steps (rel tol $TOL_F32_REORDER)" \
            runcmp close "$ref" "$SCRATCH/runs/$cross-$lay/run.h5" --tol "$TOL_F32_REORDER"
    done
done

# ---- resume: 20 steps, SIGUSR1, resume = 40 straight steps, bit for bit ---------------
# The held-out evaluation after step 20 (log.eval_tokens held-out samples) is the
# pause in which the signal lands, as in tests/e2e/resume.sh.
RES="$MOT train.steps=40 train.checkpoint_every=10 log.eval_every=20 log.eval_tokens=1000 log.retrieval_pool=8 log.quiet=false"
# shellcheck disable=SC2086
if sigusr1_resume mot 2 $RES parallel.tp=2; then
    check "mot tp 2: 20 steps + SIGUSR1 + resume = 40 straight steps, bit-identical" \
        runcmp same "$SCRATCH/runs/mot-straight/run.h5" "$SCRATCH/runs/mot-usr1/run.h5"
    check "mot tp 2: the resumed record has exactly 40 rows" [ "$(runcmp rows "$SCRATCH/runs/mot-usr1/run.h5")" = 40 ]
fi

check "an OPT run record matches docs/run-record.md (task and retrieval columns included)" \
    $PY tests/check_schema.py docs/run-record.md "$SCRATCH/runs/mot-straight/run.h5" ""

# ---- FLOPs: shared and MoT equal per token, MoT with more parameters ----------------
"$MOTSCALE" flops "$SCRATCH/base.ini" $SHARED >"$SCRATCH/fl-shared.txt" 2>&1
"$MOTSCALE" flops "$SCRATCH/base.ini" $MOT >"$SCRATCH/fl-mot.txt" 2>&1
check "motscale flops: shared and mot have the same training FLOPs per token of each modality" \
    [ -n "$(grep 'train per token' "$SCRATCH/fl-shared.txt")" ] && \
    [ "$(grep 'train per token' "$SCRATCH/fl-shared.txt")" = "$(grep 'train per token' "$SCRATCH/fl-mot.txt")" ]

# ---- opt.task_mode = sample ----------------------------------------------------------
run sample 1 $SHARED opt.task_mode=sample
check "task_mode = sample trains one task a step (one finite /metrics/task_loss entry a row, several tasks)" \
    $PY -c 'import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); t = f["/metrics/task_loss"][:]
one = np.isfinite(t).sum(axis=1); drawn = set(np.argmax(np.isfinite(t), axis=1).tolist())
sys.exit(0 if t.shape == (20, 8) and np.all(one <= 1) and np.mean(one == 1) >= 0.9 and len(drawn) >= 3 else 1)' \
    "$SCRATCH/runs/sample/run.h5"

# ---- bad input: exit 2, one line naming the key, nothing written ---------------------
bad() {
    name=$1
    pat=$2
    shift 2
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$name" "$@" >"$SCRATCH/$name.out" 2>&1
    rc=$?
    if [ "$rc" -eq 2 ] && grep -qF -- "$pat" "$SCRATCH/$name.out" && [ ! -e "$SCRATCH/runs/$name" ]; then
        ok "$name: exit 2, says '$pat', nothing written"
    else
        not_ok "$name: exit $rc (want 2), message must contain '$pat'"
        sed 's/^/# /' "$SCRATCH/$name.out" | head -3
    fi
}
bad bad-modalities "data.modalities: model.kind = opt needs text,image,speech" data.modalities=text,image data.mix=1,1
bad bad-source "/nonexistent.h5" data.source=file data.path=/nonexistent.h5
bad bad-weights "opt.w_mlm: the task weights (opt.w_*) are all zero" opt.w_mlm=0 opt.w_mrfr=0 opt.w_mrc=0 \
    opt.w_mafr=0 opt.w_mac=0 opt.w_match=0 opt.w_trec=0 opt.w_irec=0
bad bad-cross "opt.cross_towers" opt.cross_towers=towers
bad bad-qk "model.qk_norm: model.kind = opt's blocks have no QK-norm" model.qk_norm=true
