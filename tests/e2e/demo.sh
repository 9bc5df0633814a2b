# make demo's driver (jobs/demo) on a short schedule: it trains every point (dense
# and mot, three seeds), writes the report, and each headline it prints names the
# pair, size and seed count and carries the compare JSON's equal-loss fractions with
# their intervals and method (rounded to 0.1%).
. tests/lib.sh
BUILD=${BUILD:-build}
BUILD=$BUILD sh jobs/demo run.out_dir="$SCRATCH/demo" train.steps=60 train.warmup=10 \
    log.every=4 log.eval_every=30 log.quiet=true >"$SCRATCH/demo.out" 2>&1
rc=$?
check "jobs/demo ran every point, compare and report (exit $rc)" [ "$rc" -eq 0 ]
check "report.md written" [ -s "$SCRATCH/demo/report/report.md" ]
$PY - "$SCRATCH/demo.out" "$SCRATCH/demo/compare.json" <<'PYEOF'
import json, re, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("headline:")]
j = json.load(open(sys.argv[2]))
c = j["comparisons"][0]
r = lambda v: None if v is None else round(100 * v, 1)
want = {}
for s in c["series"]:
    e = s["equal_loss"]
    if e["reached"]:
        f, w = e["fraction_flops"], e["fraction_wall_clock"]
        want[s["name"]] = (r(f["value"]), r(f["lo"]), r(f["hi"]), r(w["value"]), r(w["lo"]), r(w["hi"]))
got = {}
num = r"(-?[0-9.]+)% \[(-?[0-9.]+), (-?[0-9.]+)\]"  # a wall-clock bound can be negative under load
for l in lines:
    m = re.search(rf"^headline: mot vs dense, xs, 3 seeds: mot reaches dense's final (\w+) training "
                  rf"loss \S+ with {num} of the FLOPs, {num} of the wall-clock \(95% intervals, t "
                  rf"over 3 paired seeds\)", l)
    if m:
        got[m.group(1)] = tuple(float(x) for x in m.groups()[1:])
print("# printed", got)
print("# json   ", want)
ok = len(want) > 0 and got == want and c["n_seeds"] == 3 and len(lines) == len(c["series"])
print(("ok" if ok else "not ok"), "3 - each headline names pair, size and seeds, with the JSON's fractions, intervals and method")
PYEOF
