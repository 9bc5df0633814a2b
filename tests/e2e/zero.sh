#!/bin/sh
# ZeRO stage 1 (parallel.zero = 1, docs/parallelism.md) under mpirun:
#  (a) MoT, three modalities, dp 2, small buckets (shard boundaries cut tensors):
#      zero 1 gives the zero 0 loss curve at each of 20 steps within TOL_F32_REORDER
#      and repeats bit for bit; at dp 4, at tp 2 x dp 2 and at dp 2 with two
#      micro-batches a rank it gives the one-rank curve within the same tolerance;
#  (b) checkpoints cross zero and dp: a zero 1 dp 2 checkpoint (step 10) resumed at
#      zero 1 dp 2 continues bit for bit, at zero 0 dp 2, zero 0 dp 1 and zero 1
#      dp 4 within TOL_F32_REORDER; a zero 0 checkpoint resumed at zero 1 likewise;
#      the zero 1 checkpoint's moments (gathered from the shards) match the zero 0
#      run's and pass the documented checksums;
#  (c) moment memory per rank is halved at dp 2: `motscale flops` says so, and the
#      run record's per-rank peak RSS falls by at least that much;
#  (d) parallel.zero = 2 is refused with exit status 2, naming the key.
. tests/lib.sh

# Tolerance: TOL_F32_REORDER (tests/tolerances.env): a reduce-scatter sums in another
# order than an all-reduce, and the gradient norm is summed shard by shard. A wrong
# shard (moments of another element, a missed all-gather) is off by 1e-3 or more.
# A constant learning rate after warm-up (lr_min = lr), so a 10-step run resumed to
# 20 steps follows the schedule of a 20-step run.
base_ini model.kind=mot data.modalities=text,image,speech data.mix=1,1,1 train.global_batch=8 \
    train.lr_min=3e-3 parallel.bucket_mb=0.01
Z1="parallel.zero=1"

# ---- (a) the loss curve -------------------------------------------------------------
run ref 1
run z0 2
run z1a 2 $Z1
run z1b 2 $Z1
run z1dp4 4 $Z1
run z1tp2dp2 4 $Z1 parallel.tp=2
run z1mb2 2 $Z1 train.micro_batch=2
R=$SCRATCH/runs
check "zero 1 at dp 2 repeats bit for bit" runcmp same "$R/z1a/run.h5" "$R/z1b/run.h5"
check "zero 1 at dp 2 gives the zero 0 curve, 20 steps (rel tol $TOL_F32_REORDER)" \
    runcmp close "$R/z0/run.h5" "$R/z1a/run.h5" --tol "$TOL_F32_REORDER"
for lay in z1dp4 z1tp2dp2 z1mb2; do
    check "$lay gives the one-rank curve, 20 steps (rel tol $TOL_F32_REORDER)" \
        runcmp close "$R/ref/run.h5" "$R/$lay/run.h5" --tol "$TOL_F32_REORDER"
done
check "the runs recorded parallel.zero" $PY -c 'import sys, h5py, re
z = [re.search(r"^zero = (\d)$", h5py.File(p, "r").attrs["config"], re.M).group(1) for p in sys.argv[1:]]
sys.exit(0 if z == ["0", "1"] else 1)' "$R/z0/run.h5" "$R/z1a/run.h5"

# ---- (b) checkpoints across zero and dp ----------------------------------------------
run half1 2 $Z1 train.steps=10
run half0 2 train.steps=10
# resume_from HALF NAME NP [key=value ...]: HALF's step-10 checkpoint, resumed to step 20
resume_from() {
    mkdir -p "$R/$2/checkpoints"
    cp "$R/$1/checkpoints/ckpt-000000010.h5" "$R/$2/checkpoints/"
    name=$2
    np=$3
    shift 3
    run "$name" "$np" train.resume=checkpoint "$@"
}
resume_from half1 r1-z1dp2 2 $Z1
resume_from half1 r1-z0dp2 2
resume_from half1 r1-z0dp1 1
resume_from half1 r1-z1dp4 4 $Z1
resume_from half0 r0-z1dp2 2 $Z1
check "zero 1 dp 2 checkpoint resumed at zero 1 dp 2: steps 11..20 bit for bit" \
    runcmp same "$R/z1a/run.h5" "$R/r1-z1dp2/run.h5" --from 10
for name in r1-z0dp2 r1-z0dp1 r1-z1dp4 r0-z1dp2; do
    check "$name: steps 11..20 match the straight zero 0 run (rel tol $TOL_F32_REORDER)" \
        runcmp close "$R/z0/run.h5" "$R/$name/run.h5" --from 10 --tol "$TOL_F32_REORDER"
done
check "zero 1 checkpoint: documented objects and checksums" \
    $PY tests/check_schema.py docs/run-record.md "$R/half1/checkpoints/ckpt-000000010.h5" checkpoint \
    "$R/half1/run.h5"
# the gathered moments against the zero 0 run's: every tensor within TOL_F32_GRAD_REORDER
# in L2 (the same reordering noise as a gradient; a shard in the wrong place is O(1))
check "zero 1 checkpoint: moments match the zero 0 run's (L2 rel tol $TOL_F32_GRAD_REORDER)" \
    $PY - "$R/half0/checkpoints/ckpt-000000010.h5" "$R/half1/checkpoints/ckpt-000000010.h5" \
    "$TOL_F32_GRAD_REORDER" <<'EOF'
import sys
import h5py, numpy as np
a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
worst, n = 0.0, 0
for g in ("adam_m", "adam_v"):
    for k in a[g]:
        x, y = a[g][k][...].astype(np.float64), b[g][k][...].astype(np.float64)
        worst = max(worst, np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30))
        n += 1
print("# %d moment tensors, worst L2 relative difference %.3g" % (n, worst))
sys.exit(0 if n > 0 and worst <= tol else 1)
EOF

# ---- (c) moment memory at dp 2 -------------------------------------------------------
# A dense model whose moments (73 MiB) dwarf what else differs between the runs.
BIG="model.kind=dense model.d_model=384 model.n_layers=4 model.n_heads=4 model.d_ff=1536 train.global_batch=4 train.steps=3 parallel.bucket_mb=4"
moments() {
    # shellcheck disable=SC2086
    "$MOTSCALE" flops "$SCRATCH/base.ini" $BIG parallel.dp=2 "$@" | awk '/AdamW moments/ {print $NF}'
}
m0=$(moments parallel.zero=0)
m1=$(moments parallel.zero=1)
check "motscale flops: moments per rank at dp 2, zero 1 = half of zero 0 ($m1 of $m0 bytes)" \
    $PY -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if 0 <= 2 * b - a <= 16 else 1)' \
    "$m0" "$m1"
# shellcheck disable=SC2086
run mem0 2 $BIG
# shellcheck disable=SC2086
run mem1 2 $BIG $Z1
# Peak RSS is the whole process (the collectives' and the allocator's buffers too):
# the measured saving on each rank must be at least the half of the moments zero 1
# leaves out, less TOL_RSS_SHARE (tests/tolerances.env says what it covers).
# Under AddressSanitizer (make check SANITIZE=1) the RSS is the sanitizer's shadow
# memory and quarantine as much as the model's (measured: rank 0 saved 23 of the
# 36.6 MiB), so the figure means nothing there and the check is skipped.
if [ -n "${SANITIZE:-}" ]; then
    ok "# SKIP peak RSS per rank at dp 2: not measured under AddressSanitizer"
else
    check "peak RSS per rank falls by at least half the moments at dp 2 (/ranks/peak_rss)" \
        $PY - "$R/mem0/run.h5" "$R/mem1/run.h5" "$m0" "$m1" "$TOL_RSS_SHARE" <<'EOF'
import sys
import h5py, numpy as np
r0 = h5py.File(sys.argv[1], "r")["/ranks/peak_rss"][-1]
r1 = h5py.File(sys.argv[2], "r")["/ranks/peak_rss"][-1]
saved = float(sys.argv[3]) - float(sys.argv[4])
tol = float(sys.argv[5])
print("# peak RSS MiB zero 0 %s, zero 1 %s; moments left out %.1f MiB" % (
    np.round(r0 / 2**20, 1), np.round(r1 / 2**20, 1), saved / 2**20))
sys.exit(0 if len(r0) == 2 and np.all(r0 - r1 >= (1 - tol) * saved) else 1)
EOF
fi

# ---- (d) bad value -------------------------------------------------------------------
expect_status 2 "parallel.zero = 2: exit 2" "$MOTSCALE" train "$SCRATCH/base.ini" parallel.zero=2
check "parallel.zero = 2: the message names the key" grep -q "parallel.zero" "$SCRATCH/last.out"
