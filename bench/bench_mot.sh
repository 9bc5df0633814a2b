# Issue 8 (target revised by issue 20): MoT step time / dense step time at equal width
# and batch, for 2 and 3 modalities. Target: at most 1.03 (the per-tower grouping must
# cost next to nothing). Dense and MoT run back to back in each repetition; the figure
# is the median of the per-repetition ratios (pairs share the machine's state at that
# moment), with their min and max, each run's step time its 10th percentile over the
# steps after the first 5 (bench/lib.sh says why). One BLAS thread.
. bench/lib.sh
REPS=$(full_or_quick "${BENCH_REPS:-7}" 1)
steps=$(full_or_quick 60 8)
skip=$(full_or_quick 5 3)
cfg="model.size=s model.seq_len=128 train.global_batch=8 train.steps=$steps train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
for nm in 2 3; do
    if [ $nm = 2 ]; then mods="data.modalities=text,image data.mix=1,1"; else mods="data.modalities=text,image,speech data.mix=1,1,1"; fi
    ratios=""
    ds=""
    ms=""
    for r in $(seq "$REPS"); do
        for kind in dense mot; do
            "$MOTSCALE" train "$DEFAULTS" $cfg $mods model.kind=$kind run.out_dir="$SCRATCH" run.name=$kind-$nm-$r >/dev/null 2>&1 ||
                { echo "result mot-$nm: run failed"; continue 3; }
        done
        d=$(pct_step "$SCRATCH/dense-$nm-$r/run.h5" "$skip" step_time 10)
        m=$(pct_step "$SCRATCH/mot-$nm-$r/run.h5" "$skip" step_time 10)
        ds="$ds $d"
        ms="$ms $m"
        ratios="$ratios $(awk -v a="$m" -v b="$d" 'BEGIN {printf "%.4f", a / b}')"
    done
    ratio=$(median $ratios)
    echo "result mot/dense step time, $nm modalities: dense $(awk -v x="$(median $ds)" 'BEGIN{printf "%.1f", 1e3*x}') ms, mot $(awk -v x="$(median $ms)" 'BEGIN{printf "%.1f", 1e3*x}') ms, ratio $ratio (median of $REPS paired ratios:$ratios)"
    # shellcheck disable=SC2046
    figure "mot$nm.step_ratio" "x" "$ratio" $(minmax $ratios) le 1.03 "MoT / dense step time, $nm modalities (size s)"
done
