# Issue 3: data-parallel throughput at dp = 2 over dp = 1 (same per-rank batch; target
# >= 1.85x on 2 cores) and tensor-parallel speed-up at tp = 2 over tp = 1 at
# d_model = 512 (same batch; target >= 1.6x). One rank per core, one BLAS thread each.
. bench/lib.sh
base="model.seq_len=64 train.steps=30 train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
dp1=""
dp2=""
tp1=""
tp2=""
for r in $(seq "$REPS"); do
    $MPIRUN_CORE 1 "$MOTSCALE" train tests/fixtures/defaults.ini $base model.size=s train.global_batch=8 run.out_dir="$SCRATCH" run.name=dp1-$r >/dev/null 2>&1
    $MPIRUN_CORE 2 "$MOTSCALE" train tests/fixtures/defaults.ini $base model.size=s train.global_batch=16 run.out_dir="$SCRATCH" run.name=dp2-$r >/dev/null 2>&1
    $MPIRUN_CORE 1 "$MOTSCALE" train tests/fixtures/defaults.ini $base model.d_model=512 model.n_heads=8 model.d_ff=2048 model.n_layers=2 train.global_batch=8 run.out_dir="$SCRATCH" run.name=tp1-$r >/dev/null 2>&1
    $MPIRUN_CORE 2 "$MOTSCALE" train tests/fixtures/defaults.ini $base model.d_model=512 model.n_heads=8 model.d_ff=2048 model.n_layers=2 train.global_batch=8 parallel.tp=2 run.out_dir="$SCRATCH" run.name=tp2-$r >/dev/null 2>&1
    # throughput ratio dp: (2x tokens per step) / step time
    dp1="$dp1 $(median_step "$SCRATCH/dp1-$r/run.h5")"
    dp2="$dp2 $(median_step "$SCRATCH/dp2-$r/run.h5")"
    tp1="$tp1 $(median_step "$SCRATCH/tp1-$r/run.h5")"
    tp2="$tp2 $(median_step "$SCRATCH/tp2-$r/run.h5")"
done
a=$(median $dp1)
b=$(median $dp2)
dps=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", 2 * a / b}')
echo "result dp=2 / dp=1 throughput: step $(awk -v x="$a" 'BEGIN{printf "%.1f", 1e3*x}') ms at dp=1 (8 seq), $(awk -v x="$b" 'BEGIN{printf "%.1f", 1e3*x}') ms at dp=2 (16 seq): ${dps}x"
verdict "dp=2 over dp=1 throughput" "$dps" ge 1.85
a=$(median $tp1)
b=$(median $tp2)
tps=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')
echo "result tp=2 / tp=1 speed-up at d_model=512: $(awk -v x="$a" 'BEGIN{printf "%.1f", 1e3*x}') ms -> $(awk -v x="$b" 'BEGIN{printf "%.1f", 1e3*x}') ms: ${tps}x"
verdict "tp=2 over tp=1 at d_model=512" "$tps" ge 1.6
