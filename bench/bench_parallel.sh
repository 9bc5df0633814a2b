# Issue 3 (targets revised by issue 20): data-parallel throughput at dp = 2 over dp = 1
# (same per-rank batch; target >= 1.9x on 2 cores) and tensor-parallel speed-up at
# tp = 2 over tp = 1 at d_model = 512 (same batch; target >= 1.7x). One rank per core,
# one BLAS thread each. The four runs of a repetition go back to back; each figure is
# the median over repetitions of that repetition's ratio (median step times after the
# first `skip` steps), with the min and max of those ratios.
. bench/lib.sh
steps=$(full_or_quick 30 6)
skip=$(full_or_quick 5 2)
dm=$(full_or_quick 512 256) # quick: a narrower model, the figure only has to exist
base="model.seq_len=64 train.steps=$steps train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
wide="model.d_model=$dm model.n_heads=8 model.d_ff=$((4 * dm)) model.n_layers=2 train.global_batch=8"
dp1=""
dp2=""
tp1=""
tp2=""
dpr=""
tpr=""
for r in $(seq "$REPS"); do
    $MPIRUN_CORE 1 "$MOTSCALE" train "$DEFAULTS" $base model.size=s train.global_batch=8 run.out_dir="$SCRATCH" run.name=dp1-$r >/dev/null 2>&1
    $MPIRUN_CORE 2 "$MOTSCALE" train "$DEFAULTS" $base model.size=s train.global_batch=16 run.out_dir="$SCRATCH" run.name=dp2-$r >/dev/null 2>&1
    $MPIRUN_CORE 1 "$MOTSCALE" train "$DEFAULTS" $base $wide run.out_dir="$SCRATCH" run.name=tp1-$r >/dev/null 2>&1
    $MPIRUN_CORE 2 "$MOTSCALE" train "$DEFAULTS" $base $wide parallel.tp=2 run.out_dir="$SCRATCH" run.name=tp2-$r >/dev/null 2>&1
    a=$(median_step "$SCRATCH/dp1-$r/run.h5" "$skip")
    b=$(median_step "$SCRATCH/dp2-$r/run.h5" "$skip")
    c=$(median_step "$SCRATCH/tp1-$r/run.h5" "$skip")
    d=$(median_step "$SCRATCH/tp2-$r/run.h5" "$skip")
    dp1="$dp1 $a"
    dp2="$dp2 $b"
    tp1="$tp1 $c"
    tp2="$tp2 $d"
    # throughput ratio dp: (2x tokens per step) / step time
    dpr="$dpr $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", 2 * a / b}')"
    tpr="$tpr $(awk -v a="$c" -v b="$d" 'BEGIN {printf "%.3f", a / b}')"
done
dps=$(median $dpr)
echo "result dp=2 / dp=1 throughput: step $(awk -v x="$(median $dp1)" 'BEGIN{printf "%.1f", 1e3*x}') ms at dp=1 (8 seq), $(awk -v x="$(median $dp2)" 'BEGIN{printf "%.1f", 1e3*x}') ms at dp=2 (16 seq): ${dps}x (per repetition:$dpr)"
# shellcheck disable=SC2046
figure dp2.speedup x "$dps" $(minmax $dpr) ge 1.9 "dp=2 / dp=1 throughput, size s, one rank per core"
tps=$(median $tpr)
echo "result tp=2 / tp=1 speed-up at d_model=$dm: $(awk -v x="$(median $tp1)" 'BEGIN{printf "%.1f", 1e3*x}') ms -> $(awk -v x="$(median $tp2)" 'BEGIN{printf "%.1f", 1e3*x}') ms: ${tps}x (per repetition:$tpr)"
# shellcheck disable=SC2046
figure tp2.speedup x "$tps" $(minmax $tpr) ge 1.7 "tp=2 / tp=1 speed-up, d_model $dm, one rank per core"
