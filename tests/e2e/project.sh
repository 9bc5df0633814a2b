#!/bin/sh
# motscale probe-net and motscale project from outside (the formulas themselves:
# tests/unit/test_cost.c): --help, bad input (exit 2, one line naming the flag or
# file), probe-net at 2 ranks writes a [net] file project reads, and project's
# table at a fixed global batch: memory per rank equal to `motscale flops` for the layout (zero 1: moments
# / dp), MFU = model FLOPs / (ranks x peak x step), the MoT/dense ratio 1 for a model
# with one modality, and a PNG figure from gnuplot.
. tests/lib.sh
base_ini model.d_model=64 model.n_heads=4 model.d_ff=256 model.n_layers=2 model.seq_len=64 data.modalities=text data.mix=1
CFG=$SCRATCH/base.ini

expect_status 0 "probe-net --help" "$MOTSCALE" probe-net --help
expect_status 0 "project --help" "$MOTSCALE" project --help
expect_status 2 "probe-net at one rank: exit 2" $MPIRUN 1 "$MOTSCALE" probe-net
expect_status 2 "project without --net: exit 2" "$MOTSCALE" project "$CFG" --ranks 2
check "... the message says what is missing" grep -q -- "--net" "$SCRATCH/last.out"
expect_status 2 "project --ranks 0: exit 2" "$MOTSCALE" project "$CFG" --ranks 0 --alpha 1e-6 --beta 1e-10
check "... the message names --ranks" grep -q -- "--ranks" "$SCRATCH/last.out"
printf '[net]\nregimes = 1\nupto = 1\nalpha = 1e-6\nbeta = -1\n' >"$SCRATCH/bad.ini"
expect_status 2 "project --net with a negative beta: exit 2" "$MOTSCALE" project "$CFG" --ranks 2 --net "$SCRATCH/bad.ini"
check "... the message names the file" grep -q "bad.ini" "$SCRATCH/last.out"
expect_status 2 "project with an unknown key: exit 2" "$MOTSCALE" project "$CFG" --ranks 2 --alpha 1e-6 \
    --beta 1e-10 model.nope=1
check "... the message names the key" grep -q "model.nope" "$SCRATCH/last.out"

timeout 120 $MPIRUN 2 "$MOTSCALE" probe-net --rounds 2 --out "$SCRATCH/net.ini" >"$SCRATCH/probe.out" 2>&1
check "probe-net at 2 ranks: 15 sizes, both fits, a [net] file" sh -c \
    "[ \$(grep -c '^ *[0-9]* *[0-9.]* ' '$SCRATCH/probe.out') -ge 15 ] && grep -q 'all-reduce regime 0' '$SCRATCH/probe.out' && grep -q '^\[net\]' '$SCRATCH/net.ini'"

"$MOTSCALE" project "$CFG" --ranks 1,2,3,4,1024 --net "$SCRATCH/net.ini" --gemm-rate 1e10 --peak 2e10 \
    --table "$SCRATCH/t.txt" --plot "$SCRATCH/p.png" parallel.zero=1 parallel.tp=2 \
    >"$SCRATCH/proj.out" 2>&1
check "project: rows for 2 and 4 ranks; 1 and 3 (tp 2) and 1024 (dp 512 > batch 8) refused" sh -c \
    "[ \$(grep -vc '^#' '$SCRATCH/t.txt') = 2 ] && [ \$(grep -c '(no layout' '$SCRATCH/proj.out') = 3 ]"
check "project: the figure is a PNG" sh -c "head -c 4 '$SCRATCH/p.png' | grep -q PNG"
check "probe-net's file: [node] gemm_shared, a positive factor" sh -c \
    "awk -F' = ' '/^gemm_shared/ {f = \$2} END {exit !(f > 0)}' '$SCRATCH/net.ini'"
# the shared-node factor: at 2 ranks and more compute x F, step + (F - 1) compute; 1 rank untouched
for f in 1 1.5; do
    "$MOTSCALE" project "$CFG" --ranks 1,2 --net "$SCRATCH/net.ini" --gemm-rate 1e10 --gemm-shared $f \
        --table "$SCRATCH/s$f.txt" parallel.tp=1 >/dev/null 2>&1
done
check "project --gemm-shared 1.5: compute at 2 ranks x1.5 (1 rank: x1), step = compute + comm + rest" $PY - \
    "$SCRATCH/s1.txt" "$SCRATCH/s1.5.txt" <<'EOF'
import sys
a, b = ({int(l.split()[0]): [float(x) for x in l.split()] for l in open(f) if not l.startswith("#")}
        for f in sys.argv[1:3])
close = lambda x, y: abs(x - y) <= 1e-4 * abs(y)
# columns: 4 compute, 5 exposed comm, 6 rest (probed afresh by each run), 7 step
ok = close(b[2][4], 1.5 * a[2][4]) and close(b[1][4], a[1][4]) and close(b[2][5], a[2][5])
ok = ok and all(close(t[r][7], t[r][4] + t[r][5] + t[r][6]) for t in (a, b) for r in (1, 2))
print("# 2 ranks: compute %.6g -> %.6g, step %.6g -> %.6g; 1 rank compute %.6g -> %.6g"
      % (a[2][4], b[2][4], a[2][7], b[2][7], a[1][4], b[1][4]))
sys.exit(0 if ok else 1)
EOF
expect_status 2 "project --gemm-shared 0: exit 2" "$MOTSCALE" project "$CFG" --ranks 2 --alpha 1e-6 --beta 1e-10 \
    --gemm-shared 0
check "... the message names --gemm-shared" grep -q -- "--gemm-shared" "$SCRATCH/last.out"
# memory per rank at 4 ranks (tp 2, dp 2, zero 1) against motscale flops of that layout
mem=$("$MOTSCALE" flops "$CFG" parallel.tp=2 parallel.dp=2 parallel.zero=1 |
    awk '/^  (parameters|gradients|AdamW moments|activations for backward)/ {s += $NF} END {print s}')
check "project memory at 4 ranks = motscale flops for tp 2 dp 2 zero 1 ($mem bytes)" $PY - "$SCRATCH/t.txt" "$mem" \
    "$("$MOTSCALE" flops "$CFG" | awk '/train FLOPs  /{print $NF}')" <<'EOF'
import sys
rows = {int(l.split()[0]): [float(x) for x in l.split()] for l in open(sys.argv[1]) if not l.startswith("#")}
mem, step_flops = float(sys.argv[2]), float(sys.argv[3])
r = rows[4]
ok = abs(r[9] * 2**20 - mem) / mem < 1e-4
# MFU = model FLOPs of the step / (ranks x peak x step); fixed batch: the config's step
mfu = step_flops / (4 * 2e10 * r[7])
ok = ok and abs(r[8] / 100 - mfu) / mfu < 1e-3 and r[10] == 1
print("# memory %.0f vs %.0f, MFU %.4g vs %.4g, MoT/dense %g" % (r[9] * 2**20, mem, r[8], mfu, r[10]))
sys.exit(0 if ok else 1)
EOF
