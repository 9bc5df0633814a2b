# make demo's driver (jobs/demo) on a short schedule: it trains both points, writes
# the report, and the headline percentages it prints are the compare JSON's
# equal-loss fractions (rounded to 0.1%).
. tests/lib.sh
BUILD=${BUILD:-build}
BUILD=$BUILD sh jobs/demo run.out_dir="$SCRATCH/demo" train.steps=80 train.warmup=10 \
    log.every=4 log.eval_every=40 log.quiet=true >"$SCRATCH/demo.out" 2>&1
rc=$?
check "jobs/demo ran both points, compare and report (exit $rc)" [ "$rc" -eq 0 ]
check "report.md written" [ -s "$SCRATCH/demo/report/report.md" ]
$PY - "$SCRATCH/demo.out" "$SCRATCH/demo/compare.json" <<'PYEOF'
import json, re, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("headline:")]
j = json.load(open(sys.argv[2]))
want = {}
for s in j["series"]:
    e = s["equal_loss"]
    if e["reached"]:
        want[s["name"]] = (round(100 * e["fraction_flops"], 1), round(100 * e["fraction_wall_clock"], 1))
got = {}
for l in lines:
    m = re.search(r"final (\w+) training loss .* with ([0-9.]+)% of the FLOPs, ([0-9.]+)% of the wall-clock", l)
    if m:
        got[m.group(1)] = (float(m.group(2)), float(m.group(3)))
print("# printed", got)
print("# json   ", want)
ok = len(want) > 0 and got == want
print(("ok" if ok else "not ok"), "3 - the headline percentages are the compare JSON's fractions")
PYEOF
