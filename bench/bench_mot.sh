# Issue 8: MoT step time / dense step time at equal width and batch, for 2 and 3
# modalities. Target: at most 1.05 (the per-tower grouping must cost next to nothing).
. bench/lib.sh
cfg="model.size=s model.seq_len=128 train.global_batch=8 train.steps=40 train.warmup=5 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
for nm in 2 3; do
    if [ $nm = 2 ]; then mods="data.modalities=text,image data.mix=1,1"; else mods="data.modalities=text,image,speech data.mix=1,1,1"; fi
    rd=""
    rm_=""
    for r in $(seq "$REPS"); do
        for kind in dense mot; do
            "$MOTSCALE" train /dev/null $cfg $mods model.kind=$kind run.out_dir="$SCRATCH" run.name=$kind-$nm-$r >/dev/null 2>&1 ||
                { echo "result mot-$nm: run failed"; continue 2; }
        done
        d=$(median_step "$SCRATCH/dense-$nm-$r/run.h5")
        m=$(median_step "$SCRATCH/mot-$nm-$r/run.h5")
        rd="$rd $d"
        rm_="$rm_ $m"
    done
    d=$(median $rd)
    m=$(median $rm_)
    ratio=$(awk -v a="$m" -v b="$d" 'BEGIN {printf "%.3f", a / b}')
    echo "result mot/dense step time, $nm modalities: dense $(awk -v x="$d" 'BEGIN{printf "%.1f", 1e3*x}') ms, mot $(awk -v x="$m" 'BEGIN{printf "%.1f", 1e3*x}') ms, ratio $ratio (median of $REPS)"
    verdict "mot/dense step time ($nm modalities)" "$ratio" le 1.05
done
