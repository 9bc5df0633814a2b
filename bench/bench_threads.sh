# Issue 20: OpenBLAS threads for a rank that has more than one core
# (parallel.blas_threads, or SLURM_CPUS_PER_TASK): one rank at d_model 512 with 2 BLAS
# threads against 1, runs interleaved, as the speed-up of the median step time. No
# target; with both cores of this machine busy elsewhere the figure says little.
#   BUILD=build sh bench/bench_threads.sh     (BENCH_REPS=N runs per point)
MOTSCALE=${MOTSCALE:-$PWD/${BUILD:-build}/motscale}
. bench/lib.sh
dm=$(full_or_quick 512 128) # quick: a narrow model, the figure only has to exist
steps=$(full_or_quick 15 5)
base="model.d_model=$dm model.n_heads=8 model.d_ff=$((4 * dm)) model.n_layers=2 model.seq_len=64 train.global_batch=8 train.steps=$steps train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
SKIP=$(full_or_quick 5 2)
cores=$(getconf _NPROCESSORS_ONLN) # not nproc: it obeys OMP_NUM_THREADS
echo "# one rank, d_model $dm; median step time of steps $((SKIP + 1))..$steps, $REPS runs per point; $cores cores"
t1="" t2="" ratios=""
for r in $(seq "$REPS"); do
    for th in 1 2; do
        # the environment's one-thread default would win over the key: unset it here
        # shellcheck disable=SC2086
        if ! env -u OPENBLAS_NUM_THREADS "$MOTSCALE" train "$DEFAULTS" $base parallel.blas_threads=$th \
            run.out_dir="$SCRATCH" run.name="th$th-$r" >"$SCRATCH/th$th-$r.out" 2>&1; then
            echo "bench_threads: the run with $th threads failed:" >&2
            tail -5 "$SCRATCH/th$th-$r.out" >&2
            exit 1
        fi
        t=$(median_step "$SCRATCH/th$th-$r/run.h5" "$SKIP")
        if [ "$th" = 1 ]; then t1="$t1 $t" a=$t; else t2="$t2 $t" b=$t; fi
    done
    ratios="$ratios $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')"
done
# shellcheck disable=SC2086
a=$(median $t1)
# shellcheck disable=SC2086
b=$(median $t2)
sp=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a / b}')
echo "result one rank: 1 BLAS thread $(awk -v x="$a" 'BEGIN{printf "%.1f", 1e3*x}') ms, 2 threads $(awk -v x="$b" 'BEGIN{printf "%.1f", 1e3*x}') ms: speed-up ${sp}x"
# shellcheck disable=SC2046,SC2086
figure "blas_threads.2_over_1" x "$sp" $(minmax $ratios) - - "one rank, 2 BLAS threads over 1 (parallel.blas_threads), d_model $dm"
