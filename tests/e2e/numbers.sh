#!/bin/sh
# Numbers that a restructuring must not move: the loss, per-modality loss, gradient
# norm, learning rate, token and FLOP columns (training and held-out) of six runs,
# compared bit for bit with tests/ref/*.txt. The references were first written by the
# binary of commit ce2b603 (before the layer library of docs/architecture.md), which
# the layer library matched bit for bit; they were rewritten on purpose by the
# commit that brought the fast kernels (one fp32 exponential per logit, vectorised
# exp, blocked causal attention: docs/performance.md), whose losses differ from
# ce2b603's by at most 2.4e-6 relative over the 60 demo steps and 1.1e-8 over the
# 20-step runs; the demo references once more by the commit that computes the head in
# blocks of 256 rows (the head's gradient sums its rows block after block: losses
# within 3.9e-6 relative of the previous references over the 60 demo steps; the
# 20-step runs hold at most 256 rows a rank and did not move). The runs:
#   - the demo config (experiments/demo.ini), dense and mot, on its 2 ranks (dp = 2),
#     cut to 60 steps;
#   - a 3-modality mot model at tp = 2 and at dp = 2, 20 steps; the same with
#     model.norm = pre, and on the ScaLAPACK backend.
# The references hold for one SGEMM kernel: Debian's OpenBLAS is built with
# DYNAMIC_ARCH and picks its kernel from the CPU (Haswell on the AMD family 26 machine
# that wrote them, Cooperlake on a family 25 one), and two kernels sum a product in
# another order (a few ulps, then 60 steps of training). The test pins the kernel that
# wrote them, OPENBLAS_CORETYPE=Haswell (AVX2 + FMA, on every x86-64 CPU that has
# those), so the references mean "this code", not "this machine"; the code compiled
# with -march=native was checked to give the same bits on both machines. Without AVX2
# and FMA the test says it is skipped and why.
# MOTSCALE_WRITE_REF=1 rewrites the references from the binary under test (only when
# a change is meant to move the numbers; say so in the commit).
. tests/lib.sh
REF=tests/ref
if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
    echo "ok 1 - # SKIP the references need OpenBLAS's Haswell kernel (AVX2 + FMA); this CPU lacks them"
    exit 0
fi
export OPENBLAS_CORETYPE=Haswell
base_ini model.kind=mot model.qk_norm=true data.modalities=text,image,speech data.mix=2,1,1 \
    log.eval_every=10 log.eval_tokens=128

compare_ref() { # name run.h5
    runcmp columns "$2" >"$SCRATCH/$1.txt" || { not_ok "$1: read $2"; return; }
    if [ "${MOTSCALE_WRITE_REF:-0}" = 1 ]; then
        cp "$SCRATCH/$1.txt" "$REF/$1.txt"
        ok "$1: reference rewritten"
    elif cmp -s "$SCRATCH/$1.txt" "$REF/$1.txt"; then
        ok "$1: every column equals the reference bit for bit"
    else
        not_ok "$1: columns differ from $REF/$1.txt"
        diff "$REF/$1.txt" "$SCRATCH/$1.txt" | cut -c1-160 | head -6 | sed 's/^/# /'
    fi
}

for kind in dense mot; do
    timeout 300 $MPIRUN 2 "$MOTSCALE" train experiments/demo.ini model.kind=$kind train.steps=60 \
        log.quiet=true log.peak_flops=1e9 run.out_dir="$SCRATCH/runs" run.name=demo-$kind \
        </dev/null >"$SCRATCH/demo-$kind.out" 2>&1 &&
        compare_ref demo-$kind "$SCRATCH/runs/demo-$kind/run.h5" ||
        not_ok "demo-$kind: run failed"
done
run mot3-tp2 2 parallel.tp=2 && compare_ref mot3-tp2 "$SCRATCH/runs/mot3-tp2/run.h5"
run mot3-dp2 2 parallel.tp=1 && compare_ref mot3-dp2 "$SCRATCH/runs/mot3-dp2/run.h5"
run mot3-pre-dp2 2 parallel.tp=1 model.norm=pre && compare_ref mot3-pre-dp2 "$SCRATCH/runs/mot3-pre-dp2/run.h5"
run mot3-sl-tp2 2 parallel.tp=2 parallel.tp_backend=scalapack &&
    compare_ref mot3-sl-tp2 "$SCRATCH/runs/mot3-sl-tp2/run.h5"
