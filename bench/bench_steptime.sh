# motscale steptime under this machine's noise (issue 17's paired step-time ratio):
#   1. identical configurations: the ratio and its sign-test interval, which should
#      hold 1.00 (a run whose interval misses 1 says the machine's noise is not
#      exchangeable between bursts: a neighbour slowed one side);
#   2. dense vs mot (xs, 2 modalities): steptime's ratio against the ratios of the
#      median step times of pairs of runs trained one after the other (the figure is
#      the median pair's ratio over steptime's, with the pairs' min and max over it;
#      1 is agreement).
# Reported only, no targets: tests/e2e/steptime.sh asserts what does not depend on
# the noise.  BUILD=build sh bench/bench_steptime.sh
MOTSCALE=${MOTSCALE:-$PWD/${BUILD:-build}/motscale}
. bench/lib.sh
pairs=$(full_or_quick 8 6)
steps=$(full_or_quick 30 10)
cp tests/fixtures/steptime.ini "$SCRATCH/dense.ini"
sed 's/^size = xs/kind = mot\nsize = xs/' "$SCRATCH/dense.ini" >"$SCRATCH/mot.ini"
# ratio, lo, hi of a steptime INI result
st_field() { sed -n "s/^$2 = //p" "$1"; }
echo "# identical dense xs configurations: $pairs pairs of $steps steps, one rank"
if ! "$MOTSCALE" steptime "$SCRATCH/dense.ini" "$SCRATCH/dense.ini" --np 1 --pairs "$pairs" \
    --steps "$steps" --out "$SCRATCH/same.ini" >"$SCRATCH/same.out" 2>&1; then
    echo "bench_steptime: steptime on identical configurations failed:" >&2
    tail -5 "$SCRATCH/same.out" >&2
    exit 1
fi
grep '^  pair\|^ratio' "$SCRATCH/same.out"
f=$SCRATCH/same.ini
figure "steptime.identical" x "$(st_field "$f" ratio)" "$(st_field "$f" lo)" "$(st_field "$f" hi)" - - \
    "steptime B/A for identical configurations (should hold 1.00), xs, $pairs pairs"
echo "# dense vs mot: steptime ($pairs pairs) and $REPS pairs of trained runs of 80 steps"
"$MOTSCALE" steptime "$SCRATCH/dense.ini" "$SCRATCH/mot.ini" --np 1 --pairs "$pairs" \
    --steps "$steps" --out "$SCRATCH/st.ini" >"$SCRATCH/st.out" 2>&1 || {
    echo "bench_steptime: steptime dense vs mot failed" >&2
    exit 1
}
grep '^ratio' "$SCRATCH/st.out"
# trained runs in pairs, the order alternating (dense mot, mot dense, ...), as many
# pairs as the benchmark's repetitions: their ratios' spread is what one pair of
# trained runs can say
trained=""
for r in $(seq "$REPS"); do
    if [ $((r % 2)) = 1 ]; then order="dense mot"; else order="mot dense"; fi
    for k in $order; do
        "$MOTSCALE" train "$SCRATCH/$k.ini" run.out_dir="$SCRATCH/runs" run.name=$k-$r train.steps=80 \
            log.every=1 log.quiet=true >"$SCRATCH/$k.out" 2>&1 || {
            echo "bench_steptime: training $k failed" >&2
            exit 1
        }
    done
    td=$(median_step "$SCRATCH/runs/dense-$r/run.h5" 5)
    tm=$(median_step "$SCRATCH/runs/mot-$r/run.h5" 5)
    trained="$trained $(awk -v a="$tm" -v b="$td" 'BEGIN {printf "%.4f", a / b}')"
done
r=$(st_field "$SCRATCH/st.ini" ratio)
# shellcheck disable=SC2086
t=$(median $trained)
q=$(awk -v t="$t" -v r="$r" 'BEGIN {printf "%.4f", t / r}')
# shellcheck disable=SC2086
set -- $(minmax $trained)
echo "result trained runs mot/dense $t (pairs:$trained), steptime $r [$(st_field "$SCRATCH/st.ini" lo), $(st_field "$SCRATCH/st.ini" hi)]: quotient $q"
figure "steptime.trained_over_paired" x "$q" "$(awk -v x="$1" -v r="$r" 'BEGIN {printf "%.4f", x / r}')" \
    "$(awk -v x="$2" -v r="$r" 'BEGIN {printf "%.4f", x / r}')" - - \
    "trained runs' mot/dense step-time ratio over steptime's (1: agreement), xs, $REPS pairs of runs"
