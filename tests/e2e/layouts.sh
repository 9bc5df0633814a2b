#!/bin/sh
# Layout equivalence under mpirun (DESIGN.md §4, §9): for dense and for MoT with three
# modalities, layouts (tp, dp) = (1,1), (2,1), (4,1), (1,2), (2,2) and (1,2) with two
# micro-batches per rank (gradient accumulation), all at the same global batch, give
# the one-rank loss (overall and per modality) at each of 20 steps within
# TOL_F32_REORDER; each layout run twice gives bit-identical losses; and bad layouts
# stop before training with exit status 2 and the numbers in the message.
. tests/lib.sh

# Tolerance of a layout against one rank: TOL_F32_REORDER (tests/tolerances.env): TP
# changes the summation order inside the row-parallel GEMMs and of the gradient norm,
# DP and micro-batching the order in which per-sequence gradients are added.

base_ini
MOT="model.kind=mot data.modalities=text,image,speech data.mix=1,1,1"
DENSE="model.kind=dense data.modalities=text,image,speech data.mix=1,1,1"


# The layouts (the one-rank reference first) and, for each, np and its overrides.
LAYOUTS="tp1dp1 tp2dp1 tp4dp1 tp1dp2 tp2dp2 tp1dp2mb2"
layout_args() {
    case $1 in
    tp1dp1) echo "1 parallel.tp=1" ;;
    tp2dp1) echo "2 parallel.tp=2" ;;
    tp4dp1) echo "4 parallel.tp=4" ;;
    tp1dp2) echo "2 parallel.tp=1" ;;
    tp2dp2) echo "4 parallel.tp=2" ;;
    tp1dp2mb2) echo "2 parallel.tp=1 train.micro_batch=2" ;;
    esac
}

for model in dense mot; do
    if [ $model = mot ]; then kind=$MOT; else kind=$DENSE; fi
    for lay in $LAYOUTS; do
        # shellcheck disable=SC2046,SC2086
        run "$model-$lay-a" $(layout_args $lay) $kind
        # shellcheck disable=SC2046,SC2086
        run "$model-$lay-b" $(layout_args $lay) $kind
    done

    check "$model: the one-rank run trains (20 steps, finite loss going down)" \
        $PY -c 'import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); s, l = f["/metrics/step"][:], f["/metrics/loss"][:]
sys.exit(0 if list(s) == list(range(1, 21)) and np.all(np.isfinite(l)) and l[-1] < l[0] else 1)' \
        "$SCRATCH/runs/$model-tp1dp1-a/run.h5"
    for lay in $LAYOUTS; do
        want="tp $(echo "$lay" | cut -c3) dp $(echo "$lay" | cut -c6)"
        got="tp $(runcmp attr "$SCRATCH/runs/$model-$lay-a/run.h5" tp) dp $(runcmp attr "$SCRATCH/runs/$model-$lay-a/run.h5" dp)"
        check "$model $lay: the run file says $want" [ "$got" = "$want" ]
        check "$model $lay: run twice, bit-identical" \
            runcmp same "$SCRATCH/runs/$model-$lay-a/run.h5" "$SCRATCH/runs/$model-$lay-b/run.h5"
        [ "$lay" = tp1dp1 ] && continue
        check "$model $lay: matches one rank at each of 20 steps (rel tol $TOL_F32_REORDER)" \
            runcmp close "$SCRATCH/runs/$model-tp1dp1-a/run.h5" "$SCRATCH/runs/$model-$lay-a/run.h5" \
            --tol "$TOL_F32_REORDER"
    done
done

# ---- bad layouts: exit 2 before training, the numbers in the message ----------------
# bad NAME NP "description" "pattern that must be in the message" overrides...
bad() {
    name=$1
    np=$2
    desc=$3
    pat=$4
    shift 4
    timeout 120 $MPIRUN "$np" "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$name" "$@" \
        </dev/null >"$SCRATCH/$name.out" 2>&1
    rc=$?
    if [ "$rc" -eq 2 ] && grep -qF -- "$pat" "$SCRATCH/$name.out" && [ ! -e "$SCRATCH/runs/$name" ]; then
        ok "$desc: exit 2, says '$pat', nothing written"
    else
        not_ok "$desc: exit $rc (want 2), message must contain '$pat', run dir must not exist"
        sed 's/^/# /' "$SCRATCH/$name.out" | head -5
    fi
}
bad bad-heads 3 "n_heads 4 at tp 3 (np 3)" "n_heads = 4 is not divisible by tp = 3" parallel.tp=3
bad bad-dff 4 "d_ff 66 at tp 4 (np 4)" "d_ff = 66 is not divisible by tp = 4" parallel.tp=4 model.d_ff=66
bad bad-world 3 "world 3 at tp 2 (np 3)" "world size 3 is not divisible by tp = 2" parallel.tp=2
bad bad-dp 4 "dp 3 x tp 2 at np 4" "dp x tp = 3 x 2 = 6, but the world has 4 ranks" parallel.tp=2 parallel.dp=3
bad bad-gb 2 "global batch 6 at dp 2, micro batch 2 (np 2)" "6 is not divisible by dp x micro_batch = 2 x 2 = 4" \
    train.global_batch=6 train.micro_batch=2
bad bad-gbdp 4 "global batch 6 at dp 4, micro batch auto (np 4)" "6 is not divisible by dp = 4" \
    train.global_batch=6
