# Issue 3: the ScaLAPACK 2D tensor-parallel backend against Megatron 1D, step time at
# tp = 2 (2 x 1 grid) and tp = 4 (2 x 2 grid), same model and batch, runs of the two
# backends interleaved so both see the same machine. Reported as the ratio
# scalapack/megatron of the median step time (below 1: scalapack is faster); there
# is no target, which backend wins at which size is the result. One BLAS thread per
# rank; ranks beyond the core count are oversubscribed, and the summary says so.
#   BUILD=build sh bench/bench_tp_backend.sh     (BENCH_REPS=N runs per point)
MOTSCALE=${MOTSCALE:-$PWD/${BUILD:-build}/motscale}
. bench/lib.sh
model="model.d_model=512 model.n_heads=8 model.d_ff=2048 model.n_layers=2 model.seq_len=64"
base="$model train.global_batch=8 train.steps=15 train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
SKIP=5 # logged steps left out of each median: start-up, first-touch of buffers
cores=$(nproc)
echo "# $model, global batch 8; median step time of steps $((SKIP + 1))..15, $REPS runs per point; $cores cores"

for tp in 2 4; do
    meg=""
    sl=""
    for r in $(seq "$REPS"); do
        for b in megatron scalapack; do
            if ! $MPIRUN "$tp" "$MOTSCALE" train tests/fixtures/defaults.ini $base parallel.tp="$tp" parallel.tp_backend=$b \
                run.out_dir="$SCRATCH" run.name="$b-tp$tp-$r" >"$SCRATCH/$b-tp$tp-$r.out" 2>&1; then
                echo "bench_tp_backend: the $b run at tp=$tp failed:" >&2
                tail -5 "$SCRATCH/$b-tp$tp-$r.out" >&2
                exit 1
            fi
            t=$(median_step "$SCRATCH/$b-tp$tp-$r/run.h5" "$SKIP")
            if [ $b = megatron ]; then meg="$meg $t"; else sl="$sl $t"; fi
        done
    done
    # shellcheck disable=SC2086
    a=$(median $meg)
    # shellcheck disable=SC2086
    b=$(median $sl)
    note=""
    [ "$tp" -gt "$cores" ] && note=" ($tp ranks on $cores cores: oversubscribed)"
    echo "result tp=$tp step time: megatron $(awk -v x="$a" 'BEGIN{printf "%.1f", 1e3*x}') ms, scalapack $(awk -v x="$b" 'BEGIN{printf "%.1f", 1e3*x}') ms: ratio scalapack/megatron $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b / a}')$note"
done
