# Issue 19: the cost model (motscale project) against measured runs. First
# `motscale probe-net` at 2 and 4 ranks: its fitted alpha-beta model against its own
# measurements, 1 KiB .. 16 MiB (target: worst error <= 20%). Then every layout this
# machine can run (1, 2, 4 ranks; tp and dp; zero 0 and 1), dense and MoT: each
# run's median step time (after the first `skip` steps) against `motscale project`
# at the same layout with the probe of that rank count, run right after it; the
# figure is the median over REPS runs (target: |error| <= 25% at every layout). 4 ranks oversubscribe the 2 cores:
# projected with --cores (compute time-sliced). BENCH_PROJECT_RANKS="8 16" adds those
# rank counts (the 16-core device machine): dp, tp 2 x dp and zero 1 at each.
. bench/lib.sh
steps=$(full_or_quick 14 3)
skip=$(full_or_quick 4 1)
dm=$(full_or_quick 256 64)
cores=$(nproc)
model="model.d_model=$dm model.n_heads=4 model.d_ff=$((4 * dm)) model.n_layers=2 model.seq_len=128"
run="train.global_batch=8 train.steps=$steps train.warmup=2 log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9"

# ---- the probe: its model against its own measurements ----------------------------
for np in 2 4; do
    [ "$np" -gt 2 ] && [ "$QUICK" = 1 ] && continue
    $MPIRUN "$np" "$MOTSCALE" probe-net --out "$SCRATCH/net$np.ini" $( [ "$QUICK" = 1 ] && echo "--rounds 3") \
        >"$SCRATCH/probe$np.txt" 2>&1 || { echo "probe-net at $np ranks failed"; cat "$SCRATCH/probe$np.txt"; exit 1; }
    sed "s/^/# probe-net np $np: /" "$SCRATCH/probe$np.txt"
    for what in p2p all-reduce; do
        [ "$what" = p2p ] && [ "$np" -gt 2 ] && continue
        e=$(awk -v w="$what" '$1 == "figure" && $2 == w {sub("%", "", $NF); print $NF}' "$SCRATCH/probe$np.txt")
        over=""
        [ "$np" -gt "$cores" ] && over=", oversubscribed"
        figure "probe.$what.np$np" "%" "$e" "$e" "$e" le 20 "probe-net $what model vs its measurements, 1 KiB..16 MiB, np $np (worst$over)"
    done
done
[ "$QUICK" = 1 ] && cp "$SCRATCH/net2.ini" "$SCRATCH/net4.ini"

# ---- the layouts ---------------------------------------------------------------------
# name np overrides...; "o" in the name: oversubscribed (np > cores)
layouts="dense-1 1 parallel.tp=1
dense-tp2 2 parallel.tp=2
dense-dp2 2 parallel.tp=1
dense-dp2-z1 2 parallel.tp=1 parallel.zero=1
mot-1 1 parallel.tp=1 model.kind=mot
mot-dp2-z1 2 parallel.tp=1 parallel.zero=1 model.kind=mot
dense-tp2dp2 4 parallel.tp=2
dense-dp4-z1 4 parallel.tp=1 parallel.zero=1"
for n in ${BENCH_PROJECT_RANKS:-}; do
    layouts="$layouts
dense-dp$n $n parallel.tp=1
dense-dp$n-z1 $n parallel.tp=1 parallel.zero=1
dense-tp2dp$((n / 2)) $n parallel.tp=2"
done
[ "$QUICK" = 1 ] && layouts="dense-1 1 parallel.tp=1
dense-dp2-z1 2 parallel.tp=1 parallel.zero=1"

echo "$layouts" >"$SCRATCH/layouts"
printf '# %-16s %5s %12s %12s %8s\n' layout ranks measured_s projected_s error% >"$SCRATCH/table"
worst=0
errs=""
while read -r name np over; do
    # side by side: each run is followed at once by its projection (whose GEMM and
    # kernel probes then meet the same load); the error is the median over REPS of
    # the per-run errors. Unpinned: on a machine shared with other jobs a rank pinned
    # to a busy core cannot move.
    es=""
    meds=""
    projs=""
    net=$SCRATCH/net$np.ini
    [ -e "$net" ] || net=$SCRATCH/net4.ini
    [ "$np" = 1 ] && net=$SCRATCH/net2.ini
    for r in $(seq "$REPS"); do
        # shellcheck disable=SC2086
        $MPIRUN "$np" "$MOTSCALE" train "$DEFAULTS" $model $run $over run.out_dir="$SCRATCH" \
            run.name="$name-$r" </dev/null >"$SCRATCH/$name-$r.out" 2>&1 ||
            { echo "run $name failed"; tail -3 "$SCRATCH/$name-$r.out"; exit 1; }
        m=$(median_step "$SCRATCH/$name-$r/run.h5" "$skip")
        # shellcheck disable=SC2086
        "$MOTSCALE" project "$DEFAULTS" --ranks "$np" --net "$net" --cores "$cores" --table "$SCRATCH/$name.tab" \
            $model $run $over >"$SCRATCH/$name.proj" 2>&1 || { echo "project $name failed"; cat "$SCRATCH/$name.proj"; exit 1; }
        p=$(awk '!/^#/ {print $8}' "$SCRATCH/$name.tab")
        meds="$meds $m"
        projs="$projs $p"
        es="$es $(awk -v p="$p" -v m="$m" 'BEGIN {printf "%.1f", 100 * (p - m) / m}')"
    done
    meas=$(median $meds)
    proj=$(median $projs)
    err=$(median $es)
    printf '# %-16s %5s %12.5f %12.5f %+8.1f   (per run:%s)\n' "$name" "$np" "$meas" "$proj" "$err" "$es" >>"$SCRATCH/table"
    errs="$errs $err"
    a=$(echo "$err" | tr -d '+-')
    # shellcheck disable=SC2046
    figure "project.err.$name" "%" "$a" $(minmax $(echo "$es" | tr -d '+-')) le 25 "|projected - measured| / measured median step, $name, np $np$( [ "$np" -gt "$cores" ] && echo " (oversubscribed)")"
done <"$SCRATCH/layouts"
echo "# cost model against measured median step times ($REPS runs each; $cores cores; load $(cut -d' ' -f1 /proc/loadavg)):"
cat "$SCRATCH/table"
abs=""
for e in $errs; do abs="$abs $(echo "$e" | tr -d '+-')"; done
# shellcheck disable=SC2046
figure project.err.worst "%" "$(printf '%s\n' $abs | sort -g | tail -n 1)" $(minmax $abs) le 25 "worst |projected - measured| / measured over the layouts"
