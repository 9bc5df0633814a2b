# Issue 5: reading the training data from an HDF5 token file costs under 2% of step
# time at the demo config (the trainer times data_read as /metrics/io_time).
. bench/lib.sh
"$MOTSCALE" data gen "$DEFAULTS" model.size=xs -o "$SCRATCH/tokens.h5" >/dev/null 2>&1 || { echo "result data: data gen failed"; exit 0; }
fr=""
for r in $(seq "$REPS"); do
    "$MOTSCALE" train "$DEFAULTS" model.size=xs train.steps="$(full_or_quick 100 10)" log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9 \
        data.source=file data.path="$SCRATCH/tokens.h5" run.out_dir="$SCRATCH" run.name=file-$r >/dev/null 2>&1
    # reads come in read-ahead blocks: the share is total read time / total step time
    fr="$fr $($PY -c "import h5py; m = h5py.File('$SCRATCH/file-$r/run.h5')['metrics']; print('%.4f' % (100 * m['io_time'][:].sum() / m['step_time'][:].sum()))")"
done
pct=$(median $fr)
echo "result file data read: ${pct}% of step time (total read time / total step time, median of $REPS runs)"
# shellcheck disable=SC2046
figure data.read_share % "$pct" $(minmax $fr) le 2 "token-file reads, share of step time (size xs)"
