# An independent re-implementation agrees with motscale (bench/torch_ref.py, PyTorch,
# float64): a dense xs run on a token file checkpoints at step 4 and runs to step 8;
# the reference loads the step-4 checkpoint (parameters and AdamW moments), reads the
# same windows from the token file and takes steps 5..8 itself. Its per-step loss,
# per-modality losses and pre-clip gradient norm must match /metrics of the run, its
# learning-rate schedule every logged lr, and the parameters it reaches the run's
# step-8 checkpoint. Two models: the default (swin norms, every step clipped) and
# pre-norm with QK-norm and grad_clip 1.4 (steps on both sides of the clip).
. tests/lib.sh

# Tolerances, all relative, of an fp32 run against a float64 reference:
#  loss, per-modality loss: 1e-6. The loss is a double sum of fp32 per-token terms,
#    each a few fp32 roundings (u = 6e-8) deep per layer; 5e-10 .. 2e-9 observed. Leaving
#    out weight decay moves the loss by 1.5e-5 within four steps, a lr schedule one step
#    off by 5e-3.
#  gradient norm: 1e-5. The gradient passes through every backward GEMM in fp32;
#    3e-8 .. 4e-7 observed; no weight decay: 9e-4.
#  lr: 1e-12. Both compute the schedule in double; 0 observed.
#  parameters: 1e-3 of the distance moved, ||p_ref - p|| / ||p - p_start|| per tensor.
#    Adam divides by sqrt(v), so an element with a tiny, cancelling gradient gets a
#    large relative error in its step; such elements weigh little in the norm. 2e-5
#    observed; no weight decay: 1e-2.
TOLS="--tol-loss 1e-6 --tol-grad-norm 1e-5 --tol-lr 1e-12 --tol-params 1e-3"
REF="$PY bench/torch_ref.py"

if ! $PY -c "import torch" 2>/dev/null; then
    not_ok "PyTorch for $PY (python3-torch; scripts/bootstrap installs it with MOTSCALE_WITH_TORCH=1)"
    exit 1
fi
: >"$SCRATCH/defaults.ini" # every key at its default
"$MOTSCALE" data gen "$SCRATCH/defaults.ini" model.size=xs --windows 64 --heldout-windows 1 -o "$SCRATCH/tokens.h5" >/dev/null
XS="model.size=xs data.source=file data.path=$SCRATCH/tokens.h5 train.steps=8 train.warmup=5
train.global_batch=4 train.checkpoint_every=4 log.every=1 log.eval_every=0 log.quiet=true
log.peak_flops=1e9 run.out_dir=$SCRATCH/runs"

agree() { # NAME [key=value ...]: train, then the reference from step 4
    name=$1
    shift
    what="$name${1:+: $*}"
    # shellcheck disable=SC2086
    if ! timeout 120 "$MOTSCALE" train "$SCRATCH/defaults.ini" $XS run.name="$name" "$@" >"$SCRATCH/$name.out" 2>&1; then
        not_ok "motscale run $name"
        tail -3 "$SCRATCH/$name.out" | sed 's/^/# /'
        return
    fi
    # shellcheck disable=SC2086
    timeout 120 $REF check "$SCRATCH/runs/$name" --from 4 $TOLS >"$SCRATCH/$name.ref" 2>&1
    rc=$?
    grep -E '^(agree|DISAGREE|steps|torch_ref)' "$SCRATCH/$name.ref" | sed 's/^/# /'
    if [ $rc -eq 0 ]; then ok "PyTorch reference agrees with motscale ($what)"; else
        not_ok "PyTorch reference agrees with motscale ($what), exit $rc"
        tail -3 "$SCRATCH/$name.ref" | sed 's/^/# /'
    fi
}

agree swin
agree pre-qk model.norm=pre model.qk_norm=true train.grad_clip=1.4

# bad input: one line, exit 2
expect_status 2 "check from a step without a checkpoint exits 2" $REF check "$SCRATCH/runs/swin" --from 3 $TOLS
expect_status 2 "check of a missing run exits 2" $REF check "$SCRATCH/runs/none" --from 4 $TOLS
expect_status 2 "bench with a head size RoPE cannot pair exits 2" $REF bench --d-model 12 --n-layers 1 \
    --n-heads 4 --d-ff 8 --seq-len 4 --batch 1 --vocab 8 --steps 1
