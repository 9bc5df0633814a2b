#!/bin/sh
# `motscale sweep` without Slurm: every file in experiments/ lists; the cartesian
# product, zip pairing, quoting and the run-name template give the expected points;
# --index output loads as a config and trains under mpirun; bad sweeps exit 2 with
# the key named.
. tests/lib.sh

for f in experiments/*.ini; do
    expect_status 0 "sweep --list: $f" "$MOTSCALE" sweep "$f" --list
done

cat >"$SCRATCH/exp.ini" <<'EOF'
[run]
name = {model.kind}-{model.size}-dp{parallel.dp}-s{run.seed}
[model]
size = xs
[sweep]
model.kind = dense, mot
run.seed = 1, 2
zip = parallel.dp, train.global_batch
parallel.dp = 1, 2, 4
train.global_batch = 8, 16, 32
EOF
check "--count: 2 kinds x 2 seeds x 3 zipped (dp, batch) = 12" \
    test "$("$MOTSCALE" sweep "$SCRATCH/exp.ini" --count)" = 12
# the last axis varies fastest; zipped keys move together
"$MOTSCALE" sweep "$SCRATCH/exp.ini" --list >"$SCRATCH/list" 2>&1
check "--list: point 5 is dense, seed 2, dp 4 with batch 32" \
    grep -qx "5	dense-xs-dp4-s2	model.kind=dense run.seed=2 parallel.dp=4 train.global_batch=32" "$SCRATCH/list"
check "--list: point 7 is mot, seed 1, dp 2 with batch 16" \
    grep -qx "7	mot-xs-dp2-s1	model.kind=mot run.seed=1 parallel.dp=2 train.global_batch=16" "$SCRATCH/list"
check "--list: 12 distinct run names" test "$(cut -f2 "$SCRATCH/list" | sort -u | wc -l)" -eq 12

"$MOTSCALE" sweep "$SCRATCH/exp.ini" --index 7 run.out_dir="$SCRATCH/out" >"$SCRATCH/p7.ini"
check "--index: resolved values of point 7" sh -c "
    grep -qx 'name = mot-xs-dp2-s1' '$SCRATCH/p7.ini' && grep -qx 'experiment = exp' '$SCRATCH/p7.ini' &&
    grep -qx 'kind = mot' '$SCRATCH/p7.ini' && grep -qx 'dp = 2' '$SCRATCH/p7.ini' &&
    grep -qx 'global_batch = 16' '$SCRATCH/p7.ini' && grep -qx 'seed = 1' '$SCRATCH/p7.ini' &&
    grep -qx 'out_dir = $SCRATCH/out' '$SCRATCH/p7.ini'"
expect_status 0 "--index output loads as a config (motscale flops)" "$MOTSCALE" flops "$SCRATCH/p7.ini"
check "--run-dir: out_dir/name" test "$("$MOTSCALE" sweep "$SCRATCH/exp.ini" --run-dir 7 run.out_dir=o)" = o/mot-xs-dp2-s1
"$MOTSCALE" sweep "$SCRATCH/exp.ini" --index 0 run.experiment=mine >"$SCRATCH/p0.ini"
check "--index: a given run.experiment is kept" grep -qx 'experiment = mine' "$SCRATCH/p0.ini"

# quoted values keep their commas; a sweep value may itself be a template
cat >"$SCRATCH/quoted.ini" <<'EOF'
[data]
modalities = text,image,speech
mix = 1,1,1
[sweep]
zip = run.name, model.kind, model.towers
run.name = all-{model.kind}, split-{model.kind}
model.kind = dense, towers
model.towers = "", "text,image | speech"
EOF
"$MOTSCALE" sweep "$SCRATCH/quoted.ini" --index 1 >"$SCRATCH/q1.ini"
check "quoted value with commas, template in a swept run.name" sh -c "
    grep -qx 'towers = text,image | speech' '$SCRATCH/q1.ini' && grep -qx 'name = split-towers' '$SCRATCH/q1.ini'"

# mpirun the --index output of a 1-step point: train accepts it as is
"$MOTSCALE" sweep "$SCRATCH/exp.ini" --index 1 run.out_dir="$SCRATCH/out" train.steps=2 \
    model.seq_len=16 log.eval_every=0 log.peak_flops=1e9 log.quiet=true >"$SCRATCH/p1.ini"
expect_status 0 "motscale train runs the --index output (dp 2 under mpirun)" \
    $MPIRUN 2 "$MOTSCALE" train "$SCRATCH/p1.ini"

# bad sweeps: exit 2, the key named
bad() { # description, text of [sweep], expected words in the message
    printf '[sweep]\n%s\n' "$2" >"$SCRATCH/bad.ini"
    "$MOTSCALE" sweep "$SCRATCH/bad.ini" --list >"$SCRATCH/bad.out" 2>&1
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$3" "$SCRATCH/bad.out"; then ok "$1"; else
        not_ok "$1 (exit $rc)"
        sed 's/^/# /' "$SCRATCH/bad.out"
    fi
}
bad "unknown key exits 2 naming it" "model.widthh = 1, 2" "model.widthh"
bad "unknown section exits 2 naming it" "modle.kind = dense" "modle.kind"
bad "empty list exits 2 naming the key" "model.kind =" "model.kind': empty list"
bad "empty item exits 2 naming the key" "run.seed = 1,,2" "run.seed'"
bad "bad value exits 2 naming the key" "model.kind = dense, sparse" "model.kind"
bad "zip of an unknown key exits 2 naming it" "zip = parallel.dp, train.batch" "train.batch"
bad "zip of unequal lists exits 2 naming both" "$(printf 'zip = parallel.dp, train.global_batch\nparallel.dp = 1, 2\ntrain.global_batch = 8')" "train.global_batch' has 1 values but 'parallel.dp' has 2"
bad "clashing run names exit 2" "run.seed = 1, 2" "both run in"
expect_status 2 "--index past the end exits 2" "$MOTSCALE" sweep "$SCRATCH/exp.ini" --index 12
expect_status 2 "no mode exits 2" "$MOTSCALE" sweep "$SCRATCH/exp.ini"
expect_status 0 "--help" "$MOTSCALE" sweep --help
