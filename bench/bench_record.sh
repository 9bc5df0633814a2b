# Issue 4: logging costs under 1% of step time at the demo config (wall-clock of a
# run logging every step vs. one logging only at the end, same steps), and the
# checkpoint write bandwidth in MB/s.
. bench/lib.sh
cfg="model.size=xs train.steps=200 log.eval_every=0 log.quiet=true log.peak_flops=1e9"
every=""
none=""
for r in $(seq "$REPS"); do
    "$MOTSCALE" train /dev/null $cfg log.every=1 run.out_dir="$SCRATCH" run.name=log1-$r >/dev/null 2>&1
    "$MOTSCALE" train /dev/null $cfg log.every=200 run.out_dir="$SCRATCH" run.name=log0-$r >/dev/null 2>&1
    every="$every $($PY -c "import h5py; print(h5py.File('$SCRATCH/log1-$r/run.h5')['metrics/wall_time'][-1])")"
    none="$none $($PY -c "import h5py; print(h5py.File('$SCRATCH/log0-$r/run.h5')['metrics/wall_time'][-1])")"
done
a=$(median $every)
b=$(median $none)
pct=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", 100 * (a - b) / b}')
echo "result logging a row every step (flush every 50): ${a} s vs ${b} s for 200 steps: overhead ${pct}% (median of $REPS)"
verdict "logging overhead %" "$pct" le 1
out=$($MPIRUN 2 "$MOTSCALE" train /dev/null model.size=l train.steps=6 train.checkpoint_every=2 log.every=2 log.eval_every=0 log.peak_flops=1e9 train.global_batch=2 run.out_dir="$SCRATCH" run.name=ck 2>/dev/null | grep '^checkpoint')
echo "$out" | sed 's/^/  /'
mbs=$(echo "$out" | sed -n 's/.*(\([0-9.]*\) MB\/s)/\1/p' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "result checkpoint write bandwidth (size l, 2 ranks, parallel HDF5): median ${mbs} MB/s"
