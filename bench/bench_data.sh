# Issue 5: reading the training data from an HDF5 token file costs under 2% of step
# time at the demo config (the trainer times data_read as /metrics/io_time).
. bench/lib.sh
"$MOTSCALE" data gen /dev/null model.size=xs -o "$SCRATCH/tokens.h5" >/dev/null 2>&1 || { echo "result data: data gen failed"; exit 0; }
fr=""
for r in $(seq "$REPS"); do
    "$MOTSCALE" train /dev/null model.size=xs train.steps=100 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9 \
        data.source=file data.path="$SCRATCH/tokens.h5" run.out_dir="$SCRATCH" run.name=file-$r >/dev/null 2>&1
    io=$(median_step "$SCRATCH/file-$r/run.h5" 5 io_time)
    st=$(median_step "$SCRATCH/file-$r/run.h5" 5 step_time)
    fr="$fr $(awk -v a="$io" -v b="$st" 'BEGIN {printf "%.4f", 100 * a / b}')"
done
pct=$(median $fr)
echo "result file data read: ${pct}% of step time (median of $REPS runs' per-step medians)"
verdict "file read share of step time %" "$pct" le 2
