#!/bin/sh
# Dense = MoT with one tower, exactly, through the whole trainer (AdamW, clipping,
# schedule, run record): `mot` on one modality and `towers` with every modality in
# one group log bit-identical losses to `dense` over 10 steps. MoT whose towers
# start from identical weights logs the dense loss at step 1 to rounding.
. tests/lib.sh

base_ini run.seed=11 data.image_h=4 data.image_w=4 train.steps=10 train.global_batch=4 train.warmup=3 \
    log.peak_flops=1e10

train() { # name overrides...
    n=$1
    shift
    expect_status 0 "train $n" "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$n" "$@"
}
train dense1 model.kind=dense data.modalities=text data.mix=1
train mot1 model.kind=mot data.modalities=text data.mix=1
train dense2 model.kind=dense data.modalities=text,image,speech data.mix=1,1,1
train towers1 model.kind=towers "model.towers=text,image,speech" data.modalities=text,image,speech data.mix=1,1,1
train same3 model.kind=mot model.init_same_towers=true data.modalities=text,image,speech data.mix=1,1,1

# same A B [first]: /metrics/loss and loss_by_modality of runs A and B bit-identical
# (all 10 rows), or with "first", step 1 within TOL_F32_REORDER of tests/tolerances.env
# (fp32 sums in another order, see there) and step 10 different (the
# towers really are separate parameters: AdamW normalises each tower's gradient).
same() {
    if [ -z "${3:-}" ]; then
        runcmp same "$SCRATCH/runs/$1/run.h5" "$SCRATCH/runs/$2/run.h5"
        return
    fi
    $PY - "$SCRATCH/runs/$1/run.h5" "$SCRATCH/runs/$2/run.h5" "$TOL_F32_REORDER" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
la, lb = a["/metrics/loss"][:], b["/metrics/loss"][:]
assert la.shape == lb.shape == (10,), (la.shape, lb.shape)
r = abs(la[0] - lb[0]) / abs(la[0])
print("# step 1 loss %.9f vs %.9f (rel %.2g); step 10 %.6f vs %.6f" % (la[0], lb[0], r, la[-1], lb[-1]))
assert r <= float(sys.argv[3]), r
assert la[-1] != lb[-1]
PY
}
check "mot on one modality = dense, bit for bit over 10 steps" same dense1 mot1
check "towers with every modality in one group = dense, bit for bit over 10 steps" same dense2 towers1
check "mot with identical initial towers = dense at step 1 (to rounding)" same dense2 same3 first
