# Issue 8 (target revised by issue 20): MoT step time / dense step time at equal width
# and batch, for 2 and 3 modalities. Target: at most 1.03 (the per-tower grouping must
# cost next to nothing). Dense and MoT run back to back in each repetition; the figure
# is the median of the per-repetition ratios (pairs share the machine's state at that
# moment), with their min and max, each run's step time its 10th percentile over the
# steps after the first 5 (bench/lib.sh says why). One BLAS thread.
# Reported beside them (no target): 3 modalities at 4x the tokens per step (global
# batch 32), which shows how much of MoT's extra time is per parameter (AdamW, the
# gradient norm, packing each tower's weights: K times the work at any batch) rather
# than per token (the same in both).
. bench/lib.sh
REPS=$(full_or_quick "${BENCH_REPS:-7}" 1)
steps=$(full_or_quick 60 8)
skip=$(full_or_quick 5 3)
common="model.size=s model.seq_len=128 train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
# pair NM BATCH REPS STEPS KEY TARGET LABEL: REPS dense/MoT pairs, the figure of their ratios
pair() {
    if [ "$1" = 2 ]; then mods="data.modalities=text,image data.mix=1,1"; else mods="data.modalities=text,image,speech data.mix=1,1,1"; fi
    cfg="$common train.global_batch=$2 train.steps=$4"
    ratios=""
    ds=""
    ms=""
    for r in $(seq "$3"); do
        for kind in dense mot; do
            "$MOTSCALE" train "$DEFAULTS" $cfg $mods model.kind=$kind run.out_dir="$SCRATCH" run.name=$kind-$1-$2-$r \
                >/dev/null 2>&1 || { echo "result $5: run failed"; return; }
        done
        d=$(pct_step "$SCRATCH/dense-$1-$2-$r/run.h5" "$skip" step_time 10)
        m=$(pct_step "$SCRATCH/mot-$1-$2-$r/run.h5" "$skip" step_time 10)
        ds="$ds $d"
        ms="$ms $m"
        ratios="$ratios $(awk -v a="$m" -v b="$d" 'BEGIN {printf "%.4f", a / b}')"
    done
    ratio=$(median $ratios)
    echo "result mot/dense step time, $1 modalities, batch $2: dense $(awk -v x="$(median $ds)" 'BEGIN{printf "%.1f", 1e3*x}') ms, mot $(awk -v x="$(median $ms)" 'BEGIN{printf "%.1f", 1e3*x}') ms, ratio $ratio (median of $3 paired ratios:$ratios)"
    # shellcheck disable=SC2046
    figure "$5" "x" "$ratio" $(minmax $ratios) $6 "$7"
}
pair 2 8 "$REPS" "$steps" mot2.step_ratio "le 1.03" "MoT / dense step time, 2 modalities (size s)"
pair 3 8 "$REPS" "$steps" mot3.step_ratio "le 1.03" "MoT / dense step time, 3 modalities (size s)"
pair 3 32 "$(full_or_quick 3 1)" "$(full_or_quick 25 8)" mot3.step_ratio.b32 "- -" \
    "MoT / dense step time, 3 modalities (size s), global batch 32 (4x the tokens per step)"
