#!/bin/sh
# Layout equivalence under mpirun (DESIGN.md §4, §9): for dense and for MoT with three
# modalities, layouts (tp, dp) = (1,1), (2,1), (4,1), (1,2), (2,2) and (1,2) with two
# micro-batches per rank (gradient accumulation), all at the same global batch, give
# the one-rank loss (overall and per modality) at each of 20 steps within
# TOL_LAYOUT_REL; each layout run twice gives bit-identical losses; and bad layouts
# stop before training with exit status 2 and the numbers in the message.
. tests/lib.sh

# Tolerance of a layout against one rank, relative, on the loss of every step.
# The model is fp32. TP changes the summation order inside the row-parallel GEMMs
# (each rank sums its slice of the contraction, then the all-reduce adds the
# partials) and of the gradient norm; DP and micro-batching change the order in
# which per-sequence gradients are added. Each reordering moves a result by a few
# fp32 ulps (~1e-7 relative); AdamW over 20 steps at lr 3e-3 carries that into the
# weights without amplifying it by orders of magnitude, so the loss stays within
# ~1e-7 (observed at this size: below 1e-7). A real layout bug (a shard taken from
# the wrong columns, a missing or doubled all-reduce, a batch read twice, the loss
# mean over the wrong count) moves the loss by 1e-3 or more from the first step.
# 1e-5 sits between the two with margin on both sides; it is TOL_F32_REORDER of
# tests/unit/testutil.h, the same bound the in-process reorder tests use.
TOL_LAYOUT_REL=1e-5

cat >"$SCRATCH/base.ini" <<EOF
[run]
out_dir = $SCRATCH/runs
seed = 7
[model]
d_model = 32
n_layers = 2
n_heads = 4
d_ff = 64
seq_len = 16
[train]
steps = 20
global_batch = 8
warmup = 5
[log]
every = 1
eval_every = 0
quiet = true
peak_flops = 1e9
EOF
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

    check "$model: every layout matches one rank at each of 20 steps (rel tol $TOL_LAYOUT_REL); twice = bit-identical" \
        $PY - "$SCRATCH/runs" "$model" "$TOL_LAYOUT_REL" "$LAYOUTS" <<'EOF'
import sys
import h5py, numpy as np

root, model, tol, names = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split()
bad = []

def read(name):
    with h5py.File("%s/%s-%s/run.h5" % (root, model, name), "r") as f:
        return {k: f["/metrics/" + k][:] for k in ("step", "loss", "loss_by_modality", "grad_norm", "tokens")} | \
               {"tp": int(f.attrs["tp"]), "dp": int(f.attrs["dp"]), "kind": f["/model"].attrs["kind"],
                "M": len(f["/model"].attrs["modality_names"])}

ref = read(names[0] + "-a")
if list(ref["step"]) != list(range(1, 21)):
    bad.append("one-rank run: steps %s, want 1..20" % ref["step"])
if ref["kind"] != model or ref["M"] != 3:
    bad.append("one-rank run: kind %s with %d modalities" % (ref["kind"], ref["M"]))
if not np.all(np.isfinite(ref["loss"])) or not ref["loss"][-1] < ref["loss"][0]:
    bad.append("one-rank run: loss does not go down: %s" % ref["loss"])

def rel(a, b):
    return np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))

worst = 0.0
for name in names:
    a, b = read(name + "-a"), read(name + "-b")
    for k in ("step", "loss", "loss_by_modality", "grad_norm", "tokens"):
        if not np.array_equal(a[k], b[k], equal_nan=True) if a[k].dtype.kind == "f" else not np.array_equal(a[k], b[k]):
            d = np.nanmax(np.abs(a[k] - b[k]))
            bad.append("%s: %s differs between two runs of the same layout (max |diff| %.3g)" % (name, k, d))
    want_tp = int(name[2]); want_dp = int(name[5])
    if (a["tp"], a["dp"]) != (want_tp, want_dp):
        bad.append("%s: run file says tp %d dp %d" % (name, a["tp"], a["dp"]))
    if list(a["step"]) != list(ref["step"]) or not np.array_equal(a["tokens"], ref["tokens"]):
        bad.append("%s: steps or token counts differ from one rank" % name)
        continue
    r = rel(a["loss"], ref["loss"])
    rm = rel(a["loss_by_modality"], ref["loss_by_modality"])
    m = max(np.max(r), np.nanmax(rm))
    if name != names[0]:
        print("# %s %s: max relative deviation from one rank: loss %.2e, loss by modality %.2e"
              % (model, name, np.max(r), np.nanmax(rm)))
        worst = max(worst, m)
    if not m <= tol:
        i = int(np.argmax(r))
        bad.append("%s: step %d loss %.9g vs one rank %.9g (rel %.2e > %.0e)"
                   % (name, a["step"][i], a["loss"][i], ref["loss"][i], m, tol))
    if not np.array_equal(np.isnan(a["loss_by_modality"]), np.isnan(ref["loss_by_modality"])):
        bad.append("%s: modalities without tokens differ from one rank" % name)
print("# %s: worst relative deviation over all layouts %.2e (tolerance %.0e)" % (model, worst, tol))
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
EOF
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
