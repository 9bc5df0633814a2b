# Issue 3: the ScaLAPACK 2D tensor-parallel backend against Megatron 1D, step time at
# tp = 2 (2 x 1 grid) and tp = 4 (2 x 2 grid), same model and batch, runs of the two
# backends interleaved so both see the same machine. Reported as the ratio
# scalapack/megatron of the median step time (below 1: scalapack is faster); there
# is no target, which backend wins at which size is the result. One BLAS thread per
# rank; ranks beyond the core count are oversubscribed, and the summary says so. The
# figure is the ratio of the medians over repetitions; min and max are those of the
# per-repetition ratios (the two backends run back to back in each).
#   BUILD=build sh bench/bench_tp_backend.sh     (BENCH_REPS=N runs per point)
MOTSCALE=${MOTSCALE:-$PWD/${BUILD:-build}/motscale}
. bench/lib.sh
dm=$(full_or_quick 512 128) # quick: a narrow model, the figure only has to exist
model="model.d_model=$dm model.n_heads=8 model.d_ff=$((4 * dm)) model.n_layers=2 model.seq_len=64"
steps=$(full_or_quick 15 5)
base="$model train.global_batch=8 train.steps=$steps train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
SKIP=$(full_or_quick 5 2) # logged steps left out of each median: start-up, first-touch of buffers
cores=$(getconf _NPROCESSORS_ONLN) # not nproc: it obeys OMP_NUM_THREADS
echo "# $model, global batch 8; median step time of steps $((SKIP + 1))..$steps, $REPS runs per point; $cores cores"

for tp in 2 4; do
    meg=""
    sl=""
    ratios=""
    for r in $(seq "$REPS"); do
        for b in megatron scalapack; do
            if ! $MPIRUN "$tp" "$MOTSCALE" train "$DEFAULTS" $base parallel.tp="$tp" parallel.tp_backend=$b \
                run.out_dir="$SCRATCH" run.name="$b-tp$tp-$r" >"$SCRATCH/$b-tp$tp-$r.out" 2>&1; then
                echo "bench_tp_backend: the $b run at tp=$tp failed:" >&2
                tail -5 "$SCRATCH/$b-tp$tp-$r.out" >&2
                exit 1
            fi
            t=$(median_step "$SCRATCH/$b-tp$tp-$r/run.h5" "$SKIP")
            if [ $b = megatron ]; then meg="$meg $t" tm=$t; else sl="$sl $t"; fi
        done
        ratios="$ratios $(awk -v a="$tm" -v b="$t" 'BEGIN {printf "%.3f", b / a}')"
    done
    # shellcheck disable=SC2086
    a=$(median $meg)
    # shellcheck disable=SC2086
    b=$(median $sl)
    note=""
    [ "$tp" -gt "$cores" ] && note=" ($tp ranks on $cores cores: oversubscribed)"
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b / a}')
    echo "result tp=$tp step time: megatron $(awk -v x="$a" 'BEGIN{printf "%.1f", 1e3*x}') ms, scalapack $(awk -v x="$b" 'BEGIN{printf "%.1f", 1e3*x}') ms: ratio scalapack/megatron $ratio$note"
    # shellcheck disable=SC2046,SC2086
    figure "tp_backend.tp$tp" x "$ratio" $(minmax $ratios) - - "ScaLAPACK / Megatron step time, tp=$tp, d_model $dm$note"
done
