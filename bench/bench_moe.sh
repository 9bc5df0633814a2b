# Issue 12: mixture of experts at tp = 2, the experts sharded like the dense FFN
# (parallel.expert_parallel = false) against whole experts per rank (true), same model,
# batch and routing, runs of the two interleaved so both see the same machine; and
# MoE-4x against dense at one rank (capacity 1: the dense FLOPs plus the router, so
# the ratio is what routing, gathering and the expert loop cost). Reported as ratios
# of median step times; no target, which layout wins at which size is the result.
# One BLAS thread per rank, each pinned to a core.
#   BUILD=build sh bench/bench_moe.sh     (BENCH_REPS=N runs per point)
MOTSCALE=${MOTSCALE:-$PWD/${BUILD:-build}/motscale}
. bench/lib.sh
dm=$(full_or_quick 512 128) # quick: a narrow model, the figure only has to exist
model="model.d_model=$dm model.n_heads=8 model.d_ff=$((4 * dm)) model.n_layers=2 model.seq_len=64"
steps=$(full_or_quick 15 5)
base="$model model.kind=moe model.moe_experts=4 train.global_batch=8 train.steps=$steps train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
SKIP=$(full_or_quick 5 2) # logged steps left out of each median: start-up, first-touch of buffers
echo "# $model, 4 experts, global batch 8; median step time of steps $((SKIP + 1))..$steps, $REPS runs per point"

# one run: NAME NP KEYS...; prints its median step time
one() {
    n=$1
    np=$2
    shift 2
    if ! $MPIRUN_CORE "$np" "$MOTSCALE" train "$DEFAULTS" "$@" run.out_dir="$SCRATCH" run.name="$n" >"$SCRATCH/$n.out" 2>&1; then
        echo "bench_moe: the run $n failed:" >&2
        tail -5 "$SCRATCH/$n.out" >&2
        exit 1
    fi
    median_step "$SCRATCH/$n/run.h5" "$SKIP"
}

sh_t="" ep_t="" ratios=""
dn_t="" moe_t="" dratios=""
for r in $(seq "$REPS"); do
    # shellcheck disable=SC2086
    a=$(one sharded-$r 2 $base parallel.tp=2) || exit 1
    # shellcheck disable=SC2086
    b=$(one ep-$r 2 $base parallel.tp=2 parallel.expert_parallel=true) || exit 1
    sh_t="$sh_t $a" ep_t="$ep_t $b"
    ratios="$ratios $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')"
    # shellcheck disable=SC2086
    c=$(one dense-$r 1 $model train.global_batch=8 train.steps=$steps train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9) || exit 1
    # shellcheck disable=SC2086
    d=$(one moe-$r 1 $base) || exit 1
    dn_t="$dn_t $c" moe_t="$moe_t $d"
    dratios="$dratios $(awk -v a="$c" -v b="$d" 'BEGIN {printf "%.3f", b / a}')"
done
# shellcheck disable=SC2086
a=$(median $sh_t)
# shellcheck disable=SC2086
b=$(median $ep_t)
ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b / a}')
echo "result tp=2 step time: sharded experts $(awk -v x="$a" 'BEGIN{printf "%.1f", 1e3*x}') ms, expert parallel $(awk -v x="$b" 'BEGIN{printf "%.1f", 1e3*x}') ms: ratio $ratio"
# shellcheck disable=SC2046,SC2086
figure "moe.ep_over_sharded" x "$ratio" $(minmax $ratios) - - "MoE-4x at tp=2: expert-parallel / sharded experts step time, d_model $dm"
# shellcheck disable=SC2086
c=$(median $dn_t)
# shellcheck disable=SC2086
d=$(median $moe_t)
dratio=$(awk -v a="$c" -v b="$d" 'BEGIN{printf "%.3f", b / a}')
echo "result one rank step time: dense $(awk -v x="$c" 'BEGIN{printf "%.1f", 1e3*x}') ms, MoE-4x $(awk -v x="$d" 'BEGIN{printf "%.1f", 1e3*x}') ms: ratio $dratio"
# shellcheck disable=SC2046,SC2086
figure "moe.over_dense" x "$dratio" $(minmax $dratios) - - "MoE-4x / dense step time at one rank (equal FLOPs but the router), d_model $dm"
