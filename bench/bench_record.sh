# Issue 4: logging costs under 1% of step time at the demo config, and the
# checkpoint write bandwidth in MB/s.
. bench/lib.sh
# The trainer times its own logging (gather of per-rank times, the run-record row,
# progress line, periodic flush) and reports it beside the step time in its closing
# line; comparing two whole runs cannot resolve 1% on a shared machine.
cfg="model.size=xs train.steps=$(full_or_quick 300 30) log.every=5 log.eval_every=0 log.peak_flops=1e9"
pcts=""
for r in $(seq "$REPS"); do
    line=$("$MOTSCALE" train experiments/demo.ini $cfg model.kind=mot run.out_dir="$SCRATCH" run.name=log-$r 2>/dev/null | grep '^done:')
    pcts="$pcts $(echo "$line" | sed -n 's/.*= \([0-9.]*\)%).*/\1/p')"
done
pct=$(median $pcts)
echo "result logging at the demo config (a row every 5 steps, flush every 50): ${pct}% of step time (median of $REPS:$pcts)"
# shellcheck disable=SC2046
figure logging.share % "$pct" $(minmax $pcts) le 1 "run-record logging, share of step time (demo config)"
# size l, 2 ranks: a checkpoint every 2 steps (quick: size s, every step, 2 of them)
size=$(full_or_quick l s)
ck=$(full_or_quick "train.steps=6 train.checkpoint_every=2" "train.steps=2 train.checkpoint_every=1")
out=$($MPIRUN 2 "$MOTSCALE" train "$DEFAULTS" model.size=$size $ck log.every=2 log.eval_every=0 log.peak_flops=1e9 train.global_batch=2 run.out_dir="$SCRATCH" run.name=ck 2>/dev/null | grep '^checkpoint')
echo "$out" | sed 's/^/  /'
mbs=$(echo "$out" | sed -n 's/.*(\([0-9.]*\) MB\/s)/\1/p')
# shellcheck disable=SC2086
mb=$(median $mbs)
echo "result checkpoint write bandwidth (size $size, 2 ranks, parallel HDF5): median ${mb} MB/s"
# shellcheck disable=SC2046,SC2086
figure checkpoint.bandwidth MB/s "$mb" $(minmax $mbs) - - "checkpoint write, size $size, 2 ranks, parallel HDF5"
